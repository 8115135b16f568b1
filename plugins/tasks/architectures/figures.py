"""The lecture's figures for one fitted 2-D classifier: decision boundary, trajectories
through depth, Jacobian-determinant map (matplotlib ``Figure``, no global state)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

# matplotlib is imported where a figure is drawn: at import it cost every
# process that loads the plugins (each worker, each `bench` command) 0.4 s
if TYPE_CHECKING:
    from matplotlib.figure import Figure

CLASS_COLOURS = ("tab:blue", "tab:red")


def _figure(title: str) -> tuple[Figure, object]:
    # fixed margins: constrained layout costs ~0.5 s a figure on a loaded 2-core machine
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.0, 3.6), dpi=90)
    fig.subplots_adjust(left=0.12, right=0.95, bottom=0.1, top=0.9)
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    return fig, ax


def decision_boundary(
    xs: np.ndarray, ys: np.ndarray, prob: np.ndarray, x: np.ndarray, y: np.ndarray, title: str
) -> Figure:
    """P(class 1) over the grid, the 0.5 contour, and the (test) points."""
    fig, ax = _figure(title)
    ax.contourf(xs, ys, prob, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.6)
    ax.contour(xs, ys, prob, levels=[0.5], colors="k", linewidths=1.0)
    for c in (0, 1):
        pts = x[y == c]
        ax.scatter(pts[:, 0], pts[:, 1], s=6, c=CLASS_COLOURS[c], edgecolors="none")
    ax.set_xlim(xs[0], xs[-1])
    ax.set_ylim(ys[0], ys[-1])
    return fig


def trajectories(traj: np.ndarray, y: np.ndarray, title: str) -> Figure:
    """Each point's path through depth (first two features): ``traj`` is (L+1, N, d)."""
    fig, ax = _figure(title)
    for c in (0, 1):
        paths = traj[:, y == c, :2]
        ax.plot(paths[:, :, 0], paths[:, :, 1], color=CLASS_COLOURS[c], lw=0.4, alpha=0.5)
        ax.scatter(paths[-1, :, 0], paths[-1, :, 1], s=5, c=CLASS_COLOURS[c], edgecolors="none")
    ax.scatter(traj[0, :, 0], traj[0, :, 1], s=2, c="k", edgecolors="none", alpha=0.4)
    return fig


def jacobian_map(xs: np.ndarray, ys: np.ndarray, det: np.ndarray, title: str) -> Figure:
    """det of the flow's Jacobian over the grid; the 0 contour marks folds."""
    fig, ax = _figure(title)
    low, high = float(det.min()), float(det.max())
    centre = 0.0 if low < 0.0 < high else (1.0 if low < 1.0 < high else (low + high) / 2)
    from matplotlib.colors import TwoSlopeNorm

    norm = TwoSlopeNorm(vcenter=centre, vmin=min(low, centre - 1e-6), vmax=max(high, centre + 1e-6))
    mesh = ax.pcolormesh(xs, ys, det, cmap="PuOr_r", norm=norm, shading="auto")
    if low < 0.0 < high:
        ax.contour(xs, ys, det, levels=[0.0], colors="k", linewidths=1.0)
    fig.colorbar(mesh, ax=ax, shrink=0.8).ax.tick_params(labelsize=7)
    return fig


def convergence(errors: list[float], coeff: float | None, title: str) -> Figure:
    """Fixed-point error per iteration against the bound's rate c^n (where the module
    has a contraction bound ``coeff``)."""
    fig, ax = _figure(title)
    n = np.arange(len(errors))
    ax.semilogy(n, np.maximum(errors, 1e-300), "o-", ms=2, label="||x_n - x*|| (max)")
    if coeff is not None:
        ax.semilogy(n, errors[0] * coeff**n, "k--", lw=1, label=f"bound c^n, c = {coeff:g}")
    ax.set_xlabel("iteration n", fontsize=8)
    ax.legend(fontsize=7)
    return fig
