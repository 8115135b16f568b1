"""Compile the warp kernels ahead of time for H100 (sm_90a) without a GPU, and report
registers and spills per thread as ptxas sees them.

    TRITON_INTERPRET=0 python -m tests.kernels._warp_sm90_check [--sweep]

Prints one JSON object per line. Without ``--sweep`` it compiles every variant
(mode x padding x ADD_DISP x dtype x layout: VS 1 planar, VS ndim interleaved; the
backward also planar fp32 without merged atomics, MERGE False) at the launch settings
``kernels.warp`` uses; with it, every planar kernel at a range of (BLOCK_SIZE,
num_warps). Needs Triton's bundled ``ptxas-blackwell`` (PTX 9.x; the plain ``ptxas``
is too old for Triton 3.9's PTX). Must run without the interpreter: JIT functions
decorated under it cannot be lowered.
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

w = importlib.import_module("kernels.warp")

TARGET = GPUTarget("cuda", 90, 32)
PTXAS = os.path.join(
    os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "ptxas-blackwell"
)
KERNELS = {
    "fwd2d": (w._warp2d_fwd_kernel, 2, False),
    "fwd3d": (w._warp3d_fwd_kernel, 3, False),
    "bwd2d": (w._warp2d_bwd_kernel, 2, True),
    "bwd3d": (w._warp3d_bwd_kernel, 3, True),
}


def compile_stats(name: str, consts: dict, num_warps: int, dtype: str) -> dict:
    fn = KERNELS[name][0]
    signature, attrs = {}, {}
    for i, arg in enumerate(fn.arg_names):
        if arg in consts:
            signature[arg] = "constexpr"
        elif arg.endswith("_ptr"):
            signature[arg] = "*fp32" if arg == "grad_image_ptr" else f"*{dtype}"
            attrs[(i,)] = [["tt.divisibility", 16]]  # as the JIT specialises aligned tensors
        else:
            signature[arg] = "i32"
            if arg.startswith("stride") or arg in ("N", "HW"):
                attrs[(i,)] = [["tt.divisibility", 16]]
    src = ASTSource(fn, signature, constexprs=consts, attrs=attrs)
    ptx = triton.compile(src, target=TARGET, options={"num_warps": num_warps}).asm["ptx"]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "k.ptx")
        with open(path, "w") as f:
            f.write(ptx)
        out = subprocess.run(
            [PTXAS, "-v", "-arch=sm_90a", path, "-o", os.path.join(tmp, "k.cubin")],
            capture_output=True,
            text=True,
            check=True,
        )
    text = out.stdout + out.stderr
    return {
        "kernel": name,
        **{k: v for k, v in consts.items() if k.isupper()},
        "num_warps": num_warps,
        "dtype": dtype,
        "registers": int(re.search(r"Used (\d+) registers", text).group(1)),
        "spill_bytes": int(re.search(r"(\d+) bytes spill stores", text).group(1)),
        "vector_loads": len(re.findall(r"ld\.global[.\w]*\.v\d", ptx)),
    }


def variants(sweep: bool):
    for name, (_fn, ndim, backward) in KERNELS.items():
        flags = {"NEED_GRAD_IMAGE": True, "NEED_GRAD_DISP": True} if backward else {}
        if sweep:
            settings = [(256, 4), (512, 4), (1024, 4), (1024, 8)]
            combos = [(0, 0, False, "fp32", 1), (0, 1, False, "fp32", 1)]
        else:
            settings = [w._launch_settings(ndim, backward)]
            combos = list(
                itertools.product((0, 1), (0, 1), (False, True), ("fp32", "bf16"), (1, ndim))
            )
        # the backward with and without merged atomics (MERGE False: planar fp32 only,
        # the scatter before issue 22, kept to time against it on a GPU; bf16 2-D border
        # compose without merging spills 8 bytes)
        merges = (True, False) if backward else (None,)
        for (block, warps), (mode, padding, add, dtype, vs), merge in itertools.product(
            settings, combos, merges
        ):
            if merge is False and (vs != 1 or sweep or dtype != "fp32"):
                continue
            consts = dict(MODE=mode, PADDING=padding, ADD_DISP=add, BLOCK_SIZE=block, VS=vs)
            if merge is not None:
                consts["MERGE"] = merge
            yield name, {**consts, **flags}, warps, dtype


def main() -> None:
    for name, consts, warps, dtype in variants("--sweep" in sys.argv):
        print(json.dumps(compile_stats(name, consts, warps, dtype)), flush=True)


if __name__ == "__main__":
    main()
