"""Montage of a Tancik run's reconstructions: a row per image, a column per mapping.

python results/published/fields-tancik-cpu/plot_reconstructions.py RUN_DIR OUT.png

Each panel is the cell's own ``reconstruction.png`` (the fit on the full grid), titled
with its full-grid and held-out PSNR; the first column is the target.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image


def _label(row: pd.Series) -> str:
    if row["encoding"] == "relu":
        return "no mapping"
    if row["encoding"] == "fourier":
        return "Gaussian"
    octaves, sigma = int(row["param.encoding.octaves"]), row["param.encoding.sigma"]
    if row.get("param.encoding.spacing") == "notebook":
        return f"positional {octaves}, 0-{sigma:g} cycles (notebook)"
    return f"positional {octaves}, {2:g}-{2 * sigma:g} cycles (ours)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    from plugins.data.images import load_image

    cells = pd.read_parquet(args.run / "cells.parquet")
    files = pd.read_parquet(args.run / "files.parquet")
    images = list(dict.fromkeys(cells["param.image"]))
    per_image = [cells[cells["param.image"] == name] for name in images]
    cols = 1 + max(len(rows) for rows in per_image)
    fig = Figure(figsize=(2.6 * cols, 2.8 * len(images)), layout="constrained")
    axes = fig.subplots(len(images), cols, squeeze=False)
    for r, (name, rows) in enumerate(zip(images, per_image)):
        size = int(rows["param.size"].iloc[0])
        axes[r, 0].imshow(load_image(name, size, "rgb"))
        axes[r, 0].set_title(f"{name} {size} px", fontsize=9)
        for c, (_, row) in enumerate(rows.iterrows(), start=1):
            mine = files[files["cell_id"] == row["cell_id"]]
            path = args.run / mine[mine["name"] == "reconstruction.png"]["path"].iloc[0]
            axes[r, c].imshow(np.asarray(Image.open(path)))
            axes[r, c].set_title(
                f"{_label(row)}\nfull {row['metric.psnr_test']:.2f} / "
                f"held-out {row['metric.psnr_heldout']:.2f} dB",
                fontsize=8,
            )
    for ax in axes.flat:
        ax.axis("off")
    fig.savefig(args.out, dpi=75)


if __name__ == "__main__":
    main()
