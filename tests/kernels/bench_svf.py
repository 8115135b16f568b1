"""Benchmarks of svf_exp (7-step scaling and squaring): torch eager, torch.compile, Triton.

    pytest tests/kernels/bench_svf.py --benchmark-enable -n 0 [-m "slow or not slow"]

GPU sizes: 3-D 160x192x224 and 80x96x112 and 2-D 256x256, batch 1, forward and
forward+backward. The eager baseline is VoxelMorph's VecInt on ``grid_sample_warp``.
Target (H100): >= 10x eager; the fused lower bound at 160x192x224 is ~0.4 ms (48
volumes of 27.5 MB, see kernels.cost.svf_exp_min_bytes; the DESIGN figure). Measured on an H200
(results/published/kernels-headline-h200): 1.66 ms at 160x192x224, 2.3x eager, 1.34x
torch.compile; forward+backward 1.89x eager: both targets missed. Each case also runs
with the velocity's channels interleaved (channels_last), which the Triton kernels
take as it is (voxel stride 3: a corner's 3 channels in one sector); not yet timed.
"""

from __future__ import annotations

import functools
import math

import pytest
import torch

from kernels.cost import svf_exp_min_bytes
from kernels.reference import identity_grid, smooth_field, vecint
from kernels.svf import svf_exp
from kernels.warp import interleave_channels
from tests.kernels._warp_bench import BACKEND_PARAMS, DEVICE, ON_GPU, compiled, run_case

STEPS = 7
CASES = {
    "3d-160x192x224": (160, 192, 224),
    "3d-80x96x112": (80, 96, 112),
    "2d-256x256": (256, 256),
}
CPU_SIZES = {"3d-160x192x224": (6, 7, 8), "3d-80x96x112": (5, 6, 7), "2d-256x256": (12, 13)}


@pytest.mark.parametrize("layout", ["planar", "channels_last"])
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
@pytest.mark.parametrize("passes", ["fwd", "fwd+bwd"])
@pytest.mark.parametrize("case", list(CASES))
def test_bench_svf_exp(benchmark, case, passes, backend, layout):
    backward = passes == "fwd+bwd"
    spatial = CASES[case] if ON_GPU else CPU_SIZES[case]
    velocity = smooth_field(1, spatial, amplitude=5.0, seed=2).to(DEVICE)
    if layout == "channels_last":  # every backend's input; Triton then runs interleaved
        velocity = interleave_channels(velocity)
    velocity.requires_grad_(backward)
    grid = identity_grid(spatial, DEVICE)
    if backend == "triton":
        op = svf_exp
    elif backend == "eager":
        op = functools.partial(vecint, grid=grid)
    else:
        op = functools.partial(compiled(vecint), grid=grid)

    if backward:
        grad_out = torch.randn_like(velocity)

        def fn():
            return torch.autograd.grad(op(velocity, STEPS), (velocity,), grad_out)
    else:

        def fn():
            return op(velocity, STEPS)

    result = fn()
    assert all(torch.isfinite(t).all() for t in (result if backward else (result,)))
    ndim = len(spatial)
    run_case(
        benchmark,
        fn,
        group=f"svf_exp {case} steps={STEPS} {passes} {layout}",
        bytes_moved=svf_exp_min_bytes(math.prod(spatial), ndim, STEPS, backward),
        info={"shape": [1, ndim, *spatial], "backend": backend, "passes": passes, "layout": layout},
    )
