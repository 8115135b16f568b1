"""The one GPU timer of the kernel benchmarks (bench_warp, bench_svf, bench_sine_mlp).

It is the harness's protocol, ``bench.timing.time_callable`` with ``flush_l2=True``:
warm-up calls untimed, then a pair of CUDA events around each call with a 256 MB L2
flush before it (outside the pair) and one synchronisation at the end, summarised by
``bench.timing.summarize`` (median, IQR, min, n; in seconds). A benchmark row and a
suite cell (``CellContext.time``) are thus measured the same way.

bench_warp and bench_svf used ``triton.testing.do_bench`` before: the same events and
flush, but a repeat count of its own (as many calls as fit in 100 ms) and milliseconds,
a second protocol beside the harness's; the repeat count is now the caller's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.timing import summarize, time_callable


def time_cuda(fn: Callable[[], Any], *, repeats: int, warmup: int) -> dict[str, float]:
    """Time ``fn`` on the current CUDA device (see the module docstring).

    Returns ``summarize``'s statistics of the ``repeats`` samples, in seconds.
    """
    samples, _ = time_callable(fn, device="cuda", repeats=repeats, warmup=warmup, flush_l2=True)
    return summarize(samples)
