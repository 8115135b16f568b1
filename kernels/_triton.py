"""Whether Triton can run here, and how: compiled on a GPU, or interpreted on CPU."""

from __future__ import annotations

import functools
import importlib.util
import os

BACKENDS = ("triton", "torch")


@functools.cache
def triton_available() -> bool:
    """True when triton imports (it needs Linux); kernels then run on CUDA, or on
    CPU under ``TRITON_INTERPRET=1``."""
    try:
        return importlib.util.find_spec("triton") is not None
    except (ImportError, ValueError):  # e.g. blocked with sys.modules["triton"] = None
        return False


def interpreting() -> bool:
    """True when Triton kernels run in the CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def triton_can_run(device_type: str) -> bool:
    """Can a Triton kernel run on tensors of this device type right now?"""
    if not triton_available():
        return False
    if device_type == "cuda":
        return True
    return device_type == "cpu" and interpreting()


def check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f'Invalid backend "{backend}". Must be one of {BACKENDS}')
