"""Neural ODE (Chen 2018): dx/dt = f(x) integrated by one of the suite's solver plugins.

The solver is a nested plugin: ``architecture.solver`` names any solver the suite's
registry holds (``rk4``, ``dopri5``, ``torchdiffeq.rk4``, a suite's own), and
``architecture.solver.<name>`` sets its parameters (``architecture.solver.rtol``),
both checked when the suite is validated and both sweepable. Gradients come by
backpropagating through its steps (``adjoint: false``) or by the adjoint method
(``adjoint: true``; memory flat in the number of steps). ``depth`` is the number of
fixed steps over the time ``time`` (h = time/depth) unless the suite sets the solver's
``step_size`` itself; adaptive solvers choose their own steps and ``depth`` only sets
the trajectory's output times. The inverse integrates from ``time`` back to 0 (exact up
to the solver's error).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from bench import Param, Plugin, SkipCell, Solver
from plugins.architectures.base import FlowArchitecture
from plugins.architectures.common import Block, FlowNet, common_params


class _Dynamics(torch.nn.Module):
    def __init__(self, block: Block) -> None:
        super().__init__()
        self.block = block
        self.evaluations = 0

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        self.evaluations += 1
        return self.block(x)


class NeuralODEModule(FlowNet):
    invertible = "approximate"

    def __init__(
        self,
        width: int,
        depth: int,
        hidden: int,
        activation: str,
        time: float,
        solver: Solver,
        adjoint: bool,
        solver_options: dict[str, Any],
    ) -> None:
        super().__init__(width, depth)
        self.time = time
        self.solver = solver
        self.adjoint = adjoint
        self.solver_options = solver_options  # its step, unless the suite set the solver's
        self.func = _Dynamics(Block(width, hidden, width, activation))

    def _options(self) -> dict[str, Any]:
        options = dict(self.solver_options)
        if self.adjoint:
            options["adjoint"] = True
        return options

    def _solve(self, x: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        return self.solver.odeint(self.func, x, times, **self._options())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._solve(x, torch.tensor([0.0, self.time]))[-1]

    def flow(self, x: torch.Tensor) -> torch.Tensor:
        # direct backprop through the steps: the adjoint's backward is not differentiable
        # again, and Jacobian-vector products need that
        adjoint, self.adjoint = self.adjoint, False
        try:
            return self(x)
        finally:
            self.adjoint = adjoint

    def trajectory(self, x: torch.Tensor) -> torch.Tensor:
        return self._solve(x, torch.linspace(0.0, self.time, self.depth + 1))

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return self._solve(y, torch.tensor([self.time, 0.0]))[-1]

    @torch.no_grad()
    def lipschitz_bound(self) -> float:
        # Gronwall: the flow over time T is exp(T Lip f)-Lipschitz; an explicit RK step
        # with non-negative weights (Euler, RK4) is (1 + hL + ... ) <= exp(hL)-Lipschitz
        return math.exp(self.time * float(self.func.block.lipschitz_bound()))


class NeuralODE(FlowArchitecture):
    """Neural ODE: dx/dt = f(x) by a solver plugin, direct or adjoint backprop (Chen 2018)."""

    name = "node"
    params = {
        **{k: v for k, v in common_params().items() if k != "step"},
        "time": Param(1.0, low=0.0, low_open=True, doc="integration time T"),
        "solver": Param("rk4", plugin=Solver, doc="the solver plugin integrating the flow"),
        "adjoint": Param(False, doc="gradients by the adjoint method instead of backprop"),
    }
    invertible = "approximate"

    @classmethod
    def nested_settings(
        cls, head: str, inner: type[Plugin], resolved: dict[str, Any]
    ) -> dict[str, Any]:
        # a solver with a step (a fixed-step one must have it) steps time/depth unless
        # the suite sets its step
        if head == "solver" and issubclass(inner, Solver) and inner.steps_by_size():
            return {"step_size": resolved["time"] / resolved["depth"]}
        return {}

    def build(self, **kwargs: Any) -> NeuralODEModule:
        v = self.values
        solver = v["solver"]
        if not isinstance(solver, Solver):
            raise TypeError(
                f"node's solver is {solver!r}, a name: a Neural ODE built outside the harness "
                "takes a Solver instance (node(solver=RK4())), or build it with "
                "bench.testing.build_plugin"
            )
        if v["adjoint"] and not solver.supports_adjoint:
            raise SkipCell(f"solver {solver.name} has no adjoint mode")
        return NeuralODEModule(
            v["width"], v["depth"], v["hidden"], v["activation"], v["time"], solver, v["adjoint"],
            self.nested_options("solver"),
        )  # fmt: skip
