"""The Triton kernels of ``kernels.warp`` (imported only where triton imports).

Kept apart so that ``kernels.warp`` — its checks, launchers and torch fallback —
imports on machines without Triton (macOS, Windows, a CPU container without it).

The four kernels share their prologue (voxels of a program, sample coordinates, NaN
masking), their per-axis work (corners or nearest voxel, int64 offsets, padding) and
their per-corner and per-channel work through the ``@triton.jit`` helpers below, which
Triton inlines into each kernel. Inlining is not quite free: ptxas schedules around the
debug label each inlined call leaves, so a change to the helpers is checked with
``python -m tests.kernels._warp_sm90_check`` (registers, spills and vector loads of
every variant on sm_90a). Splitting the kernels into these helpers left all 64 variants'
register counts, spills (none) and vector loads as they were, and every floating-point
instruction the same.

Layouts. ``VS`` (constexpr) is the voxel stride of every tensor of a launch: 1 for
planar volumes (each channel a dense row-major volume), C for channels interleaved
voxel by voxel (channels_last, only where image and displacement both have ndim
channels: compose and svf_exp). Offsets are voxel indices times ``VS``; channel steps
come from the tensors' strides (1 when interleaved). With ``VS`` 1 the multiplications
fold away and the planar code is what it was (the same registers at sm_90a).
"""

from __future__ import annotations

import triton
import triton.language as tl

# Kernel-side encodings of the string options (tl.constexpr, so each combination
# compiles to straight-line code).
_LINEAR, _NEAREST = 0, 1
_ZEROS, _BORDER = 0, 1


# ---------------------------------------------------------------------------
# Prologue: which voxels a program handles and where they sample
# ---------------------------------------------------------------------------


@triton.jit
def _voxel_block(N, BLOCK_SIZE: tl.constexpr):
    """Batch element, flat voxel offsets and in-volume mask of this program.

    One program: BLOCK_SIZE voxels of one batch element, all channels (the coordinates
    and weights are computed once and reused for every channel). The offsets are int64,
    so that ``b * stride + offset`` stays exact past 2^31 elements.
    """
    pid = tl.program_id(0).to(tl.int64)
    b = tl.program_id(1).to(tl.int64)
    idx = pid * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    return b, idx, idx < N


@triton.jit
def _sample_coordinate(index, disp_ptr, mask):
    """Sample coordinate along one axis: voxel index plus its displacement, in fp32."""
    return index.to(tl.float32) + tl.load(disp_ptr, mask=mask, other=0.0).to(tl.float32)


@triton.jit
def _sample_points_2d(disp_ptr, b, stride_db, stride_dc, idx, W, mask, VS: tl.constexpr):
    """(valid, py, px): where the voxels ``idx`` of batch element ``b`` sample.

    A NaN displacement makes the voxel invalid: the kernels write NaN in every channel
    for it and touch no memory on its behalf, so its coordinates are zeroed here.
    ``VS`` is the voxel stride of every tensor of the launch (see ``_warp3d_fwd_kernel``).
    """
    x = idx % W
    y = idx // W
    disp = disp_ptr + b * stride_db + idx * VS
    py = _sample_coordinate(y, disp, mask)
    px = _sample_coordinate(x, disp + stride_dc, mask)
    valid = (py == py) & (px == px)
    return valid, tl.where(valid, py, 0.0), tl.where(valid, px, 0.0)


@triton.jit
def _sample_points_3d(disp_ptr, b, stride_db, stride_dc, idx, H, W, mask, VS: tl.constexpr):
    """(valid, pz, py, px): the 3-D ``_sample_points_2d``."""
    x = idx % W
    t = idx // W
    y = t % H
    z = t // H
    disp = disp_ptr + b * stride_db + idx * VS
    pz = _sample_coordinate(z, disp, mask)
    py = _sample_coordinate(y, disp + stride_dc, mask)
    px = _sample_coordinate(x, disp + 2 * stride_dc, mask)
    valid = (pz == pz) & (py == py) & (px == px)
    return valid, tl.where(valid, pz, 0.0), tl.where(valid, py, 0.0), tl.where(valid, px, 0.0)


# ---------------------------------------------------------------------------
# Per-axis coordinate helpers
# ---------------------------------------------------------------------------


@triton.jit
def _linear_axis(p, size, stride, PADDING: tl.constexpr):
    """Corner offsets, weight, in-range masks and slope of one axis for linear
    interpolation at coordinate p.

    The offsets are the two corner indices times ``stride`` (the axis's element
    stride in the dense volume), in int64 so that large volumes do not wrap.
    Border padding clamps p to [0, size - 1] and, like grid_sample's
    clip_coordinates_set_grad, gives the clamped coordinate zero slope (the borders
    themselves count as outside). Zeros padding clamps p to [-2, size + 1]: any sample
    beyond that has both corners outside either way, and the clamp keeps the int32
    corner index finite for huge or infinite displacements.
    """
    if PADDING == 1:
        slope = ((p > 0.0) & (p < size - 1.0)).to(tl.float32)
        p = tl.minimum(tl.maximum(p, 0.0), size - 1.0)
    else:
        slope = 1.0
        p = tl.minimum(tl.maximum(p, -2.0), size + 1.0)
    lo_f = tl.floor(p)
    frac = p - lo_f
    lo = lo_f.to(tl.int32)
    hi = lo + 1
    in_lo = (lo >= 0) & (lo < size)
    in_hi = (hi >= 0) & (hi < size)
    return lo.to(tl.int64) * stride, hi.to(tl.int64) * stride, frac, in_lo, in_hi, slope


@triton.jit
def _nearest_axis(p, size, stride, PADDING: tl.constexpr):
    """Offset (int64, index times ``stride``) and in-range mask of the nearest voxel
    along one axis, rounding half to even like grid_sample's nearbyint."""
    if PADDING == 1:
        p = tl.minimum(tl.maximum(p, 0.0), size - 1.0)
    else:
        p = tl.minimum(tl.maximum(p, -2.0), size + 1.0)
    lo_f = tl.floor(p)
    frac = p - lo_f
    odd = (lo_f - 2.0 * tl.floor(lo_f * 0.5)) == 1.0
    up = (frac > 0.5) | ((frac == 0.5) & odd)
    i = (lo_f + up.to(tl.float32)).to(tl.int32)
    inside = (i >= 0) & (i < size)
    return i.to(tl.int64) * stride, inside


# ---------------------------------------------------------------------------
# Per-corner and per-channel helpers
# ---------------------------------------------------------------------------


@triton.jit
def _corner_masks_3d(m, mz0, mz1, my0, my1, mx0, mx1):
    """Which of the eight corners [z][y][x] of each sample to touch: valid and in range.

    The 2-D kernels spell their four masks out: a 2-D twin of this helper took bwd2d
    (bf16, compose) from 142 to 144 registers on sm_90a (the label of an inlined call,
    see the module docstring).
    """
    m00 = m & mz0 & my0
    m01 = m & mz0 & my1
    m10 = m & mz1 & my0
    m11 = m & mz1 & my1
    return m00 & mx0, m00 & mx1, m01 & mx0, m01 & mx1, m10 & mx0, m10 & mx1, m11 & mx0, m11 & mx1


@triton.jit
def _load_corners_2d(src, oy0, oy1, ox0, ox1, m00, m01, m10, m11):
    """The four corners v[y][x] around each sample, in fp32 (0 where masked off)."""
    v00 = tl.load(src + oy0 + ox0, mask=m00, other=0.0).to(tl.float32)
    v01 = tl.load(src + oy0 + ox1, mask=m01, other=0.0).to(tl.float32)
    v10 = tl.load(src + oy1 + ox0, mask=m10, other=0.0).to(tl.float32)
    v11 = tl.load(src + oy1 + ox1, mask=m11, other=0.0).to(tl.float32)
    return v00, v01, v10, v11


@triton.jit
def _load_corners_3d(
    src, oz0, oz1, oy0, oy1, ox0, ox1, m000, m001, m010, m011, m100, m101, m110, m111
):
    """The eight corners v[z][y][x] around each sample, in fp32 (0 where masked off)."""
    v000 = tl.load(src + oz0 + oy0 + ox0, mask=m000, other=0.0).to(tl.float32)
    v001 = tl.load(src + oz0 + oy0 + ox1, mask=m001, other=0.0).to(tl.float32)
    v010 = tl.load(src + oz0 + oy1 + ox0, mask=m010, other=0.0).to(tl.float32)
    v011 = tl.load(src + oz0 + oy1 + ox1, mask=m011, other=0.0).to(tl.float32)
    v100 = tl.load(src + oz1 + oy0 + ox0, mask=m100, other=0.0).to(tl.float32)
    v101 = tl.load(src + oz1 + oy0 + ox1, mask=m101, other=0.0).to(tl.float32)
    v110 = tl.load(src + oz1 + oy1 + ox0, mask=m110, other=0.0).to(tl.float32)
    v111 = tl.load(src + oz1 + oy1 + ox1, mask=m111, other=0.0).to(tl.float32)
    return v000, v001, v010, v011, v100, v101, v110, v111


@triton.jit
def _store_sample(dst, acc, add, valid, mask, ADD_DISP: tl.constexpr):
    """Store one channel of the forward: plus the displacement itself for compose
    (ADD_DISP), NaN where the displacement was, in the output's dtype."""
    if ADD_DISP:
        acc += tl.load(add, mask=mask, other=0.0).to(tl.float32)
    acc = tl.where(valid, acc, float("nan"))
    tl.store(dst, acc.to(dst.dtype.element_ty), mask=mask)


@triton.jit
def _scatter_nearest(gout, dst, off, m, inside, C, step_c, stride_gc):
    """Nearest backward to the image: add grad_out of every channel to the one voxel
    each sample read (``step_c``: the grad_image buffer's channel stride). Nearest is
    piecewise constant in the displacement, so grad_disp gets nothing from it."""
    for _c in range(C):
        g = tl.load(gout, mask=m, other=0.0).to(tl.float32)
        tl.atomic_add(dst + off, g, mask=inside, sem="relaxed")
        gout += stride_gc
        dst += step_c


@triton.jit
def _x_neighbour(
    disp_ptr,
    b,
    stride_db,
    stride_dc,
    j,
    N,
    D,
    H,
    W,
    HW,
    PADDING: tl.constexpr,
    NDIM: tl.constexpr,
    VS: tl.constexpr,
):
    """Where voxel ``j`` (the x-neighbour idx - 1 or idx + 1 of a backward program's
    voxels) samples, for merging atomics (see ``_warp3d_bwd_kernel``): (in, lower z and
    y corner offsets, both x corner offsets, fz, fy, fx). ``in`` is false where j is
    outside the volume or its displacement is NaN. In 2-D (NDIM 2, D = 1, HW = 0) the z
    offset is always 0, so it never blocks a merge."""
    inside = (j >= 0) & (j < N)
    if NDIM == 2:
        valid, py, px = _sample_points_2d(disp_ptr, b, stride_db, stride_dc, j, W, inside, VS)
        pz = py * 0.0
    else:
        valid, pz, py, px = _sample_points_3d(
            disp_ptr, b, stride_db, stride_dc, j, H, W, inside, VS
        )
    oz0, _oz1, fz, _mz0, _mz1, _sz = _linear_axis(pz, D, HW * VS, PADDING)
    oy0, _oy1, fy, _my0, _my1, _sy = _linear_axis(py, H, W * VS, PADDING)
    ox0, ox1, fx, _mx0, _mx1, _sx = _linear_axis(px, W, VS, PADDING)
    return inside & valid, oz0, oy0, ox0, ox1, fz, fy, fx


# ---------------------------------------------------------------------------
# 2-D kernels
# ---------------------------------------------------------------------------


@triton.jit
def _warp2d_fwd_kernel(
    image_ptr,
    disp_ptr,
    out_ptr,
    C,
    H,
    W,
    N,
    stride_ib,
    stride_ic,
    stride_db,
    stride_dc,
    stride_ob,
    stride_oc,
    MODE: tl.constexpr,
    PADDING: tl.constexpr,
    ADD_DISP: tl.constexpr,
    BLOCK_SIZE: tl.constexpr,
    VS: tl.constexpr,
):
    b, idx, mask = _voxel_block(N, BLOCK_SIZE)
    valid, py, px = _sample_points_2d(disp_ptr, b, stride_db, stride_dc, idx, W, mask, VS)
    m = mask & valid

    src = image_ptr + b * stride_ib
    dst = out_ptr + b * stride_ob + idx * VS
    add = disp_ptr + b * stride_db + idx * VS
    if MODE == 0:
        oy0, oy1, fy, my0, my1, _sy = _linear_axis(py, H, W * VS, PADDING)
        ox0, ox1, fx, mx0, mx1, _sx = _linear_axis(px, W, VS, PADDING)
    else:
        oy, my = _nearest_axis(py, H, W * VS, PADDING)
        ox, mx = _nearest_axis(px, W, VS, PADDING)
        off = oy + ox
    for _c in range(C):
        if MODE == 0:
            v00, v01, v10, v11 = _load_corners_2d(
                src, oy0, oy1, ox0, ox1, m & my0 & mx0, m & my0 & mx1, m & my1 & mx0, m & my1 & mx1
            )
            acc = (1.0 - fy) * ((1.0 - fx) * v00 + fx * v01) + fy * ((1.0 - fx) * v10 + fx * v11)
        else:
            acc = tl.load(src + off, mask=m & my & mx, other=0.0).to(tl.float32)
        _store_sample(dst, acc, add, valid, mask, ADD_DISP)
        src += stride_ic
        dst += stride_oc
        add += stride_dc


@triton.jit
def _warp2d_bwd_kernel(
    grad_out_ptr,
    image_ptr,
    disp_ptr,
    grad_image_ptr,
    grad_disp_ptr,
    C,
    H,
    W,
    N,
    stride_gb,
    stride_gc,
    stride_ib,
    stride_ic,
    stride_db,
    stride_dc,
    MODE: tl.constexpr,
    PADDING: tl.constexpr,
    ADD_DISP: tl.constexpr,
    NEED_GRAD_IMAGE: tl.constexpr,
    NEED_GRAD_DISP: tl.constexpr,
    BLOCK_SIZE: tl.constexpr,
    VS: tl.constexpr,
    MERGE: tl.constexpr,
):
    # grad_image is an fp32 (B, C, H, W) buffer and grad_disp a (B, 2, H, W) tensor in
    # the displacement's dtype, both of batch stride C * N and laid out like the image
    # (planar, or interleaved when VS > 1).
    b, idx, mask = _voxel_block(N, BLOCK_SIZE)
    valid, py, px = _sample_points_2d(disp_ptr, b, stride_db, stride_dc, idx, W, mask, VS)
    m = mask & valid

    gout = grad_out_ptr + b * stride_gb + idx * VS
    src = image_ptr + b * stride_ib
    dst = grad_image_ptr + b * C * N
    step_c = N if VS == 1 else 1  # the grad buffers' channel stride
    gdy = tl.zeros([BLOCK_SIZE], dtype=tl.float32)
    gdx = tl.zeros([BLOCK_SIZE], dtype=tl.float32)
    if MODE == 0:
        oy0, oy1, fy, my0, my1, sy = _linear_axis(py, H, W * VS, PADDING)
        ox0, ox1, fx, mx0, mx1, sx = _linear_axis(px, W, VS, PADDING)
        m00 = m & my0 & mx0
        m01 = m & my0 & mx1
        m10 = m & my1 & mx0
        m11 = m & my1 & mx1
        if NEED_GRAD_IMAGE and MERGE:
            # Merged atomics along x, as in _warp3d_bwd_kernel: ~2 a voxel instead of 4.
            in_p, _oz0_p, oy0_p, _ox0_p, ox1_p, _fz_p, fy_p, fx_p = _x_neighbour(
                disp_ptr, b, stride_db, stride_dc, idx - 1, N, 1, H, W, 0, PADDING, 2, VS
            )
            merge_p = m & in_p & (oy0_p == oy0) & (ox1_p == ox0)
            in_n, _oz0_n, oy0_n, ox0_n, _ox1_n, _fz_n, _fy_n, _fx_n = _x_neighbour(
                disp_ptr, b, stride_db, stride_dc, idx + 1, N, 1, H, W, 0, PADDING, 2, VS
            )
            keep_hi = ~(m & in_n & (oy0_n == oy0) & (ox0_n == ox1))
            gy_p0 = (1.0 - fy_p) * fx_p
            gy_p1 = fy_p * fx_p
        for _c in range(C):
            g = tl.load(gout, mask=m, other=0.0).to(tl.float32)
            if NEED_GRAD_DISP:
                v00, v01, v10, v11 = _load_corners_2d(src, oy0, oy1, ox0, ox1, m00, m01, m10, m11)
                gdy += g * ((1.0 - fx) * (v10 - v00) + fx * (v11 - v01))
                gdx += g * ((1.0 - fy) * (v01 - v00) + fy * (v11 - v10))
            if NEED_GRAD_IMAGE:
                lo0 = g * (1.0 - fy) * (1.0 - fx)
                lo1 = g * fy * (1.0 - fx)
                hi0 = g * (1.0 - fy) * fx
                hi1 = g * fy * fx
                m01_hi = m01
                m11_hi = m11
                if MERGE:
                    g_p = tl.load(gout - VS, mask=merge_p, other=0.0).to(tl.float32)
                    lo0 += g_p * gy_p0
                    lo1 += g_p * gy_p1
                    m01_hi = m01 & keep_hi
                    m11_hi = m11 & keep_hi
                tl.atomic_add(dst + oy0 + ox0, lo0, mask=m00, sem="relaxed")
                tl.atomic_add(dst + oy0 + ox1, hi0, mask=m01_hi, sem="relaxed")
                tl.atomic_add(dst + oy1 + ox0, lo1, mask=m10, sem="relaxed")
                tl.atomic_add(dst + oy1 + ox1, hi1, mask=m11_hi, sem="relaxed")
            gout += stride_gc
            src += stride_ic
            dst += step_c
        gdy = gdy * sy
        gdx = gdx * sx
    elif NEED_GRAD_IMAGE:
        oy, my = _nearest_axis(py, H, W * VS, PADDING)
        ox, mx = _nearest_axis(px, W, VS, PADDING)
        _scatter_nearest(gout, dst, oy + ox, m, m & my & mx, C, step_c, stride_gc)

    if NEED_GRAD_DISP:
        if ADD_DISP:
            # compose: out = warp(a, b) + b, so grad_b also gets grad_out itself
            # (NaN voxels included, as the reference's plain addition does).
            gbase = grad_out_ptr + b * stride_gb + idx * VS
            gdy += tl.load(gbase, mask=mask, other=0.0).to(tl.float32)
            gdx += tl.load(gbase + stride_gc, mask=mask, other=0.0).to(tl.float32)
        gd = grad_disp_ptr + b * 2 * N + idx * VS
        tl.store(gd, gdy.to(grad_disp_ptr.dtype.element_ty), mask=mask)
        tl.store(gd + step_c, gdx.to(grad_disp_ptr.dtype.element_ty), mask=mask)


# ---------------------------------------------------------------------------
# 3-D kernels
# ---------------------------------------------------------------------------


@triton.jit
def _warp3d_fwd_kernel(
    image_ptr,
    disp_ptr,
    out_ptr,
    C,
    D,
    H,
    W,
    HW,
    N,
    stride_ib,
    stride_ic,
    stride_db,
    stride_dc,
    stride_ob,
    stride_oc,
    MODE: tl.constexpr,
    PADDING: tl.constexpr,
    ADD_DISP: tl.constexpr,
    BLOCK_SIZE: tl.constexpr,
    VS: tl.constexpr,
):
    b, idx, mask = _voxel_block(N, BLOCK_SIZE)
    valid, pz, py, px = _sample_points_3d(disp_ptr, b, stride_db, stride_dc, idx, H, W, mask, VS)
    m = mask & valid

    src = image_ptr + b * stride_ib
    dst = out_ptr + b * stride_ob + idx * VS
    add = disp_ptr + b * stride_db + idx * VS
    if MODE == 0:
        oz0, oz1, fz, mz0, mz1, _sz = _linear_axis(pz, D, HW * VS, PADDING)
        oy0, oy1, fy, my0, my1, _sy = _linear_axis(py, H, W * VS, PADDING)
        ox0, ox1, fx, mx0, mx1, _sx = _linear_axis(px, W, VS, PADDING)
        m000, m001, m010, m011, m100, m101, m110, m111 = _corner_masks_3d(
            m, mz0, mz1, my0, my1, mx0, mx1
        )
    else:
        oz, mz = _nearest_axis(pz, D, HW * VS, PADDING)
        oy, my = _nearest_axis(py, H, W * VS, PADDING)
        ox, mx = _nearest_axis(px, W, VS, PADDING)
        off = oz + oy + ox
    for _c in range(C):
        if MODE == 0:
            v000, v001, v010, v011, v100, v101, v110, v111 = _load_corners_3d(
                src, oz0, oz1, oy0, oy1, ox0, ox1, m000, m001, m010, m011, m100, m101, m110, m111
            )
            c00 = (1.0 - fx) * v000 + fx * v001
            c01 = (1.0 - fx) * v010 + fx * v011
            c10 = (1.0 - fx) * v100 + fx * v101
            c11 = (1.0 - fx) * v110 + fx * v111
            acc = (1.0 - fz) * ((1.0 - fy) * c00 + fy * c01) + fz * ((1.0 - fy) * c10 + fy * c11)
        else:
            acc = tl.load(src + off, mask=m & mz & my & mx, other=0.0).to(tl.float32)
        _store_sample(dst, acc, add, valid, mask, ADD_DISP)
        src += stride_ic
        dst += stride_oc
        add += stride_dc


@triton.jit
def _warp3d_bwd_kernel(
    grad_out_ptr,
    image_ptr,
    disp_ptr,
    grad_image_ptr,
    grad_disp_ptr,
    C,
    D,
    H,
    W,
    HW,
    N,
    stride_gb,
    stride_gc,
    stride_ib,
    stride_ic,
    stride_db,
    stride_dc,
    MODE: tl.constexpr,
    PADDING: tl.constexpr,
    ADD_DISP: tl.constexpr,
    NEED_GRAD_IMAGE: tl.constexpr,
    NEED_GRAD_DISP: tl.constexpr,
    BLOCK_SIZE: tl.constexpr,
    VS: tl.constexpr,
    MERGE: tl.constexpr,
):
    b, idx, mask = _voxel_block(N, BLOCK_SIZE)
    valid, pz, py, px = _sample_points_3d(disp_ptr, b, stride_db, stride_dc, idx, H, W, mask, VS)
    m = mask & valid

    gout = grad_out_ptr + b * stride_gb + idx * VS
    src = image_ptr + b * stride_ib
    dst = grad_image_ptr + b * C * N
    step_c = N if VS == 1 else 1  # the grad buffers' channel stride
    gdz = tl.zeros([BLOCK_SIZE], dtype=tl.float32)
    gdy = tl.zeros([BLOCK_SIZE], dtype=tl.float32)
    gdx = tl.zeros([BLOCK_SIZE], dtype=tl.float32)
    if MODE == 0:
        oz0, oz1, fz, mz0, mz1, sz = _linear_axis(pz, D, HW * VS, PADDING)
        oy0, oy1, fy, my0, my1, sy = _linear_axis(py, H, W * VS, PADDING)
        ox0, ox1, fx, mx0, mx1, sx = _linear_axis(px, W, VS, PADDING)
        m000, m001, m010, m011, m100, m101, m110, m111 = _corner_masks_3d(
            m, mz0, mz1, my0, my1, mx0, mx1
        )
        gz, gy, gx = 1.0 - fz, 1.0 - fy, 1.0 - fx
        if NEED_GRAD_IMAGE and MERGE:
            # Merged atomics (MERGE; without it, 8 atomics a voxel, as before issue 22).
            # Voxels next to each other along x usually sample next to each other too:
            # voxel i's upper x corners are then voxel i + 1's lower ones, the same four
            # addresses. Where they are (the same lower z and y corners, and
            # ox1(i) == ox0(i + 1): addresses equal, so every corner mask is equal too),
            # voxel i + 1 adds voxel i's upper-x share into its own lower-x atomics and
            # voxel i skips its upper-x ones: ~4 atomics a voxel instead of 8 for a smooth
            # displacement, the same sums (each address still gets every share once).
            # Both voxels decide the merge from the same inputs by the same arithmetic,
            # so they agree exactly; across program boundaries too.
            in_p, oz0_p, oy0_p, _ox0_p, ox1_p, fz_p, fy_p, fx_p = _x_neighbour(
                disp_ptr, b, stride_db, stride_dc, idx - 1, N, D, H, W, HW, PADDING, 3, VS
            )
            merge_p = m & in_p & (oz0_p == oz0) & (oy0_p == oy0) & (ox1_p == ox0)
            in_n, oz0_n, oy0_n, ox0_n, _ox1_n, _fz_n, _fy_n, _fx_n = _x_neighbour(
                disp_ptr, b, stride_db, stride_dc, idx + 1, N, D, H, W, HW, PADDING, 3, VS
            )
            keep_hi = ~(m & in_n & (oz0_n == oz0) & (oy0_n == oy0) & (ox0_n == ox1))
            gzy_p0 = (1.0 - fz_p) * (1.0 - fy_p) * fx_p
            gzy_p1 = (1.0 - fz_p) * fy_p * fx_p
            gzy_p2 = fz_p * (1.0 - fy_p) * fx_p
            gzy_p3 = fz_p * fy_p * fx_p
        for _c in range(C):
            g = tl.load(gout, mask=m, other=0.0).to(tl.float32)
            if NEED_GRAD_DISP:
                v000, v001, v010, v011, v100, v101, v110, v111 = _load_corners_3d(
                    src,
                    oz0,
                    oz1,
                    oy0,
                    oy1,
                    ox0,
                    ox1,
                    m000,
                    m001,
                    m010,
                    m011,
                    m100,
                    m101,
                    m110,
                    m111,
                )
                gdz += g * (
                    gy * (gx * (v100 - v000) + fx * (v101 - v001))
                    + fy * (gx * (v110 - v010) + fx * (v111 - v011))
                )
                gdy += g * (
                    gz * (gx * (v010 - v000) + fx * (v011 - v001))
                    + fz * (gx * (v110 - v100) + fx * (v111 - v101))
                )
                gdx += g * (
                    gz * (gy * (v001 - v000) + fy * (v011 - v010))
                    + fz * (gy * (v101 - v100) + fy * (v111 - v110))
                )
            if NEED_GRAD_IMAGE:
                gzy0 = g * gz * gy
                gzy1 = g * gz * fy
                gzy2 = g * fz * gy
                gzy3 = g * fz * fy
                lo0 = gzy0 * gx
                lo1 = gzy1 * gx
                lo2 = gzy2 * gx
                lo3 = gzy3 * gx
                m001_hi, m011_hi, m101_hi, m111_hi = m001, m011, m101, m111
                if MERGE:
                    # voxel i - 1's upper-x shares, 0 where it does not merge into this one
                    g_p = tl.load(gout - VS, mask=merge_p, other=0.0).to(tl.float32)
                    lo0 += g_p * gzy_p0
                    lo1 += g_p * gzy_p1
                    lo2 += g_p * gzy_p2
                    lo3 += g_p * gzy_p3
                    m001_hi, m011_hi = m001 & keep_hi, m011 & keep_hi
                    m101_hi, m111_hi = m101 & keep_hi, m111 & keep_hi
                tl.atomic_add(dst + oz0 + oy0 + ox0, lo0, mask=m000, sem="relaxed")
                tl.atomic_add(dst + oz0 + oy0 + ox1, gzy0 * fx, mask=m001_hi, sem="relaxed")
                tl.atomic_add(dst + oz0 + oy1 + ox0, lo1, mask=m010, sem="relaxed")
                tl.atomic_add(dst + oz0 + oy1 + ox1, gzy1 * fx, mask=m011_hi, sem="relaxed")
                tl.atomic_add(dst + oz1 + oy0 + ox0, lo2, mask=m100, sem="relaxed")
                tl.atomic_add(dst + oz1 + oy0 + ox1, gzy2 * fx, mask=m101_hi, sem="relaxed")
                tl.atomic_add(dst + oz1 + oy1 + ox0, lo3, mask=m110, sem="relaxed")
                tl.atomic_add(dst + oz1 + oy1 + ox1, gzy3 * fx, mask=m111_hi, sem="relaxed")
            gout += stride_gc
            src += stride_ic
            dst += step_c
        gdz = gdz * sz
        gdy = gdy * sy
        gdx = gdx * sx
    elif NEED_GRAD_IMAGE:
        oz, mz = _nearest_axis(pz, D, HW * VS, PADDING)
        oy, my = _nearest_axis(py, H, W * VS, PADDING)
        ox, mx = _nearest_axis(px, W, VS, PADDING)
        _scatter_nearest(gout, dst, oz + oy + ox, m, m & mz & my & mx, C, step_c, stride_gc)

    if NEED_GRAD_DISP:
        if ADD_DISP:
            gbase = grad_out_ptr + b * stride_gb + idx * VS
            gdz += tl.load(gbase, mask=mask, other=0.0).to(tl.float32)
            gdy += tl.load(gbase + stride_gc, mask=mask, other=0.0).to(tl.float32)
            gdx += tl.load(gbase + 2 * stride_gc, mask=mask, other=0.0).to(tl.float32)
        gd = grad_disp_ptr + b * 3 * N + idx * VS
        tl.store(gd, gdz.to(grad_disp_ptr.dtype.element_ty), mask=mask)
        tl.store(gd + step_c, gdy.to(grad_disp_ptr.dtype.element_ty), mask=mask)
        tl.store(gd + 2 * step_c, gdx.to(grad_disp_ptr.dtype.element_ty), mask=mask)
