"""Figures from a run: one measure against another, a line per configuration.

Generic on purpose (nothing here knows what a solver is): ``x`` and ``y`` are any two
numeric columns of ``cells.parquet``, ``by`` the column whose values become lines (or,
left out, one line per configuration), ``facet`` the column whose values become
panels. With neither ``x`` nor ``y``, ``plot_headline`` draws each task's headline:
its cost against its primary quality metric, as the run recorded them. Needs
matplotlib (the ``plot`` extra).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import columns as schema

_STYLES = (
    {"linestyle": "-", "marker": "o"},
    {"linestyle": "--", "marker": "s"},
    {"linestyle": ":", "marker": "^"},
)
#: an axis is logarithmic (when not told) where its values are positive and span this
DECADES = 20.0
#: what a run from before headlines plots by default (the ODE work-precision diagram)
LEGACY_X, LEGACY_Y = "time.solve.median", "metric.final_rel_error"


class PlotError(ValueError):
    """A plot request that the run's columns cannot satisfy."""


@dataclass
class Panel:
    """One axes: its cells (ok, with both values), what is on x and y, its title."""

    cells: pd.DataFrame
    x: str
    y: str
    title: str | None = None
    better: str | None = None  # "lower" / "higher" for y, from the headline


def plot_run(
    cells: pd.DataFrame,
    *,
    x: str,
    y: str,
    by: str | None,
    facet: str | None,
    output: Path,
    title: str = "",
    logx: bool | None = True,
    logy: bool | None = True,
) -> Path:
    """``y`` against ``x``, a panel per value of ``facet``, a line per value of ``by``
    (or per configuration when ``by`` is None). ``logx``/``logy``: None decides from
    the values (log where they are positive and span decades)."""
    plt = _pyplot()
    for col in (x, y, by, facet):
        if col is not None and col not in cells.columns:
            raise PlotError(f"no column {col!r}; columns are: {', '.join(cells.columns)}")
    ok = _plottable(cells, x, y)
    if ok.empty:
        raise PlotError(f"no ok cell has both {x} and {y}")
    if facet is None:
        panels = [Panel(ok, x, y)]
    else:
        panels = [
            Panel(part, x, y, title=f"{facet} = {value}")
            for value, part in ok.groupby(facet, sort=False)
        ]
    return _draw(plt, panels, by=by, output=output, title=title, logx=logx, logy=logy)


def plot_headline(
    cells: pd.DataFrame,
    meta: dict[str, Any],
    *,
    output: Path,
    x: str | None = None,
    y: str | None = None,
    by: str | None = None,
    title: str = "",
    logx: bool | None = None,
    logy: bool | None = None,
) -> Path:
    """Each task's headline figure, a panel per task: ``x`` (default: the task's cost)
    against ``y`` (default: its primary quality metric), a line per configuration. A
    task whose run recorded no headline (a run from before them) plots
    ``time.solve.median`` against ``metric.final_rel_error`` when it has them."""
    plt = _pyplot()
    for col in (x, y, by):
        if col is not None and col not in cells.columns:
            raise PlotError(f"no column {col!r}; columns are: {', '.join(cells.columns)}")
    panels, skipped = headline_panels(cells, meta, x=x, y=y)
    if not panels:
        raise PlotError(
            "nothing to plot: "
            + "; ".join(skipped)
            + ". Name the axes: bench plot RUN --x COLUMN --y COLUMN (bench show RUN --all "
            "lists the columns)"
        )
    return _draw(plt, panels, by=by, output=output, title=title, logx=logx, logy=logy)


def headline_panels(
    cells: pd.DataFrame, meta: dict[str, Any], *, x: str | None = None, y: str | None = None
) -> tuple[list[Panel], list[str]]:
    """A panel per task that can be drawn, and why each other task cannot."""
    panels, skipped = [], []
    for task, part in cells.groupby("task", sort=False):
        h = schema.headline(meta, str(task), part)
        px = x or (h.cost if h else LEGACY_X)
        py = y or (h.primary if h else LEGACY_Y)
        missing = [c for c in (px, py) if c not in part.columns]
        if missing:
            why = "records no headline" if h is None else "has no column"
            skipped.append(f"{task} {why} ({', '.join(missing)} not in its cells)")
            continue
        ok = _plottable(part, px, py)
        others = _judged_otherwise(part, ok, px, h, str(task)) if y is None and h else []
        if ok.empty and not others:
            skipped.append(f"{task}: no ok cell has both {px} and {py}")
            continue
        if not ok.empty:
            better = h.better(py) if h else None
            panels.append(Panel(ok, px, py, title=str(task), better=better))
        panels += others
    return panels, skipped


def _judged_otherwise(part: pd.DataFrame, drawn: pd.DataFrame, x: str, h: Any, task: str) -> list:
    """A panel for the ok cells the primary left out because they record none of it (a
    barycentre atlas beside conditional ones: no attribute_ncc), by the next quality
    they have, as the report judges them; [] where none was left out."""
    rest = part[(part["status"] == "ok") & ~part.index.isin(drawn.index)]
    if h.primary in rest.columns:
        rest = rest[pd.to_numeric(rest[h.primary], errors="coerce").isna()]
    panels = []
    for column in h.quality_columns[1:]:  # each cell by the first of them it records
        if column in rest.columns and not rest.empty:
            ok = _plottable(rest, x, column)
            if not ok.empty:
                title = f"{task} (no {schema.short_name(h.primary)})"
                panels.append(Panel(ok, x, column, title=title, better=h.better(column)))
                rest = rest[~rest.index.isin(ok.index)]
    return panels


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotError("bench plot needs matplotlib: pip install matplotlib") from None
    return plt


def _plottable(cells: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    ok = cells[cells["status"] == "ok"].copy()
    ok[x] = pd.to_numeric(ok[x], errors="coerce")
    ok[y] = pd.to_numeric(ok[y], errors="coerce")
    return ok.dropna(subset=[x, y])


def sweeps(cells: pd.DataFrame) -> list[str]:
    """The parameters a line runs along: numeric ones taking 3 or more values (a step
    size, a tolerance, a size), at most one varying within any line; the others (two
    settings of a flag, a categorical choice) tell lines apart."""
    config = schema.configuration_columns(cells)
    text = cells[config].astype(str)  # parameters may be lists ([64, 64])
    numeric = [
        c
        for c in schema.params(config)
        if cells[c].dropna().map(_is_number).all() and cells[c].dropna().nunique() >= 3
    ]
    numeric.sort(key=lambda c: -cells[c].nunique())
    along: list[str] = []
    for col in numeric:
        rest = [c for c in config if c not in (*along, col)]
        groups = text.groupby(rest, dropna=False) if rest else [(None, text)]
        if all(sum(g[c].nunique() > 1 for c in (*along, col)) <= 1 for _, g in groups):
            along.append(col)
    return along


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_))


def mixed_in_lines(cells: pd.DataFrame, by: str, facet: str | None = None) -> list[str]:
    """The configuration columns that vary within one value of ``by`` (and of ``facet``)
    besides what a line runs along (``sweeps``): a ``--by solver`` line through float32
    and float64 cells joins two settings into one zig-zag."""
    along = set(sweeps(cells))
    keys = [c for c in (by, facet) if c is not None and c in cells.columns]
    mixed: list[str] = []
    for _, group in cells.groupby(keys, dropna=False, sort=False):
        for col in schema.configuration_columns(group):
            if col not in (*keys, *along, *mixed):
                mixed.append(col)
    return mixed


def line_groups(cells: pd.DataFrame, by: str | None) -> list[tuple[str, pd.DataFrame]]:
    """(legend name, cells) per line: per value of ``by``, or per configuration with
    the swept parameters (``sweeps``) running along the line."""
    if by is not None:
        return [(str(k), g) for k, g in cells.groupby(cells[by].astype(str), sort=True)]
    along = sweeps(cells)
    config = [c for c in schema.configuration_columns(cells) if c not in along]
    cols = schema.distinguishing(cells, config)  # not a solver's own max_steps
    if not cols:
        return [("cells", cells)]
    names = pd.Series(
        [schema.label(row, cols) for _, row in cells[cols].iterrows()], index=cells.index
    )
    return [(str(k), g) for k, g in cells.groupby(names, sort=True)]


def _points(group: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """A line's points: one per setting along it (the cells that differ only in seed),
    at the medians of ``x`` and ``y`` over its seeds, in order of ``x``. Not one point per
    distinct ``x``: a measured cost differs seed by seed, and a configuration's seeds
    would read as a trade-off along a line."""
    cols = [c for c in schema.configuration_columns(group) if c in group.columns]
    if cols:
        keys = group[cols].astype(str).agg("|".join, axis=1)
    else:
        keys = pd.Series("", index=group.index)
    return group.groupby(keys, sort=False)[[x, y]].median().sort_values(x).reset_index(drop=True)


def _log(values: pd.Series) -> bool:
    data = values.dropna()
    return bool(len(data) >= 2 and (data > 0).all() and data.max() / data.min() > DECADES)


def _draw(
    plt: Any,
    panels: list[Panel],
    *,
    by: str | None,
    output: Path,
    title: str,
    logx: bool | None,
    logy: bool | None,
) -> Path:
    fig, axes = plt.subplots(
        1, len(panels), figsize=(5.5 * len(panels) + 2.5, 4.5), squeeze=False, sharey=False
    )
    lines = [line_groups(p.cells, by) for p in panels]
    # One colour and style per line name across every panel, and one legend of them
    # all: a colour means the same thing in each panel.
    names = sorted({name for groups in lines for name, _ in groups})
    handles = {}
    for ax, panel, groups in zip(axes[0], panels, lines):
        for name, group in groups:
            i = names.index(name)
            pts = _points(group, panel.x, panel.y)
            # Ten colours, then the next ten dashed with other markers: lines stay
            # distinguishable past matplotlib's default cycle.
            style = _STYLES[(i // 10) % len(_STYLES)]
            (line,) = ax.plot(
                pts[panel.x], pts[panel.y], color=f"C{i % 10}", ms=4, lw=1.2, label=name, **style
            )
            if len(group) > len(pts):  # several seeds: each cell's own point too
                ax.plot(group[panel.x], group[panel.y], ".", color=f"C{i % 10}", ms=2.5)
            handles.setdefault(name, line)
        ax.set_xscale("log" if (_log(panel.cells[panel.x]) if logx is None else logx) else "linear")
        ax.set_yscale("log" if (_log(panel.cells[panel.y]) if logy is None else logy) else "linear")
        _spaced_log_labels(ax)
        ax.set_xlabel(_axis_label(panel.x))
        better = f" ({panel.better} is better)" if panel.better else ""
        ax.set_ylabel(_axis_label(panel.y) + better)
        if panel.title:
            ax.set_title(panel.title)
        ax.grid(True, which="both", alpha=0.3)
    ordered = [handles[n] for n in names if n in handles]
    axes[0][-1].legend(
        ordered,
        [h.get_label() for h in ordered],
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        title=by or "configuration",
    )
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(output, dpi=120)
    except OSError as exc:  # a read-only folder, a name past 255 characters, a full disk
        raise PlotError(f"{exc.filename or output}: cannot write ({exc.strerror})") from None
    finally:
        plt.close(fig)
    return output


def _spaced_log_labels(ax: Any) -> None:
    """A log x axis spanning under two decades that holds two or more of 1, 2 and 5
    times a power of ten: ticks labelled there, and only there. Left alone, matplotlib
    labels the minor ticks too (2, 3, 4, 6 x 10^-3, ...), and side by side they ran
    together. An axis holding fewer of them keeps matplotlib's own ticks."""
    import math

    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    low, high = ax.get_xlim()
    if ax.get_xscale() != "log" or not 0 < low < high or high / low >= 100:
        return
    powers = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    ticks = [m * 10.0**e for e in powers for m in (1, 2, 5) if low <= m * 10.0**e <= high]
    if len(ticks) < 2:
        return

    def label(value: float, _: int) -> str:
        exponent = math.floor(math.log10(value) + 1e-9)
        mantissa = round(value / 10.0**exponent)
        power = f"10^{{{exponent}}}"
        return f"${power}$" if mantissa == 1 else f"${mantissa}\\times{power}$"

    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(label))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _axis_label(column: str) -> str:
    unit = schema.unit(column)
    return f"{column} ({unit})" if unit in ("s", "B") else column
