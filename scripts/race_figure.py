"""Dice against wall time on each pair of a registration race run (one panel per truth
generator): each curve-recording method's Dice curve, and ANTs SyN's result as a point
with its Dice as a dashed line (the target of ``bench reach``).

    python scripts/race_figure.py RUN_DIR [-o RUN_DIR/dice-vs-time-pairs.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bench.results import load_run  # noqa: E402


def label(cell) -> str:
    symmetric = cell.get("param.method.symmetric")
    return f"{cell['method']}{' (symmetric)' if symmetric is True else ''}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("-o", "--output")
    args = parser.parse_args()
    run = load_run(args.run)
    cells = run.cells[run.cells["status"] == "ok"]
    truths = list(dict.fromkeys(cells["param.truth"]))
    fig, axes = plt.subplots(1, len(truths), figsize=(4.2 * len(truths), 3.6), sharey=True)
    axes = [axes] if len(truths) == 1 else list(axes)
    colours = {"svf": "tab:blue", "svf (symmetric)": "tab:green", "syn": "tab:red"}
    for ax, truth in zip(axes, truths):
        mine = cells[cells["param.truth"] == truth]
        for _, cell in mine.iterrows():
            name = label(cell)
            curve = run.curves[(run.curves["cell_id"] == cell["cell_id"])
                               & (run.curves["curve"] == "dice")].sort_values("time")  # fmt: skip
            colour = colours.get(name)
            if cell["method"] == "syn" or len(curve) < 2:
                t = float(cell["time.register.median"])
                ax.plot([t], [cell["metric.dice"]], "o", color=colour, label=name)
                ax.axhline(cell["metric.dice"], color=colour, ls="--", lw=0.8)
            else:
                ax.plot(curve["time"], curve["value"], "-", color=colour, label=name)
        ax.set_title(f"truth = {truth}")
        ax.set_xlabel("wall time of the registration (s)")
        ax.set_xscale("log")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("Dice (CerebrA labels)")
    axes[0].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out = Path(args.output or Path(args.run) / "dice-vs-time-pairs.png")
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
