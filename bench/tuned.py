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
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from bench.cell import SUPERSEDED, TEST, VALIDATION
from bench.columns import value_text
from bench.results import NOT_REPORTED, not_reported, reported, roles
from bench.tuning import distinct_scores

__all__ = [
    "NOT_REPORTED", "SUPERSEDED", "TEST", "VALIDATION", "Choice", "choices", "not_reported",
    "reported", "roles", "rows", "seeds_text", "summary",
]  # fmt: skip


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
    #: the task parameters validation ran with instead (other data): ``image=moon``
    validation_params: str = ""
    #: the chosen values at an end of their numeric axis: ``method.weight=0.5 (lowest
    #: of 2 tried)``; the best may lie beyond the grid
    edges: list[str] = field(default_factory=list)

    @property
    def qualified(self) -> int:
        return sum(score is not None for _, score in self.settings)

    @property
    def distinct(self) -> int:
        """How many different validation scores the qualified settings gave (scores
        within a relative 1e-9 are one, as for the choice): fewer than ``qualified``
        where settings tied, because a grid axis changed nothing (a step cap a stopping
        rule never reaches) or because the metric is coarse (Dice on label maps moves in
        steps), so the choice was among fewer outcomes than the grid's size."""
        return distinct_scores([score for _, score in self.settings if score is not None])

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


#: the one setting of a configuration whose plugins declare no grid
NO_GRID = "its defaults (no grid declared)"


def choices(meta: dict[str, Any], tasks: set[str] | None = None) -> list[Choice]:
    """Each tuned configuration of ``run.json``'s ``tuning``, in its order (only those
    of ``tasks`` when given). A record that is not what bench writes (a damaged or
    hand-edited file) is left out, never raised on: a run folder is read to show what
    it holds."""
    records = meta.get("tuning") if isinstance(meta, dict) else None
    if not isinstance(records, list):
        return []
    kept = [r for r in records if _well_formed(r)]
    out = []
    for record in kept:
        if tasks is not None and str(record.get("task", "?")) not in tasks:
            continue
        given = {"entry": record.get("entry"), **(record.get("configuration") or {})}
        same_task = [
            {"entry": r.get("entry"), **(r.get("configuration") or {})}
            for r in kept
            if r.get("task") == record.get("task")
        ]
        keys = dict.fromkeys(k for g in same_task for k in g)
        # the entry's index only where two entries tuned alike-looking configurations
        varying = [k for k in keys if k != "entry" and _tells_apart(k, same_task)]
        if len({_label(g, varying) for g in same_task}) < len(same_task):
            varying = ["entry", *varying]
        # one configuration of its task: what the suite gave it, whole
        whole = [k for k in given if k != "entry"]
        out.append(_choice(record, _label(given, varying) or _label(given, whole) or "default"))
    return out


def _label(given: dict[str, Any], keys: list[str]) -> str:
    return " ".join(f"{k}={value_text(given[k])}" for k in keys if k in given)


def rows(found: list[Choice]) -> tuple[list[str], list[list[Any]]]:
    """The choices as a table (``bench show``, ``bench report``): the columns, then a
    row per configuration (scores as numbers, None where there is none)."""
    tasks = len({c.task for c in found}) > 1
    columns = [*(["task"] if tasks else []), "configuration", "select", "chosen",
               "validation score", "next best", "settings ok"]  # fmt: skip
    table = [
        [*([c.task] if tasks else []), c.configuration,
         f"{c.select} ({c.better})" if c.better else c.select,
         c.chosen_label if c.chosen is not None else f"none: {c.why_none}",
         c.score, c.runner_up, _settings_ok(c)]
        for c in found
    ]  # fmt: skip
    return columns, table


def _settings_ok(choice: Choice) -> str:
    """``8 of 8``; ``8 of 8 (4 distinct)`` where settings tied on their validation score."""
    text = f"{choice.qualified} of {len(choice.settings)}"
    if choice.distinct < choice.qualified:
        text += f" ({choice.distinct} distinct)"
    return text


def _tells_apart(key: str, given: list[dict[str, Any]]) -> bool:
    """Whether ``key`` differs across the configurations and is not decided by its
    component alone (``method.levels`` where each method keeps one value)."""
    if len({repr(g.get(key)) for g in given}) <= 1:
        return False
    slot = key.split(".")[0]
    if "." not in key or not any(slot in g for g in given):
        return True
    per_component: dict[str, set[str]] = {}
    for g in given:
        per_component.setdefault(repr(g.get(slot)), set()).add(repr(g.get(key)))
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
        score = float(score) if _number(score) else None
        text = " ".join(f"{k}={value_text(v)}" for k, v in setting.items())
        shown.append((text or NO_GRID, score))
    chosen = raw.get("chosen")  # {}: the one setting of a configuration with no grid
    index = next((i for i, s in enumerate(settings) if s == chosen), None)
    if not isinstance(chosen, dict):
        index = None
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
        validation_params=" ".join(
            f"{k}={v}" for k, v in (raw.get("validation_params") or {}).items()
        )
        if isinstance(raw.get("validation_params"), dict)
        else "",
        edges=_edges(settings, index, [s for _, s in shown]) if index is not None else [],
    )


def _edges(settings: list[dict[str, Any]], index: int, scores: list[float | None]) -> list[str]:
    """The chosen values (``settings[index]``) that are the lowest or highest of their
    axis, an axis of two numbers or more (a value a grid does not bracket: the best may
    lie beyond it); not where the next value in scored the same (a flat end: the axis
    changed nothing there, and ties go to the first in grid order)."""
    from bench.tuning import tied

    chosen, mine = settings[index], scores[index]
    out = []
    for key, value in chosen.items():
        given = [s[key] for s in settings if key in s]
        if not all(_number(v) for v in [value, *given]):  # a word, a list: no ends
            continue
        ordered = sorted(set(given))
        if len(ordered) < 2 or value not in (ordered[0], ordered[-1]):
            continue
        end = "lowest" if value == ordered[0] else "highest"
        inner = {**chosen, key: ordered[1] if end == "lowest" else ordered[-2]}
        beside = scores[settings.index(inner)] if inner in settings else None
        if mine is not None and beside is not None and tied(mine, beside):
            continue  # flat: the next value in scored the same
        out.append(f"{key}={value_text(value)} ({end} of {len(ordered)} tried)")
    return out


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def grid_edges(found: list[Choice]) -> str:
    """One line naming the configurations whose choice sits at an end of a numeric grid
    axis (a user audit: two built-ins chose the lowest weight and the most iterations
    tried, and one step beyond both beat the starred method); "" where none does."""
    named = [f"{c.configuration}: {', '.join(c.edges)}" for c in found if c.edges]
    if not named:
        return ""
    return (
        f"{len(named)} of {len(found)} configurations chose an end of a numeric grid axis, "
        "so a better setting may lie beyond it (only an axis of 3 values or more can bracket "
        "a best): " + "; ".join(named)
    )


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def seeds_text(seeds: list[Any]) -> str:
    """``100, 101``; a run of consecutive integers reads ``0-4``."""
    ints = [s for s in seeds if isinstance(s, int) and not isinstance(s, bool)]
    if len(ints) == len(seeds) > 2 and ints == list(range(ints[0], ints[0] + len(ints))):
        return f"{ints[0]}-{ints[-1]}"
    return ", ".join(str(s) for s in seeds)


def summary(found: list[Choice], hidden: pd.DataFrame, where: str = "the tables") -> str:
    """One line on what ``where`` leaves out (``hidden``: validation and superseded
    cells) and what it holds instead."""
    n_val = int((roles(hidden) == VALIDATION).sum())
    n_sup = int((roles(hidden) == SUPERSEDED).sum())
    validation = " / ".join(
        dict.fromkeys(
            seeds_text(c.validation_seeds)
            + (f" (with {c.validation_params})" if c.validation_params else "")
            for c in found
        )
    )
    test = " / ".join(dict.fromkeys(seeds_text(c.test_seeds) for c in found))
    chosen = sum(c.chosen is not None for c in found)
    if found:
        line = (
            f"tuned: {chosen} of {len(found)} configurations chose a setting on validation "
            f"seeds {validation} ({n_val} validation cells, not in {where}: only the chosen "
            f"settings on the test seeds {test} are)"
        )
    else:  # run.json has no tuning record (written before bench wrote them at each stage)
        line = f"{n_val} validation cells of a tuned entry, not in {where}"
    if n_sup:
        line += (
            f"; {n_sup} test cells of settings no longer chosen (the choice moved after "
            "they ran: a retried validation cell, or a grid a resume extended) are "
            "superseded, left out too"
        )
    return line


def untested_configurations(meta: dict[str, Any], task: str) -> str:
    """The tuned configurations of ``task`` that have no row in its table, because
    tuning chose no setting for them (every validation cell failed, say), in one line:
    a method that failed outright is not to vanish from the comparison, leaving its
    survivors to be starred. "" where there are none."""
    missing = [c for c in choices(meta, tasks={task}) if c.chosen is None]
    if not missing:
        return ""
    names = "; ".join(f"{c.configuration} ({c.why_none or 'no setting chosen'})" for c in missing)
    return (
        f"not in this table, and so judged with none of it: {len(missing)} tuned "
        f"configuration{'s' if len(missing) > 1 else ''} whose tuning chose no setting, so "
        f"no test cell has run: {names} (the tuning table above lists their validation)"
    )


def tuned_keys(meta: dict[str, Any]) -> list[str]:
    """The parameters a tuned run chose per configuration (the keys of its tuning
    records' settings: ``lr``, ``method.lr``), in order; none for an untuned run."""
    keys: dict[str, None] = {}
    for record in meta.get("tuning") or [] if isinstance(meta, dict) else []:
        settings = record.get("settings") if isinstance(record, dict) else None
        for setting in settings if isinstance(settings, list) else []:
            if isinstance(setting, dict):
                keys.update(dict.fromkeys(str(k) for k in setting))
    return list(keys)
