"""Suite files: load, validate in full, expand into cells.

A suite is YAML (read with ``yaml.safe_load``)::

    suite: quickstart
    device: auto            # auto | cpu | cuda | cuda:N
    seeds: [0, 1]           # or a count: 3 -> [0, 1, 2]
    repeats: 5              # timed repetitions per cell, after warm-up
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
"""

from __future__ import annotations

import functools
import gc
import hashlib
import itertools
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from bench import components as nested_plugins
from bench.base import Slot, Task
from bench.params import ParamError, did_you_mean, is_list_param, shown
from bench.registry import Registry, UnknownPluginError
from bench.settings import DEFAULTS, SETTINGS, read_settings

TOP_KEYS = {
    "suite": "name of the suite (results go to results/<suite>/<run-id>/)",
    "description": "free text",
    **{key: setting.doc for key, setting in SETTINGS.items()},
    "plugins": "modules or .py files to load plugins from",
    "max_cells": "most cells the suite may expand to (default 1,000,000; a typo guard)",
    "benchmarks": "list of benchmark entries",
}
BENCH_KEYS = {
    "task": "task plugin name",
    "name": "optional label for this entry",
    "params": "task and component parameters (lists sweep)",
    "matrix": "lists to sweep (cartesian product)",
    **{key: f"overrides the suite's {key}" for key, s in SETTINGS.items() if s.per_entry},
}
_SUITE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")  # a folder name


class SuiteError(Exception):
    """A suite file with mistakes; ``errors`` lists ``path: message`` strings."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        lines = "\n".join(f"  {e}" for e in errors)
        noun = "mistake" if len(errors) == 1 else "mistakes"
        super().__init__(f"{source}: {len(errors)} {noun}:\n{lines}")


_dump = functools.partial(json.dumps, sort_keys=True, default=str)


def _id_prefix(components_json: str, given_json: str) -> str:
    """The part of an id's JSON that the seeds of one combination share, from the JSON
    of its components and of its given values (each ``json.dumps(.., sort_keys=True)``)."""
    return f'{{"components": {components_json}, "given": {given_json}, '


def cell_id(prefix: str, seed: int, task: str, threads: int | None) -> str:
    """sha1 of ``json.dumps({task, components, given, seed[, threads]}, sort_keys=True)``,
    built from its sorted parts so that the seeds of one combination share the
    ``components``/``given`` part (``prefix``, from ``_id_prefix``). ``threads`` enters
    only when set: a thread sweep is a sweep, and ids without it stay as they were."""
    tail = f', "threads": {threads}' if threads is not None else ""
    blob = f'{prefix}"seed": {seed}, "task": {json.dumps(task)}{tail}}}'
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class Cell:
    """One unit of work: a task, its components and parameters, and a seed."""

    suite: str
    bench: int  # index of the benchmark entry in the suite
    label: str
    task: str
    components: dict[str, str]  # slot -> plugin name
    task_params: dict[str, Any]  # resolved (defaults filled in)
    component_params: dict[str, dict[str, Any]]  # slot -> resolved params
    given: dict[str, Any]  # the keys the suite set explicitly, flat
    seed: int
    # one field per setting of bench.settings.SETTINGS but seeds
    device: str
    repeats: int
    warmup: int
    timeout: float
    threads: int | None = None  # torch intra-op threads; None: leave torch's default
    files_limit_mb: float = 500.0  # most result files one cell may write
    fresh_worker: bool = False  # run in a new worker process, not a reused one
    files_dir: str = ""  # where its result files go; set by the runner, not the suite
    # the id, computed on first use (slots: a million cells take ~0.3 KB each)
    _id: str = field(default="", init=False, repr=False, compare=False)

    @property
    def id(self) -> str:
        """Stable across runs: a hash of what the suite asked for, not of defaults.
        (Computed once: a frozen dataclass's fields do not change.)"""
        if not self._id:
            prefix = _id_prefix(_dump(self.components), _dump(self.given))
            object.__setattr__(self, "_id", cell_id(prefix, self.seed, self.task, self.threads))
        return self._id

    def param_columns(self) -> dict[str, Any]:
        """``param.<name>`` and ``param.<slot>.<name>`` columns, defaults included."""
        cols = {f"param.{k}": v for k, v in self.task_params.items()}
        for slot, values in self.component_params.items():
            cols.update({f"param.{slot}.{k}": v for k, v in values.items()})
        return cols

    def describe(self) -> str:
        comps = " ".join(f"{s}={n}" for s, n in self.components.items())
        given = " ".join(f"{k}={v}" for k, v in self.given.items() if k not in self.components)
        return " ".join(p for p in (self.task, comps, given, f"seed={self.seed}") if p)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.init}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cell:
        return cls(**data)


@dataclass
class Suite:
    name: str
    source: str  # path, for messages
    text: str  # the file as written, stored in run.json
    data: dict[str, Any]
    plugins: list[str] = field(default_factory=list)
    base_dir: Path = Path(".")
    cells: list[Cell] = field(default_factory=list)


#: a suite file is text of at most this many bytes
MAX_SUITE_BYTES = 4 * 2**20
#: at most this many values once YAML aliases are expanded (an alias bomb of a few
#: hundred bytes multiplies by ten per level: refused before anything walks it)
MAX_SUITE_NODES = 200_000
#: a suite expands to at most this many cells unless it says ``max_cells:`` (a typo
#: of a sweep, not a benchmark); ``max_cells`` itself is bounded by MAX_CELLS_CEILING
MAX_CELLS = 1_000_000
MAX_CELLS_CEILING = 20_000_000


class _StrictLoader(yaml.SafeLoader):
    """safe_load, refusing a mapping that repeats a key (YAML would keep the last)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                continue  # the base class reports an unhashable key
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {shown(key)} appears twice in this mapping (first at line "
                    f"{seen[key].start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def _expanded_size(data: Any) -> int:
    """How many values ``data`` holds with every shared (aliased) part counted each
    time it appears: a DAG walk with memo, so a bomb is measured, not expanded."""
    memo: dict[int, int] = {}

    def size(value: Any, depth: int) -> int:
        if depth > 100:
            return MAX_SUITE_NODES + 1  # nesting past any suite's
        if not isinstance(value, (list, dict)):
            return 1
        key = id(value)
        if key not in memo:
            memo[key] = MAX_SUITE_NODES + 1  # a cycle (a recursive alias) is too big
            items = value.values() if isinstance(value, dict) else value
            total = 1
            for item in items:
                total += size(item, depth + 1)
                if total > MAX_SUITE_NODES:
                    break
            memo[key] = total
        return memo[key]

    return size(data, 0)


def read_suite_file(path: str | Path) -> tuple[str, dict[str, Any]]:
    """Read and parse YAML; raise ``SuiteError`` for unreadable or malformed files.

    Refused before anything walks the document: a file past ``MAX_SUITE_BYTES``, bytes
    that are not UTF-8, a key repeated in a mapping, and a document holding more than
    ``MAX_SUITE_NODES`` values once its aliases are expanded.
    """
    source = str(path)
    path = Path(path)
    try:
        if path.is_dir():
            raise SuiteError(source, ["is a folder, not a suite file"])
        size = path.stat().st_size
        if size > MAX_SUITE_BYTES:
            raise SuiteError(
                source, [f"{size} bytes: a suite file is at most {MAX_SUITE_BYTES} bytes of YAML"]
            )
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SuiteError(source, ["file not found"]) from None
    except OSError as exc:
        raise SuiteError(source, [f"cannot read: {exc.strerror or exc}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SuiteError(
            source,
            [f"not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start}): "
             "a suite file is YAML saved as UTF-8"],
        ) from None  # fmt: skip
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SuiteError(source, [f"{where}invalid YAML: {problem}"]) from None
    except RecursionError:
        raise SuiteError(source, ["nested too deeply to be a suite"]) from None
    if not isinstance(data, dict):
        raise SuiteError(source, ["the file must be a mapping with 'suite' and 'benchmarks'"])
    if _expanded_size(data) > MAX_SUITE_NODES:
        raise SuiteError(
            source,
            [f"holds more than {MAX_SUITE_NODES} values once its YAML aliases are expanded: "
             "not a suite (an alias bomb?)"],
        )  # fmt: skip
    return text, data


def plugin_specs(data: dict[str, Any], source: str) -> list[str]:
    """The suite's ``plugins:`` list, checked (it is needed before the registry exists)."""
    plugins = data.get("plugins", [])
    if plugins is None:
        return []
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise SuiteError(source, ["plugins: expected a list of module names or .py paths"])
    return plugins


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
        cells = expand(data, registry, source)
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
    )


def expand(data: dict[str, Any], registry: Registry, source: str = "<suite>") -> list[Cell]:
    """Validate ``data`` in full and return its cells; raise ``SuiteError`` listing every
    mistake."""
    errors: list[str] = []
    for key in data:
        if key not in TOP_KEYS:
            errors.append(_unknown_key(str(key), TOP_KEYS, ""))
    name = data.get("suite")
    if name is None:
        errors.append("suite: missing (the suite's name)")
    elif not isinstance(name, str) or not _SUITE_NAME_RE.match(name):
        errors.append(
            f"suite: {shown(name)} must be a name of at most 100 letters, digits, '.', '_' "
            "or '-' (it names the results folder)"
        )
    settings = read_settings(data, "", DEFAULTS, errors)
    limit = _max_cells(data, errors)
    benchmarks = data.get("benchmarks")
    cells: list[Cell] = []
    if benchmarks is None:
        errors.append("benchmarks: missing (a list of benchmark entries)")
    elif not isinstance(benchmarks, list) or not benchmarks:
        errors.append("benchmarks: expected a non-empty list")
    else:
        entries = [_entry_axes(e, i, settings, registry, errors) for i, e in enumerate(benchmarks)]
        counts = [entry.count if entry else 0 for entry in entries]
        if sum(counts) > limit:  # counted before anything is expanded
            sizes = ", ".join(
                f"benchmarks[{i}]: {entry.sizes()}" for i, entry in enumerate(entries) if entry
            )
            errors.append(
                f"the suite expands to {sum(counts):,} cells ({sizes}), more than its limit of "
                f"{limit:,}; if that many is meant, raise it with `max_cells: {sum(counts)}` "
                "at the suite's top level, or split the suite"
            )
        else:  # every entry that checked out is expanded: all mistakes are reported at once
            seen: dict[Any, Cell] = {}  # two entries must not make the same cell
            # The cyclic collector would walk the growing list of cells again and again
            # (a third of the time at a million cells); nothing here makes cycles.
            was_enabled = gc.isenabled()
            gc.disable()
            try:
                for entry in entries:
                    if entry is not None:
                        cells.extend(entry.cells(str(name), registry, errors, seen))
            finally:
                if was_enabled:
                    gc.enable()
    if errors:
        raise SuiteError(source, errors)
    return cells


def _unknown_key(key: str, allowed: dict[str, str], prefix: str) -> str:
    hint = did_you_mean(key, allowed)
    return f"{prefix}{key}: unknown key{hint} (allowed: {', '.join(allowed)})"


def _max_cells(data: dict[str, Any], errors: list[str]) -> int:
    value = data.get("max_cells", MAX_CELLS)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CELLS_CEILING:
        errors.append(
            f"max_cells: expected an integer from 1 to {MAX_CELLS_CEILING:,}, got {shown(value)}"
        )
        return MAX_CELLS
    return value


@dataclass
class _Entry:
    """One benchmark entry, checked key by key, before any cell exists: its sweep axes
    (key, values, path for messages) and settings. ``count`` needs no expansion."""

    index: int
    task_cls: type
    label: str
    axes: list[tuple[str, list[Any], str]]
    settings: dict[str, Any]

    @property
    def count(self) -> int:
        return math.prod(len(values) for _, values, _ in self.axes) * len(self.settings["seeds"])

    def sizes(self) -> str:
        return " x ".join(
            [
                *(str(len(values)) for _, values, _ in self.axes),
                f"{len(self.settings['seeds'])} seeds",
            ]
        )

    def cells(
        self, suite_name: str, registry: Registry, errors: list[str], seen: dict[Any, Cell]
    ) -> list[Cell]:
        """Every combination of the axes, resolved; a combination the plugins refuse adds
        its message (once) and no cell."""
        keys = [k for k, _, _ in self.axes]
        values = [v for _, v, _ in self.axes]
        paths = {k: p for k, _, p in self.axes}
        slots = self.task_cls.slots()
        # Which part of a cell each axis feeds: the task's parameters, or one slot's
        # component (its choice and its parameters). A part is resolved once per
        # distinct tuple of value positions on its axes (see _Resolver).
        groups: dict[str, list[int]] = {"": []}
        for i, key in enumerate(keys):
            slot = key.partition(".")[0] if "." in key or key in slots else ""
            groups.setdefault(slot, []).append(i)
        resolver = _Resolver(self.task_cls, registry, paths, f"benchmarks[{self.index}]")
        # The id's JSON of `given` from each value's JSON, written once per value:
        # json.dumps(d, sort_keys=True) is "{" + ", ".join('"k": ' + dumps(v)) + "}" over
        # the sorted keys (tests/bench check it against Cell.id's own path).
        order = sorted(range(len(keys)), key=keys.__getitem__)
        key_json = [json.dumps(k) for k in keys]
        value_json = [[_dump(v) for v in vals] for vals in values]
        components_json: dict[tuple[str, ...], str] = {}
        s = self.settings
        # every setting but the seeds (which make the cells) is a field of each cell
        cell_settings = {key: value for key, value in s.items() if key != "seeds"}
        cells = []
        for combo in itertools.product(*(range(len(v)) for v in values)):
            given = {key: values[i][combo[i]] for i, key in enumerate(keys)}
            parts = {g: tuple(combo[i] for i in idx) for g, idx in groups.items()}
            resolved = resolver(given, parts)
            if resolved is None:
                continue
            components, task_params, component_params = resolved
            names = tuple(components.values())
            if names not in components_json:
                components_json[names] = _dump(components)
            given_json = ", ".join(f"{key_json[i]}: {value_json[i][combo[i]]}" for i in order)
            prefix = _id_prefix(components_json[names], f"{{{given_json}}}")
            for seed in s["seeds"]:
                cell = Cell(
                    suite=suite_name,
                    bench=self.index,
                    label=self.label,
                    task=self.task_cls.name,
                    components=components,
                    task_params=task_params,
                    component_params=component_params,
                    given=given,
                    seed=seed,
                    **cell_settings,
                )
                key = cell_id(prefix, seed, cell.task, cell.threads)
                object.__setattr__(cell, "_id", key)  # computed here once, kept
                if key in seen:
                    errors.append(
                        f"benchmarks[{self.index}]: cell {cell.describe()!r} repeats "
                        f"benchmarks[{seen[key].bench}]"
                    )
                else:
                    seen[key] = cell
                cells.append(cell)
        for err in resolver.errors:
            if err not in errors:
                errors.append(err)
        return cells


def _entry_axes(
    entry: Any,
    index: int,
    inherited: dict[str, Any],
    registry: Registry,
    errors: list[str],
) -> _Entry | None:
    """Check one entry's keys, task and sweep values; None where it has mistakes."""
    path = f"benchmarks[{index}]"
    if not isinstance(entry, dict):
        errors.append(f"{path}: expected a mapping with a 'task', got {shown(entry)}")
        return None
    n_errors = len(errors)
    for key in entry:
        if key not in BENCH_KEYS:
            errors.append(_unknown_key(str(key), BENCH_KEYS, f"{path}."))
    settings = read_settings(entry, f"{path}.", inherited, errors)
    task_name = entry.get("task")
    if task_name is None:
        errors.append(f"{path}.task: missing")
        return None
    if not isinstance(task_name, str) or not registry.has("task", task_name):
        errors.append(f"{path}.task: " + registry.unknown("task", task_name))
        return None
    task_cls = registry.get("task", task_name)
    label = entry.get("name", task_name)
    if not isinstance(label, str):
        errors.append(f"{path}.name: expected a string, got {shown(label)}")

    axes: list[tuple[str, list[Any], str]] = []
    seen: set[str] = set()  # keys given, valid or not
    for section in ("params", "matrix"):
        block = entry.get(section)
        if block is None:
            continue
        if not isinstance(block, dict):
            errors.append(f"{path}.{section}: expected a mapping, got {shown(block)}")
            continue
        for key, value in block.items():
            kpath = f"{path}.{section}.{key}"
            if not isinstance(key, str):
                errors.append(f"{kpath}: keys must be strings")
                continue
            if key in seen:
                errors.append(f"{kpath}: set twice (in params and matrix)")
                continue
            seen.add(key)
            values = _axis_values(key, value, section, task_cls, registry, kpath, errors)
            if values is not None:
                axes.append((key, values, kpath))
    for slot, spec in task_cls.slots().items():
        if slot not in seen and spec.default is None and not spec.optional:
            fits = registry.fitting(spec.base)
            errors.append(
                f"{path}: {task_name} needs {_article(spec.describe())} in slot {shown(slot)} "
                f"(add e.g. `matrix: {{{slot}: [{', '.join(fits[:2])}]}}`)"
            )
    if len(errors) > n_errors:
        return None
    return _Entry(index, task_cls, label, axes, settings)


def _axis_values(
    key: str,
    value: Any,
    section: str,
    task_cls: type,
    registry: Registry,
    kpath: str,
    errors: list[str],
) -> list[Any] | None:
    """The list of values a key sweeps over (one value when it does not sweep): a
    component choice (``solver``), a component's parameter (``solver.rtol``, checked
    per cell once the component is known) or a task parameter. None where wrong."""
    if section == "matrix" and not isinstance(value, list):
        errors.append(f"{kpath}: matrix values must be lists, got {shown(value)}")
        return None
    if isinstance(value, list) and not value:
        errors.append(f"{kpath}: an empty list sweeps over nothing")
        return None
    slot, _, sub = key.partition(".")
    slots = task_cls.components
    if not sub and key in slots:
        return _component_choices(key, value, task_cls, registry, kpath, errors)
    if sub:
        if slot not in slots:
            known = ", ".join(slots) or "none"
            errors.append(
                f"{kpath}: {task_cls.name} has no component slot {shown(slot)} (slots: {known})"
            )
            return None
        return value if isinstance(value, list) else [value]
    return _task_param_values(key, value, section, task_cls, kpath, errors)


def _component_choices(
    slot: str, value: Any, task_cls: type, registry: Registry, kpath: str, errors: list[str]
) -> list[Any] | None:
    """The plugins named for a slot: each registered, a subclass of the slot's base,
    and one the task accepts."""
    values = value if isinstance(value, list) else [value]
    spec: Slot = task_cls.slots()[slot]
    ok = True
    for v in values:
        try:
            component = registry.lookup(spec.base, v, f", which slot {slot!r} takes")
        except UnknownPluginError as exc:
            errors.append(f"{kpath}: {exc}")
            ok = False
            continue
        reason = task_cls.check_component(slot, component)
        if reason:
            errors.append(f"{kpath}: {task_cls.name} cannot use {shown(v)}: {reason}")
            ok = False
    return values if ok else None


def _task_param_values(
    key: str, value: Any, section: str, task_cls: type, kpath: str, errors: list[str]
) -> list[Any] | None:
    """A task parameter's values, each validated. A list sweeps, except for a parameter
    that takes a list, which sweeps only a list of lists (or under ``matrix``)."""
    param = task_cls.params.get(key)
    if param is None:
        hint = did_you_mean(key, sorted(task_cls.params) + sorted(task_cls.components))
        known = ", ".join(sorted(task_cls.params)) or "none"
        errors.append(
            f"{kpath}: {task_cls.name} has no parameter {shown(key)}{hint} (parameters: {known})"
        )
        return None
    if isinstance(value, list) and (
        section == "matrix" or not is_list_param(param) or all(isinstance(v, list) for v in value)
    ):
        values = value
    else:
        values = [value]
    ok = True
    for v in values:
        try:
            param.validate(v)
        except ParamError as exc:
            errors.append(f"{kpath}: {exc}")
            ok = False
    return values if ok else None


class _Resolver:
    """One cell's components and resolved parameters, from the values it was given.

    Each part is resolved once per distinct input and remembered: the task's parameters
    depend only on the task's values, a component's only on its own, and the task's
    ``check_cell`` runs once per cell (it sees all the values; not at all for a task
    that keeps the base one). A product of sweeps repeats each part many times, so a
    million cells resolve in seconds. A plugin's own cross-parameter check
    (``resolve_params`` raising ``ParamError``) is reported with the entry and the
    values of that cell; ``errors`` collects each message once.
    """

    def __init__(self, task_cls: type, registry: Registry, paths: dict[str, str], where: str):
        self.task_cls = task_cls
        self.slots: dict[str, Slot] = task_cls.slots()
        self.registry = registry
        self.paths = paths
        self.where = where
        self.errors: list[str] = []
        self._seen_errors: set[str] = set()
        self._memo: dict[Any, Any] = {}
        # a task that keeps the base check_cell refuses nothing: skip the call and its memo
        self._checks = (
            getattr(task_cls.check_cell, "__func__", None) is not Task.check_cell.__func__
        )

    def _error(self, message: str) -> None:
        if message not in self._seen_errors:
            self._seen_errors.add(message)
            self.errors.append(message)

    def _once(self, key: Any, compute: Callable[..., Any], *args: Any) -> Any:
        try:
            return self._memo[key]
        except KeyError:
            value = self._memo[key] = compute(*args)
            return value

    def __call__(
        self, given: dict[str, Any], parts: dict[str, Any]
    ) -> tuple[dict[str, str], dict[str, Any], dict[str, dict[str, Any]]] | None:
        """``parts``: for the task ("") and each slot, a key that is equal only where that
        part's given values are the same (their value positions on the sweep's axes)."""
        # a slot the suite left out takes its default; an optional one without a
        # default stays empty
        components = {
            slot: given.get(slot, spec.default)
            for slot, spec in self.slots.items()
            if slot in given or spec.default is not None
        }
        task_given: dict[str, Any] = {}
        comp_given: dict[str, dict[str, Any]] = {slot: {} for slot in self.slots}
        for key, value in given.items():
            slot, _, sub = key.partition(".")
            if sub:
                comp_given[slot][sub] = value
            elif key not in self.slots:
                task_given[key] = value
        task_key = parts[""]
        task_params = self._once(("task", task_key), self._task, task_given)
        component_params = {}
        for slot, name in components.items():
            sub = comp_given[slot]
            key = ("component", slot, name, parts.get(slot, ()))
            component_params[slot] = self._once(key, self._component, slot, name, sub)
        if task_params is None or any(v is None for v in component_params.values()):
            return None
        # Not memoised: it sees every part, so its key would be the whole cell (a
        # million-entry table that never hits); a check that is costly caches itself.
        if self._checks and not self._check_cell(components, task_params, component_params, given):
            return None
        return components, task_params, component_params

    def _task(self, task_given: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return self.task_cls.resolve_params(task_given)  # each value validated already
        except ParamError as exc:
            self._error(f"{self.where}{_values_shown(task_given)}: {self.task_cls.name}: {exc}")
            return None

    def _component(self, slot: str, name: str, given: dict[str, Any]) -> dict[str, Any] | None:
        cls = self.registry.lookup(self.slots[slot].base, name)

        def report(key: str | None, message: str) -> None:
            where = self.paths.get(f"{slot}.{key}") if key is not None else None
            if where is None:  # a default, or a rule across parameters
                where = f"{self.where}{_values_shown(given, slot)}"
                message = message if message.startswith(f"{cls.name}") else f"{name}: {message}"
            self._error(f"{where}: {message}")

        return nested_plugins.resolve(self.registry, cls, given, report)

    def _check_cell(
        self,
        components: dict[str, str],
        task_params: dict[str, Any],
        component_params: dict[str, dict[str, Any]],
        given: dict[str, Any],
    ) -> bool:
        classes = {
            slot: self.registry.lookup(self.slots[slot].base, n) for slot, n in components.items()
        }
        params = dict(task_params)  # with each component's as "slot.name", as a suite names them
        for slot, values in component_params.items():
            params.update((f"{slot}.{name}", value) for name, value in values.items())
        reason = self.task_cls.check_cell(classes, params)
        if reason:
            self._error(f"{self.where}{_values_shown(given)}: {self.task_cls.name}: {reason}")
        return not reason


def _article(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _values_shown(values: dict[str, Any], slot: str = "") -> str:
    prefix = f"{slot}." if slot else ""
    inner = ", ".join(f"{prefix}{k}={shown(v, 30)}" for k, v in values.items())
    return f" ({inner})" if inner else ""
