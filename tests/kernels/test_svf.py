"""kernels.svf (compose, svf_exp) against kernels.reference, and analytic cases.

The analytic cases print the error they measure (run with ``-s`` to see it) and record
it as a junit property:
- a constant velocity exponentiates to the same translation;
- a rotation-like (linear, antisymmetric) velocity: scaling and squaring computes
  (I + A/2^s)^(2^s) exactly here (linear interpolation of a linear field is exact), whose
  error against exp(A) is theta^2 r / 2^(s+1) to first order; the test checks that
  formula, i.e. first order in the step 2^-s;
- svf_exp(v) o svf_exp(-v) is near the identity.
"""

from __future__ import annotations

import importlib
import math

import pytest
import torch

from kernels.reference import (
    compose_reference,
    identity_grid,
    smooth_field,
    svf_exp_reference,
)
from kernels.svf import compose, svf_exp
from kernels.warp import interleave_channels
from tests.kernels._warp_cases import (
    DTYPE_TOLERANCES,
    SHAPES_2D,
    SHAPES_3D,
    assert_close_scaled,
    random_disp,
)

svf_module = importlib.import_module("kernels.svf")

PADDINGS = ["zeros", "border"]
FP32_ATOL, FP32_RTOL = 2e-5, 2e-5  # see DTYPE_TOLERANCES
FIELD_SHAPES = [SHAPES_2D[1], SHAPES_3D[1], SHAPES_3D[2]]  # (B, C, *S): C is ignored


def _field_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[0], len(shape) - 2, *shape[2:])


def _shape_id(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, _field_shape(shape)))


def _grad_out(shape: tuple[int, ...], seed: int = 11) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------
# Against the reference
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("shape", FIELD_SHAPES, ids=_shape_id)
def test_compose_matches_reference(shape, padding, mode):
    disp_a = random_disp(shape, seed=1).requires_grad_()
    disp_b = random_disp(shape, seed=2).requires_grad_()
    out = compose(disp_a, disp_b, mode=mode, padding=padding)
    ref = compose_reference(disp_a, disp_b, mode=mode, padding=padding)
    assert_close_scaled(out, ref, FP32_ATOL, FP32_RTOL, "forward")
    grad_out = _grad_out(out.shape)
    got = torch.autograd.grad(out, (disp_a, disp_b), grad_out)
    want = torch.autograd.grad(ref, (disp_a, disp_b), grad_out)
    assert_close_scaled(got[0], want[0], FP32_ATOL, FP32_RTOL, "grad disp_a")
    assert_close_scaled(got[1], want[1], FP32_ATOL, FP32_RTOL, "grad disp_b")


@pytest.mark.parametrize(("dtype", "atol", "rtol"), DTYPE_TOLERANCES)
@pytest.mark.parametrize("shape", FIELD_SHAPES[:2], ids=_shape_id)
def test_compose_dtypes(shape, dtype, atol, rtol):
    disp_a = random_disp(shape, seed=1, dtype=dtype).requires_grad_()
    disp_b = random_disp(shape, seed=2, dtype=dtype).requires_grad_()
    out = compose(disp_a, disp_b)
    assert out.dtype == dtype
    a32 = disp_a.detach().float().requires_grad_()
    b32 = disp_b.detach().float().requires_grad_()
    ref = compose_reference(a32, b32)
    assert_close_scaled(out, ref, atol, rtol, "forward")
    grad_out = _grad_out(out.shape).to(dtype)
    got = torch.autograd.grad(out, (disp_a, disp_b), grad_out)
    want = torch.autograd.grad(ref, (a32, b32), grad_out.float())
    assert_close_scaled(got[0], want[0], atol, rtol, "grad disp_a")
    assert_close_scaled(got[1], want[1], atol, rtol, "grad disp_b")


@pytest.mark.parametrize("shape", FIELD_SHAPES[:2], ids=_shape_id)
def test_self_composition_gradient(shape):
    """compose(u, u): both gradients flow to the same leaf, as in every squaring step."""
    u = random_disp(shape, scale=1.5).requires_grad_()
    grad_out = _grad_out(_field_shape(shape))
    (got,) = torch.autograd.grad(compose(u, u), (u,), grad_out)
    (want,) = torch.autograd.grad(compose_reference(u, u), (u,), grad_out)
    assert_close_scaled(got, want, FP32_ATOL, FP32_RTOL)


@pytest.mark.parametrize("steps", [0, 1, 7])
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("shape", FIELD_SHAPES, ids=_shape_id)
def test_svf_exp_matches_reference(shape, padding, steps):
    # 4 voxels of velocity: the last squarings move samples up to ~4 voxels, so
    # many of them leave these 5-9 voxel volumes and exercise both paddings.
    velocity = random_disp(shape, scale=4.0, seed=3).requires_grad_()
    out = svf_exp(velocity, steps=steps, padding=padding)
    ref = svf_exp_reference(velocity, steps=steps, padding=padding)
    # 7 chained compositions: each adds ~1e-6 and magnifies earlier errors by at most
    # 1 + |grad u| (~2 here), so the fp32 tolerance grows ~4x.
    atol, rtol = 4 * FP32_ATOL, 4 * FP32_RTOL
    assert_close_scaled(out, ref, atol, rtol, "forward")
    grad_out = _grad_out(out.shape)
    (got,) = torch.autograd.grad(out, (velocity,), grad_out)
    (want,) = torch.autograd.grad(ref, (velocity,), grad_out)
    assert_close_scaled(got, want, atol, rtol, "grad velocity")


def _compose_and_grads(a, b, mode, padding, layout):
    a = layout(a).requires_grad_()
    b = layout(b).requires_grad_()
    out = compose(a, b, mode=mode, padding=padding)
    return out, torch.autograd.grad(out, (a, b), layout(_grad_out(out.shape)))


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("shape", FIELD_SHAPES, ids=_shape_id)
def test_interleaved_channels_match_planar_and_stay_in_bounds(monkeypatch, shape, padding, mode):
    """Fields with their channels interleaved (channels_last) run the kernels with voxel
    stride ndim (issue 22: a corner's channels in one sector): every access in bounds,
    the result and both gradients kept in that layout, the same values as the planar
    launch to the fp32 tolerance (DTYPE_TOLERANCES: the image gradient's atomics may add
    in another order on a GPU) and as the reference, and as many atomics (the x-merges
    work alike)."""
    from tests.kernels._bounds import checked_accesses

    warp_module = importlib.import_module("kernels.warp")
    names = ("_warp2d_fwd_kernel", "_warp3d_fwd_kernel", "_warp2d_bwd_kernel", "_warp3d_bwd_kernel")
    a, b = random_disp(shape, seed=1), random_disp(shape, scale=1.0, seed=2)
    runs = []
    for layout in (lambda t: t.contiguous(), interleave_channels):
        with checked_accesses() as log:
            for name in names:
                monkeypatch.setattr(warp_module, name, log.guard(getattr(warp_module, name)))
            out, got = _compose_and_grads(a, b, mode, padding, layout)
        monkeypatch.undo()
        assert log.violations == []
        runs.append((out, got, log.atomic_lanes))
    (planar, planar_grads, planar_atomics), (out, grads_, atomics) = runs
    assert all(t.stride(1) == 1 for t in (out, *grads_)), [t.stride() for t in (out, *grads_)]
    assert atomics == planar_atomics > 0
    assert_close_scaled(out, planar, FP32_ATOL, FP32_RTOL, "forward")
    for got, want, what in zip(grads_, planar_grads, ("grad a", "grad b")):
        assert_close_scaled(got, want, FP32_ATOL, FP32_RTOL, what)
    ref = compose_reference(a, b, mode=mode, padding=padding)
    assert_close_scaled(out, ref, FP32_ATOL, FP32_RTOL, "forward vs reference")


@pytest.mark.parametrize("shape", FIELD_SHAPES[:2], ids=_shape_id)
def test_svf_exp_keeps_an_interleaved_layout_and_matches_planar(shape):
    """svf_exp of a channels_last velocity squares in that layout (no copy back) with
    the planar result and gradient (fp32 tolerance, as test_svf_exp_matches_reference)."""
    velocity = random_disp(shape, scale=4.0, seed=3)
    results = []
    for layout in (lambda t: t.contiguous(), interleave_channels):
        v = layout(velocity).requires_grad_()
        out = svf_exp(v, steps=7)
        (grad,) = torch.autograd.grad(out, (v,), layout(_grad_out(out.shape)))
        results.append((out, grad))
    (planar, planar_grad), (out, grad) = results
    assert out.stride(1) == 1 and grad.stride(1) == 1
    assert_close_scaled(out, planar, 4 * FP32_ATOL, 4 * FP32_RTOL, "forward")
    assert_close_scaled(grad, planar_grad, 4 * FP32_ATOL, 4 * FP32_RTOL, "grad velocity")


def test_mixed_layouts_run_planar():
    """An interleaved field warped by a planar displacement, or an interleaved image
    whose channel count is not ndim, takes the planar launch: a planar result and
    gradients, the same values; a planar grad_out for an interleaved result is taken
    as it comes (copied to the launch's layout)."""
    from kernels.warp import warp

    shape = FIELD_SHAPES[1]
    a, b = random_disp(shape, seed=1), random_disp(shape, seed=2)
    a_ = interleave_channels(a).requires_grad_()
    b_ = b.clone().requires_grad_()
    out = compose(a_, b_)
    assert out.is_contiguous()
    want = compose_reference(a, b)
    assert_close_scaled(out, want, FP32_ATOL, FP32_RTOL)
    grad_out = _grad_out(out.shape)
    got = torch.autograd.grad(out, (a_, b_), grad_out)
    a64, b64 = a.double().requires_grad_(), b.double().requires_grad_()
    ref = torch.autograd.grad(compose_reference(a64, b64), (a64, b64), grad_out.double())
    for g, r in zip(got, ref):
        assert_close_scaled(g, r, FP32_ATOL, FP32_RTOL)
    image = interleave_channels(torch.randn(shape[0], 4, *shape[2:]))  # 4 channels, 3-D: planar
    assert warp(image, b).is_contiguous()
    # an interleaved result, its gradient arriving planar
    a_, b_ = interleave_channels(a).requires_grad_(), interleave_channels(b).requires_grad_()
    out = compose(a_, b_)
    assert out.stride(1) == 1
    got = torch.autograd.grad(out, (a_, b_), grad_out.contiguous())
    for g, r in zip(got, ref):
        assert_close_scaled(g, r, FP32_ATOL, FP32_RTOL)


@pytest.mark.parametrize(("dtype", "atol", "rtol"), DTYPE_TOLERANCES[1:])  # fp32: above
@pytest.mark.parametrize("spatial", [(11, 13), (7, 8, 9)], ids=["2d", "3d"])
def test_svf_exp_dtypes(spatial, dtype, atol, rtol):
    """Half-precision velocities keep their dtype's accuracy: the squarings run in fp32
    and only the result is rounded (7 roundings in bf16 would give ~2%, see svf_exp)."""
    velocity = smooth_field(2, spatial, amplitude=4.0, seed=3).to(dtype).requires_grad_()
    out = svf_exp(velocity)
    assert out.dtype == dtype
    v32 = velocity.detach().float().requires_grad_()
    ref = svf_exp_reference(v32)
    assert_close_scaled(out, ref, atol, rtol, "forward")
    grad_out = _grad_out(out.shape).to(dtype)
    (got,) = torch.autograd.grad(out, (velocity,), grad_out)
    (want,) = torch.autograd.grad(ref, (v32,), grad_out.float())
    assert got.dtype == dtype
    assert_close_scaled(got, want, atol, rtol, "grad velocity")


def test_reference_gradcheck_float64():
    for shape in [(1, 2, 4, 5), (1, 3, 3, 4, 3)]:
        for padding in PADDINGS:
            a = random_disp(shape, scale=1.5, seed=1, dtype=torch.float64).requires_grad_()
            b = random_disp(shape, scale=1.5, seed=2, dtype=torch.float64).requires_grad_()
            assert torch.autograd.gradcheck(
                lambda x, y, p=padding: compose_reference(x, y, padding=p), (a, b)
            )
            v = random_disp(shape, scale=1.0, seed=3, dtype=torch.float64).requires_grad_()
            assert torch.autograd.gradcheck(
                lambda x, p=padding: svf_exp_reference(x, steps=3, padding=p), (v,)
            )


# ---------------------------------------------------------------------------
# Analytic cases
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["triton", "torch"])
@pytest.mark.parametrize("spatial", [(17, 19), (15, 16, 17)], ids=["2d", "3d"])
def test_constant_velocity_is_a_translation(spatial, backend):
    """exp(c) = c. With border padding a constant field reads c everywhere, so every
    voxel is exact. With zeros padding the edge voxels read zeros from outside, and each
    squaring with a fractional offset carries that at least one voxel further in: after
    5 steps with |c| < 2, only voxels 5 + 2 from the edge are still exact."""
    ndim, steps = len(spatial), 5
    c = torch.tensor([0.7, -1.3, 0.4][:ndim]).view(1, ndim, *[1] * ndim)
    velocity = c.expand(2, ndim, *spatial).contiguous()
    expected = velocity
    out = svf_exp(velocity, steps=steps, padding="border", backend=backend)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)

    out = svf_exp(velocity, steps=steps, padding="zeros", backend=backend)
    margin = steps + 2
    interior = (slice(None), slice(None), *[slice(margin, n - margin) for n in spatial])
    torch.testing.assert_close(out[interior], expected[interior], atol=1e-5, rtol=0)
    edge_error = (out - expected).abs().max()
    assert edge_error > 0.1  # the zeros padding does reach the edge voxels


def _rotation_case(n: int, theta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Velocity theta * J (p - centre) on an n x n grid, the displacement of the exact
    rotation by theta, and the distance of each voxel from the centre."""
    q = identity_grid((n, n)).unsqueeze(0) - (n - 1) / 2
    velocity = torch.stack([-theta * q[:, 1], theta * q[:, 0]], dim=1)
    cos, sin = math.cos(theta), math.sin(theta)
    rotated = torch.stack([cos * q[:, 0] - sin * q[:, 1], sin * q[:, 0] + cos * q[:, 1]], dim=1)
    return velocity, rotated - q, q.norm(dim=1)


@pytest.mark.parametrize("theta", [0.2, 1.0])
def test_rotation_field_converges_at_first_order(theta, record_property):
    """The exponential of a rotation-like field stays close to the rotation, and the gap
    is the scaling-and-squaring truncation theta^2 r / 2^(steps+1) (within 5%)."""
    n, radius = 41, 16  # samples stay >= 4 voxels inside the 41 x 41 grid
    velocity, exact, r = _rotation_case(n, theta)
    disc = r <= radius
    errors = {}
    for steps in (4, 7, 10):
        err = (svf_exp(velocity, steps=steps) - exact).norm(dim=1)
        predicted = theta**2 * r / 2 ** (steps + 1)
        errors[steps] = err[disc].max().item()
        # 5% + 1e-5 voxel for fp32 rounding at small errors.
        assert torch.all((err - predicted).abs()[disc] <= 0.05 * predicted[disc] + 1e-5)
    record_property("rotation_max_error_voxels", errors)
    print(f"\nrotation theta={theta} max error in r<={radius} (voxels): {errors}")
    # First order: 8x less error for 3 more squarings.
    assert errors[4] / errors[7] == pytest.approx(8, rel=0.05)


@pytest.mark.parametrize(
    ("spatial", "amplitude", "mean_tol", "max_tol"),
    [
        # Measured on these seeds: mean 1.7e-3 / max 3.1e-2 (2-D, 1 voxel), mean 9.9e-3 /
        # max 0.10 (2-D, 3 voxels), mean 4.1e-3 / max 6.1e-2 (3-D, 1 voxel). Limits ~2x.
        ((33, 33), 1.0, 4e-3, 6e-2),
        ((33, 33), 3.0, 2e-2, 0.2),
        ((17, 19, 21), 1.0, 1e-2, 0.12),
    ],
    ids=["2d-1vox", "2d-3vox", "3d-1vox"],
)
def test_exp_of_v_composed_with_exp_of_minus_v_is_identity(
    spatial, amplitude, mean_tol, max_tol, record_property
):
    velocity = smooth_field(1, spatial, amplitude, seed=0)
    phi, phi_inv = svf_exp(velocity), svf_exp(-velocity)
    # Voxels within 2 * amplitude + 2 of the edge sample outside the volume during the
    # squarings, where zeros padding (correctly) breaks the group property.
    margin = int(2 * amplitude) + 2
    interior = (slice(None), slice(None), *[slice(margin, n - margin) for n in spatial])
    report = {}
    for name, residual in (
        ("phi o phi_inv", compose(phi, phi_inv)),
        ("phi_inv o phi", compose(phi_inv, phi)),
    ):
        err = residual[interior].norm(dim=1)
        report[name] = (err.mean().item(), err.max().item())
        assert err.mean() < mean_tol and err.max() < max_tol, (name, report[name])
    record_property("inverse_residual_mean_max_voxels", report)
    print(f"\n{spatial} |v|max={amplitude}: residual (mean, max) voxels: {report}")


def test_exp_of_zero_is_identity_and_zero_steps_is_the_velocity():
    zero = torch.zeros(2, 3, 5, 6, 7)
    assert torch.equal(svf_exp(zero), zero)
    v = random_disp((2, 3, 5, 6, 7), scale=1.0)
    torch.testing.assert_close(svf_exp(v, steps=0), v, atol=0, rtol=0)


# ---------------------------------------------------------------------------
# Checks and fallback
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: svf_exp(torch.zeros(1, 2, 4, 5, 6)), ValueError, r"\(B, 3, D, H, W\)"),
        (lambda: svf_exp(torch.zeros(1, 2, 4)), ValueError, "displacement"),
        (lambda: svf_exp(torch.zeros(1, 2, 4, 5), steps=-1), ValueError, "steps"),
        (lambda: svf_exp(torch.zeros(1, 2, 4, 5), steps=2.0), ValueError, "steps"),
        (lambda: svf_exp(torch.zeros(1, 2, 4, 5), padding="wrap"), ValueError, "padding"),
        (lambda: svf_exp(torch.zeros(1, 2, 4, 5), backend="jax"), ValueError, "backend"),
        (lambda: compose(torch.zeros(1, 2, 4, 5), torch.zeros(1, 2, 4, 6)), ValueError, "disp"),
        (lambda: compose(torch.zeros(1, 3, 4, 5), torch.zeros(1, 2, 4, 5)), ValueError, "disp_a"),
        (lambda: compose([0.0], torch.zeros(1, 2, 4, 5)), TypeError, "tensor"),
    ],
)
def test_invalid_inputs_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_falls_back_to_reference_where_triton_cannot_run(monkeypatch):
    def _no_kernel(*args):
        raise AssertionError("the Triton path must not run")

    monkeypatch.setattr(svf_module, "triton_can_run", lambda device_type: False)
    monkeypatch.setattr(svf_module.WarpFunction, "apply", _no_kernel)
    v = random_disp((1, 2, 7, 9), scale=2.0)
    torch.testing.assert_close(svf_exp(v), svf_exp_reference(v), atol=0, rtol=0)
    torch.testing.assert_close(compose(v, v), compose_reference(v, v), atol=0, rtol=0)
