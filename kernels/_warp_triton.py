"""The Triton kernels of ``kernels.warp`` (imported only where triton imports).

Kept apart so that ``kernels.warp`` — its checks, launchers and torch fallback —
imports on machines without Triton (macOS, Windows, a CPU container without it).
"""

from __future__ import annotations

import triton
import triton.language as tl

# Kernel-side encodings of the string options (tl.constexpr, so each combination
# compiles to straight-line code).
_LINEAR, _NEAREST = 0, 1
_ZEROS, _BORDER = 0, 1


# ---------------------------------------------------------------------------
# Per-axis coordinate helpers
# ---------------------------------------------------------------------------


@triton.jit
def _linear_axis(p, size, PADDING: tl.constexpr):
    """Corners, weight and slope of one axis for linear interpolation at coordinate p.

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
    return lo, hi, frac, in_lo, in_hi, slope


@triton.jit
def _nearest_axis(p, size, PADDING: tl.constexpr):
    """Nearest voxel along one axis, rounding half to even like grid_sample's nearbyint."""
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
    return i, inside


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
):
    # One program: BLOCK_SIZE voxels of one batch element, all channels (the
    # coordinates and weights are computed once and reused for every channel).
    pid = tl.program_id(0).to(tl.int64)
    b = tl.program_id(1).to(tl.int64)
    idx = pid * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = idx < N
    x = idx % W
    y = idx // W

    disp_base = disp_ptr + b * stride_db + idx
    dy = tl.load(disp_base, mask=mask, other=0.0).to(tl.float32)
    dx = tl.load(disp_base + stride_dc, mask=mask, other=0.0).to(tl.float32)
    py = y.to(tl.float32) + dy
    px = x.to(tl.float32) + dx
    # A NaN displacement makes the voxel NaN in every channel and touches no memory.
    valid = (py == py) & (px == px)
    py = tl.where(valid, py, 0.0)
    px = tl.where(valid, px, 0.0)
    m = mask & valid

    src = image_ptr + b * stride_ib
    dst = out_ptr + b * stride_ob + idx
    add = disp_base
    if MODE == 0:
        y0, y1, fy, my0, my1, _sy = _linear_axis(py, H, PADDING)
        x0, x1, fx, mx0, mx1, _sx = _linear_axis(px, W, PADDING)
        oy0 = y0.to(tl.int64) * W
        oy1 = y1.to(tl.int64) * W
        ox0 = x0.to(tl.int64)
        ox1 = x1.to(tl.int64)
        for _c in range(C):
            v00 = tl.load(src + oy0 + ox0, mask=m & my0 & mx0, other=0.0).to(tl.float32)
            v01 = tl.load(src + oy0 + ox1, mask=m & my0 & mx1, other=0.0).to(tl.float32)
            v10 = tl.load(src + oy1 + ox0, mask=m & my1 & mx0, other=0.0).to(tl.float32)
            v11 = tl.load(src + oy1 + ox1, mask=m & my1 & mx1, other=0.0).to(tl.float32)
            acc = (1.0 - fy) * ((1.0 - fx) * v00 + fx * v01) + fy * ((1.0 - fx) * v10 + fx * v11)
            if ADD_DISP:
                acc += tl.load(add, mask=mask, other=0.0).to(tl.float32)
            acc = tl.where(valid, acc, float("nan"))
            tl.store(dst, acc.to(out_ptr.dtype.element_ty), mask=mask)
            src += stride_ic
            dst += stride_oc
            add += stride_dc
    else:
        yn, my = _nearest_axis(py, H, PADDING)
        xn, mx = _nearest_axis(px, W, PADDING)
        off = yn.to(tl.int64) * W + xn.to(tl.int64)
        for _c in range(C):
            acc = tl.load(src + off, mask=m & my & mx, other=0.0).to(tl.float32)
            if ADD_DISP:
                acc += tl.load(add, mask=mask, other=0.0).to(tl.float32)
            acc = tl.where(valid, acc, float("nan"))
            tl.store(dst, acc.to(out_ptr.dtype.element_ty), mask=mask)
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
):
    # grad_image is a contiguous fp32 (B, C, H, W) buffer; grad_disp a contiguous
    # (B, 2, H, W) tensor in the displacement's dtype.
    pid = tl.program_id(0).to(tl.int64)
    b = tl.program_id(1).to(tl.int64)
    idx = pid * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = idx < N
    x = idx % W
    y = idx // W

    disp_base = disp_ptr + b * stride_db + idx
    py = y.to(tl.float32) + tl.load(disp_base, mask=mask, other=0.0).to(tl.float32)
    px = x.to(tl.float32) + tl.load(disp_base + stride_dc, mask=mask, other=0.0).to(tl.float32)
    valid = (py == py) & (px == px)
    py = tl.where(valid, py, 0.0)
    px = tl.where(valid, px, 0.0)
    m = mask & valid

    gout = grad_out_ptr + b * stride_gb + idx
    src = image_ptr + b * stride_ib
    dst = grad_image_ptr + b * C * N
    gdy = tl.zeros([BLOCK_SIZE], dtype=tl.float32)
    gdx = tl.zeros([BLOCK_SIZE], dtype=tl.float32)
    if MODE == 0:
        y0, y1, fy, my0, my1, sy = _linear_axis(py, H, PADDING)
        x0, x1, fx, mx0, mx1, sx = _linear_axis(px, W, PADDING)
        oy0 = y0.to(tl.int64) * W
        oy1 = y1.to(tl.int64) * W
        ox0 = x0.to(tl.int64)
        ox1 = x1.to(tl.int64)
        m00 = m & my0 & mx0
        m01 = m & my0 & mx1
        m10 = m & my1 & mx0
        m11 = m & my1 & mx1
        for _c in range(C):
            g = tl.load(gout, mask=m, other=0.0).to(tl.float32)
            if NEED_GRAD_DISP:
                v00 = tl.load(src + oy0 + ox0, mask=m00, other=0.0).to(tl.float32)
                v01 = tl.load(src + oy0 + ox1, mask=m01, other=0.0).to(tl.float32)
                v10 = tl.load(src + oy1 + ox0, mask=m10, other=0.0).to(tl.float32)
                v11 = tl.load(src + oy1 + ox1, mask=m11, other=0.0).to(tl.float32)
                gdy += g * ((1.0 - fx) * (v10 - v00) + fx * (v11 - v01))
                gdx += g * ((1.0 - fy) * (v01 - v00) + fy * (v11 - v10))
            if NEED_GRAD_IMAGE:
                tl.atomic_add(dst + oy0 + ox0, g * (1.0 - fy) * (1.0 - fx), mask=m00, sem="relaxed")
                tl.atomic_add(dst + oy0 + ox1, g * (1.0 - fy) * fx, mask=m01, sem="relaxed")
                tl.atomic_add(dst + oy1 + ox0, g * fy * (1.0 - fx), mask=m10, sem="relaxed")
                tl.atomic_add(dst + oy1 + ox1, g * fy * fx, mask=m11, sem="relaxed")
            gout += stride_gc
            src += stride_ic
            dst += N
        gdy = gdy * sy
        gdx = gdx * sx
    else:
        # Nearest: piecewise constant in the displacement, so grad_disp stays zero.
        yn, my = _nearest_axis(py, H, PADDING)
        xn, mx = _nearest_axis(px, W, PADDING)
        off = yn.to(tl.int64) * W + xn.to(tl.int64)
        if NEED_GRAD_IMAGE:
            for _c in range(C):
                g = tl.load(gout, mask=m, other=0.0).to(tl.float32)
                tl.atomic_add(dst + off, g, mask=m & my & mx, sem="relaxed")
                gout += stride_gc
                dst += N

    if NEED_GRAD_DISP:
        if ADD_DISP:
            # compose: out = warp(a, b) + b, so grad_b also gets grad_out itself
            # (NaN voxels included, as the reference's plain addition does).
            gbase = grad_out_ptr + b * stride_gb + idx
            gdy += tl.load(gbase, mask=mask, other=0.0).to(tl.float32)
            gdx += tl.load(gbase + stride_gc, mask=mask, other=0.0).to(tl.float32)
        gd = grad_disp_ptr + b * 2 * N + idx
        tl.store(gd, gdy.to(grad_disp_ptr.dtype.element_ty), mask=mask)
        tl.store(gd + N, gdx.to(grad_disp_ptr.dtype.element_ty), mask=mask)


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
):
    pid = tl.program_id(0).to(tl.int64)
    b = tl.program_id(1).to(tl.int64)
    idx = pid * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = idx < N
    x = idx % W
    t = idx // W
    y = t % H
    z = t // H

    disp_base = disp_ptr + b * stride_db + idx
    pz = z.to(tl.float32) + tl.load(disp_base, mask=mask, other=0.0).to(tl.float32)
    py = y.to(tl.float32) + tl.load(disp_base + stride_dc, mask=mask, other=0.0).to(tl.float32)
    px = x.to(tl.float32) + tl.load(disp_base + 2 * stride_dc, mask=mask, other=0.0).to(tl.float32)
    valid = (pz == pz) & (py == py) & (px == px)
    pz = tl.where(valid, pz, 0.0)
    py = tl.where(valid, py, 0.0)
    px = tl.where(valid, px, 0.0)
    m = mask & valid

    src = image_ptr + b * stride_ib
    dst = out_ptr + b * stride_ob + idx
    add = disp_base
    if MODE == 0:
        z0, z1, fz, mz0, mz1, _sz = _linear_axis(pz, D, PADDING)
        y0, y1, fy, my0, my1, _sy = _linear_axis(py, H, PADDING)
        x0, x1, fx, mx0, mx1, _sx = _linear_axis(px, W, PADDING)
        oz0 = z0.to(tl.int64) * HW
        oz1 = z1.to(tl.int64) * HW
        oy0 = y0.to(tl.int64) * W
        oy1 = y1.to(tl.int64) * W
        ox0 = x0.to(tl.int64)
        ox1 = x1.to(tl.int64)
        m00 = m & mz0 & my0
        m01 = m & mz0 & my1
        m10 = m & mz1 & my0
        m11 = m & mz1 & my1
        for _c in range(C):
            v000 = tl.load(src + oz0 + oy0 + ox0, mask=m00 & mx0, other=0.0).to(tl.float32)
            v001 = tl.load(src + oz0 + oy0 + ox1, mask=m00 & mx1, other=0.0).to(tl.float32)
            v010 = tl.load(src + oz0 + oy1 + ox0, mask=m01 & mx0, other=0.0).to(tl.float32)
            v011 = tl.load(src + oz0 + oy1 + ox1, mask=m01 & mx1, other=0.0).to(tl.float32)
            v100 = tl.load(src + oz1 + oy0 + ox0, mask=m10 & mx0, other=0.0).to(tl.float32)
            v101 = tl.load(src + oz1 + oy0 + ox1, mask=m10 & mx1, other=0.0).to(tl.float32)
            v110 = tl.load(src + oz1 + oy1 + ox0, mask=m11 & mx0, other=0.0).to(tl.float32)
            v111 = tl.load(src + oz1 + oy1 + ox1, mask=m11 & mx1, other=0.0).to(tl.float32)
            c00 = (1.0 - fx) * v000 + fx * v001
            c01 = (1.0 - fx) * v010 + fx * v011
            c10 = (1.0 - fx) * v100 + fx * v101
            c11 = (1.0 - fx) * v110 + fx * v111
            acc = (1.0 - fz) * ((1.0 - fy) * c00 + fy * c01) + fz * ((1.0 - fy) * c10 + fy * c11)
            if ADD_DISP:
                acc += tl.load(add, mask=mask, other=0.0).to(tl.float32)
            acc = tl.where(valid, acc, float("nan"))
            tl.store(dst, acc.to(out_ptr.dtype.element_ty), mask=mask)
            src += stride_ic
            dst += stride_oc
            add += stride_dc
    else:
        zn, mz = _nearest_axis(pz, D, PADDING)
        yn, my = _nearest_axis(py, H, PADDING)
        xn, mx = _nearest_axis(px, W, PADDING)
        off = zn.to(tl.int64) * HW + yn.to(tl.int64) * W + xn.to(tl.int64)
        for _c in range(C):
            acc = tl.load(src + off, mask=m & mz & my & mx, other=0.0).to(tl.float32)
            if ADD_DISP:
                acc += tl.load(add, mask=mask, other=0.0).to(tl.float32)
            acc = tl.where(valid, acc, float("nan"))
            tl.store(dst, acc.to(out_ptr.dtype.element_ty), mask=mask)
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
):
    pid = tl.program_id(0).to(tl.int64)
    b = tl.program_id(1).to(tl.int64)
    idx = pid * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = idx < N
    x = idx % W
    t = idx // W
    y = t % H
    z = t // H

    disp_base = disp_ptr + b * stride_db + idx
    pz = z.to(tl.float32) + tl.load(disp_base, mask=mask, other=0.0).to(tl.float32)
    py = y.to(tl.float32) + tl.load(disp_base + stride_dc, mask=mask, other=0.0).to(tl.float32)
    px = x.to(tl.float32) + tl.load(disp_base + 2 * stride_dc, mask=mask, other=0.0).to(tl.float32)
    valid = (pz == pz) & (py == py) & (px == px)
    pz = tl.where(valid, pz, 0.0)
    py = tl.where(valid, py, 0.0)
    px = tl.where(valid, px, 0.0)
    m = mask & valid

    gout = grad_out_ptr + b * stride_gb + idx
    src = image_ptr + b * stride_ib
    dst = grad_image_ptr + b * C * N
    gdz = tl.zeros([BLOCK_SIZE], dtype=tl.float32)
    gdy = tl.zeros([BLOCK_SIZE], dtype=tl.float32)
    gdx = tl.zeros([BLOCK_SIZE], dtype=tl.float32)
    if MODE == 0:
        z0, z1, fz, mz0, mz1, sz = _linear_axis(pz, D, PADDING)
        y0, y1, fy, my0, my1, sy = _linear_axis(py, H, PADDING)
        x0, x1, fx, mx0, mx1, sx = _linear_axis(px, W, PADDING)
        oz0 = z0.to(tl.int64) * HW
        oz1 = z1.to(tl.int64) * HW
        oy0 = y0.to(tl.int64) * W
        oy1 = y1.to(tl.int64) * W
        ox0 = x0.to(tl.int64)
        ox1 = x1.to(tl.int64)
        m000 = m & mz0 & my0 & mx0
        m001 = m & mz0 & my0 & mx1
        m010 = m & mz0 & my1 & mx0
        m011 = m & mz0 & my1 & mx1
        m100 = m & mz1 & my0 & mx0
        m101 = m & mz1 & my0 & mx1
        m110 = m & mz1 & my1 & mx0
        m111 = m & mz1 & my1 & mx1
        gz, gy, gx = 1.0 - fz, 1.0 - fy, 1.0 - fx
        for _c in range(C):
            g = tl.load(gout, mask=m, other=0.0).to(tl.float32)
            if NEED_GRAD_DISP:
                v000 = tl.load(src + oz0 + oy0 + ox0, mask=m000, other=0.0).to(tl.float32)
                v001 = tl.load(src + oz0 + oy0 + ox1, mask=m001, other=0.0).to(tl.float32)
                v010 = tl.load(src + oz0 + oy1 + ox0, mask=m010, other=0.0).to(tl.float32)
                v011 = tl.load(src + oz0 + oy1 + ox1, mask=m011, other=0.0).to(tl.float32)
                v100 = tl.load(src + oz1 + oy0 + ox0, mask=m100, other=0.0).to(tl.float32)
                v101 = tl.load(src + oz1 + oy0 + ox1, mask=m101, other=0.0).to(tl.float32)
                v110 = tl.load(src + oz1 + oy1 + ox0, mask=m110, other=0.0).to(tl.float32)
                v111 = tl.load(src + oz1 + oy1 + ox1, mask=m111, other=0.0).to(tl.float32)
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
                tl.atomic_add(dst + oz0 + oy0 + ox0, gzy0 * gx, mask=m000, sem="relaxed")
                tl.atomic_add(dst + oz0 + oy0 + ox1, gzy0 * fx, mask=m001, sem="relaxed")
                tl.atomic_add(dst + oz0 + oy1 + ox0, gzy1 * gx, mask=m010, sem="relaxed")
                tl.atomic_add(dst + oz0 + oy1 + ox1, gzy1 * fx, mask=m011, sem="relaxed")
                tl.atomic_add(dst + oz1 + oy0 + ox0, gzy2 * gx, mask=m100, sem="relaxed")
                tl.atomic_add(dst + oz1 + oy0 + ox1, gzy2 * fx, mask=m101, sem="relaxed")
                tl.atomic_add(dst + oz1 + oy1 + ox0, gzy3 * gx, mask=m110, sem="relaxed")
                tl.atomic_add(dst + oz1 + oy1 + ox1, gzy3 * fx, mask=m111, sem="relaxed")
            gout += stride_gc
            src += stride_ic
            dst += N
        gdz = gdz * sz
        gdy = gdy * sy
        gdx = gdx * sx
    else:
        zn, mz = _nearest_axis(pz, D, PADDING)
        yn, my = _nearest_axis(py, H, PADDING)
        xn, mx = _nearest_axis(px, W, PADDING)
        off = zn.to(tl.int64) * HW + yn.to(tl.int64) * W + xn.to(tl.int64)
        if NEED_GRAD_IMAGE:
            for _c in range(C):
                g = tl.load(gout, mask=m, other=0.0).to(tl.float32)
                tl.atomic_add(dst + off, g, mask=m & mz & my & mx, sem="relaxed")
                gout += stride_gc
                dst += N

    if NEED_GRAD_DISP:
        if ADD_DISP:
            gbase = grad_out_ptr + b * stride_gb + idx
            gdz += tl.load(gbase, mask=mask, other=0.0).to(tl.float32)
            gdy += tl.load(gbase + stride_gc, mask=mask, other=0.0).to(tl.float32)
            gdx += tl.load(gbase + 2 * stride_gc, mask=mask, other=0.0).to(tl.float32)
        gd = grad_disp_ptr + b * 3 * N + idx
        tl.store(gd, gdz.to(grad_disp_ptr.dtype.element_ty), mask=mask)
        tl.store(gd + N, gdy.to(grad_disp_ptr.dtype.element_ty), mask=mask)
        tl.store(gd + 2 * N, gdx.to(grad_disp_ptr.dtype.element_ty), mask=mask)
