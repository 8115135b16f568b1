"""The ode.* tasks end to end through the harness (bench.testing), checked against
independent numbers."""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from bench import Param, Registry, Solver, hookimpl, testing
from plugins.tasks.ode import ODE_TASKS, protocol
from plugins.tasks.ode.reference import cache_path
from tests.plugins._cells import REGISTRY, run_cell

pytestmark = pytest.mark.usefixtures("frozen_heap")


def test_tasks_are_registered_with_docs() -> None:
    names = REGISTRY.names("task")
    for expected in ("ode.harmonic", "ode.spiral", "ode.lotka_volterra", "ode.van_der_pol",
                     "ode.neural_ode_fit"):  # fmt: skip
        assert expected in names
    for cls in ODE_TASKS:
        assert cls.summary() and cls.components == {"solver": "solver"}
        cls.resolve_params({})  # every default validates


def _rk4_matrix(h: float) -> np.ndarray:
    hA = h * np.array([[0.0, 1.0], [-1.0, 0.0]])
    return sum(np.linalg.matrix_power(hA, k) / math.factorial(k) for k in range(5))


def test_harmonic_rk4_error_matches_hand_computed(tmp_path: Path) -> None:
    # On y' = A y one classic RK4 step is y <- R y with R = sum_{k<=4} (hA)^k / k!.
    # Defaults: t1 = 10, 101 outputs (0.1 apart), step 0.05 = 2 steps per output.
    cell = run_cell("ode.harmonic", "rk4", tmp_path)
    R2 = np.linalg.matrix_power(_rk4_matrix(0.05), 2)
    ys = [np.array([1.0, 0.0])]
    for _ in range(100):
        ys.append(R2 @ ys[-1])
    ys = np.array(ys)
    t = np.linspace(0, 10, 101)
    exact = np.stack([np.cos(t), -np.sin(t)], axis=-1)
    rel_l2 = np.linalg.norm(ys - exact) / np.linalg.norm(exact)
    final = np.linalg.norm(ys[-1] - exact[-1]) / np.linalg.norm(exact[-1])
    m = cell.metrics
    assert m["rel_l2_error"] == pytest.approx(rel_l2, rel=1e-6)
    assert m["final_rel_error"] == pytest.approx(final, rel=1e-6)
    assert 1e-7 < m["rel_l2_error"] < 1e-5  # the error is rk4's, not rounding
    assert m["nfe"] == 100 * 2 * 4
    assert len(cell.times["solve"]) == 2  # repeats, after 1 warm-up
    assert "solve" in cell.memory


def test_harmonic_float32_is_limited_by_rounding(tmp_path: Path) -> None:
    f64 = run_cell("ode.harmonic", "dopri5", tmp_path, rtol=1e-10, atol=1e-10).metrics
    f32 = run_cell("ode.harmonic", "dopri5", tmp_path, {"dtype": "float32"}, rtol=1e-10, atol=1e-10)
    # float32 carries ~6e-8 relative per value; 1e3 steps accumulate ~1e-6.
    assert f64["rel_l2_error"] < 1e-8
    assert 1e-8 < f32.metrics["rel_l2_error"] < 1e-4


def test_reference_is_cached_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = run_cell("ode.spiral", "rk4", tmp_path).metrics
    files = list((tmp_path / "ode_reference").iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"  # no temporary file left behind

    def no_solve(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the reference was recomputed instead of read from the cache")

    monkeypatch.setattr(protocol, "scipy_reference", no_solve)
    second = run_cell("ode.spiral", "rk4", tmp_path).metrics
    assert second["rel_l2_error"] == first["rel_l2_error"]
    # A different problem (other t1) is another key, so it is computed: no_solve raises.
    other = run_cell("ode.spiral", "rk4", tmp_path, {"t1": 5.0}, check=False)
    assert other.status == "error" and "recomputed" in other.error


def test_cache_key_covers_problem_params_not_dtype(tmp_path: Path) -> None:
    task = REGISTRY.get("task", "ode.van_der_pol")
    key = task(mu=2.0).problem_key()
    assert cache_path(tmp_path, key) != cache_path(tmp_path, task(mu=3.0).problem_key())
    assert key == task(mu=2.0, dtype="float32", gradient=True).problem_key()


def test_an_edited_right_hand_side_is_never_served_its_stale_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache key held the task's name and parameters only: after the RHS's code (or a
    constant it reads) changed, the old reference was read and the error came out 0.98
    instead of 4e-8. The code's digest is part of the key now."""
    from plugins.tasks.ode import problems
    from plugins.tasks.ode.reference import code_digest

    before = code_digest(problems.spiral_rhs)
    assert code_digest(problems.lotka_volterra_rhs((1.5, 1.0, 3.0, 1.0))) != code_digest(
        problems.lotka_volterra_rhs((1.5, 1.0, 3.0, 2.0))
    )  # a closure's coefficients count

    def closing_over(value):
        return lambda t, y: value

    big = np.zeros(2000)
    other = big.copy()
    other[1000] = 1.0  # where numpy's repr elides
    assert code_digest(closing_over(big)) != code_digest(closing_over(other))
    holder = object()  # its repr holds an address: left out, the same in every process
    assert code_digest(closing_over(holder)) == code_digest(closing_over(object()))
    import functools

    def rhs(t, y, k):
        return -k * y

    one, two = functools.partial(rhs, k=1.0), functools.partial(rhs, k=2.0)
    assert code_digest(one) not in (None, code_digest(two))  # a partial's arguments count

    class Rhs:
        def __call__(self, t, y):
            return -y

    assert code_digest(Rhs()) == code_digest(Rhs().__call__) is not None
    assert code_digest(abs) is None  # nothing vouches for a builtin: never cached
    first = run_cell("ode.spiral", "rk4", tmp_path).metrics["final_rel_error"]
    monkeypatch.setattr(problems, "SPIRAL_A", [[-0.2, 2.0], [-2.0, -0.2]])  # both sides
    assert code_digest(problems.spiral_rhs) != before
    again = run_cell("ode.spiral", "rk4", tmp_path).metrics["final_rel_error"]
    # against its own new reference; the stale one is ~1.4 away (final states -0.44, 0.28
    # and -0.10, -0.33)
    assert again < 0.05 and first < 0.05
    assert len(list((tmp_path / "ode_reference").iterdir())) == 2


@pytest.mark.parametrize("name", ["test.extra_axis", "test.transposed"])
def test_a_solver_returning_the_wrong_shape_is_refused_not_scored(tmp_path: Path, name) -> None:
    """A (T, 1, d) result broadcast against the (T, d) reference and was scored (rel_l2
    4.6 for 3e-7), status ok. (A (d, T) result where T == d keeps the shape: unseen.)"""
    cell = run_cell("ode.harmonic", name, tmp_path, {"n_times": 3}, check=False,
                    registry=_with_test_solver())  # fmt: skip
    assert cell.status == "error"
    assert f"{name}.odeint returned Tensor of shape" in cell.error
    assert "it returns the state at every time, a tensor of shape (3, 2)" in cell.error


def test_lotka_volterra_reference_conserves_its_invariant(tmp_path: Path) -> None:
    # V = delta x - gamma ln x + beta y - alpha ln y is constant along exact orbits:
    # an independent check of the scipy reference (not of any solver).
    # The reference a cell compared its solver with, read back from the cache.
    run_cell("ode.lotka_volterra", "rk4", tmp_path, {"t1": 10.0, "n_times": 101})
    (path,) = (tmp_path / "ode_reference").iterdir()
    with np.load(path) as data:
        ref = data["y"]
    assert ref.shape == (101, 2)
    x, y = ref[:, 0], ref[:, 1]
    alpha, beta, gamma, delta = 1.5, 1.0, 3.0, 1.0
    invariant = delta * x - gamma * np.log(x) + beta * y - alpha * np.log(y)
    assert np.ptp(invariant) < 1e-10
    assert np.ptp(x) > 1.0  # it really cycles


def test_lotka_volterra_tight_solver_matches_reference(tmp_path: Path) -> None:
    m = run_cell("ode.lotka_volterra", "dopri5", tmp_path, rtol=1e-11, atol=1e-11).metrics
    assert m["rel_l2_error"] < 1e-9
    loose = run_cell("ode.lotka_volterra", "dopri5", tmp_path, rtol=1e-4, atol=1e-4).metrics
    assert loose["rel_l2_error"] > 100 * m["rel_l2_error"] and loose["nfe"] < m["nfe"]


def test_van_der_pol_stiff_with_large_euler_step_diverges(tmp_path: Path) -> None:
    # mu = 1000: the fast eigenvalue is ~ -mu (1 - x^2) ~ -3e3 near x = 2, and Euler
    # is stable only for h < 2 / 3e3; h = 0.05 is ~75x past that.
    cell = run_cell(
        "ode.van_der_pol", "euler", tmp_path, {"mu": 1000.0, "t1": 2.0, "n_times": 41}, check=False
    )
    if cell.status == "diverged":
        assert "not finite" in cell.error
    else:
        assert cell.status == "ok" and cell.metrics["rel_l2_error"] > 1.0


def test_van_der_pol_mild_mu_is_accurate(tmp_path: Path) -> None:
    m = run_cell("ode.van_der_pol", "dopri5", tmp_path, {"mu": 2.0}).metrics
    assert m["rel_l2_error"] < 1e-5


def test_van_der_pol_stiff_reference_uses_radau(tmp_path: Path) -> None:
    task = REGISTRY.get("task", "ode.van_der_pol")
    assert task(mu=100.0).reference_method == "Radau"
    assert task(mu=1.0).reference_method == "DOP853"
    params = {"mu": 100.0, "t1": 5.0}
    m = run_cell("ode.van_der_pol", "torchdiffeq.scipy_solver", tmp_path, params,
                 solver="Radau", rtol=1e-9, atol=1e-9).metrics  # fmt: skip
    assert m["rel_l2_error"] < 1e-5


@pytest.mark.parametrize(
    "task", ["ode.harmonic", "ode.spiral", "ode.lotka_volterra", "ode.van_der_pol"]
)
def test_gradient_mode_direct_against_adjoint(task: str, tmp_path: Path) -> None:
    # h = 0.02, the output spacing (before steps above the spacing were refused, the
    # 0.05 this test named ran at 0.02)
    params = {"gradient": True, "t1": 2.0}
    direct = run_cell(task, "rk4", tmp_path, params, step_size=0.02)
    adjoint = run_cell(task, "rk4", tmp_path, params, adjoint=True, step_size=0.02)
    md, ma = direct.metrics, adjoint.metrics
    assert md["nfe_backward"] == 0  # backprop does not call func
    assert ma["nfe_backward"] == md["nfe"]  # rk4's backward retraces the same grid
    assert ma["loss"] == pytest.approx(md["loss"], rel=1e-12)
    # rk4 at h = 0.02: adjoint and discrete gradients differ by O(h^4).
    assert ma["grad_norm"] == pytest.approx(md["grad_norm"], rel=1e-3)
    for cell in (direct, adjoint):
        assert len(cell.times["backward"]) == 2 and "backward" in cell.memory


class _NoAdjointSolver(Solver):
    """A third-party solver with an adjoint switch it cannot honour (for the skip test)."""

    name = "test.no_adjoint"
    order = 1
    params = {"adjoint": Param(False)}

    def odeint(self, func, y0, t, **options):
        return torch.stack([y0] * len(t))


class _Shaped(Solver):
    """rk4's trajectory in a wrong shape (for the shape test)."""

    order = 4
    reshape = staticmethod(lambda ys: ys)

    def odeint(self, func, y0, t, **options):
        ys = REGISTRY.get("solver", "rk4")(step_size=0.01).odeint(func, y0, t)
        return self.reshape(ys)


class _ExtraAxis(_Shaped):
    name = "test.extra_axis"
    reshape = staticmethod(lambda ys: ys[:, None, :])


class _Transposed(_Shaped):
    name = "test.transposed"
    reshape = staticmethod(lambda ys: ys.T)


@hookimpl
def bench_plugins() -> list[type[Solver]]:
    """This module as a plugin module: the registry below holds its test solvers."""
    return [_NoAdjointSolver, _ExtraAxis, _Transposed]


@functools.cache
def _with_test_solver() -> Registry:
    return testing.default_registry([__name__])


@pytest.mark.parametrize("task", ["ode.harmonic", "ode.neural_ode_fit"])
def test_skip_adjoint_on_solver_without_adjoint(task: str, tmp_path: Path) -> None:
    cell = run_cell(task, "test.no_adjoint", tmp_path, registry=_with_test_solver(), adjoint=True)
    assert cell.status == "skipped" and "test.no_adjoint has no adjoint mode" in cell.error


def test_skip_gradient_with_scipy_solver(tmp_path: Path) -> None:
    for task, params in [
        ("ode.harmonic", {"gradient": True}),
        ("ode.neural_ode_fit", {"steps": 2}),
    ]:
        cell = run_cell(task, "torchdiffeq.scipy_solver", tmp_path, params)
        assert cell.status == "skipped" and "without an autograd graph" in cell.error
    # Without gradients scipy_solver is fine.
    m = run_cell("ode.harmonic", "torchdiffeq.scipy_solver", tmp_path).metrics
    assert m["rel_l2_error"] < 1e-5 and m["nfe"] > 0


def test_each_cell_keeps_a_trajectory_figure(tmp_path: Path) -> None:
    from PIL import Image

    out = tmp_path / "run"
    cell = run_cell(
        "ode.lotka_volterra",
        "rk4",
        tmp_path,
        {"t1": 2.0, "n_times": 41},
        output=out,
        step_size=0.05,
    )
    [(name, kind, path, nbytes)] = cell.files
    assert (name, kind) == ("trajectory.png", "png")
    assert path == f"files/{cell.cell.id}/trajectory.png"  # relative to the run's folder
    assert (out / path).stat().st_size == nbytes
    with Image.open(out / path) as image:
        assert image.width > 600 and image.height > 200  # three panels side by side


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (0.5, "solver.step_size 0.5 exceeds the output spacing 0.1 and would run at 0.1, "
              "so the cell would not measure the step it is labelled with; give a step "
              "dividing the spacing (0.1, 0.05, 0.025, 0.0125, ...), or n_times 21, 11, 6, 5"),
        (0.07, "solver.step_size 0.07 does not divide the output spacing 0.1 (1.429 steps) "
               "and cannot be taken throughout, so the cell would not measure the step it is "
               "labelled with; give a step dividing the spacing (0.1, 0.05, 0.025, 0.0125, "
               "...) (no n_times spaces the outputs a whole number of steps 0.07 apart)"),
    ],
)  # fmt: skip
def test_a_step_the_solver_would_not_take_is_refused(tmp_path: Path, step, message) -> None:
    """rk4 steps from output time to output time: at step_size 0.5 over outputs 0.1
    apart it ran at 0.1 (nfe 400, error 8.3e-6) where torchdiffeq.rk4, on a grid, ran
    at 0.5 (nfe 80, error 5.2e-3), both labelled 0.5 (a user audit); at 0.07 it took
    0.07 + 0.03. A step dividing the spacing runs as labelled, and a grid solver takes
    any step."""
    import yaml

    from bench.suite import SuiteError, load_suite

    def suite(solvers: list[str], steps: list[float]) -> Path:
        path = tmp_path / "s.yaml"
        entry = {"task": "ode.harmonic", "matrix": {"solver": solvers},
                 "params": {"solver.step_size": steps}}  # fmt: skip
        path.write_text(yaml.safe_dump({"suite": "s", "benchmarks": [entry]}))
        return path

    with pytest.raises(SuiteError) as err:
        load_suite(suite(["rk4", "torchdiffeq.rk4"], [0.05, step]), REGISTRY)
    text = str(err.value)
    assert "rk4 steps from output time to output time (t1 10 over n_times 101)" in text
    assert message in text and "torchdiffeq.rk4" not in text.replace("solver=torchdiffeq", "")
    assert len(load_suite(suite(["torchdiffeq.rk4"], [0.5, 0.07]), REGISTRY).cells) == 2
    assert len(load_suite(suite(["rk4", "heun", "euler"], [0.1, 0.05, 0.025]), REGISTRY).cells)
    # a step within the solvers' slack of dividing it is taken (1/3 written to 4 digits)
    assert protocol.output_step_problem("rk4", 0.3333, 1.0, 4) is None
    assert protocol.output_step_problem("rk4", 1 / 3, 1.0, 4) is None
    # the solve itself: a dividing step is the step taken (nfe = 4 stages x t1 / h)
    for h in (0.1, 0.05):
        assert run_cell("ode.harmonic", "rk4", tmp_path, step_size=h).metrics["nfe"] == 4 * 10 / h
