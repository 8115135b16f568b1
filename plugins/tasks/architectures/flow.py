"""Geometry of a learnt flow: Jacobians, their determinants, Lipschitz estimates."""

from __future__ import annotations

from collections.abc import Callable

import torch

Map = Callable[[torch.Tensor], torch.Tensor]


def jacobians(fn: Map, x: torch.Tensor) -> torch.Tensor:
    """``(N, d, d)`` Jacobians of a pointwise map ``(N, d) -> (N, d)``, one backward pass
    per output dimension (the maps act on each point alone, so row i of the batch
    gradient is point i's)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        y = fn(x)
        rows = []
        for i in range(y.shape[1]):
            (g,) = torch.autograd.grad(y[:, i].sum(), x, retain_graph=i + 1 < y.shape[1])
            rows.append(g)
    return torch.stack(rows, dim=1).detach()


def power_iteration_lipschitz(
    fn: Map, x: torch.Tensor, iterations: int = 30, seed: int = 0
) -> torch.Tensor:
    """Per point, the largest singular value of the Jacobian by power iteration on J^T J
    (a Jacobian-vector and a vector-Jacobian product per step, never forming J).
    Their maximum over points is a lower bound of the map's Lipschitz constant."""
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)
    v = v / v.norm(dim=1, keepdim=True)
    x = x.detach()
    sigma = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    for _ in range(iterations):
        _, jv = torch.autograd.functional.jvp(fn, x, v)
        _, jtjv = torch.autograd.functional.vjp(fn, x, jv)
        sigma = jv.norm(dim=1)
        v = jtjv / jtjv.norm(dim=1, keepdim=True).clamp_min(1e-30)
    return sigma.detach()
