"""One conformance test, parametrised over every registered plugin (built-in or not).

Whatever a plugin computes, it must be listable and constructible the way the
harness will list and construct it.
"""

from __future__ import annotations

import math

import pytest
import torch

from bench import Param, Registry, Slot, Solver, Task, get_plugin_manager
from bench.testing import PluginCheckError, check_plugin
from plugins.backends.base import WarpBackend

pytestmark = pytest.mark.usefixtures("frozen_heap")

REGISTRY = Registry(get_plugin_manager())
ENTRIES = REGISTRY.entries()


def test_the_builtin_families_are_registered():
    solvers = set(REGISTRY.names("solver"))
    assert {"euler", "midpoint", "heun", "rk4", "bosh3", "dopri5"} <= solvers
    assert {"torchdiffeq.dopri5", "torchdiffeq.rk4"} <= solvers
    tasks = set(REGISTRY.names("task"))
    assert {
        "ode.harmonic",
        "ode.spiral",
        "ode.lotka_volterra",
        "ode.van_der_pol",
        "ode.neural_ode_fit",
        "kernels.warp",
        "kernels.svf_exp",
        "kernels.sine_mlp",
    } <= tasks
    backends = set(REGISTRY.names("backend"))
    assert {
        f"{op}.{impl}"
        for op in ("warp", "svf_exp", "sine_mlp")
        for impl in ("eager", "compile", "triton")
    } <= backends


@pytest.mark.parametrize("entry", ENTRIES, ids=[f"{e.cls.kind}:{e.name}" for e in ENTRIES])
def test_plugin_conforms(entry):
    cls = entry.cls
    check_plugin(cls, registry=REGISTRY)
    if cls.kind == "solver":
        _solver_conforms(cls)


def test_check_plugin_names_every_broken_rule():
    class Broken(Solver):
        name = "test.broken"
        params = {"h": Param(-1.0, low=0.0), "inner": Param("nope", plugin=Solver), "x": 3}
        tuning = {"h": [0.1, -2.0], "nothere": [1], "inner": []}

        def odeint(self, func, y0, t, **options):
            return y0

    with pytest.raises(PluginCheckError) as err:
        check_plugin(Broken, registry=REGISTRY)
    message = str(err.value)
    for rule in (
        "no docstring",
        "parameter 'h': its default -1.0 is refused (must be >= 0.0",
        "parameter 'inner': unknown solver 'nope'",
        "parameter 'x' is not a bench.Param",
        "order 0",
        "tuning 'h': -2.0 is refused",
        "tuning 'nothere': not a parameter",
        "tuning 'inner': a non-empty list",
    ):
        assert rule in message, (rule, message)


def test_check_plugin_refuses_a_slot_default_that_does_not_fit():
    class Wrong(Task):
        """Its backend slot's default is a sine-MLP backend, not a warp one."""

        name = "test.wrong_default"
        components = {"backend": Slot(WarpBackend, default="sine_mlp.eager")}

        def run(self, ctx):
            pass

    with pytest.raises(PluginCheckError, match="does not subclass WarpBackend"):
        check_plugin(Wrong, registry=REGISTRY)


def test_check_plugin_refuses_a_headline_that_is_not_a_headline():
    class Told(Task):
        """Says what its result is, but as a plain dict."""

        name = "test.told"
        headline = {"quality": {"error": "lower"}}

        def run(self, ctx):
            pass

    with pytest.raises(PluginCheckError, match="headline is .* not a bench.Headline"):
        check_plugin(Told, registry=REGISTRY)

    class Silent(Task):
        """A user's task may leave its headline out."""

        name = "test.silent"

        def run(self, ctx):
            pass

    check_plugin(Silent, registry=REGISTRY)


def test_check_plugin_refuses_a_solver_that_steps_backwards_in_one_go():
    class OneStep(Solver):
        """Heun, fixed step, its steps counted without abs (the old `bench new` template)."""

        name = "test.one_step"
        order = 2
        params = {"step_size": Param(0.05, low=0.0, low_open=True)}

        def odeint(self, func, y0, t, **options):
            h = options.get("step_size", self.values["step_size"])
            ys, y = [y0], y0
            for t0, t1 in zip(t[:-1], t[1:]):
                n = max(1, round(float((t1 - t0) / h)))  # 1 when t runs backwards
                dt = (t1 - t0) / n
                for i in range(n):
                    s = t0 + i * dt
                    k1 = func(s, y)
                    y = y + dt * (k1 + func(s + dt, y + dt * k1)) / 2
                ys.append(y)
            return torch.stack(ys)

    # one step from t = 2 to 0: 1 + 2 + 2 = 5 for exp(2) = 7.389
    with pytest.raises(PluginCheckError, match=r"^test\.one_step: integrating dy/dt = -y "
                       r"backwards in time .* gives y\(0\) = 5,"):  # fmt: skip
        check_plugin(OneStep, registry=REGISTRY)


def test_check_plugin_refuses_a_fixed_step_solver_without_step_size():
    """A fixed-step solver whose step is not a parameter (here 100 Euler steps an
    interval) ran silently under node beside rk4 at node's step (a user audit): the
    holder could not set it, and validation passes a solver without parameters."""

    class Euler100(Solver):
        """Euler, 100 steps between output times."""

        name = "test.euler100"
        order = 1

        def odeint(self, func, y0, t, **options):
            ys, y = [y0], y0
            for t0, t1 in zip(t[:-1], t[1:]):
                dt = (t1 - t0) / 100
                for i in range(100):
                    y = y + dt * func(t0 + i * dt, y)
                ys.append(y)
            return torch.stack(ys)

    with pytest.raises(PluginCheckError, match=r"^test\.euler100: a fixed-step solver "
                       r"\(adaptive False\) takes its step as a step_size parameter"):  # fmt: skip
        check_plugin(Euler100, registry=REGISTRY)

    class Adaptive(Euler100):
        """The same, declared adaptive (it chooses its own steps): no step to take."""

        name = "test.adaptive100"
        adaptive = True

    check_plugin(Adaptive, registry=REGISTRY)


def test_check_plugin_takes_a_coarse_but_correct_solver():
    """The backwards check compares against the same problem forwards, not against the
    exact value: Euler with a default step of 0.5 is 31 % off exp(2) both ways, and fine."""

    class CoarseEuler(Solver):
        """Euler, fixed step, a coarse default."""

        name = "test.coarse_euler"
        order = 1
        params = {"step_size": Param(0.5, low=0.0, low_open=True)}

        def odeint(self, func, y0, t, **options):
            h = options.get("step_size", self.values["step_size"])
            ys, y = [y0], y0
            for t0, t1 in zip(t[:-1], t[1:]):
                n = max(1, round(abs(float(t1 - t0)) / h))
                for i in range(n):
                    y = y + (t1 - t0) / n * func(t0 + i * (t1 - t0) / n, y)
                ys.append(y)
            return torch.stack(ys)

    check_plugin(CoarseEuler, registry=REGISTRY)


def _solver_conforms(cls):
    """torchdiffeq semantics on dy/dt = -y: shape, first row, accuracy for the order."""
    solver = cls()
    t = torch.linspace(0.0, 1.0, 5, dtype=torch.float64)
    y0 = torch.tensor([1.0, 2.0], dtype=torch.float64)
    options = {"step_size": 0.01} if "step_size" in cls.params else {}
    ys = solver.odeint(lambda t, y: -y, y0, t, **options)
    assert ys.shape == (5, 2)
    # The first row is y0; scipy_solver's numpy round trip may move it by one ulp (2.2e-16).
    torch.testing.assert_close(ys[0], y0, rtol=0, atol=4.5e-16)
    exact = y0 * math.exp(-1.0)
    # Euler with h = 0.01 is off by about h/2 * |y| = 0.5 %; every other method less.
    assert torch.allclose(ys[-1], exact, rtol=1e-2), (cls.name, ys[-1], exact)


def test_check_plugin_refuses_a_solver_declaring_an_order_it_does_not_reach():
    """A Ralston method declaring order 4 passed check_plugin (a user audit); its
    observed order on the logistic is 2.0. Declared 2, it passes."""
    import math

    class Liar(Solver):
        """Ralston's method, fixed step, declaring fourth order."""

        name = "test.liar"
        order = 4
        params = {"step_size": Param(0.05, low=0.0, low_open=True)}

        def odeint(self, func, y0, t, **options):
            h = options.get("step_size", self.values["step_size"])
            ys, y = [y0], y0
            for t0, t1 in zip(t[:-1], t[1:]):
                n = max(1, math.ceil(abs(float(t1 - t0)) / h - 1e-9))
                dt = (t1 - t0) / n
                for i in range(n):
                    s = t0 + i * dt
                    k1 = func(s, y)
                    k2 = func(s + 2 * dt / 3, y + 2 * dt / 3 * k1)
                    y = y + dt * (k1 + 3 * k2) / 4
                ys.append(y)
            return torch.stack(ys)

    with pytest.raises(PluginCheckError, match=r"order 4: on y' = y \(1 - y\) .* an observed "
                       r"order of 2\.0\d; declare the order it converges at"):  # fmt: skip
        check_plugin(Liar, registry=REGISTRY)

    class Honest(Liar):
        """Ralston's method, fixed step, second order."""

        name = "test.honest"
        order = 2

    check_plugin(Honest, registry=REGISTRY)
