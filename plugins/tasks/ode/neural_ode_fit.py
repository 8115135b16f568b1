"""Learn the spiral's dynamics from its trajectory with a Neural ODE (torchdiffeq's ode_demo)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn

from bench import CellContext, Headline, Param, Plugin, SkipCell, Solver, Task
from plugins.tasks.ode import problems
from plugins.tasks.ode.counting import CountingFunc
from plugins.tasks.ode.figures import trajectory_figure
from plugins.tasks.ode.protocol import DTYPES, adjoint_requested, solver_step_problem
from plugins.tasks.ode.reference import cached, scipy_reference

SPIRAL_Y0 = (2.0, 0.0)
SPIRAL_T1 = 25.0


class CubicMLP(nn.Module):
    """ode_demo's ODEFunc: an MLP applied to y**3 (the true dynamics are cubic)."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, 2))
        for layer in self.net:
            if isinstance(layer, nn.Linear):
                nn.init.normal_(layer.weight, mean=0.0, std=0.1)
                nn.init.zeros_(layer.bias)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(y**3)


class NeuralODEFitTask(Task):
    """Fit a Neural ODE to the cubic spiral's trajectory from mini-batches of short windows.

    Each step draws ``batch_size`` windows of ``batch_time`` consecutive samples
    of the true trajectory, integrates the model from each window's first state
    with the cell's solver (``adjoint`` as that solver is set) and takes an Adam
    step on the mean absolute error. The learning rate is cosine-annealed to 0:
    measured on seeds 0 and 1, 300 steps end at a full-trajectory loss of 0.14
    and 0.16 with annealing, 0.65 and 0.76 at a constant 0.01 (from 6.86).

    Metrics: ``initial_loss`` and ``final_loss`` (mean absolute error of the
    whole trajectory integrated from y0), ``nfe_forward`` and ``nfe_backward``
    (per-step means), time ``train`` (the whole loop), ``mem.train`` and the
    curve ``batch_loss`` (per step, with elapsed training time): the loss of one
    training batch of short windows, while ``final_loss`` is that of the whole
    trajectory integrated from y0 — two different losses, named apart.

    Result file: ``trajectory.png``, the fitted trajectory beside the true one.
    """

    name = "ode.neural_ode_fit"
    data_params = ()  # the one spiral trajectory
    headline = Headline(
        quality={"final_loss": "lower"},
        cost="time.train.median",
        curves=("batch_loss",),
        problem=("data_size", "dtype"),
    )
    components = {"solver": "solver"}
    params = {
        "steps": Param(300, low=1, doc="optimiser steps"),
        "lr": Param(
            0.01, low=0.0, low_open=True, doc="initial Adam learning rate (cosine-annealed to 0)"
        ),
        "batch_time": Param(10, low=2, doc="samples per training window"),
        "batch_size": Param(16, low=1, doc="windows per step"),
        "hidden": Param(50, low=1, doc="hidden units of the MLP"),
        "data_size": Param(
            501, low=20, doc="samples of the true trajectory on [0, 25] (501: spacing 0.05)"
        ),
        "dtype": Param("float32", choices=tuple(DTYPES), doc="dtype of data and model"),
    }

    @classmethod
    def validation_data(cls, params: dict[str, Any], select: str) -> str | None:
        return (
            "fits and scores the same spiral trajectory for every seed (a seed changes the "
            "initial weights and the batches)"
        )

    @classmethod
    def check_cell(cls, components: dict[str, type[Plugin]], params: dict[str, Any]) -> str | None:
        # its windows' times are the data's
        return solver_step_problem(components, params, SPIRAL_T1, params["data_size"])

    def run(self, ctx: CellContext) -> None:
        solver: Solver = ctx.components["solver"]
        if adjoint_requested(solver) and not solver.supports_adjoint:
            raise SkipCell(f"{solver.name} has no adjoint mode")
        p = ctx.params
        if p["batch_time"] >= p["data_size"]:
            raise SkipCell(f"batch_time={p['batch_time']} needs data_size > batch_time")
        dtype, device = DTYPES[p["dtype"]], ctx.device
        t_np = np.linspace(0.0, SPIRAL_T1, p["data_size"])
        key = {"problem": "ode.spiral", "t1": SPIRAL_T1, "n_times": p["data_size"],
               "y0": list(SPIRAL_Y0), "method": "DOP853", "tol": 1e-12}  # fmt: skip
        true_np = cached(
            ctx.cache_dir,
            key,
            lambda: scipy_reference(problems.spiral_rhs, np.array(SPIRAL_Y0), t_np),
            code=problems.spiral_rhs,
        )
        t = torch.as_tensor(t_np, dtype=dtype, device=device)
        true_y = torch.as_tensor(true_np, dtype=dtype, device=device)
        torch.manual_seed(ctx.seed)
        generator = torch.Generator().manual_seed(ctx.seed)
        func = CountingFunc(CubicMLP(p["hidden"]).to(device=device, dtype=dtype))
        optimizer = torch.optim.Adam(func.parameters(), lr=p["lr"])
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=p["steps"])

        def full_solve() -> torch.Tensor:
            with torch.no_grad():
                return solver.odeint(func, true_y[0], t)

        def full_loss() -> torch.Tensor:
            return (full_solve() - true_y).abs().mean()

        ctx.metric("initial_loss", full_loss())
        batch_t = t[: p["batch_time"]]
        offsets = torch.arange(p["batch_time"])
        nfe_forward = nfe_backward = 0
        start = time.perf_counter()
        with ctx.memory("train"):
            for step in range(p["steps"]):
                # Data making stays in the loop (as in ode_demo) but is a few index ops.
                s = torch.randint(0, p["data_size"] - p["batch_time"], (p["batch_size"],),
                                  generator=generator)  # fmt: skip
                windows = true_y[(s[None, :] + offsets[:, None]).to(device)]  # (T, B, 2)
                optimizer.zero_grad(set_to_none=True)
                func.take()
                pred = solver.odeint(func, windows[0], batch_t)
                nfe_forward += func.take()
                if not pred.requires_grad:
                    raise SkipCell(f"{solver.name} returns a solution without an autograd graph")
                loss = (pred - windows).abs().mean()
                loss.backward()
                nfe_backward += func.take()
                optimizer.step()
                schedule.step()
                ctx.curve("batch_loss", step, loss.detach(), time.perf_counter() - start)
        ctx.add_time("train", time.perf_counter() - start)
        ctx.metric("nfe_forward", nfe_forward / p["steps"])
        ctx.metric("nfe_backward", nfe_backward / p["steps"])
        fitted = full_solve()
        final = (fitted - true_y).abs().mean()
        ctx.check_finite("final_loss", final)
        ctx.metric("final_loss", final)
        ctx.artifact(
            "trajectory",
            trajectory_figure(
                t_np,
                fitted.cpu().double().numpy(),
                true_np,
                title=f"{self.name} with {solver.name}: fitted from y0 (dashed: truth)",
            ),
        )
