"""The picture each ``ode.*`` cell keeps: the solution beside the reference."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

# matplotlib is imported where a figure is drawn: at import it cost every
# process that loads the plugins (each worker, each `bench` command) 0.4 s
if TYPE_CHECKING:
    from matplotlib.figure import Figure


def trajectory_figure(
    t: np.ndarray, y: np.ndarray, ref: np.ndarray, *, title: str, labels: list[str] | None = None
) -> Figure:
    """Components against time (solver solid, reference dashed), the phase portrait of
    the first two components, and the pointwise error ``|y - ref|`` on a log scale."""
    dim = y.shape[1]
    labels = labels or [f"y{i}" for i in range(dim)]
    panels = 3 if dim >= 2 else 2
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.0 * panels, 3.2), layout="constrained")
    axes = figure.subplots(1, panels)
    colours = [f"C{i}" for i in range(dim)]
    for i in range(dim):
        axes[0].plot(t, y[:, i], color=colours[i], label=labels[i])
        axes[0].plot(t, ref[:, i], color=colours[i], linestyle="--", linewidth=1)
    axes[0].set(xlabel="t", title="solution (dashed: reference)")
    axes[0].legend(fontsize="small")
    if dim >= 2:
        axes[1].plot(ref[:, 0], ref[:, 1], color="0.6", linestyle="--", label="reference")
        axes[1].plot(y[:, 0], y[:, 1], color="C0", label="solver")
        axes[1].set(xlabel=labels[0], ylabel=labels[1], title="phase portrait")
        axes[1].legend(fontsize="small")
    error = np.abs(y - ref).max(axis=1)
    shown = error > 0  # exact points (t = 0) have no place on a log axis
    err_ax = axes[-1]
    err_ax.semilogy(t[shown], error[shown], color="C3")
    err_ax.set(xlabel="t", title="max |y - reference| (exact points left out)")
    figure.suptitle(title, fontsize="medium")
    return figure
