"""Tasks of the architectures family (issue 12): classify.toy, memory.depth,
synthesis.t1_to_t2, classify.digits."""

from __future__ import annotations

from bench import Task, hookimpl
from plugins.tasks.architectures.digits import ClassifyDigits
from plugins.tasks.architectures.memory import MemoryDepth
from plugins.tasks.architectures.synthesis import SynthesisT1ToT2
from plugins.tasks.architectures.toy import ClassifyToy


@hookimpl
def bench_plugins() -> list[type[Task]]:
    return [ClassifyToy, ClassifyDigits, MemoryDepth, SynthesisT1ToT2]
