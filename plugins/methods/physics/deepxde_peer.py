"""``deepxde.pinn``: DeepXDE's PINN (torch backend) on the task's problem, as a peer.

DeepXDE is the library a researcher would otherwise use for a PINN. The defaults are
its example ``examples/pinn_forward/Burgers.py``: tanh 3 x 20, Glorot normal, 2540
domain points (its default Hammersley sampling), Adam at 1e-3 for 15,000 steps, then
L-BFGS (DeepXDE's torch L-BFGS, up to 15,000 iterations). The initial and boundary
conditions are given as the task's constraint points (``PointSetBC``; the example's
160 initial + 80 boundary points is ``n_data = 240``), so it sees the same data a
``pinn`` cell sees and is scored on the same grid against the same reference.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import torch

from bench import CellContext, Param, SkipCell
from plugins.methods.physics.base import PhysicsMethod
from plugins.methods.physics.problem import PhysicsProblem


class _DeepXDESolution:
    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        points = np.stack([x.double().numpy(), t.double().numpy()], axis=1)
        return torch.as_tensor(self.model.predict(points)[:, 0], dtype=torch.float64)


class DeepXDEPINN(PhysicsMethod):
    """DeepXDE's PINN (its Burgers example's settings), optional peer of ``pinn``."""

    name = "deepxde.pinn"
    requires = ("deepxde",)
    params = {
        "depth": Param(3, doc="hidden tanh layers (DeepXDE's example: 3)", low=1),
        "width": Param(20, doc="units per hidden layer (example: 20)", low=1),
        "n_data": Param(240, doc="constraint points as PointSetBC (example: 160 + 80)", low=1),
        "num_domain": Param(2540, doc="residual points (example: 2540)", low=1),
        "adam_steps": Param(15000, doc="Adam steps (example: 15000)", low=0),
        "lr": Param(1e-3, doc="Adam learning rate (example: 1e-3)", low=0.0, low_open=True),
        "lbfgs_iterations": Param(15000, doc="L-BFGS iterations (DeepXDE's maxiter)", low=0),
        "time_limit": Param(0.0, doc="stop training after this many seconds (0: none)", low=0.0),
        "monitor_every": Param(1000, doc="record the task's error every N steps (0: never)", low=0),
    }

    def solve(self, problem: PhysicsProblem, ctx: CellContext) -> _DeepXDESolution:
        os.environ.setdefault("DDE_BACKEND", "pytorch")
        import deepxde as dde

        if dde.backend.backend_name != "pytorch":
            raise SkipCell(f"deepxde runs on {dde.backend.backend_name}, this peer needs pytorch")
        v = self.values
        dde.config.set_random_seed(ctx.seed)
        rng = np.random.default_rng(ctx.seed)
        pool = problem.constraints
        pick = np.sort(rng.choice(len(pool), size=min(v["n_data"], len(pool)), replace=False))
        points = np.stack([pool.x.numpy()[pick], pool.t.numpy()[pick]], axis=1)
        values = pool.u.numpy()[pick, None]
        nu = problem.nu

        def pde(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            dy_x = dde.grad.jacobian(y, x, i=0, j=0)
            dy_t = dde.grad.jacobian(y, x, i=0, j=1)
            dy_xx = dde.grad.hessian(y, x, i=0, j=0)
            return dy_t + y * dy_x - nu * dy_xx

        geom = dde.geometry.GeometryXTime(
            dde.geometry.Interval(*problem.x_range), dde.geometry.TimeDomain(*problem.t_range)
        )
        bc = dde.icbc.PointSetBC(points, values)
        data = dde.data.TimePDE(geom, pde, [bc], num_domain=v["num_domain"], num_boundary=0)
        net = dde.nn.FNN([2] + [v["width"]] * v["depth"] + [1], "tanh", "Glorot normal")
        model = dde.Model(data, net)
        ctx.metric("parameters", sum(p.numel() for p in net.parameters()))
        ctx.metric("data_points", len(pick))
        ctx.metric("collocation_points", v["num_domain"])
        solution = _DeepXDESolution(model)
        recorder = _recorder(dde, ctx, problem, solution, v["monitor_every"], v["time_limit"])
        # the task's budget, loss_evaluations: DeepXDE counts L-BFGS iterations, not the
        # evaluations its line search makes, so the training forwards are counted here
        # (a training-mode forward with trainable parameters: its loss history and test
        # losses run with them frozen, predictions in evaluation mode)
        evaluations = [0]

        def count(module: torch.nn.Module, _: Any) -> None:
            if module.training and any(p.requires_grad for p in module.parameters()):
                evaluations[0] += 1

        hook = net.register_forward_pre_hook(count)
        with ctx.memory("train"):
            if v["adam_steps"]:
                model.compile("adam", lr=v["lr"], verbose=0)
                # DeepXDE's default display_every (1000): its loss history, at its cost
                model.train(iterations=v["adam_steps"], callbacks=[recorder], verbose=0)
            if v["lbfgs_iterations"] and not recorder.over_time():
                dde.optimizers.config.set_LBFGS_options(maxiter=v["lbfgs_iterations"])
                model.compile("L-BFGS", verbose=0)
                model.train(callbacks=[recorder], verbose=0)
        recorder.clock_stop()
        history = model.losshistory
        for step, losses in zip(history.steps, history.loss_train):
            ctx.curve("loss", int(step), float(np.sum(losses)))  # no clock: DeepXDE's log
        if history.loss_train:
            ctx.metric("final_loss", float(np.sum(history.loss_train[-1])))
        ctx.add_time("train", recorder.train_seconds)
        hook.remove()
        ctx.metric("steps", recorder.steps)
        ctx.metric("loss_evaluations", evaluations[0])
        ctx.metric("seconds_per_evaluation", recorder.train_seconds / max(recorder.steps, 1))
        ctx.metric("stopped_by_time_limit", float(recorder.over_time()))
        return solution


def _recorder(
    dde: Any,
    ctx: CellContext,
    problem: PhysicsProblem,
    solution: _DeepXDESolution,
    monitor_every: int,
    time_limit: float,
) -> Any:
    """A DeepXDE callback: the task's error every ``monitor_every`` steps (its cost left
    out of the training time) and the time limit."""

    class Recorder(dde.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.steps = 0
            self._monitored = 0
            self.train_seconds = 0.0
            self._start: float | None = None

        def _now(self) -> float:
            extra = 0.0 if self._start is None else time.perf_counter() - self._start
            return self.train_seconds + extra

        def clock_stop(self) -> None:
            if self._start is not None:
                self.train_seconds += time.perf_counter() - self._start
                self._start = None

        def over_time(self) -> bool:
            return time_limit > 0 and self._now() >= time_limit

        def on_train_begin(self) -> None:
            self._start = time.perf_counter()

        def on_train_end(self) -> None:
            self.clock_stop()

        def on_epoch_end(self) -> None:
            # train_state.step counts Adam steps and L-BFGS iterations alike (an L-BFGS
            # "epoch" is a chunk of up to 1000 iterations)
            step = int(self.model.train_state.step)
            self.steps = step
            due = monitor_every and step // monitor_every > self._monitored
            if problem.monitor is not None and due:
                self._monitored = step // monitor_every
                self.clock_stop()
                ctx.curve("error", step, problem.monitor(solution), self.train_seconds)
                self._start = time.perf_counter()
            if self.over_time():
                self.model.stop_training = True

    return Recorder()
