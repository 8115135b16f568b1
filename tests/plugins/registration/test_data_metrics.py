"""Registration data (known truth) and the Learn2Reg metrics on cases with known answers."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from plugins.data import registration as data
from plugins.tasks.registration import metrics as m


def _square(shape=(48, 48), lo=8, hi=40):
    a = np.zeros(shape, dtype=np.int16)
    a[lo:hi, lo:hi] = 1
    return a


def test_identity_scores_perfectly():
    labels = _square()
    labels[20:30, 20:30] = 2
    disp = np.zeros((2, 48, 48))
    assert m.dice_per_label(labels, labels) == {1: 1.0, 2: 1.0}
    assert m.mean_hd95(labels, labels, (2.0, 2.0)) == 0.0
    det = m.jacobian_determinant(disp)
    assert np.all(det == 1.0)
    assert m.sdlogj(det) == 0.0 and m.folding_fraction(det) == 0.0
    assert m.error_mm(disp, disp, (2.0, 2.0), labels > 0) == 0.0
    assert m.inverse_consistency(disp, disp, (2.0, 2.0)) == 0.0


def test_translation_dice_det_error_and_inverse():
    a = _square()
    b = np.roll(a, 3, axis=0)  # a 32x32 square moved 3 voxels: overlap 29x32
    assert m.dice_per_label(a, b)[1] == pytest.approx(29 / 32, abs=1e-12)
    shift = np.zeros((3, 10, 12, 14))
    shift[1] = 1.5
    det = m.jacobian_determinant(shift)
    assert np.allclose(det, 1.0) and m.folding_fraction(det) == 0.0
    # error of a 1.5-voxel shift at 2 mm: exactly 3 mm everywhere
    assert m.error_mm(shift, np.zeros_like(shift), (2.0, 2.0, 2.0), None) == pytest.approx(3.0)
    # a constant field is inverted by its negative exactly (border padding: no edge effect)
    assert m.inverse_consistency(shift, -shift, (2.0,) * 3) == pytest.approx(0.0, abs=1e-12)
    assert m.inverse_consistency(shift, 0 * shift, (2.0,) * 3) == pytest.approx(3.0)


def test_hd95_of_a_one_voxel_dilation_is_one_voxel():
    inner = _square(lo=10, hi=38).astype(bool)
    outer = _square(lo=9, hi=39).astype(bool)
    # inner -> outer surfaces: exactly 1 voxel; outer -> inner: 1 voxel except the 4
    # corner voxels (sqrt 2) of 116: 3.4% < 5%, so the 95th percentile is 1 voxel.
    assert m.hd95(inner, outer, (2.0, 2.0)) == pytest.approx(2.0)
    assert m.hd95(inner, np.zeros_like(inner)) == float("inf")


def test_a_label_on_one_side_only_is_counted_not_measured():
    fixed = _square()
    fixed[2:5, 2:5] = 2  # a label the other map does not have
    moved = _square(lo=9, hi=39)
    assert m.label_sets(fixed, moved) == ([1], [2])
    assert m.label_sets(moved.astype(np.float64), fixed) == ([1], [2])  # warped maps are float
    assert m.hd95_per_label(fixed, moved)[2] == float("inf")
    # the mean is over the shared label alone: finite, its own HD95
    assert m.mean_hd95(fixed, moved, (2.0, 2.0)) == m.hd95(fixed == 1, moved == 1, (2.0, 2.0))
    assert np.isnan(m.mean_hd95(fixed * (fixed == 2), moved, (2.0, 2.0)))  # nothing shared


def test_folding_field_made_on_purpose():
    x = np.arange(20, dtype=np.float64)
    disp = np.zeros((2, 20, 20))
    disp[0] = -2.0 * x[:, None]  # x -> -x: det J = -1 everywhere
    det = m.jacobian_determinant(disp)
    assert np.allclose(det, -1.0) and m.folding_fraction(det) == 1.0
    # half the image compressed by 0.5, half stretched by 2 along axis 0 (det 0.5 and 2)
    disp = np.zeros((2, 20, 20))
    disp[0, :10] = -0.5 * x[:10, None]
    disp[0, 10:] = -5.0 + (x[10:, None] - 10.0)
    det = m.jacobian_determinant(disp)
    inner = np.r_[1:9, 11:19]  # away from the kink where central differences mix both
    assert np.allclose(det[inner], np.where(inner < 10, 0.5, 2.0)[:, None])
    # SDlogJ of two equal halves at log 0.5 and log 2: exactly log 2
    halves = np.where(np.arange(20) < 10, 0.5, 2.0)[:, None] * np.ones((20, 20))
    assert m.sdlogj(halves) == pytest.approx(np.log(2.0))
    assert m.folding_fraction(np.array([-1.0, 0.0, 1.0, 2.0])) == 0.5


def test_exp_of_a_constant_velocity_is_the_translation():
    v = np.full((2, 16, 16), 0.75, dtype=np.float32)
    assert np.allclose(data.exp_velocity(v), 0.75, atol=1e-6)


def test_pair_truth_maps_moving_onto_fixed():
    pair = data.make_pair(2, downsample=3, amplitude=6.0, bias=0.0, noise=0.0, seed=1)
    fixed, moving, truth = pair.fixed, pair.moving, pair.truth
    assert fixed.data.shape == moving.data.shape == truth.shape[1:] == (39, 33)
    assert np.abs(truth).max() > 1.0  # really deformed
    back = data.warp_array(moving.data, truth)
    before = np.abs(moving.data - fixed.data)[fixed.mask].mean()
    after = np.abs(back - fixed.data)[fixed.mask].mean()
    wrong = np.abs(data.warp_array(moving.data, -truth) - fixed.data)[fixed.mask].mean()
    # Two bilinear resamplings of a 6 mm image blur its edges (0.02 of the range remains
    # even at 2 mm), so the residual falls ~3x, not to 0; the opposite sign makes it worse.
    assert after < 0.4 * before < 0.4 * wrong
    # exp(v) o exp(-v) = id to scaling-and-squaring accuracy (< 0.05 voxel on 6 voxels)
    v = data.random_velocity((39, 33), 6.0, seed=1)
    assert m.inverse_consistency(data.exp_velocity(v), truth, (1.0, 1.0)) < 0.05
    warped_labels = np.rint(data.warp_array(moving.labels, truth, mode="nearest"))
    assert m.mean_dice(fixed.labels, warped_labels) > 0.9 > m.mean_dice(fixed.labels, moving.labels)


def test_population_is_centred_on_the_template():
    ref, subjects, disps = data.population(4, 2, downsample=3, amplitude=2.0, noise=0.0, seed=0)
    assert len(subjects) == 4 and subjects[0].data.shape == ref.data.shape
    # velocities are zero-mean, so the mean displacement is second order: << amplitude
    assert np.abs(np.mean(disps, axis=0)).max() < 0.3 * np.abs(disps[0]).max()


def test_simulated_t2_contrast_is_inverted():
    t1 = data.reference(2, downsample=3, contrast="t1")
    t2 = data.reference(2, downsample=3, contrast="t2")
    wm, csf = t1.labels == 3, t1.labels == 1
    assert t1.data[wm].mean() > t1.data[csf].mean()
    assert t2.data[wm].mean() < t2.data[csf].mean()


def test_nifti_pair_errors_name_the_problem(tmp_path):
    def save(name, array):
        path = tmp_path / name
        nib.save(nib.Nifti1Image(array.astype(np.float32), np.eye(4)), path)
        return str(path)

    a = save("a.nii.gz", np.random.rand(20, 24, 1))
    b = save("b.nii.gz", np.random.rand(20, 24, 1))
    c = save("c.nii.gz", np.random.rand(20, 22, 1))
    d = save("d.nii.gz", np.random.rand(20, 24, 8))
    lab = save("lab.nii.gz", np.ones((20, 22)))
    bad = tmp_path / "bad.nii.gz"
    bad.write_text("not a nifti")
    pair = data.load_nifti_pair(a, b)
    assert pair.fixed.data.shape == (20, 24) and pair.truth is None
    with pytest.raises(ValueError, match="shape"):
        data.load_nifti_pair(a, c)
    with pytest.raises(ValueError, match="2-D and moving"):
        data.load_nifti_pair(a, d)
    with pytest.raises(ValueError, match="does not load"):
        data.load_nifti_pair(a, str(bad))
    with pytest.raises(ValueError, match="fixed_labels.*must match"):
        data.load_nifti_pair(a, b, lab, lab)


def test_dice_and_hd95_agree_with_monai():
    monai = pytest.importorskip("monai")
    import torch
    from monai.metrics import compute_dice, compute_hausdorff_distance

    pair = data.make_pair(2, downsample=3, amplitude=3.0, seed=2)
    a, b = pair.fixed.labels, pair.moving.labels
    ours_dice = m.dice_per_label(a, b)
    ours_hd = m.hd95_per_label(a, b, (6.0, 6.0))

    def onehot(x):
        return torch.nn.functional.one_hot(torch.from_numpy(x.astype(np.int64)), 4).permute(
            2, 0, 1
        )[None]

    pa, pb = onehot(b), onehot(a)
    dice = compute_dice(pa, pb, include_background=False)[0]
    hd = compute_hausdorff_distance(
        pa, pb, include_background=False, percentile=95, spacing=(6.0, 6.0)
    )[0]
    assert monai.__version__
    for k in (1, 2, 3):
        # same definitions: equal to float rounding
        assert ours_dice[k] == pytest.approx(float(dice[k - 1]), abs=1e-6)
        assert ours_hd[k] == pytest.approx(float(hd[k - 1]), abs=1e-6)


def test_the_unregistered_hd95_is_computed_once_a_pair_and_equals_the_direct_one(monkeypatch):
    """Every cell that registers one pair scores it before registration alike:
    ``unregistered_hd95`` gives the direct computation's numbers, computes them once for
    the same arrays, and again for other contents (a copy with one voxel changed)."""
    from plugins.tasks.registration import metrics as m

    rng = np.random.default_rng(0)
    fixed = np.zeros((24, 20, 18), dtype=np.int16)
    fixed[4:14, 3:12, 5:13], fixed[12:20, 9:17, 4:10] = 1, 2
    moving = np.roll(fixed, (1, -1, 0), axis=(0, 1, 2))
    moving[rng.random(moving.shape) < 0.002] = 0
    spacing, labels = (2.0, 2.0, 2.0), [1, 2]
    direct = (m.mean_hd95(fixed, moving, spacing),
              *m.mean_hd95_subvoxel(fixed, moving, None, spacing, labels))  # fmt: skip
    calls = []
    real = m.mean_hd95_subvoxel
    monkeypatch.setattr(m, "mean_hd95_subvoxel", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setattr(m, "_UNREGISTERED", type(m._UNREGISTERED)())
    assert m.unregistered_hd95(fixed, moving, spacing, labels) == direct
    assert m.unregistered_hd95(fixed.copy(), moving.copy(), spacing, labels) == direct
    assert len(calls) == 1
    other = moving.copy()
    other[0, 0, 0] = 1  # background before
    changed = m.unregistered_hd95(fixed, other, spacing, labels)
    assert len(calls) == 2
    assert changed == (m.mean_hd95(fixed, other, spacing),
                       *real(fixed, other, None, spacing, labels))  # fmt: skip
    # another spacing is another result
    assert m.unregistered_hd95(fixed, moving, (1.0, 1.0, 1.0), labels) != direct
    assert len(calls) == 3
