"""The cells table's column schema, in one place: what each column is, which ones say
what a cell measured, and what a *configuration* is.

A cells table has identity columns (``cell_id``, ``suite``, ``bench``, ``label``,
``task``), one column per component slot (the plugin's name), ``param.<name>`` and
``param.<slot>.<name>`` (resolved values, defaults included), ``seed``, the status
columns, and what was measured: ``time.<timer>.<stat>`` (``median``, ``mean``, ``n``,
...), ``mem.<name>`` (bytes), ``metric.<name>``; ``show``/``report`` add
``speedup.<timer>``.

A configuration is what a suite varied: within one task, the component columns and
the parameters whose values differ across that task's cells; never the defaults
nobody changed, never the seed. Its label reads ``solver=rk4 step_size=0.01``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import pandas as pd

from bench.cell import TEST
from bench.headline import Headline
from bench.results import NOT_REPORTED, is_missing, key_columns, roles

TIME, MEM, METRIC, PARAM, SPEEDUP = "time.", "mem.", "metric.", "param.", "speedup."
MEASURES = (TIME, MEM, METRIC)


def timers(columns: Any) -> list[str]:
    """``time.<timer>.median`` columns, in table order."""
    return [c for c in columns if c.startswith(TIME) and c.endswith(".median")]


def timer_name(column: str) -> str:
    """``time.solve.median`` -> ``solve``; ``speedup.solve`` -> ``solve``."""
    return column.removeprefix(SPEEDUP).removeprefix(TIME).removesuffix(".median")


def metrics(columns: Any) -> list[str]:
    return [c for c in columns if c.startswith(METRIC)]


def memory(columns: Any) -> list[str]:
    return [c for c in columns if c.startswith(MEM)]


def speedups(columns: Any) -> list[str]:
    return [c for c in columns if c.startswith(SPEEDUP)]


def params(columns: Any) -> list[str]:
    return [c for c in columns if c.startswith(PARAM)]


def components(cells: pd.DataFrame) -> list[str]:
    """The component slot columns (the plugin each cell used)."""
    return [c for c in key_columns(cells) if c != "task" and not c.startswith((PARAM, SPEEDUP))]


def short_name(column: str) -> str:
    """A column as a header: ``time.solve.median`` -> ``solve``,
    ``metric.final_rel_error`` -> ``final_rel_error``, ``param.solver.rtol`` -> ``solver.rtol``."""
    if column.startswith(TIME) and column.endswith(".median"):
        return timer_name(column)
    for prefix in (PARAM, METRIC):
        if column.startswith(prefix):
            return column[len(prefix) :]
    return column


def resolve(columns: Any, name: str, prefer: str = "") -> str:
    """A column by its name or, where exactly one has it, by its short name (``truth``
    for ``param.truth``, ``dice`` for ``metric.dice``, ``solve`` for
    ``time.solve.median``): how the tables head them, so how users type them; where
    several do, the one with the ``prefer`` prefix (a filter's parameter). KeyError
    where none (or several) fits."""
    columns = list(columns)
    if name in columns:
        return name
    found = [c for c in columns if short_name(c) == name]
    if len(found) > 1 and prefer:
        found = [c for c in found if c.startswith(prefer)] or found
    if len(found) == 1:
        return found[0]
    raise KeyError(f"no column {name!r}" + (f" (it could be {', '.join(found)})" if found else ""))


def unit(column: str) -> str:
    """``s`` for times, ``B`` for memory, ``x`` for speedups, else ``""``."""
    if column == "wall" or (column.startswith(TIME) and not column.endswith(".n")):
        return "s"
    if column.startswith(MEM):
        return "B"
    if column.startswith(SPEEDUP):
        return "x"
    return ""


def blank(value: Any) -> bool:
    """An entry a cell does not have: None, NaN, or ``"NaN"`` (how a run written before
    a fix stored NaN in a column of mixed types, which are kept as JSON text)."""
    return is_missing(value) or (isinstance(value, str) and value == "NaN")


def blanks_emptied(cells: pd.DataFrame) -> pd.DataFrame:
    """``cells`` with every ``blank`` parameter entry None (a copy), so that a table
    shows it empty rather than ``NaN``."""
    out = cells.copy()
    for c in params(out.columns):
        if not pd.api.types.is_numeric_dtype(out[c]) and out[c].map(blank).any():
            out[c] = pd.Series(
                [None if blank(v) else v for v in out[c]], index=out.index, dtype=object
            )
    return out


#: columns the pages add to a cells table (a configuration's label, its problem's): not
#: what a cell ran, so never what tells cells apart
DERIVED = ("config", "problem")


def varying(
    cells: pd.DataFrame,
    columns: list[str],
    keys: Sequence[str] | None = None,
    empty: bool = True,
) -> list[str]:
    """The columns whose filled values differ; and, with ``empty``, those empty in some
    cells and set in others that nothing else tells apart: an optional nested plugin
    left out beside one given (a user audit: two networks of one method read as one
    configuration, their seeds pooled). What tells cells apart: ``keys`` where given
    (``("task",)`` for problems: a problem parameter empty in some cells is another
    problem whatever else differs); else the task and the components, then a nested
    plugin's column found so, then the columns already varying. A parameter only some
    plugins have, or only some forms of a task use, empty for the others and the same
    wherever it is set, does not count."""
    present = [c for c in columns if c in cells.columns]
    empties = {c: cells[c].map(blank) for c in present}
    out = {c for c in present if cells[c][~empties[c]].map(repr).nunique() > 1}
    mixed = [c for c in present if c not in out and empties[c].any() and not empties[c].all()]
    if not empty or not mixed:
        return [c for c in present if c in out]

    def splits(column: str, by: list[str]) -> bool:
        told = [cells[k].map(lambda v: "" if blank(v) else repr(v)) for k in by]
        return bool(empties[column].groupby(told or [0] * len(cells)).nunique().max() > 1)

    if keys is not None:
        out.update(c for c in mixed if splits(c, [k for k in keys if k in cells.columns]))
        return [c for c in present if c in out]
    by = [c for c in ("task", *components(cells)) if c in cells.columns and c not in DERIVED]
    # a nested plugin left out beside one given first, against the slots alone: its own
    # parameters varying must not stand in for its name
    for c in mixed:
        if any(other.startswith(c + ".") for other in cells.columns) and splits(c, by):
            out.add(c)
            by.append(c)
    by += [c for c in present if c in out and c not in by]
    for c in mixed:
        if c not in out and splits(c, by):
            out.add(c)
            by.append(c)
    return [c for c in present if c in out]


def configuration_columns(cells: pd.DataFrame) -> list[str]:
    """The columns that make a configuration of these cells (one task's, usually):
    every component column with a value, and the parameters that vary."""
    comps = [c for c in components(cells) if cells[c].notna().any()]
    return _role(cells) + comps + varying(cells, params(cells.columns))


def _role(cells: pd.DataFrame) -> list[str]:
    """``["role"]`` where validation (or superseded) cells sit beside reported ones: a
    tuned setting's validation cells are never pooled with its test cells
    (``bench.tuned``). A test cell and an untuned entry's cell are both reported: alike."""
    found = set(roles(cells).replace({TEST: ""}))
    return ["role"] if len(found) > 1 else []


def _slot(column: str) -> str:
    """``param.method.iterations`` -> ``method``; ``param.lr`` -> ``""``."""
    if column.startswith(PARAM) and column.count(".") >= 2:
        return column[len(PARAM) :].split(".")[0]
    return ""


def distinguishing(cells: pd.DataFrame, cols: list[str]) -> list[str]:
    """``cols`` less each component's parameter (``param.<slot>.<name>``) that the
    component alone decides: one value (or none) in every cell of each of that slot's
    plugins (``method.lr`` where each method keeps its own default, or the suite set it
    once per method). What tells the rows of a table apart without those columns."""
    out = []
    for c in cols:
        slot = _slot(c)
        if slot in cols and slot in cells.columns:
            values = cells[c].map(lambda v: "" if blank(v) else repr(v))
            if values.groupby(cells[slot].map(str)).nunique().max() <= 1:
                continue
        out.append(c)
    return out


def own_settings(cells: pd.DataFrame) -> list[str]:
    """The component parameters a label leaves out because each plugin alone decides them
    (``distinguishing``) but whose values differ between the configurations of these
    cells (one task's): ``architecture.depth: 4 (node), 8 (resnet, revnet)``, a line
    each, for the foot of a table. A budget that differs by plugin (a default, or a
    tuned choice) is said, not hidden."""
    cols = configuration_columns(cells)
    kept = set(distinguishing(cells, cols))
    out = []
    for c in cols:
        slot = _slot(c)
        if c in kept or not slot or slot not in cells.columns:
            continue
        by_value: dict[str, list[str]] = {}
        for plugin, value in zip(cells[slot].map(str), cells[c], strict=True):
            if blank(value):
                continue
            plugins = by_value.setdefault(value_text(value), [])
            if plugin not in plugins:
                plugins.append(plugin)
        if len(by_value) > 1:
            each = ", ".join(f"{v} ({', '.join(ps)})" for v, ps in by_value.items())
            out.append(f"{short_name(c)}: {each}")
    return out


def untuned_beside_tuned(cells: pd.DataFrame) -> str:
    """Where one task's reported cells mix tuned configurations (test cells of a tuned
    entry) with untuned ones, which were not tuned; "" where they do not mix. One rule
    for every method is what makes a comparison fair: a table that mixes says so."""
    role = roles(cells)
    if not (role == TEST).any() or (role == TEST).all():
        return ""
    labels = configuration_labels(cells.drop(columns=["role"], errors="ignore"))
    tuned = set(labels[role == TEST])
    # an untuned entry's cells have no role: validation and superseded cells are tuned
    untuned = [c for c in dict.fromkeys(labels[role == ""]) if c not in tuned]
    if not untuned:
        return ""
    shown_ = ", ".join(untuned[:6]) + (f" and {len(untuned) - 6} more" if len(untuned) > 6 else "")
    return (
        f"not tuned: {shown_} ran at the values the suite gave, beside {len(tuned)} "
        f"configuration{'s' if len(tuned) != 1 else ''} tuned on validation seeds: tuned "
        "against untuned, not one rule for all"
    )


def none_tuned(cells: pd.DataFrame) -> str:
    """Where one task's reported cells compare plugins (a slot holds more than one) and
    none was tuned (no test cell of a tuned entry): the best is the best of the values
    the suite gave, not of methods each tuned by one rule; "" otherwise."""
    if (roles(cells) == TEST).any():
        return ""
    compared = [c for c in components(cells) if cells[c].dropna().nunique() > 1]
    if not compared:
        return ""
    return (
        f"none tuned: each {' and '.join(compared)} ran at the values the suite gave (no "
        "tune block chose them on validation seeds), so the best is the best of these "
        "values, not of methods each tuned by one rule"
    )


def configuration_labels(cells: pd.DataFrame) -> pd.Series:
    """One label per cell, task by task: ``solver=rk4 step_size=0.01``; cells of one
    configuration (seeds apart) share it. Components read as their plugin's name; the
    parameters are those that vary less the ones each plugin alone decides
    (``distinguishing``: a registration method's own ``lr``); an empty entry is left
    out (``blank``: a parameter the cell's plugin does not have)."""
    labels = pd.Series("", index=cells.index, dtype=object)
    for _, group in cells.groupby("task", sort=False, dropna=False):
        cols = distinguishing(group, configuration_columns(group))
        labels.loc[group.index] = [_label(row, cols) for _, row in group[cols].iterrows()]
    return labels


def label(row: pd.Series, cols: list[str]) -> str:
    """One configuration's label from its values in ``cols``: ``solver=rk4 step_size=0.01``
    (empty values left out; ``default`` when nothing is left)."""
    return _label(row, cols)


def _label(row: pd.Series, cols: list[str]) -> str:
    parts = [f"{short_name(c)}={value_text(row[c])}" for c in cols if not blank(row[c])]
    return " ".join(parts) or "default"


def four_digits(value: float) -> str:
    """4 significant digits as the report's script writes them (``toPrecision(4)``)
    where ``.4g`` would show a value that is not whole as a whole number: 0.999982 is
    ``1.000``, not ``1`` (an SSIM read as exact: a user audit); else ``.4g``."""
    text = f"{value:.4g}"
    if math.isfinite(value) and not any(c in text for c in ".en") and float(text) != value:
        text = f"{value:#.4g}".rstrip(".")
    return text


def value_text(value: Any) -> str:
    """A value as a label writes it: a float to 4 significant digits."""
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.4g}"
    return str(value)


def headline(meta: dict[str, Any], task: str, cells: pd.DataFrame | None = None) -> Headline | None:
    """The task's headline as its run recorded it (``run.json``'s ``headlines``); for a
    run made before tasks declared one, None. A quality metric or cost the cells do not
    have is dropped (a task may record a metric only in some cells)."""
    recorded = meta.get("headlines") if isinstance(meta, dict) else None
    found = Headline.from_dict(recorded.get(task)) if isinstance(recorded, dict) else None
    if found is None or cells is None:
        return found
    quality = {k: v for k, v in found.quality.items() if f"{METRIC}{k}" in cells.columns}
    if not quality:
        return None
    cost = found.cost if found.cost in cells.columns else "wall"
    validation = {k: v for k, v in found.validation.items() if f"{METRIC}{k}" in cells.columns}
    return Headline(
        quality=quality,
        cost=cost,
        curves=found.curves,
        problem=found.problem,
        validation=validation,
        size=found.size if f"{METRIC}{found.size}" in cells.columns else "",
        budget=found.budget,  # kept where no cell records it: the report says so
        floor={
            k: v for k, v in found.floor.items() if k in quality and f"{METRIC}{v}" in cells.columns
        },  # fmt: skip
    )


def param_column(key: str) -> str:
    """A parameter's column from its name as a user gives it: ``truth`` or
    ``param.truth`` -> ``param.truth``."""
    return PARAM + key.removeprefix(PARAM)


def problems(cells: pd.DataFrame, columns: list[str]) -> pd.Series:
    """Each cell's problem, as the ``columns`` (a headline's ``problem_columns``, or any
    the user names) that vary among ``cells`` say it: ``truth=svf``; "" for every cell
    where none varies. The best and the Pareto front are judged within one problem."""
    cols = varying(cells, [c for c in columns if c in cells.columns], keys=("task",))
    if not cols:
        return pd.Series("", index=cells.index, dtype=object)
    return pd.Series(
        [label(row, cols) for _, row in cells[cols].iterrows()], index=cells.index, dtype=object
    )


def cell_labels(cells: pd.DataFrame) -> pd.Series:
    """Each cell's task and configuration, as the tables name it among ``cells`` (the
    parameters that vary, ``solver=rk4 solver.step_size=0.1``), with ``(validation)``
    or ``(superseded)`` for a cell that is not reported: two failed cells of one plugin
    with different settings read apart. The seed is not in it."""
    role = roles(cells)
    plain = cells.drop(columns=["role"], errors="ignore")  # the role is said apart
    configs = configuration_labels(plain)
    labels = []
    for i in cells.index:
        words = [str(cells.at[i, "task"]), configs[i]]
        words.append(f"({role[i]})" if role[i] in NOT_REPORTED else "")
        labels.append(" ".join(w for w in words if w))
    return pd.Series(
        labels,
        index=cells.index,
        dtype=object,
    )


#: without a recorded headline, a metric whose name says it is the result comes first
#: (a training loss is not the result: it is what the method minimised)
_QUALITY_WORDS = re.compile(r"error|psnr|accuracy|dice|l2|mae|mse|ssim|ncc|iou", re.IGNORECASE)


def fallback_metric(cells: pd.DataFrame) -> str | None:
    """What a page shows for a task whose run recorded no headline: among the metrics
    with numbers in ``cells`` (give the ok ones), 0/1 flags passed over (reached_psnr_30,
    sine_backend_used), the first named like a result (error, PSNR, accuracy, Dice, ...;
    not a time or a count to reach one, time_to_psnr_25) that varies, else one so named,
    else the first that varies (not a constant: similarity_before), else the first. One
    rule for the report and the site."""
    numbers = {c: pd.to_numeric(cells[c], errors="coerce").dropna() for c in metrics(cells.columns)}
    numbers = {c: v for c, v in numbers.items() if len(v)}
    plain = [c for c, v in numbers.items() if not v.isin([0.0, 1.0]).all()] or list(numbers)
    varied = [c for c in plain if numbers[c].nunique() > 1]
    named = [c for c in plain if _names_a_result(c)]
    exact = [c for c in named if _QUALITY_WORDS.fullmatch(c.removeprefix(METRIC))]
    both = [c for c in named if c in varied]
    first = [c for c in exact if c in varied] or both or named or varied or plain
    return next(iter(first), None)


#: a count, a time, a training score or a reference value beside a result: not the
#: result (loss evaluations, a time to reach a PSNR, the training accuracy, the
#: similarity before registering)
_NOT_RESULT = re.compile(
    r"^(time_to_|steps_to_|reached_|train_)|_(evaluations|iterations|points|before|count)$"
)


def _names_a_result(column: str) -> bool:
    name = column.removeprefix(METRIC)
    return bool(_QUALITY_WORDS.search(name)) and not _NOT_RESULT.search(name)
