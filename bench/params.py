"""Typed plugin parameters: declaration, validation and description.

A plugin declares ``params = {"step_size": Param(0.1, low=0.0, doc="...")}``.
Suite values are validated against these declarations before anything runs,
and ``bench list`` prints them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

_MISSING = object()


def article(noun: str) -> str:
    """``an architecture``, ``a solver``: the noun with its indefinite article."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def did_you_mean(name: object, choices: Iterable[str], *, n: int = 1, cutoff: float = 0.6) -> str:
    """``"; did you mean 'x'?"`` (up to ``n`` names, closest first) for a name close to
    one of ``choices``, else ``""``: the hint of every "unknown name" message."""
    import difflib

    close = difflib.get_close_matches(str(name), list(choices), n=n, cutoff=cutoff)
    return f"; did you mean {', '.join(shown(c) for c in close)}?" if close else ""


def unknown_key(key: str, allowed: Iterable[str], prefix: str) -> str:
    """The message for a key a mapping does not take: the close one, and every allowed."""
    allowed = list(allowed)
    return f"{prefix}{key}: unknown key{did_you_mean(key, allowed)} (allowed: {', '.join(allowed)})"


def shown(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: an error message quotes a value,
    never megabytes of it (a suite can hold huge or self-multiplying values)."""
    try:
        text = reprlib_repr(value)
    except Exception:  # noqa: BLE001 - a value whose repr fails is still reported
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def reprlib_repr(value: object) -> str:
    """A repr that stops early on long containers and strings (reprlib's limits)."""
    import reprlib

    short = reprlib.Repr()
    short.maxlist = short.maxtuple = short.maxdict = short.maxset = 8
    short.maxstring = short.maxother = 80
    short.maxlevel = 3
    return short.repr(value)


class ParamError(ValueError):
    """A parameter value that does not fit its declaration."""


@dataclass(frozen=True)
class Param:
    """One parameter of a plugin.

    Args:
        default: the value used when a suite does not set it. ``None`` is allowed
            (then ``type`` must be given, or the parameter accepts anything).
        type: ``int``, ``float``, ``bool``, ``str``, ``list`` or ``dict``; inferred
            from ``default`` when omitted. An ``int`` is accepted for a ``float``.
        doc: one line for ``bench list``.
        choices: the allowed values, if the set is closed.
        low, high: inclusive bounds for numbers.
        low_open: make ``low`` exclusive (``step_size > 0``).
        check: a further test of the coerced value (e.g. the entries of a list):
            returns the reason it is wrong, or None.
        plugin: the value names another plugin, one that subclasses this base
            (``Param("rk4", plugin=Solver)``: a Neural ODE's solver). The harness
            resolves the name against the suite's registry, validates the nested
            plugin's own parameters (``architecture.solver.rtol``, sweeps too) and
            hands the plugin an instance in ``values``. With ``default=None`` (or
            ``nullable``) the nested plugin is optional: left out, ``values`` holds None
            (a method's own network unless a user's plugin is named).
        finite: a ``float`` refuses +-inf (``.inf`` in YAML, ``1e999``) unless this is
            False, for a parameter where infinity means something (no limit). NaN is
            always refused.
    """

    default: Any
    type: type | None = None
    doc: str = ""
    choices: Sequence[Any] | None = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    nullable: bool = field(default=False)
    check: Callable[[Any], str | None] | None = field(default=None, compare=False)
    plugin: type | None = None
    finite: bool = True

    @property
    def kind(self) -> type | None:
        if self.plugin is not None:
            return str
        if self.type is not None:
            return self.type
        if self.default is None:
            return None
        return type(self.default)

    def validate(self, value: Any) -> Any:
        """Return ``value`` coerced to the declared type, or raise ``ParamError``."""
        kind = self.kind
        if self.plugin is not None and isinstance(value, self.plugin):
            return value  # an instance, as the harness hands it over
        if value is None:
            if self.default is None or self.nullable:
                return None
            raise ParamError(f"must not be null (expected {_type_name(kind)})")
        if kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                value = _parse_float(value)
            try:
                value = float(value)
            except OverflowError:  # an integer past float's range (10**400)
                raise ParamError(f"must be a finite number, got {shown(value)}") from None
            if math.isnan(value):
                raise ParamError("must be a number, got NaN")
            if self.finite and math.isinf(value):
                raise ParamError(f"must be a finite number, got {value}")
        elif kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                else:
                    raise ParamError(f"expected an integer, got {shown(value)}")
        elif kind is bool:
            if not isinstance(value, bool):
                raise ParamError(f"expected true or false, got {shown(value)}")
        elif kind is str:
            if not isinstance(value, str):
                raise ParamError(f"expected a string, got {shown(value)}")
        elif kind in (list, tuple):
            if not isinstance(value, (list, tuple)):
                raise ParamError(f"expected a list, got {shown(value)}")
            value = list(value)
        elif kind is dict and not isinstance(value, dict):
            raise ParamError(f"expected a mapping, got {shown(value)}")
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(repr(c) for c in self.choices)
            raise ParamError(f"{shown(value)} is not one of {allowed}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.low is not None:
                if self.low_open and not value > self.low:
                    raise ParamError(f"must be > {self.low}, got {shown(value)}")
                if not self.low_open and not value >= self.low:
                    raise ParamError(f"must be >= {self.low}, got {shown(value)}")
            if self.high is not None and not value <= self.high:
                raise ParamError(f"must be <= {self.high}, got {shown(value)}")
        if self.check is not None:
            try:
                reason = self.check(value)
            except ParamError:
                raise
            except Exception as exc:  # a plugin's check that fails is its message, not a crash
                name = getattr(self.check, "__qualname__", repr(self.check))
                raise ParamError(
                    f"its check {name} raised on {shown(value)}: {type(exc).__name__}: {exc}"
                ) from None
            if reason:
                raise ParamError(reason)
        return value

    def describe(self) -> str:
        """A short type/default/range string for listings."""
        kind = f"{self.plugin.kind} plugin" if self.plugin is not None else _type_name(self.kind)
        parts = [f"{kind} = {shown(self.default)}"]
        if self.choices is not None:
            parts.append("one of " + "|".join(str(c) for c in self.choices))
        if self.low is not None or self.high is not None:
            lo = "" if self.low is None else f"{self.low}{'<' if self.low_open else '<='}"
            hi = "" if self.high is None else f"<={self.high}"
            parts.append(f"{lo}x{hi}")
        return ", ".join(parts)


def _parse_float(value: Any) -> float:
    # YAML 1.1 reads "1e-3" (no dot) as a string; accept it as a number.
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ParamError(f"expected a number, got {shown(value)}")


def _type_name(kind: type | None) -> str:
    return "any" if kind is None else kind.__name__


def is_list_param(param: Param) -> bool:
    """True when the parameter itself takes a list (so a list value is not a sweep)."""
    return param.kind in (list, tuple)
