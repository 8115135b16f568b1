"""Figures of the registration tasks (matplotlib Figure objects, no pyplot state)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

# matplotlib is imported where a figure is drawn: at import it cost every
# process that loads the plugins (each worker, each `bench` command) 0.4 s
if TYPE_CHECKING:
    from matplotlib.figure import Figure


def view(array: np.ndarray) -> np.ndarray:
    """A 2-D array to show: the array itself, or the middle axial slice of a volume
    (rotated so that anterior is up)."""
    if array.ndim == 2:
        return array
    return np.rot90(array[:, :, array.shape[2] // 2])


def _grid_lines(ax, disp: np.ndarray, every: int) -> None:
    """Deformed grid: the points x + disp(x) of every ``every``-th row and column."""
    h, w = disp.shape[1:]
    ys, xs = np.mgrid[0:h, 0:w].astype(float)
    py, px = ys + disp[0], xs + disp[1]
    for i in range(0, h, every):
        ax.plot(px[i], py[i], lw=0.5, color="tab:blue")
    for j in range(0, w, every):
        ax.plot(px[:, j], py[:, j], lw=0.5, color="tab:blue")
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_aspect("equal")


def _slice_field(disp: np.ndarray) -> np.ndarray:
    """The in-plane components of a displacement on the view's slice."""
    if disp.shape[0] == 2:
        return disp
    z = disp.shape[3] // 2
    # view() rotates (x, y) by 90 degrees: rows are -y, columns are x
    comp_x, comp_y = disp[0, :, :, z], disp[1, :, :, z]
    return np.stack([-np.rot90(comp_y), np.rot90(comp_x)])


def registration_figure(
    fixed: np.ndarray,
    moving: np.ndarray,
    warped: np.ndarray,
    disp: np.ndarray,
    det: np.ndarray,
    title: str,
) -> Figure:
    """fixed / moving / warped / deformed grid / det J map."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 3.4), layout="constrained")
    axes = fig.subplots(1, 5)
    vmax = float(np.percentile(fixed, 99.5)) or 1.0
    for ax, image, name in zip(axes, (fixed, moving, warped), ("fixed", "moving", "warped")):
        ax.imshow(view(image), cmap="gray", vmin=0, vmax=vmax)
        ax.set_title(name)
    field = _slice_field(disp)
    every = max(2, field.shape[1] // 24)
    _grid_lines(axes[3], field, every)
    axes[3].set_title("deformed grid")
    shown = axes[4].imshow(view(det), cmap="RdBu", vmin=0.0, vmax=2.0)
    axes[4].set_title(f"det J (<= 0: {(det <= 0).mean() * 100:.3f}%)")
    fig.colorbar(shown, ax=axes[4], shrink=0.8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    return fig


def atlas_figure(truth: np.ndarray, mean: np.ndarray, template: np.ndarray, title: str) -> Figure:
    """True template / voxel-wise mean of the subjects / estimated template / difference."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.4), layout="constrained")
    axes = fig.subplots(1, 4)
    vmax = float(np.percentile(truth, 99.5)) or 1.0
    images = (truth, mean, template)
    for ax, image, name in zip(axes, images, ("true template", "voxel-wise mean", "estimated")):
        ax.imshow(view(image), cmap="gray", vmin=0, vmax=vmax)
        ax.set_title(name)
    diff = axes[3].imshow(view(template - truth), cmap="RdBu", vmin=-0.3, vmax=0.3)
    axes[3].set_title("estimated - true")
    fig.colorbar(diff, ax=axes[3], shrink=0.8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    return fig


def attribute_figure(
    truths: list[np.ndarray], estimates: list[np.ndarray], values: tuple[float, ...], title: str
) -> Figure:
    """The template across an attribute: true T(a) / estimated / estimated - true, one
    column per attribute value."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.2 * len(values) + 1, 9.6), layout="constrained")
    axes = fig.subplots(3, len(values), squeeze=False)
    vmax = float(np.percentile(truths[len(truths) // 2], 99.5)) or 1.0
    for col, (truth, estimate, a) in enumerate(zip(truths, estimates, values)):
        axes[0, col].imshow(view(truth), cmap="gray", vmin=0, vmax=vmax)
        axes[0, col].set_title(f"true T(a), a = {a:g}")
        axes[1, col].imshow(view(estimate), cmap="gray", vmin=0, vmax=vmax)
        axes[1, col].set_title(f"estimated, a = {a:g}")
        diff = axes[2, col].imshow(view(estimate - truth), cmap="RdBu", vmin=-0.3, vmax=0.3)
        axes[2, col].set_title("estimated - true")
    fig.colorbar(diff, ax=axes[2, :].tolist(), shrink=0.8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    return fig
