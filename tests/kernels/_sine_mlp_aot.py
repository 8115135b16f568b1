"""Compile the sine-MLP kernels for an H100 (sm_90) on a machine without a GPU.

    python -m tests.kernels._sine_mlp_aot fwd 256 fp16 [bwd 64 fp32 ...]

Prints, per kernel, shared memory (must fit the H100's 227 KiB), registers a thread and
stack bytes a thread (spills; 32 bytes or less is libdevice's sin/cos range reduction).
Triton compiles to PTX and cubin without a device, so this catches what the CPU
interpreter cannot: code the compiler rejects, shared memory over the limit, spills.
It must run without TRITON_INTERPRET (the kernels must be compiled, not interpreted),
so the tests call it in a subprocess.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

H100_SHARED_BYTES = 232448  # 227 KiB of dynamic shared memory a block on sm_90

_OPERAND = {"fp32": "*fp32", "tf32": "*fp32", "fp16": "*fp16", "bf16": "*bf16"}


def compile_kernel(direction: str, width: int, precision: str) -> dict:
    """Compile one kernel of the 3 -> width x 3 -> 1 SIREN with its launch settings."""
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        raise RuntimeError("unset TRITON_INTERPRET: interpreted kernels cannot be compiled")
    import triton
    from triton.backends.compiler import GPUTarget

    # The module, not the function `kernels.sine_mlp` that the package exports.
    m = importlib.import_module("kernels.sine_mlp")

    backward = direction == "bwd"
    block_m, num_warps = m._launch_settings(width, precision, backward=backward)
    op = _OPERAND[precision]
    constexprs = {
        "IN": 3,
        "OUT": 1,
        "OUT_PAD": 16,
        "WIDTH": width,
        "NUM_HIDDEN": 3,
        "FINAL": 0,
        "UPCAST": False,
        "INPUT_PRECISION": m._INPUT_PRECISION[precision],
        "BLOCK_M": block_m,
    }
    if backward:
        fn = m._sine_mlp_bwd_kernel
        pointers = ["x", "dy", "w0", "b0", "wh", "bh", "wl", "bl", "whb", "wlb", "z", "h", "dzl"]
        signature = {f"{p}_ptr": op if p in ("wh", "wl") else "*fp32" for p in pointers}
        signature.update(dx_ptr="*fp32", n_rows="i32", stride_xm="i32", stride_dym="i32")
        constexprs.update(
            BWD_INPUT_PRECISION=m._BACKWARD_INPUT_PRECISION[precision],
            WRITE_PARAM_GRADS=True,
            WRITE_DX=True,
        )
    else:
        fn = m._sine_mlp_fwd_kernel
        pointers = ["x", "w0", "b0", "wh", "bh", "wl", "bl", "y"]
        signature = {f"{p}_ptr": op if p in ("wh", "wl") else "*fp32" for p in pointers}
        signature.update(n_rows="i32", stride_xm="i32")
    signature.update(dict.fromkeys(constexprs, "constexpr"))
    source = triton.compiler.ASTSource(fn=fn, signature=signature, constexprs=constexprs)
    kernel = triton.compile(
        source,
        target=GPUTarget("cuda", 90, 32),
        options={"num_warps": num_warps, "num_stages": m._NUM_STAGES},
    )
    report = {
        "direction": direction,
        "width": width,
        "precision": precision,
        "block_m": block_m,
        "num_warps": num_warps,
        "shared": kernel.metadata.shared,
    }
    report.update(_resource_usage(kernel.asm["cubin"], os.path.dirname(triton.__file__)))
    return report


def _resource_usage(cubin: bytes, triton_dir: str) -> dict:
    """REG and STACK from cuobjdump (shipped with Triton's NVIDIA backend), if present."""
    tool = os.path.join(triton_dir, "backends", "nvidia", "bin", "cuobjdump")
    if not os.path.exists(tool):
        return {}
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        out = subprocess.run([tool, "-res-usage", f.name], capture_output=True, text=True).stdout
    usage = {}
    for field in out.split():
        key, _, value = field.partition(":")
        if key in ("REG", "STACK") and value.isdigit():
            usage[key.lower()] = int(value)
    return usage


def main(argv: list[str]) -> None:
    for direction, width, precision in zip(argv[::3], argv[1::3], argv[2::3]):
        print(json.dumps(compile_kernel(direction, int(width), precision)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
