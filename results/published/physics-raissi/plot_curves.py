"""Draw a physics run's ``error`` curves (task error vs training time), one line a cell.

python results/published/physics-raissi/plot_curves.py RUN_DIR OUT.png [--x step]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--x", default="time", choices=("time", "step"))
    parser.add_argument("--curve", default="error")
    parser.add_argument("--ylabel", default="relative L2 error (256 x 100 grid)")
    args = parser.parse_args()
    cells = pd.read_parquet(args.run / "cells.parquet").set_index("cell_id")
    curves = pd.read_parquet(args.run / "curves.parquet")
    curves = curves[curves["curve"] == args.curve]
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for cell_id, points in curves.groupby("cell_id"):
        row = cells.loc[cell_id]
        label = f"{row['method']} seed {row['seed']}"
        if "param.method.n_data" in row and pd.notna(row["param.method.n_data"]):
            label += f", {int(row['param.method.n_data'])} points"
        ax.plot(points[args.x], points["value"], marker=".", label=label)
    ax.set(xlabel="training time (s)" if args.x == "time" else "step", ylabel=args.ylabel)
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.savefig(args.out, dpi=100)


if __name__ == "__main__":
    main()
