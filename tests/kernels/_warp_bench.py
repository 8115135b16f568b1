"""Shared machinery of bench_warp.py and bench_svf.py.

On CUDA each case is timed by ``tests.kernels._gpu_timing.time_cuda`` (the harness's
protocol: CUDA events, L2 flushed by a 256 MB write before every call, median of
``REPEATS``) and the statistics land in the pytest-benchmark row's ``extra_info`` with
the achieved bandwidth, next to the bandwidth of a plain device copy measured the same
way; pytest-benchmark's own wall clock timing of the synchronised call is kept as well.
On CPU the sizes shrink to a few hundred voxels so that the interpreter runs each case
in well under a second.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest
import torch

from tests.kernels._gpu_timing import time_cuda

ON_GPU = torch.cuda.is_available()
DEVICE = "cuda" if ON_GPU else "cpu"
BACKENDS = ["eager", "compile", "triton"]

# torch.compile on CPU builds C++ through inductor: tens of seconds per shape and pass,
# far past the few seconds a smoke test may take, and not the comparison the issue
# asks for (the GPU one). On GPU the compile cases are marked slow (~30 s each).
COMPILE_CASE = pytest.param(
    "compile",
    marks=[
        pytest.mark.slow,
        pytest.mark.skipif(
            not ON_GPU,
            reason="torch.compile on CPU takes tens of seconds per shape; GPU comparison only",
        ),
    ],
)
BACKEND_PARAMS = ["eager", COMPILE_CASE, "triton"]

# Timed calls per case, after WARMUP untimed ones. The L2 flush before each call makes
# the samples independent; do_bench, used before, took as many as fit in 100 ms.
REPEATS, WARMUP = 50, 3


@functools.cache
def copy_bandwidth_gbs() -> float:
    """Device-to-device copy bandwidth (read + write) of 1 GiB, in GB/s."""
    src = torch.empty(2**28, dtype=torch.float32, device="cuda")
    dst = torch.empty_like(src)
    stats = time_cuda(lambda: dst.copy_(src), repeats=REPEATS, warmup=WARMUP)
    return 2 * src.numel() * 4 / stats["median"] / 1e9


def run_case(
    benchmark,
    fn: Callable[[], object],
    group: str,
    bytes_moved: int,
    info: dict,
) -> None:
    """Time ``fn`` (see the module docstring) and record what was measured."""
    benchmark.group = group
    benchmark.extra_info.update(info)
    benchmark.extra_info["device"] = (
        torch.cuda.get_device_name() if ON_GPU else "cpu (Triton interpreter)"
    )
    benchmark.extra_info["min_bytes_moved"] = bytes_moved
    if ON_GPU:
        stats = time_cuda(fn, repeats=REPEATS, warmup=WARMUP)
        gbs = bytes_moved / stats["median"] / 1e9
        benchmark.extra_info["cuda_events_l2_flushed"] = stats
        benchmark.extra_info["achieved_gbs"] = gbs
        benchmark.extra_info["fraction_of_copy_bandwidth"] = gbs / copy_bandwidth_gbs()

        def synced() -> None:
            fn()
            torch.cuda.synchronize()

        benchmark(synced)
    else:
        benchmark(fn)


def compiled(fn: Callable) -> Callable:
    """torch.compile once per reference function (the wrapper caches per shape)."""
    return _compile_cache(fn)


@functools.cache
def _compile_cache(fn: Callable) -> Callable:
    return torch.compile(fn, dynamic=False)
