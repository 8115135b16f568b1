"""Solvers against exact solutions, measured convergence orders and each other."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench import Solver
from plugins.solvers import tableau as tb
from plugins.solvers.own import Dopri5Solver, EulerSolver, HeunSolver, MidpointSolver, RK4Solver
from plugins.solvers.rk import integrate_fixed
from plugins.solvers.torchdiffeq_adapter import TORCHDIFFEQ_SOLVERS
from tests.plugins._problems import (
    F64,
    logistic,
    logistic_exact,
    registry,
    rotation,
    rotation_exact,
)

pytestmark = pytest.mark.usefixtures("frozen_heap")

REGISTRY = registry()
SOLVERS = {name: REGISTRY.get("solver", name) for name in REGISTRY.names("solver")}
FIXED = sorted(n for n, s in SOLVERS.items() if not s.adaptive)
ADAPTIVE = sorted(n for n, s in SOLVERS.items() if s.adaptive)


def test_every_torchdiffeq_method_is_registered() -> None:
    from torchdiffeq._impl.odeint import SOLVERS as TORCHDIFFEQ_METHODS

    expected = {f"torchdiffeq.{m}" for m in TORCHDIFFEQ_METHODS}
    assert expected <= set(SOLVERS)
    assert len(expected) == 14
    for name in ("euler", "midpoint", "heun", "rk4", "bosh3", "dopri5"):
        assert name in SOLVERS


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_conformance(name: str) -> None:
    """Every solver: documented, typed, torchdiffeq's shapes, result[0] == y0, and accurate."""
    cls = SOLVERS[name]
    assert issubclass(cls, Solver) and cls.summary()
    assert "adjoint" in cls.params if cls.supports_adjoint else "adjoint" not in cls.params
    y0 = torch.tensor([[1.0, 0.0], [0.5, -0.5], [0.0, 2.0]], dtype=F64)  # a batch of 3
    t = torch.linspace(0.0, 2.0, 5, dtype=F64)
    options = {"step_size": 0.01} if "step_size" in cls.params else {"rtol": 1e-6, "atol": 1e-6}
    y = cls().odeint(rotation, y0, t, **options)
    assert y.shape == (5, 3, 2) and y.dtype == F64
    assert torch.equal(y[0], y0)
    exact = torch.stack([rotation_exact(t, row) for row in y0], dim=1)
    # A sanity bound only (accuracy has its own tests below): Euler at h = 0.01 over
    # [0, 2] errs by ~t h / 2 = 1e-2; order >= 2 at h = 0.01 by <= 1e-4; adaptive
    # ones at rtol = 1e-6 by <= 1e-3 (the worst, torchdiffeq.fehlberg2, by 6e-4).
    tolerance = 3e-2 if cls.order == 1 else 1e-3 if cls.adaptive else 1e-4
    assert (y - exact).abs().max() < tolerance


# Per-method tolerance at h = 0.05 on the rotation over [0, 2] (float64), final time:
# the leading error term is ~ C h^p with C of order t = 2. Set to ~3x the measured error.
EXACT_TOLERANCES = {
    "euler": 0.15,  # measured 4.9e-2
    "midpoint": 3e-3,  # measured 7.7e-4 (order 2)
    "heun": 3e-3,  # same stability polynomial as midpoint on a linear problem
    "rk4": 3e-7,  # measured 9.6e-8 (order 4)
}


@pytest.mark.parametrize("name", sorted(EXACT_TOLERANCES))
def test_own_fixed_against_exact(name: str) -> None:
    y0 = torch.tensor([1.0, 0.0], dtype=F64)
    t = torch.linspace(0.0, 2.0, 5, dtype=F64)
    y = SOLVERS[name]().odeint(rotation, y0, t, step_size=0.05)
    err = (y - rotation_exact(t, y0)).abs().max().item()
    assert err < EXACT_TOLERANCES[name]
    assert err > EXACT_TOLERANCES[name] / 30  # the error is the method's, not zero by accident


def _convergence_slope(cls: type[Solver], ns: list[int], **options) -> float:
    y0 = torch.tensor([0.5], dtype=F64)
    t = torch.tensor([0.0, 2.0], dtype=F64)
    exact = logistic_exact(2.0, 0.5)
    errs = [
        abs(cls().odeint(logistic, y0, t, step_size=2.0 / n, **options)[-1, 0].item() - exact)
        for n in ns
    ]
    return float(np.polyfit(np.log(2.0 / np.asarray(ns)), np.log(errs), 1)[0])


@pytest.mark.parametrize("name", FIXED)
@pytest.mark.filterwarnings("ignore:Functional iteration did not converge")
def test_fixed_step_convergence_order(name: str) -> None:
    cls = SOLVERS[name]
    # Grids in the asymptotic range (midpoint's error changes sign near h = 0.1 on
    # this problem) yet coarse enough for order >= 3 that the finest error (~1e-11
    # for order 4 at h = 2/160) stays far above float64 rounding (~1e-15 per step).
    ns = [40, 80, 160, 320] if cls.order <= 2 else [20, 40, 80, 160]
    options = {}
    if "rtol" in cls.params:  # implicit Adams: converge the corrector far below the error
        options = {"rtol": 1e-13, "atol": 1e-13}
    slope = _convergence_slope(cls, ns, **options)
    assert abs(slope - cls.order) < 0.3, f"{name}: measured order {slope:.2f}, declared {cls.order}"


# Global error at t = 2 on the rotation, divided by rtol = atol, over rtol in
# 1e-3 .. 1e-9: a well-behaved controller keeps it flat and O(1). Bounds are ~3x
# the largest measured ratio. torchdiffeq's bosh3 and dopri8 are not
# proportional: their ratio grows from ~8 to ~1e3 as rtol goes from 1e-3 to 1e-9.
TOLERANCE_FACTORS = {
    "bosh3": 20,  # measured 5.1-5.2
    "dopri5": 5,  # measured 0.5-0.8
    "torchdiffeq.adaptive_heun": 15,  # 3.4-3.7
    "torchdiffeq.bosh3": 4000,  # 7.9 .. 1.1e3
    "torchdiffeq.dopri5": 5,  # 0.9-1.5
    "torchdiffeq.dopri8": 1500,  # 6.3 .. 3.7e2
    "torchdiffeq.fehlberg2": 1200,  # 2.1e2-3.5e2: its error estimate is first order
    "torchdiffeq.scipy_solver": 10,  # LSODA: 2.4-2.8
}


@pytest.mark.parametrize("name", ADAPTIVE)
def test_adaptive_error_follows_tolerance(name: str) -> None:
    cls = SOLVERS[name]
    y0 = torch.tensor([1.0, 0.0], dtype=F64)
    t = torch.tensor([0.0, 2.0], dtype=F64)
    exact = rotation_exact(t, y0)[-1]
    # Second-order pairs need ~tol^(-1/2) steps: stop them at 1e-6 (adaptive_heun
    # takes ~40 s at 1e-9 on 2 CPU cores).
    tols = [1e-3, 1e-5, 1e-7, 1e-9] if cls.order > 2 else [1e-3, 1e-4, 1e-5, 1e-6]
    errs = [
        (cls().odeint(rotation, y0, t, rtol=r, atol=r)[-1] - exact).abs().max().item() for r in tols
    ]
    assert all(a > b for a, b in zip(errs, errs[1:])), f"{name}: errors {errs} do not decrease"
    for err, tol in zip(errs, tols):
        assert err < TOLERANCE_FACTORS[name] * tol, f"{name}: error {err:.2e} at tolerance {tol}"


@pytest.mark.parametrize(
    ("own", "method"),
    [(EulerSolver, "euler"), (MidpointSolver, "midpoint"), (HeunSolver, "heun2")],
)
def test_own_fixed_matches_torchdiffeq(own: type[Solver], method: str) -> None:
    # Output times on torchdiffeq's grid (multiples of h = 0.05), so its linear
    # interpolation is not used and both take exactly the same steps.
    y0 = torch.tensor([0.5], dtype=F64)
    t = torch.linspace(0.0, 2.0, 5, dtype=F64)
    mine = own().odeint(logistic, y0, t, step_size=0.05)
    theirs = SOLVERS[f"torchdiffeq.{method}"]().odeint(logistic, y0, t, step_size=0.05)
    assert (mine - theirs).abs().max().item() < 1e-12


def test_rk4_3_8_tableau_matches_torchdiffeq_rk4() -> None:
    """torchdiffeq's rk4 is the 3/8 rule; the same tableau through the own stepper agrees."""
    y0 = torch.tensor([0.5], dtype=F64)
    times = [0.0, 0.5, 1.0, 1.5, 2.0]
    mine = integrate_fixed(logistic, y0, times, tb.RK4_3_8, 0.05)
    theirs = SOLVERS["torchdiffeq.rk4"]().odeint(
        logistic, y0, torch.tensor(times, dtype=F64), step_size=0.05
    )
    assert (mine - theirs).abs().max().item() < 1e-12


def test_rk4_matches_hand_written_classic_rk4() -> None:
    y = torch.tensor([0.5], dtype=F64)
    h, tc = 0.1, 0.0
    for _ in range(20):
        t = torch.tensor(tc, dtype=F64)
        k1 = logistic(t, y)
        k2 = logistic(t + h / 2, y + h / 2 * k1)
        k3 = logistic(t + h / 2, y + h / 2 * k2)
        k4 = logistic(t + h, y + h * k3)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        tc += h
    mine = RK4Solver().odeint(
        logistic, torch.tensor([0.5], dtype=F64), torch.tensor([0.0, 2.0], dtype=F64), step_size=0.1
    )
    assert abs(mine[-1, 0].item() - y.item()) < 1e-14


@pytest.mark.parametrize("name", ["bosh3", "dopri5"])
def test_own_adaptive_matches_torchdiffeq(name: str) -> None:
    # Step-size control differs in detail, so the two agree to their tolerance, not
    # exactly; the own solver must be at least as accurate as torchdiffeq's.
    y0 = torch.tensor([0.5], dtype=F64)
    t = torch.linspace(0.0, 2.0, 5, dtype=F64)
    exact = torch.tensor([0.5] + [logistic_exact(float(x), 0.5) for x in t[1:]], dtype=F64)
    tol = 1e-8
    mine = SOLVERS[name]().odeint(logistic, y0, t, rtol=tol, atol=tol)[:, 0]
    theirs = SOLVERS[f"torchdiffeq.{name}"]().odeint(logistic, y0, t, rtol=tol, atol=tol)[:, 0]
    bound = TOLERANCE_FACTORS[f"torchdiffeq.{name}"] * tol
    assert (mine - theirs).abs().max().item() < bound
    assert (mine - exact).abs().max() <= 2 * (theirs - exact).abs().max() + 1e-12


def test_fixed_step_hits_every_output_time_exactly() -> None:
    # 0.3 is not a multiple of 0.25: without clipping the output at 0.3 would be off-grid.
    calls: list[float] = []

    def f(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        calls.append(float(t))
        return rotation(t, y)

    y0 = torch.tensor([1.0, 0.0], dtype=F64)
    t = torch.tensor([0.0, 0.3, 1.0], dtype=F64)
    y = EulerSolver().odeint(f, y0, t, step_size=0.25)
    # Steps: 0 -> 0.25 -> 0.3 (clipped), 0.3 -> 0.55 -> 0.8 -> 1.0 (clipped).
    assert calls == pytest.approx([0.0, 0.25, 0.3, 0.55, 0.8])
    manual = y0
    for h in (0.25, 0.05):
        manual = manual + h * rotation(None, manual)
    assert torch.allclose(y[1], manual, rtol=0, atol=1e-15)


def test_decreasing_times_integrate_backwards() -> None:
    y0 = torch.tensor([1.0, 0.0], dtype=F64)
    t = torch.linspace(0.0, -2.0, 5, dtype=F64)
    y = Dopri5Solver().odeint(rotation, y0, t, rtol=1e-10, atol=1e-10)
    assert (y - rotation_exact(t, y0)).abs().max().item() < 1e-8


def test_non_monotone_times_are_rejected() -> None:
    with pytest.raises(ValueError, match="strictly increasing or strictly decreasing"):
        RK4Solver().odeint(rotation, torch.ones(2, dtype=F64), torch.tensor([0.0, 1.0, 0.5]))


@pytest.mark.parametrize("name", ["bosh3", "dopri5", "torchdiffeq.dopri5", "torchdiffeq.dopri8"])
def test_max_steps_guard(name: str) -> None:
    y0 = torch.tensor([1.0, 0.0], dtype=F64)
    t = torch.tensor([0.0, 100.0], dtype=F64)
    with pytest.raises(RuntimeError, match=r"max_steps=5 .* raise max_steps"):
        SOLVERS[name](max_steps=5).odeint(rotation, y0, t)
    assert SOLVERS[name]().odeint(rotation, y0, t).isfinite().all()  # default 100_000


def test_options_override_params_for_one_call() -> None:
    y0 = torch.tensor([1.0, 0.0], dtype=F64)
    t = torch.tensor([0.0, 1.0], dtype=F64)
    solver = EulerSolver()  # step_size 0.05
    coarse = solver.odeint(rotation, y0, t, step_size=0.5)
    assert torch.equal(coarse, EulerSolver(step_size=0.5).odeint(rotation, y0, t))
    assert not torch.equal(coarse, solver.odeint(rotation, y0, t))
    assert solver.values["step_size"] == 0.05  # the override did not stick


@pytest.mark.parametrize("name", ["euler", "dopri5", "torchdiffeq.rk4", "torchdiffeq.scipy_solver"])
def test_unknown_option_names_option_and_allowed(name: str) -> None:
    cls = SOLVERS[name]
    with pytest.raises(ValueError) as info:
        cls().odeint(rotation, torch.ones(2, dtype=F64), torch.tensor([0.0, 1.0]), stepsize=0.1)
    message = str(info.value)
    assert "'stepsize'" in message
    for allowed in cls.params:
        assert allowed in message


def test_bad_option_value_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"step_size: must be > 0.0"):
        RK4Solver().odeint(
            rotation, torch.ones(2, dtype=F64), torch.tensor([0.0, 1.0]), step_size=-1
        )


def test_scipy_solver_method_option_is_used() -> None:
    cls = SOLVERS["torchdiffeq.scipy_solver"]
    y0 = torch.tensor([1.0, 0.0], dtype=F64)
    t = torch.tensor([0.0, 2.0], dtype=F64)
    exact = rotation_exact(t, y0)[-1]
    loose = (
        (cls().odeint(rotation, y0, t, solver="RK23", rtol=1e-3, atol=1e-3)[-1] - exact).abs().max()
    )
    tight = (
        (cls().odeint(rotation, y0, t, solver="DOP853", rtol=1e-10, atol=1e-10)[-1] - exact)
        .abs()
        .max()
    )
    assert tight < 1e-8 < loose
    with pytest.raises(ValueError, match="is not one of"):
        cls().odeint(rotation, y0, t, solver="Euler")


def test_adapters_are_distinct_picklable_classes() -> None:
    import pickle

    names = [cls.name for cls in TORCHDIFFEQ_SOLVERS]
    assert len(set(names)) == len(names)
    for cls in TORCHDIFFEQ_SOLVERS:
        assert pickle.loads(pickle.dumps(cls)) is cls


def test_adaptive_nfe_matches_torchdiffeq_order_of_magnitude() -> None:
    """Own dopri5 is as frugal as torchdiffeq's on a smooth problem (within 40%)."""
    counts = {}
    for name in ("dopri5", "torchdiffeq.dopri5"):
        n = 0

        def f(t, y):
            nonlocal n
            n += 1
            return rotation(t, y)

        SOLVERS[name]().odeint(
            f,
            torch.tensor([1.0, 0.0], dtype=F64),
            torch.tensor([0.0, 10.0], dtype=F64),
            rtol=1e-8,
            atol=1e-8,
        )
        counts[name] = n
    assert math.isclose(counts["dopri5"], counts["torchdiffeq.dopri5"], rel_tol=0.4), counts
