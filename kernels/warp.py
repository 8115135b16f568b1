"""Warp an image by a voxel displacement field in one pass: 2-D/3-D, forward and backward.

    out[b, c, p] = image[b, c, p + disp[b, :, p]]     (linearly or nearest interpolated)

``disp`` is in voxels, channel i along spatial axis i (VoxelMorph's SpatialTransformer
convention). The pure-torch reference is ``kernels.reference.warp_reference``.

Traffic (3-D, fp32, C image channels): the forward reads 3 displacement volumes and C
image volumes (the 8 corner gathers of a voxel mostly hit L1/L2, since neighbouring
voxels sample neighbouring corners for smooth fields) and writes C volumes: 5 volumes
for C = 1, against ~44 for the eager grid_sample chain (identity grid, add, normalise,
permute, flip, sample). The backward reads grad_out, disp and the image once each and
scatters into grad_image.

Backward scatter. grad_image[q] sums grad_out over every voxel whose sample lands near
q; which voxels those are depends on the data, so it is a scatter. Options: (a) fp32
``atomic_add``, one per corner (8 in 3-D); (b) sort (target, value) pairs and reduce
segments: 8 pairs of 8 bytes per voxel written, sorted and read back, ~15x the 4-byte
atomic traffic of (a) plus a device-wide sort; (c) a gather over the inverse map, which
exists only for invertible warps and is itself a solve; (d) (a) with the x-corners
that neighbouring voxels share summed first. We use (d) (issue 22): voxel i + 1 adds
voxel i's upper-x shares into its own lower-x atomics wherever the addresses are the
same (same lower y and z corners, and voxel i's upper x is voxel i + 1's lower x),
which holds for most voxels of any smooth field, small or large (the x sample
coordinate of neighbours then differs by ~1 voxel), and voxel i skips those atomics:
~4 atomics a voxel in 3-D instead of 8, ~2 instead of 4 in 2-D. Each voxel recomputes
its two x-neighbours' sample points for that (their displacements are in L1/L2); both
sides decide a merge from the same inputs by the same arithmetic, so they agree, and
where they do not merge (NaN, a jump, a sample leaving the volume) both atomics stay.
The gradient with respect to the displacement is a pure gather (each voxel reads its
own corners), with no atomics. Atomics are ``relaxed`` (accumulation needs no
ordering) and land in an fp32 buffer even for fp16/bf16 images, so the
nondeterminism of the sum order is at fp32 rounding (~1e-7 relative). Timing (a) on
an H200 (results/published/kernels-headline-h200): the 3-D forward + backward was
1.40x grid_sample's eager and 0.88x torch.compile's; (d) is not yet timed on a GPU
(scripts/gpu-session.sh first, with (a) beside it: ``merge_atomics=False``).

CPU: with ``backend="triton"`` the kernels run on CPU tensors only under the Triton
interpreter (``TRITON_INTERPRET=1``, see ``kernels._triton.triton_can_run``); without
it, and on any other device, ``warp`` falls back to the torch reference.
"""

from __future__ import annotations

import torch

from kernels._triton import check_backend, triton_available, triton_can_run
from kernels.reference import WARP_MODES, WARP_PADDINGS, warp_reference

if triton_available():  # the kernels; without triton, only the torch path exists
    import triton

    from kernels._warp_triton import (
        _BORDER,
        _LINEAR,
        _NEAREST,
        _ZEROS,
        _warp2d_bwd_kernel,
        _warp2d_fwd_kernel,
        _warp3d_bwd_kernel,
        _warp3d_fwd_kernel,
    )

# float64 goes to the reference only: the kernels compute in fp32.
TRITON_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
TORCH_DTYPES = (*TRITON_DTYPES, torch.float64)


# ---------------------------------------------------------------------------
# Checks, tuning and launchers
# ---------------------------------------------------------------------------


def check_warp_inputs(
    image: torch.Tensor, disp: torch.Tensor, mode: str, padding: str, backend: str
) -> None:
    """Raise a ValueError/TypeError naming what was given and what is allowed."""
    check_backend(backend)
    if mode not in WARP_MODES:
        raise ValueError(f'Invalid mode "{mode}". Must be one of {WARP_MODES}')
    if padding not in WARP_PADDINGS:
        raise ValueError(f'Invalid padding "{padding}". Must be one of {WARP_PADDINGS}')
    if not isinstance(image, torch.Tensor) or not isinstance(disp, torch.Tensor):
        raise TypeError(
            f"image and disp must be tensors, got {type(image).__name__} and {type(disp).__name__}"
        )
    if image.dim() not in (4, 5):
        raise ValueError(
            f"image must be (B, C, H, W) or (B, C, D, H, W), got shape {tuple(image.shape)}"
        )
    ndim = image.dim() - 2
    expected = (image.shape[0], ndim, *image.shape[2:])
    if tuple(disp.shape) != expected:
        raise ValueError(
            f"disp must be (B, {ndim}, *spatial) = {expected} for an image of shape "
            f"{tuple(image.shape)}, got {tuple(disp.shape)}"
        )
    allowed = TRITON_DTYPES if backend == "triton" else TORCH_DTYPES
    if image.dtype not in allowed:
        hint = ' (float64: use backend="torch")' if image.dtype == torch.float64 else ""
        raise TypeError(
            f"image dtype {image.dtype} is not supported by backend={backend!r}; "
            f"allowed: {allowed}{hint}"
        )
    if disp.dtype != image.dtype:
        raise TypeError(f"disp dtype {disp.dtype} must match image dtype {image.dtype}")
    if disp.device != image.device:
        raise ValueError(f"image is on {image.device} but disp is on {disp.device}")


def check_merge_atomics(merge_atomics: object) -> None:
    if not isinstance(merge_atomics, bool):
        raise TypeError(f"merge_atomics must be a bool, got {merge_atomics!r}")


def _dense_with_voxel_stride(t: torch.Tensor, step: int) -> bool:
    """Whether every (b, c) volume of ``t`` is row-major with ``step`` elements between
    neighbouring voxels along x (size-1 axes may have any stride)."""
    expected = step
    for size, stride in zip(reversed(t.shape[2:]), reversed(t.stride()[2:])):
        if size != 1 and stride != expected:
            return False
        expected *= size
    return True


def _interleaved(t: torch.Tensor) -> bool:
    """Channels interleaved voxel by voxel over a dense volume: strides (any, 1, ...,
    W * C, C), the layout of ``torch.channels_last`` / ``channels_last_3d``."""
    return (t.shape[1] == 1 or t.stride(1) == 1) and _dense_with_voxel_stride(t, t.shape[1])


def _voxel_stride(image: torch.Tensor, disp: torch.Tensor) -> int:
    """The launch's voxel stride: ndim where image and disp both interleave their ndim
    channels (a displacement warped by one, as compose and svf_exp do), else 1.

    Interleaved, the 3 channels of a corner a sample gathers are 12 contiguous bytes (one
    32-byte sector, sometimes two) instead of one sector in each of 3 planes 4 N bytes
    apart: a third of the sectors for the 24 gathers a voxel of a 3-D composition. Any
    other pair of layouts runs planar (copied once where it is not, see
    ``_spatially_dense``)."""
    channels = image.shape[1]
    if channels > 1 and channels == disp.shape[1] and _interleaved(image) and _interleaved(disp):
        return channels
    return 1


def interleave_channels(t: torch.Tensor) -> torch.Tensor:
    """``t`` (B, C, H, W) or (B, C, D, H, W) with its channels interleaved voxel by voxel
    (``channels_last`` / ``channels_last_3d``), copied once if it is not already: the
    layout in which the warp kernels take a displacement warped by a displacement (and
    compose and svf_exp) as it is."""
    if _interleaved(t):
        return t
    return t.contiguous(
        memory_format=torch.channels_last_3d if t.dim() == 5 else torch.channels_last
    )


def _spatially_dense(t: torch.Tensor, step: int = 1) -> torch.Tensor:
    """The kernels take batch and channel strides but index each (b, c) volume as dense
    row-major with voxel stride ``step`` (1: planar, loads along x vectorise; C:
    interleaved); copy once if that layout is missing."""
    if step == 1:
        return t if _dense_with_voxel_stride(t, 1) else t.contiguous()
    return interleave_channels(t)


def _empty(like: torch.Tensor, step: int, dtype: torch.dtype, zero: bool = False) -> torch.Tensor:
    """A new (B, C, *spatial) tensor shaped like ``like``: planar (step 1) or with its
    channels interleaved (step C), batch stride C * N either way, as the kernels' grad
    buffers assume."""
    make = torch.zeros if zero else torch.empty
    if step == 1:
        return make(like.shape, dtype=dtype, device=like.device)
    batch, channels, *spatial = like.shape
    return make((batch, *spatial, channels), dtype=dtype, device=like.device).movedim(-1, 1)


def _launch_settings(ndim: int, backward: bool) -> tuple[int, int]:
    """(BLOCK_SIZE, num_warps) for H100: chosen from ptxas register counts, not timings.

    The kernels are latency-bound gathers, so what matters is voxels in flight per SM
    (Little's law: ~3.35 TB/s x ~600 ns over 132 SMs is ~15 KB, ~1000 voxels at ~16
    DRAM bytes each) without spilling. Registers per thread for fp32 on sm_90a, from
    ``python -m tests.kernels._warp_sm90_check --sweep`` (Triton 3.9, compiled on CPU):

        BLOCK/warps   fwd2d  fwd3d      bwd2d     bwd3d
        256/4            48     94         72       136
        512/4            94    160        138       255 (182 border)
        1024/4          145    255+80B    255+24B   255+352B spill
        1024/8          108    144        128+8B    255 (182 border)

    fwd 512/4: 3 (3-D) to 5 (2-D) resident programs per SM, 1536-2560 voxels in flight;
    1024/4 spills in 3-D. bwd2d 512/4: 3 programs, 1536 voxels. bwd3d 256/4: 136-175
    registers over all variants (bf16, border, ADD_DISP), 3 programs; 512/4 hits the
    255 ceiling. No variant spills at these settings (checked by a slow test). GPU timing
    sweeps are owed (bench_warp.py); they may move these.

    The backward merges the image gradient's atomics of x-neighbours that share corners
    (``_x_neighbour`` in ``kernels._warp_triton``: ~half the atomics for a smooth
    displacement); that took the headline variant (bwd3d fp32, zeros, linear) from 136
    to 139 registers and the largest (bwd2d bf16 border) from 176 to 182, no spills, the
    same resident programs at 256/4.
    """
    if backward and ndim == 3:
        return 256, 4
    return 512, 4


def warp_forward(
    image: torch.Tensor,
    disp: torch.Tensor,
    mode: str = "bilinear",
    padding: str = "zeros",
    add_disp: bool = False,
) -> torch.Tensor:
    """Launch the forward kernel (no autograd). ``add_disp`` adds ``disp`` to the result,
    which turns the warp into ``compose`` (the image is then a displacement field)."""
    step = _voxel_stride(image, disp)
    image = _spatially_dense(image, step)
    disp = _spatially_dense(disp, step)
    batch, channels, *spatial = image.shape
    ndim = len(spatial)
    if add_disp and channels != ndim:
        raise ValueError(f"add_disp needs an image with {ndim} channels, got {channels}")
    out = _empty(image, step, image.dtype)
    n = out[0, 0].numel() if out.numel() else 0
    if n == 0 or batch == 0 or channels == 0:
        return out
    block, num_warps = _launch_settings(ndim, backward=False)
    grid = (triton.cdiv(n, block), batch)
    common = dict(
        MODE=_NEAREST if mode == "nearest" else _LINEAR,
        PADDING=_BORDER if padding == "border" else _ZEROS,
        ADD_DISP=add_disp,
        BLOCK_SIZE=block,
        VS=step,
        num_warps=num_warps,
    )
    strides = (*image.stride()[:2], *disp.stride()[:2], *out.stride()[:2])
    if ndim == 2:
        _warp2d_fwd_kernel[grid](image, disp, out, channels, *spatial, n, *strides, **common)
    else:
        # H * W on the host: Triton turns an int argument equal to 1 into a constexpr,
        # so the kernel cannot rely on H being a tensor it can widen.
        plane = spatial[1] * spatial[2]
        _warp3d_fwd_kernel[grid](image, disp, out, channels, *spatial, plane, n, *strides, **common)
    return out


def warp_backward(
    grad_out: torch.Tensor,
    image: torch.Tensor,
    disp: torch.Tensor,
    mode: str = "bilinear",
    padding: str = "zeros",
    add_disp: bool = False,
    need_grad_image: bool = True,
    need_grad_disp: bool = True,
    merge_atomics: bool = True,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Launch the backward kernel: (grad_image, grad_disp), None where not needed.
    ``merge_atomics``: merge the image gradient's atomics of x-neighbours (see the
    module docstring); False issues one atomic a corner, the scatter before issue 22,
    kept so that a GPU run can time the two against each other."""
    step = _voxel_stride(image, disp)
    grad_out = _spatially_dense(grad_out, step)
    image = _spatially_dense(image, step)
    disp = _spatially_dense(disp, step)
    batch, channels, *spatial = image.shape
    ndim = len(spatial)
    # fp32 accumulation buffer for the atomics whatever the image dtype.
    grad_image = _empty(image, step, torch.float32, zero=True) if need_grad_image else None
    grad_disp = _empty(disp, step, disp.dtype) if need_grad_disp else None
    n = image[0, 0].numel() if image.numel() else 0
    if not (need_grad_image or need_grad_disp):
        return None, None
    if n == 0 or batch == 0 or channels == 0:
        if grad_disp is not None:
            grad_disp.zero_()
        return (grad_image.to(image.dtype) if grad_image is not None else None), grad_disp
    block, num_warps = _launch_settings(ndim, backward=True)
    grid = (triton.cdiv(n, block), batch)
    dummy = grad_out  # a valid pointer for a buffer the kernel will not touch
    kernel = _warp2d_bwd_kernel if ndim == 2 else _warp3d_bwd_kernel
    sizes = (*spatial, spatial[1] * spatial[2]) if ndim == 3 else tuple(spatial)
    kernel[grid](
        grad_out,
        image,
        disp,
        grad_image if grad_image is not None else dummy,
        grad_disp if grad_disp is not None else dummy,
        channels,
        *sizes,
        n,
        *grad_out.stride()[:2],
        *image.stride()[:2],
        *disp.stride()[:2],
        MODE=_NEAREST if mode == "nearest" else _LINEAR,
        PADDING=_BORDER if padding == "border" else _ZEROS,
        ADD_DISP=add_disp,
        NEED_GRAD_IMAGE=need_grad_image,
        NEED_GRAD_DISP=need_grad_disp,
        BLOCK_SIZE=block,
        VS=step,
        MERGE=merge_atomics,
        num_warps=num_warps,
    )
    if grad_image is not None and grad_image.dtype != image.dtype:
        grad_image = grad_image.to(image.dtype)
    return grad_image, grad_disp


class WarpFunction(torch.autograd.Function):
    """Autograd wrapper of the Triton kernels: gradients for both the image and the
    displacement (first order; the backward is not itself differentiable)."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        image: torch.Tensor,
        disp: torch.Tensor,
        mode: str,
        padding: str,
        add_disp: bool,
        merge_atomics: bool = True,
    ) -> torch.Tensor:
        ctx.save_for_backward(image, disp)
        ctx.options = (mode, padding, add_disp, merge_atomics)
        return warp_forward(image, disp, mode, padding, add_disp)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: torch.autograd.function.FunctionCtx, grad_out: torch.Tensor):
        image, disp = ctx.saved_tensors
        mode, padding, add_disp, merge_atomics = ctx.options
        grad_image, grad_disp = warp_backward(
            grad_out,
            image,
            disp,
            mode,
            padding,
            add_disp,
            need_grad_image=ctx.needs_input_grad[0],
            need_grad_disp=ctx.needs_input_grad[1],
            merge_atomics=merge_atomics,
        )
        return grad_image, grad_disp, None, None, None, None


def warp(
    image: torch.Tensor,
    disp: torch.Tensor,
    *,
    mode: str = "bilinear",
    padding: str = "zeros",
    align_corners: bool = True,
    backend: str = "triton",
    merge_atomics: bool = True,
) -> torch.Tensor:
    """Sample ``image`` at ``index + disp``: VoxelMorph's SpatialTransformer in one pass.

    Args:
        image: (B, C, H, W) or (B, C, D, H, W); float32, float16 or bfloat16
            (float64 with ``backend="torch"``).
        disp: (B, 2, H, W) or (B, 3, D, H, W) in voxels, channel i along spatial axis
            i; same dtype and device as ``image``.
        mode: "bilinear" or its synonym "trilinear" (linear along every axis), or
            "nearest" (ties to even, as grid_sample).
        padding: "zeros" (outside voxels read 0) or "border" (coordinates clamped to
            the volume; the clamped coordinate gets zero gradient, as grid_sample).
        align_corners: grid_sample convention the torch path normalises with. Since
            ``disp`` is in voxels both conventions sample the same point (the tests
            check it); the Triton kernels work in voxels and need no normalisation.
        backend: "triton" or "torch". "triton" falls back to the torch reference where
            Triton cannot run (CPU without ``TRITON_INTERPRET=1``, non-CUDA devices).
            Any batch and channel strides are used as they are; a volume that is not
            dense row-major (a transposed view) is copied once. A displacement field
            warped by a displacement (2 or 3 channels each), both with interleaved
            channels (``channels_last`` / ``channels_last_3d``), runs interleaved and
            returns that layout; any other channels_last input is copied to planar.

        merge_atomics: the Triton backward merges the image gradient's atomics of
            x-neighbours that share corners (the default); False issues one atomic a
            corner (the same sums in another order), to time the two on a GPU.

    Returns:
        The warped image, shaped and typed like ``image``. A voxel whose displacement
        has a NaN is NaN in every channel and contributes no gradient to the image;
        its displacement gradient is zero.
    """
    check_warp_inputs(image, disp, mode, padding, backend)
    check_merge_atomics(merge_atomics)
    if backend == "torch" or not triton_can_run(image.device.type):
        return warp_reference(image, disp, mode=mode, padding=padding, align_corners=align_corners)
    return WarpFunction.apply(image, disp, mode, padding, False, merge_atomics)
