"""The tables and figures of the tuned 3-D run from its own files: each configuration's
validation scores and choice (run.json's ``tuning``), then, once the test cells are in,
per-method means pooled and per generator, paired statistics of symmetric svf against
each peer, and each pair's Dice curve relative to ANTs SyN's result.

    python results/published/registration-3d-icbm-tuned-cpu/summary.py [RUN_DIR]

RUN_DIR: the run folder (default: the one beside this script).
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

from bench.results import load_run

HERE = Path(__file__).resolve().parent
PUBLISHED = next(p for p in HERE.parents if p.name == "results") / "published"


def _script(name: str):
    """A published run's summary.py, as a module (its tables, figures and statistics)."""
    spec = importlib.util.spec_from_file_location(name, PUBLISHED / name / "summary.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


untuned = _script("registration-3d-icbm-cpu")  # the same pairs, every method untuned
TRUTHS = ("svf", "bspline", "tv_rk4")


def _setting(setting: dict) -> str:
    return ", ".join(f"{k.removeprefix('method.')} {v}" for k, v in setting.items())


def tuning_table(meta: dict) -> str:
    """One row a configuration: its chosen setting, the chosen validation mean Dice and
    the spread of its 8 settings' means (what tuning moved), or why there is no choice."""
    lines = ["| method | truth | chosen | validation Dice | settings' range | recorded |",
             "|---|---|---|---:|---:|---:|"]  # fmt: skip
    for t in meta.get("tuning") or []:
        conf = t["configuration"]
        name = conf["method"] + (" (symmetric)" if conf.get("method.symmetric") else "")
        scores = [s for s in t["scores"] if s is not None and math.isfinite(s)]
        best = t["scores"][t["settings"].index(t["chosen"])] if t["chosen"] else None
        spread = f"{min(scores):.4f}-{max(scores):.4f}" if scores else "-"
        chosen = _setting(t["chosen"]) if t["chosen"] else f"none ({t['why_none']})"
        row = [name, conf["truth"], chosen, f"{best:.4f}" if best is not None else "-",
               spread, f"{len(t['scores'])} of {len(t['settings'])}"]  # fmt: skip
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> None:
    run = load_run(sys.argv[1] if len(sys.argv) > 1 else HERE)
    roles = run.cells.get("role")
    ok = int((run.cells["status"] == "ok").sum())
    print(f"{len(run.cells)} cells recorded ({ok} ok); by role:")
    print(run.cells.groupby(["role", "method"]).size().to_string() if roles is not None else "")
    print("\n## Chosen settings (validation seeds 100 and 101)\n")
    print(tuning_table(run.meta))
    test = run.cells[run.cells["role"] == "test"] if roles is not None else run.cells.iloc[:0]
    if test.empty:
        print("\nno test cell yet")
        return
    cells = untuned.whole(untuned.named(test))
    pairs = cells.groupby(["seed", "param.truth"]).ngroups
    print(f"\n{pairs} whole test pairs (seeds {sorted(set(cells['seed']))})")
    untuned.relative_figure(run, cells, HERE / "dice-minus-syn-vs-time.png")
    untuned.dice_figure(cells, HERE / "dice-per-pair.png")
    print(f"\n### Pooled over the three generators ({pairs} pairs a method)\n")
    print(untuned.table(cells))
    for truth in TRUTHS:
        mine = cells[cells["param.truth"] == truth]
        print(f"\n#### truth = {truth} ({mine.groupby('seed').ngroups} pairs)\n")
        print(untuned.table(mine))
    cells = cells.drop(columns=["suite", "bench", "label", "name"])
    reference = "method=svf,method.symmetric=true"
    untuned.peers_summary.stats(cells, reference, "symmetric svf", "svf (symmetric)", digits=4)


if __name__ == "__main__":
    main()
