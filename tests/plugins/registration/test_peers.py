"""The optional registration peers (fireants.greedy, fireants.syn, elastix.bspline):
each registers the tiny known pair, our warp of its displacement is its own warped
image, a cell without the package skips with the reason, a bad value is refused naming
it. Each test skips with the reason where its package is not installed."""

from __future__ import annotations

import sys
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from bench import hookimpl, testing
from bench.suitefile import SuiteError
from kernels.reference import warp_reference
from plugins.methods.registration.elastix_peer import ElastixBSpline
from plugins.methods.registration.fireants_peer import FireANTsGreedy, FireANTsSyN
from tests.plugins.registration._helpers import run_pairwise

pytestmark = pytest.mark.usefixtures("frozen_heap")


def _needs(cls: type) -> pytest.MarkDecorator:
    reason = cls.missing_requirement()
    return pytest.mark.skipif(reason is not None, reason=str(reason))


needs_fireants = _needs(FireANTsGreedy)
needs_elastix = _needs(ElastixBSpline)

# Short runs on the tiny 39 x 33 pair of 6 mm voxels (truth: 0.87 voxel on average, 3 at
# most): two levels, few iterations, a few seconds each. Measured (seed 0): greedy 0.28
# voxel, syn 0.20, elastix 0.17 from 0.87 before; Dice 0.93 / 0.96 / 0.96 from 0.72.
# The first elastix test of a process also pays itk's lazy import, once: 15-26 s on the
# shared 2-core machine at load 7-8 (the elastix runs themselves take 1-4 s).
PEERS = [
    pytest.param("fireants.greedy", {"iterations": [100, 50]}, marks=needs_fireants),
    pytest.param("fireants.syn", {"iterations": [50, 25]}, marks=needs_fireants),
    pytest.param("elastix.bspline", {"iterations": 100, "levels": 2}, marks=needs_elastix),
]


@pytest.mark.parametrize(("method", "params"), PEERS)
def test_each_peer_recovers_the_known_deformation(tmp_path, method, params):
    """Each peer cuts the mean error to the truth below half the error before
    registration (each measured at a third of it or less, so a reading of its map in
    the wrong axis order or sign, which leaves the error at or above the before's,
    fails) and raises Dice; the loss curve and the files are kept."""
    ctx = run_pairwise(method, tmp_path, **params)
    metrics = ctx.metrics
    before = metrics["error_mm_before"] / 6.0
    assert metrics["error_vox"] < 0.5 * before, (metrics["error_vox"], before)
    assert metrics["dice"] > metrics["dice_before"] + 0.1
    assert "register" in ctx.times
    # its own loss curve, and the task's Dice and error against time (a final point)
    assert {c[0] for c in ctx.curves} == {"loss", "dice", "error_mm"}
    assert {f[0] for f in ctx.files} >= {"displacement.nii.gz", "warped.png"}


# --- the convention: our warp of the peer's displacement is the peer's own warped image


class _KeepFireANTs:
    """Test only: a FireANTs peer keeping its problem, its FireANTs images and
    registration object, and its Result (read by the test below)."""

    kept: ClassVar[list[dict[str, Any]]]

    def registration(self, problem, fixed, moving, **common):
        reg = super().registration(problem, fixed, moving, **common)
        type(self).kept.append({"problem": problem, "fixed": fixed, "moving": moving, "reg": reg})
        return reg

    def solve(self, problem, ctx):
        result = super().solve(problem, ctx)
        type(self).kept[-1]["result"] = result
        return result


class _SpyGreedy(_KeepFireANTs, FireANTsGreedy):
    """Test only: fireants.greedy, keeping what _KeepFireANTs keeps."""

    name = "test.fireants_greedy_spy"
    kept: ClassVar[list[dict[str, Any]]] = []


class _SpySyN(_KeepFireANTs, FireANTsSyN):
    """Test only: fireants.syn, keeping what _KeepFireANTs keeps."""

    name = "test.fireants_syn_spy"
    kept: ClassVar[list[dict[str, Any]]] = []


class _SpyElastix(ElastixBSpline):
    """Test only: elastix.bspline with linear final resampling (elastix's default is
    cubic, which our bilinear warp does not reproduce), keeping its problem, transform
    and Result."""

    name = "test.elastix_spy"
    kept: ClassVar[list[dict[str, Any]]] = []

    def register(self, problem, ctx, interpolation_order=3):
        out = super().register(problem, ctx, interpolation_order=1)
        type(self).kept.append({"problem": problem, "transform": out[1]})
        return out

    def solve(self, problem, ctx):
        result = super().solve(problem, ctx)
        type(self).kept[-1]["result"] = result
        return result


@hookimpl
def bench_plugins() -> list[type]:
    """This module as a plugin module, so that a registry can hold its spies."""
    return [_SpyGreedy, _SpySyN, _SpyElastix]


def _run_spy(cls: type, params: dict[str, Any]) -> dict[str, Any]:
    cls.kept.clear()
    testing.run_cell(
        "registration.pairwise",
        {"method": cls.name, "backend": "warp.eager"},
        {"downsample": 3, "amplitude": 3.0, **{f"method.{k}": v for k, v in params.items()}},
        registry=testing.default_registry([__name__]),
    )
    (kept,) = cls.kept  # warmup 0: one solve
    return kept


def _ours(problem, disp: torch.Tensor) -> np.ndarray:
    """The moving image warped by ``disp`` with kernels.reference's warp (bilinear,
    zeros outside), the warp the pairwise task's backends are checked against."""
    moving = problem.moving.detach().cpu().double()
    return warp_reference(moving, disp.detach().cpu().double(), mode="bilinear")[0, 0].numpy()


@needs_fireants
@pytest.mark.parametrize(("cls", "iterations"), [(_SpyGreedy, [40, 20]), (_SpySyN, [20, 10])])
def test_our_warp_of_the_fireants_displacement_is_fireants_own_warped_image(cls, iterations):
    """FireANTs' ``evaluate`` (its bilinear interpolator, zeros outside, align_corners)
    against our warp of the displacement read from its map, on every voxel, to 1e-4 of
    an image of range ~1: both interpolate the same points bilinearly, so they differ by
    float32 rounding only (the reading from normalised to voxel coordinates; measured
    1.1e-7 for greedy and 1.0e-7 for syn, on all voxels). A mistake in the reading
    (axes swapped, n rather than n - 1, the identity not taken off) moves the sampled
    points by a voxel or more: differences of 0.1+ (0.8 with the axes swapped)."""
    kept = _run_spy(cls, {"iterations": iterations})
    with torch.no_grad():
        theirs = kept["reg"].evaluate(kept["fixed"], kept["moving"])[0, 0].cpu().double().numpy()
    ours = _ours(kept["problem"], kept["result"].disp)
    assert np.abs(kept["result"].disp.numpy()).max() > 0.5  # it did move the image
    assert np.abs(ours - theirs).max() < 1e-4


@needs_elastix
def test_our_warp_of_the_elastix_displacement_is_transformix_linear_resampling():
    """transformix's resampling of the moving image with elastix's transform and
    FinalBSplineInterpolationOrder 1 (linear, zero outside) against our bilinear warp of
    the displacement read from transformix's deformation field, inside a 2-voxel
    border, to 1e-5 of an image of range ~1: the same points interpolated the same way,
    in float32 through ITK (measured 6e-8). On the border they differ (measured 0.017:
    ITK's linear interpolator and our zero padding treat a point sampled past the last
    voxel centre differently), so it is left out. With elastix's default cubic
    resampling they differ by 0.074 inside, and a field read in the wrong axis order by
    0.7."""
    import itk

    kept = _run_spy(_SpyElastix, {"iterations": 50, "levels": 2})
    problem, transform = kept["problem"], kept["transform"]
    moving = itk.image_from_array(problem.moving[0, 0].cpu().numpy().astype(np.float32))
    moving.SetSpacing([float(s) for s in reversed(problem.spacing)])
    theirs = np.asarray(itk.transformix_filter(moving, transform), dtype=np.float64)
    ours = _ours(problem, kept["result"].disp)
    assert np.abs(kept["result"].disp.numpy()).max() > 0.5  # it did move the image
    assert np.abs(ours - theirs)[2:-2, 2:-2].max() < 1e-5


# --- without the package, and with a bad value


@pytest.mark.parametrize(
    ("method", "hidden", "module"),
    [
        ("fireants.greedy", "fireants", "fireants"),
        ("fireants.syn", "SimpleITK", "SimpleITK"),
        ("elastix.bspline", "itk", "itk"),
    ],
)
def test_a_cell_without_the_package_skips_with_the_reason(monkeypatch, method, hidden, module):
    monkeypatch.setitem(sys.modules, hidden, None)  # as if not installed
    result = run_pairwise(method, None, iterations=[1] if "fireants" in method else 1)
    assert result.status == "skipped"
    assert f"optional module {module!r}, which is not installed" in result.error
    assert "peers-registration extra" in result.error


@pytest.mark.parametrize(
    ("method", "key", "value", "says"),
    [
        ("fireants.greedy", "iterations", [100, 0], "iteration counts >= 1 per level"),
        ("fireants.syn", "lr", -0.5, "must be > 0.0"),
        ("elastix.bspline", "levels", 9, "must be <= 6"),
    ],
)
def test_a_bad_value_is_refused_with_one_message_naming_it(method, key, value, says):
    """Refused when the cell is validated, before any package is imported or anything
    runs: one mistake, naming the method's parameter, what is expected and the value."""
    with pytest.raises(SuiteError, match="1 mistake") as raised:
        run_pairwise(method, None, **{key: value})
    message = str(raised.value)
    assert f"{method}.{key}: " in message and says in message and repr(value) in message
