"""Every built-in task says what its result is (issue 19.1): a ``bench.Headline`` whose
quality metrics, cost and curves are ones the task records.

Checked statically, from the sources that record them: the task's own module and its
bases' (``plugins.*``), the ``plugins.*`` modules those import (transitively), and the
modules of every plugin that fits one of its slots (a registration method records the
``loss`` curve, a physics method the ``train`` time). A name is recorded when it is the
first argument of ``.metric(``, ``.curve(``, ``.time(``/``.add_time(`` or ``.memory(``
there: a string, an f-string (its placeholders match anything), or a variable whose
values the sources give (a parameter's string default or the strings passed for it, the
string keys of a dict of values). A name no source records fails, so a renamed metric
or a typo in a headline is caught without running any cell."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest

from bench import Headline, Param, Registry, Task, get_plugin_manager

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = Registry(get_plugin_manager())
TASKS = [e for e in REGISTRY.entries("task") if e.cls.__module__.startswith("plugins.")]
KINDS = {"metric": "metric", "curve": "curve", "time": "time", "add_time": "time", "memory": "mem"}


@dataclass
class Recorded:
    """Per kind (``metric``, ``curve``, ``time``, ``mem``): exact names and patterns."""

    names: dict[str, set[str]] = field(default_factory=lambda: {k: set() for k in KINDS.values()})
    patterns: dict[str, list[re.Pattern]] = field(
        default_factory=lambda: {k: [] for k in KINDS.values()}
    )

    def has(self, kind: str, name: str) -> bool:
        return name in self.names[kind] or any(p.fullmatch(name) for p in self.patterns[kind])


def _module_of(obj: object) -> ModuleType | None:
    return sys.modules.get(getattr(obj, "__module__", ""))


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # its parent is a module, not a package
        return False


def _plugin_imports(module: ModuleType) -> set[str]:
    tree = ast.parse(inspect.getsource(module))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("plugins."):
            out.add(node.module)
            for alias in node.names:  # ``from plugins.tasks.ode import problems``
                if _is_module(f"{node.module}.{alias.name}"):
                    out.add(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("plugins.")}
    return out


def sources(task: type[Task], registry: Registry = REGISTRY) -> list[ModuleType]:
    """The modules that record what a cell of ``task`` records."""
    roots = [c for c in task.__mro__ if c.__module__.startswith("plugins.")]
    for spec in task.slots().values():
        for name in registry.fitting(spec.base):
            roots += [
                c
                for c in registry.get(spec.base.kind, name).__mro__
                if c.__module__.startswith("plugins.")
            ]
    todo = [m.__name__ for m in filter(None, map(_module_of, roots))]
    if not task.__module__.startswith("plugins."):  # a test's own task
        todo.append(task.__module__)
    seen: dict[str, ModuleType] = {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        module = importlib.import_module(name)
        seen[name] = module
        todo += sorted(_plugin_imports(module) - set(seen))
    return list(seen.values())


def _pattern(node: ast.JoinedStr) -> re.Pattern:
    parts = [re.escape(v.value) if isinstance(v, ast.Constant) else ".*" for v in node.values]
    return re.compile("".join(parts))


def _strings(node: ast.AST | None) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    return set()


def _calls(node: ast.AST, func: str):
    """Every call under ``node`` with the name of the innermost function around it."""
    for child in ast.iter_child_nodes(node):
        inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else func
        if isinstance(child, ast.Call):
            yield child, func
        yield from _calls(child, inner)


def recorded(modules: list[ModuleType]) -> Recorded:
    trees = [ast.parse(inspect.getsource(m)) for m in modules]
    # what a variable may hold: parameter defaults and the strings passed for a
    # parameter (by position or name) anywhere in these sources, dict keys
    passed: dict[str, set[str]] = {}
    positions: dict[str, list[str]] = {}
    keys: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args.posonlyargs + node.args.args
                positions[node.name] = [a.arg for a in args]
                defaults = node.args.defaults
                for a, d in zip(args[len(args) - len(defaults) :], defaults):
                    passed.setdefault(a.arg, set()).update(_strings(d))
                for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults):
                    passed.setdefault(a.arg, set()).update(_strings(d))
            elif isinstance(node, ast.Dict):
                for k in node.keys:
                    keys |= _strings(k)
    for tree in trees:
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            fn = node.func
            callee = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", None)
            params = positions.get(callee or "", [])
            if params and params[0] == "self":
                params = params[1:]
            for param, arg in zip(params, node.args):
                passed.setdefault(f"{callee}.{param}", set()).update(_strings(arg))
            for kw in node.keywords:
                if kw.arg:
                    passed.setdefault(f"{callee}.{kw.arg}", set()).update(_strings(kw.value))
    out = Recorded()
    for tree in trees:
        for node, func in _calls(tree, ""):
            if not (isinstance(node.func, ast.Attribute) and node.func.attr in KINDS and node.args):
                continue
            kind, arg = KINDS[node.func.attr], node.args[0]
            if isinstance(arg, ast.JoinedStr):
                out.patterns[kind].append(_pattern(arg))
            elif isinstance(arg, (ast.Name, ast.Attribute)):
                var = arg.id if isinstance(arg, ast.Name) else arg.attr
                values = passed.get(f"{func}.{var}", set()) | passed.get(var, set())
                out.names[kind] |= values or keys
            else:
                out.names[kind] |= _strings(arg)
    return out


def unrecorded(task: type[Task], registry: Registry = REGISTRY) -> list[str]:
    """What ``task``'s headline names that no source of it records."""
    h = task.headline
    rec = recorded(sources(task, registry))
    missing = [f"metric {m!r}" for m in [*h.quality, *h.validation] if not rec.has("metric", m)]
    missing += [f"curve {c!r}" for c in h.curves if not rec.has("curve", c)]
    if h.size and not rec.has("metric", h.size):
        missing.append(f"size {h.size!r}")
    missing += [f"floor {f!r}" for f in h.floor.values() if not rec.has("metric", f)]
    cost = h.cost
    if cost.startswith("time."):
        kind, name = "time", cost.removeprefix("time.").rsplit(".", 1)[0]
    elif cost.startswith("mem."):
        kind, name = "mem", cost.removeprefix("mem.")
    elif cost.startswith("metric."):
        kind, name = "metric", cost.removeprefix("metric.")
    else:
        kind, name = "", ""
    if kind and not rec.has(kind, name):
        missing.append(f"cost {cost!r}")
    return missing


def test_there_are_the_builtin_tasks():
    assert len(TASKS) >= 22


@pytest.mark.parametrize("entry", TASKS, ids=[e.name for e in TASKS])
def test_every_builtin_task_declares_a_headline_it_records(entry):
    h = entry.cls.headline
    assert isinstance(h, Headline), f"{entry.name} declares no headline"
    assert not unrecorded(entry.cls), (
        f"{entry.name}'s headline names what it never records: {unrecorded(entry.cls)}"
    )


class Named(Task):
    """A task whose headline names a metric it records, and one it does not."""

    name = "test.named"
    headline = Headline(
        quality={"error": "lower", "eror": "lower"},
        cost="time.sovle.median",
        curves=("loss", "los"),
    )

    def run(self, ctx):
        ctx.metric("error", 0.0)
        ctx.time("solve", lambda: None)
        for step in range(2):
            ctx.curve("loss", step, 1.0)


def test_the_check_fails_on_a_name_the_task_never_records():
    assert unrecorded(Named) == ["metric 'eror'", "curve 'los'", "cost 'time.sovle.median'"]


def test_the_check_follows_f_strings_and_the_names_passed_to_helpers():
    rec = recorded([importlib.import_module("plugins.tasks.kernels.tasks")])
    assert rec.has("metric", "output_error_max") and rec.has("time", "forward")
    assert not rec.has("time", "backward_only")


@pytest.mark.parametrize("entry", TASKS, ids=[e.name for e in TASKS])
def test_a_builtin_tasks_problem_parameters_are_its_own_and_pose_no_method(entry):
    """The headline's problem names the task's own parameters (check_plugin refuses
    others), and never one a compared method would be tuned over (lr, steps,
    iterations: a budget or a knob, not another problem)."""
    h = entry.cls.headline
    assert set(h.problem) <= set(entry.cls.params), entry.name
    knobs = {"lr", "steps", "iterations", "epochs", "similarity", "optimizer", "mode"}
    assert not (set(h.problem) & knobs) or entry.name.startswith("kernels."), h.problem


def test_a_headline_problem_round_trips_and_refuses_what_is_not_a_parameter():
    from bench.headline import HeadlineError
    from bench.testing import check_plugin

    h = Headline(quality={"dice": "higher"}, problem=("truth",))
    assert Headline.from_dict(h.to_dict()) == h and h.problem_columns == ["param.truth"]
    assert "problem" not in Headline(quality={"dice": "higher"}).to_dict()  # old runs' form
    h = Headline(quality={"dice": "higher"}, validation={"val_dice": "higher"})
    assert Headline.from_dict(h.to_dict()) == h
    for bad in ({"problem": "truth"}, {"validation": ["val_dice"]}):  # a hand-edited run.json
        assert Headline.from_dict({"quality": {"dice": "higher"}, **bad}) is None
    for bad in ("param.truth", "method.lr", ""):
        with pytest.raises(HeadlineError, match="one of the task's own parameters"):
            Headline(quality={"dice": "higher"}, problem=(bad,))

    class Posed(Task):
        name = "test.posed"
        headline = Headline(quality={"error": "lower"}, problem=("truht",))
        params = {"truth": Param("a")}

        def run(self, ctx):
            ctx.metric("error", 0.0)

    from bench.testing import PluginCheckError

    with pytest.raises(PluginCheckError, match=r"headline problem 'truht' is not one of the "
                       r"task's parameters \(truth\)"):  # fmt: skip
        check_plugin(Posed, registry=REGISTRY)


def test_a_tasks_data_params_are_checked_against_its_problem():
    """data_params named nothing checkable: a typo, or a string (iterated letter by
    letter), refused every validation_params with a nonsense message (a review)."""
    from bench.testing import PluginCheckError, check_plugin

    class Posed(Task):
        """A task whose data is its truth."""

        name = "test.posed_data"
        headline = Headline(quality={"error": "lower"}, problem=("truth", "size"))
        params = {"truth": Param("a"), "size": Param(8)}

        def run(self, ctx):
            ctx.metric("error", 0.0)

    doc = {"__doc__": "A task whose data is its truth."}
    check_plugin(type("Fine", (Posed,), {**doc, "data_params": ("truth",)}), registry=REGISTRY)
    for bad, message in ((("truht",), "data_params 'truht' is not one of its headline's"),
                         ("truth", "data_params is 'truth', not a tuple")):  # fmt: skip
        with pytest.raises(PluginCheckError, match=message):
            check_plugin(type("Bad", (Posed,), {**doc, "data_params": bad}), registry=REGISTRY)
