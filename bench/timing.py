"""Timing and peak-memory protocol, shared by every task.

Only the callable handed in is timed: set-up, data making and warm-up calls
(which absorb JIT and compilation) stay outside the samples.

- CPU: ``time.perf_counter`` around each call.
- CUDA: a pair of CUDA events around each call, one synchronisation at the end,
  and optionally an L2 flush (writing a 256 MB buffer, larger than any current
  GPU's L2) before each call, outside the event pair, so that kernels are
  measured from DRAM as they would run inside a model (Triton's do_bench does
  the same).
"""

from __future__ import annotations

import functools
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

_L2_FLUSH_BYTES = 256 * 1024 * 1024
_flush_buffers: dict[str, Any] = {}


def is_cuda(device: str) -> bool:
    return str(device).startswith("cuda")


def synchronize(device: str) -> None:
    if is_cuda(device):
        import torch

        torch.cuda.synchronize(device)


def flush_buffer(device: str) -> Any:
    """The L2-flush buffer of a CUDA device, allocated once per process.

    ``CellContext.time`` allocates it before its memory region opens, so the 256 MB are
    not counted in the first timed cell's ``mem.*``.
    """
    import torch

    buf = _flush_buffers.get(device)
    if buf is None:
        buf = torch.empty(_L2_FLUSH_BYTES // 4, dtype=torch.int32, device=device)
        _flush_buffers[device] = buf
    return buf


def _flush_l2(device: str) -> None:
    flush_buffer(device).zero_()


def time_callable(
    fn: Callable[[], Any],
    *,
    device: str,
    repeats: int,
    warmup: int = 1,
    flush_l2: bool = False,
) -> tuple[list[float], Any]:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times timed.

    Returns the samples in seconds and the result of the last call.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    result = None
    for _ in range(warmup):
        result = fn()
    synchronize(device)
    if is_cuda(device):
        import torch

        starts = [torch.cuda.Event(enable_timing=True) for _ in range(repeats)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(repeats)]
        for start, end in zip(starts, ends):
            if flush_l2:
                _flush_l2(device)
            start.record()
            result = fn()
            end.record()
        torch.cuda.synchronize(device)
        samples = [s.elapsed_time(e) / 1e3 for s, e in zip(starts, ends)]
    else:
        samples = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            result = fn()
            samples.append(time.perf_counter() - t0)
    return samples, result


def summarize(samples: list[float]) -> dict[str, float]:
    """Median, inter-quartile range, min and count of timing samples."""
    arr = np.asarray(samples, dtype=float)
    q1, median, q3 = np.percentile(arr, [25, 50, 75])
    return {"median": float(median), "iqr": float(q3 - q1), "min": float(arr.min()), "n": len(arr)}


class PeakMemory:
    """Peak memory of a region, above what was in use when it started.

    CUDA: ``torch.cuda.max_memory_allocated``. CPU: the process resident-set
    high-water mark (``VmHWM``), reset at the start of the region through
    ``/proc/self/clear_refs`` where Linux allows it; elsewhere the lifetime
    ``ru_maxrss``, which can only overstate.
    """

    def __init__(self, device: str) -> None:
        self.device = device
        self.peak_bytes = 0
        self._base = 0

    def __enter__(self) -> PeakMemory:
        if is_cuda(self.device):
            import torch

            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        else:
            _reset_hwm()
            self._base = _rss_bytes()
        return self

    def __exit__(self, *exc: object) -> None:
        if is_cuda(self.device):
            import torch

            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        else:
            peak = _hwm_bytes()
        self.peak_bytes = max(0, int(peak - self._base))


_PROC_STATUS = Path("/proc/self/status")


def _status_kb(field: str) -> int | None:
    try:
        for line in _PROC_STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_hwm() -> None:
    # Hand memory that was freed but kept by the C allocator back to the system first:
    # otherwise a block re-uses those resident pages and its peak reads 0 (issue 13:
    # the same forward+backward read 510 MiB in a fresh worker, 0-301 MiB later).
    _malloc_trim()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


@functools.cache
def _libc() -> Any:
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def _malloc_trim() -> None:
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def _rss_bytes() -> int:
    kb = _status_kb("VmRSS")
    return 0 if kb is None else kb * 1024


def _hwm_bytes() -> int:
    kb = _status_kb("VmHWM")
    if kb is None:
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb * 1024
