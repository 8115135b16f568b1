"""``kernels.warp``, ``kernels.svf_exp`` and ``kernels.sine_mlp``: one backend per cell.

Every task follows the same protocol:

1. make the inputs (untimed; seeded by the harness);
2. call the backend once and compare its output, and its gradients when
   ``backward``, with the float64 torch reference of ``kernels.reference`` (untimed;
   this first call is also where ``*.compile`` backends compile);
3. time ``forward`` (under ``no_grad``) and, when ``backward``, ``forward_backward``
   (one ``torch.autograd.grad`` through the call), with an L2 flush before each
   repetition on GPU;
4. turn the median times into achieved GB/s or TFLOP/s with ``kernels.cost``.

Errors are relative, so one threshold reads the same across sizes and amplitudes:
``*_error_max`` is ``max |out - ref| / max |ref|`` (the worst element) and
``*_error_l2`` is ``||out - ref|| / ||ref||`` (the whole tensor). Where an exact
derivative jumps (linear interpolation across a grid line), float32 and float64 may
land on either side and one element can be off by O(1) while the method is right: the
warp task leaves such voxels out (``excluded_fraction``); elsewhere ``*_error_l2`` is
the robust figure. ``inverse_error_vox_*`` is in voxels, not relative.
"""

from __future__ import annotations

import contextlib
import math
import statistics
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import torch

from bench import Backend, CellContext, Headline, Param, Task
from kernels.cost import sine_mlp_flops, svf_exp_min_bytes, warp_min_bytes
from kernels.reference import (
    compose_reference,
    identity_grid,
    sine_mlp_reference,
    siren_parameters,
    smooth_field,
    svf_exp_reference,
    warp_reference,
)
from kernels.warp import interleave_channels
from plugins.backends.base import SineMLPBackend, SvfExpBackend, WarpBackend

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
SINE_MLP_PRECISIONS = ("fp32", "tf32", "fp16", "bf16")
LAYOUTS = ("planar", "channels_last")
ERROR_POINTS = 65536  # sine_mlp accuracy subset: float64 at 2^24 points is 32 GiB a layer
# Sample points nearer than this (voxels) to a grid line (linear) or a half-way point
# (nearest) are left out of the warp errors. float32 coordinates near 256 carry 1.5e-5
# voxel of rounding, and the eager path's normalisation round trip a few times that.
AMBIGUOUS_VOXELS = 1e-4


def _spatial_size(value: list) -> str | None:
    ok = len(value) in (2, 3) and all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in value
    )
    if not ok:
        return f"expected 2 or 3 positive integers, (H, W) or (D, H, W); got {value!r}"
    return None


def _size_param(default: list[int]) -> Param:
    return Param(default, check=_spatial_size, doc="spatial size, [H, W] or [D, H, W]")


def relative_errors(
    out: torch.Tensor, ref: torch.Tensor, exclude: torch.Tensor | None = None
) -> tuple[float, float]:
    """``max |out - ref| / max |ref|`` and ``||out - ref|| / ||ref||``, in float64, over
    the elements ``exclude`` (broadcast to ``out``) does not mark."""
    ref = ref.detach().double()
    diff = out.detach().double() - ref
    if exclude is not None:
        keep = ~exclude.expand_as(diff)
        diff, ref = diff[keep], ref[keep]
    if diff.numel() == 0:
        return 0.0, 0.0
    tiny = torch.finfo(torch.float64).tiny
    worst = diff.abs().max() / ref.abs().max().clamp_min(tiny)
    l2 = torch.linalg.vector_norm(diff) / torch.linalg.vector_norm(ref).clamp_min(tiny)
    return float(worst), float(l2)


def _record_errors(
    ctx: CellContext,
    name: str,
    out: torch.Tensor,
    ref: torch.Tensor,
    exclude: torch.Tensor | None = None,
) -> None:
    ctx.check_finite(name, out)
    worst, l2 = relative_errors(out, ref, exclude)
    ctx.metric(f"{name}_error_max", worst)
    ctx.metric(f"{name}_error_l2", l2)


def ambiguous_voxels(disp: torch.Tensor, mode: str) -> torch.Tensor:
    """(B, 1, *S): True where the sample point ``index + disp`` (float64) lies within
    ``AMBIGUOUS_VOXELS`` of where the interpolation's derivative jumps — a grid line for
    linear, a half-way point for nearest — so float32 may fall on the other side."""
    grid = identity_grid(tuple(disp.shape[2:]), disp.device, torch.float64)
    frac = grid + disp.double() - (0.5 if mode == "nearest" else 0.0)
    return ((frac - frac.round()).abs() < AMBIGUOUS_VOXELS).any(dim=1, keepdim=True)


@contextlib.contextmanager
def _matmul_precision(precision: str) -> Iterator[None]:
    """tf32 matmuls for the torch baselines' backward too (autograd runs after their
    forward has restored the setting); other precisions need nothing here."""
    if precision != "tf32":
        yield
        return
    old = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(old)


def _median(ctx: CellContext, name: str) -> float:
    return statistics.median(ctx.record.times[name])


def _timed(ctx: CellContext, name: str, fn: Callable[[], Any], *, grad: bool) -> None:
    with torch.set_grad_enabled(grad):
        ctx.time(name, fn, flush_l2=True)


class KernelTask(Task):
    """Base of the ``kernels.*`` tasks: one ``backend`` slot, of this task's operation."""

    op: ClassVar[str] = ""

    def backend(self, ctx: CellContext) -> Backend:
        backend = ctx.components["backend"]
        assert isinstance(backend, Backend)
        return backend


class WarpTask(KernelTask):
    """Warp an image by a smooth displacement: error to float64, time, GB/s, per backend."""

    name = "kernels.warp"
    headline = Headline(
        quality={"output_error_max": "lower", "gbs_forward": "higher"},
        cost="time.forward.median",
        problem=(
            "size",
            "batch",
            "channels",
            "mode",
            "padding",
            "dtype",
            "displacement",
            "backward",
        ),
    )
    op = "warp"
    components = {"backend": WarpBackend}
    params = {
        "size": _size_param([64, 64, 64]),
        "batch": Param(1, low=1, doc="batch size"),
        "channels": Param(1, low=1, doc="image channels"),
        "mode": Param("bilinear", choices=("bilinear", "nearest"), doc="interpolation"),
        "padding": Param("zeros", choices=("zeros", "border"), doc="outside the volume"),
        "dtype": Param("float32", choices=tuple(DTYPES), doc="image and displacement dtype"),
        "displacement": Param(5.0, low=0.0, doc="max |displacement| in voxels (smooth field)"),
        "backward": Param(True, doc="also check gradients and time forward+backward"),
    }

    def run(self, ctx: CellContext) -> None:
        v = self.values
        backend = self.backend(ctx)
        spatial = tuple(v["size"])
        ndim, batch, channels = len(spatial), v["batch"], v["channels"]
        dtype = DTYPES[v["dtype"]]
        image = torch.randn((batch, channels, *spatial), device=ctx.device).to(dtype)
        # Just under the asked maximum: at max |disp| = 5.0 exactly, one voxel samples on
        # a grid line, where linear interpolation has no derivative and the eager path's
        # coordinate normalisation picks either side (a 2% grad_disp "error" of nothing).
        amplitude = v["displacement"] * (1 - 2**-10)
        disp = smooth_field(batch, spatial, amplitude, seed=ctx.seed, device=ctx.device)
        disp = disp.to(dtype)
        how = {"mode": v["mode"], "padding": v["padding"]}

        with torch.no_grad():
            out = backend(image, disp, **how)
            ref = warp_reference(image.double(), disp.double(), **how)
            exclude = ambiguous_voxels(disp, v["mode"])
        ctx.metric("excluded_fraction", exclude.double().mean())
        _record_errors(ctx, "output", out, ref, exclude)
        del ref

        voxels = batch * math.prod(spatial)
        itemsize = image.element_size()
        _timed(ctx, "forward", lambda: backend(image, disp, **how), grad=False)
        moved = warp_min_bytes(voxels, channels, ndim, backward=False, itemsize=itemsize)
        ctx.metric("gbs_forward", moved / _median(ctx, "forward") / 1e9)
        if not v["backward"]:
            return

        image_g = image.detach().requires_grad_()
        disp_g = disp.detach().requires_grad_()
        grad_out = torch.randn_like(out)

        def forward_backward() -> tuple[torch.Tensor, ...]:
            return torch.autograd.grad(backend(image_g, disp_g, **how), (image_g, disp_g), grad_out)

        with torch.enable_grad():
            grads = forward_backward()
            image64 = image.double().requires_grad_()
            disp64 = disp.double().requires_grad_()
            ref = warp_reference(image64, disp64, **how)
            refs = torch.autograd.grad(ref, (image64, disp64), grad_out.double())
        # grad_image lands on the neighbours of each sample point, not on the voxel the
        # mask marks, so it is compared everywhere: bilinear weights are continuous
        # across grid lines; with nearest a tie that float32 breaks the other way moves a
        # whole contribution (then the l2 figure is the one to read).
        _record_errors(ctx, "grad_image", grads[0], refs[0])
        _record_errors(ctx, "grad_disp", grads[1], refs[1], exclude)
        del grads, refs, ref

        _timed(ctx, "forward_backward", forward_backward, grad=True)
        moved = warp_min_bytes(voxels, channels, ndim, backward=True, itemsize=itemsize)
        ctx.metric("gbs_forward_backward", moved / _median(ctx, "forward_backward") / 1e9)


class SvfExpTask(KernelTask):
    """Scaling and squaring of a smooth velocity: error, inverse consistency, time, GB/s.

    One backend per cell; the inverse is the exponential of ``-velocity``.
    """

    name = "kernels.svf_exp"
    headline = Headline(
        quality={"output_error_max": "lower", "gbs_forward": "higher"},
        cost="time.forward.median",
        problem=("size", "batch", "steps", "velocity", "padding", "backward", "layout"),
    )
    op = "svf_exp"
    components = {"backend": SvfExpBackend}
    params = {
        "size": _size_param([64, 64, 64]),
        "batch": Param(1, low=1, doc="batch size"),
        "steps": Param(7, low=0, high=20, doc="squarings (the field is scaled by 2^-steps)"),
        "velocity": Param(5.0, low=0.0, doc="max |velocity| in voxels (smooth field)"),
        "padding": Param("zeros", choices=("zeros", "border"), doc="outside the volume"),
        "backward": Param(True, doc="also check the gradient and time forward+backward"),
        "layout": Param(
            "planar",
            choices=LAYOUTS,
            doc="the velocity's memory layout, every backend's input: planar (each channel "
            "a volume) or channels_last (channels interleaved voxel by voxel)",
        ),
    }

    def run(self, ctx: CellContext) -> None:
        v = self.values
        backend = self.backend(ctx)
        spatial = tuple(v["size"])
        ndim, batch = len(spatial), v["batch"]
        velocity = smooth_field(batch, spatial, v["velocity"], seed=ctx.seed, device=ctx.device)
        if v["layout"] == "channels_last":
            velocity = interleave_channels(velocity)
        how = {"steps": v["steps"], "padding": v["padding"]}

        with torch.no_grad():
            out = backend(velocity, **how)
            ref = svf_exp_reference(velocity.double(), **how)
            _record_errors(ctx, "output", out, ref)
            del ref
            # exp(v) o exp(-v) is the identity: its displacement, in voxels.
            inverse = backend(-velocity, **how)
            residual = compose_reference(out.double(), inverse.double(), padding=v["padding"])
            norm = torch.linalg.vector_norm(residual, dim=1)
            ctx.metric("inverse_error_vox_mean", norm.mean())
            ctx.metric("inverse_error_vox_max", norm.max())
            del inverse, residual, norm

        voxels = batch * math.prod(spatial)
        _timed(ctx, "forward", lambda: backend(velocity, **how), grad=False)
        moved = svf_exp_min_bytes(voxels, ndim, v["steps"], backward=False)
        ctx.metric("gbs_forward", moved / _median(ctx, "forward") / 1e9)
        if not v["backward"]:
            return

        velocity_g = velocity.detach().requires_grad_()
        grad_out = torch.randn_like(out)

        def forward_backward() -> tuple[torch.Tensor, ...]:
            return torch.autograd.grad(backend(velocity_g, **how), (velocity_g,), grad_out)

        with torch.enable_grad():
            (grad,) = forward_backward()
            velocity64 = velocity.double().requires_grad_()
            ref = svf_exp_reference(velocity64, **how)
            (grad_ref,) = torch.autograd.grad(ref, (velocity64,), grad_out.double())
        _record_errors(ctx, "grad_velocity", grad, grad_ref)
        del grad, grad_ref, ref

        _timed(ctx, "forward_backward", forward_backward, grad=True)
        moved = svf_exp_min_bytes(voxels, ndim, v["steps"], backward=True)
        ctx.metric("gbs_forward_backward", moved / _median(ctx, "forward_backward") / 1e9)


class SineMLPTask(KernelTask):
    """Evaluate a SIREN on random points: error to float64, time and TFLOP/s, per backend.

    ``precision`` sets the matmul operands of both the fused kernel and the torch
    baselines (which use ``torch.autocast`` for fp16/bf16).
    """

    name = "kernels.sine_mlp"
    headline = Headline(
        quality={"output_error_max": "lower", "tflops_forward": "higher"},
        cost="time.forward.median",
        problem=(
            "points",
            "in_features",
            "width",
            "sine_layers",
            "out_features",
            "omega0",
            "precision",
            "backward",
        ),
    )
    op = "sine_mlp"
    components = {"backend": SineMLPBackend}
    params = {
        "points": Param(2**16, low=1, doc="points evaluated per call"),
        "in_features": Param(3, low=1, high=4, doc="coordinate dimension"),
        "width": Param(256, low=1, doc="hidden width (the Triton kernel takes 16 to 256)"),
        "sine_layers": Param(4, low=1, doc="sine layers (3 -> 256 x 3 -> 1 has 4)"),
        "out_features": Param(1, low=1, doc="output channels"),
        "omega0": Param(30.0, low=0.0, low_open=True, doc="SIREN frequency, every layer"),
        "precision": Param(
            "fp32", choices=SINE_MLP_PRECISIONS, doc="matmul operand precision (sines in fp32)"
        ),
        "backward": Param(
            False, doc="also check gradients (input, weights, biases) and time forward+backward"
        ),
    }

    def run(self, ctx: CellContext) -> None:
        v = self.values
        backend = self.backend(ctx)
        n = v["points"]
        widths = [v["width"]] * v["sine_layers"]
        gen = torch.Generator().manual_seed(ctx.seed)
        weights, biases = siren_parameters(
            v["in_features"],
            widths,
            v["out_features"],
            omega0=v["omega0"],
            generator=gen,
            device=ctx.device,
        )
        x = (torch.rand(n, v["in_features"], generator=gen) * 2 - 1).to(ctx.device)
        how = {"omega0": v["omega0"], "precision": v["precision"]}
        sub = slice(0, min(n, ERROR_POINTS))

        def reference(xs: torch.Tensor, ws: Sequence[torch.Tensor], bs: Sequence[torch.Tensor]):
            return sine_mlp_reference(
                xs.double(),
                [w.double() for w in ws],
                [b.double() for b in bs],
                omega0=v["omega0"],
                first_omega0=v["omega0"],
            )

        with torch.no_grad():
            backend(x, weights, biases, **how)  # compiles *.compile backends: untimed
            out = backend(x[sub], weights, biases, **how)
            _record_errors(ctx, "output", out, reference(x[sub], weights, biases))

        flops = n * sine_mlp_flops(v["in_features"], widths, v["out_features"])
        _timed(ctx, "forward", lambda: backend(x, weights, biases, **how), grad=False)
        ctx.metric("tflops_forward", flops / _median(ctx, "forward") / 1e12)
        if not v["backward"]:
            return

        params = [t.detach().requires_grad_() for t in (*weights, *biases)]
        count = len(weights)

        def grads_of(xs: torch.Tensor, fn: Callable[..., torch.Tensor], grad_out: torch.Tensor):
            xs = xs.detach().requires_grad_()
            y = fn(xs, params[:count], params[count:])
            return torch.autograd.grad(y, (xs, *params), grad_out.to(y.dtype))

        grad_out = torch.randn(n, v["out_features"], generator=gen).to(ctx.device)
        with torch.enable_grad(), _matmul_precision(v["precision"]):
            grads_of(x, lambda *a: backend(*a, **how), grad_out)  # compile the backward
            got = grads_of(x[sub], lambda *a: backend(*a, **how), grad_out[sub])
            want = grads_of(x[sub], reference, grad_out[sub])
        _record_errors(ctx, "grad_x", got[0], want[0])
        errors = [relative_errors(g, r) for g, r in zip(got[1:], want[1:])]
        ctx.metric("grad_params_error_max", max(e[0] for e in errors))
        ctx.metric("grad_params_error_l2", max(e[1] for e in errors))
        for g in got[1:]:
            ctx.check_finite("grad_params", g)
        del got, want

        x_g = x.detach().requires_grad_()

        def forward_backward() -> tuple[torch.Tensor, ...]:
            # Fresh views each step: a training step sees updated parameters, so a backend
            # that caches work on its parameters (the Triton kernel packs them) pays for
            # it every step here, as it would in training; gradients still reach params.
            ws = [p.view_as(p) for p in params[:count]]
            bs = [p.view_as(p) for p in params[count:]]
            y = backend(x_g, ws, bs, **how)
            return torch.autograd.grad(y, (x_g, *params), grad_out)

        with _matmul_precision(v["precision"]):
            _timed(ctx, "forward_backward", forward_backward, grad=True)
        # The backward does two matmuls per forward one (input and weight gradients).
        ctx.metric("tflops_forward_backward", 3 * flops / _median(ctx, "forward_backward") / 1e12)
