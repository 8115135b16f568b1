"""Where the inverse error of the symmetric ResNets C and D comes from (issue 21).

    python scripts/symmetric_inverse.py cells [data:moons:0 domain:circles:1 ...]
    python scripts/symmetric_inverse.py causes data:moons:0 domain:circles:1
    python scripts/symmetric_inverse.py causes --changes=w1e5,many [specs ...]

A spec is ``variant:dataset:seed`` (variant ``data`` is the lecture's C, ``domain`` D).
Every cell is trained as ``suites/architectures-toy.yaml`` trains it (``classify.toy``,
1000 full-batch Adam steps, lr 1e-2, the same seed, weight 1e4); ``cells`` with no
spec retrains all 16 published cells.

``cells``: one row per trained cell, all on the same trained network:

- ``acc`` and ``euler``: test accuracy and max |f^-1(f(z)) - z| over the 41 x 41 grid
  with the published inverse (backward Euler, x_k = x_{k+1} - h f(x_{k+1}));
  ``repeats`` says whether accuracy, domain and test inverse errors equal the
  published ``architectures-toy-cpu`` values exactly;
- ``euler fp64``: the same network and inverse in float64 (what is left is not
  round-off);
- ``leading term``: max over the grid of |h^2 sum_k J_f(x_k) f(x_k)|, the leading
  term of backward Euler's round trip (x + h f(x) - h f(x + h f(x)) = x - h^2 J_f f +
  O(h^3) per step): J_f f is the acceleration of the flow's trajectories, so this
  is h times their change of velocity over the unit time;
- ``rms grid`` / ``rms penalised``: the root mean square of the round-trip error (the
  Euclidean norm per point, as the loss has it) over the grid and over the points the
  loss saw (C: the 300 training points; D: uniform over the box, which the grid is);
- ``near`` / ``far``: max over the grid points within 0.1 (the sets' noise) of a
  training point, and beyond it;
- ``fixed point``: the same network inverted by solving each step x = y - h f(x)
  (``inverse: fixed_point``, 200 iterations, tol 1e-7) in float32, and in float64
  iterated to 1e-14;
- ``h Lip(f)``: h ||W2|| ||W1|| of the shared block, an upper bound on the fixed
  point's contraction rate (< 1: it converges from any start, Banach), and
  ``h |J_f| grid``: h max ||J_f(x)||_2 over the grid, the contraction rate where the
  iterates are (they stay near the inverse images, inside the box).

``causes``: the candidate causes retrained one at a time on the given cells, each row
one change from the published cell: the loss's weight (0, 1e3, 1e5; an architecture
parameter), the points it sees (D's 300 uniform points drawn once and kept, and 1681
resampled each step, instead of 300 resampled; patched here, not an option),
optimisation length (3000 steps: a protocol change, reported, not adopted), each with
its accuracy and its domain error under both inverses. ``--changes=a,b`` runs only
those (names: ``published w0 w1e3 w1e5 fixed many steps3000``).
"""

from __future__ import annotations

import copy
import math
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from torch.func import jacrev, jvp, vmap

import plugins.tasks.architectures.toy as toy
from bench import testing
from plugins.architectures.residual import SymmetricResNet

PUBLISHED = Path(__file__).resolve().parent.parent / "results/published/architectures-toy-cpu"
ALL = [f"{v}:{d}:{s}" for v in ("data", "domain") for d in toy.toy2d.DATASETS for s in (0, 1)]


def published(variant: str, dataset: str, seed: int) -> pd.Series:
    cells = pd.read_parquet(PUBLISHED / "cells.parquet")
    row = cells[
        (cells["architecture"] == "resnet_symmetric")
        & (cells["param.architecture.variant"] == variant)
        & (cells["param.dataset"] == dataset)
        & (cells["seed"] == seed)
    ]
    assert len(row) == 1, (variant, dataset, seed)
    return row.iloc[0]


def trained(
    variant: str,
    dataset: str,
    seed: int,
    weight: float | None = None,
    epochs: int = 1000,
    points: str = "published",
) -> tuple[SymmetricResNet, dict, dict]:
    """Train one cell; ``points``: ``published``, ``fixed`` (D's first 300 uniform points
    kept for every step) or ``many`` (D: 1681 uniform points resampled each step)."""
    kept: dict[str, object] = {}
    build = toy.build_architecture
    penalty = SymmetricResNet.penalty

    def keep(ctx, slot="architecture"):
        out = build(ctx, slot)
        kept["net"] = out[1]
        return out

    def patched(self, x, sample_domain=None):
        if points == "fixed":
            if "fixed" not in kept:
                kept["fixed"] = sample_domain(x.shape[0])
            return penalty(self, x, lambda n: kept["fixed"])
        if points == "many":
            return penalty(self, x, lambda n: sample_domain(1681))
        return penalty(self, x, sample_domain)

    params: dict[str, object] = {"architecture.variant": variant}
    if weight is not None:
        params["architecture.weight"] = weight
    toy.build_architecture = keep
    SymmetricResNet.penalty = patched  # type: ignore[method-assign]
    try:
        result = testing.run_cell(
            "classify.toy",
            {"architecture": "resnet_symmetric"},
            {"dataset": dataset, "epochs": epochs, "figures": False, **params},
            seed,
            output=tempfile.mkdtemp(),
        )
    finally:
        toy.build_architecture = build
        SymmetricResNet.penalty = penalty  # type: ignore[method-assign]
    p = result.cell.task_params
    x_tr, _ = toy.toy2d.make(dataset, p["n_train"], p["noise"], seed)
    x_te, _ = toy.toy2d.make(dataset, p["n_test"], p["noise"], seed + 10_000)
    grid, _, _ = toy.toy2d.grid(dataset, p["grid"])
    net = kept["net"]
    net.eval()
    sets = {k: torch.from_numpy(v) for k, v in (("train", x_tr), ("test", x_te), ("grid", grid))}
    return net, sets, result.metrics  # type: ignore[return-value]


@torch.no_grad()
def round_trip(net: SymmetricResNet, z: torch.Tensor, method: str) -> torch.Tensor:
    """f^-1(f(z)) - z per point, with ``method`` ``euler`` or ``fixed_point``."""
    old = net.inverse_method
    net.inverse_method = method
    try:
        return net.inverse(net(z)) - z
    finally:
        net.inverse_method = old


def as64(net: SymmetricResNet, tol: float = 1e-14) -> SymmetricResNet:
    net64 = copy.deepcopy(net).double()
    net64.iterations, net64.tol = 5000, tol
    return net64


def leading_term(net: SymmetricResNet, z: torch.Tensor) -> torch.Tensor:
    """h^2 sum_k J_f(x_k) f(x_k) along the forward trajectory, in float64."""
    net64 = as64(net)
    f = net64.block(0)
    x = z.double()
    total = torch.zeros_like(x)
    with torch.no_grad():
        for _ in range(net64.depth):
            v = f(x)
            _, acc = jvp(f, (x,), (v,))
            total = total + net64.h**2 * acc
            x = x + net64.h * v
    return total


@torch.no_grad()
def block_contraction(net: SymmetricResNet) -> float:
    return float(net.h * net.block(0).lipschitz_bound())


def local_contraction(net: SymmetricResNet, z: torch.Tensor) -> float:
    """h max over ``z`` of ||J_f(z)||_2 (exact 2 x 2 norms, float64)."""
    f = as64(net).block(0)
    jac = vmap(jacrev(lambda v: f(v[None])[0]))(z.double())
    return float(net.h * torch.linalg.matrix_norm(jac.detach(), ord=2).max())


def cells(specs: list[str]) -> None:
    print(
        "| cell | acc | euler (domain) | repeats | euler fp64 | leading term | rms grid "
        "| rms penalised | near | far | fixed point fp32 | fixed point fp64 | h Lip(f) "
        "| h |J_f| grid | s |"
    )
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for spec in specs:
        variant, dataset, seed_s = spec.split(":")
        seed = int(seed_s)
        t0 = time.perf_counter()
        net, sets, metrics = trained(variant, dataset, seed)
        seconds = time.perf_counter() - t0
        grid, train = sets["grid"], sets["train"]
        euler = round_trip(net, grid, "euler")
        pub = published(variant, dataset, seed)
        same = all(
            float(metrics[k]) == float(pub[f"metric.{k}"])
            for k in ("test_accuracy", "inverse_error_domain", "inverse_error_test")
        )
        assert float(euler.abs().max()) == float(metrics["inverse_error_domain"])
        e64 = round_trip(as64(net), grid.double(), "euler")
        lead = leading_term(net, grid)
        norm = euler.norm(dim=1)
        # D's loss draws uniform points over the box: the grid's distribution
        pen = round_trip(net, train, "euler").norm(dim=1) if variant == "data" else norm
        near = torch.cdist(grid, train).min(dim=1).values <= 0.1
        err = euler.abs().max(dim=1).values
        fp32 = round_trip(net, grid, "fixed_point").abs().max()
        fp64 = round_trip(as64(net), grid.double(), "fixed_point").abs().max()
        print(
            f"| {'C' if variant == 'data' else 'D'} {dataset} {seed} "
            f"| {float(metrics['test_accuracy']):.3f} | {float(euler.abs().max()):.2e} "
            f"| {'yes' if same else 'NO'} | {float(e64.abs().max()):.2e} "
            f"| {float(lead.abs().max()):.2e} "
            f"| {float(norm.pow(2).mean().sqrt()):.1e} | {float(pen.pow(2).mean().sqrt()):.1e} "
            f"| {float(err[near].max()):.1e} | {float(err[~near].max()):.1e} "
            f"| {float(fp32):.1e} | {float(fp64):.1e} | {block_contraction(net):.2f} "
            f"| {local_contraction(net, grid):.2f} | {seconds:.0f} |",
            flush=True,
        )


CAUSES = {
    "published": ("published (weight 1e4, 1000 steps)", {}),
    "w0": ("weight 0 (no invertibility loss)", {"weight": 0.0}),
    "w1e3": ("weight 1e3", {"weight": 1e3}),
    "w1e5": ("weight 1e5", {"weight": 1e5}),
    "fixed": ("D: 300 domain points drawn once", {"points": "fixed"}),
    "many": ("D: 1681 domain points per step", {"points": "many"}),
    "steps3000": ("3000 steps (protocol)", {"epochs": 3000}),
}


def causes(args: list[str]) -> None:
    names = list(CAUSES)
    if args and args[0].startswith("--changes="):
        names = args[0].split("=", 1)[1].split(",")
        args = args[1:]
    print("| cell | change | acc | euler (domain) | fixed point (domain) | h Lip(f) | s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for spec in args or ALL:
        variant, dataset, seed_s = spec.split(":")
        for label, change in (CAUSES[name] for name in names):
            if label.startswith("D:") and variant != "domain":
                continue
            t0 = time.perf_counter()
            net, sets, metrics = trained(variant, dataset, int(seed_s), **change)
            seconds = time.perf_counter() - t0
            grid = sets["grid"]
            euler = round_trip(net, grid, "euler").abs().max()
            fixed = round_trip(net, grid, "fixed_point").abs().max()
            bad = "" if math.isfinite(float(fixed)) else " (diverged)"
            print(
                f"| {'C' if variant == 'data' else 'D'} {dataset} {seed_s} | {label} "
                f"| {float(metrics['test_accuracy']):.3f} | {float(euler):.1e} "
                f"| {float(fixed):.1e}{bad} | {block_contraction(net):.2f} | {seconds:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    torch.set_num_threads(1)
    mode, rest = sys.argv[1], sys.argv[2:]
    if mode == "cells":
        cells(rest or ALL)
    else:
        causes(rest)
