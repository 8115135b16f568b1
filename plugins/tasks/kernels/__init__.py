"""Built-in ``kernels.*`` tasks: micro-benchmarks of the backends of one hot operation.

Each task makes its inputs (untimed), checks the backend's output, and gradients where
asked, against a float64 torch reference (untimed), then times the forward pass, and
forward+backward, with the harness's protocol (CUDA events and an L2 flush on GPU,
perf_counter on CPU). The achieved bandwidth or FLOP rate divides a lower-bound cost
model (``kernels.cost``) by the median time, so rows of different backends compare
against the same figure.
"""

from __future__ import annotations

from bench import Task, hookimpl
from plugins.tasks.kernels.tasks import SineMLPTask, SvfExpTask, WarpTask

KERNEL_TASKS: list[type[Task]] = [WarpTask, SvfExpTask, SineMLPTask]


@hookimpl
def bench_plugins() -> list[type[Task]]:
    return list(KERNEL_TASKS)
