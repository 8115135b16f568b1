"""The truth's deformation generators (plugins.data.deformations): each one's inverse to a
stated tolerance, the B-spline's positive Jacobian, RK4's order; and the default
(``truth: svf``, ``data: mni152``) pairs and cell ids left as they were."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.suite import load_suite
from plugins.data import deformations as D
from plugins.data import registration as data
from plugins.tasks.registration import metrics as m

ROOT = Path(__file__).resolve().parents[3]
SHAPES = [(39, 33), (114, 96)]  # the quick suites' 6 mm slice, the 2 mm ICBM slice


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", [0, 1])
def test_bspline_inverse_is_exact_to_the_fixed_point_tolerance(shape, seed):
    # psi solves phi(x + psi(x)) = x by fixed-point iteration on the exact spline (no grid
    # interpolation anywhere): phi o psi = id to the iteration's tolerance, 1e-6 voxel.
    coeffs, spacing = D.bspline_field(shape, 3.0, seed)
    points = D.grid_points(shape)
    psi, residual, _ = D.bspline_inverse(coeffs, spacing, points)
    assert residual < D.BSPLINE_TOL
    back = points + psi
    assert np.abs(back + D.bspline_evaluate(coeffs, spacing, back) - points).max() < 1e-6
    # and psi o phi = id: psi at the points phi(x), found the same way, lands on x
    moved = points + D.bspline_evaluate(coeffs, spacing, points)
    psi_moved, _, _ = D.bspline_inverse(coeffs, spacing, moved)
    assert np.abs(moved + psi_moved - points).max() < 1e-5  # 1e-6 times psi's Lipschitz


@pytest.mark.parametrize("shape", [(39, 33), (114, 96), (20, 24, 18)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bspline_is_under_the_choi_lee_bound_and_its_jacobian_is_positive(shape, seed):
    coeffs, spacing = D.bspline_field(shape, 3.0 if len(shape) == 2 else 2.0, seed)
    ndim = len(shape)
    # the sufficient condition for injectivity (Choi and Lee 2000), with its margin
    assert np.abs(coeffs).max() <= D.BSPLINE_MARGIN * spacing / D.CHOI_LEE[ndim]
    # det J > 0 everywhere: on a grid 4x finer than the image's in 2-D (2x in 3-D)
    step = 0.25 if ndim == 2 else 0.5
    fine = tuple(int((n - 1) / step) + 1 for n in shape)
    points = D.grid_points(fine) * step
    u = D.bspline_evaluate(coeffs, spacing, points).reshape((ndim, *fine)) / step
    det = m.jacobian_determinant(u)  # in units of the fine grid: same determinant
    assert det.min() > 0.0, det.min()
    # and the deformation made from it keeps max |u| = the amplitude
    phi = D.generate("bspline", shape, 3.0, seed)
    assert np.abs(phi.forward).max() == pytest.approx(3.0, rel=1e-5)
    assert m.jacobian_determinant(phi.forward).min() > 0.0


@pytest.mark.parametrize("shape", SHAPES)
def test_tv_rk4_forward_and_backward_flows_are_inverse(shape):
    # Backward integration of the same analytic velocity inverts the forward flow up to
    # RK4's error at 32 steps, ~1e-11 voxel measured: asserted below 1e-8.
    phi = D.generate("tv_rk4", shape, 3.0, seed=0)
    assert phi.residual < 1e-8
    # the other way round: forward from psi(x)'s points returns to x, and backward from
    # phi(x)'s points too
    velocity = D.fourier_velocity(shape, 3.0, 0)
    points = D.grid_points(shape)
    there = D.rk4_flow(velocity, points)
    assert np.abs(D.rk4_flow(velocity, there, backward=True) - points).max() < 1e-8
    assert np.abs(phi.forward.reshape(len(shape), -1) - (there - points)).max() < 1e-5


def test_tv_rk4_converges_at_fourth_order():
    # RK4's global error is O(h^4): doubling the steps divides it by 16 (asserted within
    # [12, 20]), against a 512-step integration as the reference.
    shape = (39, 33)
    velocity = D.fourier_velocity(shape, 3.0, 0)
    points = D.grid_points(shape)
    reference = D.rk4_flow(velocity, points, steps=512)
    errors = [np.abs(D.rk4_flow(velocity, points, steps=n) - reference).max() for n in (4, 8, 16)]
    ratios = [errors[0] / errors[1], errors[1] / errors[2]]
    assert all(12.0 < r < 20.0 for r in ratios), (errors, ratios)
    # the default 32 steps: far below a hundredth of a voxel from the converged flow
    assert np.abs(D.rk4_flow(velocity, points) - reference).max() < 1e-6


@pytest.mark.parametrize("shape", SHAPES)
def test_svf_truth_inverse_to_its_grid_interpolation(shape):
    # exp(v) and exp(-v) by 7-step scaling and squaring on the grid (linear interpolation)
    # are inverse only up to that interpolation: measured mean 0.0006 - 0.006 voxel,
    # max 0.004 - 0.25 voxel (the max at the image's edge on the small grid).
    phi = D.generate("svf", shape, 3.0, seed=0)
    assert phi.residual < 0.5
    assert m.inverse_consistency(phi.inverse, phi.forward, (1.0, 1.0)) < 0.02


@pytest.mark.parametrize("truth", D.GENERATORS)
def test_every_generator_makes_a_pair_whose_truth_undoes_the_warp(truth):
    pair = data.make_pair(2, downsample=3, amplitude=3.0, seed=0, truth=truth)
    assert pair.notes["truth"] == truth
    brain = pair.fixed.mask
    # the truth composed with the forward warp: identity to well under a tenth of a voxel
    ic = m.inverse_consistency(pair.truth, pair.notes["forward"], (1.0, 1.0), brain)
    assert ic < 0.05
    # and the moving image read through the truth is the fixed image, up to the bias
    # field, noise and the two interpolations (labels: nearest, both ways)
    back = np.rint(data.warp_array(pair.moving.labels, pair.truth, mode="nearest"))
    assert m.mean_dice(pair.fixed.labels, back) > 0.85


def test_the_default_pair_is_the_one_before_the_generators():
    # sums of today's default pair (seed 0, downsample 3), computed before this change
    pair = data.make_pair(2, downsample=3, amplitude=3.0, seed=0)
    assert float(pair.moving.data.astype(np.float64).sum()) == pytest.approx(
        436.91216951451133, rel=1e-9
    )
    assert float(pair.truth.astype(np.float64).sum()) == pytest.approx(882.4770250636502, rel=1e-9)
    assert float(np.abs(pair.truth).astype(np.float64).sum()) == pytest.approx(
        1628.6292130283546, rel=1e-9
    )
    assert int(pair.moving.labels.sum()) == 1268


# Ids of the registration.pairwise cells of today's suites, computed before ``data`` and
# ``truth`` existed: only values a suite sets enter an id, so new parameters with
# defaults leave them as they were.
IDS_BEFORE = {
    "registration-quick": [
        "1d956200f422", "3aa8ce848385", "4febf6995f29", "5ae2225885ea", "7a2e72f4cbe0",
        "a4a091c26b14", "bb2ee369ec55", "cde8ed4f54c6",
    ],
    "registration-2d": [
        "07b48521c1cd", "1ea5d4d6807b", "2239825bd633", "2f57cf245d30", "47962639e0c2",
        "57a05c046545", "618ce2e608c7", "67a19f23d633", "6893fa8b35c7", "71e4069ad8b9",
        "7721aedcc55e", "797fe80d3615", "8f0b5a704cd6", "9430f50a06ab", "9c9ae7807ee0",
        "a355b6c6f155", "b12e0bf882ba", "b1b6aeef8fb3", "b4dde0df6f54", "b6ec7426ad91",
        "c9572dd4930e", "d41096c48e48", "dbfbf3b9e325", "e58f0f591db1", "e993c7f73279",
        "eac78e941dca", "ec78994adeea", "eef5bdf07d8b", "fa226ada7fd2", "fd4f1ae91aba",
    ],
}  # fmt: skip


def _pairwise_ids(suite: str, tmp_path: Path) -> set[str]:
    """The suite's pairwise cell ids without the ``truth: svf`` it has set since the
    default truth moved to tv_rk4 (2026-12-07): a given value is part of a cell's id,
    so those ids changed on purpose; everything else must give the ids of before."""
    text = (ROOT / "suites" / f"{suite}.yaml").read_text()
    assert "truth: svf" in text  # pinned: a rerun draws the pairs it was published with
    text = re.sub(r"truth: svf, |\n\s*truth: svf(?=\n)", "", text)
    path = tmp_path / f"{suite}.yaml"
    path.write_text(text)
    cells = load_suite(path, probe=False).cells
    return {c.id for c in cells if c.task == "registration.pairwise"}


@pytest.mark.parametrize("suite", sorted(IDS_BEFORE))
def test_default_cell_ids_are_unchanged(suite, tmp_path):
    assert _pairwise_ids(suite, tmp_path) == set(IDS_BEFORE[suite])


def test_published_3d_cell_ids_are_unchanged(tmp_path):
    published = pd.read_parquet(ROOT / "results/published/registration-3d-2mm-cpu/cells.parquet")
    assert set(published["cell_id"]) == _pairwise_ids("registration-3d-2mm-cpu", tmp_path)
