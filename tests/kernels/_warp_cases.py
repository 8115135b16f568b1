"""Shared inputs and tolerances for the warp / compose / svf_exp tests and benchmarks."""

from __future__ import annotations

import pytest
import torch

# Small odd shapes for the interpreter: (B, C, *spatial). Batch and channels > 1, sizes
# that share no factor with the block size, and a size-1 axis.
SHAPES_2D = [(1, 1, 7, 9), (2, 3, 7, 9), (3, 2, 1, 11)]
SHAPES_3D = [(1, 1, 5, 6, 7), (2, 3, 5, 6, 7), (2, 2, 1, 4, 3)]
SHAPES = SHAPES_2D + SHAPES_3D

# (dtype, atol, rtol) of Triton against the fp32 reference on the same inputs, with atol
# scaled by the largest reference value (see assert_close_scaled).
#   fp32: ~20 fp32 operations per output; the reference's normalise/un-normalise round
#         trip also moves coordinates by up to ~n * 2^-24 (~1e-6 at n = 11). 2e-5 holds.
#   fp16: the kernels compute in fp32 and round once on store: 2^-11 ~ 4.9e-4 relative,
#         plus the same rounding of each gradient; 4e-3 leaves 8x margin.
#   bf16: 8 significant bits, 2^-8 ~ 3.9e-3 relative on store; 3e-2 leaves 8x margin.
DTYPE_TOLERANCES = [
    pytest.param(torch.float32, 2e-5, 2e-5, id="fp32"),
    pytest.param(torch.float16, 4e-3, 4e-3, id="fp16"),
    pytest.param(torch.bfloat16, 3e-2, 3e-2, id="bf16"),
]


def assert_close_scaled(
    actual: torch.Tensor, expected: torch.Tensor, atol: float, rtol: float, what: str = ""
) -> None:
    """assert_close in fp32 with atol relative to the largest |expected| (NaNs must match)."""
    expected = expected.float()
    finite = expected[torch.isfinite(expected)]
    scale = max(1.0, finite.abs().max().item()) if finite.numel() else 1.0
    torch.testing.assert_close(
        actual.float(),
        expected,
        atol=atol * scale,
        rtol=rtol,
        equal_nan=True,
        msg=lambda detail: f"{what}: {detail}",
    )


def random_disp(
    image_shape: tuple[int, ...], scale: float = 2.5, seed: int = 0, dtype=torch.float32
) -> torch.Tensor:
    """Uniform displacement in [-scale, scale] voxels: at 2.5 on 5-11 voxel axes about a
    third of the samples land outside the volume or on its border corners.

    No sample lands within 1/32 voxel of a grid plane: linear interpolation has a kink
    there, its derivative is one-sided, and the reference's normalise/un-normalise round
    trip may pick the other side (bf16 rounds ~1% of such values onto integers). The
    exact-integer cases have their own analytic tests.
    """
    gen = torch.Generator().manual_seed(seed)
    batch, _, *spatial = image_shape
    disp = ((torch.rand((batch, len(spatial), *spatial), generator=gen) * 2 - 1) * scale).to(dtype)
    frac = disp.float() - disp.float().floor()
    near_plane = (frac < 1 / 32) | (frac > 31 / 32)
    return torch.where(near_plane, (disp.float() + 0.1).to(dtype), disp)


def random_image(shape: tuple[int, ...], seed: int = 1, dtype=torch.float32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen).to(dtype)


def shape_id(shape: tuple[int, ...]) -> str:
    """A test id for a shape: 2x3x7x9."""
    return "x".join(map(str, shape))


def grads(out: torch.Tensor, inputs: tuple[torch.Tensor, ...], seed: int = 2):
    """Gradients of ``out`` against ``inputs`` for a seeded random upstream gradient,
    drawn on the CPU (the same numbers on every device) and cast to ``out``'s dtype and
    device."""
    grad_out = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed))
    return torch.autograd.grad(out, inputs, grad_out.to(out))
