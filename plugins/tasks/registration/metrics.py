"""Registration metrics with the Learn2Reg definitions, on numpy arrays.

Displacements are (ndim, *S) in voxels (``warped(x) = moving(x + disp(x))``); label maps
are integer arrays of shape S; ``spacing`` is the voxel size in mm per axis.

- Dice per label: 2 |A n B| / (|A| + |B|), for every label > 0 present in either map.
- HD95: the symmetric 95th-percentile Hausdorff distance between the two labels'
  surfaces in mm, as MONAI's ``compute_hausdorff_distance(percentile=95)`` computes it
  (surface = the mask minus its binary erosion; distances by the Euclidean distance
  transform with the spacing; max of the two directed percentiles); its mean is over
  the labels both maps have, those on one side only are counted apart.
- HD95 sub-voxel (``hd95_subvoxel``, a different quantity from ``hd95``, hence its own
  name): the same symmetric 95th percentile, but between the 0.5 iso-surfaces of the two
  labels' indicators read by linear interpolation (the fixed label's binary indicator,
  the moving one-hot indicator warped by linear interpolation, so that a boundary moves
  by fractions of a voxel), found by marching squares (2-D) or marching cubes (3-D)
  (scikit-image), sampled every ``QUERY_STEP`` voxel or finer and weighted by the
  length or area each sample stands for; a sample's distance is to the nearest of the
  other surface's samples every ``SURFACE_STEP`` voxel (k-d tree), which overstates the
  distance to the surface by at most half that step (much less beyond a voxel).
  ``hd95`` (MONAI's) puts a binary mask's surface on its boundary voxels, so its
  distances are those between voxel centres (at 2 mm it sat at exactly one voxel for
  every method on the published pairs); this one moves with the sub-voxel position of
  the boundaries.
- Jacobian determinant of x -> x + disp(x) by central differences (``np.gradient``),
  SDlogJ = std(log(clip(det J, 1e-9, 1e9))) over the image, folding = fraction of
  voxels with det J <= 0.
- Error to the truth: mean |disp - truth| in mm over a mask.
- Inverse consistency: mean |x + f(x) + g(x + f(x)) - x| in mm for a forward map f and
  its inverse g (0 for an exact inverse).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np
import torch
from scipy import ndimage
from scipy.spatial import cKDTree

from kernels.reference import compose_reference, warp_reference


def dice_per_label(a: np.ndarray, b: np.ndarray) -> dict[int, float]:
    """Dice of every label > 0 found in ``a`` or ``b``."""
    if a.shape != b.shape:
        raise ValueError(f"label maps of shapes {a.shape} and {b.shape}")
    out = {}
    for label in sorted(set(np.unique(a).tolist()) | set(np.unique(b).tolist())):
        if label <= 0:
            continue
        x, y = a == label, b == label
        out[int(label)] = float(2.0 * np.logical_and(x, y).sum() / (x.sum() + y.sum()))
    return out


def _surface(mask: np.ndarray) -> np.ndarray:
    return mask ^ ndimage.binary_erosion(mask)


def hd95(a: np.ndarray, b: np.ndarray, spacing: tuple[float, ...] | None = None) -> float:
    """Symmetric 95th-percentile surface distance (mm) between boolean masks ``a``, ``b``;
    inf when exactly one is empty, 0 when both are."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    if not a.any() and not b.any():
        return 0.0
    if not a.any() or not b.any():
        return float("inf")
    spacing = spacing or (1.0,) * a.ndim
    sa, sb = _surface(a), _surface(b)
    to_b = ndimage.distance_transform_edt(~sb, sampling=spacing)
    to_a = ndimage.distance_transform_edt(~sa, sampling=spacing)
    return float(max(np.percentile(to_b[sa], 95), np.percentile(to_a[sb], 95)))


#: ``hd95_subvoxel``: largest distance between the samples of the surface distances are
#: measured to (voxels), and between the samples distances are measured from (these only
#: weight the percentile, so they may be sparser: queries cost ~ density x distance^2)
SURFACE_STEP = 0.25
QUERY_STEP = 0.5


def surface_samples(
    indicator: np.ndarray,
    spacing: tuple[float, ...] | None = None,
    step: float = SURFACE_STEP,
    level: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Points (N, ndim) in mm on the ``level`` iso-contour (2-D) or iso-surface (3-D) of
    ``indicator`` read by linear interpolation, at most ``step`` voxels apart,
    and the length (mm) or area (mm^2) each stands for. The array is padded with zeros,
    so a shape touching the edge is closed there."""
    from skimage import measure

    a = np.pad(np.asarray(indicator, dtype=np.float64), 1)
    ndim = a.ndim
    scale = np.asarray(spacing or (1.0,) * ndim, dtype=np.float64)
    if not (a > level).any():
        return np.zeros((0, ndim)), np.zeros(0)
    if ndim == 2:
        points, weights = [], []
        for line in measure.find_contours(a, level):
            line = (line - 1.0) * scale
            start, end = line[:-1], line[1:]
            pieces = np.maximum(
                np.ceil(np.linalg.norm((end - start) / scale, axis=1) / step), 1
            ).astype(int)
            seg = np.repeat(np.arange(len(start)), pieces)
            offset = np.arange(len(seg)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
            frac = ((offset + 0.5) / pieces[seg])[:, None]
            points.append(start[seg] + frac * (end[seg] - start[seg]))
            weights.append((np.linalg.norm(end - start, axis=1) / pieces)[seg])
        return np.concatenate(points), np.concatenate(weights)
    verts, faces, _, _ = measure.marching_cubes(a, level, spacing=tuple(scale))
    verts = verts - scale  # undo the padding
    tri = verts[faces]  # (F, 3 corners, 3)
    longest = max(np.linalg.norm((tri - np.roll(tri, 1, axis=1)) / scale, axis=2).max(), 1e-9)
    m = max(int(np.ceil(longest / step)), 1)
    # centroids of the m^2 sub-triangles of each triangle, in barycentric coordinates
    bary = [((i + 1 / 3) / m, (j + 1 / 3) / m) for i in range(m) for j in range(m - i)]
    bary += [((i + 2 / 3) / m, (j + 2 / 3) / m) for i in range(m) for j in range(m - i - 1)]
    w = np.array([(u, v, 1.0 - u - v) for u, v in bary])
    points = np.einsum("sk,fkd->fsd", w, tri).reshape(-1, 3)
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    return points, np.repeat(area / (m * m), len(bary))


def _weighted_percentile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    index = min(int(np.searchsorted(cum, q / 100.0 * cum[-1])), len(values) - 1)
    return float(values[order][index])


def hd95_subvoxel(a: np.ndarray, b: np.ndarray, spacing: tuple[float, ...] | None = None) -> float:
    """Symmetric 95th-percentile distance (mm) between the 0.5 iso-surfaces of the
    indicators ``a`` and ``b`` (float in [0, 1] or boolean; see the module docstring);
    inf when exactly one has no surface, 0 when neither has."""
    qa, wa = surface_samples(a, spacing, QUERY_STEP)
    qb, wb = surface_samples(b, spacing, QUERY_STEP)
    if not len(qa) and not len(qb):
        return 0.0
    if not len(qa) or not len(qb):
        return float("inf")
    # an unbalanced tree: the same nearest distances, built in about 60 % of the time
    to_b = cKDTree(surface_samples(b, spacing)[0], balanced_tree=False).query(qa)[0]
    to_a = cKDTree(surface_samples(a, spacing)[0], balanced_tree=False).query(qb)[0]
    return max(_weighted_percentile(to_b, wa, 95), _weighted_percentile(to_a, wb, 95))


def mean_hd95_subvoxel(
    fixed_labels: np.ndarray,
    moving_labels: np.ndarray,
    disp: np.ndarray | None,
    spacing: tuple[float, ...],
    labels: list[int],
) -> tuple[float, int]:
    """Mean ``hd95_subvoxel`` over ``labels``: each fixed label's binary indicator against
    the moving label's indicator warped by ``disp`` with linear interpolation (None: the
    unregistered moving labels); and how many of them have no iso-surface on one side (a
    label thinner than a voxel after the warp can keep a nearest-neighbour voxel but no
    interpolated value above 0.5): counted, not measured, as ``label_sets`` does. The
    mean is NaN when none is measured."""
    values, lost = [], 0
    for k in labels:
        moving = (moving_labels == k).astype(np.float64)
        if disp is not None:
            moving = _warp_linear(moving, disp)
        value = hd95_subvoxel(fixed_labels == k, moving, spacing)
        if np.isfinite(value):
            values.append(value)
        else:
            lost += 1
    return (float(np.mean(values)) if values else float("nan")), lost


#: ``unregistered_hd95``'s memo: (content digest) -> result, the last few pairs a worker
#: scored (a tuned run scores one pair before registration in 48 cells)
_UNREGISTERED: OrderedDict[str, tuple[float, float, int]] = OrderedDict()
_UNREGISTERED_SIZE = 8


def unregistered_hd95(
    fixed_labels: np.ndarray,
    moving_labels: np.ndarray,
    spacing: tuple[float, ...],
    labels: list[int],
) -> tuple[float, float, int]:
    """(``mean_hd95``, ``mean_hd95_subvoxel``'s mean and lost count) of the unregistered
    pair over ``labels``: the same numbers, memoised on the arrays' contents (a SHA-1 of
    their bytes, shapes and dtypes, the spacing and the labels), since every cell that
    registers one pair scores it before registration alike (about 40 s at 3-D 2 mm)."""
    digest = hashlib.sha1()
    for array in (fixed_labels, moving_labels):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    digest.update(repr((tuple(float(s) for s in spacing), [int(k) for k in labels])).encode())
    key = digest.hexdigest()
    if key in _UNREGISTERED:
        _UNREGISTERED.move_to_end(key)
        return _UNREGISTERED[key]
    voxel = mean_hd95(fixed_labels, moving_labels, spacing)
    sub, lost = mean_hd95_subvoxel(fixed_labels, moving_labels, None, spacing, labels)
    _UNREGISTERED[key] = (voxel, sub, lost)
    while len(_UNREGISTERED) > _UNREGISTERED_SIZE:
        _UNREGISTERED.popitem(last=False)
    return voxel, sub, lost


def _warp_linear(array: np.ndarray, disp: np.ndarray) -> np.ndarray:
    a = torch.from_numpy(np.asarray(array, dtype=np.float64))[None, None]
    d = torch.from_numpy(np.asarray(disp, dtype=np.float64))[None]
    return warp_reference(a, d, mode="bilinear")[0, 0].numpy()


def label_sets(a: np.ndarray, b: np.ndarray) -> tuple[list[int], list[int]]:
    """The labels > 0 that both maps have, and those that only one of them has."""
    in_a = {int(k) for k in np.unique(a).tolist() if k > 0}
    in_b = {int(k) for k in np.unique(b).tolist() if k > 0}
    return sorted(in_a & in_b), sorted(in_a ^ in_b)


def hd95_per_label(
    a: np.ndarray, b: np.ndarray, spacing: tuple[float, ...] | None = None
) -> dict[int, float]:
    """HD95 of every label > 0 found in ``a`` or ``b`` (inf for one on one side only)."""
    shared, missing = label_sets(a, b)
    return {k: hd95(a == k, b == k, spacing) for k in sorted(shared + missing)}


def jacobian_determinant(disp: np.ndarray) -> np.ndarray:
    """det(I + grad disp) at every voxel (central differences, one-sided at the edges)."""
    disp = np.asarray(disp, dtype=np.float64)
    ndim = disp.shape[0]
    if disp.ndim != ndim + 1:
        raise ValueError(f"a displacement is (ndim, *S); got shape {disp.shape}")
    # J[i][j] = d(x_i + u_i)/dx_j
    jac = [[np.gradient(disp[i], axis=j) + (i == j) for j in range(ndim)] for i in range(ndim)]
    if ndim == 2:
        return jac[0][0] * jac[1][1] - jac[0][1] * jac[1][0]
    return (
        jac[0][0] * (jac[1][1] * jac[2][2] - jac[1][2] * jac[2][1])
        - jac[0][1] * (jac[1][0] * jac[2][2] - jac[1][2] * jac[2][0])
        + jac[0][2] * (jac[1][0] * jac[2][1] - jac[1][1] * jac[2][0])
    )


def sdlogj(det: np.ndarray) -> float:
    """Learn2Reg's SDlogJ: std of log(clip(det J, 1e-9, 1e9))."""
    return float(np.log(np.clip(det, 1e-9, 1e9)).std())


def folding_fraction(det: np.ndarray) -> float:
    """Fraction of voxels with det J <= 0."""
    return float((det <= 0).mean())


def _norm_mm(vec: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    scale = np.asarray(spacing, dtype=np.float64).reshape((-1,) + (1,) * (vec.ndim - 1))
    return np.sqrt(((vec * scale) ** 2).sum(axis=0))


def error_mm(
    disp: np.ndarray, truth: np.ndarray, spacing: tuple[float, ...], mask: np.ndarray | None
) -> float:
    """Mean Euclidean distance (mm) between two displacements inside ``mask``."""
    err = _norm_mm(np.asarray(disp, np.float64) - truth, spacing)
    return float(err[mask].mean() if mask is not None else err.mean())


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """Displacement of phi_outer o phi_inner: inner(x) + outer(x + inner(x)); the outer
    field is continued by its border values outside the grid."""
    a = torch.from_numpy(np.asarray(outer, np.float64))[None]
    b = torch.from_numpy(np.asarray(inner, np.float64))[None]
    return compose_reference(a, b, padding="border")[0].numpy()


def inverse_consistency(
    forward: np.ndarray,
    inverse: np.ndarray,
    spacing: tuple[float, ...],
    mask: np.ndarray | None = None,
) -> float:
    """Mean |phi_inverse(phi_forward(x)) - x| in mm inside ``mask``."""
    residual = _norm_mm(compose(inverse, forward), spacing)
    return float(residual[mask].mean() if mask is not None else residual.mean())


def mean_dice(fixed_labels: np.ndarray, warped_labels: np.ndarray) -> float:
    scores = dice_per_label(fixed_labels, warped_labels)
    return float(np.mean(list(scores.values()))) if scores else float("nan")


def mean_hd95(
    fixed_labels: np.ndarray, warped_labels: np.ndarray, spacing: tuple[float, ...]
) -> float:
    """Mean HD95 over the labels both maps have (NaN if none): a label on one side only
    has no surface to measure to, and its infinite distance would hide the others
    (``label_sets`` counts it)."""
    shared, _ = label_sets(fixed_labels, warped_labels)
    values = [hd95(fixed_labels == k, warped_labels == k, spacing) for k in shared]
    return float(np.mean(values)) if values else float("nan")
