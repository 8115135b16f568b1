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

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.base import family_mismatch
from bench.params import ParamError, is_list_param, shown
from bench.registry import Registry

TOP_KEYS = {
    "suite": "name of the suite (results go to results/<suite>/<run-id>/)",
    "description": "free text",
    "device": "auto | cpu | cuda | cuda:N",
    "seeds": "list of integer seeds, or a count",
    "repeats": "timed repetitions per cell (>= 1)",
    "warmup": "untimed calls before timing (>= 0)",
    "timeout": "seconds per cell (> 0)",
    "threads": "torch intra-op CPU threads in the worker (>= 1; default: torch's choice)",
    "files_limit_mb": "most MiB of result files one cell may write (default 500)",
    "fresh_worker": "run each cell in a new worker process (true/false; default false)",
    "plugins": "modules or .py files to load plugins from",
    "benchmarks": "list of benchmark entries",
}
BENCH_KEYS = {
    "task": "task plugin name",
    "name": "optional label for this entry",
    "params": "task and component parameters (lists sweep)",
    "matrix": "lists to sweep (cartesian product)",
    "seeds": "overrides the suite's seeds",
    "repeats": "overrides the suite's repeats",
    "warmup": "overrides the suite's warmup",
    "timeout": "overrides the suite's timeout",
    "threads": "overrides the suite's threads",
    "files_limit_mb": "overrides the suite's files_limit_mb",
    "fresh_worker": "overrides the suite's fresh_worker",
    "device": "overrides the suite's device",
}
DEFAULTS = {
    "device": "auto",
    "seeds": [0],
    "repeats": 5,
    "warmup": 1,
    "timeout": 900.0,
    "threads": None,
    "files_limit_mb": 500.0,
    "fresh_worker": False,
}
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
_SUITE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")  # a folder name


class SuiteError(Exception):
    """A suite file with mistakes; ``errors`` lists ``path: message`` strings."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        lines = "\n".join(f"  {e}" for e in errors)
        noun = "mistake" if len(errors) == 1 else "mistakes"
        super().__init__(f"{source}: {len(errors)} {noun}:\n{lines}")


@dataclass(frozen=True)
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
    device: str
    repeats: int
    warmup: int
    timeout: float
    threads: int | None = None  # torch intra-op threads; None: leave torch's default
    files_limit_mb: float = 500.0  # most result files one cell may write
    fresh_worker: bool = False  # run in a new worker process, not a reused one
    files_dir: str = ""  # where its result files go; set by the runner, not the suite

    @property
    def id(self) -> str:
        """Stable across runs: a hash of what the suite asked for, not of defaults."""
        key = {
            "task": self.task,
            "components": self.components,
            "given": self.given,
            "seed": self.seed,
        }
        if self.threads is not None:  # a thread sweep is a sweep (absent: ids as before)
            key["threads"] = self.threads
        blob = json.dumps(key, sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]

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
        return {
            "suite": self.suite,
            "bench": self.bench,
            "label": self.label,
            "task": self.task,
            "components": self.components,
            "task_params": self.task_params,
            "component_params": self.component_params,
            "given": self.given,
            "seed": self.seed,
            "device": self.device,
            "repeats": self.repeats,
            "warmup": self.warmup,
            "timeout": self.timeout,
            "threads": self.threads,
            "files_limit_mb": self.files_limit_mb,
            "fresh_worker": self.fresh_worker,
            "files_dir": self.files_dir,
        }

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
#: a suite expands to at most this many cells (a typo of a sweep, not a benchmark)
MAX_CELLS = 100_000
MAX_SEEDS = 100_000
MAX_TIMEOUT = 30 * 24 * 3600.0


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


def load_suite(path: str | Path, registry: Registry | None = None, *, probe: bool = True) -> Suite:
    """Load, validate and expand a suite file.

    ``registry`` defaults to one built from the built-ins, entry points and the
    suite's own ``plugins:`` list; those are first imported in a child process
    (``probe``) so that one ending the process while importing is reported, not obeyed
    (``probe=False`` when a worker has already loaded them).
    """
    from bench.plugins import PluginLoadError, get_plugin_manager, load_plugin, probe_plugins

    text, data = read_suite_file(path)
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
    settings = _settings(data, "", DEFAULTS, errors)
    benchmarks = data.get("benchmarks")
    cells: list[Cell] = []
    if benchmarks is None:
        errors.append("benchmarks: missing (a list of benchmark entries)")
    elif not isinstance(benchmarks, list) or not benchmarks:
        errors.append("benchmarks: expected a non-empty list")
    else:
        for i, entry in enumerate(benchmarks):
            cells.extend(_expand_entry(entry, i, settings, registry, str(name), errors))
    if errors:
        raise SuiteError(source, errors)
    ids = {}
    for cell in cells:
        if cell.id in ids:
            errors.append(
                f"benchmarks[{cell.bench}]: cell {cell.describe()!r} repeats "
                f"benchmarks[{ids[cell.id].bench}]"
            )
        ids[cell.id] = cell
    if errors:
        raise SuiteError(source, errors)
    return cells


def _settings(
    data: dict[str, Any], prefix: str, inherited: dict[str, Any], errors: list[str]
) -> dict[str, Any]:
    """Run settings (device, seeds, repeats, warmup, timeout, threads) with their checks."""
    out = dict(inherited)
    if "device" in data:
        dev = data["device"]
        if not isinstance(dev, str) or not _DEVICE_RE.match(dev):
            errors.append(f"{prefix}device: {shown(dev)} is not one of auto, cpu, cuda, cuda:N")
        else:
            out["device"] = dev
    if "seeds" in data:
        seeds = data["seeds"]
        if isinstance(seeds, int) and not isinstance(seeds, bool) and 1 <= seeds <= MAX_SEEDS:
            out["seeds"] = list(range(seeds))
        elif (
            isinstance(seeds, list)
            and seeds
            and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
            and all(0 <= s < 2**63 for s in seeds)
        ):
            if len(set(seeds)) != len(seeds):
                errors.append(f"{prefix}seeds: {shown(seeds)} repeats a seed")
            else:
                out["seeds"] = seeds
        else:
            errors.append(
                f"{prefix}seeds: expected a list of integers from 0 to 2**63 - 1, or a count "
                f"from 1 to {MAX_SEEDS}, got {shown(seeds)}"
            )
    # Upper bounds are what later stages can hold: a thread count torch can start, a
    # seed that fits the int64 column of cells.parquet and torch's generator.
    for key, low, high in (
        ("repeats", 1, 1_000_000),
        ("warmup", 0, 1_000_000),
        ("threads", 1, 1024),
    ):
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                errors.append(
                    f"{prefix}{key}: expected an integer from {low} to {high}, got {shown(value)}"
                )
            else:
                out[key] = value
    if "files_limit_mb" in data:
        value = data["files_limit_mb"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 2**40:
            errors.append(
                f"{prefix}files_limit_mb: expected a number of MiB > 0, got {shown(value)}"
            )
        else:
            out["files_limit_mb"] = float(value)
    if "fresh_worker" in data:
        value = data["fresh_worker"]
        if not isinstance(value, bool):
            errors.append(f"{prefix}fresh_worker: expected true or false, got {shown(value)}")
        else:
            out["fresh_worker"] = value
    if "timeout" in data:
        value = data["timeout"]
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not 0 < value <= MAX_TIMEOUT
        ):
            errors.append(
                f"{prefix}timeout: expected a number of seconds > 0 and at most {MAX_TIMEOUT:g} "
                f"(30 days), got {shown(value)}"
            )
        else:
            out["timeout"] = float(value)
    return out


def _unknown_key(key: str, allowed: dict[str, str], prefix: str) -> str:
    import difflib

    close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
    hint = f"; did you mean {shown(close[0])}?" if close else ""
    return f"{prefix}{key}: unknown key{hint} (allowed: {', '.join(allowed)})"


def _expand_entry(
    entry: Any,
    index: int,
    inherited: dict[str, Any],
    registry: Registry,
    suite_name: str,
    errors: list[str],
) -> list[Cell]:
    path = f"benchmarks[{index}]"
    if not isinstance(entry, dict):
        errors.append(f"{path}: expected a mapping with a 'task', got {shown(entry)}")
        return []
    n_errors = len(errors)
    for key in entry:
        if key not in BENCH_KEYS:
            errors.append(_unknown_key(str(key), BENCH_KEYS, f"{path}."))
    settings = _settings(entry, f"{path}.", inherited, errors)
    task_name = entry.get("task")
    if task_name is None:
        errors.append(f"{path}.task: missing")
        return []
    if not isinstance(task_name, str) or not registry.has("task", task_name):
        errors.append(f"{path}.task: " + registry.unknown("task", task_name))
        return []
    task_cls = registry.get("task", task_name)
    label = entry.get("name", task_name)
    if not isinstance(label, str):
        errors.append(f"{path}.name: expected a string, got {shown(label)}")

    # Gather sweeps: key -> (list of values, path of the key for messages).
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
    slots = task_cls.components
    for slot, kind in slots.items():
        if slot not in seen:
            errors.append(
                f"{path}: {task_name} needs a {kind} in slot {shown(slot)} "
                f"(add e.g. `matrix: {{{slot}: [{', '.join(registry.names(kind)[:2])}]}}`)"
            )
    if len(errors) > n_errors:
        return []

    count = len(settings["seeds"])
    for _, values, _ in axes:
        count *= len(values)
    if count > MAX_CELLS:  # counted before anything is expanded
        sizes = " x ".join(str(len(v)) for _, v, _ in axes)
        errors.append(
            f"{path}: expands to {count} cells ({sizes} x {len(settings['seeds'])} seeds), "
            f"more than the {MAX_CELLS} a suite may run; split it into several suites "
            "(or raise bench.suite.MAX_CELLS in a plugin of your own)"
        )
        return []
    cells = []
    keys = [k for k, _, _ in axes]
    paths = {k: p for k, _, p in axes}
    for combo in itertools.product(*(v for _, v, _ in axes)):
        given = dict(zip(keys, combo))
        cell_errors: list[str] = []
        resolved = _resolve(given, task_cls, registry, paths, cell_errors, path)
        if cell_errors:
            for err in cell_errors:
                if err not in errors:
                    errors.append(err)
            continue
        components, task_params, component_params = resolved
        for seed in settings["seeds"]:
            cells.append(
                Cell(
                    suite=suite_name,
                    bench=index,
                    label=label if isinstance(label, str) else task_name,
                    task=task_name,
                    components=components,
                    task_params=task_params,
                    component_params=component_params,
                    given=given,
                    seed=seed,
                    device=settings["device"],
                    repeats=settings["repeats"],
                    warmup=settings["warmup"],
                    timeout=settings["timeout"],
                    threads=settings["threads"],
                    files_limit_mb=settings["files_limit_mb"],
                    fresh_worker=settings["fresh_worker"],
                )
            )
    return cells


def _axis_values(
    key: str,
    value: Any,
    section: str,
    task_cls: type,
    registry: Registry,
    kpath: str,
    errors: list[str],
) -> list[Any] | None:
    """The list of values a key sweeps over (one value when it does not sweep)."""
    slot, _, sub = key.partition(".")
    slots = task_cls.components
    if section == "matrix" and not isinstance(value, list):
        errors.append(f"{kpath}: matrix values must be lists, got {shown(value)}")
        return None
    if isinstance(value, list) and not value:
        errors.append(f"{kpath}: an empty list sweeps over nothing")
        return None
    if not sub and key in slots:  # a component choice
        values = value if isinstance(value, list) else [value]
        kind = slots[key]
        ok = True
        for v in values:
            if not isinstance(v, str) or not registry.has(kind, v):
                errors.append(f"{kpath}: " + registry.unknown(kind, v))
                ok = False
                continue
            component = registry.get(kind, v)
            reason = family_mismatch(task_cls, key, component) or task_cls.check_component(
                key, component
            )
            if reason:
                errors.append(f"{kpath}: {task_cls.name} cannot use {shown(v)}: {reason}")
                ok = False
        return values if ok else None
    if sub:
        if slot not in slots:
            known = ", ".join(slots) or "none"
            errors.append(
                f"{kpath}: {task_cls.name} has no component slot {shown(slot)} (slots: {known})"
            )
            return None
        # Component parameter: checked per cell, once the component is known.
        return value if isinstance(value, list) else [value]
    param = task_cls.params.get(key)
    if param is None:
        choices = sorted(task_cls.params) + sorted(slots)
        import difflib

        close = difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
        hint = f"; did you mean {shown(close[0])}?" if close else ""
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


def _resolve(
    given: dict[str, Any],
    task_cls: type,
    registry: Registry,
    paths: dict[str, str],
    errors: list[str],
    entry_path: str = "",
) -> tuple[dict[str, str], dict[str, Any], dict[str, dict[str, Any]]]:
    """One cell's components and resolved parameters. A plugin's own cross-parameter
    check (``resolve_params`` raising ``ParamError``) is reported with the entry and
    the values of that cell."""
    slots = task_cls.components
    components = {slot: given[slot] for slot in slots}
    task_given = {k: v for k, v in given.items() if "." not in k and k not in slots}
    comp_given: dict[str, dict[str, Any]] = {slot: {} for slot in slots}
    for key, value in given.items():
        slot, _, sub = key.partition(".")
        if sub:
            comp_given[slot][sub] = value
    try:
        task_params = task_cls.resolve_params(task_given)  # each value validated already
    except ParamError as exc:
        errors.append(f"{entry_path}{_values_shown(task_given)}: {task_cls.name}: {exc}")
        return components, {}, {}
    component_params = {}
    for slot, plugin_name in components.items():
        cls = registry.get(slots[slot], plugin_name)
        for sub, value in comp_given[slot].items():
            param = cls.params.get(sub)
            where = paths[f"{slot}.{sub}"]
            if param is None:
                known = ", ".join(sorted(cls.params)) or "none"
                errors.append(
                    f"{where}: {plugin_name} has no parameter {shown(sub)} (parameters: {known})"
                )
                continue
            if isinstance(value, list) and not is_list_param(param):
                errors.append(f"{where}: expected a single value, got {shown(value)}")
                continue
            try:
                param.validate(value)
            except ParamError as exc:
                errors.append(f"{where}: {plugin_name}.{sub}: {exc}")
        if errors:
            continue
        try:
            component_params[slot] = cls.resolve_params(comp_given[slot])
        except ParamError as exc:
            where = f"{entry_path}{_values_shown(comp_given[slot], slot)}"
            errors.append(f"{where}: {plugin_name}: {exc}")
    if not errors:
        classes = {slot: registry.get(slots[slot], name) for slot, name in components.items()}
        reason = task_cls.check_cell(classes, task_params)
        if reason:
            errors.append(f"{entry_path}{_values_shown(given)}: {task_cls.name}: {reason}")
    return components, task_params, component_params


def _values_shown(values: dict[str, Any], slot: str = "") -> str:
    prefix = f"{slot}." if slot else ""
    inner = ", ".join(f"{prefix}{k}={shown(v, 30)}" for k, v in values.items())
    return f" ({inner})" if inner else ""
