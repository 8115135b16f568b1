"""Where the float32 inverse error of a trained RevNet / i-ResNet comes from (issue 21).

    python scripts/inverse_roundoff.py revnet:circles:0 iresnet:spirals:0 ...

Trains each ``classify.toy`` cell as ``suites/architectures-toy-inverse.yaml`` does
(1000 epochs, the same seed), keeps the trained network, and compares on the test
points:

- ``measured``: max |f^-1(f(z)) - z| in float32 (the cell's ``inverse_error_test``);
- ``inv64``: the float32 forward output inverted in float64 (i-ResNet: iterated to
  1e-14): what is left is the forward pass's own rounding, which no inverse undoes;
- ``floor``: the first-order round-off floor of float32, computed in float64,
  u * sum_k ||J_{0<-k}(s_k)||_2 ||s_k||_2 (u = 2^-24): every block's output s_k is
  rounded once (forward) with a relative error of u, and the inverse carries that
  perturbation back to the input through the Jacobian of the inverse from block k to
  the input, J_{0<-k} = (J_k ... J_1)^-1. An exact inverse cannot do better than
  the information the forward pass kept, so this is the size of error to expect, of
  either sign, and no tolerance of the inverse can go below it.

The ratio measured / floor tells whether the error is round-off of the trained flow's
conditioning (about 0.1 to 1) or a defect of the inverse (>> 1).
"""

from __future__ import annotations

import copy
import sys
import tempfile

import torch
from torch.func import jacrev, vmap

import plugins.tasks.architectures.toy as toy
from bench import testing

U32 = 2.0**-24


def trained(arch: str, dataset: str, seed: int) -> tuple[torch.nn.Module, torch.Tensor]:
    kept: dict[str, object] = {}
    build = toy.build_architecture

    def keep(ctx, slot="architecture"):
        out = build(ctx, slot)
        kept["net"] = out[1]
        return out

    toy.build_architecture = keep
    try:
        result = testing.run_cell(
            "classify.toy",
            {"architecture": arch},
            {"dataset": dataset, "epochs": 1000, "figures": False},
            seed,
            output=tempfile.mkdtemp(),
        )
    finally:
        toy.build_architecture = build
    p = result.cell.task_params
    x, _ = toy.toy2d.make(dataset, p["n_test"], p["noise"], seed + 10_000)
    net = kept["net"]
    return net, toy.lift(torch.from_numpy(x), net.width), result.metrics  # type: ignore[return-value]


def floor(net: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
    """Per test point: u * sum_k ||J_{0<-k}||_2 ||s_k||_2, in float64."""
    net64 = copy.deepcopy(net).double()
    s = z.double()
    jac = torch.eye(s.shape[1], dtype=torch.float64).expand(len(s), -1, -1)
    total = torch.zeros(len(s), dtype=torch.float64)
    for k in range(net64.depth):
        jk = vmap(jacrev(lambda v, k=k: net64.step(k, v[None])[0]))(s)
        with torch.no_grad():
            s = net64.step(k, s)
        jac = jk @ jac  # J_{k<-0}
        inv_norm = torch.linalg.matrix_norm(torch.linalg.inv(jac), ord=2)
        total = total + inv_norm * s.norm(dim=1)
    return U32 * total


def main(specs: list[str]) -> None:
    torch.set_num_threads(1)
    print("| cell | measured fp32 | fp32 forward, fp64 inverse | floor (first order) "
          "| measured / floor | all fp64 |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|")
    for spec in specs:
        arch, dataset, seed = spec.split(":")
        net, z, metrics = trained(arch, dataset, int(seed))
        net.eval()
        with torch.no_grad():
            measured = (net.inverse(net(z)) - z).abs().max(dim=1).values
            net64 = copy.deepcopy(net).double()
            if hasattr(net64, "tol"):
                net64.iterations, net64.tol = 5000, 1e-14
            inv64 = (net64.inverse(net(z).double()) - z.double()).abs().max()
        bound = floor(net, z).detach()
        print(
            f"| {arch} {dataset} seed {seed} | {float(measured.max()):.1e} | {float(inv64):.1e} "
            f"| {float(bound.max()):.1e} | {float((measured / bound).max()):.2f} "
            f"| {metrics.get('inverse_error_test_fp64', float('nan')):.1e} |",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
