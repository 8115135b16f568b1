"""Process-wide state a cell may change, put back after every cell.

Workers are reused from cell to cell, so a cell that sets float64 as torch's default
dtype, turns off grad mode or changes directory would otherwise change the cells
after it (a seeded draw read 0.4963 alone and 0.9701 after such a cell); one that
sets ``np.seterr(all="raise")``, ``warnings.simplefilter("error")`` or the ``meta``
default device turns the cells after it into errors, and flush-to-zero of denormals
silently changes their numbers. What is restored after each cell:

- torch: default dtype and device, grad mode, anomaly detection (and its NaN check),
  deterministic algorithms (and warn-only, fill of uninitialised memory), float32
  matmul precision and the ``fp32_precision`` settings of every backend, flush of
  denormals, warn-always, autograd multithreading, CPU and CUDA autocast (enabled,
  dtype, cache), print options, cuDNN's benchmark / benchmark_limit / deterministic /
  enabled / allow_tf32, CUDA matmul's allow_tf32 and reduced-precision flags, oneDNN's
  enabled / deterministic, opt_einsum, the scaled-dot-product-attention backends,
  the MHA fast path, intra-op threads (set per cell already);
- numpy: floating-point error handling (``seterr``, ``seterrcall``), print options;
- Python: ``warnings`` filters and ``showwarning``, the recursion limit, the umask,
  the working directory and ``os.environ`` (added, changed and removed keys);
- matplotlib's ``rcParams`` when matplotlib is loaded.

What cannot be undone from outside — a monkeypatched module, a changed class, a
thread left running, memory a library keeps — is why a suite can ask for
``fresh_worker: true`` (a new worker process for each cell of that entry).
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Setting:
    """One piece of process-wide state: how to read it and how to put it back."""

    name: str
    get: Callable[[], Any]
    set: Callable[[Any], None]


def _attribute(path: str, root: Any) -> Setting | None:
    """A setting held in an attribute (``backends.cudnn.benchmark`` under ``torch``);
    None where this version has no such attribute."""
    *parents, attr = path.split(".")
    owner = root
    for name in parents:
        owner = getattr(owner, name, None)
    try:
        getattr(owner, attr)
    except AttributeError:
        return None
    except Exception:  # noqa: BLE001 - it exists, but cannot be read in this state
        pass
    return Setting(path, lambda: getattr(owner, attr), lambda v: setattr(owner, attr, v))


@dataclass(frozen=True, eq=False)
class _Filters:
    """``warnings.filters``: the list (a cell may rebind it, as catch_warnings does)
    and what it held."""

    filters: list[Any]
    contents: tuple[Any, ...]

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, _Filters)
            and other.filters is self.filters
            and other.contents == self.contents
        )

    @classmethod
    def read(cls) -> _Filters:
        return cls(warnings.filters, tuple(warnings.filters))

    def restore(self) -> None:
        warnings.filters = self.filters
        self.filters[:] = self.contents
        mutated = getattr(warnings, "_filters_mutated", None)
        if mutated is not None:  # forget the "already shown" registries of old filters
            mutated()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _python_settings() -> list[Setting]:
    def set_showwarning(value: Any) -> None:
        warnings.showwarning = value

    return [
        Setting("warnings.filters", _Filters.read, _Filters.restore),
        Setting("warnings.showwarning", lambda: warnings.showwarning, set_showwarning),
        Setting("recursion_limit", sys.getrecursionlimit, sys.setrecursionlimit),
        Setting("umask", _umask, os.umask),
    ]


def _numpy_settings() -> list[Setting]:
    import numpy as np

    return [
        Setting("seterr", np.geterr, lambda v: np.seterr(**v)),
        Setting("seterrcall", np.geterrcall, np.seterrcall),
        Setting("printoptions", np.get_printoptions, lambda v: np.set_printoptions(**v)),
    ]


def _flush_denormal() -> bool:
    import numpy as np

    # No getter: a float32 denormal times one is zero when denormals are flushed (the
    # same CPU flags as torch's; numpy's scalar product reads them in 0.3 us, torch's
    # in 13 us).
    return bool(np.float32(1e-39) * np.float32(1.0) == 0.0)


def _default_device() -> Any:
    import torch

    return torch.get_default_device()


def _set_default_device(device: Any) -> None:
    import torch

    # cpu is the default without a device context (one would cost every factory call).
    torch.set_default_device(None if device == torch.device("cpu") else device)


def _torch_settings() -> list[Setting]:
    import torch

    functions = [
        *_torch_core_settings(),
        *_torch_autocast_settings(),
        Setting(
            "printoptions",
            lambda: dict(vars(torch._tensor_str.PRINT_OPTS)),
            lambda v: torch.set_printoptions(**v),
        ),
        *_torch_attention_settings(),
    ]
    attributes = [_attribute(path, torch) for path in _TORCH_PRECISION + _TORCH_FLAGS]
    # the fp32_precision settings first (see _TORCH_PRECISION)
    return (
        [s for s in attributes[: len(_TORCH_PRECISION)] if s]
        + functions
        + [s for s in attributes[len(_TORCH_PRECISION) :] if s]
    )


def _torch_core_settings() -> list[Setting]:
    """torch's global modes read and set through functions: dtype, device, autograd,
    determinism, matmul precision, denormals, warnings."""
    import torch

    return [
        Setting("default_dtype", torch.get_default_dtype, torch.set_default_dtype),
        Setting("default_device", _default_device, _set_default_device),
        Setting("grad_enabled", torch.is_grad_enabled, torch.set_grad_enabled),
        Setting(
            "anomaly",
            lambda: (torch.is_anomaly_enabled(), torch.is_anomaly_check_nan_enabled()),
            lambda v: torch.autograd.set_detect_anomaly(v[0], check_nan=v[1]),
        ),
        Setting(
            "deterministic",
            lambda: (
                torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled(),
            ),
            lambda v: torch.use_deterministic_algorithms(v[0], warn_only=v[1]),
        ),
        Setting(
            "matmul_precision",
            torch.get_float32_matmul_precision,
            torch.set_float32_matmul_precision,
        ),
        Setting("flush_denormal", _flush_denormal, torch.set_flush_denormal),
        Setting("warn_always", torch.is_warn_always_enabled, torch.set_warn_always),
        Setting(
            "autograd_multithreading",
            torch.autograd.is_multithreading_enabled,
            torch.autograd.set_multithreading_enabled,
        ),
    ]


def _torch_autocast_settings() -> list[Setting]:
    """Autocast's state on cpu and cuda (enabled, dtype), then its cache switch."""
    import torch

    autocast = [
        Setting(
            f"autocast.{kind}",
            lambda kind=kind: (torch.is_autocast_enabled(kind), torch.get_autocast_dtype(kind)),
            lambda v, kind=kind: (
                torch.set_autocast_enabled(kind, v[0]),
                torch.set_autocast_dtype(kind, v[1]),
            ),
        )
        for kind in ("cpu", "cuda")
    ]
    return [
        *autocast,
        Setting(
            "autocast.cache", torch.is_autocast_cache_enabled, torch.set_autocast_cache_enabled
        ),
    ]


def _torch_attention_settings() -> list[Setting]:
    """The attention kernels' switches: the scaled-dot-product backends and the
    multi-head attention fast path."""
    import torch

    cuda = torch.backends.cuda
    return [
        Setting("flash_sdp", cuda.flash_sdp_enabled, cuda.enable_flash_sdp),
        Setting("mem_efficient_sdp", cuda.mem_efficient_sdp_enabled, cuda.enable_mem_efficient_sdp),
        Setting("math_sdp", cuda.math_sdp_enabled, cuda.enable_math_sdp),
        Setting("cudnn_sdp", cuda.cudnn_sdp_enabled, cuda.enable_cudnn_sdp),
        Setting(
            "math_sdp_reduction",
            cuda.fp16_bf16_reduction_math_sdp_allowed,
            cuda.allow_fp16_bf16_reduction_math_sdp,
        ),
        Setting(
            "mha_fastpath",
            torch.backends.mha.get_fastpath_enabled,
            torch.backends.mha.set_fastpath_enabled,
        ),
    ]


# torch's settings held in attributes (paths under ``torch``; those this version lacks
# are left out). The fp32_precision settings come first: read after a cell set one of
# them, the legacy allow_tf32 flags raise ("mix of the legacy and new APIs") until it
# is back.
_TORCH_PRECISION = [
    "backends.fp32_precision",
    "backends.cuda.matmul.fp32_precision",
    "backends.cudnn.fp32_precision",
    "backends.cudnn.conv.fp32_precision",
    "backends.cudnn.rnn.fp32_precision",
    "backends.mkldnn.fp32_precision",
    "backends.mkldnn.matmul.fp32_precision",
    "backends.mkldnn.conv.fp32_precision",
    "backends.mkldnn.rnn.fp32_precision",
]
_TORCH_FLAGS = [
    "utils.deterministic.fill_uninitialized_memory",
    "backends.cudnn.benchmark",
    "backends.cudnn.benchmark_limit",
    "backends.cudnn.deterministic",
    "backends.cudnn.enabled",
    "backends.cudnn.allow_tf32",
    "backends.cuda.matmul.allow_tf32",
    "backends.cuda.matmul.allow_fp16_reduced_precision_reduction",
    "backends.cuda.matmul.allow_bf16_reduced_precision_reduction",
    "backends.cuda.matmul.allow_fp16_accumulation",
    "backends.mkldnn.enabled",
    "backends.mkldnn.deterministic",
    "backends.opt_einsum.enabled",
    "backends.opt_einsum.strategy",
]


def _matplotlib_settings() -> list[Setting]:
    import matplotlib

    def set_rc(value: dict[str, Any]) -> None:
        with warnings.catch_warnings():  # deprecated keys warn when set
            warnings.simplefilter("ignore")
            matplotlib.rcParams.update(value)

    # dict.items skips RcParams' validating __getitem__: 12 us instead of 120.
    return [Setting("rcParams", lambda: dict(dict.items(matplotlib.rcParams)), set_rc)]


_SETTINGS: dict[str, Callable[[], list[Setting]]] = {
    "numpy": _numpy_settings,
    "torch": _torch_settings,
    "matplotlib": _matplotlib_settings,
}
_BUILT: dict[str, list[Setting]] = {}


def settings() -> list[tuple[str, Setting]]:
    """Every restorable setting of this process, as ``(module, setting)``; a module's
    appear once it is imported (state a module not yet loaded cannot have changed)."""
    found = [("python", s) for s in _BUILT.setdefault("python", _python_settings())]
    for module, build in _SETTINGS.items():
        if module in sys.modules:
            if module not in _BUILT:
                _BUILT[module] = build()
            found.extend((module, s) for s in _BUILT[module])
    return found


_UNREADABLE = object()


def _read(setting: Setting) -> Any:
    try:
        return setting.get()
    except Exception:  # noqa: BLE001 - a flag this build or this state cannot read
        return _UNREADABLE


@dataclass
class ProcessState:
    """A snapshot of the restorable state; ``restore()`` puts it back."""

    cwd: str = ""
    environ: dict[str, str] = field(default_factory=dict)
    values: dict[str, tuple[Setting, Any]] = field(default_factory=dict)

    @classmethod
    def capture(cls) -> ProcessState:
        state = cls(cwd=os.getcwd(), environ=dict(os.environ))
        for module, setting in settings():
            value = _read(setting)
            if value is not _UNREADABLE:
                state.values[f"{module}.{setting.name}"] = (setting, value)
        return state

    def restore(self) -> list[str]:
        """Put the snapshot back; returns what differed (for tests and logs). Never
        raises: a setting that cannot be put back is left as the cell made it."""
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
        # Some settings write others (set_float32_matmul_precision writes the backends'
        # fp32_precision): a second pass puts back what the first one's setters moved.
        for _ in range(3):
            moved = []
            for name, (setting, value) in self.values.items():
                if not _same(_read(setting), value):
                    moved.append(name)
                    try:
                        setting.set(value)
                    except Exception:  # noqa: BLE001 - see the docstring
                        pass
            changed.extend(name for name in moved if name not in changed)
            if not moved:
                break
        return changed


def _same(now: Any, before: Any) -> bool:
    if now is _UNREADABLE:
        return False
    try:
        return bool(now == before)
    except Exception:  # noqa: BLE001 - values that do not compare: put it back
        return False
