"""classify.digits: the split, the accuracy against scikit-learn's own count."""

from __future__ import annotations

import numpy as np
import torch

from plugins.tasks.architectures.digits import digits_split, make_stem
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
