"""Reference ODE problems: each a torch module (its coefficients are parameters, so
gradients have something to flow to) and a numpy right-hand side for scipy."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

SPIRAL_A = ((-0.1, 2.0), (-2.0, -0.1))  # torchdiffeq examples/ode_demo.py's true_A


class Harmonic(nn.Module):
    """x'' = -omega^2 x as the state (x, v)."""

    def __init__(self, omega: float) -> None:
        super().__init__()
        self.omega = nn.Parameter(torch.tensor(float(omega)))

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.stack([y[..., 1], -(self.omega**2) * y[..., 0]], dim=-1)


def harmonic_exact(t: np.ndarray, omega: float, y0: np.ndarray) -> np.ndarray:
    """(x, v)(t) = rotation of (x0, v0 / omega) by omega t."""
    x0, v0 = float(y0[0]), float(y0[1])
    c, s = np.cos(omega * t), np.sin(omega * t)
    return np.stack([x0 * c + v0 / omega * s, -x0 * omega * s + v0 * c], axis=-1)


class Spiral(nn.Module):
    """dy/dt = (y**3) @ A: torchdiffeq's ode_demo cubic spiral."""

    def __init__(self) -> None:
        super().__init__()
        self.A = nn.Parameter(torch.tensor(SPIRAL_A))

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (y**3) @ self.A


def spiral_rhs(t: float, y: np.ndarray) -> np.ndarray:
    return (y**3) @ np.asarray(SPIRAL_A)


class LotkaVolterra(nn.Module):
    """Predator-prey: x' = alpha x - beta x y, y' = delta x y - gamma y."""

    def __init__(self, alpha: float, beta: float, gamma: float, delta: float) -> None:
        super().__init__()
        self.coef = nn.Parameter(torch.tensor([alpha, beta, gamma, delta]))

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        alpha, beta, gamma, delta = self.coef
        prey, pred = y[..., 0], y[..., 1]
        return torch.stack(
            [alpha * prey - beta * prey * pred, delta * prey * pred - gamma * pred], dim=-1
        )


def lotka_volterra_rhs(coef: tuple[float, float, float, float]):
    alpha, beta, gamma, delta = coef

    def rhs(t: float, y: np.ndarray) -> np.ndarray:
        return np.array([alpha * y[0] - beta * y[0] * y[1], delta * y[0] * y[1] - gamma * y[1]])

    return rhs


class VanDerPol(nn.Module):
    """x'' = mu (1 - x^2) x' - x as the state (x, v); stiff for large mu."""

    def __init__(self, mu: float) -> None:
        super().__init__()
        self.mu = nn.Parameter(torch.tensor(float(mu)))

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, v = y[..., 0], y[..., 1]
        return torch.stack([v, self.mu * (1 - x**2) * v - x], dim=-1)


def van_der_pol_rhs(mu: float):
    def rhs(t: float, y: np.ndarray) -> np.ndarray:
        return np.array([y[1], mu * (1 - y[0] ** 2) * y[1] - y[0]])

    return rhs
