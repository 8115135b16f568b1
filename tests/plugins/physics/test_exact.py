"""The Cole-Hopf solution by Gauss-Hermite against scipy's adaptive quadrature."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from plugins.tasks.physics.exact import RAISSI_NU, burgers_exact, burgers_exact_grid, raissi_grid


def _adaptive(x: float, t: float, nu: float = RAISSI_NU) -> float:
    """The same Cole-Hopf integrals over e by scipy.integrate.quad, in e directly
    (no Hermite substitution), with the exponent shifted by its bound 1/(2 pi nu) and
    breakpoints where cos(pi (x - e)) = -1, i.e. where f peaks."""
    c = 4.0 * nu * t
    shift = 1.0 / (2.0 * math.pi * nu)

    def f(e: float) -> float:
        return math.exp(-math.cos(math.pi * (x - e)) / (2 * math.pi * nu) - e * e / c - shift)

    half = 12.0 * math.sqrt(c)  # exp(-144) past this: nothing left to integrate
    points = [p for p in (x - 1.0, x + 1.0, x - 3.0, x + 3.0) if -half < p < half]
    kw = {"points": points or None, "epsabs": 0.0, "epsrel": 1e-13, "limit": 500}
    num = integrate.quad(lambda e: math.sin(math.pi * (x - e)) * f(e), -half, half, **kw)[0]
    den = integrate.quad(f, -half, half, **kw)[0]
    return -num / den


# Near the shock (|x| <= 0.01 late in time), mid-domain, near the walls, early times.
POINTS = [
    (0.0, 0.99),
    (0.001, 0.99),
    (-0.0039, 0.99),
    (0.01, 0.75),
    (-0.02, 0.4),
    (0.003, 1.0 / math.pi),
    (0.5, 0.3),
    (-0.9, 0.99),
    (0.25, 0.02),
    (0.7, 0.6),
]


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize(("x", "t"), POINTS)
def test_gauss_hermite_matches_adaptive_quadrature(x, t):
    # 1e-10 absolute (u is O(1)): the bar; measured ~1e-15 at 120 nodes.
    assert burgers_exact(np.array(x), np.array(t)) == pytest.approx(_adaptive(x, t), abs=1e-10)


def test_initial_condition_boundaries_and_symmetry():
    x, t = raissi_grid()
    assert x.shape == (256,) and t.shape == (100,)
    assert t[0] == 0.0 and t[-1] == pytest.approx(0.99)
    u = burgers_exact_grid(x, t)
    assert u.shape == (100, 256)
    np.testing.assert_allclose(u[0], -np.sin(np.pi * x), atol=1e-15)
    # u(+-1, t) = 0 and u is odd in x: both exact properties of the problem; sin(pi) in
    # floating point is 1.2e-16, the quadrature adds rounding of a few ulps.
    assert np.abs(u[:, [0, -1]]).max() < 1e-12
    np.testing.assert_allclose(u[:, ::-1], -u, atol=1e-12)
    # The shock: at t = 0.99 u jumps from about +0.6 to -0.6 within a few grid points.
    assert u[-1, 125] > 0.3 and u[-1, 130] < -0.3


def test_solves_the_pde_by_finite_differences():
    # Central differences with h = 1e-4 away from the shock: truncation O(h^2 u''') ~
    # 1e-7 relative to terms of size O(1); the residual must be that small.
    h = 1e-4
    for x, t in [(0.5, 0.5), (-0.3, 0.8), (0.8, 0.2)]:

        def u(a, b):
            return float(burgers_exact(np.array(a), np.array(b)))

        u_t = (u(x, t + h) - u(x, t - h)) / (2 * h)
        u_x = (u(x + h, t) - u(x - h, t)) / (2 * h)
        u_xx = (u(x + h, t) - 2 * u(x, t) + u(x - h, t)) / h**2
        assert abs(u_t + u(x, t) * u_x - RAISSI_NU * u_xx) < 1e-5


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="nodes"):
        burgers_exact(np.zeros(1), np.ones(1), nodes=1000)
    with pytest.raises(ValueError, match="nu"):
        burgers_exact(np.zeros(1), np.ones(1), nu=0.0)
