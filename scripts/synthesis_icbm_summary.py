"""Table and figure of a ``suites/architectures-synthesis-icbm.yaml`` run.

    python scripts/synthesis_icbm_summary.py RUN_DIR OUT_DIR

Applies the suite's tuning rule (per method, the learning rate with the higher
validation PSNR; the reversible model: the mean of its two directions), prints the
README's table of the test slabs for the chosen values, the full grid, and the gaps
to the one-direction networks, and draws ``OUT_DIR/icbm-both-directions.png`` from the
cells' ``figure_slice.npz`` (one held-out slice: input, truth, each method's output,
its |error|, both directions).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

DIRECTIONS = ("t1_to_t2", "t2_to_t1")
METHODS = {  # (architecture, mode) -> label
    ("revnet", "reversible"): "RevNet m, ONE network both ways (T2->T1 by m^-1)",
    ("revnet", "t1_to_t2"): "RevNet m, T1->T2 alone",
    ("revnet", "t2_to_t1"): "RevNet m, T2->T1 alone",
    ("resnet", "t1_to_t2"): "ResNet m, T1->T2 alone",
    ("resnet", "t2_to_t1"): "ResNet m, T2->T1 alone",
}


def _val_score(row: pd.Series) -> float:
    values = [row.get(f"metric.val_psnr_{d}") for d in DIRECTIONS]
    return float(np.nanmean([v for v in values if v is not None and not pd.isna(v)]))


def chosen(cells: pd.DataFrame) -> pd.DataFrame:
    cells = cells[cells["status"] == "ok"].copy()
    cells["val_score"] = cells.apply(_val_score, axis=1)
    best = cells.loc[cells.groupby(["architecture", "param.mode"])["val_score"].idxmax()]
    return best.set_index(["architecture", "param.mode"])


def _fmt(value: float, digits: int) -> str:
    return "-" if value is None or pd.isna(value) else f"{value:.{digits}f}"


def table(best: pd.DataFrame) -> str:
    head = (
        "| method | lr | PSNR T1->T2 | SSIM | MAE | PSNR T2->T1 | SSIM | MAE "
        "| val PSNR | train s |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    rows = [head]
    for key, label in METHODS.items():
        if key not in best.index:
            continue
        r = best.loc[key]
        cols = [label, f"{r['param.lr']:g}"]
        for d in DIRECTIONS:
            cols += [
                _fmt(r.get(f"metric.psnr_{d}"), 2),
                _fmt(r.get(f"metric.ssim_{d}"), 3),
                _fmt(r.get(f"metric.mae_{d}"), 4),
            ]
        cols += [_fmt(r["val_score"], 2), _fmt(r["time.train.median"], 0)]
        rows.append("| " + " | ".join(cols) + " |")
    return "\n".join(rows)


def figure(run: Path, best: pd.DataFrame, out: Path) -> None:
    slices = {}
    for key in METHODS:
        if key in best.index:
            path = run / "files" / best.loc[key, "cell_id"] / "figure_slice.npz"
            if path.is_file():
                slices[key] = dict(np.load(path))
    rev = slices[("revnet", "reversible")]
    rows = []
    for d, src, tgt in (("t1_to_t2", "t1", "t2"), ("t2_to_t1", "t2", "t1")):
        panels = [
            (f"input {src.upper()}", rev[src], False),
            (f"true {tgt.upper()}", rev[tgt], False),
        ]
        for (arch, mode), arrays in slices.items():
            if d not in arrays:
                continue
            name = "one net both ways" if mode == "reversible" else f"{arch} {d} alone"
            panels.append((name, arrays[d], False))
            panels.append(("|error|", np.abs(arrays[d] - rev[tgt]), True))
        rows.append(panels)
    ncols = max(len(r) for r in rows)
    fig = Figure(figsize=(1.55 * ncols, 4.2), dpi=90)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.86, wspace=0.04, hspace=0.22)
    fig.suptitle(
        "ICBM 2009c, real T1w <-> T2w, 2 mm, a held-out slab's axial slice (test split); "
        "|error| 0 (black) to 0.3 (white), brain mask in cyan",
        fontsize=9,
    )
    for i, panels in enumerate(rows):
        for j, (name, image, is_error) in enumerate(panels):
            ax = fig.add_subplot(2, ncols, i * ncols + j + 1)
            cmap, top = ("magma", 0.3) if is_error else ("gray", 1.0)
            ax.imshow(np.rot90(image), cmap=cmap, vmin=0.0, vmax=top)
            if is_error:  # the metrics count only the voxels inside the brain mask
                ax.contour(np.rot90(rev["mask"]), levels=[0.5], colors="cyan", linewidths=0.5)
            ax.set_title(name, fontsize=7)
            ax.axis("off")
    fig.savefig(out / "icbm-both-directions.png")


def main(argv: list[str]) -> None:
    run, out = Path(argv[0]), Path(argv[1])
    cells = pd.read_parquet(run / "cells.parquet")
    best = chosen(cells)
    print(table(best))
    print()
    grid = cells[["architecture", "param.mode", "param.lr", "status", "wall"]].copy()
    for d in DIRECTIONS:
        grid[f"val_{d}"] = cells.get(f"metric.val_psnr_{d}")
        grid[f"test_{d}"] = cells.get(f"metric.psnr_{d}")
    print(grid.round({c: 2 for c in grid.columns if c != "param.lr"}).to_string(index=False))
    print()
    rev = best.loc[("revnet", "reversible")]
    for d in DIRECTIONS:
        for arch in ("revnet", "resnet"):
            if (arch, d) in best.index:
                gap = best.loc[(arch, d), f"metric.psnr_{d}"] - rev[f"metric.psnr_{d}"]
                print(f"gap {d}: {arch} alone - one net both ways = {gap:+.2f} dB")
    stems = ("cycle", "identity", "feature_gap", "invertibility", "m_relative", "psnr_t1_vs")
    props = [c for c in cells.columns if c.split(".")[-1].startswith((*stems, "parameters"))]
    print(rev[props].to_string())
    figure(run, best, out)


if __name__ == "__main__":
    main(sys.argv[1:])
