"""A suite's document checked in full and expanded into cells: its keys, settings,
component choices and parameters, every list swept (a cartesian product, times the
seeds). Every mistake is collected with its path before anything runs."""

from __future__ import annotations

import gc
import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from bench import components as nested_plugins
from bench.base import Slot, Task
from bench.cell import TEST, VALIDATION, Cell, canonical_json, cell_id, id_prefix
from bench.params import ParamError, article, did_you_mean, is_list_param, shown, unknown_key
from bench.registry import Registry, UnknownPluginError
from bench.settings import DEFAULTS, read_settings
from bench.suitefile import BENCH_KEYS, SUITE_NAME_RE, TOP_KEYS, SuiteError
from bench.tuning import (
    MAX_SETTINGS,
    TuneRule,
    Tuning,
    check_sizes,
    grid_axes,
    read_rule,
    settings_of,
    too_many,
)

#: a suite expands to at most this many cells unless it says ``max_cells:`` (a typo
#: of a sweep, not a benchmark); ``max_cells`` itself is bounded by MAX_CELLS_CEILING
MAX_CELLS = 1_000_000
MAX_CELLS_CEILING = 20_000_000


def expand(data: dict[str, Any], registry: Registry, source: str = "<suite>") -> list[Cell]:
    """Validate ``data`` in full and return its cells (a tuned entry's validation
    cells); raise ``SuiteError`` listing every mistake."""
    return expand_all(data, registry, source)[0]


def expand_all(
    data: dict[str, Any], registry: Registry, source: str = "<suite>"
) -> tuple[list[Cell], list[Tuning]]:
    """``expand``, and the tuned entries' configurations (``bench.tuning``): each one's
    grid, validation cells (among the cells) and the test cells a choice would run."""
    errors: list[str] = []
    tunings: list[Tuning] = []
    for key in data:
        if key not in TOP_KEYS:
            errors.append(unknown_key(str(key), TOP_KEYS, ""))
    name = data.get("suite")
    if name is None:
        errors.append("suite: missing (the suite's name)")
    elif not isinstance(name, str) or not SUITE_NAME_RE.fullmatch(name):
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
                    if entry is None:
                        continue
                    if entry.check_only:  # made for their mistakes only, then dropped
                        if entry.tune is not None:
                            _tuned(entry, str(name), registry, errors, _Forgotten())
                        else:
                            one = {**entry.settings, "seeds": entry.settings["seeds"][:1]}
                            replace(entry, settings=one).cells(
                                str(name), registry, errors, _Forgotten()
                            )
                        continue
                    if entry.tune is None:
                        cells.extend(entry.cells(str(name), registry, errors, seen))
                        continue
                    tuned = _tuned(entry, str(name), registry, errors, seen)
                    tunings.extend(tuned)
                    cells.extend(c for t in tuned for cs in t.validation for c in cs)
            finally:
                if was_enabled:
                    gc.enable()
    if errors:
        raise SuiteError(source, errors)
    return cells, tunings


def _tuned(
    entry: _Entry, suite_name: str, registry: Registry, errors: list[str], seen: dict[Any, Cell]
) -> list[Tuning]:
    """A tuned entry's configurations: each setting of each one's grid as one-value
    axes beside the configuration's own values, on the validation seeds and (to be run
    only for the chosen setting) on the entry's seeds."""
    assert entry.tune is not None
    rule = entry.tune
    path = f"benchmarks[{entry.index}]"
    one_seed = replace(entry, settings={**entry.settings, "seeds": entry.settings["seeds"][:1]})
    configurations = one_seed.cells(suite_name, registry, errors, {})
    slots = entry.task_cls.slots()
    tunings = []
    for config in configurations:
        classes: dict[str, type] = {}
        for slot, plugin in config.components.items():
            if slot in slots:  # each component and the plugins it holds, nested ones too
                cls = registry.get(slots[slot].base.kind, plugin)
                params = config.component_params.get(slot, {})
                classes.update(nested_plugins.plugin_classes(registry, cls, params, slot))
        grid, where = grid_axes(rule, classes, path)
        swept = sorted(set(grid) & set(rule.validation_params))
        if swept:  # validation would try every setting on one value: no choice at all
            message = f"{path}.tune: {', '.join(swept)} set both in the grid and validation_params"
            if message not in errors:
                errors.append(message)
            continue
        clash = sorted(set(grid) & set(config.given))
        if clash:  # each configuration would say it again: once is enough
            message = f"{path}.tune: {', '.join(clash)} set both in the grid and the entry"
            if message not in errors:
                errors.append(message)
            continue
        size = math.prod(len(values) for values in grid.values())
        if size > rule.max_settings and not entry.check_only:  # before its settings exist
            errors.append(too_many(dict(config.given), size, rule, path))
            continue
        # a check (a wrong tune block) tries each value once, not every combination
        settings = _each_value(grid) if entry.check_only else settings_of(grid)
        tuning = Tuning(entry.index, entry.task_cls.name, dict(config.given), rule, settings)
        roles = [(rule.validation_seeds, VALIDATION, tuning.validation)]
        if not entry.check_only:
            roles.append((entry.settings["seeds"], TEST, tuning.test))
        instead = rule.validation_params
        for setting in tuning.settings:
            axes = [(k, [v], p) for k, v, p in _given_axes(entry, config.given)] + [
                (k, [v], where[k]) for k, v in setting.items()
            ]
            for seeds, role, out in roles:
                mine = axes
                if role == VALIDATION and instead:  # the validation data, where other
                    mine = [a for a in axes if a[0] not in instead] + [
                        (k, [v], f"{path}.tune.validation_params.{k}") for k, v in instead.items()
                    ]
                one = replace(entry, axes=mine, settings={**entry.settings, "seeds": seeds})
                out.append(one.cells(suite_name, registry, errors, seen, role=role))
        # the metric its validation cells choose by, from their parameters (other data's)
        validation = next((cells[0] for cells in tuning.validation if cells), config)
        own_rule = _default_select(entry.task_cls, rule, validation, path, errors)
        if own_rule is None:
            continue
        tuning.rule = own_rule
        same = instead and _same_data(entry.task_cls, config, own_rule.select, path, errors)
        if same and not _other_data(entry.task_cls, config, validation, tuning, path, errors):
            continue
        if not entry.check_only and not _apart_draws(entry, config, validation, path, errors):
            continue
        tunings.append(tuning)
    check_sizes(tunings, path, errors)
    return tunings


def _default_select(
    task_cls: type[Task], rule: TuneRule, config: Cell, path: str, errors: list[str]
) -> TuneRule | None:
    """``rule`` with the metric this configuration's task parameters choose by where the
    suite names none (``Task.tuning_metric``); None (an error said) where the task names
    a metric its headline does not rank."""
    if rule.select_given:
        return rule
    try:
        metric = task_cls.tuning_metric(config.task_params)
    except Exception as exc:  # a plugin's own hook failing: named, not a traceback
        metric = f"(its tuning_metric raised {type(exc).__name__}: {exc})"
    if metric is None or metric == rule.select:
        return rule
    headline = task_cls.headline
    known = headline.ranked if headline is not None else {}
    if not isinstance(metric, str) or metric not in known:
        message = (
            f"{path}.tune.select: {task_cls.name}.tuning_metric gave {shown(metric)}, not a "
            f"metric its headline ranks ({', '.join(known) or 'none'}); name one"
        )
        if message not in errors:
            errors.append(message)
        return None
    return replace(rule, select=metric, better=known[metric])


def _same_data(
    task_cls: type[Task], config: Cell, select: str, path: str, errors: list[str]
) -> bool:
    """Whether choosing by ``select`` on the reported cells' parameters would choose on
    their data (``Task.validation_data`` gives a reason): only then must
    ``validation_params`` pose other data. A task that draws new data per seed, or a
    validation metric on a split the reported metrics never see, needs none. A hook
    that raises is an error, named."""
    try:
        return bool(task_cls.validation_data(config.task_params, select))
    except Exception as exc:  # a plugin's own hook failing: named, not a traceback
        message = f"{path}.tune: {task_cls.name}.validation_data raised {type(exc).__name__}: {exc}"
        if message not in errors:
            errors.append(message)
        return False


def _data_keys(task_cls: type[Task]) -> tuple[str, ...]:
    """The parameters that choose the task's data: its ``data_params``, or where it
    declares none every ``problem`` parameter of its headline."""
    if task_cls.data_params is not None:
        return task_cls.data_params
    return task_cls.headline.problem if task_cls.headline is not None else ()


def _poses_other_data(task_cls: type[Task], config: Cell, validation: Cell) -> bool:
    """Whether the ``validation`` cell's data parameters (``_data_keys``) differ from the
    reported configuration's: it is scored on other data."""
    keys = _data_keys(task_cls)
    return any(validation.task_params.get(k) != config.task_params.get(k) for k in keys)


def _other_data(
    task_cls: type[Task],
    config: Cell,
    validation: Cell,
    tuning: Tuning,
    path: str,
    errors: list[str],
) -> bool:
    """Whether ``validation_params`` pose other data than the reported cells' (a data
    parameter of the task, ``Task.data_params``, resolved to another value in the
    ``validation`` cell); else an error: the same image at another size, a held-out
    share of it, or the same value spelt otherwise would choose on what is reported."""
    if validation is config:  # no validation cell: refused already, with its own message
        return True
    if _poses_other_data(task_cls, config, validation):
        return True
    data = _data_keys(task_cls)
    given = ", ".join(f"{k}: {shown(v)}" for k, v in tuning.rule.validation_params.items())
    if data:
        same = ", ".join(f"{k}={shown(config.task_params.get(k))}" for k in data)
        why = (
            f"the data of {task_cls.name} is set by {', '.join(data)}, the same for the "
            f"validation and the reported cells ({same})"
        )
    else:
        why = f"{task_cls.name} has one data set: no parameter poses other data"
    message = f"{path}.tune.validation_params: {{{given}}} would choose on the reported data: {why}"
    if message not in errors:
        errors.append(message)
    return False


def _apart_draws(
    entry: _Entry, config: Cell, validation: Cell, path: str, errors: list[str]
) -> bool:
    """Whether the validation cells draw their data with other seeds than the reported
    cells (``Task.data_seeds``), where both have the same data parameters; else an
    error: validation seed 10000 training on reported seed 0's test set (drawn with
    seed + 10000) is a choice made on the reported data."""
    task_cls, rule = entry.task_cls, entry.tune
    assert rule is not None
    if validation is config or _poses_other_data(task_cls, config, validation):
        return True  # no validation cell (said already), or other data (validation_params)
    try:
        drawn = {
            seed: set(task_cls.data_seeds(config.task_params, seed))
            for seed in [*entry.settings["seeds"], *rule.validation_seeds]
        }
    except Exception as exc:  # a plugin's own hook failing: named, not a traceback
        message = f"{path}.tune: {task_cls.name}.data_seeds raised {type(exc).__name__}: {exc}"
        if message not in errors:
            errors.append(message)
        return False
    for v in rule.validation_seeds:
        for s in entry.settings["seeds"]:
            shared = sorted(drawn[v] & drawn[s])
            if shared:
                message = (
                    f"{path}.tune.validation_seeds: validation seed {v} draws its data with "
                    f"seeds {sorted(drawn[v])} and reported seed {s} with {sorted(drawn[s])} "
                    f"({task_cls.name}.data_seeds): they share {shared}, so the choice would "
                    "be trained or scored on the reported cells' data; pick validation seeds "
                    "whose draws are apart"
                )
                if message not in errors:
                    errors.append(message)
                return False
    return True


def _each_value(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Settings that hold every value of ``grid`` at least once: the first value of
    each key, then each other value in turn (a sum of the axes' lengths, not their
    product)."""
    if any(not values for values in grid.values()):  # an empty axis: no setting
        return []
    first = {key: values[0] for key, values in grid.items()}
    return [first] + [{**first, key: v} for key, values in grid.items() for v in values[1:]]


def _given_axes(entry: _Entry, given: dict[str, Any]) -> list[tuple[str, Any, str]]:
    paths = {key: kpath for key, _, kpath in entry.axes}
    return [(key, value, paths.get(key, key)) for key, value in given.items()]


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
    tune: TuneRule | None = None
    #: its ``tune`` block is wrong: its cells are made only to report the entry's other
    #: mistakes (a component's parameters are checked then), by a stand-in ``tune``
    #: (``_stand_in``), and run nothing
    check_only: bool = False
    #: a wrong value's axis was dropped (check_only): the task's own cross-parameter
    #: checks would judge its default, a mistake the user never made; only the
    #: components' values are checked
    partial: bool = False

    @property
    def count(self) -> int:
        seeds = len(self.settings["seeds"])
        if self.tune is not None and not self.check_only:
            # at most: every setting on validation, one on test
            seeds += self.tune.max_settings * len(self.tune.validation_seeds)
        elif self.check_only and self.tune is not None and self.tune.grid:
            # _each_value's settings, one seed each
            seeds = 1 + sum(max(len(values) - 1, 0) for values in self.tune.grid.values())
        return math.prod(len(values) for _, values, _ in self.axes) * seeds

    def sizes(self) -> str:
        return " x ".join(
            [
                *(str(len(values)) for _, values, _ in self.axes),
                f"{len(self.settings['seeds'])} seeds",
            ]
        )

    def cells(
        self,
        suite_name: str,
        registry: Registry,
        errors: list[str],
        seen: dict[Any, Cell],
        role: str = "",
    ) -> list[Cell]:
        """Every combination of the axes, resolved; a combination the plugins refuse adds
        its message (once) and no cell."""
        keys = [k for k, _, _ in self.axes]
        values = [v for _, v, _ in self.axes]
        paths = {k: p for k, _, p in self.axes}
        groups = self._groups()
        resolver = _Resolver(self.task_cls, registry, paths, f"benchmarks[{self.index}]")
        if self.tune is not None and not self.check_only:
            problem = self.task_cls.headline.problem if self.task_cls.headline else ()
            # validation cells on another value of a problem parameter: other data
            if not set(self.tune.validation_params) & set(problem):
                resolver.tuned_by = self.tune.select
        resolver.task_checks = not self.partial
        given_json = self._given_json()
        components_json: dict[tuple[str, ...], str] = {}
        common = self._common_fields(suite_name, role)
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
                components_json[names] = canonical_json(components)
            prefix = id_prefix(components_json[names], given_json(combo))
            fields = dict(
                common,
                components=components,
                task_params=task_params,
                component_params=component_params,
                given=given,
            )
            cells.extend(self._seed_cells(fields, prefix, errors, seen))
        for err in resolver.errors:
            if err not in errors:
                errors.append(err)
        return cells

    def _common_fields(self, suite_name: str, role: str) -> dict[str, Any]:
        """The fields every cell of the entry shares: suite, entry, task, role, settings."""
        # every setting but the seeds (which make the cells) is a field of each cell
        cell_settings = {key: value for key, value in self.settings.items() if key != "seeds"}
        return dict(
            suite=suite_name,
            bench=self.index,
            label=self.label,
            task=self.task_cls.name,
            role=role,
            **cell_settings,
        )

    def _groups(self) -> dict[str, list[int]]:
        """The positions of the axes that feed each part of a cell, by part ("" for the
        task's parameters, else the slot's name)."""
        slots = self.task_cls.slots()
        # Which part of a cell each axis feeds: the task's parameters, or one slot's
        # component (its choice and its parameters). A part is resolved once per
        # distinct tuple of value positions on its axes (see _Resolver).
        groups: dict[str, list[int]] = {"": []}
        for i, (key, _, _) in enumerate(self.axes):
            slot = key.partition(".")[0] if "." in key or key in slots else ""
            groups.setdefault(slot, []).append(i)
        return groups

    def _given_json(self) -> Callable[[tuple[int, ...]], str]:
        """A function from a combination (a value position per axis) to the JSON of its
        ``given`` as the cell's id writes it."""
        # The id's JSON of `given` from each value's JSON, written once per value:
        # json.dumps(d, sort_keys=True) is "{" + ", ".join('"k": ' + dumps(v)) + "}" over
        # the sorted keys (tests/bench check it against Cell.id's own path).
        keys = [k for k, _, _ in self.axes]
        order = sorted(range(len(keys)), key=keys.__getitem__)
        key_json = [json.dumps(k) for k in keys]
        value_json = [[canonical_json(v) for v in vals] for _, vals, _ in self.axes]

        def given_json(combo: tuple[int, ...]) -> str:
            inner = ", ".join(f"{key_json[i]}: {value_json[i][combo[i]]}" for i in order)
            return f"{{{inner}}}"

        return given_json

    def _seed_cells(
        self, fields: dict[str, Any], prefix: str, errors: list[str], seen: dict[Any, Cell]
    ) -> list[Cell]:
        """One combination's cells, one per seed, each with its id set; a cell made before
        (by any entry) adds an error, and is still returned."""
        cells = []
        for seed in self.settings["seeds"]:
            cell = Cell(seed=seed, **fields)
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
            errors.append(unknown_key(str(key), BENCH_KEYS, f"{path}."))
    settings = read_settings(entry, f"{path}.", inherited, errors)
    task_cls = _entry_task(entry, path, registry, errors)
    if task_cls is None:
        return None
    task_name = entry["task"]
    label = entry.get("name", task_name)
    if not isinstance(label, str):
        errors.append(f"{path}.name: expected a string, got {shown(label)}")

    axes, seen = _sweep_axes(entry, path, task_cls, registry, errors)
    unfilled = _unfilled_slots(task_cls, task_name, seen, path, registry)
    errors.extend(unfilled)
    n_own = len(errors)
    tune, grid = None, None
    if "tune" in entry:
        tune = read_rule(
            entry["tune"], f"{path}.tune", task_cls.headline, settings["seeds"], errors,
            task_cls.params,
        )  # fmt: skip
        grid = _check_grid(entry["tune"], f"{path}.tune", seen, task_cls, registry, errors)
    if n_own > n_errors:
        if unfilled or len(errors) > n_own:
            return None
        # A wrong value must not hide the entry's other mistakes, some found only as its
        # cells are made (a component's parameters, a plugin's own checks): its cells are
        # made from the values that are right, on one seed, and run nothing.
        stand_in = _stand_in(grid, settings["seeds"]) if "tune" in entry else None
        return _Entry(
            index, task_cls, label, axes, settings, stand_in, check_only=True, partial=True
        )
    if len(errors) > n_own:
        # A wrong tune block must not hide the entry's other mistakes, some found only as
        # its cells are made (a component's parameters, the grid's): it is checked by a
        # stand-in rule, and runs nothing.
        stand_in = _stand_in(grid, settings["seeds"])
        return _Entry(index, task_cls, label, axes, settings, stand_in, check_only=True)
    return _Entry(index, task_cls, label, axes, settings, tune)


def _check_grid(
    block: Any,
    path: str,
    given: set[str],
    task_cls: type,
    registry: Registry,
    errors: list[str],
) -> dict[str, list[Any]] | None:
    """An explicit grid's keys and values checked as a matrix's are (a task parameter's
    values, a component's choices, a slot's name) and against the keys the entry sets
    (``given``), before any configuration exists; and the part that checked out (None
    for a declared grid). A component's parameters are checked per configuration
    (``_tuned``); what is not a non-empty list is ``read_rule``'s to report."""
    grid = block.get("grid", "declared") if isinstance(block, dict) else {}
    if not isinstance(grid, dict):
        return None if grid == "declared" else {}
    clash = sorted(key for key in grid if key in given)
    if clash:
        errors.append(f"{path}: {', '.join(clash)} set both in the grid and the entry")
    good = {}
    for key, values in grid.items():
        kpath = f"{path}.grid.{key}"
        if not isinstance(key, str):
            errors.append(f"{kpath}: keys must be strings")
        elif isinstance(values, list) and values:
            checked = _axis_values(key, values, "matrix", task_cls, registry, kpath, errors)
            if checked is not None and key not in given:
                good[key] = checked
    return good


class _Forgotten(dict[Any, Cell]):
    """A ``seen`` that keeps nothing: a checked entry's cells repeat no other's."""

    def __setitem__(self, key: Any, value: Any) -> None:
        pass


def _stand_in(grid: dict[str, list[Any]] | None, seeds: list[int]) -> TuneRule:
    """A rule to check a wrong ``tune`` block's entry by: the part of its grid that
    checked out and one seed; each value is tried once (``_each_value``), so its size
    is not checked (what the block says of it is what is wrong, or is told once the
    block is right)."""
    return TuneRule(grid, select="", better="lower", validation_seeds=seeds[:1],
                    max_settings=MAX_SETTINGS, equal_size=False)  # fmt: skip


def _entry_task(
    entry: dict[Any, Any], path: str, registry: Registry, errors: list[str]
) -> type | None:
    """The registered task class the entry names; None (with the error) where it names none."""
    task_name = entry.get("task")
    if task_name is None:
        errors.append(f"{path}.task: missing")
        return None
    if not isinstance(task_name, str) or not registry.has("task", task_name):
        errors.append(f"{path}.task: " + registry.unknown("task", task_name))
        return None
    return registry.get("task", task_name)


def _sweep_axes(
    entry: dict[Any, Any], path: str, task_cls: type, registry: Registry, errors: list[str]
) -> tuple[list[tuple[str, list[Any], str]], set[str]]:
    """The entry's axes from its ``params`` and ``matrix`` (key, values, path; the valid
    ones) and the set of keys it gives, valid or not."""
    axes: list[tuple[str, list[Any], str]] = []
    seen: set[str] = set()  # keys given, valid or not
    # the plugins each slot may hold: a component parameter that takes a list (syn's
    # iterations per level) is one value when given a list in params, as a task's is
    chosen: dict[str, list[Any]] = {}
    for section in ("params", "matrix"):
        block = entry.get(section)
        for slot, spec in task_cls.slots().items():
            value = block.get(slot) if isinstance(block, dict) else None
            if value is not None:
                chosen[slot] = value if isinstance(value, list) else [value]
            elif spec.default is not None:
                chosen.setdefault(slot, [spec.default])
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
            swept = isinstance(value, list) and value and all(isinstance(v, list) for v in value)
            if section == "params" and not swept and _takes_a_list(key, chosen, task_cls, registry):
                value = [value]  # the list is the value, not a sweep
            before = len(errors)
            values = _axis_values(key, value, section, task_cls, registry, kpath, errors)
            if values is not None:
                axes.append((key, values, kpath))
            elif len(errors) > before and "." not in key and key not in task_cls.params:
                errors[-1] += _component_param_hint(key, chosen, task_cls, registry)
    return axes, seen


def _component_param_hint(
    key: str, chosen: dict[str, list[Any]], task_cls: type, registry: Registry
) -> str:
    """For a key the task lacks that a chosen component has: how to give it
    (``sigma`` -> ``method.sigma``), with whose parameter it is."""
    found = []
    for slot, names in chosen.items():
        if slot not in task_cls.slots():
            continue
        base = task_cls.slots()[slot].base
        owners = []
        for name in names:
            try:
                cls = registry.lookup(base, name)
            except Exception:  # an unknown plugin: its own message, elsewhere
                continue
            if key in cls.params:
                owners.append(cls.name)
        if owners:
            found.append(f"{slot}.{key} ({', '.join(owners)}'s)")
    if not found:
        return ""
    return f"; a component's parameter is given with its slot: {' or '.join(found)}"


def _takes_a_list(
    key: str, chosen: dict[str, list[Any]], task_cls: type, registry: Registry
) -> bool:
    """Whether ``slot.name`` is a parameter that takes a list in every plugin the slot
    may hold (then a list given in ``params`` is the value, not a sweep)."""
    slot, _, sub = key.partition(".")
    if not sub or "." in sub or slot not in task_cls.slots():
        return False
    classes = _slot_classes(slot, chosen, task_cls, registry)
    if not classes or None in classes:
        return False
    return all(sub in cls.params and is_list_param(cls.params[sub]) for cls in classes)


def _slot_classes(
    slot: str, chosen: dict[str, list[Any]], task_cls: type, registry: Registry
) -> list[type | None]:
    """The classes of the plugins an entry names for ``slot`` (``chosen``), None for a
    name no plugin of the slot's base has (its own message is given elsewhere)."""
    base = task_cls.slots()[slot].base
    out: list[type | None] = []
    for name in chosen.get(slot, []):
        try:
            out.append(registry.lookup(base, name))
        except Exception:
            out.append(None)
    return out


def _component_param_hint(
    key: str, chosen: dict[str, list[Any]], task_cls: type, registry: Registry
) -> str:
    """For a key the task lacks that a chosen component has: how to give it
    (``sigma`` -> ``method.sigma``), with whose parameter it is."""
    found = []
    for slot in chosen:
        if slot not in task_cls.slots():
            continue
        classes = _slot_classes(slot, chosen, task_cls, registry)
        owners = [cls.name for cls in classes if cls is not None and key in cls.params]
        if owners:
            found.append(f"{slot}.{key} ({', '.join(owners)}'s)")
    if not found:
        return ""
    return f"; a component's parameter is given with its slot: {' or '.join(found)}"


def _unfilled_slots(
    task_cls: type, task_name: str, seen: set[str], path: str, registry: Registry
) -> list[str]:
    """A message for each slot that needs a component and that the entry leaves unset."""
    messages = []
    for slot, spec in task_cls.slots().items():
        if slot not in seen and spec.default is None and not spec.optional:
            fits = registry.fitting(spec.base)
            messages.append(
                f"{path}: {task_name} needs {article(spec.describe())} in slot {shown(slot)} "
                f"(add e.g. `matrix: {{{slot}: [{', '.join(fits[:2])}]}}`)"
            )
    return messages


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
        #: a tuned entry's select metric: its cells' task parameters are checked for
        #: validation data apart from the reported data (``Task.validation_data``)
        self.tuned_by: str | None = None
        #: False: the task's own checks (resolve_params, check_cell) are left out, their
        #: messages being about values the suite did not give (``_Entry.partial``)
        self.task_checks = True

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
        tuned = task_params is not None and self.tuned_by is not None and self.task_checks
        if tuned and not self._once(("val", task_key), self._validation, task_params, given):
            return None
        component_params = {}
        for slot, name in components.items():
            sub = comp_given[slot]
            key = ("component", slot, name, parts.get(slot, ()))
            component_params[slot] = self._once(key, self._component, slot, name, sub)
        if task_params is None or any(v is None for v in component_params.values()):
            return None
        # Not memoised: it sees every part, so its key would be the whole cell (a
        # million-entry table that never hits); a check that is costly caches itself.
        checks = self._checks and self.task_checks
        if checks and not self._check_cell(components, task_params, component_params, given):
            return None
        return components, task_params, component_params

    def _validation(self, task_params: dict[str, Any], given: dict[str, Any]) -> bool:
        """Whether a tuned entry's validation cells are scored on data its reported cells
        are not: a reason from the task's ``validation_data`` is an error."""
        headline = self.task_cls.headline
        declared = dict(headline.validation) if headline is not None else {}
        try:
            reason = self.task_cls.validation_data(task_params, self.tuned_by)
        except Exception as exc:  # a plugin's own hook failing: named, not a traceback
            reason = f"(its validation_data raised {type(exc).__name__}: {exc})"
        if not reason:
            return True
        data = _data_keys(self.task_cls)
        offers = []
        if declared and self.tuned_by not in declared:
            offers.append(f"choose by a validation metric it records ({', '.join(declared)})")
        if data:
            offers.append(
                f"tune on other data (tune: validation_params: another {' or '.join(data)})"
            )
        offers.append("sweep the values in matrix instead: every setting is then reported")
        offer = "; or ".join(offers)
        shown_given = {k: v for k, v in given.items() if "." not in k}
        self._error(
            f"{self.where}.tune.select: {self.tuned_by!r} would choose on the reported data: "
            f"{self.task_cls.name}{_values_shown(shown_given)} {reason}; {offer}"
        )
        return False

    def _task(self, task_given: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return self.task_cls.resolve_params(task_given)  # each value validated already
        except Exception as exc:  # ParamError, or a plugin's own hook failing: named
            if not self.task_checks:
                return None  # about a default standing in for a wrong value: unsaid
            where = f"{self.where}{_values_shown(task_given)}: {self.task_cls.name}"
            if isinstance(exc, ParamError):
                self._error(f"{where}: {exc}")
            else:
                self._error(f"{where}.resolve_params raised {type(exc).__name__}: {exc}")
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
        try:
            reason = self.task_cls.check_cell(classes, params)
        except Exception as exc:  # a plugin's own hook failing: named, not a traceback
            reason = f"its check_cell raised {type(exc).__name__}: {exc}"
        if reason:
            self._error(f"{self.where}{_values_shown(given)}: {self.task_cls.name}: {reason}")
        return not reason


def _values_shown(values: dict[str, Any], slot: str = "") -> str:
    prefix = f"{slot}." if slot else ""
    inner = ", ".join(f"{prefix}{k}={shown(v, 30)}" for k, v in values.items())
    return f" ({inner})" if inner else ""
