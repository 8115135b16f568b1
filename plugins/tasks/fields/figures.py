"""Figures of a fields run's curves: ``python -m plugins.tasks.fields.figures RUN ...``.

``bench plot`` draws one point per cell; a field's story is its curve (PSNR against
step or training time), so this draws the ``curves.parquet`` of a run, one line per
cell, one colour and legend entry per label made of the columns given (e.g. ``--label
encoding --label param.image``): give every column that tells two configurations
apart, or their seeds' lines share a colour.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd


def drawn(run: Path) -> tuple[Path, pd.DataFrame, pd.DataFrame]:
    """The run folder ``run`` names (a suite's folder: its latest run), its reported
    cells and its curves: what ``plot_curves`` draws."""
    from bench import load_run, reported

    loaded = load_run(run)
    return loaded.path, reported(loaded.cells), loaded.curves


def plot_curves(
    run: Path,
    curve: str = "psnr",
    x: str = "step",
    labels: tuple[str, ...] = ("encoding",),
    output: Path | None = None,
    title: str = "",
) -> Path:
    """One line per reported cell of ``curve`` against ``x`` ("step" or "time"): a
    tuned run's validation cells (the settings only tried, the validation data) are left
    out, as bench's pages leave them. ``run``: a run folder, or a suite's (its latest
    run). Returns the PNG."""
    from matplotlib.figure import Figure

    run, cells, curves = drawn(run)
    fig = Figure(figsize=(6.4, 4.2), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
    from matplotlib import colormaps

    # one colour and one legend entry per label (a configuration): its seeds are lines
    # of the same colour, not configurations of their own
    names = [
        " ".join(str(cell[c]) for c in labels if c in cell and pd.notna(cell[c]))
        for _, cell in cells.iterrows()
    ]
    palette = colormaps["tab10" if len(set(names)) <= 10 else "tab20"].colors
    colours: dict[str, Any] = {}
    for label, (_, cell) in zip(names, cells.iterrows()):
        points = curves[(curves["cell_id"] == cell["cell_id"]) & (curves["curve"] == curve)]
        if points.empty:
            continue
        points = points.sort_values("step")
        first = label not in colours
        colour = colours.setdefault(label, palette[len(colours) % len(palette)])
        ax.plot(points[x], points["value"], marker=".", color=colour,
                label=label if first else None, alpha=0.85)  # fmt: skip
    ax.set_xlabel("Adam step" if x == "step" else "training time (s)")
    ax.set_ylabel(f"{curve} (dB)" if curve.startswith("psnr") else curve)
    if x == "time":
        ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or f"{curve} vs {x}", fontsize=10)
    fig.tight_layout()
    output = output or run / f"{curve}-vs-{x}.png"
    fig.savefig(output)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--curve", default="psnr")
    parser.add_argument("--x", default="step", choices=("step", "time"))
    parser.add_argument("--label", action="append", default=None)
    parser.add_argument("--title", default="")
    parser.add_argument("-o", "--output", type=Path, default=None)
    args = parser.parse_args(argv)
    out = plot_curves(
        args.run, args.curve, args.x, tuple(args.label or ["encoding"]), args.output, args.title
    )
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
