"""On y' = A y one explicit RK step is y <- R(hA) y, with R fixed by the tableau.

R(z) = 1 + z b^T 1 + z^2 b^T c + z^3 b^T A c + ...; for an order-p method its
first p + 1 terms are those of exp(z). The higher ones are known per method
(dopri5: z^6 / 600), which checks the stepper and the coefficients independently
of any reference solver.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from plugins.solvers import tableau as tb
from plugins.solvers.rk import rk_step

# Coefficients of R(z) beyond the Taylor terms of exp(z), by method.
POLYNOMIALS = {
    "euler": [1, 1],
    "midpoint": [1, 1, 1 / 2],
    "heun": [1, 1, 1 / 2],
    "rk4": [1, 1, 1 / 2, 1 / 6, 1 / 24],
    "rk4_3/8": [1, 1, 1 / 2, 1 / 6, 1 / 24],
    "bosh3": [1, 1, 1 / 2, 1 / 6],  # b[3] = 0: the FSAL stage does not enter the step
    "dopri5": [1, 1, 1 / 2, 1 / 6, 1 / 24, 1 / 120, 1 / 600],
}
TABLEAUS = {
    t.name: t for t in (tb.EULER, tb.MIDPOINT, tb.HEUN, tb.RK4, tb.RK4_3_8, tb.BOSH3, tb.DOPRI5)
}

entries = st.floats(min_value=-2.0, max_value=2.0, allow_nan=False)


@settings(max_examples=40, deadline=None, database=None)
@given(
    name=st.sampled_from(sorted(POLYNOMIALS)),
    matrix=st.lists(entries, min_size=4, max_size=4),
    y0=st.lists(entries, min_size=2, max_size=2),
    h=st.floats(min_value=1e-3, max_value=0.5),
)
def test_one_step_is_the_stability_polynomial(name, matrix, y0, h) -> None:
    A = np.asarray(matrix).reshape(2, 2)
    At = torch.tensor(A, dtype=torch.float64)
    y = torch.tensor(y0, dtype=torch.float64)
    y1, _, _ = rk_step(lambda t, v: At @ v, 0.0, y, h, TABLEAUS[name])
    R = sum(c * np.linalg.matrix_power(h * A, k) for k, c in enumerate(POLYNOMIALS[name]))
    np.testing.assert_allclose(y1.numpy(), R @ np.asarray(y0), rtol=1e-12, atol=1e-13)


def test_polynomials_match_taylor_to_the_declared_order() -> None:
    for name, coeffs in POLYNOMIALS.items():
        order = TABLEAUS[name].order
        for k in range(order + 1):
            assert math.isclose(coeffs[k], 1 / math.factorial(k)), (name, k)
        if len(coeffs) > order + 1:  # the next term is not exp's: the order is exactly p
            assert not math.isclose(coeffs[order + 1], 1 / math.factorial(order + 1))
