"""Neural ODE (Chen 2018): dx/dt = f(x) integrated by one of the suite's solver plugins.

The solver is named by the ``solver`` parameter (any registered solver: ``rk4``,
``dopri5``, ``torchdiffeq.rk4`` ...; checked when the suite is validated) and
gradients come by backpropagating through its steps (``adjoint: false``) or by the
adjoint method (``adjoint: true``; memory flat in the number of steps). ``depth`` is
the number of fixed steps over the time ``time`` (h = time/depth); adaptive solvers
choose their own steps and ``depth`` only sets the trajectory's output times. The
inverse integrates from ``time`` back to 0 (exact up to the solver's error).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch

from bench import Architecture, Param, Registry, SkipCell, Solver, get_plugin_manager
from plugins.architectures.common import Block, FlowNet, common_params


@functools.lru_cache(maxsize=1)
def _solvers() -> Registry:
    return Registry(get_plugin_manager())


def _known_solver(name: str) -> str | None:
    registry = _solvers()
    if not registry.has("solver", name):
        known = ", ".join(registry.names("solver"))
        return f"unknown solver {name!r} (available: {known})"
    return None


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
    ) -> None:
        super().__init__(width, depth)
        self.time = time
        self.solver = solver
        self.adjoint = adjoint
        self.func = _Dynamics(Block(width, hidden, width, activation))

    def _options(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if "step_size" in self.solver.params:
            options["step_size"] = self.time / self.depth
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


class NeuralODE(Architecture):
    """Neural ODE: dx/dt = f(x) by a solver plugin, direct or adjoint backprop (Chen 2018)."""

    name = "node"
    params = {
        **{k: v for k, v in common_params().items() if k != "step"},
        "time": Param(1.0, low=0.0, low_open=True, doc="integration time T"),
        "solver": Param("rk4", check=_known_solver, doc="a registered solver plugin"),
        "adjoint": Param(False, doc="gradients by the adjoint method instead of backprop"),
    }
    invertible = "approximate"

    def build(self, **kwargs: Any) -> NeuralODEModule:
        v = self.values
        solver_cls = _solvers().get("solver", v["solver"])
        if v["adjoint"] and not solver_cls.supports_adjoint:
            raise SkipCell(f"solver {v['solver']} has no adjoint mode")
        missing = solver_cls.missing_requirement()
        if missing:
            raise SkipCell(missing)
        solver = solver_cls()
        return NeuralODEModule(
            v["width"], v["depth"], v["hidden"], v["activation"], v["time"], solver, v["adjoint"]
        )
