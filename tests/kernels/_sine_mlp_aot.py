"""Compile the sine-MLP kernels for an H100 (sm_90) on a machine without a GPU.

    python -m tests.kernels._sine_mlp_aot fwd 256 fp16 [bwd 64 fp32 ...]

Prints, per kernel (the fused one, or each layer-by-layer one), shared memory (must fit the
H100's 227 KiB), registers a thread and
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


def compile_kernel(direction: str, width: int, precision: str) -> list[dict]:
    """Compile every kernel that the 3 -> width x 3 -> 1 SIREN runs in one direction,
    with its shipped launch settings: the fused kernel, or the layer-by-layer ones."""
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        raise RuntimeError("unset TRITON_INTERPRET: interpreted kernels cannot be compiled")
    # The module, not the function `kernels.sine_mlp` that the package exports.
    m = importlib.import_module("kernels.sine_mlp")
    backward = direction == "bwd"
    if m._layered(width, backward=backward):
        return _compile_layered(m, direction, width, precision)
    return [_compile_fused(m, direction, width, precision)]


def _compile(fn, signature: dict, constexprs: dict, num_warps: int, num_stages: int):
    import triton
    from triton.backends.compiler import GPUTarget

    signature = {**signature, **dict.fromkeys(constexprs, "constexpr")}
    source = triton.compiler.ASTSource(fn=fn, signature=signature, constexprs=constexprs)
    kernel = triton.compile(
        source,
        target=GPUTarget("cuda", 90, 32),
        options={"num_warps": num_warps, "num_stages": num_stages},
    )
    usage = {"shared": kernel.metadata.shared}
    usage.update(_resource_usage(kernel.asm["cubin"], os.path.dirname(triton.__file__)))
    return usage


def _compile_fused(m, direction: str, width: int, precision: str) -> dict:
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
    report = {
        "direction": direction,
        "width": width,
        "precision": precision,
        "kernel": "fused",
        "block_m": block_m,
        "num_warps": num_warps,
    }
    report.update(_compile(fn, signature, constexprs, num_warps, m._NUM_STAGES))
    return report


def _compile_layered(m, direction: str, width: int, precision: str) -> list[dict]:
    """The layer-by-layer kernels as ``kernels.sine_mlp._run_layers`` and
    ``_backprop_layers`` launch them: activations in the operand dtype forward, fp32 in
    the backward's recomputation (which also stores every argument, STORE_Z)."""
    backward = direction == "bwd"
    op = _OPERAND[precision]
    act = "*fp32" if backward else op
    out_pad = 16
    block_m, block_n, block_k, warps, stages = m._layer_settings(precision)
    first_m, first_n, first_warps = m._FIRST_LAYER_SETTINGS
    base = {"direction": direction, "width": width, "precision": precision}
    jobs = [
        (
            "first",
            m._layer_first_kernel,
            {"x_ptr": "*fp32", "w0_ptr": "*fp32", "b0_ptr": "*fp32", "h_ptr": act},
            {"IN": 3, "WIDTH": width, "BLOCK_M": first_m, "BLOCK_N": min(first_n, width)},
            first_warps,
            1,
        )
    ]
    jobs[0][2].update(z_ptr="*fp32" if backward else act, n_rows="i32", stride_xm="i32")
    jobs[0][3]["STORE_Z"] = backward
    for name, n, out, act_code in (
        ("hidden", width, act, 1),
        ("last", out_pad, "*fp32", 0),
    ):
        signature = {"a_ptr": act, "wt_ptr": op, "b_ptr": "*fp32", "out_ptr": out}
        signature.update(z_ptr="*fp32" if backward else out, n_rows="i32")
        signature.update(N_STORE="i32", stride_om="i32")
        constexprs = {
            "K": width,
            "N": n,
            "ACT": act_code,
            "STORE_Z": backward and name == "hidden",
            "UPCAST": False,
            "INPUT_PRECISION": m._INPUT_PRECISION[precision],
            "BLOCK_M": block_m,
            "BLOCK_N": min(block_n, n),
            "BLOCK_K": min(block_k, width),
        }
        jobs.append((name, m._layer_dense_kernel, signature, constexprs, warps, stages))
    if backward:
        bm, bk, bn, bwarps, bstages = m._layer_settings(precision, backprop=True)
        for name, n in (("backprop_hidden", width), ("backprop_last", out_pad)):
            signature = {"dz_ptr": "*fp32", "wt_ptr": "*fp32", "zp_ptr": "*fp32", "n_rows": "i32"}
            constexprs = {
                "K": width,
                "N": n,
                "INPUT_PRECISION": m._BACKWARD_INPUT_PRECISION[precision],
                "BLOCK_M": bm,
                "BLOCK_K": min(bk, width),
                "BLOCK_N": min(bn, n),
            }
            jobs.append((name, m._layer_backprop_kernel, signature, constexprs, bwarps, bstages))
    reports = []
    for name, fn, signature, constexprs, num_warps, num_stages in jobs:
        report = {**base, "kernel": name, "num_warps": num_warps, "num_stages": num_stages}
        report.update({k.lower(): v for k, v in constexprs.items() if k.startswith("BLOCK")})
        report.update(_compile(fn, signature, constexprs, num_warps, num_stages))
        reports.append(report)
    return reports


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
        for report in compile_kernel(direction, int(width), precision):
            print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
