"""Tables for the terminal (rich): cells, summaries, comparisons."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bench.compare import Comparison, Violation
from bench.results import is_missing, key_columns

STATUS_STYLE = {
    "ok": "green",
    "error": "red",
    "timeout": "magenta",
    "oom": "red",
    "diverged": "yellow",
    "skipped": "dim",
}


def fmt_seconds(value: Any) -> str:
    if is_missing(value):
        return ""
    v = float(value)
    if v >= 1:
        return f"{v:.3g} s"
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
        return f"{value:.4g}"
    return str(value)


def varying(cells: pd.DataFrame, cols: list[str]) -> list[str]:
    """Columns whose filled values differ (the ones worth showing). A parameter
    that only some plugins have (empty for the others) but is the same wherever
    set does not count."""
    out = []
    for c in cols:
        if c not in cells.columns:
            continue
        values = cells[c].dropna().map(repr)
        if values.nunique() > 1:
            out.append(c)
    return out


def cell_columns(cells: pd.DataFrame, columns: list[str] | None = None) -> list[str]:
    if columns:
        missing = [c for c in columns if c not in cells.columns]
        if missing:
            raise KeyError(f"no column {missing[0]!r}; columns are: {', '.join(cells.columns)}")
        return columns
    keys = key_columns(cells)
    comps = [c for c in keys if not c.startswith("param.") and c != "task"]
    params = varying(cells, [c for c in keys if c.startswith("param.")])
    times = [c for c in cells.columns if c.startswith("time.") and c.endswith(".median")]
    speedups = [c for c in cells.columns if c.startswith("speedup.")]
    mems = [c for c in cells.columns if c.startswith("mem.")]
    metrics = [c for c in cells.columns if c.startswith("metric.")]
    seed = ["seed"] if cells["seed"].nunique() > 1 else []
    task = ["task"] if cells["task"].nunique() > 1 else []
    return [*task, *comps, *params, *seed, "status", *times, *speedups, *mems, *metrics]


def _fmt_cell(col: str, value: Any) -> str:
    if col.startswith("time.") and not col.endswith(".n"):
        return fmt_seconds(value)
    if col.startswith("mem."):
        return fmt_bytes(value)
    if col == "wall":
        return fmt_seconds(value)
    if col.startswith("speedup."):
        return "" if is_missing(value) else f"x{value:.3g}"
    return fmt_value(value)


def _header(col: str) -> str:
    if col.startswith("time.") and col.endswith(".median"):
        return col[: -len(".median")]
    return col.removeprefix("param.").removeprefix("metric.")


def cells_table(cells: pd.DataFrame, title: str = "", columns: list[str] | None = None) -> Table:
    cols = cell_columns(cells, columns)
    table = Table(title=title or None, show_lines=False, header_style="bold")
    for col in cols:
        justify = "right" if col.startswith(("time.", "speedup.", "mem.", "metric.")) else "left"
        table.add_column(_header(col), justify=justify, overflow="fold")
    for _, row in cells.iterrows():
        values = []
        for col in cols:
            text = _fmt_cell(col, row.get(col))
            values.append(Text(text, style=STATUS_STYLE.get(text, "")) if col == "status" else text)
        table.add_row(*values)
    return table


def task_tables(cells: pd.DataFrame, title: str = "") -> list[Table]:
    """One table per task, each with only the columns its cells filled: a suite
    mixing tasks would otherwise show the union of every task's columns."""
    tables = []
    for task, group in cells.groupby("task", sort=False):
        group = group.dropna(axis=1, how="all")
        label = f"{title}: {task}" if title else str(task)
        tables.append(cells_table(group, title=label))
    return tables


def errors_table(cells: pd.DataFrame) -> Table | None:
    bad = cells[~cells["status"].isin(["ok"])]
    if bad.empty:
        return None
    table = Table(title="cells not ok", header_style="bold")
    table.add_column("cell")
    table.add_column("status")
    table.add_column("message", overflow="fold")
    comps = [c for c in key_columns(cells) if not c.startswith("param.") and c != "task"]
    for _, row in bad.iterrows():
        label = " ".join(
            [str(row["task"]), *(str(row[c]) for c in comps if c in row and _filled(row[c]))]
        )
        status = str(row["status"])
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
    measures = [c for c in cells.columns if c.startswith(("time.", "mem.", "metric."))]
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


def grouped_tables(frame: pd.DataFrame, by: list[str]) -> list[Table]:
    """One table per task of ``grouped``'s frame, each with the measures it has."""
    by = [c for c in by if c != "task"]
    return [
        grouped_table(part.dropna(axis=1, how="all"), by, title=str(task))
        for task, part in frame.groupby("task", sort=False)
    ]


def grouped_table(frame: pd.DataFrame, by: list[str], title: str = "") -> Table:
    table = Table(header_style="bold", title=title or None, title_justify="left")
    cols = [*by, "cells", "ok"] + [
        c
        for c in frame.columns
        if c.startswith(("time.", "mem.", "metric."))
        and (not c.startswith("time.") or c.endswith(".median"))
    ]
    for col in cols:
        if col in by:  # names are what tell rows apart: never cut them
            longest = max([len(str(v)) for v in frame[col]] + [len(col)])
            table.add_column(_header(col), justify="left", min_width=min(longest, 48))
        else:
            table.add_column(_header(col), justify="right", overflow="fold")
    for _, row in frame.iterrows():
        table.add_row(*(_fmt_cell(c, row[c]) for c in cols))
    return table


def config_label(values: Any, cols: list[str]) -> str:
    """A configuration in one line: components by name, parameters as name=value
    (empty entries left out); for tables, figure legends and comparisons alike."""
    parts = []
    for col in cols:
        value = values.get(col)
        if is_missing(value):
            continue
        name = col.removeprefix("param.")
        parts.append(f"{name}={fmt_value(value)}" if col.startswith("param.") else str(value))
    return " ".join(parts)


def _key_label(key: dict[str, Any], cols: list[str] | dict[str, list[str]]) -> str:
    if isinstance(cols, dict):
        cols = cols.get(str(key.get("task")), [])
    return config_label(key, cols)


def _label_columns(cmp: Comparison, keys: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Per task: its components, and the parameters that differ between its cells."""
    comps = [c for c in cmp.key_columns if not c.startswith("param.")]
    params = [c for c in cmp.key_columns if c.startswith("param.")]
    out: dict[str, list[str]] = {}
    for task in dict.fromkeys(k.get("task") for k in keys):
        mine = [k for k in keys if k.get("task") == task]
        varying_params = [
            c for c in params if len({repr(k.get(c)) for k in mine if k.get(c) is not None}) > 1
        ]
        out[str(task)] = comps + varying_params
    return out


def comparison_tables(cmp: Comparison) -> list[Table]:
    label_cols = _label_columns(cmp, [t.key for t in cmp.times] + [m.key for m in cmp.metrics])
    tables = []
    if cmp.times:
        t = Table(title=f"time: {cmp.run_b} / {cmp.run_a}", header_style="bold")
        for name in ("cell", "timer", "A median", "B median", "ratio", "p (adj.)", "n"):
            t.add_column(name, justify="left" if name in ("cell", "timer") else "right")
        for row in cmp.times:
            sig = row.significant
            style = "red" if sig and row.ratio > 1 else "green" if sig else ""
            ratio = f"x{row.ratio:.3f}"
            t.add_row(
                _key_label(row.key, label_cols),
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
        for name in ("cell", "metric", "A", "B", "delta", "relative"):
            t.add_column(name, justify="left" if name in ("cell", "metric") else "right")
        for row in cmp.metrics:
            rel = "" if not math.isfinite(row.relative) else f"{row.relative * 100:+.2f}%"
            t.add_row(
                _key_label(row.key, label_cols),
                row.metric.removeprefix("metric."),
                fmt_value(row.a),
                fmt_value(row.b) if math.isfinite(row.b) else f"({row.status_b})",
                f"{row.delta:+.4g}" if math.isfinite(row.delta) else "",
                rel,
            )
        tables.append(t)
    if cmp.status_changes:
        t = Table(title="status changes", header_style="bold")
        for name in ("cell", "A", "B"):
            t.add_column(name)
        for key, sa, sb in cmp.status_changes:
            t.add_row(_key_label(key, label_cols), sa, sb)
        tables.append(t)
    return tables


def violations_table(violations: list[Violation], cmp: Comparison) -> Table:
    t = Table(title="gates crossed", header_style="bold red")
    for name in ("gate", "cell", "what", "change"):
        t.add_column(name)
    labels = _label_columns(cmp, [v.key for v in violations])
    for v in violations:
        t.add_row(str(v.gate), _key_label(v.key, labels), v.what, v.detail)
    return t


def make_console(stderr: bool = False) -> Console:
    """A console; when output is not a terminal (CI logs, pipes) tables get 200
    columns instead of rich's default 80, so they are not folded cell by cell."""
    probe = Console(stderr=stderr)
    width = None if probe.is_terminal else 200
    # No markup: tables and messages carry user text (errors, params like [64, 64], pip
    # extras like dynbench[plot]) that rich would read as style tags; styling is Text.
    return Console(stderr=stderr, highlight=False, markup=False, width=width)


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


def _size(nbytes: int) -> str:
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} B"
