"""Figures from a run: one measure against another, a line per group.

Generic on purpose (nothing here knows what a solver is): ``x`` and ``y`` are
any two numeric columns of ``cells.parquet``, ``by`` the column whose values
become lines, ``facet`` the column whose values become panels. Needs
matplotlib (the ``plot`` extra).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

_STYLES = (
    {"linestyle": "-", "marker": "o"},
    {"linestyle": "--", "marker": "s"},
    {"linestyle": ":", "marker": "^"},
)


class PlotError(ValueError):
    """A plot request that the run's columns cannot satisfy."""


def plot_run(
    cells: pd.DataFrame,
    *,
    x: str,
    y: str,
    by: str,
    facet: str | None,
    output: Path,
    title: str = "",
    logx: bool = True,
    logy: bool = True,
) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotError("bench plot needs matplotlib: pip install matplotlib") from None
    for col in (x, y, by, facet):
        if col is not None and col not in cells.columns:
            raise PlotError(f"no column {col!r}; columns are: {', '.join(cells.columns)}")
    ok = cells[cells["status"] == "ok"].copy()
    ok[x] = pd.to_numeric(ok[x], errors="coerce")
    ok[y] = pd.to_numeric(ok[y], errors="coerce")
    ok = ok.dropna(subset=[x, y])
    if ok.empty:
        raise PlotError(f"no ok cell has both {x} and {y}")
    panels = [None] if facet is None else list(dict.fromkeys(ok[facet]))
    fig, axes = plt.subplots(
        1, len(panels), figsize=(5.5 * len(panels) + 2.5, 4.5), squeeze=False, sharey=False
    )
    # One colour and style per line name across every panel, and one legend of them
    # all: a colour means the same thing in each panel.
    names = sorted({str(v) for v in ok[by]})
    handles = {}
    for ax, panel in zip(axes[0], panels):
        data = ok if panel is None else ok[ok[facet] == panel]
        for name, group in data.groupby(data[by].astype(str), sort=True):
            i = names.index(name)
            pts = group[[x, y]].sort_values(x)
            # Ten colours, then the next ten dashed with other markers: lines stay
            # distinguishable past matplotlib's default cycle.
            style = _STYLES[(i // 10) % len(_STYLES)]
            (line,) = ax.plot(
                pts[x], pts[y], color=f"C{i % 10}", ms=3.5, lw=1.2, label=name, **style
            )
            handles.setdefault(name, line)
        ax.set_xscale("log" if logx else "linear")
        ax.set_yscale("log" if logy else "linear")
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        if panel is not None:
            ax.set_title(f"{facet} = {panel}")
        ax.grid(True, which="both", alpha=0.3)
    ordered = [handles[n] for n in names if n in handles]
    axes[0][-1].legend(
        ordered,
        [h.get_label() for h in ordered],
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        title=by,
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
