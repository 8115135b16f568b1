"""Built-in ``physics.*`` tasks: Burgers' equation learnt by physics methods against
exact references, and 2-D density control through a differentiable advection."""

from __future__ import annotations

from bench import Task, hookimpl
from plugins.tasks.physics.burgers import BurgersReconstructTask, BurgersTask
from plugins.tasks.physics.control import DensityControlTask

PHYSICS_TASKS: list[type[Task]] = [BurgersTask, BurgersReconstructTask, DensityControlTask]


@hookimpl
def bench_plugins() -> list[type[Task]]:
    return list(PHYSICS_TASKS)
