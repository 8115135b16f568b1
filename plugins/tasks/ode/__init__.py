"""Built-in ``ode.*`` tasks: reference problems and a Neural ODE fit."""

from __future__ import annotations

from bench import Task, hookimpl
from plugins.tasks.ode.neural_ode_fit import NeuralODEFitTask
from plugins.tasks.ode.tasks import HarmonicTask, LotkaVolterraTask, SpiralTask, VanDerPolTask

ODE_TASKS: list[type[Task]] = [
    HarmonicTask,
    SpiralTask,
    LotkaVolterraTask,
    VanDerPolTask,
    NeuralODEFitTask,
]


@hookimpl
def bench_plugins() -> list[type[Task]]:
    return list(ODE_TASKS)
