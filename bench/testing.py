"""For plugin authors' tests: run one cell as the harness does, and check a plugin class.

::

    from bench.testing import check_plugin, run_cell

    def test_my_solver_conforms():
        check_plugin(Ralston, plugins=["my_lab.bench_plugins"])

    def test_my_solver_in_a_neural_ode():
        cell = run_cell(
            "classify.toy",
            components={"architecture": "node"},
            params={"steps": 20, "architecture.solver": "my_lab.ralston"},
            plugins=["my_lab.bench_plugins"],
        )
        assert cell.metrics["test_accuracy"] > 0.5

``run_cell`` validates its arguments as a suite entry is validated (same messages),
then runs the cell through the worker's own path in this process: the same seeding,
the same instantiation of nested plugins, the same put-back of global state afterwards.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.base import BASES, Plugin, Task
from bench.components import build, resolve
from bench.context import CellRecord, default_cache_dir
from bench.headline import Headline
from bench.params import Param, ParamError
from bench.registry import Registry, UnknownPluginError, data_params_problem, fixed_step_problem
from bench.suite import Cell, expand


class CellFailed(AssertionError):
    """A cell that ``run_cell`` was asked to see succeed ended otherwise."""


class PluginCheckError(AssertionError):
    """A plugin class that breaks the conformance rules; the message lists every rule."""


@dataclass
class CellResult:
    """What one cell measured: its status, and the record a run folder would hold."""

    cell: Cell
    status: str
    error: str = ""
    traceback: str = ""
    times: dict[str, list[float]] = field(default_factory=dict)
    memory: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    curves: list[tuple[str, int, float, float]] = field(default_factory=list)  # n, s, t, v
    files: list[tuple[str, str, str, int]] = field(default_factory=list)

    def curve(self, name: str) -> list[tuple[int, float, float]]:
        """``(step, value, time)`` of one curve, in recorded order (the record holds
        ``(name, step, time, value)``, as ``curves.parquet`` does)."""
        return [(step, value, t) for n, step, t, value in self.curves if n == name]


def default_registry(plugins: Iterable[str] = (), base_dir: Path | None = None) -> Registry:
    """Built-ins, entry points and ``plugins`` (module names or ``.py`` paths)."""
    from bench.plugins import get_plugin_manager

    return Registry(get_plugin_manager(list(plugins), base_dir=base_dir or Path.cwd()))


def run_cell(
    task: str,
    components: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
    seed: int = 0,
    *,
    device: str = "cpu",
    repeats: int = 1,
    warmup: int = 0,
    plugins: Sequence[str] = (),
    registry: Registry | None = None,
    output: Path | str | None = None,
    check: bool = True,
) -> CellResult:
    """Run one cell of ``task`` and return what it recorded.

    ``components``: slot -> plugin name (slots with a default may be left out);
    ``params``: the task's parameters and the components' as ``"slot.name"`` (nested
    plugins' as ``"slot.name.sub"``), as a suite's ``params`` names them, one value
    each. ``output``: a folder for the cell's result files (None: none are written).
    ``check``: raise ``CellFailed`` (with the traceback) unless the cell ended ``ok``
    or ``skipped``. A mistake in the arguments raises ``SuiteError``, as a suite would.
    """
    from bench.worker import run_cell as run_in_worker

    registry = registry or default_registry(plugins)
    # each value as a one-value sweep: a list is then the value itself, never a sweep
    values = {**(components or {}), **(params or {})}
    entry = {"task": task, "matrix": {key: [value] for key, value in values.items()}}
    suite = {"suite": "run_cell", "device": device, "seeds": [seed], "repeats": repeats,
             "warmup": warmup, "benchmarks": [entry]}  # fmt: skip
    source = f"run_cell({task!r})"
    cells = expand(suite, registry, source=source)
    (cell,) = cells
    if output is not None:
        files = Path(output) / "files" / cell.id
        files.mkdir(parents=True, exist_ok=True)
        cell = dataclasses.replace(cell, files_dir=str(files))
    record = CellRecord()
    outcome = run_in_worker(cell, registry, default_cache_dir(), listener=record.apply)
    result = CellResult(
        cell=cell,
        status=outcome.status,
        error=outcome.error,
        traceback=outcome.traceback,
        times=record.times,
        memory=record.memory,
        metrics=record.metrics,
        curves=record.curves,
        files=record.files,
    )
    if check and result.status not in ("ok", "skipped"):
        raise CellFailed(
            f"{cell.describe()} ended {result.status}: {result.error}\n{result.traceback}"
        )
    return result


def build_plugin(
    cls: type[Plugin] | str,
    kind: str | None = None,
    *,
    registry: Registry | None = None,
    plugins: Sequence[str] = (),
    **params: Any,
) -> Plugin:
    """An instance of a plugin, its nested plugins built from the registry as the
    harness builds them: ``build_plugin(NeuralODE, solver="dopri5", **{"solver.rtol":
    1e-7})`` or ``build_plugin("node", "architecture", ...)``. Raises ``ParamError``
    naming every bad parameter."""
    registry = registry or default_registry(plugins)
    if isinstance(cls, str):
        if kind is None:
            raise ValueError("a plugin given by name needs its kind")
        cls = registry.get(kind, cls)
    problems: list[str] = []
    resolved = resolve(registry, cls, params, lambda key, msg: problems.append(
        f"{key}: {msg}" if key else msg))  # fmt: skip
    if resolved is None:
        raise ParamError("; ".join(problems))
    return build(registry, cls, resolved, set(params))


def check_plugin(
    cls: type, *, registry: Registry | None = None, plugins: Sequence[str] = ()
) -> None:
    """The rules every plugin class must keep, as the harness will list, validate and
    construct it. Raises ``PluginCheckError`` listing every rule ``cls`` breaks.

    With a ``registry`` (or ``plugins`` to build one), the names a plugin's defaults
    give (a slot's default, a nested plugin's) must be registered and fit. A solver,
    built with its defaults, must give the same answer backwards in time as forwards
    (dy/dt = -y from t = 2 to 0 against dz/dt = z from 0 to 2, within 1e-3), and a
    fixed-step one must take its step as ``step_size`` and converge at the order it
    declares (on y' = y (1 - y), within 0.5).
    """
    problems = list(_problems(cls, registry or default_registry(plugins)))
    if problems:
        name = getattr(cls, "name", "") or getattr(cls, "__qualname__", repr(cls))
        raise PluginCheckError(f"{name}: " + "; ".join(problems))


def _problems(cls: type, registry: Registry) -> Iterable[str]:
    kind = getattr(cls, "kind", None)
    if not (isinstance(cls, type) and kind in BASES and issubclass(cls, BASES[kind])):
        yield f"not a subclass of a plugin base ({', '.join(b.__name__ for b in BASES.values())})"
        return
    if not cls.name:
        yield "no name"
    if not cls.summary():
        yield "no docstring (its first line is what `bench list` shows)"
    for key, param in cls.params.items():
        if not isinstance(param, Param):
            yield f"parameter {key!r} is not a bench.Param"
            continue
        if param.default is not None:
            try:
                ok = param.validate(param.default) == param.default
            except ParamError as exc:
                ok, why = False, str(exc)
            else:
                why = "it validates to another value"
            if not ok:
                yield f"parameter {key!r}: its default {param.default!r} is refused ({why})"
        if param.plugin is not None:
            if not (isinstance(param.plugin, type) and issubclass(param.plugin, Plugin)):
                yield f"parameter {key!r} names plugins of {param.plugin!r}, not a plugin base"
            elif param.default is not None:  # None: an optional nested plugin, left out
                yield from _fits(registry, param.plugin, param.default, f"parameter {key!r}")
    yield from _tuning_problems(cls)
    if issubclass(cls, Task):
        yield from _task_problems(cls, registry)
    # 0 declares a variable order (scipy's LSODA switches between Adams and BDF).
    if kind == "solver" and not (cls.order >= 1 or (cls.order == 0 and cls.adaptive)):
        yield f"order {cls.order}: a solver declares its order (0 only when adaptive)"
    if cls.missing_requirement() is None:
        yield from _constructs(cls, registry)


def _tuning_problems(cls: type[Plugin]) -> Iterable[str]:
    """``tuning``: each key a parameter of the plugin, each value a non-empty list of
    values that parameter accepts (a tuned suite would refuse them one cell at a time)."""
    if not isinstance(cls.tuning, dict):
        yield f"tuning {cls.tuning!r}: a mapping of parameter -> list of values"
        return
    for key, values in cls.tuning.items():
        if key not in cls.params:
            yield f"tuning {key!r}: not a parameter (parameters: {', '.join(cls.params)})"
        elif not isinstance(values, list) or not values:
            yield f"tuning {key!r}: a non-empty list of values to try, got {values!r}"
        else:
            for value in values:
                try:
                    cls.params[key].validate(value)
                except ParamError as exc:
                    yield f"tuning {key!r}: {value!r} is refused ({exc})"


def _task_problems(cls: type[Task], registry: Registry) -> Iterable[str]:
    headline = getattr(cls, "headline", None)
    if headline is not None and not isinstance(headline, Headline):
        yield (
            f"headline is {headline!r}, not a bench.Headline (quality={{metric: "
            "'lower'|'higher'}, cost=column, curves=(...)); or leave it out"
        )
    elif headline is not None:
        for name in headline.problem:
            if name not in getattr(cls, "params", {}):
                yield (
                    f"headline problem {name!r} is not one of the task's parameters "
                    f"({', '.join(getattr(cls, 'params', {})) or 'it has none'})"
                )
    data = getattr(cls, "data_params", None)
    shape = data_params_problem(cls)
    if shape:
        yield shape
    elif data:
        problem = headline.problem if isinstance(headline, Headline) else ()
        for name in data:
            if name not in problem:
                yield (
                    f"data_params {name!r} is not one of its headline's problem parameters "
                    f"({', '.join(problem) or 'none'}): the data poses the problem"
                )
    try:
        slots = cls.slots()
    except (KeyError, TypeError) as exc:
        yield f"components: {exc} (a slot names a plugin base class, or a Slot)"
        return
    for slot, spec in slots.items():
        if not (isinstance(spec.base, type) and issubclass(spec.base, Plugin)):
            yield f"slot {slot!r} names {spec.base!r}, not a plugin base class"
        elif spec.base.kind not in BASES or spec.base.kind == "task":
            yield f"slot {slot!r} takes {spec.base.__name__}, which is not a component kind"
        elif spec.default is not None:
            yield from _fits(registry, spec.base, spec.default, f"slot {slot!r}'s default")


def _fits(registry: Registry, base: type[Plugin], name: Any, what: str) -> Iterable[str]:
    try:
        registry.lookup(base, name)
    except UnknownPluginError as exc:
        yield f"{what}: {exc}"


def _constructs(cls: type[Plugin], registry: Registry) -> Iterable[str]:
    try:
        instance = build_plugin(cls, registry=registry)
    except Exception as exc:  # noqa: BLE001 - reported as a broken rule
        yield f"cannot be built with its defaults: {type(exc).__name__}: {exc}"
        return
    for key, param in cls.params.items():
        value = instance.values.get(key)
        expected = param.default
        if param.plugin is not None and expected is None:
            same = value is None  # an optional nested plugin, left out
        elif param.plugin is not None:
            same = isinstance(value, param.plugin) and value.name == expected
        else:
            same = value == expected or (
                isinstance(value, float) and isinstance(expected, float)
                and math.isnan(value) and math.isnan(expected)
            )  # fmt: skip
        if not same:
            yield f"built with its defaults, {key} is {value!r}, not the default {expected!r}"
    if cls.kind == "solver":
        fixed = fixed_step_problem(cls)
        if fixed:
            yield fixed
        yield from _integrates_backwards(instance)
        yield from _converges_at_its_order(instance)


def _integrates_backwards(solver: Plugin) -> Iterable[str]:
    """dy/dt = -y from t = 2 back to t = 0 against its mirror, dz/dt = z from 0 to 2,
    both with the solver's defaults: the same problem, so a solver gives the same y(0)
    = z(2) either way (a fixed step takes the same steps; an adaptive one meets the same
    error estimates), however coarse its default step.

    Tasks integrate backwards in time (a Neural ODE's inverse, nodeo); a fixed-step
    loop that counts its steps from ``(t1 - t0) / h`` without ``abs`` takes one step
    over the whole interval backwards, and only backwards.
    """
    import torch

    results = []
    for t, f in (([2.0, 0.0], lambda s, y: -y), ([0.0, 2.0], lambda s, y: y)):
        way = "backwards (t from 2 to 0)" if t[0] > t[1] else "forwards (t from 0 to 2)"
        try:
            ys = solver.odeint(
                f, torch.ones(1, dtype=torch.float64), torch.tensor(t, dtype=torch.float64)
            )
        except Exception as exc:  # noqa: BLE001 - reported as a broken rule
            yield f"integrating {way} raised {type(exc).__name__}: {exc}"
            return
        if tuple(ys.shape) != (2, 1):
            yield f"odeint returned shape {tuple(ys.shape)}, not (len(t), *y0.shape) = (2, 1)"
            return
        results.append(float(ys[-1, 0]))
    back, forth = results
    # The two runs do the same arithmetic up to rounding (1e-15); 1e-3 leaves room for an
    # adaptive solver's step control, while one step over the interval backwards is off
    # by 32-59 % (measured: Euler, any two-stage second-order method).
    if not abs(back - forth) <= 1e-3 * abs(forth):
        yield (
            f"integrating dy/dt = -y backwards in time (t from 2 to 0, y(2) = 1) with its "
            f"defaults gives y(0) = {back:.4g}, but the same problem forwards (dz/dt = z, "
            f"z(0) = 1) gives z(2) = {forth:.4g} (exp(2) = {math.exp(2.0):.4g}): does a "
            "fixed-step loop count its steps from (t1 - t0) / h without abs()?"
        )


def _converges_at_its_order(solver: Plugin) -> Iterable[str]:
    """A fixed-step solver (``step_size`` parameter, not adaptive) converges at the order
    it declares: the logistic y' = y (1 - y), y(0) = 1/2, to t = 2 (exact: 1/(1 + e^-t)),
    at steps 0.1, 0.05, 0.025, 0.0125; the finest two whose error is above 1e-9 (round-off,
    and an implicit corrector's iteration tolerance: torchdiffeq's implicit_adams levels
    off at 1.3e-10) give an observed order log2(e(h) / e(h/2)) that must be within 0.5 of
    ``order`` (a Ralston method declaring order 4 converges at 2.0). Nonlinear: a method
    no better than its order shows its order here. Coarser steps are pre-asymptotic for
    multistep methods (torchdiffeq's explicit_adams: 1.75 from 0.2 to 0.1, then 3.45,
    3.82, 3.92)."""
    import torch

    if getattr(solver, "adaptive", False) or "step_size" not in solver.params:
        return
    order = getattr(solver, "order", 0)
    if order < 1:  # refused already: a fixed-step solver declares its order
        return
    exact = 1.0 / (1.0 + math.exp(-2.0))
    t = torch.tensor([0.0, 2.0], dtype=torch.float64)
    y0 = torch.tensor([0.5], dtype=torch.float64)
    steps = (0.1, 0.05, 0.025, 0.0125)
    try:
        errors = [
            abs(float(solver.odeint(lambda s, y: y * (1.0 - y), y0, t, step_size=h)[-1, 0]) - exact)
            for h in steps
        ]
    except Exception as exc:  # noqa: BLE001 - reported as a broken rule
        yield f"integrating y' = y (1 - y) at several step_size raised {type(exc).__name__}: {exc}"
        return
    above = [i for i in range(1, len(steps)) if errors[i] > 1e-9]
    if not above:
        return  # too exact already to read an order
    i = above[-1]
    coarse, fine = errors[i - 1], errors[i]
    observed = math.log2(coarse / fine) if fine > 0 and coarse > 0 else math.inf
    if not abs(observed - order) <= 0.5:
        yield (
            f"order {order}: on y' = y (1 - y) from y(0) = 1/2 to t = 2 its error goes from "
            f"{coarse:.3g} (step {steps[i - 1]:g}) to {fine:.3g} (step {steps[i]:g}), an "
            f"observed order of {observed:.2f}; declare the order it converges at"
        )
