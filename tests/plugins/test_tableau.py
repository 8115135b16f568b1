"""Butcher tableaus check themselves: consistency and order conditions."""

from __future__ import annotations

import pytest

from plugins.solvers import tableau as tb
from plugins.solvers.own import OWN_SOLVERS

BUILTIN = [tb.EULER, tb.MIDPOINT, tb.HEUN, tb.RK4, tb.RK4_3_8, tb.BOSH3, tb.DOPRI5]


@pytest.mark.parametrize("tableau", BUILTIN, ids=lambda t: t.name)
def test_builtin_tableaus_validate(tableau: tb.ButcherTableau) -> None:
    tableau.validate()
    assert abs(sum(tableau.b) - 1) < 1e-14
    for i, row in enumerate(tableau.a):
        assert abs(sum(row) - tableau.c[i + 1]) < 1e-14


def test_fsal_and_adaptive_flags() -> None:
    assert tb.DOPRI5.fsal and tb.BOSH3.fsal
    assert not tb.RK4.fsal and not tb.EULER.fsal
    assert tb.DOPRI5.adaptive and not tb.RK4.adaptive


@pytest.mark.parametrize("solver", OWN_SOLVERS, ids=lambda s: s.name)
def test_solver_order_is_its_tableau_order(solver) -> None:
    assert solver.order == solver.tableau.order


def _rk4_kwargs(**changes):
    kwargs = dict(
        name="bad",
        order=4,
        c=[0, "1/2", "1/2", 1],
        a=[["1/2"], [0, "1/2"], [0, 0, 1]],
        b=["1/6", "1/3", "1/3", "1/6"],
    )
    kwargs.update(changes)
    return kwargs


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"a": [["1/2"], [0, "1/3"], [0, 0, 1]]}, r"row 2 of a sums to .* but c\[2\]"),
        ({"b": ["1/6", "1/3", "1/3", "1/5"]}, r"b fails the order condition sum\(b\)"),
        ({"b": ["1/6", "1/3", "1/3"]}, r"b has 3 weights for 4 stages"),
        ({"a": [["1/2"], [0, "1/2"]]}, r"a has 2 rows; 4 stages need 3"),
        ({"a": [["1/2"], ["1/2"], [0, 0, 1]]}, r"row 2 of a has 1 entries, expected 2"),
        ({"c": ["1/4", "1/2", "1/2", 1]}, r"c\[0\] must be 0"),
        ({"order": 0}, r"order must be >= 1"),
        # Euler weights on an RK4 stage matrix: consistent, but only order 1.
        ({"b": [1, 0, 0, 0]}, r"sum\(b c\) = 0.5 .* cannot have order 4"),
        # The 3/8-rule weights on the classic nodes: order conditions of order 3 fail.
        ({"b": ["1/8", "3/8", "3/8", "1/8"]}, r"sum\(b c\^2\) = 0.333333"),
        ({"b_embedded": ["1/2", "1/2", 0, 0], "embedded_order": 2}, r"b_embedded fails"),
        ({"b_embedded": [1, 0, 0, 0]}, r"without embedded_order"),
        ({"embedded_order": 2}, r"embedded_order is given without b_embedded"),
    ],
)
def test_malformed_tableau_is_rejected(changes: dict, message: str) -> None:
    with pytest.raises(tb.TableauError, match=message):
        tb.ButcherTableau.from_fractions(**_rk4_kwargs(**changes))


def test_one_wrong_dopri5_coefficient_is_caught() -> None:
    a = [list(row) for row in tb.DOPRI5.a]
    a[3][1] = -25360 / 2188  # a typo in the 4th digit of the denominator
    with pytest.raises(tb.TableauError, match="row 4 of a"):
        tb.ButcherTableau("dopri5-typo", 5, tb.DOPRI5.c, tuple(map(tuple, a)), tb.DOPRI5.b)
