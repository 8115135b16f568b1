"""The sine-MLP against torch.compile on a GPU: python scripts/sine_mlp_sweep.py OUT.jsonl

SIREN 3 -> W x 3 -> 1 (four sine layers) at 2^20 points, for W in 64, 128, 256, fp16 and
fp32, forward and forward + backward (gradients of x and every parameter):
``kernels.sine_mlp`` (fused up to W 128 forward / 64 backward, layer by layer above)
against ``torch.compile`` of the torch reference (fp16 under autocast, as the
``sine_mlp.compile`` backend runs it). Timing is interleaved: RUNS rounds, each timing
every backend of a case once (the median of REPEATS calls after WARMUP, CUDA events, L2
flushed before each call, ``bench.timing``), so drift of clocks or of a shared machine
hits both sides alike; each round is one row. Every case also records its outputs'
largest difference to float64 on the first 2^14 points.

The torch.compile graphs and Triton kernels are built first in parallel processes (at
most PARALLEL at a time: each holds a 2^20-point problem on the GPU), which fill
inductor's and Triton's on-disk caches so that the timing process only loads them. Rows
go to OUT.jsonl as they are measured (flushed), most important case first, so a run cut
short by its time limit keeps what it measured. Without CUDA it runs a smoke test at 256
points (TRITON_INTERPRET=1).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sm = importlib.import_module("kernels.sine_mlp")
from kernels.reference import sine_mlp_reference, siren_parameters, torch_precision  # noqa: E402

CUDA = torch.cuda.is_available()
DEVICE = "cuda" if CUDA else "cpu"
POINTS = int(os.environ.get("SWEEP_POINTS", 2**20 if CUDA else 256))
RUNS, REPEATS, WARMUP = 3, 10, 2
PARALLEL = int(os.environ.get("SWEEP_PARALLEL", 4))
ERROR_POINTS = 2**14
# (width, precision, backward), in the order they are measured: the headline
# cases first (W 256 fp16 forward, fp32 training; W 64/128 fp16 forward).
CASES = [
    (256, "fp16", False),
    (256, "fp32", True),
    (128, "fp16", False),
    (64, "fp16", False),
    (256, "fp32", False),
    (256, "fp16", True),
    (128, "fp32", True),
    (128, "fp16", True),
    (64, "fp32", True),
    (64, "fp16", True),
    (128, "fp32", False),
    (64, "fp32", False),
]


def _problem(width: int, n: int = POINTS):
    g = torch.Generator().manual_seed(0)
    weights, biases = siren_parameters(3, [width] * 4, 1, generator=g, device=DEVICE)
    x = (torch.rand(n, 3, generator=g) * 2 - 1).to(DEVICE)
    dy = torch.randn(n, 1, generator=g).to(DEVICE)
    params = [p.requires_grad_() for p in (*weights, *biases)]
    return x, params, dy


def _reference(x, weights, biases, precision):
    with torch_precision(precision, x.device.type):
        return sine_mlp_reference(x, weights, biases).float()


def _step(backend: str, x, params, dy, precision: str, backward: bool, compiled=None):
    """One timed call: the forward (no_grad), or forward + gradients of x and params."""
    if backend == "triton":

        def fwd(xs):
            return sm.sine_mlp(xs, params[:5], params[5:], precision=precision)
    else:

        def fwd(xs):
            return compiled(xs, params[:5], params[5:], precision)

    if not backward:

        def run():
            with torch.no_grad():
                return fwd(x)

        return run
    xg = x.detach().requires_grad_()
    return lambda: torch.autograd.grad(fwd(xg), [xg, *params], dy)


def compile_one(width: int, precision: str, backward: bool) -> None:
    """Build (and cache on disk) the compiled graphs and Triton kernels one case times."""
    compiled = torch.compile(_reference)
    x, params, dy = _problem(width)
    _step("compile", x, params, dy, precision, backward, compiled)()
    _step("triton", x, params, dy, precision, backward)()
    if CUDA:
        torch.cuda.synchronize()


def _precompile(log) -> dict:
    failed, pending = {}, list(CASES)
    running: list[tuple[tuple, subprocess.Popen]] = []
    while pending or running:
        while pending and len(running) < PARALLEL:
            case = pending.pop(0)
            cmd = [sys.executable, __file__, "--compile", *map(str, case)]
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            running.append((case, proc))
        case, proc = running.pop(0)
        text = proc.communicate()[0].decode(errors="replace")
        if proc.returncode:
            failed[str(case)] = text[-800:]
            log({"precompile_failed": list(case), "output": text[-800:]})
    return failed


def main(out_path: str) -> None:
    from bench.timing import summarize, time_callable

    out = open(out_path, "a")  # noqa: SIM115 - appended to row by row

    def log(row: dict) -> None:
        out.write(json.dumps(row) + "\n")
        out.flush()
        print(json.dumps(row), flush=True)

    device_name = torch.cuda.get_device_name() if CUDA else "cpu (interpreter smoke)"
    log({"device": device_name, "points": POINTS, "runs": RUNS, "repeats": REPEATS})
    start = time.time()
    if CUDA:
        _precompile(log)
    log({"precompiled_s": round(time.time() - start, 1)})
    compiled = torch.compile(_reference)

    def median_ms(fn) -> float:
        if not CUDA:
            t = time.perf_counter()
            fn()
            return (time.perf_counter() - t) * 1e3
        samples, _ = time_callable(fn, device="cuda", repeats=REPEATS, warmup=WARMUP, flush_l2=True)
        return summarize(samples)["median"] * 1e3

    for width, precision, backward in CASES:
        case = {"width": width, "precision": precision, "backward": backward}
        try:
            x, params, dy = _problem(width)
            steps = {
                b: _step(b, x, params, dy, precision, backward, compiled)
                for b in ("triton", "compile")
            }
            errors = {}
            sub = slice(0, ERROR_POINTS)
            with torch.no_grad():
                ws, bs = params[:5], params[5:]
                y64 = sine_mlp_reference(
                    x[sub].double(), [w.double() for w in ws], [b.double() for b in bs]
                )
                errors["triton"] = (
                    (sm.sine_mlp(x[sub], ws, bs, precision=precision).double() - y64).abs().max()
                )
                errors["compile"] = (compiled(x[sub], ws, bs, precision).double() - y64).abs().max()
            for step in steps.values():  # builds: outside the timing
                step()
            for run in range(RUNS):
                row = dict(case, run=run)
                for backend, step in steps.items():
                    row[f"{backend}_ms"] = median_ms(step)
                row["compile_over_triton"] = row["compile_ms"] / row["triton_ms"]
                row.update({f"{b}_error_max": float(e) for b, e in errors.items()})
                log(row)
            del x, params, dy, steps
        except Exception as exc:  # noqa: BLE001 - one failing case must not end the sweep
            log(dict(case, error=f"{type(exc).__name__}: {exc}"[:2000]))
        if CUDA:
            torch.cuda.empty_cache()
    log({"total_s": round(time.time() - start, 1)})


if __name__ == "__main__":
    if sys.argv[1] == "--compile":
        compile_one(int(sys.argv[2]), sys.argv[3], sys.argv[4] == "True")
    else:
        main(sys.argv[1])
