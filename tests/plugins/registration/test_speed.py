"""Issue 20 item 6: the separable NCC box, Dice/error curves against time, time_to_dice
and the per-level stopping rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from plugins.methods.registration.base import Adam, converged
from plugins.methods.registration.losses import _box
from plugins.tasks.registration import metrics as m
from plugins.tasks.registration.pairwise import fast_mean_dice
from tests.plugins.registration._helpers import run_pairwise

pytestmark = pytest.mark.usefixtures("frozen_heap")


@pytest.mark.parametrize("shape", [(1, 3, 21, 17), (1, 2, 13, 11, 9)])
@pytest.mark.parametrize("window", [3, 9])
def test_separable_box_is_the_dense_average_pool(shape, window):
    # The box is separable: three 1-D passes give the dense pool's mean with zero
    # padding counted. Tolerance: float32 sums of ~1 values in another order (1e-6).
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    pool = F.avg_pool2d if len(shape) == 4 else F.avg_pool3d
    dense = pool(x, window, stride=1, padding=window // 2, count_include_pad=True)
    assert torch.allclose(_box(x, window), dense, atol=1e-6, rtol=0)


def test_fast_mean_dice_is_the_metric():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 6, size=(30, 20, 10))
    b = np.where(rng.random(a.shape) < 0.8, a, rng.integers(0, 7, size=a.shape))
    assert fast_mean_dice(a, b.astype(np.float64)) == pytest.approx(m.mean_dice(a, b), abs=1e-12)
    assert fast_mean_dice(a, a) == 1.0
    assert np.isnan(fast_mean_dice(np.zeros((3, 3)), np.zeros((3, 3))))


def test_the_stopping_rule_stops_on_a_flat_loss_only():
    falling = [1.0 - 0.01 * k for k in range(40)]  # ~1.3% a 10-step window
    flat = [1.0] * 20 + [0.9999] * 20
    assert not converged(falling, 1e-3, 10)
    assert converged(flat, 1e-3, 10)
    assert not converged(flat, 0.0, 10)  # tol 0: never
    assert not converged(flat[:19], 1e-3, 10)  # fewer than 2 windows
    # a negative loss (minus NCC) falls to more negative values; a rising one has stopped
    assert not converged([-0.5 - 0.01 * k for k in range(40)], 1e-3, 10)
    assert converged([-x for x in falling], 1e-3, 10)
    assert converged([-0.5] * 20, 1e-3, 10)


def test_dice_and_error_curves_against_time_and_time_to_dice(tmp_path):
    cell = run_pairwise(
        "svf",
        tmp_path,
        task={"curve_every": 5, "target_dice": 0.9, "truth": "svf"},  # the target reached
        iterations=30,
    )
    dice = cell.curve("dice")
    error = cell.curve("error_mm")
    loss_steps = [step for step, _, _ in cell.curve("loss")]
    # every 5 steps of 3 levels x 30, then the result's point at the last step
    assert [step for step, _, _ in dice] == [*range(0, 90, 5), 90]
    assert [step for step, _, _ in error] == [step for step, _, _ in dice]
    assert max(loss_steps) == 89
    times = [t for _, _, t in dice]
    assert times == sorted(times) and times[0] >= 0.0
    # the last point is the result: the metrics themselves (same warp, same labels)
    assert dice[-1][1] == pytest.approx(cell.metrics["dice"], abs=1e-12)
    assert error[-1][1] == pytest.approx(cell.metrics["error_mm"], abs=1e-12)
    assert times[-1] == pytest.approx(cell.times["register"][0], abs=1e-9)
    # the first point is the identity: the unregistered pair
    assert dice[0][1] == pytest.approx(cell.metrics["dice_before"], abs=1e-12)
    assert error[0][1] == pytest.approx(cell.metrics["error_mm_before"], abs=1e-9)
    first = next(t for _, value, t in dice if value >= 0.9)
    assert cell.metrics["target_dice_reached"] == 1.0
    assert cell.metrics["time_to_dice"] == first
    assert cell.times["monitor"][0] > 0.0


def test_an_unreached_target_is_said_and_has_no_time(tmp_path):
    cell = run_pairwise("displacement", tmp_path, task={"target_dice": 1.0}, iterations=5)
    assert cell.metrics["target_dice_reached"] == 0.0
    assert "time_to_dice" not in cell.metrics


def test_the_stopping_rule_ends_levels_early_and_keeps_the_result(tmp_path):
    # On the tiny pair, 3 levels of at most 200 steps: tol 1e-3 measured 119 steps in
    # all against 599, Dice 0.944 against 0.939 (seed 0). Bounds: under 3/4 of the steps,
    # Dice within 0.01 of the full run.
    full = run_pairwise("svf", tmp_path, task={"curve_every": 0}, iterations=200)
    early = run_pairwise("svf", tmp_path, task={"curve_every": 0}, iterations=200, tol=1e-3)
    steps = max(step for step, _, _ in early.curve("loss"))
    assert steps < 0.75 * max(step for step, _, _ in full.curve("loss"))
    assert early.metrics["dice"] > full.metrics["dice"] - 0.01
    # curve_every 0: one dice point, the result's
    assert len(early.curve("dice")) == 1


def test_syn_records_its_result_as_the_only_point(tmp_path):
    pytest.importorskip("ants")
    cell = run_pairwise("syn", tmp_path, task={"target_dice": 0.5}, iterations=[5, 0])
    (point,) = cell.curve("dice")
    assert point[0] == 0 and point[1] == pytest.approx(cell.metrics["dice"], abs=1e-12)
    assert cell.metrics["time_to_dice"] == pytest.approx(cell.times["register"][0], abs=1e-9)


def test_the_loop_adam_is_torch_adam():
    # Same arithmetic as torch.optim.Adam's single-tensor path; tolerance: float32
    # rounding of a different operation order over 50 steps (measured: 0.0, identical).
    gen = torch.Generator().manual_seed(0)
    start = torch.randn(3, 7, 5, generator=gen)
    target = torch.randn(3, 7, 5, generator=gen)
    ours, theirs = start.clone().requires_grad_(), start.clone().requires_grad_()
    opt_ours = Adam([ours], lr=0.1)
    opt_theirs = torch.optim.Adam([theirs], lr=0.1, foreach=False)
    for _ in range(50):
        for p, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.zero_grad(set_to_none=True)
            ((p - target) ** 4).sum().backward()
            opt.step()
    assert torch.allclose(ours, theirs, atol=1e-5, rtol=0)
    assert not torch.allclose(ours, start, atol=0.5)  # it moved


def test_the_loop_adam_takes_a_modules_parameters_as_torch_adam_does():
    """``Adam(net.parameters(), lr)``, the usual call (the method template recommends
    this Adam): a generator, used up building the moments, left a step that moved
    nothing."""
    net = torch.nn.Linear(3, 1)
    before = [p.detach().clone() for p in net.parameters()]
    opt = Adam(net.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        net(torch.ones(4, 3)).sum().backward()
        opt.step()
    assert all(not torch.equal(a, p) for a, p in zip(before, net.parameters()))
