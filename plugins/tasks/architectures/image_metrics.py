"""Image metrics inside a mask: PSNR, MAE and SSIM (the SSIM map averaged over the mask).

SSIM follows Wang et al. 2004 with scikit-image's defaults: a 7 x 7 uniform window,
sample (co)variances (times 49/48), K1 = 0.01, K2 = 0.03, and the image extended by
half-sample symmetric reflection for the windows at its border. The window means are
computed here from an integral image (cumulative sums), not with scikit-image, which
the tests use as the independent reference. Everything is in float64.
"""

from __future__ import annotations

import numpy as np

WINDOW = 7
K1, K2 = 0.01, 0.03


def psnr(pred: np.ndarray, true: np.ndarray, mask: np.ndarray, data_range: float = 1.0) -> float:
    """10 log10(range^2 / MSE) over the voxels of ``mask`` (pooled over all of them)."""
    mse = float(np.mean((pred[mask].astype(np.float64) - true[mask]) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(data_range**2 / mse)


def mae(pred: np.ndarray, true: np.ndarray, mask: np.ndarray) -> float:
    """Mean |pred - true| over the voxels of ``mask``."""
    return float(np.abs(pred[mask].astype(np.float64) - true[mask]).mean())


def _window_mean(image: np.ndarray, size: int) -> np.ndarray:
    """Mean over the size x size window centred on each pixel, the image extended by
    half-sample symmetric reflection (``np.pad`` mode ``symmetric``)."""
    r = size // 2
    padded = np.pad(image, r, mode="symmetric")
    integral = np.zeros((padded.shape[0] + 1, padded.shape[1] + 1))
    integral[1:, 1:] = padded.cumsum(axis=0).cumsum(axis=1)
    h, w = image.shape
    total = (
        integral[size : size + h, size : size + w]
        - integral[:h, size : size + w]
        - integral[size : size + h, :w]
        + integral[:h, :w]
    )
    return total / size**2


def ssim_map(pred: np.ndarray, true: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """The SSIM of each pixel of two 2-D images (``WINDOW`` x ``WINDOW`` windows)."""
    if pred.shape != true.shape or pred.ndim != 2:
        raise ValueError(
            f"ssim_map takes two 2-D images of one shape, got {pred.shape}, {true.shape}"
        )
    if min(pred.shape) < WINDOW:
        raise ValueError(
            f"ssim_map needs images of at least {WINDOW} pixels a side, got {pred.shape}"
        )
    a, b = pred.astype(np.float64), true.astype(np.float64)
    n = WINDOW**2
    unbiased = n / (n - 1.0)
    ua, ub = _window_mean(a, WINDOW), _window_mean(b, WINDOW)
    va = unbiased * (_window_mean(a * a, WINDOW) - ua * ua)
    vb = unbiased * (_window_mean(b * b, WINDOW) - ub * ub)
    cov = unbiased * (_window_mean(a * b, WINDOW) - ua * ub)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    return ((2 * ua * ub + c1) * (2 * cov + c2)) / ((ua * ua + ub * ub + c1) * (va + vb + c2))


def masked_ssim(
    pred: np.ndarray, true: np.ndarray, mask: np.ndarray, data_range: float = 1.0
) -> float:
    """SSIM averaged over the voxels of ``mask``, pooled over a stack of slices
    ``(N, H, W)`` or ``(N, 1, H, W)`` (each slice's map computed on the whole slice)."""
    pred, true, mask = (np.asarray(v).reshape(-1, *np.shape(v)[-2:]) for v in (pred, true, mask))
    values = [ssim_map(p, t, data_range)[m] for p, t, m in zip(pred, true, mask)]
    return float(np.concatenate(values).mean())
