"""Adaptive step-size control for embedded Runge-Kutta pairs (Hairer, Norsett & Wanner, II.4)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from plugins.solvers.rk import Func, as_time, rk_step
from plugins.solvers.tableau import ButcherTableau


class MaxStepsExceeded(RuntimeError):
    """An adaptive integrator (own, or torchdiffeq's, which signals it with an
    AssertionError) took ``max_steps`` steps without reaching the end time."""


@dataclass(frozen=True)
class StepControl:
    """Tolerances and the step-size controller's constants.

    ``safety`` 0.9 and the factor bounds [0.2, 10] are Hairer's (and torchdiffeq's)
    defaults: a step is shrunk at most 5x after a rejection and grown at most 10x.
    """

    rtol: float
    atol: float
    safety: float = 0.9
    min_factor: float = 0.2
    max_factor: float = 10.0
    max_steps: int = 100_000
    first_step: float | None = None


def error_ratio(
    err: torch.Tensor, y0: torch.Tensor, y1: torch.Tensor, rtol: float, atol: float
) -> float:
    """RMS of ``err / (atol + rtol * max(|y0|, |y1|))``; a step is accepted when <= 1."""
    # Step control is not differentiated through: the step sizes are data.
    err, y0, y1 = err.detach(), y0.detach(), y1.detach()
    scale = atol + rtol * torch.maximum(y0.abs(), y1.abs())
    return float(torch.sqrt(torch.mean((err / scale) ** 2)))


def _rms(x: torch.Tensor) -> float:
    return float(torch.sqrt(torch.mean(x.detach() ** 2)))


def initial_step(
    func: Func, t0: float, y0: torch.Tensor, f0: torch.Tensor, order: int, rtol: float, atol: float
) -> float:
    """Hairer's starting step (II.4, "Starting step size"): one extra function evaluation."""
    scale = atol + rtol * y0.abs()
    d0, d1 = _rms(y0 / scale), _rms(f0 / scale)
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    f1 = func(as_time(t0 + h0, y0), y0 + h0 * f0)
    d2 = _rms((f1 - f0) / scale) / h0
    if max(d1, d2) <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** (1.0 / (order + 1))
    return min(100 * h0, h1)


def integrate_adaptive(
    func: Func,
    y0: torch.Tensor,
    t: Sequence[float],
    tableau: ButcherTableau,
    control: StepControl,
) -> torch.Tensor:
    """Adaptive steps through the increasing output times ``t``.

    Output times are hit by clipping: a step that would pass ``t[i]`` is
    shortened to end on it, so no interpolation error is added; the next step
    resumes from the controller's unclipped proposal. The error exponent is
    ``1 / (embedded_order + 1)`` (the estimate is that of the lower-order
    solution). Raises ``MaxStepsExceeded`` after ``control.max_steps`` attempted
    steps, and ``RuntimeError`` if the step size underflows.
    """
    if tableau.b_embedded is None or tableau.embedded_order is None:
        raise ValueError(f"{tableau.name} has no embedded weights; it cannot adapt its step")
    exponent = 1.0 / (tableau.embedded_order + 1)
    ys = [y0]
    y, tc = y0, t[0]
    f = func(as_time(tc, y0), y0)
    h = control.first_step
    if h is None:
        h = initial_step(func, tc, y0, f, tableau.order, control.rtol, control.atol)
    attempts = 0
    for t_end in t[1:]:
        while tc < t_end:
            if attempts >= control.max_steps:
                raise MaxStepsExceeded(
                    f"{tableau.name}: reached max_steps={control.max_steps} at t={tc:.6g} before "
                    f"t={t_end:.6g} (last step {h:.3g}); the problem may be stiff or the "
                    "tolerances too tight: raise max_steps, loosen rtol/atol, or use an "
                    "implicit method"
                )
            attempts += 1
            clipped = h >= t_end - tc
            h_try = t_end - tc if clipped else h
            if h_try <= 1e-14 * max(1.0, abs(tc)):
                raise RuntimeError(
                    f"{tableau.name}: step size underflow ({h_try:.3g}) at t={tc:.6g}"
                )
            y1, err, f1 = rk_step(func, tc, y, h_try, tableau, f0=f)
            ratio = error_ratio(err, y, y1, control.rtol, control.atol)
            accepted = ratio <= 1.0  # False for NaN too
            if ratio == 0.0:
                factor = control.max_factor
            elif ratio != ratio or ratio == float("inf"):
                factor = control.min_factor
            else:
                factor = control.safety * ratio**-exponent
                factor = min(control.max_factor, max(control.min_factor, factor))
            if not accepted:
                factor = min(1.0, factor)
            h_next = h_try * factor
            if accepted:
                tc = t_end if clipped else tc + h_try
                y = y1
                f = f1 if f1 is not None else func(as_time(tc, y), y)
                # A clipped step says nothing against the longer step it replaced.
                h = max(h, h_next) if clipped else h_next
            else:
                h = h_next
        ys.append(y)
    return torch.stack(ys)
