"""Tables for the terminal (rich): cells, summaries, comparisons."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from bench import columns as schema
from bench.compare import Comparison
from bench.headline import Headline
from bench.results import is_missing
from bench.tuned import Choice
from bench.tuned import rows as tuned_rows

STATUS_STYLE = {
    "ok": "green",
    "error": "red",
    "timeout": "magenta",
    "oom": "red",
    "diverged": "yellow",
    "skipped": "dim",
}


#: key columns that stay in a table even when the same in every row
COUNTS = ("status", "cells", "ok")


def fmt_seconds(value: Any) -> str:
    if is_missing(value):
        return ""
    v = float(value)
    if v >= 1:
        return compact(f"{v:.3g} s")
    if v >= 1e-3:
        return f"{v * 1e3:.3g} ms"
    return f"{v * 1e6:.3g} us"


def fmt_bytes(value: Any) -> str:
    if is_missing(value):
        return ""
    v = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(v) < 1024 or unit == "GiB":
            return f"{v:.3g} {unit}" if unit != "B" else f"{int(v)} B"
        v /= 1024
    return str(value)


def fmt_value(value: Any) -> str:
    if is_missing(value):
        return ""
    if isinstance(value, float):
        return _digits(value)
    return str(value)


def _digits(value: float) -> str:
    """4 significant digits, more where those would show a value that is not whole as
    a small whole number (an SSIM of 0.999982 read "1", as if exact)."""
    text = f"{value:.4g}"
    for digits in (6, 8):
        if not math.isfinite(value) or any(c in text for c in ".en") or float(text) == value:
            break
        if abs(float(text)) > 100:
            break
        text = f"{value:.{digits}g}"
    return text


_EXPONENT = re.compile(r"e([+-])0*(\d)")


def compact(text: str) -> str:
    """``1.114e+04`` -> ``1.114e4``, ``2.5e-07`` -> ``2.5e-7``: numbers for narrow tables."""
    return _EXPONENT.sub(lambda m: "e" + ("-" if m.group(1) == "-" else "") + m.group(2), text)


def fmt_number(value: Any) -> str:
    """A table entry: floats to 4 significant digits with a compact exponent; an empty
    entry (``bench.columns.blank``) as nothing."""
    if schema.blank(value):
        return ""
    if isinstance(value, (float, np.floating)):
        return compact(_digits(float(value)))
    return str(value)


def varying(cells: pd.DataFrame, cols: list[str]) -> list[str]:
    """Columns whose filled values differ (the ones worth showing); see
    ``bench.columns.varying``."""
    return schema.varying(cells, cols)


def cell_columns(cells: pd.DataFrame, columns: list[str] | None = None) -> list[str]:
    """The columns of a cells table: the given ones (checked), or the task when several,
    the configuration, the seed when several, the status and every measure."""
    if columns:
        return _resolve(cells, columns)
    return [*_keys(cells), *_measures(cells)]


def _resolve(cells: pd.DataFrame, names: list[str], prefer: str = "") -> list[str]:
    """Column names as given, or by their short name (``final_rel_error``, ``solve``)."""
    out = []
    for name in names:
        try:
            out.append(schema.resolve(cells.columns, name, prefer=prefer))
        except KeyError:
            raise KeyError(f"no column {name!r}; columns are: {', '.join(cells.columns)}") from None
    return out


def _keys(cells: pd.DataFrame) -> list[str]:
    """What tells the rows apart: the task (when several), the configuration, the seed
    (when several), the status."""
    seed = ["seed"] if cells["seed"].nunique() > 1 else []
    task = ["task"] if cells["task"].nunique() > 1 else []
    config = schema.distinguishing(cells, schema.configuration_columns(cells))
    return [*task, *config, *seed, "status"]


def _measures(cells: pd.DataFrame) -> list[str]:
    cols = cells.columns
    return [
        *schema.timers(cols),
        *schema.speedups(cols),
        *schema.memory(cols),
        *schema.metrics(cols),
    ]


def _lead(cells: pd.DataFrame, headline: Headline | None) -> list[str]:
    """The headline's columns (quality, then cost), then any speedups asked for."""
    if headline is None:
        return []
    lead = [*headline.quality_columns, headline.cost]
    lead = [c for c in dict.fromkeys(lead) if c in cells.columns]
    return lead + [c for c in schema.speedups(cells.columns) if c not in lead]


def _fmt_cell(col: str, value: Any) -> str:
    kind = schema.unit(col)
    if kind == "s":
        return fmt_seconds(value)
    if kind == "B":
        return fmt_bytes(value)
    if kind == "x":
        return "" if is_missing(value) else compact(f"x{value:.3g}")
    return fmt_number(value)


def _header(col: str) -> str:
    """The report's header of a column: ``time.solve``, ``final_rel_error``, ``solver.rtol``."""
    if col.startswith(schema.TIME) and col.endswith(".median"):
        return col.removesuffix(".median")
    return col.removeprefix(schema.PARAM).removeprefix(schema.METRIC)


def _headers(cols: list[str]) -> dict[str, str]:
    """Short headers; a short name two columns share (``param.value`` and
    ``metric.value``) stays whole for the second."""
    out: dict[str, str] = {}
    for col in cols:
        short = schema.short_name(col)
        out[col] = col if short in out.values() else short
    return out


def _is_measure(col: str) -> bool:
    return col == "wall" or col.startswith((*schema.MEASURES, schema.SPEEDUP))


CONFIG = "configuration"


def fitted_tables(
    rows: pd.DataFrame,
    keys: list[str],
    measures: list[str],
    *,
    title: str = "",
    width: int | None = None,
) -> list[Table]:
    """``rows`` as tables no wider than ``width``: the ``keys`` columns (what tells the
    rows apart), then the ``measures`` in order, as many as fit, the others in the next
    tables, which repeat a row number (``#``) and the first key. A key that is the same
    in every row goes to the title. A number or a header is never broken (a name may
    fold when the keys alone do not fit)."""
    shared, keys = _shared_keys(rows, keys)
    rows = rows.assign(**{"#": range(1, len(rows) + 1)})
    cols = _Columns.of(rows, ["#", *keys, *measures])
    room = (width or 10**6) - 1  # the left border; each column takes 3 more
    first, later, keys = _lead_columns(rows, keys, cols, room)
    pages = _pack(measures, cols.need, room - cols.span(first), room - cols.span(later))
    if len(pages) > 1 and "#" not in first:  # the row numbers tie the tables together
        first = ["#", *keys]
        pages = _pack(measures, cols.need, room - cols.span(first), room - cols.span(later))
    tables = []
    for i, page in enumerate(pages):
        name = f"{title} ({i + 1}/{len(pages)})" if title and len(pages) > 1 else title
        name = f"{name}  {shared}" if name and shared else name or shared
        shown = first if i == 0 else later
        tables.append(_fitted_table(name, shown, page, cols))
    return tables


def _shared_keys(rows: pd.DataFrame, keys: list[str]) -> tuple[str, list[str]]:
    """The keys that are the same in every row (of several) as title text
    (``solver=rk4 seed=0``), and the other keys."""
    if len(rows) <= 1:
        return "", keys
    fixed = [k for k in keys if k not in COUNTS and rows[k].map(repr).nunique() == 1]
    shared = " ".join(f"{schema.short_name(k)}={_fmt_cell(k, rows[k].iloc[0])}" for k in fixed)
    return shared, [k for k in keys if k not in fixed]


@dataclass
class _Columns:
    """A table's columns by name: the header, the cells as text, and the characters
    each needs (its widest cell or header)."""

    headers: dict[str, str]
    texts: dict[str, list[str]]
    need: dict[str, int]

    @classmethod
    def of(cls, rows: pd.DataFrame, names: list[str]) -> _Columns:
        """The columns ``names`` of ``rows``, formatted."""
        headers = _headers(names)
        texts = {c: [_fmt_cell(c, v) for v in rows[c]] for c in names}
        need = {c: max([len(headers[c]), *map(len, texts[c])]) for c in texts}
        return cls(headers, texts, need)

    def span(self, names: list[str]) -> int:
        """The width of the columns ``names`` with their borders and padding."""
        return sum(self.need[c] + 3 for c in names)


def _lead_columns(
    rows: pd.DataFrame, keys: list[str], cols: _Columns, room: int
) -> tuple[list[str], list[str], list[str]]:
    """The columns before the measures in the first table and in the next ones, and
    the keys; where the keys would fill the table, a configuration label column
    (added to ``cols``) stands for those that name it."""
    lead = keys[:1] if keys and cols.need[keys[0]] <= room // 3 else []
    later = ["#", *lead]
    first = keys
    if cols.span(["#", *keys]) > room * 2 // 3:
        # the configuration alone would fill the table: its keys as one label column
        # (``svf contrast=t2 symmetric=True``) that folds onto more lines, never cut, so
        # that two configurations never read alike; then the seed, the status, the measures
        named = [k for k in keys if k not in ("seed", *COUNTS)]
        texts = [config_label(row, named) for _, row in rows.iterrows()]
        cols.texts[CONFIG] = texts
        cols.headers[CONFIG] = CONFIG
        cols.need[CONFIG] = min(max(map(len, texts), default=0), max(room // 3, len(CONFIG)))
        keys = [CONFIG, *[k for k in keys if k not in named]]
        first = later = ["#", *keys]
    return first, later, keys


def _fitted_table(name: str, shown: list[str], page: list[str], cols: _Columns) -> Table:
    """One table: the columns ``shown`` (row number and keys; the configuration label
    folds), then the measures of ``page``, right-aligned and never wrapped."""
    table = Table(title=name or None, header_style="bold", title_justify="left")
    for col in shown:
        table.add_column(
            cols.headers[col],
            justify="right" if col == "#" else "left",
            overflow="fold",
            min_width=cols.need[col] if col == CONFIG else len(cols.headers[col]),
            max_width=cols.need[col] if col == CONFIG else None,
        )
    for col in page:
        table.add_column(cols.headers[col], justify="right", no_wrap=True, min_width=cols.need[col])
    for r in range(len(cols.texts["#"])):
        values: list[Any] = []
        for col in [*shown, *page]:
            text = cols.texts[col][r]
            values.append(Text(text, style=STATUS_STYLE.get(text, "")) if col == "status" else text)
        table.add_row(*values)
    return table


def _pack(measures: list[str], need: dict[str, int], first: int, later: int) -> list[list[str]]:
    """The measures in order, into tables of ``first`` characters, then ``later``."""
    pages: list[list[str]] = [[]]
    budget, used = first, 0
    for col in measures:
        if pages[-1] and used + need[col] + 3 > budget:
            pages.append([])
            budget, used = later, 0
        pages[-1].append(col)
        used += need[col] + 3
    return pages


def cells_table(cells: pd.DataFrame, title: str = "", columns: list[str] | None = None) -> Table:
    """One table of the given columns (all of them with none given)."""
    cols = cell_columns(cells, columns)
    keys = [c for c in cols if not _is_measure(c)]
    return fitted_tables(cells, keys, [c for c in cols if _is_measure(c)], title=title)[0]


def task_tables(
    cells: pd.DataFrame,
    title: str = "",
    *,
    meta: dict[str, Any] | None = None,
    width: int | None = None,
    everything: bool = False,
    columns: list[str] | None = None,
) -> list[Table | str]:
    """One table per task, each with only the columns its cells filled (a suite mixing
    tasks would otherwise show the union of every task's columns), no wider than
    ``width``. A task whose run recorded its headline (``meta``, run.json) shows the
    configuration, then its quality metrics and cost; the other measures with
    ``everything`` (in further tables), else a line says how many there are. A run from
    before headlines shows every measure. ``columns``: these only, in this order."""
    out: list[Table | str] = []
    for task, group in cells.groupby("task", sort=False):
        group = group.dropna(axis=1, how="all")
        label = f"{title}: {task}" if title else str(task)
        if columns:
            cols = [c for c in _resolve(cells, columns) if c in group.columns]
            keys = [c for c in cols if not _is_measure(c)]
            out += fitted_tables(
                group, keys, [c for c in cols if _is_measure(c)], title=label, width=width
            )
            continue
        lead = _lead(group, schema.headline(meta or {}, str(task), group))
        rest = [c for c in _measures(group) if c not in lead]
        shown = [*lead, *rest] if everything or not lead else lead
        out += fitted_tables(group, _keys(group), shown, title=label, width=width)
        hidden = len(rest) if lead and not everything else 0
        if hidden:
            out.append(_more(hidden, rest))
        own = schema.own_settings(group)
        if own:
            out.append("set by each plugin, not in the rows: " + "; ".join(own))
        mixed = schema.untuned_beside_tuned(group)
        if mixed:
            out.append(mixed)
    return out


def _more(hidden: int, rest: list[str]) -> str:
    example = ",".join(schema.short_name(c) for c in rest[:2])
    return f"+{hidden} column{'s' if hidden > 1 else ''} (--all, or --columns {example})"


def errors_table(cells: pd.DataFrame) -> Table | None:
    bad = cells[~cells["status"].isin(["ok"])]
    if bad.empty:
        return None
    table = Table(title="cells not ok", header_style="bold")
    table.add_column("cell")
    table.add_column("status")
    table.add_column("message", overflow="fold")
    labels = schema.cell_labels(cells)
    seeds = cells["seed"].nunique() > 1 if "seed" in cells else False
    for index, row in bad.iterrows():
        status = str(row["status"])
        # which seed failed: two failed seeds of one configuration read apart
        label = f"{labels[index]} seed={row['seed']}" if seeds else labels[index]
        table.add_row(label, Text(status, style=STATUS_STYLE.get(status, "")), str(row["error"]))
    return table


def _filled(value: Any) -> bool:
    return not is_missing(value)


def grouped(cells: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Median of every measure per group, with the count of cells and of ok cells.
    Tasks are never pooled: ``task`` is always the first grouping column."""
    by = ["task", *[c for c in by if c != "task"]]
    missing = [c for c in by if c not in cells.columns]
    if missing:
        raise KeyError(f"no column {missing[0]!r}; columns are: {', '.join(cells.columns)}")
    measures = [c for c in cells.columns if c.startswith(schema.MEASURES)]
    numeric = cells[measures].apply(pd.to_numeric, errors="coerce")
    # A slot a task does not have reads "-" (not NaN, which groupby would drop).
    keys = pd.DataFrame({c: [str(v) if _filled(v) else "-" for v in cells[c]] for c in by})
    keys.index = cells.index
    frame = pd.concat([keys, numeric], axis=1)
    agg = frame.groupby(by, sort=True)[measures].median()
    counts = (
        cells.assign(_ok=cells["status"] == "ok")
        .groupby([keys[c] for c in by], sort=True)["_ok"]
        .agg(cells="count", ok="sum")
    )
    return counts.join(agg).reset_index()


def group_keys(cells: pd.DataFrame, by: list[str]) -> tuple[list[str], list[str]]:
    """What one task's cells are grouped by: the columns asked for, then the
    configuration columns not among them (a group never pools two configurations: seeds
    and repeats are what it aggregates). Returns (columns, the ones added)."""
    asked = _resolve(cells, [c for c in by if c != "task"], prefer=schema.PARAM)
    added = [c for c in schema.configuration_columns(cells) if c not in asked]
    return [*asked, *added], added


def grouped_tables(
    cells: pd.DataFrame,
    by: list[str],
    *,
    meta: dict[str, Any] | None = None,
    width: int | None = None,
    everything: bool = False,
) -> list[Table | str]:
    """One table per task: a row per group (``group_keys``) with the median of each
    measure, the headline's first when the run recorded it; a line names the
    configuration columns added to what was asked."""
    out: list[Table | str] = []
    asked = _resolve(cells, [c for c in by if c != "task"], prefer=schema.PARAM)
    for task, part in cells.groupby("task", sort=False):
        # a column asked for stays, read "-" where this task has none
        part = part[[c for c in part.columns if c in asked or part[c].notna().any()]]
        cols, added = group_keys(part, asked)
        frame = grouped(part, cols).dropna(axis=1, how="all")
        if added:
            names = ", ".join(schema.short_name(c) for c in added)
            out.append(f"{task}: grouped by {names} too (a row never pools configurations)")
        measures = [
            c for c in _measures(frame) if not c.startswith(schema.TIME) or c.endswith(".median")
        ]
        lead = _lead(frame, schema.headline(meta or {}, str(task), part))
        rest = [c for c in measures if c not in lead]
        shown = [*lead, *rest] if everything or not lead else lead
        # medians, robust to a seed's outlier; the report's tables are means (± sd): said,
        # as the two read apart (a user audit)
        title = f"{task} (median over each row's cells)"
        out += fitted_tables(frame, [*cols, "cells", "ok"], shown, title=title, width=width)
        if lead and not everything and rest:
            out.append(_more(len(rest), rest))
    return out


def config_label(values: Any, cols: list[str]) -> str:
    """A configuration in one line: components by name, parameters as name=value
    (empty entries left out); for tables, figure legends and comparisons alike."""
    parts = []
    for col in cols:
        value = values.get(col)
        if is_missing(value):
            continue
        name = schema.short_name(col)
        parts.append(f"{name}={fmt_value(value)}" if col.startswith(schema.PARAM) else str(value))
    return " ".join(parts)


def _add_column(table: Table, name: str, label: bool) -> None:
    """A label column folds onto more lines (never cut, so that two configurations never
    read alike); a number column never wraps."""
    if label:
        table.add_column(name, justify="left", overflow="fold")
    else:
        table.add_column(name, justify="right", no_wrap=True)


def comparison_tables(cmp: Comparison) -> list[Table]:
    keys = [t.key for t in cmp.times] + [m.key for m in cmp.metrics]
    several = len({str(k.get("task")) for k in keys}) > 1

    def label(key: dict[str, Any]) -> str:
        """What differs from the task's other configurations (as the gate table and the
        compare page say it); the task first when the runs hold several."""
        return f"{key.get('task')}: {cmp.label(key)}" if several else cmp.label(key)

    tables = []
    if cmp.times:
        t = Table(title=f"time: {cmp.run_b} / {cmp.run_a}", header_style="bold")
        for name in ("cell", "timer", "A median", "B median", "ratio", "p (adj.)", "n"):
            _add_column(t, name, name in ("cell", "timer"))
        for row in cmp.times:
            sig = row.significant
            style = "red" if sig and row.ratio > 1 else "green" if sig else ""
            ratio = (
                f"x{row.ratio:.3f}"
                if math.isfinite(row.ratio)
                else ("both 0" if math.isnan(row.ratio) else "from 0")
            )
            t.add_row(
                label(row.key),
                row.timer,
                fmt_seconds(row.median_a),
                fmt_seconds(row.median_b),
                Text(ratio, style=style),
                f"{row.p_adjusted:.2g}"
                if row.testable
                else ("untestable, no overlap" if row.separated else "untestable"),
                f"{row.n_a}/{row.n_b}",
            )
        tables.append(t)
    if cmp.metrics:
        t = Table(title="metrics (mean over seeds)", header_style="bold")
        for name in ("cell", "metric", "A", "B", "delta", "relative", "seeds"):
            _add_column(t, name, name in ("cell", "metric", "seeds"))
        for row in cmp.metrics:
            rel = "" if not math.isfinite(row.relative) else f"{row.relative * 100:+.2f}%"
            t.add_row(
                label(row.key),
                schema.short_name(row.metric),
                fmt_value(row.a),
                fmt_value(row.b) if math.isfinite(row.b) else f"({row.status_b})",
                f"{row.delta:+.4g}" if math.isfinite(row.delta) else "",
                rel,
                row.seeds,
            )
        tables.append(t)
    if cmp.status_changes:
        t = Table(title="status changes", header_style="bold")
        for name in ("cell", "A", "B"):
            t.add_column(name)
        for key, sa, sb in cmp.status_changes:
            t.add_row(label(key), sa, sb)
        tables.append(t)
    return tables


#: control characters (C0 but newline and tab, DEL, C1): ESC starts a terminal sequence
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class SafeConsole(Console):
    """A console that writes no control character from the text it shows: a parameter
    value, a plugin's error or a received results file holding ``\x1b]0;...\x07`` or
    ``\x1b[31m`` would retitle or recolour the terminal of whoever reads them. Rich's
    own styling and cursor moves (its control segments) pass; text is stripped of them
    as it is written, widths unchanged (rich counts them as zero columns)."""

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        clean = (
            segment
            if segment.control or not _CONTROL.search(segment.text)
            else Segment(_CONTROL.sub("", segment.text), segment.style, segment.control)
            for segment in buffer
        )
        return super()._render_buffer(clean)


def make_console(stderr: bool = False) -> Console:
    """A console (``SafeConsole``); when output is not a terminal (CI logs, pipes)
    tables get 200 columns instead of rich's default 80 (or ``COLUMNS`` when set), so
    they are not folded cell by cell."""
    probe = Console(stderr=stderr)
    width = None if probe.is_terminal or _columns_env() else 200
    # No markup: tables and messages carry user text (errors, params like [64, 64], pip
    # extras like dynbench[plot]) that rich would read as style tags; styling is Text.
    return SafeConsole(stderr=stderr, highlight=False, markup=False, width=width)


def _columns_env() -> bool:
    """``COLUMNS`` set (rich then sizes the console to it, terminal or not)."""
    return os.environ.get("COLUMNS", "").isdigit()


def files_table(run: Any, cells: Any) -> Table:
    """The result files of the cells shown: label, name, kind, size, path in the run."""
    files = run.files[run.files["cell_id"].isin(set(cells["cell_id"]))]
    labels = dict(zip(run.cells["cell_id"], run.cells["label"]))
    table = Table(
        title=f"result files ({len(files)}, under {run.path})",
        header_style="bold",
        title_justify="left",
    )
    for col in ("cell", "label", "name", "kind", "size", "path"):
        table.add_column(col, overflow="fold")
    for row in files.itertuples():
        table.add_row(
            row.cell_id,
            str(labels.get(row.cell_id, "")),
            row.name,
            row.kind,
            _size(int(row.bytes)),
            row.path,
        )
    return table


def tuning_table(found: list[Choice]) -> Table:
    """A tuned run's choices (``bench.tuned.rows``): per configuration the setting its
    validation chose, the chosen and the next best validation mean, and how many
    settings qualified."""
    columns, rows = tuned_rows(found)
    table = Table(title="tuning: the setting each configuration chose (validation means)",
                  title_justify="left")  # fmt: skip
    table.add_column("#", justify="right")
    for name in columns:
        table.add_column(
            name, justify="right" if "score" in name or name == "next best" else "left"
        )
    for i, (choice, row) in enumerate(zip(found, rows), 1):
        cells = [Text(fmt_number(v)) if not isinstance(v, str) else Text(v) for v in row]
        if choice.chosen is None:
            cells[columns.index("chosen")].stylize("yellow")
        table.add_row(str(i), *cells)
    return table


def _size(nbytes: int) -> str:
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} B"
