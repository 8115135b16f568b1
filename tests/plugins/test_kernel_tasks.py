"""The kernels.* tasks and their backends, run in-process at interpreter sizes.

On CPU the Triton backends run under TRITON_INTERPRET=1 (tests/conftest.py). The
tasks' error metrics are the independent check here: each backend's output and
gradients are compared, inside the task, with the float64 torch reference; these
tests assert the metrics land under tolerances justified below, and that a wrong
backend is caught by them.
"""

from __future__ import annotations

import functools
import importlib
import math
import statistics

import pytest
import torch

from bench import Registry, get_plugin_manager, hookimpl, testing
from bench.suite import SuiteError, load_suite
from kernels.cost import sine_mlp_flops, svf_exp_min_bytes, warp_min_bytes
from plugins.backends.base import WarpBackend

REGISTRY = Registry(get_plugin_manager())

pytestmark = pytest.mark.usefixtures("frozen_heap")

# fp32 against float64: bilinear weights and a sum of 2^ndim terms round at ~2^-24 each,
# relative to max |ref|; the eager path's coordinate normalisation (x * 2/(n-1) - 1 and
# back) adds a few ulps of the coordinate. 1e-5 is ~100 ulps: far above rounding, far
# below any indexing or weighting mistake (a one-voxel shift gives O(1)).
FP32_REL = 1e-5
# Scaling and squaring compounds 7 compositions of rounded fields.
SVF_FP32_REL = 2e-5


def run_task(
    task: str, backend: str, repeats: int = 2, backend_params=None, **params
) -> testing.CellResult:
    """One cell on the CPU, seed 0, 1 warm-up call, through the worker's own path; a
    backend that cannot run here (a Triton one without the interpreter) skips the test."""
    params.update((f"backend.{k}", v) for k, v in (backend_params or {}).items())
    cell = testing.run_cell(task, {"backend": backend}, params, repeats=repeats, warmup=1,
                            registry=REGISTRY)  # fmt: skip
    if cell.status == "skipped":
        pytest.skip(cell.error)
    return cell


def median(cell: testing.CellResult, name: str) -> float:
    return statistics.median(cell.times[name])


@pytest.mark.parametrize("backend", ["warp.eager", "warp.triton"])
@pytest.mark.parametrize(
    "size, mode, padding",
    [
        ([5, 6, 7], "bilinear", "zeros"),
        ([9, 11], "bilinear", "border"),
        ([5, 6, 7], "nearest", "zeros"),
    ],
)
def test_warp_task_measures_and_checks(backend, size, mode, padding):
    cell = run_task(
        "kernels.warp",
        backend,
        size=size,
        batch=2,
        channels=3,
        mode=mode,
        padding=padding,
    )
    m = cell.metrics
    for name in ("output", "grad_image", "grad_disp"):
        assert m[f"{name}_error_max"] < FP32_REL, (name, m)
        assert m[f"{name}_error_l2"] < FP32_REL
    assert m["excluded_fraction"] == 0.0  # no sample point within 1e-4 of a grid line here
    assert set(cell.times) == {"forward", "forward_backward"}
    assert all(len(s) == 2 for s in cell.times.values())
    voxels = 2 * math.prod(size)
    expect = warp_min_bytes(voxels, 3, len(size), backward=False) / median(cell, "forward") / 1e9
    assert m["gbs_forward"] == pytest.approx(expect)
    expect = warp_min_bytes(voxels, 3, len(size), True) / median(cell, "forward_backward") / 1e9
    assert m["gbs_forward_backward"] == pytest.approx(expect)


@pytest.mark.parametrize("merge", [True, False])
@pytest.mark.parametrize("task", ["kernels.warp", "kernels.svf_exp"])
def test_triton_backend_merge_atomics_reaches_the_kernels(monkeypatch, task, merge):
    """``backend.merge_atomics`` (False: the scatter the merge replaced, kept to time
    the two on a GPU) reaches every backward launch, warp's and its paired svf_exp's,
    with errors to float64 within the fp32 bounds either way."""
    warp_module = importlib.import_module("kernels.warp")  # kernels.warp is also a function
    seen = []
    launch = warp_module.warp_backward

    def spy(*args, **kwargs):
        seen.append(kwargs["merge_atomics"])
        return launch(*args, **kwargs)

    monkeypatch.setattr(warp_module, "warp_backward", spy)
    backend = "warp.triton" if task == "kernels.warp" else "svf_exp.triton"
    cell = run_task(task, backend, backend_params={"merge_atomics": merge}, size=[6, 7, 8])
    assert seen and set(seen) == {merge}
    bound = FP32_REL if task == "kernels.warp" else SVF_FP32_REL
    errors = {k: v for k, v in cell.metrics.items() if k.endswith("_error_max")}
    assert errors and all(v < bound for v in errors.values()), errors


def test_warp_task_without_backward_times_forward_only():
    cell = run_task("kernels.warp", "warp.eager", size=[6, 7], backward=False)
    assert set(cell.times) == {"forward"}
    assert "grad_image_error_max" not in cell.metrics


def test_warp_task_half_precision():
    cell = run_task("kernels.warp", "warp.triton", size=[9, 11], dtype="bfloat16")
    # bf16 keeps 8 significant bits: the output is rounded once (2^-9 relative) after
    # an fp32 interpolation of bf16 inputs; the reference interpolates the same inputs.
    assert cell.metrics["output_error_max"] < 2**-8
    assert cell.metrics["output_error_max"] > FP32_REL  # it is really bf16


def test_sample_points_on_grid_lines_are_left_out_of_the_warp_errors():
    """A whole-voxel shift puts every bilinear sample point on a grid line, where the
    displacement derivative jumps; nearest's jumps are at the half-way points."""
    from plugins.tasks.kernels.tasks import ambiguous_voxels, relative_errors

    disp = torch.full((1, 2, 4, 5), 0.25)  # off both kinds of jump along axis 0
    disp[:, 1] = 1.0
    assert ambiguous_voxels(disp, "bilinear").all()
    assert not ambiguous_voxels(disp, "nearest").any()
    disp[:, 1] = 0.5 + 3e-5  # float32 keeps 3e-5 here, inside the 1e-4 band
    assert ambiguous_voxels(disp, "nearest").all()
    assert not ambiguous_voxels(disp, "bilinear").any()
    out, ref = torch.ones(1, 1, 4, 5), torch.ones(1, 1, 4, 5)
    out[0, 0, 2, 3] = 3.0  # one voxel off by 2 (relative 2)
    exclude = torch.zeros(1, 1, 4, 5, dtype=torch.bool)
    assert relative_errors(out, ref, exclude) == pytest.approx((2.0, 2.0 / 20**0.5))
    exclude[0, 0, 2, 3] = True
    assert relative_errors(out, ref, exclude) == (0.0, 0.0)


class ShiftedWarp(WarpBackend):
    """A wrong warp: samples one voxel off along the last axis."""

    name = "test.shifted_warp"

    def __call__(self, image, disp, *, mode="bilinear", padding="zeros"):
        from kernels import warp

        shift = torch.zeros_like(disp)
        shift[:, -1] = 1.0
        return warp(image, disp + shift, mode=mode, padding=padding, backend="torch")


@hookimpl
def bench_plugins() -> list[type[WarpBackend]]:
    """This module as a plugin module, so that a registry can hold its wrong warp."""
    return [ShiftedWarp]


@functools.cache
def _with_shifted_warp() -> Registry:
    return testing.default_registry([__name__])


def test_a_wrong_backend_is_caught_by_the_error_metrics():
    cell = testing.run_cell(
        "kernels.warp",
        {"backend": ShiftedWarp.name},
        {"size": [8, 9], "backward": False},
        registry=_with_shifted_warp(),
    )
    assert cell.metrics["output_error_max"] > 0.1


@pytest.mark.parametrize("layout", ["planar", "channels_last"])
@pytest.mark.parametrize("backend", ["svf_exp.eager", "svf_exp.triton"])
def test_svf_exp_task(backend, layout):
    cell = run_task("kernels.svf_exp", backend, size=[6, 7, 8], velocity=2.0, layout=layout)
    m = cell.metrics
    assert m["output_error_max"] < SVF_FP32_REL
    assert m["grad_velocity_error_max"] < SVF_FP32_REL
    # exp(v) o exp(-v) = id up to interpolation error, O(h^2 |grad v|^2): a fraction of a
    # voxel for a 2-voxel field on a 6x7x8 grid, whose zero padding bends it at the edges.
    assert 0 < m["inverse_error_vox_mean"] < 0.2
    assert m["inverse_error_vox_mean"] <= m["inverse_error_vox_max"] < 1.0
    expect = svf_exp_min_bytes(6 * 7 * 8, 3, 7, backward=False) / median(cell, "forward") / 1e9
    assert m["gbs_forward"] == pytest.approx(expect)


def test_svf_exp_inverse_error_shrinks_with_the_field():
    """The inverse-consistency metric measures the method: exact (0) for a zero field, and
    shrinking faster than the field, as interpolation error does (by 4 for a smooth field
    when it halves; by 2.5-3 here, the synthetic field being piecewise linear, kinked at
    its coarse nodes). Border padding keeps the volume's edge out of it."""

    def residual(velocity: float) -> float:
        cell = run_task(
            "kernels.svf_exp",
            "svf_exp.eager",
            size=[48, 48],
            velocity=velocity,
            padding="border",
            backward=False,
        )
        return cell.metrics["inverse_error_vox_mean"]

    big, small = residual(2.0), residual(1.0)
    assert 2.2 < big / small < 4.5
    assert residual(0.0) == 0.0


# Against float64, per precision (relative to max |y|, y ~ 1): fp32 ~1e-7 (see
# tests/kernels/test_sine_mlp.py); tf32 and fp16 operands keep 11 bits (2^-11 = 4.9e-4
# each, growing ~sqrt(fan_in) over a 32-wide dot and through omega0 = 30 per layer);
# bf16 keeps 8 bits. The bounds below are a few times the errors measured at these
# sizes; the interpreter computes "tf32" dots in full fp32.
SINE_MLP_REL = {"fp32": 1e-5, "tf32": 5e-3, "fp16": 5e-3, "bf16": 5e-2}


@pytest.mark.parametrize("precision", list(SINE_MLP_REL))
@pytest.mark.parametrize("backend", ["sine_mlp.eager", "sine_mlp.triton"])
def test_sine_mlp_task(backend, precision):
    cell = run_task(
        "kernels.sine_mlp",
        backend,
        points=129,
        width=32,
        sine_layers=3,
        precision=precision,
        backward=True,
    )
    m = cell.metrics
    tol = SINE_MLP_REL[precision]
    if backend == "sine_mlp.eager" and precision in ("fp16", "bf16"):
        tol *= 4  # autocast also rounds the sine arguments (the fused kernel keeps fp32)
    assert m["output_error_max"] < tol
    assert m["grad_x_error_max"] < 10 * tol  # x-gradients carry omega0 = 30 per layer
    assert m["grad_params_error_max"] < 10 * tol
    flops = 129 * sine_mlp_flops(3, [32] * 3, 1)
    assert m["tflops_forward"] == pytest.approx(flops / median(cell, "forward") / 1e12)
    assert set(cell.times) == {"forward", "forward_backward"}


def test_triton_backends_skip_where_triton_cannot_run(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    for op in ("warp", "svf_exp", "sine_mlp"):
        backend = REGISTRY.get("backend", f"{op}.triton")()
        reason = backend.skip("cpu")
        assert reason == (
            f"{op}.triton needs a CUDA device, or TRITON_INTERPRET=1 for the CPU "
            f"interpreter; on cpu kernels would fall back to torch"
        )
        assert REGISTRY.get("backend", f"{op}.eager")().skip("cpu") is None


def test_a_backend_of_another_op_is_refused_at_validation(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "suite: s\nbenchmarks:\n  - task: kernels.svf_exp\n"
        "    matrix: {backend: [svf_exp.eager, warp.triton]}\n"
        "  - task: kernels.warp\n    params: {size: [3, 4, 5, 6]}\n"
        "    matrix: {backend: [warp.eager]}\n"
    )
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert info.value.errors == [
        "benchmarks[0].matrix.backend: 'warp.triton' is a backend that does not subclass "
        "SvfExpBackend, which slot 'backend' takes (SvfExpBackend backends: svf_exp.compile, "
        "svf_exp.eager, svf_exp.triton)",
        "benchmarks[1].params.size: expected 2 or 3 positive integers, (H, W) or (D, H, W); "
        "got [3, 4, 5, 6]",
    ]


@pytest.mark.slow
def test_compile_backend_compiles_in_every_cell_of_a_worker(monkeypatch):
    """dynamo's per-function cache outlives a cell: without a reset per backend instance,
    cells past recompile_limit would silently run eagerly. With the limit at 2 (a cell
    compiles 2 versions: no_grad forward, forward+backward), three cells of new shapes
    in one process run only if each starts afresh; a hit raises instead of falling back."""
    import torch._dynamo

    monkeypatch.setattr(torch._dynamo.config, "recompile_limit", 8)  # restored after
    limit = {"recompile_limit": 2}
    for size in ([5, 6], [6, 7], [7, 8]):
        cell = run_task("kernels.warp", "warp.compile", backend_params=limit, size=size)
        assert cell.metrics["output_error_max"] < FP32_REL
    assert torch._dynamo.config.fail_on_recompile_limit_hit
    assert torch._dynamo.config.recompile_limit == 2


@pytest.mark.slow
def test_past_the_recompile_limit_a_compile_cell_errors_instead_of_running_eagerly(monkeypatch):
    """A second version (a new shape in the same cell) with the limit at 1 raises."""
    import torch._dynamo

    monkeypatch.setattr(torch._dynamo.config, "recompile_limit", 8)
    backend = REGISTRY.get("backend", "warp.compile")(recompile_limit=1)
    image = torch.rand(1, 1, 5, 6)
    backend(image, torch.zeros(1, 2, 5, 6))
    with pytest.raises(Exception, match="recompile_limit|RecompileLimit"):
        backend(torch.rand(1, 1, 7, 8), torch.zeros(1, 2, 7, 8))


@pytest.mark.slow
@pytest.mark.parametrize(
    "task, backend, params",
    [
        ("kernels.warp", "warp.compile", {"size": [9, 11], "batch": 2}),
        ("kernels.svf_exp", "svf_exp.compile", {"size": [9, 11], "steps": 3}),
        ("kernels.sine_mlp", "sine_mlp.compile", {"points": 65, "width": 16, "backward": True}),
    ],
)
def test_compile_backends(task, backend, params):
    """torch.compile on CPU builds C++ (tens of seconds a graph): slow-marked."""
    cell = run_task(task, backend, **params)
    assert cell.metrics["output_error_max"] < SVF_FP32_REL
