"""Folding % and SDlogJ against Learn2Reg's convention (issue 20, item 5), in 2-D and 3-D.

Learn2Reg's evaluation (github.com/MDL-UzL/L2R, evaluation/utils.py and evaluation.py)
takes det(I + grad u) with central differences (kernel [-0.5, 0, 0.5], zero padding),
drops a 2-voxel border, and reports std(log(clip(det, 1e-9, 1e9))). Ours
(``metrics.jacobian_determinant``) uses np.gradient: the same central differences
inside, one-sided ones at the edge, no border dropped. So the two agree exactly on the
interior, which is what is checked here against an independent correlate-based
computation; the analytic cases check the values themselves.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from plugins.tasks.registration import metrics as m


def _l2r_style_det(disp: np.ndarray, border: int = 2) -> np.ndarray:
    """det(I + grad u) by correlation with [-0.5, 0, 0.5], zero padding, ``border``
    voxels dropped: the convention of Learn2Reg's evaluation, written afresh for any
    dimension (the determinant by numpy's LU, not by cofactors as ours)."""
    ndim = disp.shape[0]
    jac = np.empty(disp.shape[1:] + (ndim, ndim))
    for j in range(ndim):
        kernel = np.array([-0.5, 0.0, 0.5]).reshape([3 if a == j else 1 for a in range(ndim)])
        for i in range(ndim):
            jac[..., i, j] = ndimage.correlate(disp[i], kernel, mode="constant", cval=0.0)
    jac += np.eye(ndim)
    inner = tuple(slice(border, -border) for _ in range(ndim))
    return np.linalg.det(jac[inner])


def _smooth_field(shape, amplitude, seed):
    rng = np.random.default_rng(seed)
    field = np.stack([ndimage.gaussian_filter(rng.normal(size=shape), 2.0) for _ in shape])
    return amplitude * field / np.abs(field).max()


@pytest.mark.parametrize("shape", [(40, 36), (20, 18, 16)], ids=["2d", "3d"])
@pytest.mark.parametrize("amplitude", [1.0, 12.0], ids=["smooth", "folding"])
def test_determinant_matches_learn2regs_on_the_interior(shape, amplitude):
    disp = _smooth_field(shape, amplitude, seed=len(shape))
    ours = m.jacobian_determinant(disp)
    inner = tuple(slice(2, -2) for _ in shape)
    reference = _l2r_style_det(disp)
    # the same finite differences; only the determinant's arithmetic differs (LU vs
    # cofactors): float64 rounding, far below 1e-10 for entries of order 1-10
    assert np.allclose(ours[inner], reference, rtol=0, atol=1e-10)
    # and so the Learn2Reg SDlogJ and folding % of the interior
    l2r_log = np.log(np.clip(reference, 1e-9, 1e9))
    assert m.sdlogj(ours[inner]) == pytest.approx(l2r_log.std(), rel=1e-12)
    assert m.folding_fraction(ours[inner]) == np.mean(reference <= 0)
    if amplitude > 1.0:  # the large field does fold: the comparison covered det <= 0
        assert (reference <= 0).any()


def test_a_3d_linear_map_with_negative_determinant_folds_everywhere():
    # x -> A x, det A = 1 * (-2) * 1.5 = -3 (upper triangular); central and one-sided
    # differences are exact for a linear map, so det J = -3 at every voxel
    a = np.array([[1.0, 0.5, 0.0], [0.0, -2.0, 0.0], [0.0, 0.0, 1.5]])
    grid = np.stack(np.meshgrid(*(np.arange(n, dtype=np.float64) for n in (8, 9, 10)),
                                indexing="ij"))  # fmt: skip
    disp = np.einsum("ij,j...->i...", a - np.eye(3), grid)
    det = m.jacobian_determinant(disp)
    assert np.allclose(det, -3.0, rtol=0, atol=1e-12)
    assert m.folding_fraction(det) == 1.0
    # every value clipped to 1e-9: one constant log, so SDlogJ 0 up to the rounding of
    # numpy's mean of 720 equal values (~1e-15 of log 1e-9 = -20.7)
    assert m.sdlogj(det) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("ndim", [2, 3])
def test_a_tent_fold_is_half_folded_with_the_sdlogj_of_two_groups(ndim):
    """phi_0(x) = x up to 10 and 20 - x beyond (a fold along axis 0 of 20 voxels),
    phi_1(y) = 1.5 y. By hand, with np.gradient's differences along axis 0: slices
    0-9 have d phi_0 = 1 (det 1.5); slice 10 has (phi(11) - phi(9)) / 2 = (9 - 9) / 2
    = 0; slices 11-19 have -1 (det -1.5): 10 of 20 slices have det <= 0 (50 %), and
    SDlogJ is the std of two equal groups, log 1.5 and log 1e-9: half their gap."""
    shape = (20,) + (6,) * (ndim - 1)
    x = np.arange(20, dtype=np.float64)
    phi0 = np.where(x <= 10, x, 20 - x)
    disp = np.zeros((ndim,) + shape)
    disp[0] = (phi0 - x).reshape((-1,) + (1,) * (ndim - 1))
    y = np.arange(6, dtype=np.float64).reshape((1, -1) + (1,) * (ndim - 2))
    disp[1] = 0.5 * y * np.ones(shape)
    det = m.jacobian_determinant(disp)
    per_slice = det.reshape(20, -1)
    assert np.allclose(per_slice[:10], 1.5) and np.allclose(per_slice[10], 0.0)
    assert np.allclose(per_slice[11:], -1.5)
    assert m.folding_fraction(det) == 0.5
    assert m.sdlogj(det) == pytest.approx((np.log(1.5) - np.log(1e-9)) / 2, rel=1e-12)
