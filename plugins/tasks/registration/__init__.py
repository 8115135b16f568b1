"""Registration tasks: ``registration.pairwise`` and ``registration.atlas``.

See ``pairwise.py`` and ``atlas.py`` for the protocols, ``metrics.py`` for the Learn2Reg
definitions and ``plugins.methods.registration.problem`` for what a method receives.
"""

from __future__ import annotations

from bench import Task, hookimpl
from plugins.tasks.registration.atlas import Atlas
from plugins.tasks.registration.pairwise import Pairwise

REGISTRATION_TASKS: list[type[Task]] = [Pairwise, Atlas]


@hookimpl
def bench_plugins() -> list[type[Task]]:
    return list(REGISTRATION_TASKS)
