"""Per-call options: ``odeint(..., step_size=0.1)`` overrides the solver's own parameters."""

from __future__ import annotations

from typing import Any

from bench import ParamError, Solver


def call_options(solver: Solver, options: dict[str, Any]) -> dict[str, Any]:
    """The solver's parameters with ``options`` laid over them, validated like suite values.

    Unknown options raise ``ValueError`` naming the option and the allowed ones.
    """
    unknown = sorted(set(options) - set(solver.params))
    if unknown:
        allowed = ", ".join(sorted(solver.params)) or "none"
        raise ValueError(
            f"{solver.name}.odeint got unknown option {unknown[0]!r}; allowed options: {allowed}"
        )
    try:
        return solver.resolve_params({**solver.values, **options})
    except ParamError as exc:
        raise ValueError(f"bad odeint option: {exc}") from None
