"""``hd95_subvoxel`` (iso-surfaces by marching squares/cubes) against MONAI's
``compute_hausdorff_distance`` on shapes where both measure the same continuous
boundaries, and where the voxel HD95 cannot see a sub-voxel change."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plugins.tasks.registration import metrics as m

monai_metrics = pytest.importorskip("monai.metrics")


def ball(n: int, centre, radius: float, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """A disc/ball on an n-voxel grid: its partial-volume indicator (the fraction of each
    voxel inside, from ``factor``^ndim sub-samples) and the binary mask on the
    ``factor`` times finer grid the fractions come from."""
    ndim = len(centre)
    x = (np.arange(n * factor) + 0.5) / factor - 0.5
    grids = np.meshgrid(*[x] * ndim, indexing="ij")
    fine = sum((g - c) ** 2 for g, c in zip(grids, centre)) <= radius**2
    blocks = fine.reshape([v for _ in range(ndim) for v in (n, factor)])
    return blocks.mean(axis=tuple(range(1, 2 * ndim, 2))), fine


def monai_hd95(a: np.ndarray, b: np.ndarray, spacing: float) -> float:
    def onehot(mask: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.stack([~mask, mask])[None].astype(np.float32))

    hd = monai_metrics.compute_hausdorff_distance(
        onehot(a), onehot(b), percentile=95, spacing=spacing
    )
    return float(hd)


# Tolerance (coarse voxels): the 0.5 iso-contour of a partial-volume indicator read by
# linear interpolation lies within +-0.09 voxel of the true circle (measured on these
# discs), so the 95th percentile of the distances between two such contours can exceed
# the true one by up to ~0.18 voxel; MONAI on the 8x (2-D) or 4x (3-D) finer binary
# masks is within one fine voxel (1/8, 1/4) of it. Both are then within 0.3 voxel.
TOLERANCE = 0.3

CASES_2D = [
    ((20.0, 20.0), 10.0, (20.0, 20.0), 12.5),  # concentric: 2.5 voxels
    ((20.0, 20.0), 10.0, (20.4, 20.0), 10.0),  # shifted 0.4 voxel: ~0.4
    ((20.0, 21.0), 9.0, (22.3, 19.2), 11.1),  # both
]


@pytest.mark.parametrize(("c1", "r1", "c2", "r2"), CASES_2D)
def test_2d_agrees_with_monai_on_a_finer_grid(c1, r1, c2, r2):
    factor, spacing = 8, 2.0
    a, a_fine = ball(41, c1, r1, factor)
    b, b_fine = ball(41, c2, r2, factor)
    ours = m.hd95_subvoxel(a, b, (spacing, spacing))
    theirs = monai_hd95(a_fine, b_fine, spacing / factor)
    assert ours == pytest.approx(theirs, abs=TOLERANCE * spacing)


@pytest.mark.parametrize(
    ("c1", "r1", "c2", "r2"),
    [((15.0, 15.0, 15.0), 8.0, (15.0, 15.0, 15.0), 9.5), ((15.0,) * 3, 8.0, (15.4, 15, 15.2), 8.0)],
)
def test_3d_agrees_with_monai_on_a_finer_grid(c1, r1, c2, r2):
    factor, spacing = 4, 2.0
    a, a_fine = ball(31, c1, r1, factor)
    b, b_fine = ball(31, c2, r2, factor)
    ours = m.hd95_subvoxel(a, b, (spacing,) * 3)
    theirs = monai_hd95(a_fine, b_fine, spacing / factor)
    assert ours == pytest.approx(theirs, abs=TOLERANCE * spacing)


def test_a_sub_voxel_shift_is_seen_where_the_voxel_hd95_is_not():
    # A disc shifted by 0.3 voxel: the voxel HD95 (MONAI's, on the coarse binary masks)
    # says 0 or 1 voxel; the iso-contours' is ~0.3 (within the tolerance above).
    a, _ = ball(41, (20.0, 20.0), 10.0, 8)
    b, _ = ball(41, (20.3, 20.0), 10.0, 8)
    voxel = m.hd95(a > 0.5, b > 0.5)
    assert voxel in (0.0, 1.0)
    assert m.hd95_subvoxel(a, b) == pytest.approx(0.3, abs=TOLERANCE)
    # the same contour: only the sampling's error, a distance to the nearest of samples
    # SURFACE_STEP apart rather than to the contour, at most half a step at distance 0
    # (and ~step^2 / 8d at a distance d: under 0.01 voxel from one voxel on)
    assert m.hd95_subvoxel(a, a) <= m.SURFACE_STEP / 2 + 1e-9


def test_empty_and_identical_indicators():
    a, _ = ball(21, (10.0, 10.0), 5.0, 4)
    assert m.hd95_subvoxel(np.zeros_like(a), np.zeros_like(a)) == 0.0
    assert m.hd95_subvoxel(a, np.zeros_like(a)) == float("inf")
    # the mean over labels: a label warped by zero displacement is its own surface
    labels = (a > 0.5).astype(np.int16)
    same, lost = m.mean_hd95_subvoxel(labels, labels, np.zeros((2, 21, 21)), (1.0, 1.0), [1])
    assert same <= m.SURFACE_STEP / 2 + 1e-9 and lost == 0
    # a one-voxel label shifted by half a voxel keeps a nearest-neighbour voxel but no
    # interpolated value above 0.5: counted apart, not an infinite mean
    dot = np.zeros((9, 9), dtype=np.int16)
    dot[4, 4] = 1
    shift = np.zeros((2, 9, 9))
    shift[0] = 0.5
    assert m.mean_hd95_subvoxel(dot, dot, shift, (1.0, 1.0), [1])[1] == 1
