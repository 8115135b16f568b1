"""The figures every physics cell keeps: what it fitted beside the reference."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

# matplotlib is imported where a figure is drawn: at import it cost every
# process that loads the plugins (each worker, each `bench` command) 0.4 s
if TYPE_CHECKING:
    from matplotlib.figure import Figure


def render(fig: Figure) -> np.ndarray:
    """The figure drawn once, as an ``(H, W, 4)`` uint8 RGBA array for ``ctx.artifact``.

    Saving a figure with a tight bounding box lays it out twice; drawing it once on an
    Agg canvas took 2.5 s against 4.2 s for these figures on the loaded test machine.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.array(canvas.buffer_rgba())


def field_figure(
    predicted: np.ndarray,
    reference: np.ndarray,
    x: np.ndarray,
    t: np.ndarray,
    title: str,
    lines: tuple[float, ...] = (0.25, 0.5, 0.75),
) -> Figure:
    """u(x, t) fitted, the reference and |error| as x-t maps (arrays ``(len(t), len(x))``),
    and slices at the times ``lines``, as Raissi's figure 1."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 6.4), layout="constrained")
    grid = fig.add_gridspec(2, 3)
    extent = (float(t[0]), float(t[-1]), float(x[0]), float(x[-1]))
    vmax = float(np.abs(reference).max())
    error = np.abs(predicted - reference)
    panels = (
        (predicted, "fitted u(x, t)", "RdBu_r", -vmax, vmax),
        (reference, "reference u(x, t)", "RdBu_r", -vmax, vmax),
        (error, "|fitted - reference|", "magma", 0.0, float(error.max()) or 1.0),
    )
    for col, (data, label, cmap, lo, hi) in enumerate(panels):
        ax = fig.add_subplot(grid[0, col])
        im = ax.imshow(
            data.T, origin="lower", aspect="auto", extent=extent, cmap=cmap, vmin=lo, vmax=hi
        )
        ax.set(title=label, xlabel="t", ylabel="x")
        fig.colorbar(im, ax=ax)
    for col, when in enumerate(lines):
        k = int(np.argmin(np.abs(t - when)))
        ax = fig.add_subplot(grid[1, col])
        ax.plot(x, reference[k], "b-", lw=2, label="reference")
        ax.plot(x, predicted[k], "r--", lw=2, label="fitted")
        ax.set(title=f"t = {t[k]:.2f}", xlabel="x", ylabel="u", ylim=(-1.1 * vmax, 1.1 * vmax))
        ax.legend(loc="upper right", fontsize=8)
    fig.suptitle(title)
    return fig


def sequence_figure(frames: list[tuple[str, np.ndarray]], title: str) -> Figure:
    """A row of 2-D images (density sequence, target, error), one grey scale for the
    densities and a separate one for a frame named ``error``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2.2 * len(frames), 2.6), layout="constrained")
    dens = [f for name, f in frames if not name.startswith("error")]
    hi = float(max(f.max() for f in dens)) if dens else 1.0
    for i, (name, frame) in enumerate(frames):
        ax = fig.add_subplot(1, len(frames), i + 1)
        if name.startswith("error"):
            ax.imshow(frame, cmap="magma", vmin=0.0, vmax=float(frame.max()) or 1.0)
        else:
            ax.imshow(frame, cmap="gray", vmin=0.0, vmax=hi)
        ax.set_title(name, fontsize=9)
        ax.set_axis_off()
    fig.suptitle(title, fontsize=10)
    return fig
