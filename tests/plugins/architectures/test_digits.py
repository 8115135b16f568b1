"""classify.digits: the split, the accuracy against scikit-learn's own count."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plugins.tasks.architectures.digits import digits_split, digits_validation_split, make_stem
from tests.plugins.architectures._run import run_cell


def test_split_is_stratified_and_scaled() -> None:
    x_tr, x_te, y_tr, y_te = digits_split(0)
    assert x_tr.shape == (1257, 64) and x_te.shape == (540, 64)
    assert x_tr.min() >= 0.0 and x_tr.max() <= 1.0
    # stratified: every class holds 30% +- one image of the test set
    counts_te, counts_all = np.bincount(y_te), np.bincount(np.concatenate([y_tr, y_te]))
    assert np.all(np.abs(counts_te - 0.3 * counts_all) <= 1)


def test_stems_map_images_to_width() -> None:
    x = torch.rand(5, 64)
    for kind in ("linear", "conv"):
        assert make_stem(kind, 6)(x).shape == (5, 6)


def test_revnet_run_learns_and_inverts(tmp_path) -> None:
    arch = ("revnet", {"width": 16, "depth": 2, "hidden": 16})
    ctx = run_cell("classify.digits", {"architecture": arch}, tmp_path, epochs=3)
    m = ctx.metrics
    # 3 epochs of Adam: well above chance (0.1); the logistic regression reference ~0.96
    assert m["test_accuracy"] > 0.5
    assert m["logistic_test_accuracy"] > 0.9
    assert m["inverse_error_test"] < 1e-5  # exact inverse, fp32 over 2 blocks


def test_validation_images_are_held_out_of_every_seeds_split() -> None:
    """With validation_images the images val_accuracy is measured on are one fixed draw,
    in no seed's train or test split (the seeds re-split the rest 70/30), so a tuned
    entry chooses on images no reported seed scores; without them every image is some
    seed's test image."""
    _, x_va, _, y_va = digits_validation_split(300)
    assert x_va.shape == (300, 64) and np.all(np.abs(np.bincount(y_va) - 30) <= 1)
    held = {row.tobytes() for row in x_va}
    for seed in (0, 1, 100, 101):
        x_tr, x_te, _, _ = digits_split(seed, 300)
        assert len(x_tr) + len(x_te) == 1797 - 300
        # the 1,797 images are pairwise distinct, so sets of rows tell them apart
        seen = {row.tobytes() for row in np.concatenate([x_tr, x_te])}
        assert len(seen) == 1797 - 300 and not held & seen
    assert digits_split(0)[1].shape == (540, 64)  # the published protocol is unchanged


def test_val_accuracy_is_recorded_and_tuning_may_choose_by_it(tmp_path) -> None:
    from bench import ParamError, get_plugin_manager
    from bench.registry import Registry

    arch = ("resnet", {"width": 8, "depth": 1, "hidden": 8})
    ctx = run_cell("classify.digits", {"architecture": arch}, tmp_path, epochs=1,
                   validation_images=200)  # fmt: skip
    assert 0.1 < ctx.metrics["val_accuracy"] <= 1.0
    task = Registry(get_plugin_manager()).get("task", "classify.digits")
    params = task.resolve_params({"validation_images": 200})
    assert task.validation_data(params, "val_accuracy") is None
    assert "1,797 images" in task.validation_data(params, "test_accuracy")
    bare = task.resolve_params({})
    assert "validation_images: 300" in task.validation_data(bare, "val_accuracy")
    with pytest.raises(ParamError, match="cannot hold every one of the 10 classes"):
        task.resolve_params({"validation_images": 5})
