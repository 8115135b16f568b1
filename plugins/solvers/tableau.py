"""Butcher tableaus as validated data: one frozen object per explicit Runge-Kutta method."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

# Coefficients are stored as floats; sums of up to 7 of them carry ~1e-16 rounding,
# so a condition holds when it is met to 1e-12 (a typo in one coefficient breaks
# it by far more: the smallest dopri5 weight is 1/40 = 0.025).
_TOL = 1e-12


class TableauError(ValueError):
    """A Butcher tableau that is inconsistent or does not reach its declared order."""


def _f(x: float | Fraction | str) -> float:
    return float(Fraction(x)) if isinstance(x, str) else float(x)


@dataclass(frozen=True)
class ButcherTableau:
    """An explicit Runge-Kutta method.

    Args:
        name: for messages.
        order: the order of the propagated solution (``b``).
        c: nodes, ``c[0] == 0``.
        a: strictly lower-triangular stage matrix, one row per stage after the
            first: ``a[i]`` holds the ``i + 1`` coefficients of stage ``i + 1``.
        b: weights of the solution.
        b_embedded: weights of the embedded (error-estimating) solution, or None.
        embedded_order: order of ``b_embedded``.

    Checked on construction: shapes, ``c[0] == 0``, row sums of ``a`` equal
    ``c``, ``sum(b) == 1`` (and the same for ``b_embedded``), and the order
    conditions up to ``min(order, 4)`` (the 8 rooted trees of order <= 4) for
    ``b`` and ``b_embedded``.
    """

    name: str
    order: int
    c: tuple[float, ...]
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    b_embedded: tuple[float, ...] | None = None
    embedded_order: int | None = None

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def from_fractions(
        cls,
        name: str,
        order: int,
        c: list,
        a: list[list],
        b: list,
        b_embedded: list | None = None,
        embedded_order: int | None = None,
    ) -> ButcherTableau:
        """Build from exact strings such as ``"3/40"`` (or numbers), stored as floats."""
        return cls(
            name=name,
            order=order,
            c=tuple(_f(x) for x in c),
            a=tuple(tuple(_f(x) for x in row) for row in a),
            b=tuple(_f(x) for x in b),
            b_embedded=None if b_embedded is None else tuple(_f(x) for x in b_embedded),
            embedded_order=embedded_order,
        )

    @property
    def stages(self) -> int:
        return len(self.c)

    @property
    def adaptive(self) -> bool:
        return self.b_embedded is not None

    @property
    def fsal(self) -> bool:
        """First same as last: the last stage is evaluated at (t + h, y1), reusable next step."""
        return (
            self.stages > 1
            and self.c[-1] == 1.0
            and self.b[-1] == 0.0
            and self.a[-1] == self.b[:-1]
        )

    def validate(self) -> None:
        """Raise ``TableauError`` naming the first violated condition."""
        s = len(self.c)
        if self.order < 1:
            raise TableauError(f"{self.name}: order must be >= 1, got {self.order}")
        if len(self.b) != s:
            raise TableauError(f"{self.name}: b has {len(self.b)} weights for {s} stages (len(c))")
        if len(self.a) != s - 1:
            raise TableauError(f"{self.name}: a has {len(self.a)} rows; {s} stages need {s - 1}")
        for i, row in enumerate(self.a):
            if len(row) != i + 1:
                raise TableauError(
                    f"{self.name}: row {i + 1} of a has {len(row)} entries, expected {i + 1} "
                    "(explicit methods are strictly lower-triangular)"
                )
        if abs(self.c[0]) > _TOL:
            raise TableauError(f"{self.name}: c[0] must be 0, got {self.c[0]}")
        for i, row in enumerate(self.a):
            if abs(sum(row) - self.c[i + 1]) > _TOL:
                raise TableauError(
                    f"{self.name}: row {i + 1} of a sums to {sum(row)!r} but c[{i + 1}] = "
                    f"{self.c[i + 1]!r} (row sums of a must equal c)"
                )
        self._check_weights("b", self.b, self.order)
        if self.b_embedded is not None:
            if len(self.b_embedded) != s:
                raise TableauError(
                    f"{self.name}: b_embedded has {len(self.b_embedded)} weights for {s} stages"
                )
            if self.embedded_order is None:
                raise TableauError(f"{self.name}: b_embedded is given without embedded_order")
            self._check_weights("b_embedded", self.b_embedded, self.embedded_order)
        elif self.embedded_order is not None:
            raise TableauError(f"{self.name}: embedded_order is given without b_embedded")

    def _check_weights(self, label: str, w: tuple[float, ...], order: int) -> None:
        for condition, lhs, rhs in _order_conditions(self.c, self.a, w, order):
            if abs(lhs - rhs) > _TOL:
                raise TableauError(
                    f"{self.name}: {label} fails the order condition {condition} = {rhs:.6g} "
                    f"(got {lhs:.17g}); it cannot have order {order}"
                )


def _order_conditions(
    c: tuple[float, ...], a: tuple[tuple[float, ...], ...], w: tuple[float, ...], order: int
) -> list[tuple[str, float, float]]:
    """(name, value, required) for every rooted tree up to ``min(order, 4)``."""
    s = len(c)

    def a_dot(v: list[float]) -> list[float]:  # (A v)_i with A strictly lower-triangular
        return [0.0] + [sum(a[i - 1][j] * v[j] for j in range(i)) for i in range(1, s)]

    def w_dot(v: list[float]) -> float:
        return sum(wi * vi for wi, vi in zip(w, v))

    cs = list(c)
    c2 = [x * x for x in cs]
    ac = a_dot(cs)
    conditions = [("sum(b)", sum(w), 1.0)]
    if order >= 2:
        conditions.append(("sum(b c)", w_dot(cs), 1 / 2))
    if order >= 3:
        conditions.append(("sum(b c^2)", w_dot(c2), 1 / 3))
        conditions.append(("sum(b A c)", w_dot(ac), 1 / 6))
    if order >= 4:
        conditions.append(("sum(b c^3)", w_dot([x**3 for x in cs]), 1 / 4))
        conditions.append(("sum(b c A c)", w_dot([x * y for x, y in zip(cs, ac)]), 1 / 8))
        conditions.append(("sum(b A c^2)", w_dot(a_dot(c2)), 1 / 12))
        conditions.append(("sum(b A A c)", w_dot(a_dot(ac)), 1 / 24))
    return conditions


EULER = ButcherTableau.from_fractions("euler", 1, c=[0], a=[], b=[1])

MIDPOINT = ButcherTableau.from_fractions("midpoint", 2, c=[0, "1/2"], a=[["1/2"]], b=[0, 1])

# Heun's method (explicit trapezoidal rule), torchdiffeq's "heun2".
HEUN = ButcherTableau.from_fractions("heun", 2, c=[0, 1], a=[[1]], b=["1/2", "1/2"])

# The classic RK4 (Kutta 1901). torchdiffeq's "rk4" is Kutta's 3/8 rule instead (below).
RK4 = ButcherTableau.from_fractions(
    "rk4",
    4,
    c=[0, "1/2", "1/2", 1],
    a=[["1/2"], [0, "1/2"], [0, 0, 1]],
    b=["1/6", "1/3", "1/3", "1/6"],
)

RK4_3_8 = ButcherTableau.from_fractions(
    "rk4_3/8",
    4,
    c=[0, "1/3", "2/3", 1],
    a=[["1/3"], ["-1/3", 1], [1, -1, 1]],
    b=["1/8", "3/8", "3/8", "1/8"],
)

# Bogacki & Shampine (1989): order 3 with an order-2 embedded estimate, FSAL.
BOSH3 = ButcherTableau.from_fractions(
    "bosh3",
    3,
    c=[0, "1/2", "3/4", 1],
    a=[["1/2"], [0, "3/4"], ["2/9", "1/3", "4/9"]],
    b=["2/9", "1/3", "4/9", 0],
    b_embedded=["7/24", "1/4", "1/3", "1/8"],
    embedded_order=2,
)

# Dormand & Prince (1980): order 5 with an order-4 embedded estimate, FSAL.
DOPRI5 = ButcherTableau.from_fractions(
    "dopri5",
    5,
    c=[0, "1/5", "3/10", "4/5", "8/9", 1, 1],
    a=[
        ["1/5"],
        ["3/40", "9/40"],
        ["44/45", "-56/15", "32/9"],
        ["19372/6561", "-25360/2187", "64448/6561", "-212/729"],
        ["9017/3168", "-355/33", "46732/5247", "49/176", "-5103/18656"],
        ["35/384", 0, "500/1113", "125/192", "-2187/6784", "11/84"],
    ],
    b=["35/384", 0, "500/1113", "125/192", "-2187/6784", "11/84", 0],
    b_embedded=["5179/57600", 0, "7571/16695", "393/640", "-92097/339200", "187/2100", "1/40"],
    embedded_order=4,
)
