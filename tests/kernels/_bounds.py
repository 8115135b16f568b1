"""Bounds checking for Triton kernels under the CPU interpreter (TRITON_INTERPRET=1).

    with checked_accesses([x, y, *weights]) as log:
        kernel[grid](x, y, ...)
    assert not log.violations

Wraps the interpreter's memory operations (loads, stores, atomics, masked or not) and
records every active lane whose bytes fall outside the storages of the given tensors:
what compute-sanitizer reports on a GPU as an out-of-bounds access. It also records the
largest magnitude of every int32 offset added to a pointer (``create_addptr``), so that a
test can show the int32 offsets do not grow with the problem size (an int32 offset that
grows with N is the usual way a kernel that is right at test sizes faults at 2^20
points: the interpreter computes it in numpy int32, which wraps just like the GPU).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class AccessLog:
    ranges: list[tuple[int, int]]
    violations: list[str] = field(default_factory=list)
    accesses: int = 0
    atomic_lanes: int = 0
    max_int32_offset: int = 0
    int64_offsets: int = 0

    def check(self, what: str, ptrs, mask) -> None:
        addresses = np.asarray(ptrs.data, dtype=np.uint64).ravel()
        if mask is not None:
            active = np.broadcast_to(np.asarray(mask.data, dtype=bool), ptrs.data.shape).ravel()
            addresses = addresses[active]
        if addresses.size == 0:
            return
        size = max(1, ptrs.get_element_ty().primitive_bitwidth // 8)
        inside = np.zeros(addresses.shape, dtype=bool)
        for lo, hi in self.ranges:
            inside |= (addresses >= lo) & (addresses + size <= hi)
        self.accesses += int(addresses.size)
        if what == "atomic":
            self.atomic_lanes += int(addresses.size)
        if not inside.all():
            bad = addresses[~inside]
            self.violations.append(
                f"{what}: {bad.size} lanes out of bounds, first at {int(bad[0]):#x}"
            )

    def allow_only(self, tensors: Sequence[torch.Tensor]) -> None:
        """Accesses from now on must fall inside these tensors' storages."""
        self.ranges = [_extent(t) for t in tensors]

    def guard(self, kernel):
        """A stand-in for ``kernel`` whose every launch allows exactly the storages of
        that launch's tensor arguments: ``monkeypatch.setattr(module, name,
        log.guard(module.name))``."""
        return _GuardedKernel(kernel, self)

    def offset(self, offset) -> None:
        data = np.asarray(offset.data)
        if data.dtype == np.int32 and data.size:
            self.max_int32_offset = max(self.max_int32_offset, int(np.abs(data).max()))
        elif data.dtype == np.int64:
            self.int64_offsets += 1


def _extent(t: torch.Tensor) -> tuple[int, int]:
    storage = t.untyped_storage()
    return storage.data_ptr(), storage.data_ptr() + storage.nbytes()


class _GuardedKernel:
    def __init__(self, kernel, log: AccessLog):
        self.kernel, self.log = kernel, log
        self.launches = 0

    def __getitem__(self, grid):
        launch = self.kernel[grid]

        def run(*args, **kwargs):
            tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
            self.log.allow_only(tensors)
            self.launches += 1
            return launch(*args, **kwargs)

        return run


@contextlib.contextmanager
def checked_accesses(tensors: Sequence[torch.Tensor] = ()) -> Iterator[AccessLog]:
    """Check every memory access of the kernels launched inside against the storages
    of ``tensors`` (all a kernel is given), or of each launch's own tensor arguments
    for kernels wrapped with ``log.guard``."""
    from triton.runtime import interpreter

    builder = interpreter.InterpreterBuilder
    log = AccessLog([_extent(t) for t in tensors])
    originals = {
        name: getattr(builder, name)
        for name in (
            "create_load",
            "create_store",
            "create_masked_load",
            "create_masked_store",
            "create_atomic_rmw",
            "create_addptr",
        )
    }

    def load(self, ptr, *args):
        log.check("load", ptr, None)
        return originals["create_load"](self, ptr, *args)

    def store(self, ptr, value, *args):
        log.check("store", ptr, None)
        return originals["create_store"](self, ptr, value, *args)

    def masked_load(self, ptrs, mask, *args):
        log.check("masked load", ptrs, mask)
        return originals["create_masked_load"](self, ptrs, mask, *args)

    def masked_store(self, ptrs, value, mask, *args):
        log.check("masked store", ptrs, mask)
        return originals["create_masked_store"](self, ptrs, value, mask, *args)

    def atomic_rmw(self, op, ptr, val, mask, *args):
        log.check("atomic", ptr, mask)
        return originals["create_atomic_rmw"](self, op, ptr, val, mask, *args)

    def addptr(self, ptr, offset):
        log.offset(offset)
        return originals["create_addptr"](self, ptr, offset)

    patched = {
        "create_load": load,
        "create_store": store,
        "create_masked_load": masked_load,
        "create_masked_store": masked_store,
        "create_atomic_rmw": atomic_rmw,
        "create_addptr": addptr,
    }
    try:
        for name, fn in patched.items():
            setattr(builder, name, fn)
        yield log
    finally:
        for name, fn in originals.items():
            setattr(builder, name, fn)
