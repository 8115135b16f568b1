"""The compiled Triton kernels on a real GPU, against the torch reference on the same device.

The rest of tests/kernels runs the kernels under the interpreter at interpreter sizes
(CPU tensors). Here the same comparisons run compiled, at sizes that span many
programs and leave partial blocks on every axis. All tests are marked ``gpu`` and skip
without CUDA (tests/conftest.py).

Tolerances: as DTYPE_TOLERANCES (tests/kernels/_warp_cases.py), except fp32, where the
reference's normalise/un-normalise round trip moves a coordinate by up to ~n * 2^-24:
at n = 131 that is ~8e-6 voxel, 12x the interpreter sizes' ~7e-7, times an image slope
of up to ~4 (randn neighbours). 1e-4 (scaled by the largest value) holds that with margin.
"""

from __future__ import annotations

import pytest
import torch

from kernels.reference import (
    compose_reference,
    sine_mlp_reference,
    siren_parameters,
    svf_exp_reference,
    warp_reference,
)
from kernels.sine_mlp import sine_mlp
from kernels.svf import compose, svf_exp
from kernels.warp import warp
from tests.kernels._warp_cases import (
    assert_close_scaled,
    grads,
    random_disp,
    random_image,
    shape_id,
)

pytestmark = pytest.mark.gpu

FP32 = (1e-4, 1e-4)
HALF = {torch.float16: (4e-3, 4e-3), torch.bfloat16: (3e-2, 3e-2)}
GPU_SHAPES = [(2, 3, 67, 131), (1, 1, 1, 200), (2, 2, 19, 37, 45), (1, 1, 33, 1, 70)]


def _cuda(t: torch.Tensor) -> torch.Tensor:
    return t.cuda().requires_grad_()


@pytest.mark.parametrize("padding", ["zeros", "border"])
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("shape", GPU_SHAPES, ids=shape_id)
def test_warp_forward_and_backward_on_gpu(shape, mode, padding):
    image = _cuda(random_image(shape))
    disp = _cuda(random_disp(shape, scale=6.0))
    out = warp(image, disp, mode=mode, padding=padding)
    ref = warp_reference(image, disp, mode=mode, padding=padding)
    assert_close_scaled(out, ref, *FP32, "forward")
    for got, want, what in zip(grads(out, (image, disp)), grads(ref, (image, disp)), "ID"):
        assert_close_scaled(got, want, *FP32, f"grad {what}")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("shape", [GPU_SHAPES[0], GPU_SHAPES[2]], ids=shape_id)
def test_warp_half_precision_on_gpu(shape, dtype):
    image = _cuda(random_image(shape, dtype=dtype))
    disp = _cuda(random_disp(shape, dtype=dtype))
    out = warp(image, disp)
    assert out.dtype == dtype
    image32 = image.detach().float().requires_grad_()
    disp32 = disp.detach().float().requires_grad_()
    ref = warp_reference(image32, disp32)
    assert_close_scaled(out, ref, *HALF[dtype], "forward")
    got = grads(out, (image, disp), seed=3)
    want = grads(ref, (image32, disp32), seed=3)
    for g, w, what in zip(got, want, "ID"):
        assert g.dtype == dtype
        assert_close_scaled(g, w, *HALF[dtype], f"grad {what}")


@pytest.mark.parametrize("shape", [(2, 2, 67, 131), (1, 3, 19, 37, 45)], ids=shape_id)
def test_compose_and_svf_exp_on_gpu(shape):
    a = _cuda(random_disp(shape, scale=3.0, seed=4))
    b = _cuda(random_disp(shape, scale=3.0, seed=5))
    out, ref = compose(a, b), compose_reference(a, b)
    assert_close_scaled(out, ref, *FP32, "compose")
    for got, want in zip(grads(out, (a, b)), grads(ref, (a, b))):
        assert_close_scaled(got, want, *FP32, "compose grad")
    # 7 squarings: each magnifies earlier errors by at most 1 + |grad u| (~2), so 4x.
    velocity = _cuda(random_disp(shape, scale=4.0, seed=3))
    out, ref = svf_exp(velocity, steps=7), svf_exp_reference(velocity, steps=7)
    assert_close_scaled(out, ref, 4 * FP32[0], 4 * FP32[1], "svf_exp")
    (got,) = grads(out, (velocity,))
    (want,) = grads(ref, (velocity,))
    assert_close_scaled(got, want, 4 * FP32[0], 4 * FP32[1], "svf_exp grad")


def test_warp_2d_headline_size_on_gpu():
    """The kernels-headline 2-D case (16 x 256 x 256) and the 3-D MNI size, forward only
    against the reference: the benchmark's numbers are of a kernel that is right there."""
    for shape in [(16, 1, 256, 256), (1, 1, 160, 192, 224)]:
        image = random_image(shape).cuda()
        disp = random_disp(shape, scale=5.0).cuda()
        assert_close_scaled(warp(image, disp), warp_reference(image, disp), *FP32, shape_id(shape))


@pytest.mark.parametrize("width", [64, 128, 256])
def test_sine_mlp_fp32_widths_on_gpu(width):
    """fp32 forward of every kernel width against float64, 2^18 points (many programs)."""
    g = torch.Generator().manual_seed(width)
    weights, biases = siren_parameters(2, [width] * 3, 3, generator=g, device="cuda")
    x = (torch.rand(2**18, 2, generator=g) * 2 - 1).cuda()
    y = sine_mlp(x, weights, biases, precision="fp32")
    w64, b64 = [w.double() for w in weights], [b.double() for b in biases]
    y64 = sine_mlp_reference(x.double(), w64, b64)
    assert (y.double() - y64).abs().max().item() <= 1e-5  # as test_fp32_forward_matches_torch
