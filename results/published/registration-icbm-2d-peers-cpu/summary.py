"""The tables of this README from the two runs' own files: this run (the peers, and SyN
again) and ../registration-icbm-2d-cpu (symmetric svf, lddmm, SyN) on the same 15 test
pairs (same data, generators and seeds: cells pair on every parameter but the method's).

    python results/published/registration-icbm-2d-peers-cpu/summary.py
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.stats import paired_comparisons

HERE = Path(__file__).resolve().parent
COLUMNS = {"metric.dice": "Dice", "metric.hd95_subvoxel": "HD95 sub-voxel mm",
           "metric.folding_percent": "% det J <= 0", "metric.sdlogj": "SDlogJ",
           "metric.error_mm": "error mm", "time.register.median": "time s"}  # fmt: skip


def tested(path: Path, run: str) -> pd.DataFrame:
    cells = pd.read_parquet(path / "cells.parquet")
    cells = cells[(cells["role"] == "test") & (cells["status"] == "ok")].copy()
    symmetric = cells.get("param.method.symmetric", pd.Series(None, index=cells.index))
    symmetric = symmetric.map(lambda s: s is True or str(s).lower() == "true")
    cells["name"] = cells["method"] + symmetric.map(lambda s: " (symmetric)" if s else "")
    # svf's cells name the setting (plain where absent), no other method's do
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


def figure(cells: pd.DataFrame, path: Path) -> None:
    """Each method's 15 test Dice (points, one colour per generator) and their mean
    against its mean registration time (this run's times for the peers, the published
    run's for svf, lddmm and SyN: both runs shared a loaded 2-core machine)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    means = cells.groupby("name")[["metric.dice", "time.register.median"]].mean()
    order = list(means.sort_values("metric.dice").index)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 1.6 + 0.3 * len(order)))
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


def main() -> None:
    peers = tested(HERE, "this run")
    published = tested(HERE.parent / "registration-icbm-2d-cpu", "registration-icbm-2d-cpu")
    syn_here = peers[peers["method"] == "syn"].set_index(["param.truth", "seed"])
    syn_there = published[published["method"] == "syn"].set_index(["param.truth", "seed"])
    gap = (syn_here["metric.dice"] - syn_there["metric.dice"]).abs().max()
    print(f"SyN's Dice, this run against the published run, max |difference| over the 15 "
          f"pairs: {gap:.3g}")  # fmt: skip
    both = pd.concat([published, peers[peers["method"] != "syn"]], ignore_index=True)
    figure(both, HERE / "dice-per-method.png")
    print("\n### Pooled over the three generators (15 pairs a method)\n")
    print(table(both))
    for truth in ("bspline", "svf", "tv_rk4"):
        print(f"\n### truth = {truth} (5 pairs)\n")
        print(table(both[both["param.truth"] == truth]))
    # the runs' own bookkeeping differs (suite, entry); the pairing is on what ran.
    # curve_every (how often the Dice curve is scored, off the clock) came after the
    # published run: no result depends on it
    both = both.drop(columns=["suite", "bench", "label", "name", "run", "param.curve_every"])
    stats(both, "method=svf", "symmetric svf", "svf")


def stats(cells: pd.DataFrame, reference: str, title: str, column: str, digits: int = 3) -> None:
    """The paired tables of Dice and error to the truth: ``reference`` (``title`` in the
    heading, ``column`` over its means) against each other configuration, Wilcoxon, BH."""
    for metric, better in (("dice", "higher"), ("error_mm", "lower")):
        result = paired_comparisons(cells, metric, reference, better=better)
        n, k = result.rows[0].n, len(result.rows)
        print(f"\n{metric}: {title} against each, {n} pairs, Wilcoxon, BH over {k}\n")
        print(f"| other | {column} | other | paired diff | n | p | q | verdict |")
        print("|---|---:|---:|---:|---:|---:|---:|---|")
        for r in result.rows:
            d = digits
            means = f"{r.reference_mean:.{d}f} | {r.other_mean:.{d}f} | {r.difference:+.{d}f}"
            row = [r.other, means, r.n, f"{r.p:.2g}", f"{r.q:.2g}", r.verdict]
            print("| " + " | ".join(map(str, row)) + " |")


if __name__ == "__main__":
    main()
