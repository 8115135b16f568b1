"""The physics-book run's ``error`` curves (MAE over the 33 states, the mean) against
training time, one line a cell, labelled by method, optimiser and the state given.

python results/published/physics-book/plot_curves.py RUN_DIR OUT.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure


def _label(row: pd.Series) -> str:
    given = "book's target" if row["param.target"] == "book" else "solver's state"
    if row["method"] == "diffphys":
        return f"diffphys, {int(row['param.method.iterations'])} updates, {given}"
    optimizer = row["param.method.optimizer"]
    nu = row["param.method.nu"]
    nu_text = "nu 0.01/pi" if nu and nu > 0 else "solver's nu"
    name = "gd (book's)" if optimizer == "gd" else "Adam (not the book's)"
    return f"PINN {name} lr {row['param.method.lr']:g}, {nu_text}, {given}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    cells = pd.read_parquet(args.run / "cells.parquet").set_index("cell_id")
    curves = pd.read_parquet(args.run / "curves.parquet")
    curves = curves[curves["curve"] == "error"]
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.add_subplot()
    for cell_id, points in curves.groupby("cell_id", sort=False):
        row = cells.loc[cell_id]
        style = "-" if row["method"] == "diffphys" else "--"
        ax.plot(points["time"], points["value"], style, marker=".", label=_label(row))
    ax.axhline(0.0638 * 32 / 33, color="grey", lw=0.8, ls=":")
    ax.axhline(0.193 * 32 / 33, color="grey", lw=0.8, ls=":")
    ax.text(ax.get_xlim()[1], 0.0638 * 32 / 33, "book DP 0.0638 ", ha="right", va="bottom")
    ax.text(ax.get_xlim()[1], 0.193 * 32 / 33, "book PINN 0.193 ", ha="right", va="bottom")
    ax.set(
        xlabel="training time (s), shared 2-core CPU",
        ylabel="MAE over the 33 states (mean; the book's figures x 32/33)",
        xscale="log",
        yscale="log",
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.savefig(args.out, dpi=100)


if __name__ == "__main__":
    main()
