"""Every hook dynbench calls, in one place.

The registration hooks are called once per registry, by ``bench.registry.Registry``,
when a plugin manager is turned into one (at the start of ``bench list``, ``bench run``
and in each worker process). Each implementation returns a list; the lists of all
implementations are joined.
"""

from __future__ import annotations

import pluggy

from bench.base import Plugin
from bench.scaffold import Template

hookspec = pluggy.HookspecMarker("bench")


@hookspec
def bench_plugins() -> list[type[Plugin]]:
    """Register plugins of any kind: solvers, architectures, tasks, ...

    Called once per registry. Returns plugin classes; the kind of each is read from the
    class (its ``kind``, set by the base it subclasses: ``Solver``, ``Task``, ...). Each
    ``name`` must be unique within its kind across all plugins.
    """


@hookspec
def bench_kinds() -> list[type[Plugin]]:
    """Register new kinds of plugin: base classes whose ``kind`` no other base has.

    Called once per registry, before ``bench_plugins``. Returns ``bench.Plugin``
    subclasses, each setting a new ``kind`` (``class Dataset(Plugin): kind = "dataset"``);
    ``bench_plugins`` may then return subclasses of them, a task's slot may name them, and
    ``bench list`` lists them.
    """


@hookspec
def bench_templates() -> list[Template]:
    """Offer starting points for ``bench new KIND NAME``.

    Called once by ``bench new``. Returns ``bench.scaffold.Template`` objects, each a
    plugin file of one kind and a suite that runs it beside built-ins of that kind.
    """
