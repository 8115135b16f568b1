"""Benchmarks of warp: torch eager (VoxelMorph-style grid_sample), torch.compile, Triton.

    pytest tests/kernels/bench_warp.py --benchmark-enable -n 0 [-m "slow or not slow"]

The eager baseline is VoxelMorph's SpatialTransformer (``grid_sample_warp``, identity
grid precomputed as its buffer), not the NaN-checking ``warp_reference``.
GPU sizes are the issue's: 2-D 256x256 at batch 1/16/64, 3-D 160x192x224 and
80x96x112 at batch 1/2, channels 1 and 3, forward and forward+backward. Each row of a
benchmark group is one backend; on GPU ``extra_info`` holds the L2-flushed CUDA-event
timing (``cuda_events_l2_flushed``, seconds; see _gpu_timing.py), the achieved bandwidth
of its median under the minimum-traffic model below and its fraction of the copy
bandwidth. Targets (H100): forward >= 80% of copy bandwidth, >= 6x eager, >= 2x
torch.compile; forward+backward >= 5x eager. Measured on an H200
(results/published/kernels-headline-h200): 3-D forward 5.5x eager, 2.5x compile, 1.73
TB/s (36% of peak); forward+backward 1.40x eager, 0.88x compile: the bandwidth and
backward targets are missed.
"""

from __future__ import annotations

import functools
import math

import pytest
import torch

from kernels.cost import warp_min_bytes
from kernels.reference import grid_sample_warp, identity_grid, smooth_field
from kernels.warp import warp
from tests.kernels._warp_bench import BACKEND_PARAMS, DEVICE, ON_GPU, compiled, run_case

# case id -> (batch, spatial) on GPU, and the interpreter-sized stand-in on CPU.
CASES = {
    "2d-256x256-b1": ((1, (256, 256)), (1, (12, 13))),
    "2d-256x256-b16": ((16, (256, 256)), (2, (12, 13))),
    "2d-256x256-b64": ((64, (256, 256)), (3, (12, 13))),
    "3d-160x192x224-b1": ((1, (160, 192, 224)), (1, (6, 7, 8))),
    "3d-160x192x224-b2": ((2, (160, 192, 224)), (2, (6, 7, 8))),
    "3d-80x96x112-b1": ((1, (80, 96, 112)), (1, (5, 6, 7))),
    "3d-80x96x112-b2": ((2, (80, 96, 112)), (2, (5, 6, 7))),
}


def _inputs(case: str, channels: int, requires_grad: bool):
    batch, spatial = CASES[case][0 if ON_GPU else 1]
    gen = torch.Generator().manual_seed(0)
    image = torch.randn((batch, channels, *spatial), generator=gen).to(DEVICE)
    # A smooth field of up to 5 voxels, as a registration produces.
    disp = smooth_field(batch, spatial, amplitude=5.0, seed=1).to(DEVICE)
    image.requires_grad_(requires_grad)
    disp.requires_grad_(requires_grad)
    return image, disp


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
@pytest.mark.parametrize("passes", ["fwd", "fwd+bwd"])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("case", list(CASES))
def test_bench_warp(benchmark, case, channels, passes, backend):
    backward = passes == "fwd+bwd"
    image, disp = _inputs(case, channels, requires_grad=backward)
    # Eager baseline: VoxelMorph's SpatialTransformer, identity grid kept as a buffer.
    grid = identity_grid(tuple(image.shape[2:]), DEVICE)
    if backend == "triton":
        op = warp
    elif backend == "eager":
        op = functools.partial(grid_sample_warp, grid=grid)
    else:
        op = functools.partial(compiled(grid_sample_warp), grid=grid)

    if backward:
        grad_out = torch.randn_like(image)

        def fn():
            return torch.autograd.grad(op(image, disp), (image, disp), grad_out)
    else:

        def fn():
            return op(image, disp)

    result = fn()  # also the warm-up (and compilation) outside the timing
    assert all(torch.isfinite(t).all() for t in (result if backward else (result,)))
    ndim = disp.shape[1]
    batch_voxels = image.shape[0] * math.prod(image.shape[2:])
    run_case(
        benchmark,
        fn,
        group=f"warp {case} C={channels} {passes}",
        bytes_moved=warp_min_bytes(batch_voxels, channels, ndim, backward),
        info={"shape": list(image.shape), "backend": backend, "passes": passes},
    )
