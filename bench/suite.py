"""Suite files: load, validate in full, expand into cells.

A suite is YAML (read with ``yaml.safe_load``)::

    suite: quickstart
    device: auto            # auto | cpu | cuda | cuda:N
    seeds: [0, 1]           # or a count: 3 -> [0, 1, 2]
    repeats: 5              # timed repetitions of each ctx.time region, after warm-up
    warmup: 1               # untimed calls before timing
    timeout: 120            # seconds per cell
    threads: 1              # torch intra-op threads per worker (default: torch's choice)
    plugins: [my_lab.plugins, ./local_plugin.py]
    benchmarks:
      - task: ode.harmonic
        params: {t1: 10.0, solver.step_size: [0.1, 0.01]}
        matrix:
          solver: [euler, rk4]

In ``params`` and ``matrix`` alike, a key is a task parameter (``t1``), a
component slot of the task (``solver``: the plugin name), or a component's
parameter (``solver.step_size``). Every list in ``matrix``, and every list in
``params`` given to a parameter that does not itself take a list, is swept: the
cells are the cartesian product of all sweeps, times the seeds.

Every mistake is collected with its path (``benchmarks[1].params.t1``) before
anything runs; ``SuiteError`` carries them all.

The parts: ``bench.suitefile`` reads the file (strict YAML, limits), ``bench.sweep``
checks it and expands the sweeps, ``bench.cell`` is the cell model and
``bench.settings`` the harness settings; ``load_suite`` puts them together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.cell import Cell, cell_id
from bench.registry import Registry
from bench.suitefile import (
    MAX_SUITE_BYTES,
    MAX_SUITE_NODES,
    SuiteError,
    plugin_specs,
    read_suite_file,
)
from bench.sweep import MAX_CELLS, MAX_CELLS_CEILING, expand, expand_all
from bench.tuning import Tuning

__all__ = [
    "MAX_CELLS",
    "MAX_CELLS_CEILING",
    "MAX_SUITE_BYTES",
    "MAX_SUITE_NODES",
    "Cell",
    "Suite",
    "SuiteError",
    "cell_id",
    "expand",
    "load_suite",
    "plugin_specs",
    "read_suite_file",
]


@dataclass
class Suite:
    name: str
    source: str  # path, for messages
    text: str  # the file as written, stored in run.json
    data: dict[str, Any]
    plugins: list[str] = field(default_factory=list)
    base_dir: Path = Path(".")
    cells: list[Cell] = field(default_factory=list)
    #: task name -> its declared headline (``Headline.to_dict()``), for run.json
    headlines: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the tuned entries' configurations (bench.tuning): their test cells run once
    #: their validation cells are recorded
    tunings: list[Tuning] = field(default_factory=list)

    @property
    def planned(self) -> int:
        """The rows a complete run records: the cells, then each tuned configuration's
        test cells for the one setting its validation chooses."""
        return len(self.cells) + sum(len(t.test[0]) for t in self.tunings if t.test)


def load_suite(
    path: str | Path,
    registry: Registry | None = None,
    *,
    probe: bool = True,
    read: tuple[str, dict[str, Any]] | None = None,
) -> Suite:
    """Load, validate and expand a suite file.

    ``registry`` defaults to one built from the built-ins, entry points and the
    suite's own ``plugins:`` list; those are first imported in a child process
    (``probe``) so that one ending the process while importing is reported, not obeyed
    (``probe=False`` when a worker has already loaded them). ``read``: what
    ``read_suite_file(path)`` returned, when the caller has read it already.
    """
    from bench.plugins import PluginLoadError, get_plugin_manager, load_plugin, probe_plugins

    text, data = read if read is not None else read_suite_file(path)
    source = str(path)
    base_dir = Path(path).resolve().parent
    plugins = plugin_specs(data, source)
    plugin_errors: list[str] = []
    if registry is None and probe:
        try:
            probe_plugins(plugins, base_dir=base_dir)
        except PluginLoadError as exc:
            raise SuiteError(source, [f"plugins: {exc}"]) from None
    if registry is None:
        # A plugin that does not load is reported with the suite's other mistakes,
        # found by validating against the plugins that did load.
        loaded = []
        for spec in plugins:
            try:
                load_plugin(spec, base_dir=base_dir)
                loaded.append(spec)
            except PluginLoadError as exc:
                plugin_errors.append(f"plugins: {exc}")
        try:
            registry = Registry(get_plugin_manager(loaded, base_dir=base_dir))
        except PluginLoadError as exc:
            raise SuiteError(source, [*plugin_errors, f"plugins: {exc}"]) from None
    try:
        cells, tunings = expand_all(data, registry, source)
    except SuiteError as exc:
        raise SuiteError(source, [*plugin_errors, *exc.errors]) from None
    if plugin_errors:
        raise SuiteError(source, plugin_errors)
    return Suite(
        name=data["suite"],
        source=source,
        text=text,
        data=data,
        plugins=plugins,
        base_dir=base_dir,
        cells=cells,
        headlines=_headlines(registry, cells),
        tunings=tunings,
    )


def _headlines(registry: Registry, cells: list[Cell]) -> dict[str, dict[str, Any]]:
    """What each task of the suite declares as its result (``Task.headline``)."""
    out = {}
    for task in dict.fromkeys(c.task for c in cells):
        declared = registry.get("task", task).headline
        if declared is not None:
            out[task] = declared.to_dict()
    return out
