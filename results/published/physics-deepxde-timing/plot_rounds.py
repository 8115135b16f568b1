"""Error against training time for each round of physics-deepxde-timing: one colour a
method, one line style a round.

python results/published/physics-deepxde-timing/plot_rounds.py OUT.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

HERE = Path(__file__).resolve().parent
COLOURS = {"deepxde.pinn": "tab:orange", "pinn": "tab:blue"}
STYLES = ["-", "--", ":"]


def main(out: str) -> None:
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for k, run in enumerate(sorted(HERE.glob("round-*"))):
        cells = pd.read_parquet(run / "cells.parquet").set_index("cell_id")
        curves = pd.read_parquet(run / "curves.parquet")
        curves = curves[curves["curve"] == "error"].dropna(subset=["time"])
        for cell_id, points in curves.groupby("cell_id"):
            method = cells.loc[cell_id, "method"]
            points = points.sort_values("step")
            ax.plot(
                points["time"],
                points["value"],
                STYLES[k % 3],
                color=COLOURS[method],
                marker="o",
                ms=3,
                label=f"{method}, {run.name}",
            )
    ax.axhline(9.936e-3, color="grey", lw=0.8)
    ax.set(
        xlabel="training time (s, 2-core CPU, shared)",
        ylabel="relative L2 error",
        yscale="log",
        title="Burgers PINN, Raissi's settings: three interleaved rounds",
    )
    ax.legend(fontsize=8, ncols=2)
    fig.savefig(out, dpi=120)


if __name__ == "__main__":
    main(sys.argv[1])
