"""Every hook dynbench calls, in one place.

Each registration hook is called once, by ``bench.registry.Registry`` when a
plugin manager is turned into a registry (at the start of ``bench list``,
``bench run`` and in each worker process). Every implementation returns a list
of plugin classes; the results of all implementations are concatenated.
"""

from __future__ import annotations

import pluggy

from bench.base import Architecture, Backend, Encoding, Method, Solver, Task

hookspec = pluggy.HookspecMarker("bench")


@hookspec
def bench_solvers() -> list[type[Solver]]:
    """Register ODE solvers.

    Called once per registry. Returns ``Solver`` subclasses; each ``name`` must
    be unique across all plugins.
    """


@hookspec
def bench_architectures() -> list[type[Architecture]]:
    """Register architecture families (ResNet, RevNet, Neural ODE, ...).

    Called once per registry. Returns ``Architecture`` subclasses.
    """


@hookspec
def bench_encodings() -> list[type[Encoding]]:
    """Register coordinate-network encodings (Fourier features, SIREN, ...).

    Called once per registry. Returns ``Encoding`` subclasses.
    """


@hookspec
def bench_methods() -> list[type[Method]]:
    """Register methods that solve a family's problem (registration, physics, ...).

    Called once per registry. Returns ``Method`` subclasses, each naming its
    ``family``; a task's method slot takes only methods of the family it names.
    """


@hookspec
def bench_tasks() -> list[type[Task]]:
    """Register tasks: a problem, its protocol and metrics.

    Called once per registry. Returns ``Task`` subclasses.
    """


@hookspec
def bench_backends() -> list[type[Backend]]:
    """Register implementations of hot operations (warp, sine-MLP, ...).

    Called once per registry. Returns ``Backend`` subclasses, each naming its
    ``op``.
    """


#: hook name -> plugin kind it registers
REGISTRATION_HOOKS: dict[str, str] = {
    "bench_solvers": "solver",
    "bench_architectures": "architecture",
    "bench_encodings": "encoding",
    "bench_methods": "method",
    "bench_tasks": "task",
    "bench_backends": "backend",
}
