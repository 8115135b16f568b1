"""One explicit Runge-Kutta step from a tableau, and the fixed-step integrator."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from plugins.solvers.tableau import ButcherTableau

Func = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# An interval within this fraction of a whole number of steps takes that number of
# steps (each up to 0.1% longer) rather than one more sliver step: float32 output
# times near t = 25 are rounded by ~2e-6, 4e-5 of a 0.05 step, and float64 ones
# give (0.3 - 0.0) / 0.1 = 2.9999999999999996.
_SLIVER = 1e-3


def as_time(t: float, like: torch.Tensor) -> torch.Tensor:
    """A 0-d time tensor of ``like``'s dtype and device, as torchdiffeq passes to func."""
    return torch.tensor(t, dtype=like.dtype, device=like.device)


def _combine(
    y: torch.Tensor, h: float, coeffs: Sequence[float], k: list[torch.Tensor]
) -> torch.Tensor:
    """``y + h * sum(coeffs[j] * k[j])``, skipping zero coefficients."""
    acc = None
    for coeff, kj in zip(coeffs, k):
        if coeff != 0.0:
            term = coeff * kj
            acc = term if acc is None else acc + term
    return y if acc is None else y + h * acc


def rk_step(
    func: Func,
    t: float,
    y: torch.Tensor,
    h: float,
    tableau: ButcherTableau,
    f0: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Advance ``y`` from ``t`` by ``h``.

    ``f0`` is ``func(t, y)`` when the caller already has it (FSAL). Returns the
    new state, the embedded error estimate ``y1 - y1_embedded`` (None without
    embedded weights) and ``func(t + h, y1)`` when the method is FSAL (else None).
    Function evaluations: ``stages`` (``stages - 1`` when ``f0`` is given).
    """
    k = [func(as_time(t, y), y) if f0 is None else f0]
    for i, row in enumerate(tableau.a):
        y_stage = _combine(y, h, row, k)
        k.append(func(as_time(t + tableau.c[i + 1] * h, y), y_stage))
    y1 = _combine(y, h, tableau.b, k)
    err = None
    if tableau.b_embedded is not None:
        diff = [bi - ei for bi, ei in zip(tableau.b, tableau.b_embedded)]
        err = _combine(torch.zeros_like(y), h, diff, k)
    f1 = k[-1] if tableau.fsal else None
    return y1, err, f1


def steps_between(t0: float, t1: float, step_size: float) -> list[float]:
    """Step start times from ``t0`` in steps of ``step_size``; the last step ends exactly at ``t1``.

    Returns the grid ``[t0, t0 + h, ..., t1]`` (the same points as torchdiffeq's
    ``arange(n) * h + t0`` grid with its last point set to ``t1``).
    """
    n = max(1, math.ceil((t1 - t0) / step_size - _SLIVER))
    return [t0 + i * step_size for i in range(n)] + [t1]


def integrate_fixed(
    func: Func, y0: torch.Tensor, t: Sequence[float], tableau: ButcherTableau, step_size: float
) -> torch.Tensor:
    """Fixed steps of ``step_size`` between consecutive output times ``t`` (increasing).

    Each output time is hit exactly: the last step before ``t[i]`` is clipped to
    land on it (no interpolation), so every output carries the method's full order.
    """
    ys = [y0]
    y = y0
    for t_start, t_end in zip(t[:-1], t[1:]):
        grid = steps_between(t_start, t_end, step_size)
        for ta, tb in zip(grid[:-1], grid[1:]):
            y, _, _ = rk_step(func, ta, y, tb - ta, tableau)
        ys.append(y)
    return torch.stack(ys)
