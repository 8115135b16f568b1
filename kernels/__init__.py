"""Triton kernels for dynbench's hot paths, each beside its pure-torch reference.

    from kernels import warp, compose, svf_exp, sine_mlp

This package knows nothing of plugins. Every public function takes
``backend="triton" | "torch"``; ``"torch"`` is the reference in
``kernels.reference`` and the fallback where Triton is not available.
Submodules are imported lazily so that ``import kernels`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "warp": "kernels.warp",
    "compose": "kernels.svf",
    "svf_exp": "kernels.svf",
    "sine_mlp": "kernels.sine_mlp",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kernels' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
