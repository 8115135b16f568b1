"""One conformance test, parametrised over every registered plugin (built-in or not).

Whatever a plugin computes, it must be listable and constructible the way the
harness will list and construct it.
"""

from __future__ import annotations

import math

import pytest
import torch

from bench import Param, Registry, get_plugin_manager
from bench.base import BASES

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
    assert issubclass(cls, BASES[cls.kind])
    assert cls.summary(), f"{cls.name} needs a docstring whose first line says what it is"
    for key, param in cls.params.items():
        assert isinstance(param, Param), f"{cls.name}.{key} must be a bench.Param"
        if param.default is not None:
            assert param.validate(param.default) == param.default, f"{cls.name}.{key} default"
    if cls.missing_requirement() is None:
        instance = cls()
        assert instance.values == {k: p.default for k, p in cls.params.items()}
    if cls.kind == "task":
        for slot, kind in cls.components.items():
            assert kind in BASES, f"{cls.name}: slot {slot!r} names unknown kind {kind!r}"
    if cls.kind == "backend":
        assert cls.op, f"{cls.name} must name the operation it implements (op)"
    if cls.kind == "method":
        assert cls.family, f"{cls.name} must name the problem family it solves (family)"
    if cls.kind == "task":
        for slot, family in cls.families.items():
            assert cls.components.get(slot) == "method", (
                f"{cls.name}: families names slot {slot!r}, which is not a method slot"
            )
            assert family, f"{cls.name}: slot {slot!r} needs a family name"
    if cls.kind == "solver":
        # 0 declares a variable order (scipy's LSODA switches between Adams and BDF).
        assert cls.order >= 1 or (cls.order == 0 and cls.adaptive), cls.name
        _solver_conforms(cls)


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
