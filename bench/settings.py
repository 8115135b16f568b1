"""The harness's own settings: one table, from which everything else follows.

A suite sets them at its top level, a benchmark entry may override them (``per_entry``),
and each cell carries them (``bench.suite.Cell`` has one field per setting but
``seeds``, which makes the cells instead). Validation, the suite's allowed keys, the
defaults and the README's table are all read from ``SETTINGS``: adding a setting is
one row here and one ``Cell`` field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.params import ParamError, shown

MAX_SEEDS = 100_000
MAX_TIMEOUT = 30 * 24 * 3600.0
_DEVICE_RE = re.compile(r"auto|cpu|cuda(:\d+)?")  # fullmatch: "$" takes a "\n"


@dataclass(frozen=True)
class Setting:
    """One harness setting.

    Args:
        default: the value when neither the suite nor the entry sets it.
        doc: one line, for the README's table and "unknown key" messages.
        parse: the value to use for what the suite wrote; raises ``ParamError`` with
            the reason it is wrong.
        per_entry: a benchmark entry may override it.
    """

    default: Any
    doc: str
    parse: Callable[[Any], Any]
    per_entry: bool = True


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_from(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if not _is_int(value) or not low <= value <= high:
            raise ParamError(f"expected an integer from {low} to {high}, got {shown(value)}")
        return value

    return parse


def _device(value: Any) -> str:
    if not isinstance(value, str) or not _DEVICE_RE.fullmatch(value):
        raise ParamError(f"{shown(value)} is not one of auto, cpu, cuda, cuda:N")
    return value


def _seeds(value: Any) -> list[int]:
    if _is_int(value) and 1 <= value <= MAX_SEEDS:
        return list(range(value))
    # the upper bound: a seed fits the int64 column of cells.parquet and torch's generator
    if isinstance(value, list) and value and all(_is_int(s) and 0 <= s < 2**63 for s in value):
        if len(set(value)) != len(value):
            raise ParamError(f"{shown(value)} repeats a seed")
        return value
    raise ParamError(
        f"expected a list of integers from 0 to 2**63 - 1, or a count from 1 to {MAX_SEEDS}, "
        f"got {shown(value)}"
    )


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        ok = False
    else:
        ok = 0 < value <= MAX_TIMEOUT
    if not ok:
        raise ParamError(
            f"expected a number of seconds > 0 and at most {MAX_TIMEOUT:g} (30 days), "
            f"got {shown(value)}"
        )
    return float(value)


def _mib(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 2**40:
        raise ParamError(f"expected a number of MiB > 0, got {shown(value)}")
    return float(value)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ParamError(f"expected true or false, got {shown(value)}")
    return value


# Upper bounds are what later stages can hold: a thread count torch can start.
SETTINGS: dict[str, Setting] = {
    "device": Setting("auto", "auto | cpu | cuda | cuda:N", _device),
    "seeds": Setting([0], "list of integer seeds, or a count", _seeds),
    "repeats": Setting(
        5,
        "timed repetitions of each ctx.time region (>= 1); a training run is timed once",
        _int_from(1, 1_000_000),
    ),
    "warmup": Setting(1, "untimed calls before timing (>= 0)", _int_from(0, 1_000_000)),
    "timeout": Setting(900.0, "seconds per cell (> 0)", _seconds),
    "threads": Setting(
        None,
        "torch intra-op CPU threads in the worker (>= 1; default: torch's choice)",
        _int_from(1, 1024),
    ),  # fmt: skip
    "files_limit_mb": Setting(500.0, "most MiB of result files one cell may write", _mib),
    "fresh_worker": Setting(False, "run each cell in a new worker process", _bool),
}

DEFAULTS: dict[str, Any] = {key: s.default for key, s in SETTINGS.items()}


def read_settings(
    data: dict[str, Any], prefix: str, inherited: dict[str, Any], errors: list[str]
) -> dict[str, Any]:
    """``inherited`` with the settings ``data`` sets, each checked; every mistake is added
    to ``errors`` as ``<prefix><key>: <reason>``."""
    out = dict(inherited)
    for key, setting in SETTINGS.items():
        if key in data:
            try:
                out[key] = setting.parse(data[key])
            except ParamError as exc:
                errors.append(f"{prefix}{key}: {exc}")
    return out


def markdown_table() -> str:
    """The README's table of settings."""
    rows = ["| setting | default | per entry | meaning |", "|---|---|---|---|"]
    for key, s in SETTINGS.items():
        default = "torch's choice" if s.default is None else f"`{s.default}`"
        rows.append(f"| `{key}` | {default} | {'yes' if s.per_entry else 'no'} | {s.doc} |")
    return "\n".join(rows)
