"""dynbench's harness: plugin model, suites, runner, results.

The public API for plugin authors::

    from bench import hookimpl, Param, Solver, Task, CellContext

and for reading a run back (a run folder, or a suite's folder: its latest run):
``load_run(path)`` (its ``cells``, ``curves``, ``samples``, ``files`` tables and
``meta``) and ``reported(cells)`` (the cells that are results: a tuned entry's
validation cells and superseded ones left out).

Nothing here knows of any domain; the built-in plugins live in ``plugins``.
"""

from bench.artifacts import ArtifactError
from bench.base import (
    Architecture,
    Backend,
    Diverged,
    Encoding,
    Method,
    Plugin,
    SkipCell,
    Slot,
    Solver,
    Task,
    add_note,
)
from bench.context import CellContext
from bench.fileio import atomic_path
from bench.headline import Headline
from bench.params import Param, ParamError, did_you_mean
from bench.plugins import get_plugin_manager, hookimpl
from bench.registry import Registry
from bench.results import load_run, reported
from bench.scaffold import Template

__all__ = [
    "ArtifactError",
    "Architecture",
    "Backend",
    "CellContext",
    "Diverged",
    "Encoding",
    "Headline",
    "Method",
    "Param",
    "ParamError",
    "Plugin",
    "Registry",
    "SkipCell",
    "Slot",
    "add_note",
    "atomic_path",
    "did_you_mean",
    "Solver",
    "Task",
    "Template",
    "get_plugin_manager",
    "hookimpl",
    "load_run",
    "reported",
]

__version__ = "0.1.0"
