"""The fields tasks' measuring tools against independent references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plugins.tasks.fields.common import metric_suffix, pixel_grid, psnr
from plugins.tasks.fields.image import field_derivatives, laplacian, lowpass, sobel_gradient
from plugins.tasks.fields.volume import _subsample, _world, iou


def test_psnr_matches_scikit_image():
    from skimage.metrics import peak_signal_noise_ratio

    rng = np.random.default_rng(0)
    a = rng.uniform(size=(16, 16))
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1)
    # same formula in float64: agreement to rounding
    assert psnr(b, a) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=1.0), abs=1e-9)


def test_pixel_grid_centres_nest_under_4x_coarsening():
    fine = pixel_grid((8, 8)).reshape(8, 8, 2).numpy()
    coarse = pixel_grid((2, 2)).reshape(2, 2, 2).numpy()
    # the centre of each 4x4 block of fine pixels is the coarse pixel's centre (exact
    # in binary: multiples of 1/8)
    blocks = fine.reshape(2, 4, 2, 4, 2).mean(axis=(1, 3))
    np.testing.assert_array_equal(blocks, coarse)
    assert fine[0, 0].tolist() == [-0.875, -0.875] and fine[0, 1].tolist() == [-0.875, -0.625]


def _smooth_image(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """I = 0.5 + 0.25 sin(pi x) cos(pi y / 2) on pixel centres; its gradient and Laplacian."""
    g = pixel_grid((n, n)).double().numpy().reshape(n, n, 2)
    x, y = g[..., 0], g[..., 1]
    img = 0.5 + 0.25 * np.sin(np.pi * x) * np.cos(np.pi * y / 2)
    grad = np.stack(
        [
            0.25 * np.pi * np.cos(np.pi * x) * np.cos(np.pi * y / 2),
            -0.125 * np.pi * np.sin(np.pi * x) * np.sin(np.pi * y / 2),
        ],
        -1,
    )
    lap = -(np.pi**2) * (1 + 0.25) * 0.25 * np.sin(np.pi * x) * np.cos(np.pi * y / 2)
    return img, grad, lap


def test_sobel_gradient_is_the_derivative_per_coordinate_unit():
    n = 128
    img, grad, _ = _smooth_image(n)
    got = sobel_gradient(img)
    inner = (slice(2, -2), slice(2, -2))  # the borders see scipy's reflected padding
    # Sobel is a central difference smoothed 1-2-1: error O(h^2) with h = 2/128; the
    # gradient is up to 0.79 and the error measured 1.2e-3: 0.5% of the range.
    np.testing.assert_allclose(got[inner], grad[inner], atol=4e-3)


def test_laplacian_is_per_squared_coordinate_unit():
    n = 128
    img, _, lap = _smooth_image(n)
    got = laplacian(img)
    inner = (slice(2, -2), slice(2, -2))
    # 5-point stencil, O(h^2): |lap| <= 3.1, measured error 2.6e-3
    np.testing.assert_allclose(got[inner], lap[inner], atol=1e-2)


def test_field_derivatives_against_a_known_function():
    class Known(torch.nn.Module):
        def forward(self, x):
            return (torch.sin(2 * x[:, :1]) * torch.cos(3 * x[:, 1:])).double()

    x = torch.rand(64, 2, dtype=torch.float64) * 2 - 1
    g = field_derivatives(Known(), x, 1)
    s, c = torch.sin(2 * x[:, 0]), torch.cos(3 * x[:, 1])
    exact = torch.stack([2 * torch.cos(2 * x[:, 0]) * c, -3 * s * torch.sin(3 * x[:, 1])], 1)
    torch.testing.assert_close(g, exact)  # float64 autograd: exact to rounding
    lap = field_derivatives(Known(), x, 2)
    torch.testing.assert_close(lap[:, 0], -(4 + 9) * s * c)


def test_lowpass_keeps_exactly_the_band():
    n = 64
    g = pixel_grid((n, n)).double().numpy().reshape(n, n, 2)
    # cycles per unit: 2 (kept by a 4 cut-off) and 8 (removed); on a period of 2
    low = np.cos(2 * np.pi * 2 * g[..., 0])
    high = np.cos(2 * np.pi * 8 * g[..., 1])
    np.testing.assert_allclose(lowpass(low + high, 4.0), low, atol=1e-6)


def test_subsampled_affine_maps_to_the_same_world_points():
    affine = np.array([[-2.0, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])
    data = np.arange(10 * 10 * 10).reshape(10, 10, 10)
    sub, aff = _subsample(data, affine, 3)
    assert sub[1, 2, 3] == data[3, 6, 9]
    w_sub = _world(sub.shape, aff).reshape(*sub.shape, 3)[1, 2, 3]
    w_full = _world(data.shape, affine).reshape(10, 10, 10, 3)[3, 6, 9]
    np.testing.assert_allclose(w_sub, w_full)


def test_iou():
    a = torch.tensor([1, 1, 0, 0], dtype=torch.bool)
    b = torch.tensor([1, 0, 1, 0], dtype=torch.bool)
    assert iou(a, b) == pytest.approx(1 / 3)
    assert iou(a, a) == 1.0


def test_metric_suffix():
    assert metric_suffix(30.0) == "30" and metric_suffix(32.5) == "32p5"


def test_bacon_is_supervised_at_every_output():
    from plugins.encodings.bacon import BaconField
    from plugins.tasks.fields.common import mse_loss

    torch.manual_seed(0)
    net = BaconField(width=8, depth=3).build(2, 1, resolution=32)
    x, y = torch.rand(20, 2) * 2 - 1, torch.rand(20, 1)
    expected = sum(((o - y) ** 2).mean() for o in net.outputs(x))
    torch.testing.assert_close(mse_loss(net, x, y), expected)
    plain = torch.nn.Linear(2, 1)
    torch.testing.assert_close(mse_loss(plain, x, y), ((plain(x) - y) ** 2).mean())
