"""Benchmarks of sine_mlp: every backend and precision, with each one's error.

    pytest tests/kernels/bench_sine_mlp.py --benchmark-enable -n 0       # time them
    pytest tests/kernels/bench_sine_mlp.py --benchmark-enable -n 0 --benchmark-json out.json

The default run (``--benchmark-disable``, pyproject) executes each body once as a smoke
test. On CPU the sizes are tiny (the Triton kernel runs in the interpreter) and the
torch.compile cases are skipped; on CUDA they are the issue's: N = 2^16, 2^20, 2^24 and
widths 64, 128, 256 of a SIREN 3 -> width x 3 -> 1 (four sine layers, three
width x width matmuls: 395 kFLOP a point at width 256).

Baselines: ``torch`` is the eager reference in fp32, with tf32 matmuls for "tf32" and
under ``torch.autocast`` for fp16/bf16; ``torch.compile`` is the same reference
compiled (inductor), same precision contexts. Their half-precision sine arguments are
whatever autocast gives (fp16 matmul outputs: up to ~0.1 rad off at omega0 = 30), which
is why each row's ``extra_info`` carries its error against float64 beside its speed.

Timing on CUDA: pytest-benchmark's wall clock around each call plus a synchronisation,
and, in ``extra_info``, the project protocol (``_gpu_timing.time_cuda``, i.e.
bench.timing: CUDA events, 256 MB L2 flush before each call, median of 20) with the
TFLOP/s it implies.

Measured on an H200 (results/published/kernels-headline-h200, 2026-11-30): at width
256 the fused kernel is slower than torch (fp16 forward 6.2 against 3.7 ms eager at
2^20 points; fp32 training 517 against 40 ms), its registers spilling.
"""

from __future__ import annotations

import pytest
import torch

from kernels._triton import triton_can_run
from kernels.cost import sine_mlp_flops
from kernels.reference import (
    SINE_MLP_PRECISIONS,
    sine_mlp_reference,
    siren_parameters,
    torch_precision,
)
from kernels.sine_mlp import sine_mlp
from tests.kernels._gpu_timing import time_cuda

ON_GPU = torch.cuda.is_available()
DEVICE = "cuda" if ON_GPU else "cpu"
SIZES = [2**16, 2**20, 2**24] if ON_GPU else [2**8]
WIDTHS = [64, 128, 256] if ON_GPU else [64]
# The backward holds per-layer activations (torch) or chunked scratch (triton): at 2^24
# points and width 256 torch's saved tensors alone would be ~128 GiB.
BACKWARD_SIZES = [2**16, 2**20] if ON_GPU else [2**8]
BACKENDS = ["torch", "torch.compile", "triton"]
ERROR_POINTS = 4096  # float64 reference on a subset: 2^24 points in float64 is 16 GiB/layer


def _siren(width: int, n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    weights, biases = siren_parameters(3, [width] * 4, 1, generator=g, device=DEVICE)
    x = (torch.rand(n, 3, generator=g) * 2 - 1).to(DEVICE)
    return x, weights, biases


def _make_forward(backend: str, precision: str, x, weights, biases):
    if backend == "triton":
        return lambda: sine_mlp(x, weights, biases, precision=precision)
    if backend == "torch.compile" and not ON_GPU:
        pytest.skip(
            "torch.compile of the reference takes 26 s to compile on a 2-core CPU (8 s more "
            "per precision), far beyond the smoke run's budget; measured on GPU only"
        )
    fn = sine_mlp_reference
    if backend == "torch.compile":
        fn = torch.compile(sine_mlp_reference, dynamic=False)

    def run():
        with torch_precision(precision, DEVICE):
            return fn(x, weights, biases).float()

    return run


def _record(benchmark, fn, *, n: int, flops: int, y: torch.Tensor, x, weights, biases) -> None:
    sub = slice(0, min(n, ERROR_POINTS))
    y64 = sine_mlp_reference(
        x[sub].double(), [w.double() for w in weights], [b.double() for b in biases]
    )
    benchmark.extra_info["max_abs_err_vs_float64"] = (y[sub].double() - y64).abs().max().item()
    benchmark.extra_info["flop"] = flops
    if ON_GPU and not benchmark.disabled:
        stats = time_cuda(fn, repeats=20, warmup=3)
        benchmark.extra_info["cuda_events_l2_flushed"] = stats
        benchmark.extra_info["tflops"] = flops / stats["median"] / 1e12


def _synced(fn):
    def run():
        out = fn()
        if ON_GPU:
            torch.cuda.synchronize()
        return out

    return run


@pytest.mark.parametrize("precision", SINE_MLP_PRECISIONS)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("n", SIZES)
def test_bench_sine_mlp_forward(benchmark, n, width, backend, precision):
    if backend == "triton" and not triton_can_run(DEVICE):
        pytest.skip("Triton cannot run here (no triton, or CPU without TRITON_INTERPRET=1)")
    x, weights, biases = _siren(width, n)
    fn = _make_forward(backend, precision, x, weights, biases)
    fn()  # compile / autotune / first launch, outside the timing
    benchmark.group = f"sine_mlp forward n={n} width={width}"
    rounds = 20 if ON_GPU else 1
    y = benchmark.pedantic(_synced(fn), rounds=rounds, warmup_rounds=1 if ON_GPU else 0)
    assert y.shape == (n, 1) and torch.isfinite(y).all()
    _record(
        benchmark,
        fn,
        n=n,
        flops=n * sine_mlp_flops(3, [width] * 4, 1),
        y=y,
        x=x,
        weights=weights,
        biases=biases,
    )


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize("n", BACKWARD_SIZES)
def test_bench_sine_mlp_training_step(benchmark, n, backend, precision):
    """Forward and backward to x, weights and biases: one SIREN training step."""
    if backend == "triton" and not triton_can_run(DEVICE):
        pytest.skip("Triton cannot run here (no triton, or CPU without TRITON_INTERPRET=1)")
    width = WIDTHS[-1]
    x, weights, biases = _siren(width, n)
    params = [p.requires_grad_() for p in (*weights, *biases)]
    xg = x.requires_grad_()

    def step():
        if backend == "triton":
            y = sine_mlp(xg, params[:5], params[5:], precision=precision)
        else:
            with torch_precision(precision, DEVICE):
                y = sine_mlp_reference(xg, params[:5], params[5:]).float()
        return torch.autograd.grad(y.sum(), [xg, *params])

    step()
    benchmark.group = f"sine_mlp training step n={n} width={width}"
    grads = benchmark.pedantic(_synced(step), rounds=10 if ON_GPU else 1)
    assert all(torch.isfinite(g).all() for g in grads)
    benchmark.extra_info["flop"] = 3 * n * sine_mlp_flops(3, [width] * 4, 1)
    if ON_GPU and not benchmark.disabled:
        benchmark.extra_info["cuda_events_l2_flushed"] = time_cuda(step, repeats=10, warmup=2)
