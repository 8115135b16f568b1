"""Built-in backends: eager torch, torch.compile and Triton for each kernel operation.

Each operation (``op``) has three backends that the ``kernels.*`` tasks measure side by
side, on the same inputs and with the same call:

- ``<op>.eager``: the torch code people write (VoxelMorph's SpatialTransformer and
  VecInt on ``grid_sample``; a SIREN as linear layers and sines), run eagerly.
- ``<op>.compile``: that same function through ``torch.compile`` (inductor). It
  compiles on its first call, which the tasks make before timing.
- ``<op>.triton``: the fused kernels of ``kernels``. Skipped, with the reason, where
  Triton cannot run (no CUDA device, and the CPU interpreter not asked for with
  ``TRITON_INTERPRET=1``): ``kernels`` would fall back to torch there, and a fallback
  measured under Triton's name would be a false row.

Calls, per op:

- ``warp``: ``backend(image, disp, mode=..., padding=...)``
- ``svf_exp``: ``backend(velocity, steps=..., padding=...)``
- ``sine_mlp``: ``backend(x, weights, biases, omega0=..., precision=...)``
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch

from bench import Backend, Param, hookimpl
from kernels import sine_mlp, svf_exp, triton_can_run, warp
from kernels.reference import (
    grid_sample_warp,
    identity_grid,
    sine_mlp_reference,
    torch_precision,
    vecint,
)
from kernels.sine_mlp import MAX_WIDTH as SINE_MLP_MAX_WIDTH
from plugins.backends.base import SineMLPBackend, SvfExpBackend, WarpBackend

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


class _GridCache:
    """The identity grid per (shape, device, dtype), kept as SpatialTransformer keeps its
    buffer: built on the first (untimed) call, reused by the timed ones."""

    def __init__(self) -> None:
        self._grids: dict[tuple, torch.Tensor] = {}

    def __call__(self, like: torch.Tensor) -> torch.Tensor:
        spatial = tuple(like.shape[2:])
        key = (spatial, like.device, like.dtype)
        if key not in self._grids:
            self._grids[key] = identity_grid(spatial, like.device, like.dtype)
        return self._grids[key]


class _BuffersGrid:
    """Mixin: ``self.grid(like)``, the identity grid cached on the instance."""

    def grid(self, like: torch.Tensor) -> torch.Tensor:
        cache = self.__dict__.setdefault("_grids", _GridCache())
        return cache(like)


class _Eager(Backend):
    impl: ClassVar[str] = "eager"


class _Compiled(Backend):
    """Compiles ``eager_fn`` once per instance; torch.compile recompiles per shape itself.

    A worker runs many cells, and dynamo keeps one code cache per function across them:
    past its recompile limit it would silently run the function eagerly and the cell
    would report eager times under this backend's name. So each instance (one per cell)
    starts from ``torch._dynamo.reset()``, and hitting the limit within a cell raises,
    which ends the cell with status ``error`` instead of a false row.

    The limit is a parameter, 32 by default rather than dynamo's 8: a method calls the
    op in many legitimate versions (LDDMM on a 3-level pyramid warps 1- and 3-channel
    volumes, with and without grad, at every level: more than 8; it hit dynamo's limit
    on the H200 run of suites/registration-gpu.yaml).
    """

    impl: ClassVar[str] = "compile"
    eager_fn: ClassVar[Callable[..., Any]]
    params = {
        "mode": Param("default", choices=COMPILE_MODES, doc="torch.compile mode"),
        "recompile_limit": Param(
            32, low=1, high=1024, doc="compiled versions allowed in a cell; past it, an error"
        ),
    }

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self._fn: Callable[..., Any] | None = None

    def compiled(self) -> Callable[..., Any]:
        if self._fn is None:
            torch._dynamo.reset()
            torch._dynamo.config.fail_on_recompile_limit_hit = True
            torch._dynamo.config.recompile_limit = self.values["recompile_limit"]
            self._fn = torch.compile(type(self).eager_fn, mode=self.values["mode"], dynamic=False)
        return self._fn


class _Triton(Backend):
    impl: ClassVar[str] = "triton"
    requires = ("triton",)

    def skip(self, device: str) -> str | None:
        device_type = device.split(":")[0]
        if not triton_can_run(device_type):
            return (
                f"{self.name} needs a CUDA device, or TRITON_INTERPRET=1 for the CPU "
                f"interpreter; on {device} kernels would fall back to torch"
            )
        return None


# --- warp ---------------------------------------------------------------------------


def _warp_eager(image, disp, grid, mode, padding):
    return grid_sample_warp(image, disp, mode=mode, padding=padding, grid=grid)


class WarpEager(_BuffersGrid, _Eager, WarpBackend):
    """Warp by VoxelMorph's SpatialTransformer: grid_sample at index + disp, eager."""

    name = "warp.eager"

    def __call__(self, image, disp, *, mode="bilinear", padding="zeros"):
        return _warp_eager(image, disp, self.grid(disp), mode, padding)


class WarpCompile(_BuffersGrid, _Compiled, WarpBackend):
    """Warp by VoxelMorph's SpatialTransformer under torch.compile."""

    name = "warp.compile"
    eager_fn = staticmethod(_warp_eager)

    def __call__(self, image, disp, *, mode="bilinear", padding="zeros"):
        return self.compiled()(image, disp, self.grid(disp), mode, padding)


#: the Triton warp's and its svf_exp's (built with the warp's parameters) own parameter
TRITON_WARP_PARAMS = {
    "merge_atomics": Param(
        True,
        doc="backward: merge the image gradient's atomics of x-neighbours (False: one "
        "atomic a corner, the scatter before issue 22, to time the two)",
    ),
}


class WarpTriton(_Triton, WarpBackend):
    """Warp by the fused Triton kernel of kernels.warp (forward and backward)."""

    name = "warp.triton"
    params = TRITON_WARP_PARAMS

    def __call__(self, image, disp, *, mode="bilinear", padding="zeros"):
        merge = self.values["merge_atomics"]
        return warp(image, disp, mode=mode, padding=padding, backend="triton", merge_atomics=merge)


# --- svf_exp ------------------------------------------------------------------------


def _svf_exp_eager(velocity, grid, steps, padding):
    return vecint(velocity, steps, grid, padding=padding)


class SvfExpEager(_BuffersGrid, _Eager, SvfExpBackend):
    """Scaling and squaring by VoxelMorph's VecInt on grid_sample, eager."""

    name = "svf_exp.eager"

    def __call__(self, velocity, *, steps=7, padding="zeros"):
        return _svf_exp_eager(velocity, self.grid(velocity), steps, padding)


class SvfExpCompile(_BuffersGrid, _Compiled, SvfExpBackend):
    """Scaling and squaring by VoxelMorph's VecInt under torch.compile."""

    name = "svf_exp.compile"
    eager_fn = staticmethod(_svf_exp_eager)

    def __call__(self, velocity, *, steps=7, padding="zeros"):
        return self.compiled()(velocity, self.grid(velocity), steps, padding)


class SvfExpTriton(_Triton, SvfExpBackend):
    """Scaling and squaring by kernels.svf_exp: one fused Triton kernel a squaring."""

    name = "svf_exp.triton"
    params = TRITON_WARP_PARAMS

    def __call__(self, velocity, *, steps=7, padding="zeros"):
        merge = self.values["merge_atomics"]
        return svf_exp(velocity, steps, padding=padding, backend="triton", merge_atomics=merge)


# --- sine_mlp -----------------------------------------------------------------------


def _sine_mlp_eager(x, weights, biases, omega0):
    return sine_mlp_reference(x, weights, biases, omega0=omega0, first_omega0=omega0)


class SineMLPEager(_Eager, SineMLPBackend):
    """SIREN as torch linear layers and sines, eager; fp16/bf16 under torch.autocast."""

    name = "sine_mlp.eager"

    def __call__(self, x, weights, biases, *, omega0=30.0, precision="fp32"):
        with torch_precision(precision, x.device.type):
            return _sine_mlp_eager(x, weights, biases, omega0).float()


class SineMLPCompile(_Compiled, SineMLPBackend):
    """SIREN as torch linear layers and sines under torch.compile (and autocast)."""

    name = "sine_mlp.compile"
    eager_fn = staticmethod(_sine_mlp_eager)

    def __call__(self, x, weights, biases, *, omega0=30.0, precision="fp32"):
        with torch_precision(precision, x.device.type):
            return self.compiled()(x, weights, biases, omega0).float()


class SineMLPTriton(_Triton, SineMLPBackend):
    """SIREN by the fused Triton kernel of kernels.sine_mlp, activations kept on chip."""

    name = "sine_mlp.triton"
    #: the fused kernel's widest hidden layer (kernels.sine_mlp.MAX_WIDTH)
    max_width = SINE_MLP_MAX_WIDTH

    def __call__(self, x, weights, biases, *, omega0=30.0, precision="fp32"):
        return sine_mlp(
            x,
            weights,
            biases,
            omega0=omega0,
            first_omega0=omega0,
            precision=precision,
            backend="triton",
        )


# each warp backend's scaling and squaring, of the same implementation
WarpEager.svf_exp = SvfExpEager
WarpCompile.svf_exp = SvfExpCompile
WarpTriton.svf_exp = SvfExpTriton

KERNEL_BACKENDS: list[type[Backend]] = [
    WarpEager,
    WarpCompile,
    WarpTriton,
    SvfExpEager,
    SvfExpCompile,
    SvfExpTriton,
    SineMLPEager,
    SineMLPCompile,
    SineMLPTriton,
]


@hookimpl
def bench_plugins() -> list[type[Backend]]:
    return list(KERNEL_BACKENDS)
