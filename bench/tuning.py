"""Tuning every method by one rule: a declared grid, chosen on validation seeds,
reported on other seeds.

A benchmark entry with a ``tune`` block::

    - task: registration.pairwise
      matrix: {method: [svf, syn]}
      seeds: [0, 1, 2, 3, 4]            # the test seeds: the only ones reported
      tune:
        grid: declared                  # each plugin's own grid (Plugin.tuning), the
                                        # plugins a component holds included, or
                                        # a mapping swept like matrix: {method.steps: [50, 150]}
        select: dice                    # default: Task.tuning_metric, else the task's
                                        # validation metric, else its primary
        validation_seeds: [100, 101]    # disjoint from the test seeds
        max_settings: 8                 # the most settings any configuration may try
        equal_size: true                # every configuration tries as many settings

runs, for each configuration of the entry (its matrix and params, as without
``tune``), every setting of its grid on the validation seeds (cells with
``role: validation``); then, once those are recorded, the setting with the best mean
of the ``select`` metric over the validation seeds (in the headline's direction; a
setting whose validation cell is not ``ok`` with a finite value is out; ties, scores
within a relative 1e-9 of the best, go to the first in grid order) on the test seeds
(``role: test``), every configuration's first test cell, then every second one
(interleaved, so their times compare under one load). ``run.json`` records each
configuration's grid, its validation scores and its choice. The choice is a function
of the recorded rows, so ``--resume`` makes the same one.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

from bench.cell import Cell
from bench.params import did_you_mean, shown, unknown_key
from bench.results import is_missing

TUNE_KEYS = {
    "grid": "declared (each component's Plugin.tuning) or a mapping swept like matrix",
    "select": "the metric that chooses (default: the task's headline primary)",
    "validation_seeds": "seeds the choice is made on (a list, disjoint from the entry's seeds)",
    "max_settings": "the most settings a configuration may try (default 8)",
    "equal_size": "every configuration tries as many settings (default true)",
    "validation_params": "task parameters the validation cells run with instead (other "
    "data: tune on one image, report on another)",
}
MAX_SETTINGS = 8
# Scores this close (relative) are one: they differ by summation order, by a GPU's
# atomics from run to run, or by two float64 methods identical in exact arithmetic
# (rk4 and the 3/8 rule on a linear problem: 1.3e-11 apart), and such noise must move
# neither a choice nor a report's star or Pareto front. Far below any difference a
# benchmark's quality metric is read for.
TIE_RTOL = 1e-9
# ... or this close (absolute): an error metric is a difference, so the solution's own
# round-off (1e-15 on a solution of size 1) reaches it undivided: rk4 and an unrolled
# rk4 at an error of 5.2e-7 were 1.3e-15 apart, 2.6e-9 relative, and one was starred
# while bench stats said "better on every seed" (a user audit). About 50 ulps of 1:
# errors of 1e-13 and 3e-13 (a tight tolerance) stay apart. It assumes a quality of
# order 1 at most: one in units that make it 1e-15 would tie (no shipped headline's is)
TIE_ATOL = 1e-14


def tied(a: float, b: float) -> bool:
    """Whether two scores count as one (``TIE_RTOL``, ``TIE_ATOL``): equal, or finite
    and that close."""
    if a == b:
        return True
    if not (math.isfinite(a) and math.isfinite(b)):
        return False
    return abs(a - b) <= max(TIE_RTOL * max(abs(a), abs(b)), TIE_ATOL)


def distinct_scores(scores: list[float]) -> int:
    """How many different scores ``scores`` holds, a run of scores each tied with the
    smallest of its run counting once."""
    return len(set(tie_anchors(scores)))


def tie_anchors(scores: list[float]) -> list[float]:
    """Each score as the smallest of its run of ties (scores in increasing order, a
    run each tied with its smallest): one value per class, so that ties are
    transitive where ``tied`` alone is not (a ~ b and b ~ c, a not ~ c). A score that
    is not finite stays itself."""
    anchor: dict[float, float] = {}
    first = None
    for score in sorted(s for s in scores if math.isfinite(s)):
        if first is None or not tied(first, score):
            first = score
        anchor[score] = first
    return [anchor.get(s, s) for s in scores]


@dataclass
class TuneRule:
    """A checked ``tune`` block."""

    grid: dict[str, list[Any]] | None  # None: declared by the components
    select: str  # a metric name
    better: str  # "lower" | "higher"
    validation_seeds: list[int]
    max_settings: int = MAX_SETTINGS
    equal_size: bool = True
    #: task parameters the validation cells run with instead of the entry's (other data)
    validation_params: dict[str, Any] = field(default_factory=dict)
    #: False: ``select`` is the task's default, which a configuration's parameters may
    #: change (``Task.tuning_metric``)
    select_given: bool = True
    #: said before the run where ``select`` is no metric the headline ranks but close to
    #: one (a typo, or another metric the task records: only the cells can tell)
    note: str = ""


@dataclass
class Tuning:
    """One configuration of a tuned entry: its grid, the validation cells of each
    setting, and the test cells each setting would run (only the chosen one's do)."""

    entry: int
    task: str
    configuration: dict[str, Any]  # the entry's given values (components included)
    rule: TuneRule
    settings: list[dict[str, Any]]  # grid points, in order
    validation: list[list[Cell]] = field(default_factory=list)  # per setting
    test: list[list[Cell]] = field(default_factory=list)  # per setting

    def choose(self, rows: dict[str, dict[str, Any]]) -> tuple[int | None, list[float | None]]:
        """The chosen setting's index (None while validation cells are missing or when
        no setting qualifies) and each setting's validation score (None: out)."""
        column = f"metric.{self.rule.select}"
        scores: list[float | None] = []
        missing = False
        for cells in self.validation:
            values = []
            for cell in cells:
                row = rows.get(cell.id)
                if row is None:
                    missing = True
                    break
                value = row.get(column)
                ok = row.get("status") == "ok" and isinstance(value, (int, float))
                values.append(float(value) if ok and math.isfinite(value) else None)
            if missing:
                break
            good = [v for v in values if v is not None]
            scores.append(sum(good) / len(good) if good and len(good) == len(values) else None)
        if missing:
            return None, scores
        sign = -1.0 if self.rule.better == "higher" else 1.0
        qualified = [s for s in scores if s is not None]
        if not qualified:
            return None, scores
        best = min(qualified, key=lambda s: sign * s)
        first = next(i for i, s in enumerate(scores) if s is not None and tied(s, best))
        return first, scores

    def record(self, rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """What run.json keeps of this configuration's tuning."""
        chosen, scores = self.choose(rows)
        return {
            "entry": self.entry,
            "task": self.task,
            "configuration": self.configuration,
            "select": self.rule.select,
            "better": self.rule.better,
            "validation_seeds": self.rule.validation_seeds,
            **(
                {"validation_params": self.rule.validation_params}
                if self.rule.validation_params
                else {}
            ),  # fmt: skip
            "test_seeds": [c.seed for c in self.test[0]] if self.test else [],
            "settings": self.settings,
            "scores": scores,
            "chosen": None if chosen is None else self.settings[chosen],
            "why_none": None if chosen is not None else self._why_none(rows, scores),
        }

    def _why_none(self, rows: dict[str, dict[str, Any]], scores: list[float | None]) -> str:
        if len(scores) < len(self.settings):
            return "validation cells not all recorded yet"
        column = f"metric.{self.rule.select}"
        ended = [rows[c.id] for cells in self.validation for c in cells if c.id in rows]
        ok = [row for row in ended if row.get("status") == "ok"]
        if ok and all(is_missing(row.get(column)) for row in ok):
            recorded = sorted(
                k.removeprefix("metric.")
                for row in ok for k, v in row.items()
                if k.startswith("metric.") and not is_missing(v)
            )  # fmt: skip
            names = list(dict.fromkeys(recorded))
            return (
                f"the validation cells ended ok but record no {self.rule.select!r}"
                f"{did_you_mean(self.rule.select, names)} (they record "
                f"{', '.join(names[:12]) or 'no metric'}{', ...' if len(names) > 12 else ''})"
            )
        return "no setting ended ok with a finite value on every validation seed"


def read_rule(
    block: Any,
    path: str,
    headline: Any,
    seeds: list[int],
    errors: list[str],
    task_params: dict[str, Any] | None = None,
) -> TuneRule | None:
    """Check a ``tune`` block; None (with ``errors``) where it is wrong. ``task_params``:
    the task's declared parameters (``Task.params``), which ``validation_params`` set."""
    from bench.settings import read_settings  # the seeds parser, shared with `seeds:`

    if not isinstance(block, dict):
        errors.append(f"{path}: expected a mapping ({', '.join(TUNE_KEYS)}), got {shown(block)}")
        return None
    n = len(errors)
    for key in block:
        if key not in TUNE_KEYS:
            errors.append(unknown_key(str(key), TUNE_KEYS, f"{path}."))
    grid = block.get("grid", "declared")
    if grid != "declared" and not (isinstance(grid, dict) and grid):
        errors.append(f"{path}.grid: 'declared' or a non-empty mapping, got {shown(grid)}")
    elif isinstance(grid, dict):
        for key, values in grid.items():
            if not isinstance(values, list) or not values:
                errors.append(f"{path}.grid.{key}: a non-empty list of values to try")
    select, better = _select(block.get("select"), headline, path, errors)
    raw = block.get("validation_seeds")
    validation: list[int] = []
    if raw is None:
        errors.append(f"{path}.validation_seeds: missing (the seeds the choice is made on)")
    else:
        checked = read_settings({"seeds": raw}, f"{path}.validation_", {"seeds": [0]}, errors)
        validation = checked.get("seeds", [])
        overlap = sorted(set(validation) & set(seeds))
        if overlap:
            errors.append(
                f"{path}.validation_seeds: {overlap} are also test seeds; a choice made on the "
                "seeds it is reported on is not a held-out choice"
            )
    size = block.get("max_settings", MAX_SETTINGS)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        errors.append(f"{path}.max_settings: a positive integer, got {shown(size)}")
    equal = block.get("equal_size", True)
    if not isinstance(equal, bool):
        errors.append(f"{path}.equal_size: true or false, got {shown(equal)}")
    instead = block.get("validation_params", {})
    if not isinstance(instead, dict):
        errors.append(f"{path}.validation_params: task parameters, got {shown(instead)}")
        instead = {}
    declared = task_params or {}
    for key, value in instead.items():
        if key not in declared:
            errors.append(unknown_key(str(key), declared, f"{path}.validation_params.")
                          + " (the task's own parameters: the data; a component's are "
                          "the tuned method's)")  # fmt: skip
            continue
        try:
            declared[key].validate(value)
        except ValueError as exc:  # ParamError
            errors.append(f"{path}.validation_params.{key}: {exc}")
    if len(errors) > n:
        return None
    return TuneRule(
        grid=None if grid == "declared" else dict(grid),
        select=select,
        better=better,
        validation_seeds=validation,
        max_settings=size,
        equal_size=equal,
        validation_params=dict(instead),
        select_given=block.get("select") is not None,
        note=_unranked(select, headline, path),
    )


def _select(value: Any, headline: Any, path: str, errors: list[str]) -> tuple[str, str]:
    """``dice`` (direction from the headline's quality or validation metrics),
    ``{metric: dice, better: higher}``, or nothing (the headline's first validation
    metric, else its primary)."""
    if value is None:
        if headline is None:
            errors.append(
                f"{path}.select: missing, and the task declares no headline to choose by "
                "(name the metric: `select: {metric: NAME, better: lower}`)"
            )
            return "", "lower"
        # a validation split's metric where the task records one: data the reported
        # metrics never see
        chosen = headline.validation or headline.quality
        name = next(iter(chosen))
        return name, chosen[name]
    if isinstance(value, str):
        known = headline.ranked if headline is not None else {}
        better = known.get(value)
        if better is None:
            hint = did_you_mean(value, known)
            errors.append(
                f"{path}.select: say which way {value!r} is better "
                f"(`select: {{metric: {value}, better: lower}}` or higher){hint}"
            )
            return "", "lower"
        return value, better
    if isinstance(value, dict) and set(value) == {"metric", "better"}:
        if not isinstance(value["metric"], str) or value["better"] not in ("lower", "higher"):
            errors.append(f"{path}.select: metric: NAME, better: lower|higher; got {shown(value)}")
            return "", "lower"
        return value["metric"], value["better"]
    errors.append(f"{path}.select: a metric name or {{metric: NAME, better: lower|higher}}")
    return "", "lower"


def _unranked(select: str, headline: Any, path: str) -> str:
    """A note where ``select`` is not a metric the headline ranks but close to one
    (``accuracy`` beside ``test_accuracy``): a typo makes a tuning that chooses nothing,
    found only once its validation cells ran; another metric the task records
    (``train_accuracy``) is fine. "" where it is ranked, or close to none."""
    known = headline.ranked if headline is not None else {}
    hint = did_you_mean(select, known) if select and select not in known else ""
    if not hint:
        return ""
    return (
        f"{path}.select: {select!r} is not a metric the task's headline ranks "
        f"({', '.join(known)}){hint} It is taken as named: a tuning whose validation cells "
        "record none of it chooses nothing (bench run --strict exits 3)"
    )


def grid_axes(
    rule: TuneRule, components: dict[str, type], path: str
) -> tuple[dict[str, list[Any]], dict[str, str]]:
    """The keys and values a configuration sweeps on validation, and for each key the
    path a message about it names: the rule's own grid (``path.tune.grid.key``), or the
    ``tuning`` each component declares as ``slot.param`` keys, a nested plugin's as
    ``slot.holder.param`` (``components``: by dotted key, holders first, as
    ``bench.components.plugin_classes`` gives them). A plugin whose holder's own grid
    sweeps which plugin it is (``solver: [rk4, euler]``) adds no grid of its own."""
    if rule.grid is not None:
        return rule.grid, {key: f"{path}.tune.grid.{key}" for key in rule.grid}
    axes: dict[str, list[Any]] = {}
    where: dict[str, str] = {}
    swept: list[str] = []  # keys of nested plugins a holder's grid chooses
    for prefix, cls in components.items():
        if any(prefix == s or prefix.startswith(s + ".") for s in swept):
            continue
        for param, values in cls.tuning.items():
            key = f"{prefix}.{param}"
            axes[key] = list(values)
            where[key] = f"{path}.tune (grid: declared, {cls.name}.tuning[{param!r}])"
            if param in cls.plugin_params():
                swept.append(f"{prefix}.{param}")
    return axes, where


def settings_of(axes: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The grid's points, in order (the cartesian product, last key fastest)."""
    keys = list(axes)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(axes[k] for k in keys))]


def check_sizes(tunings: list[Tuning], path: str, errors: list[str]) -> None:
    """All the configurations try as many settings, when asked (each is within
    ``max_settings``: a larger grid is refused before its settings are made); a
    declared grid that no plugin declares (every configuration's one setting its
    defaults) is refused: a tuning in name only."""
    if not tunings:
        return
    rule = tunings[0].rule
    sizes = {_describe(t.configuration): len(t.settings) for t in tunings}
    if rule.grid is None and not any(setting for t in tunings for setting in t.settings):
        errors.append(
            f"{path}.tune: grid declared, but no plugin of {', '.join(sizes)} declares a "
            "tuning grid: each would run at its defaults and read as tuned; give the grid "
            "in the suite (grid: {<slot>.<param>: [values]}, e.g. {method.lr: [...]}) or leave out "
            "tune"
        )
        return
    if rule.equal_size and len(set(sizes.values())) > 1:
        listing = ", ".join(f"{k}: {n}" for k, n in sizes.items())
        errors.append(
            f"{path}.tune: the configurations try different numbers of settings ({listing}); "
            "give each as many, or set `equal_size: false` and say why"
        )


def too_many(configuration: dict[str, Any], n: int, rule: TuneRule, path: str) -> str:
    """The message for a configuration whose grid has ``n`` settings, over the bound."""
    return (
        f"{path}.tune: {_describe(configuration)} tries {n} settings, more than "
        f"max_settings {rule.max_settings}"
    )


def _describe(configuration: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in configuration.items()) or "the entry"
