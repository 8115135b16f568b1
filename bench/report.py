"""``bench report``: one self-contained HTML page for a run, or for two runs compared.

The page opens offline: its styles, its script, the plotting library and the
pictures are inside it. Plots use plotly.js, inlined from the ``plotly`` Python
package (the convention of this field's reports, benchopt's among them; interactive
zoom and hover come with it). Tables are rendered by a few lines of script from the
data embedded as JSON, so thousands of cells stay quick: a table shows at most
``ROW_LIMIT`` rows at a time, filtered and sorted over all of them.

What the page holds:

- the run: suite, command, commit, machine, devices, versions, dates; cells by
  status and each failed cell with its message (and traceback when kept);
- per task: the cell table (sortable, filterable; the parameters that differ; the
  speedups over a baseline when one is given); figures chosen by the data —
  cost-quality (each timer against each metric, a line per configuration through the
  medians, every seed's point shown, log axes where the range calls for it),
  training curves per curve name (against step and against time), speedup bars;
  a gallery of each cell's pictures;
- with a second run: ``bench compare``'s table, with significance, regressions marked.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.compare import Comparison, compare_runs, speedups_against
from bench.display import _header, cell_columns, config_label, varying
from bench.results import Run, key_columns

ROW_LIMIT = 500  # rows a table shows at once (filter and sort cover all)
MAX_TRACES = 40  # lines per curve figure; the rest are named in the caption
MAX_POINTS = 400  # points per curve line (evenly thinned)
MAX_METRICS = 6  # cost-quality figures per timer
GALLERY_BUDGET = 40 * 2**20  # bytes of pictures inlined; past it, pictures are linked


class ReportError(ValueError):
    """A report that cannot be made as asked."""


def _plain(value: Any) -> Any:
    """JSON-safe: NaN and infinities become None, numpy scalars Python ones."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


#: JSON escapes for a <script>'s text: with no ``<`` in it, neither ``</script>`` nor
#: ``<!--<script>`` (after which ``</script>`` no longer ends the script) can appear
_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def _json(data: Any) -> str:
    """JSON to put inside a <script>: ``<``, ``>`` and ``&`` as ``\\u003c`` and so on."""
    return json.dumps(_plain(data), separators=(",", ":")).translate(_SCRIPT_SAFE)


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


# --- data for the figures ----------------------------------------------------


def _components(cells: pd.DataFrame) -> list[str]:
    return [c for c in key_columns(cells) if c != "task" and not c.startswith("param.")]


def _config_label(row: pd.Series, cols: list[str]) -> str:
    return config_label(row, cols) or str(row.get("task"))


def _log_axis(values: Iterable[float]) -> bool:
    """Log scale where all values are positive and span more than a factor of 20."""
    data = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    return bool(data.size >= 2 and (data > 0).all() and data.max() / data.min() > 20)


def _numeric(cells: pd.DataFrame, col: str) -> pd.Series:
    return pd.to_numeric(cells[col], errors="coerce")


def cost_quality_figures(cells: pd.DataFrame) -> list[dict[str, Any]]:
    """Each timer's median against each metric that varies: a line per configuration
    (components and the parameters that do not sweep along the line) through the
    per-x medians over seeds, and every cell's own point."""
    ok = cells[cells["status"] == "ok"]
    if len(ok) < 2:
        return []
    timers = [c for c in ok.columns if c.startswith("time.") and c.endswith(".median")]
    metrics = [
        c
        for c in ok.columns
        if c.startswith("metric.")
        and _numeric(ok, c).notna().sum() >= 2
        and _numeric(ok, c).nunique() > 1
    ][:MAX_METRICS]
    comps = _components(ok)
    params = varying(ok, [c for c in key_columns(ok) if c.startswith("param.")])
    figures = []
    for timer in timers:
        if _numeric(ok, timer).notna().sum() < 2:
            continue
        for metric in metrics:
            traces = []
            # A configuration is a line: components, and params that are not the sweep
            # along it. With no components, each varying param's other values are lines.
            line_cols = comps or params[1:]
            groups = ok.groupby(line_cols, dropna=False, sort=True) if line_cols else [("", ok)]
            for i, (_, group) in enumerate(groups):
                x = _numeric(group, timer)
                y = _numeric(group, metric)
                keep = x.notna() & y.notna()
                if not keep.any():
                    continue
                label = _config_label(group.iloc[0], line_cols) if line_cols else "cells"
                colour = f"hsl({(i * 67) % 360},65%,45%)"
                point_cols = [c for c in params if c not in line_cols]
                text = [
                    _config_label(r, point_cols) + f" seed={r['seed']}"
                    for _, r in group[keep].iterrows()
                ]
                traces.append(
                    {
                        "type": "scatter",
                        "mode": "markers",
                        "x": x[keep].tolist(),
                        "y": y[keep].tolist(),
                        "text": text,
                        "name": label,
                        "legendgroup": label,
                        "showlegend": False,
                        "marker": {"color": colour, "opacity": 0.45, "size": 6},
                    }
                )
                # medians over seeds of one configuration, sorted along the metric
                config_cols = [c for c in params if c not in line_cols]
                if config_cols:
                    med = (
                        group[keep]
                        .assign(_x=x[keep], _y=y[keep])
                        .groupby(config_cols, dropna=False)[["_x", "_y"]]
                        .median()
                        .sort_values("_x")
                    )
                    mx, my = med["_x"].tolist(), med["_y"].tolist()
                else:
                    mx, my = [float(x[keep].median())], [float(y[keep].median())]
                traces.append(
                    {
                        "type": "scatter",
                        "mode": "lines+markers",
                        "x": mx,
                        "y": my,
                        "name": label,
                        "legendgroup": label,
                        "line": {"color": colour},
                        "marker": {"color": colour, "size": 8},
                    }
                )
            if not traces:
                continue
            xs = _numeric(ok, timer).tolist()
            ys = _numeric(ok, metric).tolist()
            figures.append(
                {
                    "title": f"{_header(metric)} against {_header(timer)} (s)",
                    "data": traces,
                    "layout": {
                        "xaxis": {"title": {"text": f"{_header(timer)} (s, median)"},
                                  "type": "log" if _log_axis(xs) else "linear"},
                        "yaxis": {"title": {"text": _header(metric)},
                                  "type": "log" if _log_axis(ys) else "linear"},
                    },
                    "caption": "lines through the medians over seeds; faint points: every "
                    "cell (each seed)",
                }
            )  # fmt: skip
    return figures


def _thin(frame: pd.DataFrame, limit: int = MAX_POINTS) -> pd.DataFrame:
    if len(frame) <= limit:
        return frame
    index = np.unique(np.linspace(0, len(frame) - 1, limit).round().astype(int))
    return frame.iloc[index]


def curve_figures(cells: pd.DataFrame, curves: pd.DataFrame) -> list[dict[str, Any]]:
    """Per curve name: its value against step and against time, a line per cell."""
    if curves.empty:
        return []
    mine = curves[curves["cell_id"].isin(set(cells["cell_id"]))]
    if mine.empty:
        return []
    label_cols = _components(cells) + varying(
        cells, [c for c in key_columns(cells) if c.startswith("param.")]
    )
    seeds = cells["seed"].nunique() > 1
    labels = {
        r["cell_id"]: _config_label(r, label_cols) + (f" seed={r['seed']}" if seeds else "")
        for _, r in cells.iterrows()
    }
    figures = []
    for name, group in mine.groupby("curve", sort=True):
        ids = list(dict.fromkeys(group["cell_id"]))
        shown, left = ids[:MAX_TRACES], len(ids) - MAX_TRACES
        values = pd.to_numeric(group["value"], errors="coerce")
        for axis in ("step", "time"):
            traces = []
            for cell_id in shown:
                points = _thin(group[group["cell_id"] == cell_id].sort_values("step"))
                x = pd.to_numeric(points[axis], errors="coerce")
                if axis == "time" and x.isna().all():
                    continue
                traces.append(
                    {
                        "type": "scatter",
                        "mode": "lines",
                        "x": x.tolist(),
                        "y": pd.to_numeric(points["value"], errors="coerce").tolist(),
                        "name": labels.get(cell_id, cell_id),
                    }
                )
            if not traces:
                continue
            caption = f"{len(ids)} cells" + (f"; the first {MAX_TRACES} shown" if left > 0 else "")
            figures.append(
                {
                    "title": f"{name} against {axis}",
                    "data": traces,
                    "layout": {
                        "xaxis": {"title": {"text": "step" if axis == "step" else "time (s)"}},
                        "yaxis": {"title": {"text": str(name)},
                                  "type": "log" if _log_axis(values.tolist()) else "linear"},
                    },
                    "caption": caption,
                }
            )  # fmt: skip
    return figures


def speedup_figures(cells: pd.DataFrame) -> list[dict[str, Any]]:
    """Bars of each ``speedup.<timer>`` per configuration, every seed's value shown."""
    figures = []
    label_cols = _components(cells) + varying(
        cells, [c for c in key_columns(cells) if c.startswith("param.")]
    )
    for col in [c for c in cells.columns if c.startswith("speedup.")]:
        values = _numeric(cells, col)
        have = cells[values.notna()]
        if have.empty:
            continue
        labels = [_config_label(r, label_cols) for _, r in have.iterrows()]
        frame = pd.DataFrame({"label": labels, "value": values[values.notna()].to_numpy()})
        med = frame.groupby("label", sort=False)["value"].median()
        figures.append(
            {
                "title": f"{col}: baseline time / this time (higher is faster)",
                "data": [
                    {"type": "bar", "x": med.index.tolist(), "y": med.tolist(), "name": "median"},
                    {
                        "type": "scatter",
                        "mode": "markers",
                        "x": frame["label"].tolist(),
                        "y": frame["value"].tolist(),
                        "name": "each seed",
                        "marker": {"color": "black", "size": 5},
                    },
                ],
                "layout": {"yaxis": {"title": {"text": "speedup (x)"}}},
                "caption": "bars: median over seeds; dots: every seed",
            }
        )
    return figures


# --- tables ------------------------------------------------------------------


def table_data(cells: pd.DataFrame) -> dict[str, Any]:
    """Columns and rows of a task's cell table, numbers kept as numbers (the page
    formats them and sorts numerically)."""
    cols = ["label", *[c for c in cell_columns(cells) if c != "label"]]
    if "error" in cells.columns and (cells["status"] != "ok").any():
        cols.append("error")
    cols = [c for c in cols if c in cells.columns]
    kinds = []
    for col in cols:
        if col.startswith("time."):
            kinds.append("seconds")
        elif col.startswith("mem."):
            kinds.append("bytes")
        elif col.startswith("speedup."):
            kinds.append("speedup")
        else:
            kinds.append("value")
    rows = [[_plain(r.get(c)) for c in cols] for _, r in cells.iterrows()]
    return {"columns": [_header(c) for c in cols], "kinds": kinds, "rows": rows}


# --- gallery -----------------------------------------------------------------

_MIME = {"png": "image/png", "svg": "image/svg+xml"}


class _Gallery:
    """Pictures for the page: inlined as data URIs until the budget is spent, then
    linked by their path relative to the page (correct when the page sits in the run
    folder, where ``bench report`` writes it by default)."""

    def __init__(self, run: Run, output: Path, budget: int | None = None) -> None:
        self.run = run
        self.output = output
        self.budget = GALLERY_BUDGET if budget is None else budget
        self.used = 0
        self.linked = 0

    def local(self, rel_path: Any) -> Path | None:
        """The file a ``files.parquet`` path names, links followed, if it lies inside the
        run folder; None otherwise. A received run's table could name any file (an
        absolute path, ``../..``, a link), and the page inlined it."""
        if not isinstance(rel_path, str) or not rel_path:
            return None
        root = self.run.path.resolve()
        path = (root / rel_path).resolve()
        return path if path.is_relative_to(root) else None

    def source(self, path: Path, kind: str) -> str:
        """A picture's ``src``: a data URI, or a link once the budget is spent."""
        size = path.stat().st_size
        if self.used + size <= self.budget:
            self.used += size
            data = base64.b64encode(path.read_bytes()).decode()
            return f"data:{_MIME[kind]};base64,{data}"
        self.linked += 1
        try:
            # "./": a folder named "javascript:..." does not make the link a script
            return "./" + path.relative_to(self.output.parent.resolve()).as_posix()
        except ValueError:
            return path.as_uri()

    def html(self, cells: pd.DataFrame) -> str:
        files = self.run.files
        if files.empty:
            return ""
        pictures = files[files["cell_id"].isin(set(cells["cell_id"])) & files["kind"].isin(["png"])]
        # an SVG twin of a PNG adds nothing to a gallery; SVG-only pictures are shown
        svg = files[files["cell_id"].isin(set(cells["cell_id"])) & (files["kind"] == "svg")]
        stems = {(r.cell_id, r.name.rsplit(".", 1)[0]) for r in pictures.itertuples()}
        svg = svg[[(r.cell_id, r.name.rsplit(".", 1)[0]) not in stems for r in svg.itertuples()]]
        pictures = pd.concat([pictures, svg])
        if pictures.empty:
            return ""
        label_cols = _components(cells) + varying(
            cells, [c for c in key_columns(cells) if c.startswith("param.")]
        )
        seeds = cells["seed"].nunique() > 1
        local = [self.local(p) for p in pictures["path"]]
        outside = sum(p is None for p in local)
        present = [p is not None and p.is_file() for p in local]
        missing = len(pictures) - sum(present) - outside
        pictures = pictures.assign(local=local)[present]
        note = (
            f"<p class=dim>{missing} pictures listed in files.parquet are not in this copy "
            "of the run (a published run keeps a few; the full run folder has them all).</p>"
            if missing
            else ""
        )
        if outside:
            note += (
                f"<p class=warn>{outside} pictures listed in files.parquet lie outside the "
                "run folder: not shown.</p>"
            )
        if pictures.empty:
            return note
        parts = [note, '<div class="gallery">']
        for _, cell in cells.iterrows():
            mine = pictures[pictures["cell_id"] == cell["cell_id"]]
            if mine.empty:
                continue
            title = _config_label(cell, label_cols) + (f" seed={cell['seed']}" if seeds else "")
            parts.append(
                f'<figure class="cell" data-text="{_esc(title.lower())}"><figcaption>'
                f"<b>{_esc(title)}</b> <span class=dim>{_esc(cell['status'])} · "
                f"{_esc(cell['cell_id'])}</span></figcaption>"
            )
            for row in mine.itertuples():
                src = self.source(row.local, row.kind)
                parts.append(
                    f'<a href="{_esc(src) if not src.startswith("data:") else "#"}">'
                    f'<img loading="lazy" alt="{_esc(row.name)}" title="{_esc(row.name)}" '
                    f'src="{_esc(src)}"></a>'
                )
            parts.append("</figure>")
        parts.append("</div>")
        return "\n".join(parts)


# --- comparison --------------------------------------------------------------


def comparison_data(cmp: Comparison) -> dict[str, Any]:
    """``bench compare``'s rows: timers with ratio and p (regressions flagged), metric
    deltas and status changes."""

    def key_label(key: dict[str, Any]) -> str:
        parts = [str(key.get("task"))]
        for col, value in key.items():
            if col == "task" or value is None:
                continue
            parts.append(
                f"{col.removeprefix('param.')}={value}" if col.startswith("param.") else str(value)
            )
        return " ".join(parts)

    times = []
    for row in cmp.times:
        if row.significant:
            verdict = "slower" if row.ratio > 1 else "faster"
        else:
            verdict = row.why if not row.testable else "same"
        times.append([key_label(row.key), row.timer, row.median_a, row.median_b, row.ratio,
                      None if not row.testable else row.p_adjusted, verdict])  # fmt: skip
    metrics = [
        [key_label(r.key), r.metric.removeprefix("metric."), r.a, r.b, r.delta, r.relative]
        for r in cmp.metrics
    ]
    status = [[key_label(k), a, b] for k, a, b in cmp.status_changes]
    return {
        "times": {
            "columns": [
                "configuration",
                "timer",
                "median A",
                "median B",
                "B/A",
                "p (adj.)",
                "verdict",
            ],
            "kinds": ["value", "value", "seconds", "seconds", "ratio", "value", "verdict"],
            "rows": times,
        },
        "metrics": {
            "columns": ["configuration", "metric", "A", "B", "B-A", "relative"],
            "kinds": ["value", "value", "value", "value", "value", "ratio"],
            "rows": metrics,
        },
        "status": {
            "columns": ["configuration", "status A", "status B"],
            "kinds": ["value", "value", "value"],
            "rows": status,
        },
        "only_a": cmp.only_a,
        "only_b": cmp.only_b,
    }


# --- the page ----------------------------------------------------------------


def _run_header(run: Run, title: str) -> str:
    meta = run.meta
    git = meta.get("git") or {}
    commit = git.get("commit") or "unknown"
    if git.get("dirty"):
        commit += " (with uncommitted changes)"
    devices = ", ".join(
        f"{d.get('device', '?')}: {d.get('name', '?')}" for d in meta.get("devices", [])
    )
    packages = ", ".join(f"{k} {v}" for k, v in (meta.get("packages") or {}).items() if v)
    counts = run.cells["status"].value_counts()
    status = " · ".join(
        f'<span class="st st-{_esc(s)}">{_esc(s)} {int(n)}</span>' for s, n in counts.items()
    )
    command = meta.get("command") or f"bench run {meta.get('suite_file', '?')}"
    rows = [
        ("suite", meta.get("suite", "?")),
        ("command", command),
        ("commit", commit),
        ("host", meta.get("host", "?")),
        ("devices", devices),
        ("versions", packages),
        ("started", meta.get("start", "?")),
        ("ended", f"{meta.get('end', '?')} ({meta.get('status', '?')})"),
    ]
    body = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in rows)
    failed = run.cells[run.cells["status"] != "ok"]
    fails = ""
    if not failed.empty:
        items = []
        for _, r in failed.iterrows():
            trace = r.get("traceback")
            trace_html = (
                f"<details><summary>traceback</summary><pre>{_esc(trace)}</pre></details>"
                if isinstance(trace, str) and trace
                else ""
            )
            items.append(
                f"<li><b>{_esc(r['label'])}</b> <span class='st st-{_esc(r['status'])}'>"
                f"{_esc(r['status'])}</span> <code>{_esc(r['cell_id'])}</code>: "
                f"{_esc(r.get('error', ''))}{trace_html}</li>"
            )
        fails = (
            f"<details{' open' if len(failed) <= 10 else ''}><summary>cells not ok "
            f"({len(failed)})</summary>"
            f"<ul>{''.join(items)}</ul></details>"
        )
    return (
        f"<section><h2>{_esc(title)}: {_esc(run.name)}</h2><table class=meta>{body}</table>"
        f"<p>{len(run.cells)} cells: {status}</p>{fails}</section>"
    )


def build_report(
    run: Run,
    run_b: Run | None = None,
    *,
    output: Path,
    baseline: str | None = None,
    alpha: float = 0.05,
    plotly_js: Path | None = None,
) -> str:
    """The page's HTML. ``baseline`` is ``COL=VALUE[,VALUE...]`` as in ``bench show``.

    ``plotly_js``: link this copy of plotly.js (by a path relative to ``output``)
    instead of inlining it; many pages kept together then share one 4.6 MB file.
    """

    cells = run.cells
    if baseline:
        try:
            cells = speedups_against(cells, baseline)
        except ValueError as exc:
            raise ReportError(str(exc)) from None
    gallery = _Gallery(run, output)
    figures: list[dict[str, Any]] = []
    tables: list[dict[str, Any]] = []
    sections = [_run_header(run, "run" if run_b is None else "run A (baseline)")]
    if run_b is not None:
        sections.append(_run_header(run_b, "run B"))
        cmp = compare_runs(run, run_b, alpha)
        data = comparison_data(cmp)
        parts = [f"<section><h2>comparison: B against A (alpha {alpha:g})</h2>"]
        if not (cmp.times or cmp.metrics or cmp.status_changes):
            parts.append(
                "<p class=warn>no aligned cells: the runs share no task, components and "
                "parameters</p>"
            )
        parts.append(
            f"<p class=dim>{data['only_a']} configurations only in A, {data['only_b']} only "
            "in B. Times: two-sided Mann-Whitney U on the raw samples, p adjusted for the "
            "number of comparisons (Benjamini-Hochberg); where the sample counts cannot reach "
            "alpha, a difference counts only if the two runs' samples do not overlap.</p>"
        )
        for key, title in (
            ("times", "times"),
            ("metrics", "metrics"),
            ("status", "status changes"),
        ):
            if data[key]["rows"]:
                tables.append(data[key])
                parts.append(f"<h3>{title}</h3>{_table_html(len(tables) - 1)}")
        parts.append("</section>")
        sections.append("".join(parts))
    for task, group in cells.groupby("task", sort=False):
        group = group.dropna(axis=1, how="all")
        tables.append(table_data(group))
        parts = [f"<section class=task><h2>{_esc(task)}</h2>", _table_html(len(tables) - 1)]
        task_figures = (
            speedup_figures(group) + cost_quality_figures(group) + curve_figures(group, run.curves)
        )
        if task_figures:
            parts.append('<div class="figures">')
            for fig in task_figures:
                figures.append(fig)
                index = len(figures) - 1
                parts.append(
                    f'<div class="figure"><h4>{_esc(fig["title"])}</h4>'
                    f'<div class="plot" id="fig{index}"></div>'
                    f"<p class=caption>{_esc(fig.get('caption', ''))}</p></div>"
                )
            parts.append("</div>")
        pictures = gallery.html(group)
        if pictures:
            parts.append(
                f"<h3>pictures</h3><input class=gfilter placeholder='filter pictures'>{pictures}"
            )
        parts.append("</section>")
        sections.append("".join(parts))
    note = ""
    if gallery.linked:
        note = (
            f"<p class=warn>{gallery.linked} pictures are linked, not inlined (past "
            f"{GALLERY_BUDGET / 2**20:.0f} MiB): keep this page beside the run folder.</p>"
        )
    title = run.name if run_b is None else f"{run.name} vs {run_b.name}"
    return _PAGE.format(
        title=_esc(title),
        style=_STYLE,
        plotly=_plotly_tag(output, plotly_js),
        body=note + "\n".join(sections),
        figures=_json(figures),
        tables=_json(tables),
        row_limit=ROW_LIMIT,
        script=_SCRIPT,
    )


def _table_html(index: int) -> str:
    return (
        f'<div class="table" data-table="{index}"><input class=filter placeholder='
        '"filter rows: words that must all appear"> <span class=count></span>'
        '<table class="cells"><thead></thead><tbody></tbody></table></div>'
    )


def _plotly_tag(output: Path, plotly_js: Path | None) -> str:
    """plotly.js inlined, or a ``<script src>`` to a shared copy (written if missing)."""
    from plotly.offline import get_plotlyjs

    if plotly_js is None:
        return f"<script>{get_plotlyjs()}</script>"
    plotly_js = Path(plotly_js)
    if plotly_js.is_dir():
        raise ReportError(
            f"--plotly-js {plotly_js}: is a folder; give a file such as plotly.min.js"
        )
    if not plotly_js.parent.is_dir():
        raise ReportError(f"--plotly-js {plotly_js}: no folder {plotly_js.parent}")
    if not plotly_js.exists():
        plotly_js.write_text(get_plotlyjs(), encoding="utf-8")
    src = os.path.relpath(plotly_js.resolve(), output.resolve().parent)
    return f'<script src="{html.escape(Path(src).as_posix(), quote=True)}"></script>'


def write_report(
    run: Run,
    run_b: Run | None = None,
    *,
    output: Path | None = None,
    baseline: str | None = None,
    alpha: float = 0.05,
    plotly_js: Path | None = None,
) -> Path:
    """Write the page (default ``RUN/report.html``, or ``RUN_B/compare-<A>.html``).

    With ``plotly_js`` the page links that file (written there if missing) instead
    of inlining plotly.js: self-contained no more, but a folder of reports (say
    ``results/published/``) holds one copy of the library rather than one per page.
    """
    if output is None:
        output = (
            run.path / "report.html"
            if run_b is None
            else run_b.path / f"compare-{run.path.name}.html"
        )
    output = Path(output)
    try:
        if output.exists() and output.is_dir():
            raise ReportError(f"{output}: is a folder; give a file name such as report.html")
        if not output.parent.is_dir():
            raise ReportError(f"{output.parent}: no such folder")
        page = build_report(
            run, run_b, output=output, baseline=baseline, alpha=alpha, plotly_js=plotly_js
        )
        output.write_text(page, encoding="utf-8")
    except OSError as exc:  # a read-only folder, a name past 255 characters, a full disk
        raise ReportError(
            f"{_short(exc.filename or output)}: cannot write ({exc.strerror})"
        ) from None
    return output


def _short(path: object, limit: int = 120) -> str:
    """A path to quote in a message: one past ``limit`` characters is cut in the middle."""
    text = str(path)
    return text if len(text) <= limit else f"{text[:60]}...{text[-40:]} ({len(text)} characters)"


_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 2em 4em;color:#222}
h1{font-size:1.5em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-top:1em}
table.meta th{text-align:left;padding-right:1em;color:#555;vertical-align:top}
table.cells{border-collapse:collapse;font-size:12.5px;margin:.4em 0}
table.cells th{cursor:pointer;background:#f3f3f3;position:sticky;top:0;text-align:left}
table.cells th,table.cells td{border:1px solid #e2e2e2;padding:2px 6px;white-space:nowrap}
table.cells td.num{text-align:right;font-variant-numeric:tabular-nums}
table.cells td.err{white-space:normal;max-width:40em;color:#a00}
.table{overflow-x:auto;max-height:32em;overflow-y:auto}
input.filter,input.gfilter{width:28em;padding:3px 6px;margin:.3em 0}
.count,.dim,.caption{color:#777;font-size:12px}
.figures{display:flex;flex-wrap:wrap;gap:1em}.figure{width:560px}.plot{height:380px}
.figure h4{margin:.6em 0 0;font-size:13px;font-weight:600}
.gallery{display:flex;flex-wrap:wrap;gap:1em}
.gallery figure{margin:0;border:1px solid #ddd;padding:.4em;max-width:100%}
.gallery img{max-width:520px;max-height:360px;display:block;margin:.3em 0}
.st{padding:0 .4em;border-radius:3px;background:#eee}.st-ok{background:#d9f2d9}
.st-error,.st-oom,.st-timeout{background:#f8d0d0}.st-diverged{background:#fbe5c8}
.st-skipped{background:#e5e5f5}.warn{color:#a60}
tr.regression td{background:#fde8e8}tr.improvement td{background:#e6f6e6}
"""

_SCRIPT = r"""
function fmt(v, kind){
  if(v===null||v===undefined) return "";
  if(typeof v!=="number") return String(v);
  if(kind==="seconds"){const a=Math.abs(v);
    if(a>=1) return v.toPrecision(4)+" s"; if(a>=1e-3) return (v*1e3).toPrecision(4)+" ms";
    return (v*1e6).toPrecision(4)+" us";}
  if(kind==="bytes"){if(v===0) return "0 B"; const u=["B","KiB","MiB","GiB","TiB"];
    let i=Math.min(4,Math.floor(Math.log(Math.abs(v))/Math.log(1024)));
    return (v/Math.pow(1024,i)).toPrecision(4)+" "+u[i];}
  if(kind==="speedup"||kind==="ratio") return "x"+v.toPrecision(3);
  if(Number.isInteger(v)) return String(v);
  return Math.abs(v)>=1e4||Math.abs(v)<1e-3?v.toExponential(3):v.toPrecision(4);
}
function setupTable(el){
  const spec=TABLES[+el.dataset.table]; const thead=el.querySelector("thead");
  const tbody=el.querySelector("tbody"); const count=el.querySelector(".count");
  const input=el.querySelector("input.filter");
  const text=spec.rows.map(r=>r.map((v,i)=>fmt(v,spec.kinds[i])).join(" ").toLowerCase());
  let order=spec.rows.map((_,i)=>i), sortCol=-1, sortDir=1;
  const hr=document.createElement("tr");
  spec.columns.forEach((c,i)=>{const th=document.createElement("th");th.textContent=c;
    th.title="sort by "+c;th.onclick=()=>{sortDir=(sortCol===i)?-sortDir:1;sortCol=i;
      order.sort((a,b)=>{const x=spec.rows[a][i],y=spec.rows[b][i];
        if(x===null) return 1; if(y===null) return -1;
        const d=typeof x==="number"&&typeof y==="number"?x-y:String(x).localeCompare(String(y));
        return d*sortDir;});
      render();};hr.appendChild(th);});
  thead.appendChild(hr);
  function render(){
    const words=input.value.toLowerCase().split(/\s+/).filter(w=>w);
    const shown=order.filter(i=>words.every(w=>text[i].includes(w)));
    const rows=[];
    for(const i of shown.slice(0,ROW_LIMIT)){
      const r=spec.rows[i]; let cls="";
      const cells=r.map((v,j)=>{const k=spec.kinds[j];
        if(k==="verdict"){if(v==="slower") cls="regression"; if(v==="faster") cls="improvement";}
        const num=typeof v==="number"?" class=num":(spec.columns[j]==="error"?" class=err":"");
        const t=fmt(v,k).replace(/&/g,"&amp;").replace(/</g,"&lt;");
        return "<td"+num+">"+t+"</td>";}).join("");
      rows.push("<tr class='"+cls+"'>"+cells+"</tr>");}
    tbody.innerHTML=rows.join("");
    count.textContent=shown.length+" of "+spec.rows.length+" rows"+
      (shown.length>ROW_LIMIT?" (first "+ROW_LIMIT+" shown; filter to narrow)":"");
  }
  input.addEventListener("input",render); render();
}
document.querySelectorAll("div.table").forEach(setupTable);
document.querySelectorAll("input.gfilter").forEach(inp=>{
  const gallery=inp.nextElementSibling;
  inp.addEventListener("input",()=>{const w=inp.value.toLowerCase();
    gallery.querySelectorAll("figure").forEach(f=>{
      f.style.display=f.dataset.text.includes(w)?"":"none";});});});
const observer=new IntersectionObserver(entries=>{
  for(const e of entries){ if(!e.isIntersecting) continue; observer.unobserve(e.target);
    const fig=FIGURES[+e.target.id.slice(3)];
    const layout=Object.assign({margin:{l:60,r:10,t:30,b:50},legend:{font:{size:10}}},
      fig.layout);
    Plotly.newPlot(e.target,fig.data,layout,{responsive:true,displaylogo:false});}
},{rootMargin:"400px"});
document.querySelectorAll("div.plot").forEach(el=>observer.observe(el));
"""

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dynbench report: {title}</title>
<style>{style}</style>
{plotly}
</head><body>
<h1>dynbench report: {title}</h1>
{body}
<script>
const FIGURES={figures};
const TABLES={tables};
const ROW_LIMIT={row_limit};
{script}
</script>
</body></html>
"""
