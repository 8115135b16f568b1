"""A tuned run read back (``bench.tuning`` runs it): which rows are its results, and
what each configuration chose.

A tuned entry's cells carry a ``role``: ``validation`` (a setting of the grid on the
validation seeds), ``test`` (the chosen setting on the test seeds) or ``superseded``
(test cells of a setting that is no longer the choice: ``--retry-failed`` ran a failed
validation cell again and the choice moved; they stay in the folder, measured, and
are not results). A table, a figure or a verdict is made of the *reported* cells:
the test cells and every untuned entry's cells. Pooling a chosen setting's validation
cells with its test cells would report it on the seeds it was chosen on, and a
setting that was only tried would read as a result.

``run.json``'s ``tuning`` holds each configuration's settings, validation scores and
choice; ``choices`` reads it into rows a table shows (``bench show``, ``bench
report``), whatever shape a damaged file gives it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

VALIDATION, TEST, SUPERSEDED = "validation", "test", "superseded"
#: the roles that are not results
NOT_REPORTED = frozenset({VALIDATION, SUPERSEDED})


def roles(cells: pd.DataFrame) -> pd.Series:
    """Each cell's role, ``""`` for an untuned entry's."""
    if "role" not in cells.columns:
        return pd.Series("", index=cells.index, dtype=object)
    return cells["role"].map(lambda v: v if isinstance(v, str) else "")


def reported(cells: pd.DataFrame) -> pd.DataFrame:
    """The cells that are results: outside validation, not superseded."""
    return cells[~roles(cells).isin(NOT_REPORTED)]


def not_reported(cells: pd.DataFrame) -> pd.DataFrame:
    return cells[roles(cells).isin(NOT_REPORTED)]


@dataclass
class Choice:
    """One tuned configuration: its grid's validation scores and what it chose."""

    task: str
    configuration: str  # what tells it from the task's other tuned configurations
    select: str  # the metric that chose
    better: str  # "higher" / "lower" / ""
    validation_seeds: list[Any]
    test_seeds: list[Any]
    settings: list[tuple[str, float | None]]  # (label, validation mean or None: out)
    chosen: int | None  # index into settings
    why_none: str = ""

    @property
    def qualified(self) -> int:
        return sum(score is not None for _, score in self.settings)

    @property
    def score(self) -> float | None:
        return None if self.chosen is None else self.settings[self.chosen][1]

    @property
    def runner_up(self) -> float | None:
        """The best score among the other settings that qualified (a setting equal to
        the chosen one in every value it was scored on, say an inert axis, included)."""
        others = [s for i, (_, s) in enumerate(self.settings) if i != self.chosen and s is not None]
        if not others:
            return None
        return max(others) if self.better == "higher" else min(others)

    @property
    def chosen_label(self) -> str:
        return "" if self.chosen is None else self.settings[self.chosen][0]


def choices(meta: dict[str, Any]) -> list[Choice]:
    """Each tuned configuration of ``run.json``'s ``tuning``, in its order. A record
    that is not what bench writes (a damaged or hand-edited file) is left out, never
    raised on: a run folder is read to show what it holds."""
    records = meta.get("tuning") if isinstance(meta, dict) else None
    if not isinstance(records, list):
        return []
    kept = [r for r in records if _well_formed(r)]
    out = []
    for record in kept:
        given = record.get("configuration") or {}
        same_task = [
            r.get("configuration") or {} for r in kept if r.get("task") == record.get("task")
        ]
        keys = dict.fromkeys(k for g in same_task for k in g)
        varying = [k for k in keys if _tells_apart(k, same_task)]
        label = " ".join(f"{k}={_text(given[k])}" for k in varying if k in given)
        out.append(_choice(record, label or "default"))
    return out


def _tells_apart(key: str, given: list[dict[str, Any]]) -> bool:
    """Whether ``key`` differs across the configurations and is not decided by its
    component alone (``method.levels`` where each method keeps one value)."""
    if len({_text(g.get(key)) for g in given}) <= 1:
        return False
    slot = key.split(".")[0]
    if "." not in key or not any(slot in g for g in given):
        return True
    per_component: dict[str, set[str]] = {}
    for g in given:
        per_component.setdefault(_text(g.get(slot)), set()).add(_text(g.get(key)))
    return any(len(values) > 1 for values in per_component.values())


def _well_formed(record: Any) -> bool:
    return (
        isinstance(record, dict)
        and isinstance(record.get("configuration", {}), dict)
        and isinstance(record.get("settings"), list)
        and all(isinstance(s, dict) for s in record["settings"])
    )


def _choice(raw: dict[str, Any], label: str) -> Choice:
    settings = raw["settings"]
    scores = raw.get("scores") if isinstance(raw.get("scores"), list) else []
    shown = []
    for i, setting in enumerate(settings):
        score = scores[i] if i < len(scores) else None
        finite = isinstance(score, (int, float)) and not isinstance(score, bool)
        score = float(score) if finite and math.isfinite(score) else None
        shown.append((" ".join(f"{k}={_text(v)}" for k, v in setting.items()), score))
    chosen = raw.get("chosen")
    index = next((i for i, s in enumerate(settings) if s == chosen), None) if chosen else None
    better = raw.get("better") if raw.get("better") in ("higher", "lower") else ""
    return Choice(
        task=str(raw.get("task", "?")),
        configuration=label,
        select=str(raw.get("select", "?")),
        better=better,
        validation_seeds=_list(raw.get("validation_seeds")),
        test_seeds=_list(raw.get("test_seeds")),
        settings=shown,
        chosen=index,
        why_none=str(raw.get("why_none") or "") if index is None else "",
    )


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def _text(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return str(int(value)) if abs(value) < 1e15 else f"{value:g}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def seeds_text(seeds: list[Any]) -> str:
    """``100, 101``; a run of consecutive integers reads ``0-4``."""
    ints = [s for s in seeds if isinstance(s, int) and not isinstance(s, bool)]
    if len(ints) == len(seeds) > 2 and ints == list(range(ints[0], ints[0] + len(ints))):
        return f"{ints[0]}-{ints[-1]}"
    return ", ".join(str(s) for s in seeds)


def summary(found: list[Choice], hidden: pd.DataFrame, where: str = "the tables") -> str:
    """One line on what the tables leave out and why."""
    n_val = int((roles(hidden) == VALIDATION).sum())
    n_sup = int((roles(hidden) == SUPERSEDED).sum())
    validation = " / ".join(dict.fromkeys(seeds_text(c.validation_seeds) for c in found))
    test = " / ".join(dict.fromkeys(seeds_text(c.test_seeds) for c in found))
    line = (
        f"tuned: {len(found)} configuration(s) chose a setting on validation seeds "
        f"{validation or '?'} ({n_val} cells, not in {where}: only the chosen settings on "
        f"the test seeds {test or '?'} are)"
    )
    if n_sup:
        line += (
            f"; {n_sup} test cells of settings no longer chosen (a retried validation "
            "cell moved the choice) are superseded, left out too"
        )
    return line
