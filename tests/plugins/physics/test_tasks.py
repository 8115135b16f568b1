"""The tasks' metrics against hand computations, with test-only methods of known error."""

from __future__ import annotations

import functools
import math
import re

import numpy as np
import pytest
import torch

from bench import ParamError, Registry, hookimpl, testing
from bench.suite import SuiteError
from plugins.backends import WarpEager
from plugins.methods.physics.base import PhysicsMethod
from plugins.methods.physics.problem import GridSolution
from plugins.tasks.physics.burgers import BurgersReconstructTask, BurgersTask
from plugins.tasks.physics.control import DensityControlTask, advect, true_velocity
from plugins.tasks.physics.exact import burgers_exact
from plugins.tasks.physics.reference import coarse_trajectory
from tests.plugins.physics._run import result_file, run_cell

pytestmark = pytest.mark.usefixtures("frozen_heap")


class _Exact(PhysicsMethod):
    """Test only: answers with the Cole-Hopf solution itself."""

    name = "test.exact"

    def solve(self, problem, ctx):
        ctx.add_time("train", 0.0)  # the family's cost (nothing trained)
        nu = problem.nu

        class Sol:
            def predict(self, x, t):
                return torch.as_tensor(burgers_exact(x.numpy(), t.numpy(), nu))

        return Sol()


class _Scaled(PhysicsMethod):
    """Test only: the known truth times (1 + eps): relative error exactly eps."""

    name = "test.scaled"
    eps = 0.1

    def solve(self, problem, ctx):
        ctx.add_time("train", 0.0)
        truth = problem.grid.observed
        states = coarse_trajectory(problem.grid.n, problem.grid.steps, 1.0, problem.nu)
        assert set(truth) == {problem.grid.steps // 2}
        return GridSolution(states * (1 + self.eps), problem.grid)


class _Zero(PhysicsMethod):
    """Test only: u = 0 everywhere."""

    name = "test.zero"
    timed = True

    def solve(self, problem, ctx):
        if self.timed:
            ctx.add_time("train", 0.0)

        class Sol:
            def predict(self, x, t):
                return torch.zeros_like(x, dtype=torch.float64)

        return Sol()


class _FieldSpy(_Exact):
    """Test only: answers exactly, and records what ``problem.field`` offered: how many of
    its points lie on the scored grid, and its largest departure from Cole-Hopf."""

    name = "test.field_spy"

    def reads_field(self):  # it learns from problem.field: the task hands it the samples
        return True

    def solve(self, problem, ctx):
        f = problem.field
        x, t, u = (a.numpy() for a in (f.x, f.t, f.u))
        grid_x, grid_t = np.linspace(-1, 1, 33), np.linspace(0, 0.99, 11)
        on_x = np.isclose(x[:, None], grid_x[None, :], rtol=0, atol=1e-12).any(axis=1)
        on_t = np.isclose(t[:, None], grid_t[None, :], rtol=0, atol=1e-12).any(axis=1)
        ctx.metric("field_on_grid", int((on_x & on_t).sum()))
        ctx.metric("field_points", len(x))
        ctx.metric("field_error", float(np.abs(u - burgers_exact(x, t, problem.nu)).max()))
        ctx.metric("field_first_x", float(x[0]))
        return super().solve(problem, ctx)


class _Untimed(_Zero):
    """Test only: u = 0, and no time.train recorded."""

    name = "test.untimed"
    timed = False


@hookimpl
def bench_plugins() -> list[type[PhysicsMethod]]:
    """This module as a plugin module: the registry below holds its test-only methods."""
    return [_Exact, _Scaled, _Zero, _FieldSpy, _Untimed]


@functools.cache
def _registry() -> Registry:
    return testing.default_registry([__name__])


SMALL = {"nx": 33, "nt": 11}
BURGERS, RECONSTRUCT = BurgersTask.name, BurgersReconstructTask.name


def test_burgers_metrics_of_the_exact_and_the_zero_answer(tmp_path):
    exact = run_cell(BURGERS, {"method": "test.exact"}, tmp_path, registry=_registry(), **SMALL)
    m = exact.metrics
    assert m["rel_l2"] == 0.0 and m["max_error"] == 0.0 and m["shock_rel_l2"] == 0.0
    assert m["val_rel_l2"] == 0.0  # the validation points' truth is Cole-Hopf's too
    zero = run_cell(BURGERS, {"method": "test.zero"}, tmp_path / "z", registry=_registry(), **SMALL)
    m = zero.metrics
    x = np.linspace(-1, 1, 33)
    t = np.linspace(0, 0.99, 11)
    u = burgers_exact(x[None, :], t[:, None])
    assert m["rel_l2"] == pytest.approx(1.0)  # ||0 - u|| / ||u||
    assert m["val_rel_l2"] == pytest.approx(1.0)  # the same, at the off-grid points
    task = BurgersTask(**SMALL)
    vx, vt, vu = task.validation_points(0)
    assert not (np.isin(vx, x) & np.isin(vt, t)).any()  # never the scored points
    assert len(vx) == 10_000 and np.abs(vu - burgers_exact(vx, vt)).max() < 1e-12
    assert m["max_error"] == pytest.approx(np.abs(u).max())
    # near-shock region: |x| <= 0.1 and t >= 1/pi, by hand
    region = (np.abs(x)[None, :] <= 0.1) & (t[:, None] >= 1 / math.pi)
    assert m["shock_max_error"] == pytest.approx(np.abs(u[region]).max())
    assert result_file(zero, tmp_path / "z", "burgers_fit.png").stat().st_size > 1000


def test_burgers_field_samples_are_never_the_scored_points(tmp_path):
    """A method fitting samples of u (supervised) gets them off the scored grid: before,
    the pool was the grid itself, and 39 % of the scored points were training points
    at 10,100 samples. The samples are Cole-Hopf's u there, and a seed draws its own."""
    spy = {"method": "test.field_spy"}
    one = run_cell(BURGERS, spy, tmp_path, registry=_registry(), field_samples=3000, **SMALL)
    m = one.metrics
    assert m["field_points"] == 3000 and m["field_on_grid"] == 0
    assert m["field_error"] < 1e-12  # the same quadrature: exact to rounding
    other = run_cell(BURGERS, spy, tmp_path / "s1", seed=1, registry=_registry(),
                     field_samples=3000, **SMALL)  # fmt: skip
    assert other.metrics["field_first_x"] != m["field_first_x"]


def test_burgers_reconstruct_mae_of_a_known_error(tmp_path):
    cell = run_cell(
        RECONSTRUCT,
        {"method": "test.scaled"},
        tmp_path,
        registry=_registry(),
        n=32,
        steps=8,
        observe_step=4,
        refine=2,
    )
    m = cell.metrics
    truth = coarse_trajectory(32, 8, 1.0, BurgersReconstructTask.params["nu"].default)
    # (1 + eps) u - u = eps u: the MAE is eps * mean |u|, to rounding
    assert m["mae"] == pytest.approx(0.1 * float(truth.abs().mean()), rel=1e-12)
    assert m["mae_initial"] == pytest.approx(0.1 * float(truth[0].abs().mean()), rel=1e-12)
    assert m["reference_gap"] > 0  # the coarse solver is not the fine one
    assert result_file(cell, tmp_path, "reconstruction.png").exists()


def test_burgers_reconstruct_by_diffphys(tmp_path):
    cell = run_cell(
        RECONSTRUCT,
        {"method": ("diffphys", {"iterations": 20, "monitor_every": 10})},
        tmp_path,
        n=32,
        steps=8,
        observe_step=4,
        refine=2,
    )
    m = cell.metrics
    truth = coarse_trajectory(32, 8, 1.0, BurgersReconstructTask.params["nu"].default)
    # from zeros (MAE = mean |u| ~ 0.6) to a fraction of it; the observed state closest
    assert m["mae"] < 0.5 * float(truth.abs().mean())
    assert m["mae_observed"] < m["mae"]
    errors = [v for name, _, _, v in cell.curves if name == "error"]  # (name, step, time, v)
    assert len(errors) == 2 and errors[-1] == pytest.approx(m["mae"], rel=1e-9)


def test_the_books_target_is_its_data_not_its_ground_truth():
    from plugins.tasks.physics.book_data import BOOK_TARGET_T16
    from plugins.tasks.physics.reference import book_nu

    target = np.array(BOOK_TARGET_T16)
    assert target.shape == (128,)
    # the book's first printed loss (from zeros): mean(target^2) = 0.382915
    assert float(np.mean(target**2)) == pytest.approx(0.382915, abs=5e-7)
    # and it is not the book's own ground truth at step 16 (the solver's run from
    # -sin(pi x), which the book scores against): mean 0.0139, max 0.340 at the shock
    truth16 = coarse_trajectory(128, 32, 1.0, book_nu())[16].numpy()
    gap = np.abs(target - truth16)
    assert gap.mean() == pytest.approx(0.013937, abs=1e-6)
    assert gap.max() == pytest.approx(0.340328, abs=1e-6) and int(gap.argmax()) == 64


def test_burgers_reconstruct_reproduces_the_books_diffphys_number(tmp_path):
    """The book (diffphys-code-burgers): gradient descent at LR 5 from zeros on its
    hard-coded target; 5 + 45 = 50 gradient evaluations, but the trajectory it scores
    is the one its 50th evaluation returned, i.e. after 49 updates; MAE = sum over
    33 states / (32 N) against its ground truth: 'MAE DP: 0.06382'."""
    cell = run_cell(
        "physics.burgers_reconstruct",
        {"method": ("diffphys", {"iterations": 49, "monitor_every": 0})},
        tmp_path,
        target="book",
    )
    m = cell.metrics
    assert m["mae_book_norm"] == pytest.approx(0.06382, abs=5e-6)
    assert m["mae_book_norm"] == pytest.approx(m["mae"] * 33 / 32, rel=1e-12)
    assert m["target_gap"] == pytest.approx(0.013937, abs=1e-6)
    losses = [v for name, _, _, v in cell.curves if name == "loss"]
    # the book's printed losses at optimisation steps 0, 1, 4, 5, 10, 45
    book = {1: 0.382915, 2: 0.326882, 5: 0.210666, 6: 0.183476, 11: 0.096224, 46: 0.003263}
    for it, value in book.items():
        assert losses[it - 1] == pytest.approx(value, abs=5e-7)


def test_burgers_reconstruct_target_book_needs_the_books_setting(tmp_path):
    with pytest.raises(ParamError, match="target book.*'n': 64"):
        BurgersReconstructTask(target="book", n=64)
    with pytest.raises(ParamError, match="target"):
        BurgersReconstructTask(target="paper")
    assert BurgersReconstructTask(target="book").values["target"] == "book"


def test_burgers_reconstruct_refuses_unstable_diffusion(tmp_path):
    # n = 32: dx = 1/16, dt = 1/8: nu = 1 gives nu dt / dx^2 = 32 > 1/2; refused as a
    # suite entry is, before anything runs
    with pytest.raises(SuiteError, match=r"nu\*dt/dx\^2 = 32 > 0.5.*dt <= 0.0019"):
        run_cell(RECONSTRUCT, {"method": "test.zero"}, tmp_path, registry=_registry(), n=32,
                 steps=8, nu=1.0)  # fmt: skip


def test_density_control_reaches_the_target(tmp_path):
    cell = run_cell(
        DensityControlTask.name, {"backend": "warp.eager"}, tmp_path, size=24, steps=3,
        iterations=40,
    )  # fmt: skip
    m = cell.metrics
    assert m["final_l2"] < 0.3  # measured 0.05; 1 would be no progress at all
    # semi-Lagrangian steps with bilinear sampling do not conserve mass: measured 5.9 %
    # here (a 24-voxel box, the blob carried 6 voxels); a broken step drifts far more
    assert abs(m["mass_drift"]) < 0.1
    assert m["kinetic_energy"] > 0
    assert result_file(cell, tmp_path, "density_sequence.png").exists()
    assert cell.times["step"]


def test_advection_by_the_warp_is_a_shift():
    # a whole-voxel velocity moves the density by whole voxels: np.roll in the interior
    d = torch.zeros(1, 1, 12, 12, dtype=torch.float64)
    d[0, 0, 4:7, 3:6] = 1.0
    u = torch.zeros(1, 2, 12, 12, dtype=torch.float64)
    u[:, 1] = 2.0  # 2 voxels per unit time along columns, over 2 steps of 1/2
    out = advect(WarpEager(), d, u, 2, "border")[-1]
    torch.testing.assert_close(out, torch.roll(d, 2, dims=-1))
    v = true_velocity(16, shift=3.0, swirl=0.0)
    assert torch.all(v[1] == 3.0) and torch.all(v[0] == 0.0)


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        (lambda x, t: x.numpy(), "returned ndarray of shape"),
        (lambda x, t: torch.zeros(len(x) // 2, dtype=torch.float64), "for 10 points: it returns"),
        (None, "has no predict(x, t)"),
    ],
)
def test_a_solution_short_of_its_contract_is_named(returned, message):
    """A physics method's Solution that returned a numpy array, the wrong length or no
    predict at all failed inside numpy or torch ('object has no attribute numpy',
    'cannot reshape array of size 32'): the task says what predict must return."""
    from plugins.methods.physics.problem import predict_checked

    class Sol:
        pass

    sol = Sol()
    if returned is not None:
        sol.predict = returned
    with pytest.raises(ValueError, match=re.escape(message)):
        predict_checked(sol, np.linspace(-1, 1, 10), np.zeros(10))


def test_a_method_recording_no_training_time_ends_its_cell_saying_so(tmp_path):
    """The family's cost is time.train; a method that recorded none ended ok with a blank
    cost, off the Pareto front without a word (a user audit)."""
    with pytest.raises(testing.CellFailed, match="test.untimed recorded no time.train, the "
                       "physics family's cost"):  # fmt: skip
        run_cell(BURGERS, {"method": "test.untimed"}, tmp_path, registry=_registry(), **SMALL)


def test_a_scaffolded_physics_method_fits_the_points_pinn_fits_at_a_seed(tmp_path):
    """The bench new physics template drew its constraint points with torch.randperm:
    at seeds 0, 1, 2 it shared 22-27 of its 100 points with pinn's, yet stats and the
    report pair cells on seed (a user audit). It draws with PointData.draw now."""
    from pathlib import Path

    from plugins.methods.physics.problem import PointData

    pool = PointData(*(torch.arange(454, dtype=torch.float64) + k for k in range(3)))
    for seed in (0, 1, 2):
        # pinn's draw as its code wrote it before PointData.draw (sorted indices of one
        # choice by default_rng(seed)): the template's points are those points
        index = np.sort(np.random.default_rng(seed).choice(454, size=100, replace=False))
        assert torch.equal(pool.draw(100, seed).x, pool.x[torch.as_tensor(index)])
    template = (Path(__file__).parents[3] / "plugins/templates/physics.py.txt").read_text()
    assert 'problem.constraints.draw(v["n_data"], ctx.seed)' in template
    assert "randperm" not in template
