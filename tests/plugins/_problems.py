"""Small test problems with exact solutions, shared by the solver tests."""

from __future__ import annotations

import math

import torch

from bench import Registry, get_plugin_manager

F64 = torch.float64


def registry() -> Registry:
    return Registry(get_plugin_manager())


def rotation(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Harmonic oscillator x'' = -x as (x, v); exact: rotation of y0 by t."""
    return torch.stack([y[..., 1], -y[..., 0]], dim=-1)


def rotation_exact(t: torch.Tensor, y0: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(t)[:, None], torch.sin(t)[:, None]
    x0, v0 = y0[0], y0[1]
    return torch.cat([x0 * c + v0 * s, -x0 * s + v0 * c], dim=-1)


def logistic(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """y' = y (1 - y) + 0.5 sin(t) y: nonlinear and time-dependent (no method is exact by luck)."""
    return y * (1 - y) + 0.5 * torch.sin(t) * y


def logistic_exact(t1: float, y0: float) -> float:
    # Bernoulli equation: u = 1/y solves u' = -(1 + 0.5 sin t) u + 1, so
    # u(t) = e^{-P(t)} (u0 + int_0^t e^{P(s)} ds), P(t) = t - 0.5 cos t + 0.5.
    # The integral is done by composite Simpson with 20000 panels (error ~1e-16).
    def P(s: float) -> float:
        return s - 0.5 * math.cos(s) + 0.5

    n = 20000
    h = t1 / n
    total = math.exp(P(0.0)) + math.exp(P(t1))
    for i in range(1, n):
        total += (4 if i % 2 else 2) * math.exp(P(i * h))
    integral = total * h / 3
    u = math.exp(-P(t1)) * (1 / y0 + integral)
    return 1 / u


class TanhField(torch.nn.Module):
    """dy/dt = tanh(W y + b) + theta sin(t): a small module with parameters, for gradients."""

    def __init__(self, dim: int = 2, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.W = torch.nn.Parameter(0.5 * torch.randn(dim, dim, generator=gen, dtype=F64))
        self.b = torch.nn.Parameter(0.1 * torch.randn(dim, generator=gen, dtype=F64))
        self.theta = torch.nn.Parameter(torch.tensor(0.3, dtype=F64))

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.tanh(y @ self.W.T + self.b) + self.theta * torch.sin(t)
