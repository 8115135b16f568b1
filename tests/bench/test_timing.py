"""The timing protocol: warm-up untimed, repeats counted, statistics, peak memory."""

from __future__ import annotations

import numpy as np
import pytest

from bench.timing import PeakMemory, summarize, time_callable


def test_warmup_calls_are_not_timed():
    calls = []
    samples, result = time_callable(
        lambda: calls.append(1) or len(calls), device="cpu", repeats=4, warmup=2
    )
    assert len(calls) == 6 and len(samples) == 4
    assert result == 6  # the last call's result


def test_summary_matches_numpy():
    data = [0.3, 0.1, 0.2, 0.5, 0.4]
    s = summarize(data)
    assert s["median"] == pytest.approx(np.median(data))
    assert s["iqr"] == pytest.approx(np.percentile(data, 75) - np.percentile(data, 25))
    assert (s["min"], s["n"]) == (0.1, 5)


def test_repeats_must_be_positive():
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        time_callable(lambda: None, device="cpu", repeats=0)


def test_cpu_peak_memory_sees_a_200_mib_allocation():
    with PeakMemory("cpu") as mem:
        block = np.ones(200 * 2**20 // 8)  # touched pages count toward RSS
        del block
    # The high-water mark is reset at entry where Linux allows it; either way the
    # 200 MiB block must show, and nothing near 1 GiB was allocated.
    assert 190 * 2**20 <= mem.peak_bytes < 1024 * 2**20


def test_cpu_peak_of_a_block_does_not_depend_on_what_ran_before():
    """Freed memory the C allocator keeps made a block's second measurement read
    0-60 % of its first (issue 13); trimmed first, repeats agree."""
    import sys

    import torch

    from bench.timing import PeakMemory

    if not sys.platform.startswith("linux"):
        pytest.skip("resident-set high-water mark per region: Linux")
    weights = [torch.randn(256, 256) for _ in range(4)]

    def block():
        x = torch.randn(8192, 256)
        for m in weights:
            x = torch.tanh(x @ m)  # 4 activations of 8 MiB kept alive below
        return x

    peaks = []
    for _ in range(4):
        churn = [torch.randn(512, 1024) for _ in range(40)]  # 80 MiB freed before
        del churn
        with PeakMemory("cpu") as mem:
            out = block()
        del out
        peaks.append(mem.peak_bytes)
    # At least the live activations (~8 MiB each; the last is returned), never the 0 the
    # untrimmed allocator gave; repeats within 2x of each other (measured 24-32 MiB
    # after a thousand other tests in the process: a fragmented heap keeps some pages).
    assert min(peaks) > 8 * 2**20, peaks
    assert max(peaks[1:]) < 2 * min(peaks[1:]), peaks
