"""times.png from this folder's cells.parquet:
python results/published/kernels-headline-h200/figure.py"""

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).parent
IMPLS = ["eager", "compile", "triton"]


def case(r: pd.Series) -> str:
    if r.task == "kernels.warp":
        return "warp 3-D 160x192x224" if r["param.size"].count(",") == 2 else "warp 2-D 16x256x256"
    if r.task == "kernels.svf_exp":
        return "svf_exp 3-D, 7 steps"
    n = "2^20" if r["param.points"] < 2e6 else "2^24"
    return f"sine_mlp {n} {r['param.precision']}" + (" (train)" if r["param.backward"] else "")


cells = pd.read_parquet(HERE / "cells.parquet")
cells["case"] = cells.apply(case, axis=1)
cells["impl"] = cells.backend.str.split(".").str[1]
fig, axes = plt.subplots(1, 2, figsize=(14, 4.8))
for ax, col, title in [
    (axes[0], "time.forward.median", "forward"),
    (axes[1], "time.forward_backward.median", "forward + backward"),
]:
    d = cells.dropna(subset=[col])
    if col == "time.forward.median":
        d = d[~d.case.str.contains("train")]
    cases = list(dict.fromkeys(d.case))
    x = np.arange(len(cases))
    for i, impl in enumerate(IMPLS):
        ms = [d[(d.case == k) & (d.impl == impl)][col].median() * 1e3 for k in cases]
        ax.bar(x + (i - 1) * 0.27, ms, 0.27, label=impl)
    ax.set_xticks(x)
    ax.set_xticklabels(cases, rotation=25, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("median time (ms)")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
axes[0].legend()
fig.suptitle("kernels-headline on an NVIDIA H200 (2026-11-30): lower is better")
fig.tight_layout()
fig.savefig(HERE / "times.png", dpi=110)
