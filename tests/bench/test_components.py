"""Slots that name a base class (with defaults), nested plugins, and bench.testing."""

from __future__ import annotations

import pytest

from bench import Registry, get_plugin_manager
from bench.suite import SuiteError, expand
from bench.testing import CellFailed, build_plugin, run_cell

pytestmark = pytest.mark.usefixtures("frozen_heap")

PLUGINS = '''
import torch
from bench import Architecture, Backend, Param, Slot, Solver, Task, hookimpl


class Euler(Solver):
    """Euler, fixed step."""

    name = "t.euler"
    order = 1
    params = {"step_size": Param(0.5, low=0.0, low_open=True)}

    def odeint(self, func, y0, t, **options):
        h = options.get("step_size", self.values["step_size"])
        y, out = y0, [y0]
        for t0, t1 in zip(t[:-1], t[1:]):
            n = max(1, round(abs(float(t1 - t0)) / h))  # t may run backwards
            for i in range(n):
                y = y + (t1 - t0) / n * func(t0 + i * (t1 - t0) / n, y)
            out.append(y)
        return torch.stack(out)


class Holder(Architecture):
    """Holds a solver."""

    name = "t.holder"
    params = {"solver": Param("t.euler", plugin=Solver), "depth": Param(2, low=1)}

    def build(self, **kwargs):
        return torch.nn.Identity()


class Double(Holder):
    """Holds a holder."""

    name = "t.double"
    params = {"inner": Param("t.holder", plugin=Architecture)}


class Paint(Backend):
    """A backend of one family."""

    name = "t.paint"
    op = "paint"

    def __call__(self, x):
        return x


class Brush(Paint):
    """Another of that family."""

    name = "t.brush"


class Other(Backend):
    """A backend of no family."""

    name = "t.other"

    def __call__(self, x):
        return x


class Nest(Task):
    """Reports its architecture's solver."""

    name = "t.nest"
    components = {
        "arch": Architecture,
        "paint": Slot(Paint, default="t.brush"),
        "extra": Slot(Backend, optional=True),
    }

    def run(self, ctx):
        solver = ctx.components["arch"].values["solver"]
        ctx.metric("step", solver.values["step_size"])
        ctx.metric("step_given", "step_size" in solver.given)
        ctx.metric("brush", ctx.components["paint"].name == "t.brush")
        ctx.metric("extra", "extra" in ctx.components)
        y = solver.odeint(lambda t, y: -y, torch.ones(1), torch.tensor([0.0, 1.0]))
        ctx.metric("y1", y[-1, 0])


@hookimpl
def bench_plugins():
    return [Euler, Holder, Double, Paint, Brush, Other, Nest]
'''


@pytest.fixture
def plugin_file(tmp_path):
    path = tmp_path / "nest_plugins.py"
    path.write_text(PLUGINS)
    return str(path)


@pytest.fixture
def reg(plugin_file) -> Registry:
    return Registry(get_plugin_manager([plugin_file], builtins=False))


def _suite(**params):
    return {"suite": "s", "benchmarks": [{"task": "t.nest", "params": params}]}


def _errors(reg, **params) -> list[str]:
    with pytest.raises(SuiteError) as err:
        expand(_suite(**params), reg)
    return err.value.errors


def test_a_nested_plugins_parameters_sweep_and_reach_it(reg, plugin_file):
    cells = expand(_suite(arch="t.holder", **{"arch.solver.step_size": [0.1, 0.25]}), reg)
    assert [c.component_params["arch"]["solver.step_size"] for c in cells] == [0.1, 0.25]
    assert cells[0].components == {"arch": "t.holder", "paint": "t.brush"}  # default filled
    for h in (0.1, 0.25):
        result = run_cell(
            "t.nest",
            {"arch": "t.holder"},
            {"arch.solver.step_size": h},
            registry=reg,
        )
        assert result.metrics["step"] == h and result.metrics["step_given"] == 1.0
        assert result.metrics["brush"] == 1.0 and result.metrics["extra"] == 0.0
        # Euler on y' = -y over [0, 1]: (1 - h)^(1/h)
        assert result.metrics["y1"] == pytest.approx((1 - h) ** round(1 / h), rel=1e-6)
    default = run_cell("t.nest", {"arch": "t.holder"}, registry=reg)
    assert default.metrics["step"] == 0.5 and default.metrics["step_given"] == 0.0


def test_nested_plugins_nest_deeper(reg):
    (cell,) = expand(_suite(arch="t.double", **{"arch.inner.solver.step_size": 0.2}), reg)
    assert cell.component_params["arch"]["inner"] == "t.holder"
    assert cell.component_params["arch"]["inner.solver"] == "t.euler"
    assert cell.component_params["arch"]["inner.solver.step_size"] == 0.2
    built = build_plugin("t.double", "architecture", registry=reg, **{"inner.depth": 3})
    assert built.values["inner"].values["depth"] == 3
    assert built.values["inner"].values["solver"].name == "t.euler"


def test_nested_mistakes_name_their_path_and_list_only_what_fits(reg):
    assert _errors(reg, arch="t.holder", **{"arch.solver": "t.eulr"}) == [
        "benchmarks[0].params.arch.solver: t.holder.solver: unknown solver 't.eulr'; "
        "did you mean 't.euler'? (available: t.euler)"
    ]
    assert _errors(reg, arch="t.holder", **{"arch.solver.tol": 1.0}) == [
        "benchmarks[0].params.arch.solver.tol: t.euler has no parameter 'tol' "
        "(parameters: step_size)"
    ]
    assert _errors(reg, arch="t.holder", **{"arch.solver.step_size": -1.0}) == [
        "benchmarks[0].params.arch.solver.step_size: t.euler.step_size: must be > 0.0, got -1.0"
    ]
    assert _errors(reg, arch="t.holder", **{"arch.depth.x": 1}) == [
        "benchmarks[0].params.arch.depth.x: t.holder.depth names no plugin, so it has no "
        "parameter 'x'"
    ]


def test_a_slot_takes_only_subclasses_of_its_base(reg):
    assert _errors(reg, arch="t.holder", paint="t.other") == [
        "benchmarks[0].params.paint: 't.other' is a backend that does not subclass Paint, "
        "which slot 'paint' takes (Paint backends: t.brush, t.paint)"
    ]
    assert _errors(reg) == [
        "benchmarks[0]: t.nest needs an architecture in slot 'arch' "
        "(add e.g. `matrix: {arch: [t.double, t.holder]}`)"
    ]
    (cell,) = expand(_suite(arch="t.holder", paint="t.paint", extra="t.other"), reg)
    assert cell.components == {"arch": "t.holder", "paint": "t.paint", "extra": "t.other"}


def test_run_cell_runs_one_cell_and_reports_failures(reg):
    with pytest.raises(SuiteError, match=r"arch.depth: expected a single value, got \[1, 2\]"):
        run_cell("t.nest", {"arch": "t.holder"}, {"arch.depth": [1, 2]}, registry=reg)
    with pytest.raises(SuiteError, match="unknown task"):
        run_cell("t.nope", registry=reg)


def test_run_cell_raises_with_the_traceback_of_a_failed_cell(tmp_path):
    from tests.bench.conftest import FIXTURE_PLUGINS

    reg = Registry(get_plugin_manager([FIXTURE_PLUGINS], builtins=False))
    with pytest.raises(CellFailed, match="Traceback"):
        run_cell("test.behave", {"solver": "test.constant"}, {"mode": "raise"}, registry=reg)
    failed = run_cell(
        "test.behave", {"solver": "test.constant"}, {"mode": "raise"}, registry=reg, check=False
    )
    assert failed.status == "error"


def test_a_holders_nested_settings_hook_that_fails_is_named_not_a_traceback(reg, monkeypatch):
    """A holder's nested_settings returning None raised a TypeError traceback at
    validation (a review): named, with the holder, as a plugin's own hook failing is."""
    holder = reg.get("architecture", "t.holder")
    monkeypatch.setattr(holder, "nested_settings", classmethod(lambda cls, h, i, r: None))
    (error,) = _errors(reg, arch="t.holder")
    assert "t.holder.nested_settings raised TypeError: returned NoneType, not a dict" in error
    passes = classmethod(lambda cls, h, i, r: {"step_size": r["depth"] / 4})
    monkeypatch.setattr(holder, "nested_settings", passes)
    assert expand(_suite(arch="t.holder"), reg)  # a key the solver has: accepted
