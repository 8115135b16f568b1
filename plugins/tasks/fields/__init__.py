"""Neural-field tasks (issue 9): ``fields.image_fit``, ``fields.poisson``,
``fields.multires``, ``fields.volume_fit``, ``fields.occupancy``."""

from __future__ import annotations

from bench import Task, hookimpl
from plugins.tasks.fields.image import ImageFit, Multires, Poisson
from plugins.tasks.fields.volume import Occupancy, VolumeFit

FIELD_TASKS: list[type[Task]] = [ImageFit, Poisson, Multires, VolumeFit, Occupancy]


@hookimpl
def bench_plugins() -> list[type[Task]]:
    return list(FIELD_TASKS)
