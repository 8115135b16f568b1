"""The tables and figures of this README from the run's own files: per-method means
pooled and per generator, paired statistics of symmetric svf against each other method,
and each pair's Dice curve relative to ANTs SyN's result (time over SyN's time, Dice
minus SyN's Dice), where the curve crossing zero is `bench reach`'s time.

    python results/published/registration-3d-icbm-cpu/summary.py [RUN_DIR]
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd

from bench.results import load_run

HERE = Path(__file__).resolve().parent
# the 2-D peers run's script: its paired statistics tables
_spec = importlib.util.spec_from_file_location(
    "peers_summary", HERE.parent / "registration-icbm-2d-peers-cpu" / "summary.py"
)
peers_summary = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(peers_summary)
COLUMNS = {"metric.dice": "Dice", "metric.hd95_subvoxel": "HD95 sub-voxel mm",
           "metric.folding_percent": "% det J <= 0", "metric.sdlogj": "SDlogJ",
           "metric.error_mm": "error mm", "time.register.median": "time s",
           "mem.register": "peak MiB"}  # fmt: skip
COLOURS = {"svf": "tab:blue", "bspline": "tab:orange", "tv_rk4": "tab:green"}


def named(cells: pd.DataFrame) -> pd.DataFrame:
    cells = cells[cells["status"] == "ok"].copy()
    symmetric = cells.get("param.method.symmetric", pd.Series(None, index=cells.index))
    cells["name"] = cells["method"] + symmetric.map(lambda s: " (symmetric)" if s is True else "")
    return cells


def whole(cells: pd.DataFrame) -> pd.DataFrame:
    """The pairs (seed, generator) every method finished: a verdict on finished cells."""
    methods = cells["name"].nunique()
    done = cells.groupby(["seed", "param.truth"])["name"].transform("nunique") == methods
    return cells[done]


def table(cells: pd.DataFrame) -> str:
    present = [c for c in COLUMNS if c in cells.columns]
    means = cells.groupby("name")[present].mean()
    if "mem.register" in means:
        means["mem.register"] /= 2**20
    means = means.rename(columns=COLUMNS)
    means = means.sort_values("Dice", ascending=False)
    lines = ["| method | " + " | ".join(means.columns) + " |",
             "|---|" + "---:|" * len(means.columns)]  # fmt: skip
    for name, row in means.iterrows():
        values = []
        for c, v in row.items():
            values.append(f"{v:.0f}" if c in ("time s", "peak MiB") else f"{v:.4f}" if c ==
                          "Dice" else f"{v:.3f}")  # fmt: skip
        lines.append(f"| {name} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def relative_figure(run, cells: pd.DataFrame, path: Path) -> None:
    """One line a pair: symmetric svf's Dice curve minus SyN's final Dice against time
    over SyN's registration time; the 0.4 line is the issue's bound."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    syn = cells[cells["method"] == "syn"].set_index(["seed", "param.truth"])
    ours = cells[cells["name"] == "svf (symmetric)"]
    curves = run.curves[run.curves["curve"] == "dice"]
    for _, cell in ours.iterrows():
        ref = syn.loc[(cell["seed"], cell["param.truth"])]
        curve = curves[curves["cell_id"] == cell["cell_id"]].sort_values("time")
        x = curve["time"] / float(ref["time.register.median"])
        y = curve["value"] - float(ref["metric.dice"])
        # the samples as points: bench reach reads the first sample at or above zero
        ax.plot(x, y, "-o", ms=2, color=COLOURS[cell["param.truth"]], alpha=0.7, lw=1)
    for truth, colour in COLOURS.items():
        ax.plot([], [], "-", color=colour, label=f"truth {truth}")
    ax.axhline(0, color="k", lw=0.8)
    ax.axvline(0.4, color="tab:red", ls="--", lw=0.8, label="0.4x SyN's time")
    ax.set_xscale("log")
    ax.set_xlim(0.03, 1.5)
    ax.set_ylim(-0.03, 0.02)
    ax.set_xlabel("registration time / SyN's time on the same pair")
    ax.set_ylabel("symmetric svf's Dice - SyN's final Dice")
    ax.set_title("symmetric svf against ANTs SyN, one line a pair")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def dice_figure(cells: pd.DataFrame, path: Path) -> None:
    """Each method's Dice on each pair, joined by a line a pair."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = list(cells.groupby("name")["metric.dice"].mean().sort_values().index)
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for (_seed, truth), pair in cells.groupby(["seed", "param.truth"]):
        pair = pair.set_index("name").reindex(order)
        ax.plot(range(len(order)), pair["metric.dice"], "-o", ms=3, lw=0.7, alpha=0.6,
                color=COLOURS[truth])  # fmt: skip
    for truth, colour in COLOURS.items():
        ax.plot([], [], "-o", ms=3, color=colour, label=f"truth {truth}")
    ax.set_xticks(range(len(order)), order)
    ax.set_ylabel("Dice (CerebrA labels)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    run = load_run(sys.argv[1] if len(sys.argv) > 1 else HERE)
    cells = whole(named(run.cells))
    pairs = cells.groupby(["seed", "param.truth"]).ngroups
    print(f"{pairs} whole pairs (seeds {sorted(set(cells['seed']))})")
    relative_figure(run, cells, HERE / "dice-minus-syn-vs-time.png")
    dice_figure(cells, HERE / "dice-per-pair.png")
    print(f"\n### Pooled over the three generators ({pairs} pairs a method)\n")
    print(table(cells))
    for truth in ("bspline", "svf", "tv_rk4"):
        mine = cells[cells["param.truth"] == truth]
        print(f"\n#### truth = {truth} ({mine.groupby('seed').ngroups} pairs)\n")
        print(table(mine))
    cells = cells.drop(columns=["suite", "bench", "label", "name"])
    reference = "method=svf,method.symmetric=true"
    peers_summary.stats(cells, reference, "symmetric svf", "svf (symmetric)", digits=4)


if __name__ == "__main__":
    main()
