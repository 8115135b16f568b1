"""``classify.toy``: the lecture's 2-D experiments, for any architecture.

Protocol: draw train and test sets (seeded), lift the 2-D points into the
architecture's ``width`` features by zero padding (the augmented flow of Dupont
2019; ``width: 2`` is the flow in the plane itself), run the architecture's flow and
classify its output with one linear layer. Full-batch Adam for ``epochs`` steps on
cross-entropy plus the architecture's own term (``penalty``: the symmetric ResNet's
invertibility loss, a Lipschitz penalty). Then, untimed, on the test points and on
a ``grid`` x ``grid`` grid over the set's box ("the domain"):

- ``test_accuracy``, ``train_accuracy``, ``parameters``; ``time.train``, ``mem.train``;
- ``inverse_error_test`` / ``inverse_error_domain``: max |f^-1(f(z)) - z| (architectures
  with an inverse); ``inverse_error_test_fp64``: the same trained RevNet / i-ResNet in
  float64 (the inverse's own error without float32 round-off);
- ``detj_min`` and ``detj_negative_fraction``: the flow's Jacobian determinant over the
  domain (negative: the flow folds the plane, it cannot be invertible there);
- ``lipschitz_estimate`` (max over the grid of ||J||_2 by power iteration, a lower
  bound) and ``lipschitz_bound`` (from the layers' spectral norms, an upper bound);
- i-ResNet: the fixed-point error of block 0 per iteration (curve ``fixed_point_error``)
  and its rate ``fixed_point_rate`` beside ``coeff``.

Files: ``decision_boundary.png``, ``trajectories.png``, ``detj.png`` (and
``fixed_point.png``), the lecture's figures A-D for any architecture.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import torch
from torch import nn

from bench import CellContext, Headline, Param, Task
from plugins.architectures.base import FlowArchitecture
from plugins.data import toy2d
from plugins.tasks.architectures import figures
from plugins.tasks.architectures.common import build_architecture, count_parameters
from plugins.tasks.architectures.flow import jacobians, power_iteration_lipschitz

#: a cell's test set is drawn with its seed plus this (its training set with its seed)
TEST_SEED_OFFSET = 10_000


def lift(x: torch.Tensor, width: int) -> torch.Tensor:
    """Zero-pad 2-D points to ``width`` features."""
    return nn.functional.pad(x, (0, width - x.shape[1]))


class ClassifyToy(Task):
    """2-D classification (moons, circles, spirals, xor): accuracy, invertibility, det J."""

    name = "classify.toy"
    headline = Headline(
        size="parameters",
        quality={"test_accuracy": "higher", "inverse_error_test": "lower"},
        cost="time.train.median",
        curves=("loss",),
        problem=("dataset", "noise", "n_train", "n_test"),
    )
    components = {"architecture": FlowArchitecture}
    params = {
        "dataset": Param("moons", choices=toy2d.DATASETS, doc="the 2-D data set"),
        "noise": Param(0.1, low=0.0, doc="noise of the data set's generator"),
        "n_train": Param(300, low=4, doc="training points"),
        "n_test": Param(500, low=4, doc="test points"),
        "epochs": Param(500, low=1, doc="full-batch Adam steps"),
        "lr": Param(1e-2, low=0.0, low_open=True, doc="Adam learning rate"),
        "grid": Param(41, low=3, doc="grid points per axis over the domain (metrics, figures)"),
        "figures": Param(True, doc="keep the decision-boundary, trajectory and det J figures"),
    }

    @classmethod
    def data_seeds(cls, params: dict[str, Any], seed: int) -> tuple[int, ...]:
        return (seed, seed + TEST_SEED_OFFSET)  # the training set's, the test set's

    def run(self, ctx: CellContext) -> None:
        p = ctx.params
        arch, net = build_architecture(ctx)
        width = net.width
        dev = ctx.device
        x_tr, y_tr = toy2d.make(p["dataset"], p["n_train"], p["noise"], ctx.seed)
        x_te, y_te = toy2d.make(p["dataset"], p["n_test"], p["noise"], ctx.seed + TEST_SEED_OFFSET)
        grid_np, xs, ys = toy2d.grid(p["dataset"], p["grid"])
        (lx, hx), (ly, hy) = toy2d.domain(p["dataset"])
        low = torch.tensor([lx, ly], device=dev)
        span = torch.tensor([hx - lx, hy - ly], device=dev)
        xtr = lift(torch.from_numpy(x_tr).to(dev), width)
        ytr = torch.from_numpy(y_tr).to(dev)
        xte = lift(torch.from_numpy(x_te).to(dev), width)
        yte = torch.from_numpy(y_te).to(dev)
        grid = lift(torch.from_numpy(grid_np).to(dev), width)

        def sample_domain(n: int) -> torch.Tensor:
            return lift(low + span * torch.rand(n, 2, device=dev), width)

        head = nn.Linear(width, 2).to(dev)
        params = [*net.parameters(), *head.parameters()]
        opt = torch.optim.Adam(params, lr=p["lr"])
        ctx.metric("parameters", count_parameters(net, head))

        def loss_fn() -> tuple[torch.Tensor, torch.Tensor]:
            ce = nn.functional.cross_entropy(head(net(xtr)), ytr)
            return ce, ce + net.penalty(xtr, sample_domain)

        with ctx.memory("train"):
            t0 = time.perf_counter()
            for epoch in range(p["epochs"]):
                opt.zero_grad(set_to_none=True)
                ce, loss = loss_fn()
                loss.backward()
                opt.step()
                if epoch % 10 == 0 or epoch == p["epochs"] - 1:
                    ctx.curve("loss", epoch, loss.detach(), time.perf_counter() - t0)
                    ctx.check_finite("loss", loss.detach())
            seconds = time.perf_counter() - t0
        ctx.add_time("train", seconds)
        ctx.metric("final_loss", loss.detach())
        ctx.metric("final_cross_entropy", ce.detach())

        net.eval()
        with torch.no_grad():
            # an argmax of NaN logits scores 0.5 on two classes: not finite is diverged
            out_tr, out_te = head(net(xtr)), head(net(xte))
            ctx.check_finite("the network's output (in evaluation mode)", out_tr)
            ctx.check_finite("the network's output (in evaluation mode)", out_te)
            ctx.metric("train_accuracy", (out_tr.argmax(1) == ytr).float().mean())
            ctx.metric("test_accuracy", (out_te.argmax(1) == yte).float().mean())
            out_grid = head(net(grid))  # the decision-boundary figure's: checked alike
            ctx.check_finite("the network's output (in evaluation mode)", out_grid)
            prob = torch.softmax(out_grid, dim=1)[:, 1]
            traj = net.trajectory(xte)
            if arch.invertible is not None:
                for name, z in (("test", xte), ("domain", grid)):
                    err = (net.inverse(net(z)) - z).abs().max()
                    ctx.metric(f"inverse_error_{name}", err)
            if arch.invertible in ("exact", "iterative"):
                # the same trained net in float64: separates the inverse's own error from
                # float32 round-off, which the flow's Lipschitz constant amplifies
                net64 = copy.deepcopy(net).double()
                if arch.invertible == "iterative":  # iterate to fp64 precision
                    net64.iterations, net64.tol = 5000, 1e-14
                z64 = xte.double()
                ctx.metric("inverse_error_test_fp64", (net64.inverse(net64(z64)) - z64).abs().max())
        det = torch.linalg.det(jacobians(net.flow, grid).double())
        ctx.metric("detj_min", det.min())
        ctx.metric("detj_max", det.max())
        ctx.metric("detj_negative_fraction", (det < 0).double().mean())
        ctx.metric("lipschitz_estimate", power_iteration_lipschitz(net.flow, grid, 20).max())
        ctx.metric("lipschitz_bound", net.lipschitz_bound())
        errors = None
        if arch.invertible == "iterative":
            with torch.no_grad():
                errors = net.fixed_point_errors(0, net.step(0, xte), iterations=60)
            for n, e in enumerate(errors):
                ctx.curve("fixed_point_error", n, e)
            ratios = [b / a for a, b in zip(errors, errors[1:]) if a > 1e-13 and b > 0]
            if ratios:
                ctx.metric("fixed_point_rate", max(ratios))
            if net.coeff is not None:  # the contraction bound, where the module has one
                ctx.metric("coeff", net.coeff)

        if p["figures"]:
            label = f"{arch.name} on {p['dataset']}"
            shape = (len(ys), len(xs))
            acc = ctx.record.metrics["test_accuracy"]
            ctx.artifact(
                "decision_boundary.png",
                figures.decision_boundary(
                    xs,
                    ys,
                    prob.reshape(shape).cpu().numpy(),
                    x_te,
                    y_te,
                    f"{label}: test accuracy {acc:.3f}",
                ),
            )
            ctx.artifact(
                "trajectories.png",
                figures.trajectories(traj.cpu().numpy(), y_te, f"{label}: states through depth"),
            )
            ctx.artifact(
                "detj.png",
                figures.jacobian_map(
                    xs,
                    ys,
                    det.reshape(shape).cpu().numpy(),
                    f"{label}: det J (min {det.min():.2g})",
                ),
            )
            if errors is not None:
                ctx.artifact(
                    "fixed_point.png",
                    figures.convergence(errors, net.coeff, f"{label}: fixed point of block 0"),
                )
