"""The tables of this README from the three runs' own files: this run (displacement, svf,
implicit, nodeo, voxelmorph, and SyN again), ../registration-icbm-2d-cpu (symmetric svf,
lddmm, SyN) and ../registration-icbm-2d-peers-cpu (FireANTs greedy and SyN, elastix),
all on the same 15 test pairs (same data, generators and seeds: cells pair on every
parameter but the method's), each method tuned by the one rule.

    python results/published/registration-icbm-2d-ours-cpu/summary.py
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
# the peers run's script: its tested cells, tables, figure and paired statistics
_spec = importlib.util.spec_from_file_location(
    "peers_summary", HERE.parent / "registration-icbm-2d-peers-cpu" / "summary.py"
)
peers_summary = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(peers_summary)
tested, table, figure = peers_summary.tested, peers_summary.table, peers_summary.figure
RUNS = {"this run": HERE} | {
    name: HERE.parent / name
    for name in ("registration-icbm-2d-cpu", "registration-icbm-2d-peers-cpu")
}
# the runs' own bookkeeping differs (suite, entry); the pairing is on what ran.
# curve_every (how often the Dice curve is scored, off the clock) came after the first
# run: no result depends on it
BOOKKEEPING = ["suite", "bench", "label", "name", "run", "param.curve_every"]


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
    both = both.drop(columns=[c for c in BOOKKEEPING if c in both.columns])
    peers_summary.stats(
        both, "method=svf,method.symmetric=true", "symmetric svf", "svf (symmetric)"
    )


if __name__ == "__main__":
    main()
