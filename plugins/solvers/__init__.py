"""Built-in ODE solvers: the own Runge-Kutta family and every torchdiffeq method."""

from __future__ import annotations

from bench import Solver, hookimpl
from plugins.solvers.own import OWN_SOLVERS
from plugins.solvers.torchdiffeq_adapter import TORCHDIFFEQ_SOLVERS


@hookimpl
def bench_plugins() -> list[type[Solver]]:
    return [*OWN_SOLVERS, *TORCHDIFFEQ_SOLVERS]
