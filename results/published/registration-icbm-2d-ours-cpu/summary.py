"""The tables of this README from the three runs' own files: this run (displacement, svf,
implicit, nodeo, voxelmorph, and SyN again), ../registration-icbm-2d-cpu (symmetric svf,
lddmm, SyN) and ../registration-icbm-2d-peers-cpu (FireANTs greedy and SyN, elastix),
all on the same 15 test pairs (same data, generators and seeds: cells pair on every
parameter but the method's), each method tuned by the one rule.

    python results/published/registration-icbm-2d-ours-cpu/summary.py
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from bench.stats import paired_comparisons

HERE = Path(__file__).resolve().parent
COLUMNS = {"metric.dice": "Dice", "metric.hd95_subvoxel": "HD95 sub-voxel mm",
           "metric.folding_percent": "% det J <= 0", "metric.sdlogj": "SDlogJ",
           "metric.error_mm": "error mm", "time.register.median": "time s"}  # fmt: skip
RUNS = {"this run": HERE} | {
    name: HERE.parent / name
    for name in ("registration-icbm-2d-cpu", "registration-icbm-2d-peers-cpu")
}
# the runs' own bookkeeping differs (suite, entry); the pairing is on what ran.
# curve_every (how often the Dice curve is scored, off the clock) came after the first
# run: no result depends on it
BOOKKEEPING = ["suite", "bench", "label", "name", "run", "param.curve_every"]


def tested(path: Path, run: str) -> pd.DataFrame:
    cells = pd.read_parquet(path / "cells.parquet")
    cells = cells[(cells["role"] == "test") & (cells["status"] == "ok")].copy()
    symmetric = cells.get("param.method.symmetric", pd.Series(None, index=cells.index))
    symmetric = symmetric.map(lambda s: s is True or str(s).lower() == "true")
    cells["name"] = cells["method"] + symmetric.map(lambda s: " (symmetric)" if s else "")
    cells["param.method.symmetric"] = symmetric.where(cells["method"] == "svf", None)
    return cells.assign(run=run)


def table(cells: pd.DataFrame) -> str:
    means = cells.groupby("name")[list(COLUMNS)].mean().rename(columns=COLUMNS)
    means = means.sort_values("Dice", ascending=False)
    lines = ["| method | " + " | ".join(means.columns) + " |",
             "|---|" + "---:|" * len(means.columns)]  # fmt: skip
    for name, row in means.iterrows():
        values = [f"{v:.1f}" if c == "time s" else f"{v:.3f}" for c, v in row.items()]
        lines.append(f"| {name} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def chosen(path: Path) -> str:
    """The setting each tuned configuration chose on the validation seeds."""
    tuning = json.loads((path / "run.json").read_text())["tuning"]
    rows = {}
    for t in tuning:
        method, truth = t["configuration"]["method"], t["configuration"]["truth"]
        text = ", ".join(f"{k.removeprefix('method.')} {v}" for k, v in (t["chosen"] or {}).items())
        rows.setdefault(method, {})[truth] = text or f"none ({t['why_none']})"
    lines = ["| method | truth svf | truth bspline | truth tv_rk4 |", "|---|---|---|---|"]
    for method, per in rows.items():
        lines.append(f"| {method} | " + " | ".join(per.get(t, "") for t in
                                                  ("svf", "bspline", "tv_rk4")) + " |")  # fmt: skip
    return "\n".join(lines)


def figure(cells: pd.DataFrame, path: Path) -> None:
    """Each method's 15 test Dice (points, one colour per generator) and their mean
    against its mean registration time (each run's own times: all three ran on the
    shared 2-core machine, loaded differently)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    means = cells.groupby("name")[["metric.dice", "time.register.median"]].mean()
    order = list(means.sort_values("metric.dice").index)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6))
    colours = {"svf": "tab:blue", "bspline": "tab:orange", "tv_rk4": "tab:green"}
    for i, name in enumerate(order):
        mine = cells[cells["name"] == name]
        for truth, rows in mine.groupby("param.truth"):
            left.plot(rows["metric.dice"], [i] * len(rows), "o", alpha=0.6, ms=4,
                      color=colours[truth], label=f"truth {truth}" if i == 0 else None)  # fmt: skip
        left.plot([means.loc[name, "metric.dice"]], [i], "k|", ms=14, mew=2)
    left.set_yticks(range(len(order)), order)
    left.set_xlabel("Dice (CerebrA labels), 15 test pairs; | = mean")
    left.legend(fontsize=7, loc="lower left")
    for k, (name, row) in enumerate(means.sort_values("metric.dice").iterrows()):
        right.plot(row["time.register.median"], row["metric.dice"], "o")
        # alternate above and below: names of neighbouring means would print over each other
        right.annotate(name, (row["time.register.median"], row["metric.dice"]), fontsize=8,
                       xytext=(4, 3 if k % 2 else -9), textcoords="offset points")  # fmt: skip
    right.set_xscale("log")
    right.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    right.set_xlabel("mean registration time (s), 1 CPU thread")
    right.set_ylabel("mean Dice")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def stats(both: pd.DataFrame) -> None:
    for metric, better in (("dice", "higher"), ("error_mm", "lower")):
        result = paired_comparisons(both, metric, "method=svf,method.symmetric=true", better=better)
        print(f"\n{metric}: symmetric svf against each, 15 pairs, Wilcoxon, BH over "
              f"{len(result.rows)}\n")  # fmt: skip
        print("| other | svf (symmetric) | other | paired diff | n | p | q | verdict |")
        print("|---|---:|---:|---:|---:|---:|---:|---|")
        for r in result.rows:
            means = f"{r.reference_mean:.3f} | {r.other_mean:.3f} | {r.difference:+.3f}"
            row = [r.other, means, r.n, f"{r.p:.2g}", f"{r.q:.2g}", r.verdict]
            print("| " + " | ".join(map(str, row)) + " |")


def main() -> None:
    runs = {name: tested(path, name) for name, path in RUNS.items()}
    syn = {name: c[c["method"] == "syn"].set_index(["param.truth", "seed"])["metric.dice"]
           for name, c in runs.items() if (c["method"] == "syn").any()}  # fmt: skip
    gap = (syn["this run"] - syn["registration-icbm-2d-cpu"]).abs().max()
    print(f"SyN's Dice, this run against registration-icbm-2d-cpu, max |difference| over "
          f"the {len(syn['this run'])} pairs: {gap:.3g}")  # fmt: skip
    mine, first, peers = runs.values()
    both = pd.concat([first, peers[peers["method"] != "syn"], mine[mine["method"] != "syn"]],
                     ignore_index=True)  # fmt: skip
    figure(both, HERE / "dice-per-method.png")
    print("\n### Chosen settings (this run)\n")
    print(chosen(HERE))
    print("\n### Pooled over the three generators (15 pairs a method)\n")
    print(table(both))
    for truth in ("bspline", "svf", "tv_rk4"):
        print(f"\n### truth = {truth} (5 pairs)\n")
        print(table(both[both["param.truth"] == truth]))
    stats(both.drop(columns=[c for c in BOOKKEEPING if c in both.columns]))


if __name__ == "__main__":
    main()
