"""The periodic solver's steps against closed forms, PhiFlow, and its fine reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from plugins.methods.physics.solver import (
    advect_semi_lagrangian,
    burgers_step,
    cell_centres,
    diffuse_explicit,
    diffusion_number,
    sample_periodic,
    simulate,
    unstable_diffusion,
)
from plugins.tasks.physics.reference import (
    book_nu,
    coarse_trajectory,
    fine_reference,
    initial_state,
)

N, DX = 32, 2.0 / 32


def test_explicit_diffusion_damps_a_fourier_mode_by_its_symbol():
    # Forward Euler on the 3-point Laplacian multiplies mode k by
    # 1 - 4 r sin^2(k dx / 2), r = nu dt / dx^2 (von Neumann); exact up to rounding.
    x = cell_centres(N)
    nu, dt = 1e-3, 0.05
    for k in (1, 3, 8):
        mode = torch.cos(k * math.pi * x)
        r = diffusion_number(nu, dt, DX)
        factor = 1.0 - 4.0 * r * math.sin(k * math.pi * DX / 2) ** 2
        out = diffuse_explicit(mode, nu, dt, DX)
        torch.testing.assert_close(out, factor * mode, rtol=0, atol=1e-14)
    # substeps: the same factor applied once per substep with dt / substeps
    mode = torch.cos(8 * math.pi * x)
    r = diffusion_number(nu, dt, DX, substeps=4)
    factor = (1.0 - 4.0 * r * math.sin(8 * math.pi * DX / 2) ** 2) ** 4
    torch.testing.assert_close(
        diffuse_explicit(mode, nu, dt, DX, 4), factor * mode, atol=1e-14, rtol=0
    )


def test_stability_bound_is_the_one_that_holds():
    # r just under 1/2 decays the highest mode, just over 1/2 makes it grow: the bound
    # unstable_diffusion reports is the real one.
    x = torch.arange(N, dtype=torch.float64)
    checker = torch.cos(math.pi * x)  # the highest mode, (-1)^i
    for r, grows in ((0.49, False), (0.51, True)):
        nu = r * DX**2 / 0.1
        u = checker
        for _ in range(200):
            u = diffuse_explicit(u, nu, 0.1, DX)
        assert bool(u.abs().max() > 1.0) is grows
        assert (unstable_diffusion(nu, 0.1, DX) is not None) is grows
    message = unstable_diffusion(1.0, 0.1, DX)
    assert "> 0.5" in message and "dt <=" in message


def test_semi_lagrangian_advection_is_a_periodic_shift():
    rng = np.random.default_rng(0)
    f = torch.as_tensor(rng.standard_normal(N))
    # A constant velocity of 3 cells per step is np.roll by 3, exactly.
    v = torch.full((N,), 3 * DX / 0.1, dtype=torch.float64)
    torch.testing.assert_close(
        advect_semi_lagrangian(f, v, 0.1, DX), torch.roll(f, 3), atol=1e-14, rtol=0
    )
    # A fractional back-trace samples by linear interpolation: against np.interp on the
    # periodically extended samples.
    v = torch.as_tensor(rng.uniform(-1, 1, N))
    dt = 0.05
    back = np.arange(N) - v.numpy() * dt / DX
    ext = np.concatenate([f.numpy(), f.numpy(), f.numpy()])
    expected = np.interp(back + N, np.arange(3 * N), ext)
    np.testing.assert_allclose(advect_semi_lagrangian(f, v, dt, DX).numpy(), expected, atol=1e-14)


def test_sample_periodic_broadcasts_and_wraps():
    f = torch.arange(4.0, dtype=torch.float64).expand(2, 4)
    pos = torch.tensor([3.5, -0.25, 1.0], dtype=torch.float64)
    out = sample_periodic(f, pos)
    torch.testing.assert_close(out, torch.tensor([[1.5, 0.75, 1.0]] * 2, dtype=torch.float64))


def test_step_gradients_match_finite_differences():
    u = initial_state(16).requires_grad_(True)
    # gradcheck: float64 central differences, its default tolerances (atol 1e-5); kinks
    # of the floor in the interpolation are not hit by these smooth velocities.
    assert torch.autograd.gradcheck(lambda a: burgers_step(a, 0.01, 0.05, 2.0 / 16), (u,))


def test_matches_phiflow_numpy_backend():
    phi = pytest.importorskip("phi.flow")
    from phiml.math import set_global_precision

    set_global_precision(64)
    try:
        n, steps = 128, 32
        nu, dt, dx = book_nu(n), 1.0 / steps, 2.0 / n
        x = cell_centres(n).numpy()
        v = phi.CenteredGrid(
            phi.tensor(-np.sin(np.pi * x), phi.spatial("x")),
            phi.extrapolation.PERIODIC,
            x=n,
            bounds=phi.Box(x=(-1, 1)),
        )
        ours = coarse_trajectory(n, steps, 1.0, nu).numpy()
        for k in range(steps):
            v1 = phi.diffuse.explicit(v, nu, dt)
            v = phi.advect.semi_lagrangian(v1, v1, dt)
            # float64 both: measured 3e-15 after 32 steps; 1e-12 leaves room for order
            # of operations, far below any real difference in the scheme.
            np.testing.assert_allclose(v.values.numpy("x"), ours[k + 1], atol=1e-12)
        # one step with a strong, random diffusion and velocity as well
        rng = np.random.default_rng(1)
        f, w = rng.standard_normal(n), 0.3 * rng.standard_normal(n)
        grid = lambda a: phi.CenteredGrid(  # noqa: E731
            phi.tensor(a, phi.spatial("x")),
            phi.extrapolation.PERIODIC,
            x=n,
            bounds=phi.Box(x=(-1, 1)),
        )
        np.testing.assert_allclose(
            phi.diffuse.explicit(grid(f), 1e-5, 0.1).values.numpy("x"),
            diffuse_explicit(torch.as_tensor(f), 1e-5, 0.1, dx).numpy(),
            atol=1e-12,
        )
        np.testing.assert_allclose(
            phi.advect.semi_lagrangian(grid(f), grid(w), 0.1).values.numpy("x"),
            advect_semi_lagrangian(torch.as_tensor(f), torch.as_tensor(w), 0.1, dx).numpy(),
            atol=1e-12,
        )
    finally:
        set_global_precision(32)


def test_fine_reference_converges_at_first_order():
    n, steps = 32, 8
    nu = book_nu(128)
    assert torch.equal(fine_reference(n, steps, 1.0, nu, 1), coarse_trajectory(n, steps, 1.0, nu))
    refs = {r: fine_reference(n, steps, 1.0, nu, r) for r in (2, 4, 8, 16)}
    gaps = [float((refs[a] - refs[2 * a]).abs().mean()) for a in (2, 4, 8)]
    # dx and dt shrink together, the error like 1/refine: successive gaps halve.
    # Measured ratios ~2.0 at the book's size; 1.6..2.6 allows for the shock's kinks.
    for a, b in zip(gaps, gaps[1:]):
        assert 1.6 < a / b < 2.6, gaps
    assert simulate(initial_state(n), nu, 0.1, 2.0 / n, 3).shape == (4, n)
