"""kernels.warp against kernels.reference.warp_reference, and known analytic cases.

On CPU the Triton kernels run under TRITON_INTERPRET=1 (set by tests/conftest.py), so
every size here is small.

The functions are imported from their submodules, not from ``kernels``: see
test_exported_from_kernels.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.reference import grid_sample_warp, identity_grid, warp_reference
from kernels.warp import warp
from tests.kernels._warp_cases import (
    DTYPE_TOLERANCES,
    SHAPES,
    SHAPES_2D,
    SHAPES_3D,
    assert_close_scaled,
    grads,
    random_disp,
    random_image,
    shape_id,
)

# importlib, not `import kernels.warp as m`: that form resolves the package attribute
# `kernels.warp`, which is meant to be the function.
warp_module = importlib.import_module("kernels.warp")

MODES = ["bilinear", "nearest"]
PADDINGS = ["zeros", "border"]
FP32_ATOL, FP32_RTOL = 2e-5, 2e-5  # see DTYPE_TOLERANCES


# ---------------------------------------------------------------------------
# Against the reference
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
def test_forward_and_gradients_match_reference(shape, mode, padding):
    image = random_image(shape).requires_grad_()
    disp = random_disp(shape).requires_grad_()
    out = warp(image, disp, mode=mode, padding=padding, backend="triton")
    ref = warp_reference(image, disp, mode=mode, padding=padding)
    assert out.shape == image.shape and out.dtype == image.dtype
    assert_close_scaled(out, ref, FP32_ATOL, FP32_RTOL, "forward")

    grad_image, grad_disp = grads(out, (image, disp))
    ref_image, ref_disp = grads(ref, (image, disp))
    assert_close_scaled(grad_image, ref_image, FP32_ATOL, FP32_RTOL, "grad image")
    assert_close_scaled(grad_disp, ref_disp, FP32_ATOL, FP32_RTOL, "grad disp")
    if mode == "bilinear":
        assert grad_disp.abs().max() > 0  # the case exercises the displacement gradient


@pytest.mark.parametrize(("dtype", "atol", "rtol"), DTYPE_TOLERANCES)
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("shape", [SHAPES_2D[1], SHAPES_3D[1]], ids=shape_id)
def test_dtypes_against_fp32_reference(shape, padding, dtype, atol, rtol):
    image = random_image(shape, dtype=dtype).requires_grad_()
    disp = random_disp(shape, dtype=dtype).requires_grad_()
    out = warp(image, disp, padding=padding, mode="trilinear")
    assert out.dtype == dtype

    # The reference sees the same (already rounded) values, upcast exactly to fp32.
    image32 = image.detach().float().requires_grad_()
    disp32 = disp.detach().float().requires_grad_()
    ref = warp_reference(image32, disp32, padding=padding)
    assert_close_scaled(out, ref, atol, rtol, "forward")

    gen = torch.Generator().manual_seed(3)
    grad_out = torch.randn(out.shape, generator=gen).to(dtype)
    grad_image, grad_disp = torch.autograd.grad(out, (image, disp), grad_out)
    ref_image, ref_disp = torch.autograd.grad(ref, (image32, disp32), grad_out.float())
    assert grad_image.dtype == dtype and grad_disp.dtype == dtype
    assert_close_scaled(grad_image, ref_image, atol, rtol, "grad image")
    assert_close_scaled(grad_disp, ref_disp, atol, rtol, "grad disp")


@pytest.mark.parametrize("needs", ["image", "disp"])
@pytest.mark.parametrize("shape", [SHAPES_2D[1], SHAPES_3D[1]], ids=shape_id)
def test_single_input_gradient(shape, needs):
    image = random_image(shape).requires_grad_(needs == "image")
    disp = random_disp(shape).requires_grad_(needs == "disp")
    leaf = image if needs == "image" else disp
    (grad,) = grads(warp(image, disp), (leaf,))
    (ref,) = grads(warp_reference(image, disp), (leaf,))
    assert_close_scaled(grad, ref, FP32_ATOL, FP32_RTOL)


@pytest.mark.parametrize("shape", [SHAPES_2D[1], SHAPES_3D[1]], ids=shape_id)
def test_strided_inputs(shape):
    """Sliced channels (odd channel stride), a transposed volume and expanded grads."""
    wide = random_image((shape[0], shape[1] + 2, *shape[2:]))
    image = wide[:, 1:-1]
    disp = random_disp(shape).transpose(-1, -2).contiguous().transpose(-1, -2)
    assert not image.is_contiguous() and not disp.is_contiguous()
    image.requires_grad_()
    disp.requires_grad_()
    out = warp(image, disp, padding="border")
    ref = warp_reference(image, disp, padding="border")
    assert_close_scaled(out, ref, FP32_ATOL, FP32_RTOL)
    # .sum() hands the backward an expanded (all strides 0) grad_out.
    got = torch.autograd.grad(out.sum(), (image, disp))
    refs = torch.autograd.grad(ref.sum(), (image, disp))
    for g, want in zip(got, refs):
        assert_close_scaled(g, want, FP32_ATOL, FP32_RTOL)


@settings(max_examples=12, deadline=None, database=None)  # no .hypothesis/ in the repo
@given(
    spatial=st.lists(st.integers(1, 9), min_size=2, max_size=3),
    batch=st.integers(1, 2),
    channels=st.integers(1, 3),
    scale=st.floats(0.0, 6.0),
    padding=st.sampled_from(PADDINGS),
    seed=st.integers(0, 2**16),
)
def test_forward_matches_reference_property(spatial, batch, channels, scale, padding, seed):
    shape = (batch, channels, *spatial)
    image = random_image(shape, seed=seed)
    disp = random_disp(shape, scale=scale, seed=seed + 1)
    out = warp(image, disp, padding=padding)
    assert_close_scaled(out, warp_reference(image, disp, padding=padding), FP32_ATOL, FP32_RTOL)


@pytest.mark.parametrize("backend", ["triton", "torch"])
@pytest.mark.parametrize("shape", [SHAPES_2D[1], SHAPES_3D[1]], ids=shape_id)
def test_align_corners_conventions_agree(shape, backend):
    """Displacements are in voxels, so both grid_sample conventions sample the same point."""
    image, disp = random_image(shape), random_disp(shape)
    a = warp(image, disp, align_corners=True, backend=backend)
    b = warp(image, disp, align_corners=False, backend=backend)
    assert_close_scaled(a, b, FP32_ATOL, FP32_RTOL)


@pytest.mark.parametrize("shape", [SHAPES_2D[1], SHAPES_3D[1]], ids=shape_id)
def test_grid_sample_baseline_with_buffered_grid_matches_reference(shape):
    image, disp = random_image(shape), random_disp(shape)
    grid = identity_grid(tuple(shape[2:]))
    torch.testing.assert_close(
        grid_sample_warp(image, disp, grid=grid), warp_reference(image, disp), atol=0, rtol=0
    )


def test_reference_gradcheck_float64():
    for shape in [(1, 2, 4, 5), (1, 1, 3, 4, 3)]:
        for padding in PADDINGS:
            image = random_image(shape, dtype=torch.float64).requires_grad_()
            disp = random_disp(shape, scale=1.5, dtype=torch.float64).requires_grad_()
            assert torch.autograd.gradcheck(
                lambda i, d, p=padding: warp_reference(i, d, padding=p), (image, disp)
            )


# ---------------------------------------------------------------------------
# Analytic cases
# ---------------------------------------------------------------------------


def _shifted(image: torch.Tensor, shift: tuple[int, ...], padding: str) -> torch.Tensor:
    """image sampled at index + shift, built by indexing (no interpolation)."""
    spatial = image.shape[2:]
    index = []
    inside = torch.ones(spatial, dtype=torch.bool)
    for axis, (n, s) in enumerate(zip(spatial, shift)):
        coord = torch.arange(n) + s
        shape = [1] * len(spatial)
        shape[axis] = n
        inside = inside & ((coord >= 0) & (coord < n)).view(shape)
        index.append(coord.clamp(0, n - 1).view(shape).expand(spatial))
    out = image[(slice(None), slice(None), *index)]
    return out if padding == "border" else out * inside


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [SHAPES_2D[1], SHAPES_3D[1]], ids=shape_id)
def test_constant_integer_displacement_is_a_shift(shape, mode, padding):
    ndim = len(shape) - 2
    shift = (2, -3, 1)[:ndim]
    image = random_image(shape)
    disp = torch.tensor(shift, dtype=torch.float32).view(1, ndim, *[1] * ndim)
    disp = disp.expand(shape[0], ndim, *shape[2:])
    expected = _shifted(image, shift, padding)
    for backend in ("triton", "torch"):
        out = warp(image, disp, mode=mode, padding=padding, backend=backend)
        torch.testing.assert_close(out, expected, atol=1e-6, rtol=0, msg=backend)


@pytest.mark.parametrize("padding", PADDINGS)
def test_constant_fractional_displacement_interpolates(padding):
    """disp = 0.25 along x: out[x] = 0.75 image[x] + 0.25 image[x + 1] (edge rules apply)."""
    shape = (2, 2, 5, 6, 7)
    image = random_image(shape)
    disp = torch.zeros((2, 3, 5, 6, 7))
    disp[:, 2] = 0.25
    nxt = _shifted(image, (0, 0, 1), padding)
    if padding == "border":
        # The last voxel samples x = 6.25, clamped to 6: the edge value itself.
        nxt[..., -1] = image[..., -1]
    expected = 0.75 * image + 0.25 * nxt
    torch.testing.assert_close(warp(image, disp, padding=padding), expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("backend", ["triton", "torch"])
@pytest.mark.parametrize("half", [0.5, -0.5])
def test_nearest_rounds_half_to_even(half, backend):
    """x + 0.5 and x - 0.5 go to the even neighbour, as grid_sample's nearbyint; the
    edge samples at -0.5 and W - 0.5 round onto the volume."""
    width = 9
    image = torch.arange(float(width)).view(1, 1, 1, width).expand(2, 3, 7, width).contiguous()
    disp = torch.zeros(2, 2, 7, width)
    disp[:, 1] = half
    coord = torch.arange(width) + half
    even = torch.where(coord.floor() % 2 == 0, coord.floor(), coord.ceil())
    expected = even.clamp(0, width - 1).expand(2, 3, 7, width)
    torch.testing.assert_close(warp(image, disp, mode="nearest", backend=backend), expected)


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("shape", [SHAPES_2D[1], SHAPES_3D[1]], ids=shape_id)
def test_identity_at_boundary_voxels(shape, padding):
    """Zero displacement: every voxel, the boundary ones included, returns itself; the
    image gradient is grad_out; the displacement gradient along each axis is the forward
    difference of the image (zero past the last voxel with zeros padding; zero on both
    border voxels with border padding, where the clamp has zero slope, as grid_sample)."""
    ndim = len(shape) - 2
    image = random_image(shape).requires_grad_()
    disp = torch.zeros((shape[0], ndim, *shape[2:]), requires_grad=True)
    out = warp(image, disp, padding=padding)
    torch.testing.assert_close(out, image, atol=0, rtol=0)

    gen = torch.Generator().manual_seed(5)
    grad_out = torch.randn(shape, generator=gen)
    grad_image, grad_disp = torch.autograd.grad(out, (image, disp), grad_out)
    torch.testing.assert_close(grad_image, grad_out, atol=0, rtol=0)
    for axis in range(ndim):
        dim = 2 + axis
        zero_slice = torch.zeros_like(image.detach()).narrow(dim, 0, 1)
        forward_diff = torch.diff(image.detach(), dim=dim, append=zero_slice)
        if padding == "border":
            forward_diff.narrow(dim, 0, 1).zero_()
            forward_diff.narrow(dim, shape[dim] - 1, 1).zero_()
        expected = (grad_out * forward_diff).sum(dim=1)
        torch.testing.assert_close(grad_disp[:, axis], expected, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("padding", PADDINGS)
def test_far_and_infinite_displacements(padding):
    """Samples far outside read 0 (zeros) or the nearest edge voxel (border), with no
    out-of-range address even for +-inf or 1e30 (the kernels clamp before indexing)."""
    shape = (1, 2, 5, 6, 7)
    image = random_image(shape)
    disp = torch.zeros((1, 3, 5, 6, 7))
    disp[0, 2, 0] = float("inf")
    disp[0, 2, 1] = -float("inf")
    disp[0, 2, 2] = 1e30
    disp[0, 2, 3] = -1e30
    out = warp(image, disp, padding=padding)
    if padding == "zeros":
        torch.testing.assert_close(out[:, :, :4], torch.zeros_like(out[:, :, :4]))
    else:
        last, first = image[:, :, :, :, -1:], image[:, :, :, :, :1]
        torch.testing.assert_close(out[:, :, 0], last[:, :, 0].expand(-1, -1, -1, 7))
        torch.testing.assert_close(out[:, :, 1], first[:, :, 1].expand(-1, -1, -1, 7))
        torch.testing.assert_close(out[:, :, 2], last[:, :, 2].expand(-1, -1, -1, 7))
        torch.testing.assert_close(out[:, :, 3], first[:, :, 3].expand(-1, -1, -1, 7))
    torch.testing.assert_close(out[:, :, 4], image[:, :, 4])


@pytest.mark.parametrize("backend", ["triton", "torch"])
@pytest.mark.parametrize("shape", [SHAPES_2D[1], SHAPES_3D[1]], ids=shape_id)
def test_nan_displacement(shape, backend):
    """Defined behaviour: a voxel whose displacement has a NaN (in any channel) is NaN in
    every image channel, adds nothing to the image gradient and gets a zero displacement
    gradient; every other voxel is unaffected."""
    ndim = len(shape) - 2
    image = random_image(shape).requires_grad_()
    clean = random_disp(shape, scale=1.5)
    disp = clean.clone()
    bad = torch.zeros(shape[0], *shape[2:], dtype=torch.bool)
    bad.view(shape[0], -1)[:, ::4] = True
    disp[:, ndim - 1][bad] = float("nan")
    disp.requires_grad_()

    out = warp(image, disp, backend=backend)
    bad_c = bad.unsqueeze(1).expand_as(out)
    assert torch.isnan(out[bad_c]).all()
    good = warp_reference(image.detach(), clean)
    torch.testing.assert_close(out[~bad_c], good[~bad_c], atol=FP32_ATOL, rtol=FP32_RTOL)

    gen = torch.Generator().manual_seed(7)
    grad_out = torch.randn(shape, generator=gen)
    grad_image, grad_disp = torch.autograd.grad(out, (image, disp), grad_out)
    assert torch.isfinite(grad_image).all() and torch.isfinite(grad_disp).all()
    assert (grad_disp.transpose(0, 1)[:, bad] == 0).all()
    # The image gradient is that of the clean field with the NaN voxels' grad_out dropped.
    image2 = image.detach().requires_grad_()
    (want,) = torch.autograd.grad(
        warp_reference(image2, clean), (image2,), grad_out.masked_fill(bad_c, 0)
    )
    assert_close_scaled(grad_image, want, FP32_ATOL, FP32_RTOL)


# ---------------------------------------------------------------------------
# Checks, fallback, edge shapes
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "disp", "kwargs", "error", "match"),
    [
        (torch.zeros(1, 1, 4), torch.zeros(1, 1, 4), {}, ValueError, r"\(B, C, H, W\)"),
        (torch.zeros(1, 1, 4, 5), torch.zeros(1, 3, 4, 5), {}, ValueError, r"disp must be"),
        (torch.zeros(2, 1, 4, 5), torch.zeros(1, 2, 4, 5), {}, ValueError, r"disp must be"),
        (torch.zeros(1, 1, 4, 5), torch.zeros(1, 2, 5, 4), {}, ValueError, r"disp must be"),
        (
            torch.zeros(1, 1, 4, 5),
            torch.zeros(1, 2, 4, 5, dtype=torch.float16),
            {},
            TypeError,
            "must match",
        ),
        (
            torch.zeros(1, 1, 4, 5, dtype=torch.float64),
            torch.zeros(1, 2, 4, 5, dtype=torch.float64),
            {},
            TypeError,
            'backend="torch"',
        ),
        (
            torch.zeros(1, 1, 4, 5, dtype=torch.int32),
            torch.zeros(1, 2, 4, 5, dtype=torch.int32),
            {"backend": "torch"},
            TypeError,
            "not supported",
        ),
        (torch.zeros(1, 1, 4, 5), torch.zeros(1, 2, 4, 5, device="meta"), {}, ValueError, "meta"),
        (torch.zeros(1, 1, 4, 5), torch.zeros(1, 2, 4, 5), {"mode": "cubic"}, ValueError, "mode"),
        (torch.zeros(1, 1, 4, 5), torch.zeros(1, 2, 4, 5), {"padding": "wrap"}, ValueError, "pad"),
        (torch.zeros(1, 1, 4, 5), torch.zeros(1, 2, 4, 5), {"backend": "jax"}, ValueError, "jax"),
        ("image", torch.zeros(1, 2, 4, 5), {}, TypeError, "tensors"),
        (
            torch.zeros(1, 1, 4, 5),
            torch.zeros(1, 2, 4, 5),
            {"merge_atomics": "no"},
            TypeError,
            "merge_atomics must be a bool",
        ),
    ],
)
def test_invalid_inputs_raise_clear_errors(image, disp, kwargs, error, match):
    with pytest.raises(error, match=match):
        warp(image, disp, **kwargs)


def test_float64_runs_on_torch_backend():
    shape = (1, 2, 4, 5)
    image = random_image(shape, dtype=torch.float64)
    disp = random_disp(shape, dtype=torch.float64)
    out = warp(image, disp, backend="torch")
    assert out.dtype == torch.float64


def test_triton_backend_falls_back_to_reference_where_triton_cannot_run(monkeypatch):
    def _no_kernel(*args):
        raise AssertionError("the Triton path must not run")

    monkeypatch.setattr(warp_module, "triton_can_run", lambda device_type: False)
    monkeypatch.setattr(warp_module.WarpFunction, "apply", _no_kernel)
    shape = SHAPES_2D[1]
    image, disp = random_image(shape), random_disp(shape)
    out = warp(image, disp, backend="triton")
    torch.testing.assert_close(out, warp_reference(image, disp), atol=0, rtol=0)


def test_triton_path_runs_under_the_interpreter(monkeypatch):
    calls = []
    original = warp_module.warp_forward
    monkeypatch.setattr(
        warp_module, "warp_forward", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    shape = SHAPES_2D[1]
    warp(random_image(shape), random_disp(shape), backend="triton")
    assert calls == [1]


def test_exported_from_kernels():
    """``from kernels import warp`` is the function, even after the submodule of the same
    name was imported (it was, above)."""
    import kernels
    from kernels import compose, svf_exp
    from kernels import warp as exported

    assert exported is kernels.warp is warp_module.warp
    assert compose is svf_module_functions()[0] and svf_exp is svf_module_functions()[1]
    assert {"warp", "compose", "svf_exp"} <= set(kernels.__all__)


def svf_module_functions():
    module = importlib.import_module("kernels.svf")
    return module.compose, module.svf_exp


def test_exported_from_kernels_in_a_fresh_interpreter():
    """The first import order a user meets: ``from kernels import warp`` before anything."""
    import subprocess
    import sys

    code = (
        "import torch\n"
        "from kernels import warp\n"
        "from kernels import warp as again\n"
        "from kernels.reference import warp_reference\n"
        "x, d = torch.randn(1, 2, 5, 6), torch.rand(1, 2, 5, 6)\n"
        "import kernels.warp\n"
        "assert warp is again is kernels.warp and callable(warp)\n"
        "assert torch.equal(warp(x, d, backend='torch'), warp_reference(x, d))\n"
    )
    repo_root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=repo_root)


def test_empty_batch():
    image = torch.zeros(0, 2, 4, 5, requires_grad=True)
    disp = torch.zeros(0, 2, 4, 5, requires_grad=True)
    out = warp(image, disp)
    assert out.shape == image.shape
    grad_image, grad_disp = torch.autograd.grad(out.sum(), (image, disp))
    assert grad_image.shape == image.shape and grad_disp.shape == disp.shape


def test_identity_grid_channels_follow_spatial_axes():
    grid = identity_grid((2, 3, 4))
    assert grid.shape == (3, 2, 3, 4)
    assert grid[0, 1, 0, 0] == 1 and grid[1, 0, 2, 0] == 2 and grid[2, 0, 0, 3] == 3


@pytest.mark.slow
def test_every_variant_compiles_for_sm90_without_spills():
    """Lower every kernel variant, planar and interleaved, the backward also without
    merged atomics (fp32), to an sm_90a cubin on this machine, GPU or not (~90 s)."""
    import json
    import os
    import subprocess
    import sys

    import triton

    ptxas = os.path.join(os.path.dirname(triton.__file__), "backends/nvidia/bin/ptxas-blackwell")
    if not os.path.exists(ptxas):
        pytest.skip(f"Triton's bundled {ptxas} is missing")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.kernels._warp_sm90_check"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    # 4 kernels x mode x padding x ADD_DISP x dtype x layout, + MERGE False backward
    assert len(rows) == 4 * 2 * 2 * 2 * 2 * 2 + 2 * 2 * 2 * 2
    assert sum(r.get("MERGE") is False for r in rows) == 16
    assert all(r["spill_bytes"] == 0 for r in rows), [r for r in rows if r["spill_bytes"]]
    # Planar fp32 displacement (and grad_out) loads vectorise (2-4 voxels a thread:
    # ld.v2/v4). bf16 at 2 voxels a thread (bwd3d) is one plain 32-bit load, and
    # interleaved channels are strided loads, so only planar fp32 is checked.
    planar = [r for r in rows if r["VS"] == 1 and r["MODE"] == 0 and r["dtype"] == "fp32"]
    assert planar and all(r["vector_loads"] > 0 for r in planar)


@pytest.mark.gpu
@pytest.mark.slow
def test_int64_offsets_past_2_pow_31_elements():
    """A (2, 1, 1040, 1040, 1040) fp16 image has 2.25e9 > 2^31 elements: the second batch
    element starts past int32 range. An integer shift checks both batch elements."""
    n = 1040
    image = torch.empty((2, 1, n, n, n), dtype=torch.float16, device="cuda")
    image[0].fill_(1.0)
    image[1].copy_(torch.arange(n, device="cuda", dtype=torch.float16).view(1, 1, 1, n) / n)
    disp = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float16, device="cuda")
    disp = disp.view(1, 3, 1, 1, 1).expand(2, 3, n, n, n)
    out = warp(image, disp)
    assert image.numel() > 2**31
    torch.testing.assert_close(out[1, 0, -1, -1, :-1], image[1, 0, -1, -1, 1:])
    assert out[1, 0, -1, -1, -1] == 0
    assert (out[0, 0, -1, -1, :-1] == 1).all()


# ---------------------------------------------------------------------------
# Merged atomics of the image gradient (kernels/_warp_triton.py, _x_neighbour)
# ---------------------------------------------------------------------------


def _smooth_disp(shape: tuple[int, ...], seed: int = 5) -> torch.Tensor:
    """0.2-0.4 voxel along every axis: every sample's lower corner is its own voxel, so
    x-neighbours share their corners (voxel i's upper x is voxel i + 1's lower x), and
    no sample lies near a grid plane (see random_disp)."""
    gen = torch.Generator().manual_seed(seed)
    batch, _, *spatial = shape
    return 0.3 + 0.1 * (torch.rand((batch, len(spatial), *spatial), generator=gen) * 2 - 1)


@pytest.mark.parametrize("merge", [True, False], ids=["merged", "unmerged"])
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("shape", [(2, 2, 5, 37), (1, 2, 3, 4, 37)], ids=shape_id)
def test_merged_atomics_are_half_and_gradients_match_reference(monkeypatch, shape, padding, merge):
    """With a smooth displacement the backward issues only lower-x atomics: every
    in-range upper-x share is merged into the x-neighbour's lower-x atomic. The exact
    count of atomic lanes is checked (the unmerged scatter, ``merge_atomics=False``,
    issues every in-range corner), every access is in bounds, and the gradients match
    the reference to the fp32 tolerance (DTYPE_TOLERANCES: merging reassociates one
    addition per address)."""
    from tests.kernels._bounds import checked_accesses

    image = random_image(shape).requires_grad_()
    disp = _smooth_disp(shape).requires_grad_()
    batch, channels, *spatial = shape
    with checked_accesses() as log:
        for name in (
            "_warp2d_fwd_kernel",
            "_warp3d_fwd_kernel",
            "_warp2d_bwd_kernel",
            "_warp3d_bwd_kernel",
        ):
            monkeypatch.setattr(warp_module, name, log.guard(getattr(warp_module, name)))
        out = warp(image, disp, padding=padding, backend="triton", merge_atomics=merge)
        grad_image, grad_disp = grads(out, (image, disp))
    assert log.violations == []
    # per voxel: 1 lower-x corner times (1 + [upper corner in range]) per y / z axis
    per_axis = [torch.tensor([1 + (i + 1 < n) for i in range(n)]) for n in spatial[:-1]]
    lower_x = 1
    for counts in per_axis:
        lower_x = lower_x * counts.sum().item()
    merged = batch * channels * lower_x * spatial[-1]
    unmerged = merged * (2 * spatial[-1] - 1) // spatial[-1]
    assert merged < 0.52 * unmerged
    assert log.atomic_lanes == (merged if merge else unmerged)
    ref = warp_reference(image, disp, padding=padding)
    ref_image, ref_disp = grads(ref, (image, disp))
    assert_close_scaled(grad_image, ref_image, FP32_ATOL, FP32_RTOL, "grad image")
    assert_close_scaled(grad_disp, ref_disp, FP32_ATOL, FP32_RTOL, "grad disp")


@pytest.mark.parametrize("shape", [(2, 2, 5, 37), (1, 2, 3, 4, 37)], ids=shape_id)
def test_merged_atomics_with_broken_runs_match_reference(shape):
    """Runs of merges broken every few voxels (NaN displacements, jumps of a whole
    voxel, samples leaving the volume): the image gradient still matches the reference
    (fp32 tolerance, DTYPE_TOLERANCES), so a share is neither dropped nor added twice
    where a merge is refused on either side."""
    disp = _smooth_disp(shape, seed=6)
    gen = torch.Generator().manual_seed(7)
    jump = torch.rand(disp.shape[:1] + disp.shape[2:], generator=gen) < 0.2
    disp[:, -1][jump] += 1.0  # x jumps a voxel: this voxel's lower x is not i
    disp[:, -1, ..., -3:] += 2.0  # near the end of a row: leave the volume
    clean = disp.clone()
    disp[0, 0, ..., 5] = float("nan")  # as test_nan_displacement: its grad_out is dropped
    bad = torch.zeros(shape, dtype=torch.bool)
    bad[0, ..., 5] = True
    image = random_image(shape).requires_grad_()
    grad_out = torch.randn(shape, generator=gen)
    (grad_image,) = torch.autograd.grad(warp(image, disp, backend="triton"), image, grad_out)
    (want,) = torch.autograd.grad(warp_reference(image, clean), image, grad_out.masked_fill(bad, 0))
    assert_close_scaled(grad_image, want, FP32_ATOL, FP32_RTOL, "grad image")
