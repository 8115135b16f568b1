"""Time the fused sine-MLP's launch settings on a GPU: python scripts/sine_mlp_sweep.py OUT.json

The SIREN 3 -> 256 x 3 -> 1 of suites/kernels-headline.yaml at 2^20 points: forward in
fp32 and fp16, forward + backward in fp32 and fp16, for each (BLOCK_M, num_warps) in
SETTINGS, beside torch eager. The settings' kernels are compiled first in parallel
processes (Triton's on-disk cache is shared), then timed one after another in this
process with the harness's timer (bench.timing: CUDA events, L2 flushed before each
call; the median of 20 after 3 warm-ups), so compiling does not cost 16x and timing
sees an idle GPU. Each row also checks the output against
eager's, so a fast wrong setting shows.
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
from kernels.reference import siren_parameters  # noqa: E402

POINTS, WIDTH = 2**20, 256
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # cpu: TRITON_INTERPRET=1 smoke
COMPILE_POINTS = int(os.environ.get("SWEEP_COMPILE_POINTS", 4096))
SETTINGS = {
    "fwd": [(32, 4), (64, 4), (64, 8), (128, 8), (128, 16)],
    "bwd": [(16, 4), (32, 4), (32, 8), (64, 8)],
}


#: the shipped forward settings, put back before timing a backward (its forward pass)
SHIPPED_FORWARD = {family: dict(widths) for family, widths in sm._FORWARD_SETTINGS.items()}


def _set(direction: str, block_m: int, warps: int) -> None:
    if direction == "fwd":
        for family in sm._FORWARD_SETTINGS.values():
            family[WIDTH] = (block_m, warps)
    else:
        sm._BACKWARD_SETTINGS[WIDTH] = (block_m, warps)


def _problem(n: int):
    g = torch.Generator().manual_seed(0)
    weights, biases = siren_parameters(3, [WIDTH] * 4, 1, generator=g, device=DEVICE)
    x = (torch.rand(n, 3, generator=g) * 2 - 1).to(DEVICE)
    return x, weights, biases


def _step(x, params, precision, backward, backend="triton"):
    def fwd():
        return sm.sine_mlp(x, params[:5], params[5:], precision=precision, backend=backend)

    if not backward:
        return fwd
    return lambda: torch.autograd.grad(fwd().sum(), params)


def compile_one(direction: str, block_m: int, warps: int) -> None:
    _set(direction, block_m, warps)
    x, w, b = _problem(COMPILE_POINTS)
    params = [p.requires_grad_() for p in (*w, *b)]
    for precision in ("fp32", "fp16"):
        _step(x, params, precision, direction == "bwd")()
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def main(out_path: str) -> None:
    from bench.timing import summarize, time_callable

    def median_ms(fn) -> float:
        samples, _ = time_callable(fn, device="cuda", repeats=20, warmup=3, flush_l2=True)
        return summarize(samples)["median"] * 1e3

    start = time.time()
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--compile", d, str(m), str(w)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for d, rows in SETTINGS.items()
        for m, w in rows
    ]
    failed = {}
    for p, (d, m, w) in zip(procs, [(d, m, w) for d, r in SETTINGS.items() for m, w in r]):
        text = p.communicate()[0].decode(errors="replace")
        if p.returncode:
            failed[f"{d} {m}/{w}"] = text[-600:]
    print(f"compiled in {time.time() - start:.0f} s; failed: {list(failed)}", flush=True)

    x, w, b = _problem(POINTS)
    params = [p.requires_grad_() for p in (*w, *b)]
    rows = []
    for precision in ("fp32", "fp16"):
        with torch.no_grad():
            ref = sm.sine_mlp(x, w, b, precision=precision, backend="torch")
        for backward in (False, True):
            if precision == "fp32":  # fp16 eager (autocast) is timed by kernels-headline
                ms = median_ms(_step(x, params, precision, backward, "torch"))
                rows.append(dict(precision=precision, backward=backward, backend="eager", ms=ms))
                print(rows[-1], flush=True)
            direction = "bwd" if backward else "fwd"
            for m, warps in SETTINGS[direction]:
                if f"{direction} {m}/{warps}" in failed:
                    continue
                _set(direction, m, warps)
                if backward:
                    for family, widths in SHIPPED_FORWARD.items():
                        sm._FORWARD_SETTINGS[family].update(widths)
                step = _step(x, params, precision, backward)
                with torch.no_grad():
                    err = (sm.sine_mlp(x, w, b, precision=precision) - ref).abs().max().item()
                ms = median_ms(step)
                rows.append(
                    dict(
                        precision=precision,
                        backward=backward,
                        backend="triton",
                        block_m=m,
                        num_warps=warps,
                        ms=ms,
                        max_err_vs_eager=err,
                    )
                )
                print(rows[-1], flush=True)
    with open(out_path, "w") as f:
        json.dump(
            {
                "device": torch.cuda.get_device_name(),
                "points": POINTS,
                "width": WIDTH,
                "rows": rows,
                "failed": failed,
            },
            f,
            indent=1,
        )


if __name__ == "__main__":
    if sys.argv[1] == "--compile":
        compile_one(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main(sys.argv[1])
