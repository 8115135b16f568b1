"""The differentiable 1-D periodic Burgers solver of the differentiable-physics book.

One step is the lecture's PhiFlow loop, operator for operator::

    v1 = diffuse.explicit(v0, NU, DT)          # v + NU * DT * laplace(v)
    v2 = advect.semi_lagrangian(v1, v1, DT)    # v1 sampled at x - v1(x) * DT

on a ``CenteredGrid`` with periodic boundaries: cell centres ``-1 + DX/2 + i DX``, the
Laplacian the 3-point stencil, the back-traced point sampled by linear interpolation.
Everything is torch, so gradients reach the initial state (or any control) through the
unrolled steps. States have shape ``(..., N)``; the last axis is x.
"""

from __future__ import annotations

import torch

#: explicit diffusion (forward Euler on the 3-point Laplacian) is stable for
#: nu * dt / dx^2 <= 1/2 in 1-D: the stencil's most negative eigenvalue is -4 / dx^2.
DIFFUSION_BOUND_1D = 0.5


def cell_centres(n: int, lo: float = -1.0, hi: float = 1.0, dtype=torch.float64) -> torch.Tensor:
    """The ``n`` cell centres of a periodic grid on ``[lo, hi)``: ``lo + dx (i + 1/2)``."""
    dx = (hi - lo) / n
    return lo + dx * (torch.arange(n, dtype=dtype) + 0.5)


def diffusion_number(nu: float, dt: float, dx: float, substeps: int = 1) -> float:
    """``nu * (dt / substeps) / dx^2``: explicit diffusion is stable at most 1/2 (1-D)."""
    return nu * (dt / substeps) / dx**2


def unstable_diffusion(nu: float, dt: float, dx: float, substeps: int = 1) -> str | None:
    """Why explicit diffusion with these steps blows up, or None when it is stable."""
    r = diffusion_number(nu, dt, dx, substeps)
    if r <= DIFFUSION_BOUND_1D:
        return None
    dt_max = DIFFUSION_BOUND_1D * dx**2 / nu * substeps
    return (
        f"explicit diffusion is unstable: nu*dt/dx^2 = {r:.4g} > {DIFFUSION_BOUND_1D} "
        f"(nu={nu:.4g}, dt={dt:.4g}, dx={dx:.4g}); take dt <= {dt_max:.4g}"
    )


def laplace_periodic(u: torch.Tensor, dx: float) -> torch.Tensor:
    """The 3-point Laplacian with periodic wrap along the last axis."""
    return (torch.roll(u, -1, dims=-1) - 2.0 * u + torch.roll(u, 1, dims=-1)) / dx**2


def diffuse_explicit(
    u: torch.Tensor, nu: float, dt: float, dx: float, substeps: int = 1
) -> torch.Tensor:
    """PhiFlow's ``diffuse.explicit``: ``substeps`` forward-Euler steps of u_t = nu u_xx."""
    for _ in range(substeps):
        u = u + (nu * dt / substeps) * laplace_periodic(u, dx)
    return u


def sample_periodic(f: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of ``f`` (``(..., N)``) at fractional cell indices ``pos``
    (``(..., M)``, leading axes broadcast with ``f``'s).

    Periodic: index ``N`` is index 0. Differentiable in ``f`` and in ``pos`` (through
    the interpolation weight; the floor itself has no gradient, as in PhiFlow).
    """
    n = f.shape[-1]
    batch = torch.broadcast_shapes(f.shape[:-1], pos.shape[:-1])
    f = f.expand(*batch, n)
    pos = pos.expand(*batch, pos.shape[-1])
    i0 = torch.floor(pos)
    w = pos - i0
    i0 = i0.long().remainder(n)
    i1 = (i0 + 1).remainder(n)
    f0 = torch.gather(f, -1, i0)
    f1 = torch.gather(f, -1, i1)
    return f0 * (1.0 - w) + f1 * w


def advect_semi_lagrangian(f: torch.Tensor, v: torch.Tensor, dt: float, dx: float) -> torch.Tensor:
    """PhiFlow's ``advect.semi_lagrangian(f, v, dt)`` on a centred periodic grid:
    ``f`` sampled at the back-traced point ``x - v(x) dt``."""
    n = f.shape[-1]
    index = torch.arange(n, dtype=f.dtype, device=f.device)
    return sample_periodic(f, index - v * (dt / dx))


def burgers_step(
    u: torch.Tensor, nu: float, dt: float, dx: float, substeps: int = 1
) -> torch.Tensor:
    """One step of the book's loop: explicit diffusion, then self-advection."""
    u1 = diffuse_explicit(u, nu, dt, dx, substeps)
    return advect_semi_lagrangian(u1, u1, dt, dx)


def simulate(
    u0: torch.Tensor, nu: float, dt: float, dx: float, steps: int, substeps: int = 1
) -> torch.Tensor:
    """The trajectory ``(steps + 1, ..., N)`` from ``u0``; row 0 is ``u0``."""
    states = [u0]
    for _ in range(steps):
        states.append(burgers_step(states[-1], nu, dt, dx, substeps))
    return torch.stack(states)
