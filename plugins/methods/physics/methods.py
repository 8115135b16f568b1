"""``supervised``, ``pinn`` and ``diffphys``: three ways to learn a Burgers solution."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from bench import CellContext, Param, SkipCell
from plugins.methods.physics.base import PhysicsMethod
from plugins.methods.physics.derivatives import mlp_jet
from plugins.methods.physics.problem import (
    GridSolution,
    NetworkSolution,
    PhysicsProblem,
)
from plugins.methods.physics.solver import simulate, unstable_diffusion
from plugins.methods.physics.training import (
    FIRST_ORDER,
    fit,
    latin_hypercube,
    saved_tensor_bytes,
    tanh_mlp,
)

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _network_params() -> dict[str, Param]:
    return {
        "depth": Param(8, doc="hidden tanh layers (Raissi: 8)", low=1),
        "width": Param(20, doc="units per hidden layer (Raissi: 20)", low=1),
        "optimizer": Param(
            "adam",
            choices=FIRST_ORDER,
            doc="first stage: adam (torch's defaults) or gd (plain gradient descent, "
            "torch.optim.SGD without momentum: the DP book's PINN)",
        ),
        "adam_steps": Param(
            1000,
            doc="steps of the first-stage optimizer (Adam, or gd) before L-BFGS (0: L-BFGS only)",
            low=0,
        ),
        "lr": Param(
            1e-3, doc="learning rate of the first stage (Adam or gd)", low=0.0, low_open=True
        ),
        "lbfgs_iterations": Param(
            50000, doc="most L-BFGS iterations (Raissi's maxiter: 50000)", low=0
        ),
        "history": Param(50, doc="L-BFGS history size (Raissi's maxcor: 50)", low=1),
        "time_limit": Param(
            0.0, doc="stop training after this many seconds (0: no limit)", low=0.0
        ),
        "dtype": Param("float32", choices=tuple(DTYPES), doc="network precision"),
        "monitor_every": Param(
            500,
            doc="record the task's error every this many loss evaluations (an Adam step is "
            "one, an L-BFGS iteration one or more with its line search; 0: never)",
            low=0,
        ),
    }


class _NetworkMethod(PhysicsMethod):
    def _setup(
        self, problem: PhysicsProblem, ctx: CellContext
    ) -> tuple[NetworkSolution, torch.dtype]:
        v = self.values
        dtype = DTYPES[v["dtype"]]
        net = tanh_mlp(v["depth"], v["width"], dtype).to(ctx.device)
        box = torch.tensor(
            [[problem.x_range[0], problem.t_range[0]], [problem.x_range[1], problem.t_range[1]]],
            dtype=dtype,
            device=ctx.device,
        )
        ctx.metric("parameters", sum(p.numel() for p in net.parameters()))
        return NetworkSolution(net, box[0], box[1]), dtype

    def _train(
        self,
        solution: NetworkSolution,
        loss_fn: Any,
        problem: PhysicsProblem,
        ctx: CellContext,
    ) -> None:
        v = self.values
        # what one loss evaluation makes autograd keep (the PINN's second derivatives)
        ctx.metric("graph_bytes", saved_tensor_bytes(lambda: loss_fn()[0]))
        monitor = None
        if problem.monitor is not None:
            monitor = lambda: problem.monitor(solution)  # noqa: E731
        with ctx.memory("train"):
            result = fit(
                list(solution.net.parameters()),
                loss_fn,
                ctx,
                adam_steps=v["adam_steps"],
                lr=v["lr"],
                optimizer=v["optimizer"],
                lbfgs_iterations=v["lbfgs_iterations"],
                history=v["history"],
                time_limit=v["time_limit"],
                monitor=monitor,
                monitor_every=v["monitor_every"],
            )
        ctx.add_time("train", result.seconds)
        ctx.metric("adam_steps", result.adam_steps)
        ctx.metric("lbfgs_iterations", result.lbfgs_iterations)
        ctx.metric("loss_evaluations", result.evaluations)
        ctx.metric("seconds_per_evaluation", result.seconds / max(result.evaluations, 1))
        ctx.metric("final_loss", result.loss)
        ctx.metric("stopped_by_time_limit", float(result.stopped == "time_limit"))
        # L-BFGS ended before its budget: a loss change or step below machine epsilon
        # (float32 losses repeat exactly once progress is that small) or a failed search
        ctx.metric("stopped_by_tolerance", float(result.stopped == "converged"))


class Supervised(_NetworkMethod):
    """MLP fitted to samples of u (no physics): Adam then L-BFGS on the data MSE."""

    name = "supervised"
    params = {
        **_network_params(),
        "n_data": Param(100, doc="samples of u to fit (drawn from the task's pool)", low=1),
        "source": Param(
            "field",
            choices=("field", "constraints"),
            doc="field: samples anywhere in the domain; constraints: the PINN's data",
        ),
    }

    def reads_field(self) -> bool:
        return self.values["source"] == "field"

    def solve(self, problem: PhysicsProblem, ctx: CellContext) -> NetworkSolution:
        v = self.values
        pool = problem.field if self.reads_field() else problem.constraints
        if pool is None:
            raise SkipCell(f"{problem.__class__.__name__} of this task has no field samples")
        solution, dtype = self._setup(problem, ctx)
        data = pool.draw(v["n_data"], ctx.seed)
        ctx.metric("data_points", len(data))
        x, t, u = (a.to(device=ctx.device, dtype=dtype) for a in (data.x, data.t, data.u))

        def loss_fn() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            loss = torch.mean((solution(x, t) - u) ** 2)
            return loss, {"data": loss}

        self._train(solution, loss_fn, problem, ctx)
        return solution


def burgers_residual(
    solution: NetworkSolution,
    x: torch.Tensor,
    t: torch.Tensor,
    nu: float,
    derivatives: str = "autograd",
) -> torch.Tensor:
    """u_t + u u_x - nu u_xx of the network at ``(x, t)``, kept in the graph (the loss
    backpropagates through it). ``autograd``: derivatives by ``torch.autograd.grad``
    with ``create_graph`` (Raissi's ``tf.gradients``); ``forward``: propagated through
    the layers by ``mlp_jet`` (same values, less time and memory)."""
    if derivatives == "forward":
        u, u_x, u_t, u_xx = mlp_jet(solution.net, x, t, solution.lb, solution.ub)
        return u_t + u * u_x - nu * u_xx
    x = x.detach().requires_grad_(True)
    t = t.detach().requires_grad_(True)
    u = solution(x, t)
    ones = torch.ones_like(u)
    u_x, u_t = torch.autograd.grad(u, (x, t), ones, create_graph=True)
    u_xx = torch.autograd.grad(u_x, x, torch.ones_like(u_x), create_graph=True)[0]
    return u_t + u * u_x - nu * u_xx


class PINN(_NetworkMethod):
    """Raissi's physics-informed network: data + Burgers residual at LHS points."""

    name = "pinn"
    params = {
        **_network_params(),
        "n_data": Param(100, doc="N_u: constraint points (Raissi: 100)", low=1),
        "n_collocation": Param(
            10000, doc="N_f: Latin-hypercube residual points (Raissi: 10000)", low=1
        ),
        "w_data": Param(1.0, doc="weight of the data MSE in the loss", low=0.0),
        "w_residual": Param(1.0, doc="weight of the residual MSE in the loss", low=0.0),
        "nu": Param(
            0.0,
            doc="viscosity in the residual; 0: the task's (the book's PINN used 0.01/pi)",
            low=0.0,
        ),
        "derivatives": Param(
            "autograd",
            choices=("forward", "autograd"),
            doc="u_x, u_t, u_xx by forward propagation or by nested autograd",
        ),
    }

    def solve(self, problem: PhysicsProblem, ctx: CellContext) -> NetworkSolution:
        v = self.values
        solution, dtype = self._setup(problem, ctx)
        rng = np.random.default_rng(ctx.seed)
        data = problem.constraints.pick(v["n_data"], rng)
        lb = np.array([problem.x_range[0], problem.t_range[0]])
        ub = np.array([problem.x_range[1], problem.t_range[1]])
        xf = latin_hypercube(v["n_collocation"], lb, ub, rng)
        # Raissi's code adds the data points to the collocation points.
        xf = np.concatenate([xf, np.stack([data.x.numpy(), data.t.numpy()], axis=1)])
        ctx.metric("data_points", len(data))
        ctx.metric("collocation_points", len(xf))
        dev = {"device": ctx.device, "dtype": dtype}
        x, t, u = (a.to(**dev) for a in (data.x, data.t, data.u))
        xf_t = torch.as_tensor(xf[:, 0], **dev)
        tf_t = torch.as_tensor(xf[:, 1], **dev)
        w_data, w_res = v["w_data"], v["w_residual"]
        nu = v["nu"] or problem.nu
        ctx.metric("residual_nu", nu)
        derivatives = v["derivatives"]

        def loss_fn() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            data_mse = torch.mean((solution(x, t) - u) ** 2)
            res = burgers_residual(solution, xf_t, tf_t, nu, derivatives)
            res_mse = torch.mean(res**2)
            return w_data * data_mse + w_res * res_mse, {"data": data_mse, "residual": res_mse}

        self._train(solution, loss_fn, problem, ctx)
        return solution


class DiffPhys(PhysicsMethod):
    """Differentiable physics: the initial state optimised through the unrolled solver."""

    name = "diffphys"
    needs = "grid"
    params = {
        "iterations": Param(50, doc="gradient-descent steps", low=1),
        "lr": Param(5.0, doc="learning rate (the book's: 5)", low=0.0, low_open=True),
        "substeps": Param(1, doc="explicit diffusion substeps per step", low=1),
        "checkpoint": Param(
            False, doc="recompute each step in the backward pass (torch.utils.checkpoint)"
        ),
        "monitor_every": Param(10, doc="record the task's error every N steps (0: never)", low=0),
    }

    def solve(self, problem: PhysicsProblem, ctx: CellContext) -> GridSolution:
        import time

        from torch.utils.checkpoint import checkpoint

        from plugins.methods.physics.solver import burgers_step

        v = self.values
        setup = problem.grid
        if setup is None:
            raise SkipCell("diffphys needs a grid setup (the task gives none)")
        reason = unstable_diffusion(problem.nu, setup.dt, setup.dx, v["substeps"])
        if reason:
            raise SkipCell(reason)
        dev = {"device": ctx.device, "dtype": torch.float64}
        # The book starts from zeros; the unknown is the initial state.
        u0 = torch.zeros(setup.n, **dev, requires_grad=True)
        observed = {k: s.to(**dev) for k, s in setup.observed.items()}
        last = max(observed)
        nu, dt, dx, sub = problem.nu, setup.dt, setup.dx, v["substeps"]

        def step(u: torch.Tensor) -> torch.Tensor:
            return burgers_step(u, nu, dt, dx, sub)

        def loss_of(u: torch.Tensor) -> torch.Tensor:
            loss = u.new_zeros(())
            for k in range(1, last + 1):
                # checkpointing keeps only each step's input and recomputes the rest
                u = checkpoint(step, u, use_reentrant=False) if v["checkpoint"] else step(u)
                if k in observed:
                    loss = loss + torch.mean((u - observed[k]) ** 2)
            return loss

        # what autograd keeps for one unrolled loss: grows with the steps, and
        # checkpointing trades most of it for recomputation
        ctx.metric("graph_bytes", saved_tensor_bytes(lambda: loss_of(u0)))
        train = 0.0
        with ctx.memory("train"):
            for it in range(1, v["iterations"] + 1):
                start = time.perf_counter()
                loss = loss_of(u0)
                (grad,) = torch.autograd.grad(loss, u0)
                with torch.no_grad():
                    u0 -= v["lr"] * grad  # plain gradient descent, as the book
                train += time.perf_counter() - start
                ctx.check_finite("loss", loss)
                ctx.curve("loss", it, loss, train)
                every = v["monitor_every"]
                if problem.monitor is not None and every and it % every == 0:
                    states = simulate(u0.detach(), nu, dt, dx, setup.steps, sub)
                    ctx.curve("error", it, problem.monitor(GridSolution(states, setup)), train)
        ctx.add_time("train", train)
        ctx.metric("seconds_per_evaluation", train / v["iterations"])
        ctx.metric("loss_evaluations", v["iterations"])  # one a plain gradient step
        with torch.no_grad():
            states = simulate(u0.detach(), nu, dt, dx, setup.steps, sub)
            ctx.metric("final_loss", loss_of(u0.detach()))
        ctx.metric("unrolled_steps", last)
        return GridSolution(states, setup)
