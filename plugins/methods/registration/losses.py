"""Similarities and regularisers of the registration methods, 2-D and 3-D, in torch.

Similarities take ``(warped, fixed)`` images ``(B, 1, *S)`` and return a scalar loss,
lower is better:

- ``mse``: mean squared difference;
- ``ncc``: minus VoxelMorph's local normalised cross-correlation (squared, window
  ``window`` voxels a side, box sums, 1e-5 in the denominator);
- ``mi``: minus the mutual information of the intensities, histogram by Gaussian Parzen
  windows (32 bins on [0, 1], sigma half a bin): survives a contrast change (T1 -> T2).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

SIMILARITIES = ("mse", "ncc", "mi")
MI_BINS = 32
# MI on at most this many voxels a call (a fixed random subset per image size): the
# Parzen histogram costs bins x voxels, 1.1 M voxels x 32 bins of a 2 mm volume would
# dominate a 3-D step.
MI_MAX_VOXELS = 65536


def mse(warped: torch.Tensor, fixed: torch.Tensor) -> torch.Tensor:
    return ((warped - fixed) ** 2).mean()


def _box(x: torch.Tensor, window: int) -> torch.Tensor:
    """Mean over a ``window``-wide box around each voxel, zero outside (``avg_pool`` with
    ``count_include_pad``), as one 1-D pass per axis: the box is separable, so this is
    the dense pool's value up to rounding (1e-6) at 3 x window instead of window^3
    additions a voxel. The dense 9^3 pool was 72% of a 3-D 2 mm SVF step (issue 20)."""
    ndim = x.dim() - 2
    pool = F.avg_pool2d if ndim == 2 else F.avg_pool3d
    for axis in range(ndim):
        kernel = [1] * ndim
        kernel[axis] = window
        padding = [0] * ndim
        padding[axis] = window // 2
        x = pool(x, tuple(kernel), stride=1, padding=tuple(padding), count_include_pad=True)
    return x


def ncc(warped: torch.Tensor, fixed: torch.Tensor, window: int = 9) -> torch.Tensor:
    """Minus the mean local squared NCC (VoxelMorph's ``NCC`` loss, window ``window``)."""
    i, j = warped, fixed
    mu_i, mu_j = _box(i, window), _box(j, window)
    cross = _box(i * j, window) - mu_i * mu_j
    var_i = _box(i * i, window) - mu_i**2
    var_j = _box(j * j, window) - mu_j**2
    # the box means are per voxel; VoxelMorph's sums are window^n times larger, so its
    # 1e-5 is 1e-5 / window^(2n) here
    eps = 1e-5 / window ** (2 * (i.dim() - 2))
    cc = cross * cross / (var_i * var_j + eps)
    return -cc.mean()


@functools.lru_cache(maxsize=8)
def _subset(numel: int, device: str) -> torch.Tensor | None:
    if numel <= MI_MAX_VOXELS:
        return None
    gen = torch.Generator().manual_seed(numel)
    return torch.randperm(numel, generator=gen)[:MI_MAX_VOXELS].to(device)


def mutual_information(warped: torch.Tensor, fixed: torch.Tensor) -> torch.Tensor:
    """Minus MI(warped, fixed) by Gaussian Parzen windows (differentiable)."""
    a, b = warped.reshape(-1), fixed.reshape(-1)
    idx = _subset(a.numel(), str(a.device))
    if idx is not None:
        a, b = a[idx], b[idx]
    centres = torch.linspace(0.0, 1.0, MI_BINS, device=a.device, dtype=a.dtype)
    sigma = 0.5 / (MI_BINS - 1)
    wa = torch.exp(-0.5 * ((a.clamp(0, 1)[:, None] - centres) / sigma) ** 2)
    wb = torch.exp(-0.5 * ((b.clamp(0, 1)[:, None] - centres) / sigma) ** 2)
    wa = wa / (wa.sum(1, keepdim=True) + 1e-10)
    wb = wb / (wb.sum(1, keepdim=True) + 1e-10)
    joint = wa.t() @ wb / a.numel()
    pa, pb = joint.sum(1), joint.sum(0)
    eps = 1e-10
    mi = (joint * (torch.log(joint + eps) - torch.log(pa[:, None] * pb[None] + eps))).sum()
    return -mi


def similarity(name: str, window: int = 9) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The loss function named ``name`` (one of ``SIMILARITIES``)."""
    if name == "mse":
        return mse
    if name == "ncc":
        return functools.partial(ncc, window=window)
    if name == "mi":
        return mutual_information
    raise ValueError(f"unknown similarity {name!r} (one of {', '.join(SIMILARITIES)})")


# --- regularisers -------------------------------------------------------------------


def diffusion(field: torch.Tensor) -> torch.Tensor:
    """Mean squared forward difference of every component along every axis (voxels)."""
    total = field.new_zeros(())
    for axis in range(2, field.dim()):
        total = total + (torch.diff(field, dim=axis) ** 2).mean()
    return total


def jacobian_det(disp: torch.Tensor) -> torch.Tensor:
    """det(I + grad disp) (B, *S') by central differences on the interior (S' = S - 2)."""
    ndim = disp.dim() - 2
    inner = [slice(1, -1)] * ndim
    grads = []
    for j in range(ndim):
        lo = [slice(1, -1)] * ndim
        hi = [slice(1, -1)] * ndim
        lo[j], hi[j] = slice(0, -2), slice(2, None)
        grads.append(
            (disp[(slice(None), slice(None), *hi)] - disp[(slice(None), slice(None), *lo)]) / 2
        )
    del inner
    jac = [[grads[j][:, i] + (1.0 if i == j else 0.0) for j in range(ndim)] for i in range(ndim)]
    if ndim == 2:
        return jac[0][0] * jac[1][1] - jac[0][1] * jac[1][0]
    return (
        jac[0][0] * (jac[1][1] * jac[2][2] - jac[1][2] * jac[2][1])
        - jac[0][1] * (jac[1][0] * jac[2][2] - jac[1][2] * jac[2][0])
        + jac[0][2] * (jac[1][0] * jac[2][1] - jac[1][1] * jac[2][0])
    )


def smoothing_spectrum(shape: tuple[int, ...], alpha: float, device: str) -> torch.Tensor:
    """Fourier symbol of LDDMM's operator L = (1 - alpha * Laplacian)^2 on a periodic grid
    (discrete Laplacian eigenvalues 2 cos(2 pi k / n) - 2 per axis), for ``rfftn``."""
    lap = 0.0
    for axis, n in enumerate(shape):
        if axis == len(shape) - 1:
            k = torch.arange(n // 2 + 1, device=device, dtype=torch.float32)
        else:
            k = torch.arange(n, device=device, dtype=torch.float32)
        eig = 2.0 * torch.cos(2.0 * math.pi * k / n) - 2.0
        view = [1] * len(shape)
        view[axis] = -1
        lap = lap + eig.reshape(view)
    return (1.0 - alpha * lap) ** 2


def apply_spectrum(field: torch.Tensor, symbol: torch.Tensor) -> torch.Tensor:
    """Multiply ``field`` (B, C, *S) by ``symbol`` in the Fourier domain (periodic)."""
    dims = tuple(range(2, field.dim()))
    spec = torch.fft.rfftn(field, dim=dims)
    return torch.fft.irfftn(spec * symbol, s=field.shape[2:], dim=dims)
