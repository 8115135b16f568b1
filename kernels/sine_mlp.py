"""Fused SIREN (sine-MLP) evaluation: every layer of ``sin(omega * (W h + b))`` in one
Triton kernel, activations kept on chip.

    from kernels import sine_mlp
    y = sine_mlp(x, weights, biases, omega0=30.0, precision="fp16")

Torch eager runs one matmul and one elementwise kernel per layer and writes every
activation to memory: at 2^20 points and width 256 that is 1 GiB of fp32 per layer,
written and read back (~0.7 ms per layer at 3 TB/s on an H100), against ~0.4 ms for the
whole 3 -> 256 x 3 -> 1 SIREN at fp16 tensor-core speed. Here a program owns BLOCK_M
points and carries their activations through every layer in registers:

- first layer (in_features 1..4): fp32 FMAs, no tensor cores needed (4 FMAs a unit);
- hidden layers: ``tl.dot`` tiles with fp32 accumulation; the sine argument is the fp32
  accumulator, never rounded to half (at omega0 = 30 an fp16 argument of ~30 rad has an
  ulp of 0.016 rad, and errors of up to ~0.1 rad after the omega scaling);
- last layer (width -> out_features, often 1..3): one more ``tl.dot`` with the output
  padded to 16 columns (the minimum dot tile); it adds 16/width of a hidden layer's work.

Omega is folded into the weights and biases on the host (``omega * W`` computed in
float64, rounded once to the operand precision): exact in real arithmetic, and in
floating point one rounding of ``omega * W`` replaces the reference's one rounding of
``omega * (W h + b)``; measured fp32 error is the same as torch's (~1e-6, see tests).

Widths over 128: layer by layer. At width 256 the fused kernel spills (sm_90 compiles:
2.4 KB a thread in the fp32 forward, 15.7 KB in the fp32 backward), so padded widths
over 128 (forward) or 64 (backward) run one kernel a layer instead: a tl.dot GEMM tile
with bias and sine in its epilogue (``_layer_dense_kernel``), the activations written
once in the operand dtype (fp16/bf16: half the bytes of torch's fp32 activations, and
one pass where eager makes two, matmul then sine); the backward is one GEMM + cos
kernel a layer (``_layer_backprop_kernel``). Same roundings as the fused kernel
(activations rounded to the operand dtype before each dot, fp32 accumulation and sine
arguments); see ``_LAYER_SETTINGS`` for the registers of each kernel.

Fused: activations are held as two column halves of WIDTH/2. A single 256 x 256 fp32 weight
operand is 256 KiB, more than an H100's 228 KiB of shared memory, so every layer is
four (WIDTH/2)^2 dots instead of one; for fp16 the halves are 32 KiB each.

Precisions (operands of every layer but the first; accumulation always fp32), with the
worst error against float64 measured on the CPU interpreter over the test problems
(widths 16..256, 1..5 sine layers, SIREN initialisation; forward absolute, gradients
relative to their largest entry); the tests hold each to 8 u sqrt(L) for unit roundoff u
and L layers (fp16 at L = 4: 7.8e-3), derived in ``tests/kernels/test_sine_mlp.py``:

    fp32  tf32x3 on GPU (~fp32)          forward 2.9e-6   gradients 2.7e-6   (torch 2.1e-6)
    tf32  10-bit mantissa, fp32 range    1.7e-3 (exact tf32 emulation; GPU figures owed)
    fp16  fp32 accumulate                forward 1.5e-3   gradients 1.5e-3
    bf16  fp32 accumulate                forward 2.1e-2   gradients 1.6e-2

Backward (``torch.autograd.Function``): the forward saves only x and the parameters,
and the backward recomputes the activations block by block; see ``_SineMLPFunction``.
The gradient with respect to the input coordinates comes from the same backward kernel,
either through autograd or fused on its own with ``sine_mlp_input_grad``.

With ``backend="triton"``, tensors on a device where Triton cannot run (CPU without
``TRITON_INTERPRET=1``, or no triton installed) take the torch reference path instead:
same function, same gradients (by autograd), slower. ``backend="torch"`` always does.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from kernels._triton import check_backend, interpreting, triton_available, triton_can_run
from kernels.reference import (
    SINE_MLP_FINAL_ACTIVATIONS,
    SINE_MLP_PRECISIONS,
    sine_mlp_reference,
)

if triton_available():
    import triton
    import triton.language as tl
else:  # pragma: no cover - exercised only where triton does not install
    triton = None
    tl = None

__all__ = ["MAX_WIDTH", "sine_mlp", "sine_mlp_input_grad"]

MAX_IN_FEATURES = 4
MAX_WIDTH = 256
MAX_OUT_FEATURES = 256

_FINAL_CODE = {None: 0, "sine": 1, "sigmoid": 2, "tanh": 3}
_OPERAND_DTYPE = {
    "fp32": torch.float32,
    "tf32": torch.float32,
    "fp16": torch.float16,
    "bf16": torch.bfloat16,
}
# tl.dot's input_precision matters only for fp32 operands; half operands are exact.
# "fp32" is tf32x3 (a = a_hi + a_lo in tf32, three tensor-core products, the lo*lo one
# dropped: ~2^-22 relative a product, against fp32's 2^-24), not IEEE: compiled for
# sm_90, the IEEE (FMA) dot spills 5.6, 12 and 18 KB of stack a thread at widths 64, 128
# and 256, while tf32x3 fits in registers up to width 128 (the interpreter computes
# both in plain fp32). The backward propagates in tf32 for the reduced precisions: fp32
# range, so small per-point gradients do not underflow as in fp16.
_INPUT_PRECISION = {"fp32": "tf32x3", "tf32": "tf32", "fp16": "ieee", "bf16": "ieee"}
_BACKWARD_INPUT_PRECISION = {"fp32": "tf32x3", "tf32": "tf32", "fp16": "tf32", "bf16": "tf32"}
# Triton's default software pipelining (3 stages) prefetches the next layer's weight
# tiles: at width 256 that took 557-856 KiB of shared memory for fp32/tf32 and 950 KiB
# for the fp16 backward (sm_90 compiles), against 227 KiB on an H100. One stage: 98-196.
_NUM_STAGES = 1

# The backward kernel writes, per chunk of points, the pre-activations (then their
# gradients, in place) and the activations of every sine layer in fp32, for the
# weight-gradient GEMMs. Chunking bounds that scratch to 256 MiB whatever N is; at width
# 256 and 4 sine layers a chunk is 2^15 points, still a long GEMM reduction (K = 32768).
_BACKWARD_SCRATCH_BYTES = 256 * 2**20


# ---------------------------------------------------------------------------
# Triton kernels
# ---------------------------------------------------------------------------

if triton is not None:

    @triton.jit
    def _tile_dot(
        a,
        tile_ptr,
        stride_r,
        stride_c,
        R: tl.constexpr,
        C: tl.constexpr,
        UPCAST: tl.constexpr,
        INPUT_PRECISION: tl.constexpr,
    ):
        """``a @ T`` with ``T[i, j] = tile_ptr[i * stride_r + j * stride_c]`` (R x C),
        ``a`` cast to T's dtype; fp32 accumulation."""
        r = tl.arange(0, R)
        c = tl.arange(0, C)
        b = tl.load(tile_ptr + r[:, None] * stride_r + c[None, :] * stride_c)
        a = a.to(b.dtype)
        if UPCAST:
            # The interpreter keeps bf16 as raw uint16 and its tl.dot multiplies the bit
            # patterns (errors of ~1e10); bf16 values are exact in fp32, so this is the
            # same product. Never set on GPU.
            a = a.to(tl.float32)
            b = b.to(tl.float32)
        return tl.dot(a, b, input_precision=INPUT_PRECISION)

    @triton.jit
    def _first_layer(
        x_ptr,
        w0_ptr,
        b0_ptr,
        rows,
        row_mask,
        stride_xm,
        IN: tl.constexpr,
        WIDTH: tl.constexpr,
    ):
        """Pre-activation of the first layer, as two column halves, by IN fp32 FMAs a unit."""
        HALF: tl.constexpr = WIDTH // 2
        c0 = tl.arange(0, HALF)
        z0 = tl.load(b0_ptr + c0)[None, :]
        z1 = tl.load(b0_ptr + HALF + c0)[None, :]
        for k in tl.static_range(IN):
            xk = tl.load(x_ptr + rows * stride_xm + k, mask=row_mask, other=0.0)[:, None]
            z0 = z0 + xk * tl.load(w0_ptr + k * WIDTH + c0)[None, :]
            z1 = z1 + xk * tl.load(w0_ptr + k * WIDTH + HALF + c0)[None, :]
        return z0, z1

    @triton.jit
    def _hidden_layer(
        h0,
        h1,
        w_ptr,
        b_ptr,
        WIDTH: tl.constexpr,
        UPCAST: tl.constexpr,
        INPUT_PRECISION: tl.constexpr,
    ):
        """``[h0 h1] @ Wt + b`` for a (WIDTH, WIDTH) row-major Wt (W transposed)."""
        HALF: tl.constexpr = WIDTH // 2
        c0 = tl.arange(0, HALF)
        z0 = _tile_dot(h0, w_ptr, WIDTH, 1, HALF, HALF, UPCAST, INPUT_PRECISION)
        z0 += _tile_dot(h1, w_ptr + HALF * WIDTH, WIDTH, 1, HALF, HALF, UPCAST, INPUT_PRECISION)
        z1 = _tile_dot(h0, w_ptr + HALF, WIDTH, 1, HALF, HALF, UPCAST, INPUT_PRECISION)
        z1 += _tile_dot(
            h1, w_ptr + HALF * WIDTH + HALF, WIDTH, 1, HALF, HALF, UPCAST, INPUT_PRECISION
        )
        z0 += tl.load(b_ptr + c0)[None, :]
        z1 += tl.load(b_ptr + HALF + c0)[None, :]
        return z0, z1

    @triton.jit
    def _last_layer(
        h0,
        h1,
        w_ptr,
        b_ptr,
        WIDTH: tl.constexpr,
        OUT_PAD: tl.constexpr,
        UPCAST: tl.constexpr,
        INPUT_PRECISION: tl.constexpr,
    ):
        """``[h0 h1] @ WLt + bL`` for a (WIDTH, OUT_PAD) row-major WLt."""
        HALF: tl.constexpr = WIDTH // 2
        z = _tile_dot(h0, w_ptr, OUT_PAD, 1, HALF, OUT_PAD, UPCAST, INPUT_PRECISION)
        z += _tile_dot(
            h1, w_ptr + HALF * OUT_PAD, OUT_PAD, 1, HALF, OUT_PAD, UPCAST, INPUT_PRECISION
        )
        return z + tl.load(b_ptr + tl.arange(0, OUT_PAD))[None, :]

    @triton.jit
    def _backprop_dot(dz0, dz1, w_ptr, WIDTH: tl.constexpr, INPUT_PRECISION: tl.constexpr):
        """One column half of ``[dz0 dz1] @ W`` for a (WIDTH, WIDTH) row-major Wt = W^T,
        w_ptr at the half's first row of Wt: W[n, k] = Wt[k, n] is read transposed."""
        HALF: tl.constexpr = WIDTH // 2
        dh = _tile_dot(dz0, w_ptr, 1, WIDTH, HALF, HALF, False, INPUT_PRECISION)
        dh += _tile_dot(dz1, w_ptr + HALF, 1, WIDTH, HALF, HALF, False, INPUT_PRECISION)
        return dh

    @triton.jit
    def _final_activation(z, FINAL: tl.constexpr):
        if FINAL == 1:
            z = tl.sin(z)
        elif FINAL == 2:
            z = tl.sigmoid(z)
        elif FINAL == 3:
            z = 2.0 * tl.sigmoid(2.0 * z) - 1.0  # tanh, which tl lacks
        return z

    @triton.jit
    def _final_activation_grad(z, FINAL: tl.constexpr):
        """d final_activation / dz at z (1 for a linear last layer)."""
        if FINAL == 0:
            d = tl.full(z.shape, 1.0, tl.float32)
        elif FINAL == 1:
            d = tl.cos(z)
        elif FINAL == 2:
            s = tl.sigmoid(z)
            d = s * (1.0 - s)
        else:
            t = 2.0 * tl.sigmoid(2.0 * z) - 1.0
            d = 1.0 - t * t
        return d

    @triton.jit
    def _store_halves(ptr, rows, row_mask, a0, a1, WIDTH: tl.constexpr):
        HALF: tl.constexpr = WIDTH // 2
        c0 = tl.arange(0, HALF)
        offs = rows[:, None] * WIDTH + c0[None, :]
        tl.store(ptr + offs, a0, mask=row_mask[:, None])
        tl.store(ptr + offs + HALF, a1, mask=row_mask[:, None])

    @triton.jit
    def _load_halves(ptr, rows, row_mask, WIDTH: tl.constexpr):
        HALF: tl.constexpr = WIDTH // 2
        c0 = tl.arange(0, HALF)
        offs = rows[:, None] * WIDTH + c0[None, :]
        a0 = tl.load(ptr + offs, mask=row_mask[:, None], other=0.0)
        a1 = tl.load(ptr + offs + HALF, mask=row_mask[:, None], other=0.0)
        return a0, a1

    @triton.jit
    def _sine_mlp_fwd_kernel(
        x_ptr,
        w0_ptr,
        b0_ptr,
        wh_ptr,
        bh_ptr,
        wl_ptr,
        bl_ptr,
        y_ptr,
        n_rows,
        stride_xm,
        IN: tl.constexpr,
        OUT: tl.constexpr,
        OUT_PAD: tl.constexpr,
        WIDTH: tl.constexpr,
        NUM_HIDDEN: tl.constexpr,
        FINAL: tl.constexpr,
        UPCAST: tl.constexpr,
        INPUT_PRECISION: tl.constexpr,
        BLOCK_M: tl.constexpr,
    ):
        pid = tl.program_id(0)
        rows = pid.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
        row_mask = rows < n_rows
        z0, z1 = _first_layer(x_ptr, w0_ptr, b0_ptr, rows, row_mask, stride_xm, IN, WIDTH)
        h0 = tl.sin(z0)
        h1 = tl.sin(z1)
        for layer in range(NUM_HIDDEN):
            z0, z1 = _hidden_layer(
                h0,
                h1,
                wh_ptr + layer * WIDTH * WIDTH,
                bh_ptr + layer * WIDTH,
                WIDTH,
                UPCAST,
                INPUT_PRECISION,
            )
            h0 = tl.sin(z0)
            h1 = tl.sin(z1)
        z = _last_layer(h0, h1, wl_ptr, bl_ptr, WIDTH, OUT_PAD, UPCAST, INPUT_PRECISION)
        y = _final_activation(z, FINAL)
        cols = tl.arange(0, OUT_PAD)
        mask = row_mask[:, None] & (cols[None, :] < OUT)
        tl.store(y_ptr + rows[:, None] * OUT + cols[None, :], y, mask=mask)

    @triton.jit
    def _sine_mlp_bwd_kernel(
        x_ptr,
        dy_ptr,
        w0_ptr,
        b0_ptr,
        wh_ptr,
        bh_ptr,
        wl_ptr,
        bl_ptr,
        whb_ptr,
        wlb_ptr,
        z_ptr,
        h_ptr,
        dzl_ptr,
        dx_ptr,
        n_rows,
        stride_xm,
        stride_dym,
        IN: tl.constexpr,
        OUT: tl.constexpr,
        OUT_PAD: tl.constexpr,
        WIDTH: tl.constexpr,
        NUM_HIDDEN: tl.constexpr,
        FINAL: tl.constexpr,
        UPCAST: tl.constexpr,
        INPUT_PRECISION: tl.constexpr,
        BWD_INPUT_PRECISION: tl.constexpr,
        WRITE_PARAM_GRADS: tl.constexpr,
        WRITE_DX: tl.constexpr,
        BLOCK_M: tl.constexpr,
    ):
        """Recompute the forward for BLOCK_M points, then propagate dy back to dx.

        Writes, per sine layer l, the gradient of its (omega-folded) pre-activation over
        z_ptr[l] (where the recomputed pre-activation was parked) and, with
        WRITE_PARAM_GRADS, its activation to h_ptr[l]; the host turns those into weight
        gradients with one GEMM a layer. The recomputation uses the forward's operands
        (wh, wl: same numerics as the forward); the back-propagation uses fp32 copies
        (whb, wlb) so that small gradients do not underflow fp16.
        """
        HALF: tl.constexpr = WIDTH // 2
        pid = tl.program_id(0)
        rows = pid.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
        row_mask = rows < n_rows
        # int64: n_rows is an int32 argument, and n_rows * WIDTH * sine layers passes 2^31
        # at 2^21 rows of width 256 (the chunking keeps n_rows at 2^15 today, but the
        # offset must not depend on that budget).
        layer_stride = tl.cast(n_rows, tl.int64) * WIDTH

        # Forward again, parking every pre-activation in the scratch.
        z0, z1 = _first_layer(x_ptr, w0_ptr, b0_ptr, rows, row_mask, stride_xm, IN, WIDTH)
        _store_halves(z_ptr, rows, row_mask, z0, z1, WIDTH)
        h0 = tl.sin(z0)
        h1 = tl.sin(z1)
        for layer in range(NUM_HIDDEN):
            if WRITE_PARAM_GRADS:
                _store_halves(h_ptr + layer * layer_stride, rows, row_mask, h0, h1, WIDTH)
            z0, z1 = _hidden_layer(
                h0,
                h1,
                wh_ptr + layer * WIDTH * WIDTH,
                bh_ptr + layer * WIDTH,
                WIDTH,
                UPCAST,
                INPUT_PRECISION,
            )
            _store_halves(z_ptr + (layer + 1) * layer_stride, rows, row_mask, z0, z1, WIDTH)
            h0 = tl.sin(z0)
            h1 = tl.sin(z1)
        if WRITE_PARAM_GRADS:
            _store_halves(h_ptr + NUM_HIDDEN * layer_stride, rows, row_mask, h0, h1, WIDTH)
        zl = _last_layer(h0, h1, wl_ptr, bl_ptr, WIDTH, OUT_PAD, UPCAST, INPUT_PRECISION)
        # The scratch is re-read below in another register layout, i.e. partly by other
        # threads of this program: make the stores visible to the whole block first.
        tl.debug_barrier()

        # Backward: last layer, then the hidden layers in reverse, then the first.
        cols = tl.arange(0, OUT_PAD)
        out_mask = row_mask[:, None] & (cols[None, :] < OUT)
        dy = tl.load(dy_ptr + rows[:, None] * stride_dym + cols[None, :], mask=out_mask, other=0.0)
        dzl = dy.to(tl.float32) * _final_activation_grad(zl, FINAL)
        if WRITE_PARAM_GRADS:
            tl.store(dzl_ptr + rows[:, None] * OUT_PAD + cols[None, :], dzl, mask=row_mask[:, None])
        # dh = dzl @ WL, with WL[o, k] = wlb[k, o].
        dh0 = _tile_dot(dzl, wlb_ptr, 1, OUT_PAD, OUT_PAD, HALF, False, BWD_INPUT_PRECISION)
        dh1 = _tile_dot(
            dzl, wlb_ptr + HALF * OUT_PAD, 1, OUT_PAD, OUT_PAD, HALF, False, BWD_INPUT_PRECISION
        )
        for i in range(NUM_HIDDEN):
            layer = NUM_HIDDEN - 1 - i
            zp = z_ptr + (layer + 1) * layer_stride
            z0, z1 = _load_halves(zp, rows, row_mask, WIDTH)
            dz0 = dh0 * tl.cos(z0)
            dz1 = dh1 * tl.cos(z1)
            if WRITE_PARAM_GRADS:
                _store_halves(zp, rows, row_mask, dz0, dz1, WIDTH)
            # dh = dz @ W, with W[n, k] = whb[layer][k, n]: tile (n-half, k-half).
            wp = whb_ptr + layer * WIDTH * WIDTH
            dh0 = _backprop_dot(dz0, dz1, wp, WIDTH, BWD_INPUT_PRECISION)
            dh1 = _backprop_dot(dz0, dz1, wp + HALF * WIDTH, WIDTH, BWD_INPUT_PRECISION)
        z0, z1 = _load_halves(z_ptr, rows, row_mask, WIDTH)
        dz0 = dh0 * tl.cos(z0)
        dz1 = dh1 * tl.cos(z1)
        if WRITE_PARAM_GRADS:
            _store_halves(z_ptr, rows, row_mask, dz0, dz1, WIDTH)
        if WRITE_DX:
            c0 = tl.arange(0, HALF)
            for k in tl.static_range(IN):
                w0k = w0_ptr + k * WIDTH + c0
                dxk = tl.sum(dz0 * tl.load(w0k)[None, :], axis=1)
                dxk += tl.sum(dz1 * tl.load(w0k + HALF)[None, :], axis=1)
                tl.store(dx_ptr + rows * IN + k, dxk, mask=row_mask)

    # -- Layer-by-layer path (padded widths over 128) ---------------------------------
    # One program computes a (BLOCK_M, BLOCK_N) tile of one layer's output: a K-loop of
    # tl.dot over BLOCK_K slices, with bias and sine in the epilogue. Every offset that
    # grows with the number of points is int64 (``rows`` is), so no product overflows.

    @triton.jit
    def _layer_first_kernel(
        x_ptr,
        w0_ptr,
        b0_ptr,
        h_ptr,
        z_ptr,
        n_rows,
        stride_xm,
        IN: tl.constexpr,
        WIDTH: tl.constexpr,
        STORE_Z: tl.constexpr,
        BLOCK_M: tl.constexpr,
        BLOCK_N: tl.constexpr,
    ):
        """h = sin(x @ W0t + b0) (and z, its fp32 argument, with STORE_Z), by IN FMAs."""
        rows = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
        cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
        row_mask = rows < n_rows
        z = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32) + tl.load(b0_ptr + cols)[None, :]
        for k in tl.static_range(IN):
            xk = tl.load(x_ptr + rows * stride_xm + k, mask=row_mask, other=0.0)[:, None]
            z += xk * tl.load(w0_ptr + k * WIDTH + cols)[None, :]
        offs = rows[:, None] * WIDTH + cols[None, :]
        if STORE_Z:
            tl.store(z_ptr + offs, z, mask=row_mask[:, None])
        tl.store(h_ptr + offs, tl.sin(z).to(h_ptr.dtype.element_ty), mask=row_mask[:, None])

    @triton.jit
    def _layer_dense_kernel(
        a_ptr,
        wt_ptr,
        b_ptr,
        out_ptr,
        z_ptr,
        n_rows,
        N_STORE,
        stride_om,
        K: tl.constexpr,
        N: tl.constexpr,
        ACT: tl.constexpr,
        STORE_Z: tl.constexpr,
        UPCAST: tl.constexpr,
        INPUT_PRECISION: tl.constexpr,
        BLOCK_M: tl.constexpr,
        BLOCK_N: tl.constexpr,
        BLOCK_K: tl.constexpr,
    ):
        """out = act(a @ Wt + b) for a (n_rows, K) and a row-major (K, N) Wt.

        ``a`` is cast to Wt's dtype before each dot (fp16/bf16 activations for the half
        precisions, as the fused kernel does in registers), accumulation is fp32 and so
        is the activation's argument. ACT is ``_final_activation``'s code (1: sine).
        Columns >= N_STORE of ``out`` (row stride stride_om) are not written; with
        STORE_Z the fp32 argument goes to z_ptr as (n_rows, N), all columns.
        """
        rows = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
        cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
        row_mask = rows < n_rows
        acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
        for k0 in range(0, K, BLOCK_K):
            kk = k0 + tl.arange(0, BLOCK_K)
            a = tl.load(a_ptr + rows[:, None] * K + kk[None, :], mask=row_mask[:, None], other=0.0)
            b = tl.load(wt_ptr + kk[:, None] * N + cols[None, :])
            a = a.to(b.dtype)
            if UPCAST:  # bf16 under the interpreter only: see _tile_dot
                a = a.to(tl.float32)
                b = b.to(tl.float32)
            acc = tl.dot(a, b, acc, input_precision=INPUT_PRECISION)
        z = acc + tl.load(b_ptr + cols)[None, :]
        if STORE_Z:
            tl.store(z_ptr + rows[:, None] * N + cols[None, :], z, mask=row_mask[:, None])
        h = _final_activation(z, ACT)
        mask = row_mask[:, None] & (cols[None, :] < N_STORE)
        out_offs = rows[:, None] * stride_om + cols[None, :]
        tl.store(out_ptr + out_offs, h.to(out_ptr.dtype.element_ty), mask=mask)

    @triton.jit
    def _layer_backprop_kernel(
        dz_ptr,
        wt_ptr,
        zp_ptr,
        n_rows,
        K: tl.constexpr,
        N: tl.constexpr,
        INPUT_PRECISION: tl.constexpr,
        BLOCK_M: tl.constexpr,
        BLOCK_K: tl.constexpr,
        BLOCK_N: tl.constexpr,
    ):
        """zp <- (dz @ W) * cos(zp), in place: the gradient of the previous sine layer's
        argument, from dz (n_rows, N) fp32, W[n, k] = Wt[k, n] for a row-major (K, N)
        fp32 Wt, and zp (n_rows, K) fp32 holding that layer's argument. A program owns a
        (BLOCK_M, BLOCK_K) tile of zp and reads and writes only that tile of it, so
        overwriting in place is safe."""
        rows = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
        cols = tl.program_id(1) * BLOCK_K + tl.arange(0, BLOCK_K)
        row_mask = rows < n_rows
        acc = tl.zeros([BLOCK_M, BLOCK_K], dtype=tl.float32)
        for n0 in range(0, N, BLOCK_N):
            nn = n0 + tl.arange(0, BLOCK_N)
            d = tl.load(dz_ptr + rows[:, None] * N + nn[None, :], mask=row_mask[:, None], other=0.0)
            w = tl.load(wt_ptr + cols[None, :] * N + nn[:, None])
            acc = tl.dot(d, w, acc, input_precision=INPUT_PRECISION)
        offs = rows[:, None] * K + cols[None, :]
        zp = tl.load(zp_ptr + offs, mask=row_mask[:, None], other=0.0)
        tl.store(zp_ptr + offs, acc * tl.cos(zp), mask=row_mask[:, None])

# ---------------------------------------------------------------------------
# Host side: checks, packing, launch settings, launchers
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Config:
    omega0: float
    first_omega0: float
    final_activation: str | None
    precision: str


@dataclass(frozen=True)
class _Packed:
    """Omega-folded, zero-padded parameters in the kernel's layouts.

    Zero padding is exact: a padded unit has pre-activation 0, so sin(0) = 0 and it adds
    nothing to the next layer.
    """

    w0t: torch.Tensor  # (IN, WIDTH) fp32: first layer, transposed
    b0: torch.Tensor  # (WIDTH,) fp32
    wht: torch.Tensor  # (max(NUM_HIDDEN, 1), WIDTH, WIDTH) operand dtype, each W^T
    bh: torch.Tensor  # (max(NUM_HIDDEN, 1), WIDTH) fp32
    wlt: torch.Tensor  # (WIDTH, OUT_PAD) operand dtype: last layer, transposed
    bl: torch.Tensor  # (OUT_PAD,) fp32
    in_features: int
    out_features: int
    width: int
    out_pad: int
    num_hidden: int


def _next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _check_inputs(
    x: torch.Tensor,
    weights: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor],
    config: _Config,
    backend: str,
) -> None:
    check_backend(backend)
    if config.precision not in SINE_MLP_PRECISIONS:
        raise ValueError(
            f'Invalid precision "{config.precision}". Must be one of {SINE_MLP_PRECISIONS}'
        )
    if config.final_activation not in SINE_MLP_FINAL_ACTIVATIONS:
        raise ValueError(
            f'Invalid final_activation "{config.final_activation}". '
            f"Must be one of {SINE_MLP_FINAL_ACTIVATIONS}"
        )
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a 2-D tensor (N, in_features); got {shape}")
    in_features = x.shape[1]
    if not 1 <= in_features <= MAX_IN_FEATURES:
        raise ValueError(
            f"x must have 1 to {MAX_IN_FEATURES} features (columns); got {in_features}"
        )
    if len(weights) != len(biases):
        raise ValueError(f"got {len(weights)} weights but {len(biases)} biases")
    if len(weights) < 2:
        raise ValueError(
            f"a sine MLP needs at least 2 layers (one sine layer and the output layer); "
            f"got {len(weights)}"
        )
    allowed = (torch.float32,) if backend == "triton" else (torch.float32, torch.float64)
    tensors = {"x": x}
    fan_in = in_features
    for i, (w, b) in enumerate(zip(weights, biases)):
        if not isinstance(w, torch.Tensor) or w.dim() != 2:
            raise ValueError(f"weights[{i}] must be a 2-D tensor (out, in)")
        if w.shape[1] != fan_in:
            raise ValueError(
                f"weights[{i}] has shape {tuple(w.shape)}: expected {fan_in} input columns "
                f"({'x' if i == 0 else f'weights[{i - 1}]'} gives {fan_in} features)"
            )
        if not isinstance(b, torch.Tensor) or tuple(b.shape) != (w.shape[0],):
            got = tuple(b.shape) if isinstance(b, torch.Tensor) else type(b).__name__
            raise ValueError(f"biases[{i}] must have shape ({w.shape[0]},); got {got}")
        limit = MAX_OUT_FEATURES if i == len(weights) - 1 else MAX_WIDTH
        if not 1 <= w.shape[0] <= limit:
            raise ValueError(f"weights[{i}] has {w.shape[0]} outputs; must be 1 to {limit}")
        tensors[f"weights[{i}]"] = w
        tensors[f"biases[{i}]"] = b
        fan_in = w.shape[0]
    for name, t in tensors.items():
        if t.dtype not in allowed:
            raise TypeError(
                f"{name} has dtype {t.dtype}; backend={backend!r} takes {allowed} "
                f"(precision={config.precision!r} picks the compute precision)"
            )
        if t.device != x.device:
            raise ValueError(f"{name} is on {t.device} but x is on {x.device}")


def _pack(
    weights: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor],
    config: _Config,
    operand_dtype: torch.dtype,
) -> _Packed:
    device = weights[0].device
    in_features = weights[0].shape[1]
    hidden = [w.shape[0] for w in weights[:-1]]
    out_features = weights[-1].shape[0]
    # WIDTH/2 is a dot dimension, and tl.dot needs >= 16.
    width = max(32, _next_pow2(max(hidden)))
    out_pad = max(16, _next_pow2(out_features))
    num_hidden = len(weights) - 2

    def folded(t: torch.Tensor, omega: float) -> torch.Tensor:
        return t.detach().double() * omega

    with torch.no_grad():
        w0t = torch.zeros(in_features, width, dtype=torch.float32, device=device)
        w0t[:, : hidden[0]] = folded(weights[0], config.first_omega0).t()
        b0 = torch.zeros(width, dtype=torch.float32, device=device)
        b0[: hidden[0]] = folded(biases[0], config.first_omega0)
        wht = torch.zeros(max(num_hidden, 1), width, width, dtype=operand_dtype, device=device)
        bh = torch.zeros(max(num_hidden, 1), width, dtype=torch.float32, device=device)
        for layer in range(num_hidden):
            w, b = weights[layer + 1], biases[layer + 1]
            wht[layer, : w.shape[1], : w.shape[0]] = folded(w, config.omega0).t()
            bh[layer, : w.shape[0]] = folded(b, config.omega0)
        last_omega = config.omega0 if config.final_activation == "sine" else 1.0
        wlt = torch.zeros(width, out_pad, dtype=operand_dtype, device=device)
        wlt[: hidden[-1], :out_features] = folded(weights[-1], last_omega).t()
        bl = torch.zeros(out_pad, dtype=torch.float32, device=device)
        bl[:out_features] = folded(biases[-1], last_omega)
    return _Packed(w0t, b0, wht, bh, wlt, bl, in_features, out_features, width, out_pad, num_hidden)


# Packing is ~30 small torch ops a call, ~0.1 ms of launches on a GPU: a quarter of the
# 0.4 ms fp16 forward at 2^20 points. Evaluation calls repeat with the same parameters,
# so the last few packings are kept. An entry is valid only for the very same tensor
# objects (weak references, so a freed tensor whose memory is reused cannot match), at
# the same version counter (bumped by every in-place update, an optimiser step
# included) and the same storage pointer (``p.data = ...`` keeps the version).
_PACK_CACHE_SIZE = 8
_pack_cache: dict[tuple, tuple[list, list, _Packed]] = {}


def _packed(
    weights: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor],
    config: _Config,
    operand_dtype: torch.dtype,
) -> _Packed:
    """``_pack``, reusing a recent packing of the very same, unmodified tensors."""
    params = (*weights, *biases)
    try:
        state = [(p._version, p.data_ptr()) for p in params]
    except RuntimeError:  # inference-mode tensors have no version counter: no caching
        return _pack(weights, biases, config, operand_dtype)
    key = (config, operand_dtype, tuple(id(p) for p in params))
    hit = _pack_cache.get(key)
    if hit is not None:
        refs, hit_state, packed = hit
        if all(r() is p for r, p in zip(refs, params)) and hit_state == state:
            return packed
        del _pack_cache[key]
    packed = _pack(weights, biases, config, operand_dtype)
    if len(_pack_cache) >= _PACK_CACHE_SIZE:
        _pack_cache.pop(next(iter(_pack_cache)))  # oldest first: dicts keep insertion order
    _pack_cache[key] = ([weakref.ref(p) for p in params], state, packed)
    return packed


# (BLOCK_M, num_warps) by padded width, from sm_90 compiles of the 3 -> W x 3 -> 1 SIREN
# (Triton 3.9, one stage; tests/kernels/_sine_mlp_aot.py prints these): registers a
# thread of 255, and stack bytes where there are spills (up to 32 bytes of stack is
# libdevice's sin/cos range reduction, not a spill). Shared memory is <= 192 KiB in all.
#   forward  fp16/bf16  W 64: 128/4 139 regs | W 128: 128/8 158 | W 256: 64/8 252
#   forward  tf32       W 64: 128/4 146      | W 128:  64/4 157 | W 256: 64/8 spills 240 B
#   forward  fp32       W 64: 128/4 252      | W 128:  64/4 253 | W 256: 64/8 spills 2.4 KB
#            (W 256: 32/4, 32/8 and 64/16 spill more)
#   backward fp16/bf16  W 64:  64/4 232      | W 128:  32/4 255 | W 256: 32/8 spills 840 B
#   backward tf32       W 64:  64/4 229      | W 128: spills 112 B | W 256: spills 960 B
#   backward fp32       W 64:  64/4 255      | W 128: spills 1.8 KB | W 256: 15.7 KB
#            (W 128: 64/4 spills 608 B in fp16; W 256: 64/8 and 32/4 spill more)
# Larger BLOCK_M is better where it fits: every program reads every weight matrix, so a
# layer does BLOCK_M FLOP per byte of L2 weight traffic (fp16); at ~5.5 TB/s of L2,
# BLOCK_M = 64 caps near 350 TFLOP/s. Measured on an H200 (scripts/sine_mlp_sweep.py,
# results/published/kernels-headline-h200): at W 256 the fp32 forward takes 41 ms at
# 64/8 and 27 ms at 128/8 (torch eager 13.6), the fp32 backward 528 ms at 32/8; fp16
# forward at 64/4 raised a CUDA illegal memory access. A bounds analysis under the
# interpreter (tests/kernels/_bounds.py, test_fused_forward_at_64_4_fp16_width_256_...)
# finds every access of that kernel in bounds and no int32 offset growing with N; 64/4
# was the spilling compile (255 regs, 264 B). Width 256 now runs layer by layer, and
# these settings serve widths up to 128 (64 for the backward), none of which spills.
# Padded widths up to these run fully fused (activations in registers); wider ones run
# layer by layer (_layer_*_kernel), which is what does not spill at width 256. The fused
# backward spills from width 128 in fp32/tf32 (table above), so it stops at 64.
_FUSED_MAX_WIDTH = {"fwd": 128, "bwd": 64}
# Layer by layer, (BLOCK_M, BLOCK_N, BLOCK_K, num_warps, num_stages) of a dense layer by
# precision, and of the backprop kernel (BLOCK_M, BLOCK_K output columns, BLOCK_N
# reduction, ...) by its input precision; from sm_90 compiles of the W 256 SIREN
# (Triton 3.9, tests/kernels/_sine_mlp_aot.py), registers a thread of 255, and stack
# bytes beyond libdevice's 32 (spills) in none; forward / backward recomputation:
#   dense fp16/bf16 128/128/32: 194 / 250 regs (128/128/64 spilled 8 B; 128/64/64 254)
#   dense tf32      128/128/32: 207 / 254
#   dense fp32 (tf32x3) 128/64/32: 190 / 181 (128/128/32 253; 64/64/32 193)
#   backprop tf32 128/64/32: 156 (128/128/32 spilled 152 B) | tf32x3 128/64/32: 181
# The K loop must stay a loop (range, pipelined): unrolled (tl.static_range) the fp32
# dense kernel spilled 1.6 KB.
_LAYER_SETTINGS = {
    "fp16": (128, 128, 32, 8, 3),
    "bf16": (128, 128, 32, 8, 3),
    "tf32": (128, 128, 32, 8, 3),
    "fp32": (128, 64, 32, 8, 3),
}
_BACKPROP_SETTINGS = {"tf32": (128, 64, 32, 8, 3), "tf32x3": (128, 64, 32, 8, 3)}
# The first layer is elementwise (IN FMAs a unit): (BLOCK_M, BLOCK_N, num_warps); 64 rows
# took 254 registers (64 sines a thread), 32 take 122.
_FIRST_LAYER_SETTINGS = (32, 128, 4)
# Scratch a layered call may hold, forward (two activation buffers) or backward (every
# sine layer's argument and activation in fp32): at 2^20 points and width 256 the fp16
# forward holds all points at once (2 x 512 MiB), the backward 2^17 points a chunk.
_LAYERED_SCRATCH_BYTES = 2**30

_FORWARD_SETTINGS = {
    "half": {64: (128, 4), 128: (128, 8), 256: (64, 8)},
    "single": {64: (128, 4), 128: (64, 4), 256: (64, 8)},
}
_BACKWARD_SETTINGS = {64: (64, 4), 128: (32, 4), 256: (32, 8)}


def _launch_settings(width: int, precision: str, backward: bool = False) -> tuple[int, int]:
    """(BLOCK_M, num_warps) for a padded width (32..256) and precision."""
    width = max(64, width)  # widths 32 and 64 share settings
    if backward:
        return _BACKWARD_SETTINGS[width]
    family = "half" if precision in ("fp16", "bf16") else "single"
    return _FORWARD_SETTINGS[family][width]


def _upcast(precision: str) -> bool:
    return precision == "bf16" and interpreting()


def _layered(width: int, backward: bool = False) -> bool:
    """Whether a padded width runs layer by layer rather than fully fused."""
    return width > _FUSED_MAX_WIDTH["bwd" if backward else "fwd"]


def _layer_settings(precision: str, backprop: bool = False) -> tuple[int, int, int, int, int]:
    if backprop:
        return _BACKPROP_SETTINGS[_BACKWARD_INPUT_PRECISION[precision]]
    return _LAYER_SETTINGS[precision]


def _chunk_rows(n: int, bytes_per_row: int, budget: int) -> int:
    """Rows a chunk of scratch holds within ``budget`` bytes: at least one block of
    128 rows (every launch setting's BLOCK_M divides 128), at most n."""
    return min(max(n, 1), max(128, budget // bytes_per_row // 128 * 128))


def _run_layers(
    x: torch.Tensor,
    packed: _Packed,
    config: _Config,
    hs: Sequence[torch.Tensor],
    zs: Sequence[torch.Tensor] | None,
    out: torch.Tensor,
    last_act: int,
    n_store: int,
) -> None:
    """The layer-by-layer forward on the rows of x: sine layer l writes its activation
    to hs[l] (and its fp32 argument to zs[l], when given), each (rows, width)
    contiguous rows; the last layer writes ``last_act`` of its output, columns below
    n_store, to ``out`` (rows, >= n_store)."""
    rows, width = x.shape[0], packed.width
    block_m, block_n, block_k, num_warps, num_stages = _layer_settings(config.precision)
    first_m, first_n, first_warps = _FIRST_LAYER_SETTINGS
    first_n = min(first_n, width)
    store_z = zs is not None
    _layer_first_kernel[(triton.cdiv(rows, first_m), width // first_n)](
        x,
        packed.w0t,
        packed.b0,
        hs[0],
        zs[0] if store_z else hs[0],
        rows,
        x.stride(0),
        IN=packed.in_features,
        WIDTH=width,
        STORE_Z=store_z,
        BLOCK_M=first_m,
        BLOCK_N=first_n,
        num_warps=first_warps,
    )
    common = {
        "UPCAST": _upcast(config.precision),
        "INPUT_PRECISION": _INPUT_PRECISION[config.precision],
        "BLOCK_M": block_m,
        "BLOCK_K": min(block_k, width),
        "num_warps": num_warps,
        "num_stages": num_stages,
    }
    bn = min(block_n, width)
    for layer in range(packed.num_hidden):
        _layer_dense_kernel[(triton.cdiv(rows, block_m), width // bn)](
            hs[layer],
            packed.wht[layer],
            packed.bh[layer],
            hs[layer + 1],
            zs[layer + 1] if store_z else hs[layer + 1],
            rows,
            width,
            width,
            K=width,
            N=width,
            ACT=1,
            STORE_Z=store_z,
            BLOCK_N=bn,
            **common,
        )
    bn = min(block_n, packed.out_pad)
    _layer_dense_kernel[(triton.cdiv(rows, block_m), packed.out_pad // bn)](
        hs[packed.num_hidden],
        packed.wlt,
        packed.bl,
        out,
        out,
        rows,
        n_store,
        out.stride(0),
        K=width,
        N=packed.out_pad,
        ACT=last_act,
        STORE_Z=False,
        BLOCK_N=bn,
        **common,
    )


def _forward_layered(x: torch.Tensor, packed: _Packed, config: _Config, y: torch.Tensor) -> None:
    """y = the SIREN at x, layer by layer through two ping-pong activation buffers of
    the operand dtype (fp16/bf16 for the half precisions), in chunks of rows."""
    n, width = x.shape[0], packed.width
    act_dtype = packed.wht.dtype
    itemsize = torch.empty(0, dtype=act_dtype).element_size()
    chunk = _chunk_rows(n, 2 * width * itemsize, _LAYERED_SCRATCH_BYTES)
    buffers = torch.empty(2, chunk, width, dtype=act_dtype, device=x.device)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        hs = [buffers[layer % 2, : stop - start] for layer in range(packed.num_hidden + 1)]
        final = _FINAL_CODE[config.final_activation]
        _run_layers(x[start:stop], packed, config, hs, None, y[start:stop], final, y.shape[1])


def _backprop_layers(
    dzl: torch.Tensor, zs: Sequence[torch.Tensor], backprop: _Packed, config: _Config
) -> None:
    """zs[l] <- gradient of sine layer l's argument, in place, from dzl (rows,
    OUT_PAD), the gradient of the last layer's output before its activation."""
    rows, width = dzl.shape[0], backprop.width
    block_m, block_k, block_n, num_warps, num_stages = _layer_settings(
        config.precision, backprop=True
    )
    block_k = min(block_k, width)
    common = {
        "INPUT_PRECISION": _BACKWARD_INPUT_PRECISION[config.precision],
        "BLOCK_M": block_m,
        "BLOCK_K": block_k,
        "num_warps": num_warps,
        "num_stages": num_stages,
    }
    grid = (triton.cdiv(rows, block_m), width // block_k)
    n = backprop.out_pad
    _layer_backprop_kernel[grid](
        dzl, backprop.wlt, zs[-1], rows, K=width, N=n, BLOCK_N=min(block_n, n), **common
    )
    for layer in reversed(range(backprop.num_hidden)):
        _layer_backprop_kernel[grid](
            zs[layer + 1],
            backprop.wht[layer],
            zs[layer],
            rows,
            K=width,
            N=width,
            BLOCK_N=min(block_n, width),
            **common,
        )


def _final_activation_grad_torch(z: torch.Tensor, final: str | None) -> torch.Tensor:
    """d final_activation / dz, as ``_final_activation_grad`` (1 for a linear output)."""
    if final is None:
        return torch.ones_like(z)
    if final == "sine":
        return torch.cos(z)
    if final == "sigmoid":
        s = torch.sigmoid(z)
        return s * (1.0 - s)
    t = torch.tanh(z)
    return 1.0 - t * t


def _forward(x: torch.Tensor, packed: _Packed, config: _Config) -> torch.Tensor:
    n = x.shape[0]
    x = x.contiguous()
    y = torch.empty(n, packed.out_features, dtype=torch.float32, device=x.device)
    if n == 0:
        return y
    if _layered(packed.width):
        _forward_layered(x, packed, config, y)
        return y
    block_m, num_warps = _launch_settings(packed.width, config.precision)
    grid = (triton.cdiv(n, block_m),)
    _sine_mlp_fwd_kernel[grid](
        x,
        packed.w0t,
        packed.b0,
        packed.wht,
        packed.bh,
        packed.wlt,
        packed.bl,
        y,
        n,
        x.stride(0),
        IN=packed.in_features,
        OUT=packed.out_features,
        OUT_PAD=packed.out_pad,
        WIDTH=packed.width,
        NUM_HIDDEN=packed.num_hidden,
        FINAL=_FINAL_CODE[config.final_activation],
        UPCAST=_upcast(config.precision),
        INPUT_PRECISION=_INPUT_PRECISION[config.precision],
        BLOCK_M=block_m,
        num_warps=num_warps,
        num_stages=_NUM_STAGES,
    )
    return y


def _backward(
    x: torch.Tensor,
    dy: torch.Tensor,
    weights: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor],
    packed: _Packed,
    config: _Config,
    *,
    need_dx: bool,
    need_params: bool,
) -> tuple[torch.Tensor | None, list[torch.Tensor] | None, list[torch.Tensor] | None]:
    """dx, dweights, dbiases (each None where not needed) for upstream gradient dy."""
    n = x.shape[0]
    device = x.device
    x = x.contiguous()
    dy = dy.contiguous().float()
    width, out_pad, num_hidden = packed.width, packed.out_pad, packed.num_hidden
    sine_layers = num_hidden + 1
    # Back-propagation operands in fp32 (tf32 on tensor cores) whatever the forward
    # precision: fp16's smallest normal, 6e-5, is above many per-point gradients.
    if packed.wht.dtype == torch.float32:
        backprop = packed
    else:
        backprop = _packed(weights, biases, config, torch.float32)

    dx = torch.empty(n, packed.in_features, dtype=torch.float32, device=device) if need_dx else None
    acc_w = [torch.zeros(w.shape, dtype=torch.float32, device=device) for w in weights]
    acc_b = [torch.zeros(w.shape[0], dtype=torch.float32, device=device) for w in weights]

    layered = _layered(width, backward=True)
    if layered:
        # The layered forward needs every activation buffer, and its dzl is always used.
        per_row = (2 * sine_layers * width + out_pad) * 4
        chunk = _chunk_rows(n, per_row, _LAYERED_SCRATCH_BYTES)
    else:
        block_m, num_warps = _launch_settings(width, config.precision, backward=True)
        per_row = (2 if need_params else 1) * sine_layers * width * 4
        chunk = max(block_m, (_BACKWARD_SCRATCH_BYTES // per_row) // block_m * block_m)
        chunk = min(chunk, max(n, 1))
    z = torch.empty(sine_layers, chunk, width, dtype=torch.float32, device=device)
    h = torch.empty_like(z) if need_params or layered else z  # unused pointer when not needed
    dzl = (
        torch.empty(chunk, out_pad, dtype=torch.float32, device=device)
        if need_params or layered
        else z
    )
    dummy_dx = torch.empty(1, dtype=torch.float32, device=device)

    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        rows = stop - start
        xc, dyc = x[start:stop], dy[start:stop]
        if layered:
            zs = [z[layer, :rows] for layer in range(sine_layers)]
            hs = [h[layer, :rows] for layer in range(sine_layers)]
            # Recompute: the last layer's output before its activation goes to dzl.
            _run_layers(xc, packed, config, hs, zs, dzl[:rows], 0, out_pad)
            zl = dzl[:rows, : packed.out_features]
            dzl[:rows, : packed.out_features] = dyc * _final_activation_grad_torch(
                zl, config.final_activation
            )
            dzl[:rows, packed.out_features :] = 0.0
            _backprop_layers(dzl[:rows], zs, backprop, config)
            if need_dx:
                torch.matmul(zs[0], packed.w0t.t(), out=dx[start:stop])
            if need_params:
                _accumulate_param_grads(acc_w, acc_b, xc, zs, hs, dzl[:rows], weights, packed)
            continue
        grid = (triton.cdiv(rows, block_m),)
        _sine_mlp_bwd_kernel[grid](
            xc,
            dyc,
            packed.w0t,
            packed.b0,
            packed.wht,
            packed.bh,
            packed.wlt,
            packed.bl,
            backprop.wht,
            backprop.wlt,
            z,
            h,
            dzl,
            dx[start:stop] if need_dx else dummy_dx,
            rows,
            xc.stride(0),
            dyc.stride(0),
            IN=packed.in_features,
            OUT=packed.out_features,
            OUT_PAD=out_pad,
            WIDTH=width,
            NUM_HIDDEN=num_hidden,
            FINAL=_FINAL_CODE[config.final_activation],
            UPCAST=_upcast(config.precision),
            INPUT_PRECISION=_INPUT_PRECISION[config.precision],
            BWD_INPUT_PRECISION=_BACKWARD_INPUT_PRECISION[config.precision],
            WRITE_PARAM_GRADS=need_params,
            WRITE_DX=need_dx,
            BLOCK_M=block_m,
            num_warps=num_warps,
            num_stages=_NUM_STAGES,
        )
        if not need_params:
            continue
        # Scratch rows: z[l] is the first `rows` rows (the kernel indexes with n_rows=rows).
        dz = z.view(-1)[: sine_layers * rows * width].view(sine_layers, rows, width)
        hs = h.view(-1)[: sine_layers * rows * width].view(sine_layers, rows, width)
        _accumulate_param_grads(acc_w, acc_b, xc, dz, hs, dzl[:rows], weights, packed)

    if not need_params:
        return dx, None, None
    # Unfold omega: the kernel differentiated with respect to omega * W and omega * b.
    last_omega = config.omega0 if config.final_activation == "sine" else 1.0
    omegas = [config.first_omega0] + [config.omega0] * num_hidden + [last_omega]
    dweights = [g * o for g, o in zip(acc_w, omegas)]
    dbiases = [g * o for g, o in zip(acc_b, omegas)]
    return dx, dweights, dbiases


def _accumulate_param_grads(
    acc_w: list[torch.Tensor],
    acc_b: list[torch.Tensor],
    xc: torch.Tensor,
    dz: Sequence[torch.Tensor],
    hs: Sequence[torch.Tensor],
    dzl: torch.Tensor,
    weights: Sequence[torch.Tensor],
    packed: _Packed,
) -> None:
    """Add one chunk's weight and bias gradients (omega-folded): dz[l] is sine layer
    l's argument gradient, hs[l] its activation (rows, width), dzl the last layer's
    (rows, OUT_PAD); one GEMM a layer."""
    hidden = [w.shape[0] for w in weights[:-1]]
    # First layer: dW0 = dz0^T x (width x IN), cheap.
    acc_w[0] += dz[0][:, : hidden[0]].t() @ xc.float()
    acc_b[0] += dz[0][:, : hidden[0]].sum(0)
    for layer in range(1, packed.num_hidden + 1):
        fan_out, fan_in = weights[layer].shape
        acc_w[layer] += dz[layer][:, :fan_out].t() @ hs[layer - 1][:, :fan_in]
        acc_b[layer] += dz[layer][:, :fan_out].sum(0)
    dzl_rows = dzl[:, : packed.out_features]
    acc_w[-1] += dzl_rows.t() @ hs[packed.num_hidden][:, : hidden[-1]]
    acc_b[-1] += dzl_rows.sum(0)


class _SineMLPFunction(torch.autograd.Function):
    """Fused forward; backward by recomputation.

    Why recompute rather than save: the forward is evaluation-first and saving every
    pre-activation would cost, at 2^20 points, width 256 and 4 sine layers, 4 GiB of fp32
    written by the forward and held until the backward (2^20 x 256 x 4 B x 4), ~1.4 ms
    of HBM traffic at 3 TB/s just to write it, 3.5x the whole fp16 forward (~0.4 ms).
    Recomputing costs one more forward (+50% of the backward's FLOPs: forward 1 unit,
    backward 2) and keeps the forward's memory at x and y. The backward then writes the
    per-layer activations and pre-activation gradients anyway, for the weight-gradient
    GEMMs, but in chunks of at most 256 MiB rather than all of them at once.

    A weight gradient is a reduction over all N points (width x width per layer):
    accumulating it inside the kernel would need 256 KiB of fp32 a layer per program,
    so it is one GEMM a layer (dZ_l^T @ H_{l-1}, K = chunk) on the host, as
    tiny-cuda-nn's fully fused MLP does.

    Double backward (gradients of the input gradient, e.g. a PINN residual trained
    through its derivatives) is not supported by the Triton path: use backend="torch".
    """

    @staticmethod
    def forward(ctx, x, config, *params):  # type: ignore[override]
        count = len(params) // 2
        weights, biases = params[:count], params[count:]
        packed = _packed(weights, biases, config, _OPERAND_DTYPE[config.precision])
        ctx.config = config
        ctx.packed = packed
        ctx.count = count
        ctx.save_for_backward(x, *params)
        return _forward(x, packed, config)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy):  # type: ignore[override]
        x, *params = ctx.saved_tensors
        weights, biases = params[: ctx.count], params[ctx.count :]
        need_dx = ctx.needs_input_grad[0]
        need_params = any(ctx.needs_input_grad[2:])
        dx, dweights, dbiases = _backward(
            x,
            dy,
            weights,
            biases,
            ctx.packed,
            ctx.config,
            need_dx=need_dx,
            need_params=need_params,
        )
        if dweights is None:
            dweights = [None] * ctx.count
            dbiases = [None] * ctx.count
        return (dx, None, *dweights, *dbiases)


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def _use_triton(x: torch.Tensor, backend: str) -> bool:
    return backend == "triton" and triton_can_run(x.device.type)


def sine_mlp(
    x: torch.Tensor,
    weights: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor],
    *,
    omega0: float = 30.0,
    first_omega0: float = 30.0,
    final_activation: str | None = None,
    precision: str = "fp32",
    backend: str = "triton",
) -> torch.Tensor:
    """Evaluate a SIREN on points ``x``: ``h <- sin(omega * (W h + b))`` layer by layer.

    Args:
        x: (N, in_features) float32 coordinates, in_features 1 to 4.
        weights: per layer, (out, in) float32 like ``nn.Linear.weight``; at least two
            layers (one sine layer and the output layer); hidden widths up to 256.
        biases: per layer, (out,) float32.
        omega0: frequency of the hidden sine layers (and of a "sine" final activation).
        first_omega0: frequency of the first layer.
        final_activation: None (linear output, SIREN), "sine", "sigmoid" or "tanh".
        precision: matmul operands of every layer but the first: "fp32" (tf32x3),
            "tf32", "fp16" or "bf16"; accumulation and sine arguments are fp32 always.
        backend: "triton" (fused kernel; falls back to the reference where Triton cannot
            run on x's device) or "torch" (the reference, ``kernels.reference``).

    Returns:
        (N, out_features) float32, differentiable with respect to x, weights and biases.
    """
    config = _Config(float(omega0), float(first_omega0), final_activation, precision)
    _check_inputs(x, weights, biases, config, backend)
    if not _use_triton(x, backend):
        return sine_mlp_reference(
            x,
            weights,
            biases,
            omega0=omega0,
            first_omega0=first_omega0,
            final_activation=final_activation,
            precision=precision,
        )
    return _SineMLPFunction.apply(x, config, *weights, *biases)


def sine_mlp_input_grad(
    x: torch.Tensor,
    weights: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor],
    grad_output: torch.Tensor | None = None,
    *,
    omega0: float = 30.0,
    first_omega0: float = 30.0,
    final_activation: str | None = None,
    precision: str = "fp32",
    backend: str = "triton",
) -> torch.Tensor:
    """Gradient of ``sum(grad_output * sine_mlp(x, ...))`` with respect to x, (N, in).

    With one output and ``grad_output=None`` (ones) this is the spatial gradient of the
    field, as Poisson fitting and PINN residuals need. The Triton path is one fused
    recompute-and-backpropagate pass that writes no parameter-gradient scratch and
    builds no autograd graph; the result is detached (no double backward). The torch
    path uses ``torch.autograd.grad`` on the reference (``create_graph=False``).
    """
    config = _Config(float(omega0), float(first_omega0), final_activation, precision)
    _check_inputs(x, weights, biases, config, backend)
    out_features = weights[-1].shape[0]
    if grad_output is None:
        grad_output = torch.ones(x.shape[0], out_features, dtype=x.dtype, device=x.device)
    if tuple(grad_output.shape) != (x.shape[0], out_features):
        raise ValueError(
            f"grad_output must have shape {(x.shape[0], out_features)}; "
            f"got {tuple(grad_output.shape)}"
        )
    if grad_output.device != x.device:
        raise ValueError(f"grad_output is on {grad_output.device} but x is on {x.device}")
    if not _use_triton(x, backend):
        with torch.enable_grad():
            xr = x.detach().requires_grad_(True)
            y = sine_mlp_reference(
                xr,
                [w.detach() for w in weights],
                [b.detach() for b in biases],
                omega0=omega0,
                first_omega0=first_omega0,
                final_activation=final_activation,
                precision=precision,
            )
            (dx,) = torch.autograd.grad(y, xr, grad_output.to(y.dtype))
        return dx
    packed = _packed(weights, biases, config, _OPERAND_DTYPE[precision])
    dx, _, _ = _backward(
        x.detach(), grad_output, weights, biases, packed, config, need_dx=True, need_params=False
    )
    return dx
