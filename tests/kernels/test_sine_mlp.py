"""sine_mlp (kernels/sine_mlp.py) against its torch reference and against float64.

On CPU the Triton kernels run under TRITON_INTERPRET=1 (tests/conftest.py sets it).

Tolerances, in units of the operand precision's unit roundoff u (fp32 2^-24, tf32 and
fp16 2^-11, bf16 2^-8; ``SINE_MLP_UNIT_ROUNDOFF``):

- A hidden sine argument is a K-term dot product of omega-folded SIREN weights
  (w ~ U(+-sqrt(6/K)), var 2/K) and activations (sines, var ~1/2): unit variance. Rounding
  both operands to relative precision u (uniform error, var u^2/3 each) perturbs each
  term by var (1/K)(2u^2/3), so the argument by std sqrt(2/3) u ~ 0.82 u whatever K.
  SIREN's initialisation keeps unit gain from layer to layer, so L such errors add in
  quadrature: std ~0.82 u sqrt(L) at the output; the largest of a few hundred outputs
  is ~3.5 sigma ~ 3 u sqrt(L). We allow 8 u sqrt(L), ~2.7x that, because the GPU's
  accumulation order and sine differ from the interpreter's. Measured on the CPU
  interpreter over CASES with seeds 0..2, max |y - y_float64| / (u sqrt(L)) is 1.4 for
  fp16 (1.5e-3 absolute) and 2.4 for bf16 (2.1e-2 absolute).
- Gradients are compared relative to each gradient's largest entry, with the same
  8 u sqrt(L): the backward recomputes the forward with the same operands (error as
  above) and back-propagates in fp32/tf32 (on GPU tf32, u = 2^-11 again, which at most
  doubles the variance). Measured: 1.4 u sqrt(L) for fp16, 1.7 u sqrt(L) for bf16.
- tf32: the interpreter computes tf32 dots in fp32 (measured error 3e-6, like fp32),
  but the assertion uses tf32's GPU tolerance (u = 2^-11), which is what a GPU must meet.
  The reference's exact emulation of tf32 operand rounding errs by 1.7e-3, like fp16,
  and is held to the same tolerance (test_emulated_tf32_meets_the_tf32_tolerance).
- fp32: the issue's 1e-5 absolute, both against torch fp32 and against float64
  (measured <= 3e-6 forward, 2.7e-6 relative for gradients; torch fp32 itself 2e-6).
- fp16/bf16 on the interpreter: fp16 tl.dot is numpy matmul of fp16 inputs with fp32
  output (tensor-core semantics); bf16 is upcast to fp32 before the dot, exact for bf16
  values. Both are what an H100 computes, up to summation order.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kernels._triton import triton_available, triton_can_run
from kernels.reference import (
    SINE_MLP_PRECISIONS,
    SINE_MLP_UNIT_ROUNDOFF,
    round_to_tf32,
    sine_mlp_reference,
    siren_parameters,
)
from kernels.sine_mlp import sine_mlp, sine_mlp_input_grad
from tests.kernels._bounds import checked_accesses
from tests.kernels._sine_mlp_aot import H100_SHARED_BYTES

# The module (the package attribute `kernels.sine_mlp` is the function).
sine_mlp_module = importlib.import_module("kernels.sine_mlp")

needs_triton = pytest.mark.skipif(
    not triton_can_run("cpu") and not torch.cuda.is_available(),
    reason="Triton cannot run here (no triton, or CPU without TRITON_INTERPRET=1)",
)
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"

# (N, in_features, hidden widths, out_features, final_activation): odd N, widths 16..256
# (powers of two and not), depth (sine layers) 1..5, in_features 1..4.
CASES = [
    pytest.param(37, 1, [16], 1, None, id="1-16-1"),
    pytest.param(129, 2, [32, 32], 1, None, id="2-32x2-1"),
    # The SIREN 3 -> 256 x 3 -> 1: four sine layers, three 256 x 256 matmuls.
    pytest.param(37, 3, [256] * 4, 1, None, id="3-256x3-1"),
    pytest.param(129, 4, [20, 48, 100, 64], 3, "sine", id="4-20-48-100-64-3-sine"),
    pytest.param(37, 3, [128] * 5, 2, "tanh", id="3-128x5-2-tanh"),
    pytest.param(37, 2, [64, 64], 3, "sigmoid", id="2-64x2-3-sigmoid"),
    # Width 256 layer by layer: 200 points (not a multiple of any BLOCK_M), an odd
    # width padded to 256, and a final activation.
    pytest.param(200, 2, [256, 200], 2, "sigmoid", id="2-256-200-2-sigmoid"),
]
# Backward cases: fewer, as each is a forward plus a backward in the interpreter.
GRAD_CASES = [CASES[1], CASES[2], CASES[3], CASES[5], CASES[6]]


def _problem(n, in_features, hidden, out_features, seed=0):
    g = torch.Generator().manual_seed(seed)
    weights, biases = siren_parameters(in_features, hidden, out_features, generator=g)
    x = torch.rand(n, in_features, generator=g) * 2 - 1
    dy = torch.randn(n, out_features, generator=g)
    move = [t.to(DEVICE) for t in (x, dy)]
    return move[0], [w.to(DEVICE) for w in weights], [b.to(DEVICE) for b in biases], move[1]


def _tolerance(precision: str, sine_layers: int) -> float:
    """8 u sqrt(L): see the module docstring."""
    return 8 * SINE_MLP_UNIT_ROUNDOFF[precision] * math.sqrt(sine_layers + 1)


def _float64_forward_and_grads(x, weights, biases, dy, final_activation):
    params = [p.detach().double().requires_grad_() for p in (*weights, *biases)]
    x64 = x.detach().double().requires_grad_()
    count = len(weights)
    y = sine_mlp_reference(x64, params[:count], params[count:], final_activation=final_activation)
    grads = torch.autograd.grad(y, [x64, *params], dy.double())
    return y.detach(), grads


def _max_rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).abs().max() / b.double().abs().max()).item()


# ---------------------------------------------------------------------------
# forward
# ---------------------------------------------------------------------------


@needs_triton
@pytest.mark.parametrize("precision", SINE_MLP_PRECISIONS)
@pytest.mark.parametrize(("n", "in_features", "hidden", "out_features", "final"), CASES)
def test_forward_matches_float64(n, in_features, hidden, out_features, final, precision):
    x, weights, biases, _ = _problem(n, in_features, hidden, out_features)
    y = sine_mlp(x, weights, biases, final_activation=final, precision=precision)
    assert y.shape == (n, out_features) and y.dtype == torch.float32
    y64 = sine_mlp_reference(
        x.double(),
        [w.double() for w in weights],
        [b.double() for b in biases],
        final_activation=final,
    )
    tol = 1e-5 if precision == "fp32" else _tolerance(precision, len(hidden))
    err = (y.double() - y64).abs().max().item()
    assert err <= tol, f"{precision}: max |y - y_float64| = {err:.2e} > {tol:.2e}"


@needs_triton
@pytest.mark.parametrize(("n", "in_features", "hidden", "out_features", "final"), CASES)
def test_fp32_forward_matches_torch_to_1e_5(n, in_features, hidden, out_features, final):
    x, weights, biases, _ = _problem(n, in_features, hidden, out_features, seed=1)
    y = sine_mlp(x, weights, biases, final_activation=final)
    expected = sine_mlp(x, weights, biases, final_activation=final, backend="torch")
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("n", "in_features", "hidden", "out_features", "final"), CASES)
def test_emulated_tf32_meets_the_tf32_tolerance(n, in_features, hidden, out_features, final):
    """The interpreter cannot exercise tf32; real tf32 operand rounding (the reference
    rounds operands to 10 mantissa bits) shows the tf32 tolerance is met with margin."""
    x, weights, biases, _ = _problem(n, in_features, hidden, out_features)
    y = sine_mlp(x, weights, biases, final_activation=final, precision="tf32", backend="torch")
    y64 = sine_mlp_reference(
        x.double(),
        [w.double() for w in weights],
        [b.double() for b in biases],
        final_activation=final,
    )
    fp32_err = sine_mlp(x, weights, biases, final_activation=final, backend="torch") - y64
    err = (y.double() - y64).abs().max().item()
    # Far above fp32's error (the rounding really happens), within tf32's tolerance.
    assert 10 * fp32_err.abs().max().item() < err <= _tolerance("tf32", len(hidden))


@needs_triton
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_tracks_its_emulating_reference(precision):
    """The kernel and the reference's operand-rounding emulation make the same roundings
    (the kernel rounds omega * W, the reference W: one rounding each), so they agree to
    the same 8 u sqrt(L) as either does to float64, and both are much closer to float64
    than a bug (an unrounded or doubly rounded layer) would leave them."""
    x, weights, biases, _ = _problem(129, 3, [64, 64, 64], 1, seed=2)
    y = sine_mlp(x, weights, biases, precision=precision)
    emulated = sine_mlp(x, weights, biases, precision=precision, backend="torch")
    assert (y - emulated).abs().max().item() <= _tolerance(precision, 3)


@needs_triton
@pytest.mark.parametrize("omega0", [1.0, 30.0, 60.0])
def test_omegas_and_first_omega(omega0):
    """With first_omega0 = 120 the first arguments reach ~200 rad, where an fp32 ulp is
    1.5e-5: then no fp32 code can meet 1e-5, so the kernel must be as good as torch fp32
    (within 2x) against float64, and meet 1e-5 where torch does."""
    x, weights, biases, _ = _problem(37, 2, [48, 48], 2, seed=3)
    kwargs = {"omega0": omega0, "first_omega0": 2 * omega0, "final_activation": "sine"}
    y = sine_mlp(x, weights, biases, **kwargs)
    y32 = sine_mlp(x, weights, biases, backend="torch", **kwargs)
    y64 = sine_mlp(
        x.double(),
        [w.double() for w in weights],
        [b.double() for b in biases],
        backend="torch",
        **kwargs,
    )
    torch_err = (y32.double() - y64).abs().max().item()
    err = (y.double() - y64).abs().max().item()
    assert err <= max(1e-5, 2 * torch_err), (err, torch_err)


@needs_triton
def test_strided_input_and_empty_batch():
    x, weights, biases, _ = _problem(37, 3, [32], 1, seed=4)
    wide = torch.cat([x, torch.ones_like(x)], dim=1)[:, :3]  # row stride 6
    assert not wide.is_contiguous()
    torch.testing.assert_close(
        sine_mlp(wide, weights, biases), sine_mlp(x, weights, biases), atol=0, rtol=0
    )
    assert sine_mlp(x[:0], weights, biases).shape == (0, 1)


@needs_triton
def test_packed_parameters_are_reused_until_modified(monkeypatch):
    x, weights, biases, _ = _problem(37, 2, [32, 32], 1, seed=18)
    calls = []
    pack = sine_mlp_module._pack
    monkeypatch.setattr(sine_mlp_module, "_pack", lambda *args: calls.append(1) or pack(*args))
    first = sine_mlp(x, weights, biases)
    assert torch.equal(sine_mlp(x, weights, biases), first) and len(calls) == 1
    with torch.no_grad():
        weights[1].mul_(-1.0)  # in place: bumps the version counter
    second = sine_mlp(x, weights, biases)
    assert len(calls) == 2
    torch.testing.assert_close(second, sine_mlp_reference(x, weights, biases), atol=1e-5, rtol=0)
    assert (second - first).abs().max() > 1e-2
    fresh = [w.clone() for w in weights]  # same values, other tensors: packed anew
    sine_mlp(x, fresh, biases)
    assert len(calls) == 3
    with torch.inference_mode():
        inference_weights = [w.clone() for w in weights]
        torch.testing.assert_close(sine_mlp(x, inference_weights, biases), second, atol=0, rtol=0)


# ---------------------------------------------------------------------------
# backward
# ---------------------------------------------------------------------------


@needs_triton
@pytest.mark.parametrize("precision", SINE_MLP_PRECISIONS)
@pytest.mark.parametrize(("n", "in_features", "hidden", "out_features", "final"), GRAD_CASES)
def test_backward_matches_float64(n, in_features, hidden, out_features, final, precision):
    x, weights, biases, dy = _problem(n, in_features, hidden, out_features, seed=5)
    params = [p.clone().requires_grad_() for p in (*weights, *biases)]
    xg = x.clone().requires_grad_()
    count = len(weights)
    y = sine_mlp(xg, params[:count], params[count:], final_activation=final, precision=precision)
    grads = torch.autograd.grad(y, [xg, *params], dy)
    _, expected = _float64_forward_and_grads(x, weights, biases, dy, final)
    names = ["x"] + [f"weights[{i}]" for i in range(count)] + [f"biases[{i}]" for i in range(count)]
    tol = 1e-5 if precision == "fp32" else _tolerance(precision, len(hidden))
    for name, got, want in zip(names, grads, expected):
        assert got.shape == want.shape and got.dtype == torch.float32
        err = _max_rel(got, want)
        assert err <= tol, f"{precision} d/d{name}: relative error {err:.2e} > {tol:.2e}"


@needs_triton
@pytest.mark.parametrize(("n", "in_features", "hidden", "out_features", "final"), GRAD_CASES)
def test_fp32_backward_matches_torch_autograd(n, in_features, hidden, out_features, final):
    x, weights, biases, dy = _problem(n, in_features, hidden, out_features, seed=6)
    results = []
    for backend in ("triton", "torch"):
        params = [p.clone().requires_grad_() for p in (*weights, *biases)]
        xg = x.clone().requires_grad_()
        y = sine_mlp(
            xg,
            params[: len(weights)],
            params[len(weights) :],
            final_activation=final,
            backend=backend,
        )
        (y * dy).sum().backward()
        results.append([xg.grad, *(p.grad for p in params)])
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, atol=1e-5 * want.abs().max().item(), rtol=0)


@needs_triton
@pytest.mark.parametrize("which", ["x_only", "params_only"])
def test_backward_computes_only_what_is_needed(which):
    x, weights, biases, dy = _problem(37, 2, [32, 32], 1, seed=7)
    xg = x.clone().requires_grad_(which == "x_only")
    params = [p.clone().requires_grad_(which == "params_only") for p in (*weights, *biases)]
    y = sine_mlp(xg, params[:3], params[3:])
    (y * dy).sum().backward()
    _, expected = _float64_forward_and_grads(x, weights, biases, dy, None)
    if which == "x_only":
        assert all(p.grad is None for p in params)
        assert _max_rel(xg.grad, expected[0]) <= 1e-5
    else:
        assert xg.grad is None
        for p, want in zip(params, expected[1:]):
            assert _max_rel(p.grad, want) <= 1e-5


@needs_triton
def test_backward_in_chunks_equals_one_chunk(monkeypatch):
    """129 points through a 32-row scratch: 5 chunks, the last one partial (1 row)."""
    x, weights, biases, dy = _problem(129, 3, [48, 48], 2, seed=8)

    def grads():
        params = [p.clone().requires_grad_() for p in (*weights, *biases)]
        xg = x.clone().requires_grad_()
        y = sine_mlp(xg, params[:3], params[3:], final_activation="sine")
        return torch.autograd.grad(y, [xg, *params], dy)

    whole = grads()
    # A 1-byte budget makes each chunk one block of rows: 32 with these settings.
    monkeypatch.setattr(sine_mlp_module, "_BACKWARD_SCRATCH_BYTES", 1)
    monkeypatch.setattr(sine_mlp_module, "_launch_settings", lambda *args, **kwargs: (32, 4))
    chunked = grads()
    for a, b in zip(whole, chunked):
        torch.testing.assert_close(a, b, atol=1e-6 * b.abs().max().item(), rtol=0)


@needs_triton
def test_siren_trains_through_the_kernel():
    """Ten Adam steps on a 1-D signal: the loss halves, along the reference's curve.

    Parameters are not compared: Adam divides by sqrt(v), so a gradient entry near 0
    can change sign between backends and move by 2 lr without changing the fit."""
    g = torch.Generator().manual_seed(9)
    x = torch.linspace(-1, 1, 65).unsqueeze(1).to(DEVICE)
    target = torch.sin(6 * x) * torch.exp(-x.square())
    weights, biases = siren_parameters(1, [32, 32], 1, generator=g)
    runs = {}
    for backend in ("triton", "torch"):
        params = [p.clone().to(DEVICE).requires_grad_() for p in (*weights, *biases)]
        opt = torch.optim.Adam(params, lr=1e-3)
        losses = []
        for _ in range(10):
            opt.zero_grad()
            loss = (sine_mlp(x, params[:3], params[3:], backend=backend) - target).square().mean()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        runs[backend] = (params, losses)
    losses, ref_losses = runs["triton"][1], runs["torch"][1]
    assert losses[-1] < 0.5 * losses[0], losses
    torch.testing.assert_close(torch.tensor(losses), torch.tensor(ref_losses), rtol=1e-4, atol=0)


# ---------------------------------------------------------------------------
# fused and layer-by-layer paths
# ---------------------------------------------------------------------------


def _forward_and_grads(x, weights, biases, dy, **kwargs):
    params = [p.clone().requires_grad_() for p in (*weights, *biases)]
    xg = x.clone().requires_grad_()
    count = len(weights)
    y = sine_mlp(xg, params[:count], params[count:], **kwargs)
    return [y.detach(), *torch.autograd.grad(y, [xg, *params], dy)]


def test_widths_over_128_run_layer_by_layer():
    """Forward fused up to a padded width of 128, backward fused up to 64 (the fused
    backward spills from 128 in fp32/tf32 at sm_90); wider runs layer by layer."""
    layered = sine_mlp_module._layered
    assert [layered(w) for w in (32, 64, 128, 256)] == [False, False, False, True]
    assert [layered(w, backward=True) for w in (32, 64, 128, 256)] == [False, False, True, True]


@needs_triton
@pytest.mark.parametrize("width", [256, 128])
def test_layered_widths_never_launch_the_fused_kernels(monkeypatch, width):
    """At width 256 neither fused kernel runs (forward or backward); at 128 the forward
    is fused and the backward layered."""
    launched = []

    class Refuse:
        def __init__(self, name):
            self.name = name

        def __getitem__(self, grid):
            launched.append(self.name)
            raise AssertionError(f"{self.name} launched at width {width}")

    monkeypatch.setattr(sine_mlp_module, "_sine_mlp_bwd_kernel", Refuse("fused backward"))
    if width == 256:
        monkeypatch.setattr(sine_mlp_module, "_sine_mlp_fwd_kernel", Refuse("fused forward"))
    else:
        monkeypatch.setattr(sine_mlp_module, "_layer_first_kernel", Refuse("layered"))
    x, weights, biases, dy = _problem(33, 3, [width, width], 1, seed=19)
    y = sine_mlp(x, weights, biases, precision="fp16")
    if width == 128:
        monkeypatch.undo()
        monkeypatch.setattr(sine_mlp_module, "_sine_mlp_bwd_kernel", Refuse("fused backward"))
    params = [p.clone().requires_grad_() for p in (*weights, *biases)]
    xg = x.clone().requires_grad_()
    torch.autograd.grad(sine_mlp(xg, params[:3], params[3:], precision="fp16"), [xg, *params], dy)
    assert launched == [] and y.shape == (33, 1)


@needs_triton
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("width", [32, 64])
def test_layered_path_matches_the_fused_one(monkeypatch, width, precision):
    """Where both paths exist they round the same operands the same way (activations to
    the operand dtype before each dot, fp32 accumulation and sine arguments): they may
    differ only by fp32 summation order, ~1e-7 per unit-variance argument, grown by at
    most omega-scale gains through 3 layers. 1e-5 (relative to each gradient's largest
    entry) is 10x what was measured and 100x below fp16's own tolerance."""
    x, weights, biases, dy = _problem(70, 3, [width] * 3, 2, seed=20)
    kwargs = {"precision": precision, "final_activation": "sine"}
    fused = _forward_and_grads(x, weights, biases, dy, **kwargs)
    monkeypatch.setitem(sine_mlp_module._FUSED_MAX_WIDTH, "fwd", 0)
    monkeypatch.setitem(sine_mlp_module._FUSED_MAX_WIDTH, "bwd", 0)
    layered = _forward_and_grads(x, weights, biases, dy, **kwargs)
    for a, b in zip(layered, fused):
        assert _max_rel(a, b) <= 1e-5


@needs_triton
def test_layered_chunks_equal_one_chunk(monkeypatch):
    """300 points through a 128-row scratch (a 1-byte budget): 3 chunks, the last one
    partial, forward and backward. Per-point values are computed identically in every
    chunk; only the weight gradients' sums over points are reassociated (fp32, 300
    terms): 1e-6 relative to each gradient's largest entry."""
    x, weights, biases, dy = _problem(300, 3, [256, 256], 2, seed=21)
    whole = _forward_and_grads(x, weights, biases, dy, precision="fp16")
    monkeypatch.setattr(sine_mlp_module, "_LAYERED_SCRATCH_BYTES", 1)
    chunked = _forward_and_grads(x, weights, biases, dy, precision="fp16")
    assert torch.equal(whole[0], chunked[0])
    for a, b in zip(whole[1:], chunked[1:]):
        assert _max_rel(a, b) <= 1e-6


# ---------------------------------------------------------------------------
# bounds: the CUDA illegal memory access at (BLOCK_M 64, 4 warps), fp16, width 256
# ---------------------------------------------------------------------------

KERNEL_NAMES = [
    "_sine_mlp_fwd_kernel",
    "_sine_mlp_bwd_kernel",
    "_layer_first_kernel",
    "_layer_dense_kernel",
    "_layer_backprop_kernel",
]


def _guarded(monkeypatch, log):
    guards = {}
    for name in KERNEL_NAMES:
        guards[name] = log.guard(getattr(sine_mlp_module, name))
        monkeypatch.setattr(sine_mlp_module, name, guards[name])
    return guards


@needs_triton
def test_bounds_checker_catches_an_out_of_bounds_access(monkeypatch):
    """The checker below can fail: the fused forward given a y one row short (so its
    last row's store is out of y's storage) is reported."""
    x, weights, biases, _ = _problem(40, 3, [32], 1, seed=22)
    real_empty = torch.empty

    def short_y(*shape, **kwargs):
        if shape == (40, 1):
            return real_empty(39, 1, **kwargs)
        return real_empty(*shape, **kwargs)

    with checked_accesses() as log:
        _guarded(monkeypatch, log)
        monkeypatch.setattr(sine_mlp_module.torch, "empty", short_y)
        sine_mlp(x, weights, biases)
    monkeypatch.undo()
    assert any("masked store" in v for v in log.violations), log.violations


@needs_triton
@pytest.mark.parametrize("n", [64 * 3 + 17, 2 * (64 * 3 + 17)])
def test_fused_forward_at_64_4_fp16_width_256_stays_in_bounds(monkeypatch, n):
    """The setting that faulted on the H200 (scripts/sine_mlp_sweep.py: fp16 forward,
    BLOCK_M 64, 4 warps, SIREN 3 -> 256 x 3 -> 1 at 2^20 points), run through the same
    kernel and offset arithmetic at a point count that is not a multiple of BLOCK_M:
    every active lane of every load and store falls inside its own tensor.

    Why the smaller N says something about 2^20: the only offsets that grow with N are
    built from ``rows = pid.to(int64) * BLOCK_M + arange``, so they are int64; the int32
    offsets (weights, biases, columns) must not depend on N at all, which is checked by
    running two sizes and comparing the largest int32 offset. At 2^20 points the largest
    row offset is (2^20 - 1) * 3 + 2 elements of x, far inside int32 anyway; the one
    int32 product that did grow with N, the fused backward's n_rows * WIDTH (passing 2^31
    at 2^21 rows of width 256 times 4 layers), is now int64 too."""
    x, weights, biases, _ = _problem(n, 3, [256] * 4, 1, seed=23)
    monkeypatch.setitem(sine_mlp_module._FUSED_MAX_WIDTH, "fwd", 256)
    monkeypatch.setattr(sine_mlp_module, "_launch_settings", lambda *a, **k: (64, 4))
    with checked_accesses() as log:
        guards = _guarded(monkeypatch, log)
        y = sine_mlp(x, weights, biases, precision="fp16")
    assert guards["_sine_mlp_fwd_kernel"].launches == 1
    assert log.violations == [] and log.accesses > 0
    y64 = sine_mlp_reference(
        x.double(), [w.double() for w in weights], [b.double() for b in biases]
    )
    assert (y.double() - y64).abs().max().item() <= _tolerance("fp16", 4)
    # Largest int32 pointer offset: the (256, 256) weight tiles' last element, 256^2 - 1
    # at most, whatever N (the column halves add up to it, it does not grow with rows).
    assert log.max_int32_offset < 256 * 256 * 3


@needs_triton
@pytest.mark.parametrize("path", ["fused", "layered"])
def test_every_kernel_stays_in_bounds_and_int32_offsets_do_not_grow_with_n(monkeypatch, path):
    """Forward and backward (both paths, every kernel) at two point counts, neither a
    multiple of a BLOCK_M: no access out of its tensors, and the largest int32 offset
    is the same at both (so no int32 offset grows with the number of points)."""
    width = 64
    if path == "layered":
        monkeypatch.setitem(sine_mlp_module._FUSED_MAX_WIDTH, "fwd", 0)
        monkeypatch.setitem(sine_mlp_module._FUSED_MAX_WIDTH, "bwd", 0)
    largest = []
    for n in (70, 141):
        x, weights, biases, dy = _problem(n, 3, [width] * 3, 2, seed=24)
        with checked_accesses() as log:
            guards = _guarded(monkeypatch, log)
            _forward_and_grads(x, weights, biases, dy, precision="fp16")
        launched = {name for name, guard in guards.items() if guard.launches}
        assert launched == (
            {"_sine_mlp_fwd_kernel", "_sine_mlp_bwd_kernel"}
            if path == "fused"
            else {"_layer_first_kernel", "_layer_dense_kernel", "_layer_backprop_kernel"}
        )
        assert log.violations == [] and log.accesses > 0
        largest.append(log.max_int32_offset)
        for name in KERNEL_NAMES:  # undo this size's guards before the next
            monkeypatch.setattr(sine_mlp_module, name, guards[name].kernel)
    assert largest[0] == largest[1] > 0


# ---------------------------------------------------------------------------
# gradient with respect to the input coordinates
# ---------------------------------------------------------------------------


@needs_triton
@pytest.mark.parametrize("precision", SINE_MLP_PRECISIONS)
@pytest.mark.parametrize(
    ("n", "in_features", "hidden", "out_features", "final"), [CASES[0], CASES[2], CASES[3]]
)
def test_input_grad_matches_autograd_of_reference(
    n, in_features, hidden, out_features, final, precision
):
    x, weights, biases, dy = _problem(n, in_features, hidden, out_features, seed=10)
    grad_output = None if out_features == 1 else dy
    got = sine_mlp_input_grad(
        x, weights, biases, grad_output, final_activation=final, precision=precision
    )
    x64 = x.double().requires_grad_()
    y64 = sine_mlp_reference(
        x64, [w.double() for w in weights], [b.double() for b in biases], final_activation=final
    )
    ones = torch.ones_like(y64) if grad_output is None else grad_output.double()
    (want,) = torch.autograd.grad(y64, x64, ones)
    tol = 1e-5 if precision == "fp32" else _tolerance(precision, len(hidden))
    assert got.shape == x.shape and not got.requires_grad
    assert _max_rel(got, want) <= tol
    if precision == "fp32":
        ref = sine_mlp_input_grad(
            x, weights, biases, grad_output, final_activation=final, backend="torch"
        )
        torch.testing.assert_close(got, ref, atol=1e-5 * ref.abs().max().item(), rtol=0)


# ---------------------------------------------------------------------------
# backends, fallback, errors, export
# ---------------------------------------------------------------------------


def test_triton_backend_falls_back_to_the_reference_where_triton_cannot_run(monkeypatch):
    monkeypatch.setattr(sine_mlp_module, "triton_can_run", lambda device_type: False)
    x, weights, biases, dy = _problem(37, 2, [32], 1, seed=11)
    xg = x.clone().requires_grad_()
    y = sine_mlp(xg, weights, biases)
    torch.testing.assert_close(y, sine_mlp_reference(x, weights, biases), atol=0, rtol=0)
    (y * dy).sum().backward()
    assert xg.grad is not None and xg.grad.shape == x.shape


def test_torch_backend_accepts_float64():
    x, weights, biases, _ = _problem(37, 2, [32], 1, seed=12)
    y = sine_mlp(
        x.double(), [w.double() for w in weights], [b.double() for b in biases], backend="torch"
    )
    assert y.dtype == torch.float64


def test_round_to_tf32_keeps_ten_mantissa_bits():
    t = torch.tensor([1.0, 1 + 2.0**-10, 1 + 2.0**-11, 1 + 3 * 2.0**-11, 1 + 2.0**-12, -3.0])
    # ties to even: 1 + 2^-11 -> 1; 1 + 3 * 2^-11 -> 1 + 2^-9.
    expected = torch.tensor([1.0, 1 + 2.0**-10, 1.0, 1 + 2.0**-9, 1.0, -3.0])
    assert torch.equal(round_to_tf32(t), expected)


@pytest.mark.parametrize(
    ("mutate", "error", "match"),
    [
        (lambda x, w, b: (x[:, None], w, b), ValueError, "2-D tensor"),
        (lambda x, w, b: (torch.zeros(5, 5), w, b), ValueError, "1 to 4 features"),
        (lambda x, w, b: (x.double(), w, b), TypeError, "x has dtype torch.float64"),
        (lambda x, w, b: (x, [w[0].half(), w[1]], b), TypeError, r"weights\[0\] has dtype"),
        (lambda x, w, b: (x, w, b[:1]), ValueError, "2 weights but 1 biases"),
        (lambda x, w, b: (x, w[:1], b[:1]), ValueError, "at least 2 layers"),
        (lambda x, w, b: (x, [w[0], w[1][:, :3]], b), ValueError, r"weights\[1\] has shape"),
        (lambda x, w, b: (x, w, [b[0][:3], b[1]]), ValueError, r"biases\[0\] must have shape"),
        (
            lambda x, w, b: (
                x,
                [torch.zeros(300, 2), torch.zeros(1, 300)],
                [torch.zeros(300), b[1]],
            ),
            ValueError,
            "300 outputs; must be 1 to 256",
        ),
        (lambda x, w, b: (x, [w[0].to("meta"), w[1]], b), ValueError, "is on meta"),
    ],
)
def test_invalid_inputs_raise_clear_errors(mutate, error, match):
    x, weights, biases, _ = _problem(7, 2, [32], 1, seed=13)
    x, weights, biases = mutate(x, weights, biases)
    with pytest.raises(error, match=match):
        sine_mlp(x, weights, biases)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"precision": "fp8"}, 'Invalid precision "fp8"'),
        ({"backend": "cuda"}, 'Invalid backend "cuda"'),
        ({"final_activation": "relu"}, 'Invalid final_activation "relu"'),
    ],
)
def test_invalid_options_raise_clear_errors(kwargs, match):
    x, weights, biases, _ = _problem(7, 2, [32], 1, seed=14)
    with pytest.raises(ValueError, match=match):
        sine_mlp(x, weights, biases, **kwargs)


def test_input_grad_checks_grad_output_shape():
    x, weights, biases, _ = _problem(7, 2, [32], 3, seed=15)
    with pytest.raises(ValueError, match=r"grad_output must have shape \(7, 3\)"):
        sine_mlp_input_grad(x, weights, biases, torch.ones(7, 1))


def test_exported_from_kernels():
    """``from kernels import sine_mlp`` is the function, even after the submodule of the
    same name was imported (it was, above)."""
    import kernels
    from kernels import sine_mlp as exported

    assert exported is kernels.sine_mlp is sine_mlp_module.sine_mlp
    assert "sine_mlp" in kernels.__all__


# ---------------------------------------------------------------------------
# larger sweeps
# ---------------------------------------------------------------------------


@needs_triton
@pytest.mark.slow
@pytest.mark.parametrize("precision", SINE_MLP_PRECISIONS)
@pytest.mark.parametrize("width", [16, 24, 32, 64, 96, 128, 200, 256])
@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("in_features", [1, 2, 3, 4])
def test_sweep_forward_and_input_grad(in_features, depth, width, precision):
    x, weights, biases, _ = _problem(53, in_features, [width] * depth, 1, seed=depth * width)
    x64 = x.double().requires_grad_()
    y64 = sine_mlp_reference(x64, [w.double() for w in weights], [b.double() for b in biases])
    (dx64,) = torch.autograd.grad(y64.sum(), x64)
    tol = 1e-5 if precision == "fp32" else _tolerance(precision, depth)
    y = sine_mlp(x, weights, biases, precision=precision)
    assert (y.double() - y64.detach()).abs().max().item() <= tol
    dx = sine_mlp_input_grad(x, weights, biases, precision=precision)
    assert _max_rel(dx, dx64) <= tol


# Stack bytes a thread that are not a spill: libdevice's sin/cos range reduction keeps a
# 32-byte array on the stack (the Payne-Hanek path for huge arguments).
LIBDEVICE_STACK = 32


def _cuobjdump() -> str:
    import triton

    return os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")


@pytest.mark.slow
@pytest.mark.skipif(not triton_available(), reason="needs triton")
@pytest.mark.parametrize("precision", SINE_MLP_PRECISIONS)
@pytest.mark.parametrize("width", [64, 128, 256])
@pytest.mark.parametrize("direction", ["fwd", "bwd"])
def test_shipped_launch_settings_do_not_spill_at_sm90(direction, width, precision):
    """Every kernel the 3 -> width x 3 -> 1 SIREN launches (fused, or each layer-by-layer
    kernel), compiled for sm_90 at its shipped settings without a GPU (in a subprocess:
    compiling needs the interpreter off): fits in shared memory and does not spill
    (stack <= libdevice's 32 bytes). ~10-60 s a case on 2 CPU cores, Triton cache cold."""
    if not os.path.exists(_cuobjdump()):
        pytest.skip(f"no {_cuobjdump()}: registers and stack cannot be read from the cubin")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    args = [sys.executable, "-W", "ignore", "-m", "tests.kernels._sine_mlp_aot"]
    done = subprocess.run(
        [*args, direction, str(width), precision],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    reports = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    layered = sine_mlp_module._layered(width, backward=direction == "bwd")
    kernels = [r["kernel"] for r in reports]
    if not layered:
        assert kernels == ["fused"]
    else:
        assert kernels[:3] == ["first", "hidden", "last"]
        assert kernels[3:] == (["backprop_hidden", "backprop_last"] if direction == "bwd" else [])
    for report in reports:
        assert report["shared"] <= H100_SHARED_BYTES, report
        assert "reg" in report and report["reg"] <= 255, report
        assert report["stack"] <= LIBDEVICE_STACK, report


@pytest.mark.gpu
@pytest.mark.parametrize("precision", SINE_MLP_PRECISIONS)
def test_gpu_siren_3_256x3_1_at_2_20_points(precision):
    """The issue's case at full size: forward against float64, on 2^16 of the points."""
    g = torch.Generator().manual_seed(16)
    weights, biases = siren_parameters(3, [256] * 4, 1, generator=g, device="cuda")
    x = (torch.rand(2**20, 3, generator=g) * 2 - 1).cuda()
    y = sine_mlp(x, weights, biases, precision=precision)
    sub = slice(0, 2**16)
    y64 = sine_mlp_reference(
        x[sub].double(), [w.double() for w in weights], [b.double() for b in biases]
    )
    tol = 1e-5 if precision == "fp32" else _tolerance(precision, 4)
    assert (y[sub].double() - y64).abs().max().item() <= tol
    dx = sine_mlp_input_grad(x[sub], weights, biases, precision=precision)
    x64 = x[sub].double().requires_grad_()
    ref = sine_mlp_reference(x64, [w.double() for w in weights], [b.double() for b in biases])
    (dx64,) = torch.autograd.grad(ref.sum(), x64)
    assert _max_rel(dx, dx64) <= tol


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "tf32", "fp16"])
def test_gpu_training_gradients_at_2_16_points(precision):
    """Backward at a size that runs the GPU kernel with many programs and two chunks."""
    g = torch.Generator().manual_seed(17)
    weights, biases = siren_parameters(3, [256] * 4, 1, generator=g, device="cuda")
    x = (torch.rand(2**16, 3, generator=g) * 2 - 1).cuda()
    dy = torch.randn(2**16, 1, generator=g).cuda()
    params = [p.clone().requires_grad_() for p in (*weights, *biases)]
    xg = x.clone().requires_grad_()
    y = sine_mlp(xg, params[:5], params[5:], precision=precision)
    grads = torch.autograd.grad(y, [xg, *params], dy)
    _, expected = _float64_forward_and_grads(x, weights, biases, dy, None)
    # fp32 here sums 2^16 per-point terms per weight in fp32: allow 1e-4 relative.
    tol = 1e-4 if precision == "fp32" else _tolerance(precision, 4)
    for got, want in zip(grads, expected):
        assert _max_rel(got, want) <= tol
