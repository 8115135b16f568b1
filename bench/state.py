"""Process-wide state a cell may change, put back after every cell.

Workers are reused from cell to cell, so a cell that sets float64 as torch's default
dtype, turns off grad mode or changes directory would otherwise change the cells
after it (a seeded draw read 0.4963 alone and 0.9701 after such a cell). What is
restored after each cell:

- torch: default dtype, grad mode, anomaly detection, deterministic algorithms
  (and its warn-only flag), float32 matmul precision, cuDNN's benchmark /
  deterministic / enabled / allow_tf32 flags, CUDA matmul allow_tf32 and the
  reduced-precision reduction flags, intra-op threads (set per cell already);
- the working directory and ``os.environ`` (added, changed and removed keys);
- matplotlib's ``rcParams`` when matplotlib is loaded.

What cannot be undone from outside — a monkeypatched module, a changed class, a
thread left running, memory a library keeps — is why a suite can ask for
``fresh_worker: true`` (a new worker process for each cell of that entry).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any


def _torch_flags() -> dict[str, Any]:
    import torch

    cuda_matmul = torch.backends.cuda.matmul
    return {
        "default_dtype": torch.get_default_dtype(),
        "grad_enabled": torch.is_grad_enabled(),
        "anomaly": torch.is_anomaly_enabled(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "deterministic_warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "matmul_precision": torch.get_float32_matmul_precision(),
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_enabled": torch.backends.cudnn.enabled,
        "cudnn_tf32": torch.backends.cudnn.allow_tf32,
        "cuda_matmul_tf32": cuda_matmul.allow_tf32,
        "fp16_reduction": cuda_matmul.allow_fp16_reduced_precision_reduction,
        "bf16_reduction": cuda_matmul.allow_bf16_reduced_precision_reduction,
    }


def _set_torch_flags(flags: dict[str, Any]) -> None:
    import torch

    torch.set_default_dtype(flags["default_dtype"])
    torch.set_grad_enabled(flags["grad_enabled"])
    torch.autograd.set_detect_anomaly(flags["anomaly"])
    torch.use_deterministic_algorithms(
        flags["deterministic"], warn_only=flags["deterministic_warn_only"]
    )
    torch.set_float32_matmul_precision(flags["matmul_precision"])
    torch.backends.cudnn.benchmark = flags["cudnn_benchmark"]
    torch.backends.cudnn.deterministic = flags["cudnn_deterministic"]
    torch.backends.cudnn.enabled = flags["cudnn_enabled"]
    torch.backends.cudnn.allow_tf32 = flags["cudnn_tf32"]
    cuda_matmul = torch.backends.cuda.matmul
    cuda_matmul.allow_tf32 = flags["cuda_matmul_tf32"]
    cuda_matmul.allow_fp16_reduced_precision_reduction = flags["fp16_reduction"]
    cuda_matmul.allow_bf16_reduced_precision_reduction = flags["bf16_reduction"]


@dataclass
class ProcessState:
    """A snapshot of the restorable state; ``restore()`` puts it back."""

    cwd: str = ""
    environ: dict[str, str] = field(default_factory=dict)
    torch_flags: dict[str, Any] | None = None
    rc_params: dict[str, Any] | None = None

    @classmethod
    def capture(cls) -> ProcessState:
        state = cls(cwd=os.getcwd(), environ=dict(os.environ))
        if "torch" in sys.modules:
            state.torch_flags = _torch_flags()
        if "matplotlib" in sys.modules:
            import matplotlib

            state.rc_params = dict(matplotlib.rcParams)
        return state

    def restore(self) -> list[str]:
        """Put the snapshot back; returns what differed (for tests and logs)."""
        changed = []
        try:
            if os.getcwd() != self.cwd:
                changed.append("cwd")
        except FileNotFoundError:  # the cell removed the directory it moved into
            changed.append("cwd")
        os.chdir(self.cwd)
        if dict(os.environ) != self.environ:
            changed.append("environ")
            for key in set(os.environ) - set(self.environ):
                del os.environ[key]
            for key, value in self.environ.items():
                if os.environ.get(key) != value:
                    os.environ[key] = value
        if self.torch_flags is not None:
            now = _torch_flags()
            differ = [k for k, v in self.torch_flags.items() if now[k] != v]
            if differ:
                changed.extend(f"torch.{k}" for k in differ)
                _set_torch_flags(self.torch_flags)
        if self.rc_params is not None and "matplotlib" in sys.modules:
            import warnings

            import matplotlib

            if dict(matplotlib.rcParams) != self.rc_params:
                changed.append("matplotlib.rcParams")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    matplotlib.rcParams.update(self.rc_params)
        return changed
