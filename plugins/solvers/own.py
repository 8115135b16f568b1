"""dynbench's own Runge-Kutta solvers: a tableau and a few lines each.

Output times: every solver here lands exactly on each requested time by
clipping the step that would pass it (no interpolation), so the outputs carry
the method's full order. The price: a fixed step larger than the output spacing
is cut down to that spacing, and an adaptive solver takes one extra (short)
step per output time it would otherwise have stepped over.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch

from bench import Param, Solver
from plugins.solvers import tableau as tb
from plugins.solvers.adaptive import StepControl, integrate_adaptive
from plugins.solvers.adjoint import odeint_adjoint
from plugins.solvers.options import call_options
from plugins.solvers.rk import integrate_fixed

_ADJOINT = Param(
    False,
    doc="gradients by the adjoint method (func must be an nn.Module) instead of backprop",
)


class _Reversed(torch.nn.Module):
    """``g(s, y) = -f(-s, y)``: integrating g over increasing s = -t runs f backwards in time."""

    def __init__(self, func: Callable) -> None:
        super().__init__()
        self.func = func

    def forward(self, s: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return -self.func(-s, y)


class RungeKuttaSolver(Solver):
    """Base of the own solvers: subclasses set ``name``, ``order``, ``tableau`` and ``params``."""

    tableau: ClassVar[tb.ButcherTableau]
    supports_adjoint = True

    @abstractmethod
    def integrator(self, opts: dict[str, Any]) -> Callable:
        """``integrate(func, y0, times)`` for increasing float times, with these options."""

    def odeint(self, func: Callable, y0: torch.Tensor, t: torch.Tensor, **options: Any):
        """Solve at every time in ``t`` (increasing or decreasing); see ``bench.Solver``.

        Decreasing times are solved as increasing ``s = -t`` with ``-func(-s, y)``.
        """
        opts = call_options(self, options)
        t = torch.as_tensor(t).reshape(-1)
        times = [float(x) for x in t.tolist()]
        if not times:
            raise ValueError("t must hold at least one time")
        steps = [b - a for a, b in zip(times[:-1], times[1:])]
        if not (all(d > 0 for d in steps) or all(d < 0 for d in steps)):
            raise ValueError(f"t must be strictly increasing or strictly decreasing, got {times}")
        if steps and steps[0] < 0:
            func, t, times = _Reversed(func), -t, [-x for x in times]
        integrate = self.integrator(opts)
        if opts["adjoint"]:
            return odeint_adjoint(integrate, func, y0, t)
        return integrate(func, y0, times)


class FixedStepSolver(RungeKuttaSolver):
    """Base of the fixed-step own solvers."""

    lands_on_outputs = True

    params = {
        "step_size": Param(
            0.05,
            low=0.0,
            low_open=True,
            doc="step; the last step before each output time is clipped to land on it",
        ),
        "adjoint": _ADJOINT,
    }

    def integrator(self, opts: dict[str, Any]) -> Callable:
        tableau, step_size = self.tableau, opts["step_size"]

        def integrate(func: Callable, y0: torch.Tensor, times: Sequence[float]) -> torch.Tensor:
            return integrate_fixed(func, y0, times, tableau, step_size)

        return integrate


class AdaptiveSolver(RungeKuttaSolver):
    """Base of the adaptive own solvers (embedded pairs with error control)."""

    adaptive = True
    params = {
        "rtol": Param(1e-7, low=0.0, doc="relative tolerance (torchdiffeq's default)"),
        "atol": Param(1e-9, low=0.0, doc="absolute tolerance (torchdiffeq's default)"),
        "safety": Param(
            0.9, low=0.0, low_open=True, high=1.0, doc="safety factor on the proposed step"
        ),
        "min_factor": Param(
            0.2, low=0.0, low_open=True, high=1.0, doc="smallest step shrink per step"
        ),
        "max_factor": Param(10.0, low=1.0, doc="largest step growth per step"),
        "max_steps": Param(100_000, low=1, doc="attempted steps before giving up with an error"),
        "first_step": Param(
            None, type=float, low=0.0, low_open=True, doc="first step; null selects it (Hairer)"
        ),
        "adjoint": _ADJOINT,
    }

    def integrator(self, opts: dict[str, Any]) -> Callable:
        tableau = self.tableau
        control = StepControl(
            rtol=opts["rtol"],
            atol=opts["atol"],
            safety=opts["safety"],
            min_factor=opts["min_factor"],
            max_factor=opts["max_factor"],
            max_steps=opts["max_steps"],
            first_step=opts["first_step"],
        )

        def integrate(func: Callable, y0: torch.Tensor, times: Sequence[float]) -> torch.Tensor:
            return integrate_adaptive(func, y0, times, tableau, control)

        return integrate


class EulerSolver(FixedStepSolver):
    """Forward Euler, order 1, fixed step."""

    name = "euler"
    order = 1
    tableau = tb.EULER


class MidpointSolver(FixedStepSolver):
    """Explicit midpoint rule, order 2, fixed step."""

    name = "midpoint"
    order = 2
    tableau = tb.MIDPOINT


class HeunSolver(FixedStepSolver):
    """Heun's method (explicit trapezoidal rule), order 2, fixed step."""

    name = "heun"
    order = 2
    tableau = tb.HEUN


class RK4Solver(FixedStepSolver):
    """Classic fourth-order Runge-Kutta (Kutta 1901), fixed step."""

    name = "rk4"
    order = 4
    tableau = tb.RK4


class Bosh3Solver(AdaptiveSolver):
    """Bogacki-Shampine 3(2), adaptive step, FSAL."""

    name = "bosh3"
    order = 3
    tableau = tb.BOSH3


class Dopri5Solver(AdaptiveSolver):
    """Dormand-Prince 5(4), adaptive step, FSAL."""

    name = "dopri5"
    order = 5
    tableau = tb.DOPRI5


OWN_SOLVERS: list[type[Solver]] = [
    EulerSolver,
    MidpointSolver,
    HeunSolver,
    RK4Solver,
    Bosh3Solver,
    Dopri5Solver,
]
