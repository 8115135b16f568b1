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
