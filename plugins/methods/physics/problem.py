"""The problem a physics method solves and the solution it returns (see the package doc)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch


@dataclass(frozen=True)
class PointData:
    """Observations ``u`` at points ``(x, t)``: three 1-D float64 tensors of one length."""

    x: torch.Tensor
    t: torch.Tensor
    u: torch.Tensor

    def __len__(self) -> int:
        return int(self.x.numel())

    def subset(self, index: torch.Tensor) -> PointData:
        return PointData(self.x[index], self.t[index], self.u[index])

    def pick(self, n: int, rng: np.random.Generator) -> PointData:
        """``n`` of these points drawn without replacement (all if there are fewer), in
        their order."""
        index = rng.choice(len(self), size=min(n, len(self)), replace=False)
        return self.subset(torch.as_tensor(np.sort(index)))

    def draw(self, n: int, seed: int) -> PointData:
        """``n`` of these points as ``seed`` draws them: the points pinn and supervised
        fit at that seed, so that a method drawing this way is paired on seed with them
        on the same data."""
        return self.pick(n, np.random.default_rng(seed))


@dataclass(frozen=True)
class GridSetup:
    """The periodic finite-volume setup a differentiable solver runs on.

    ``n`` cells on ``[x_lo, x_hi)``, ``steps`` steps of ``dt``; ``observed`` maps a step
    index to the state (``(n,)`` float64) known there. The unknown is the initial state.
    """

    n: int
    dt: float
    steps: int
    observed: dict[int, torch.Tensor]
    x_lo: float = -1.0
    x_hi: float = 1.0

    @property
    def dx(self) -> float:
        return (self.x_hi - self.x_lo) / self.n


@dataclass
class PhysicsProblem:
    """Burgers' equation u_t + u u_x = nu u_xx on a box, and what is known of u.

    Attributes:
        nu: the viscosity.
        x_range, t_range: the domain (the PINN draws collocation points in it and scales
            its inputs to [-1, 1] with it, as Raissi's code does).
        constraints: the point data a PINN is given (Raissi: initial and boundary
            points; the book's reconstruction: the state at t = 0.5 and u = 0 at x = +-1).
        field: samples of the solution anywhere in the domain (what a supervised
            model learns from), given only to a method whose ``reads_field()`` says
            so; None where the task gives none or the method does not read them.
        grid: the solver setup for grid methods (``diffphys``); None where there is none.
        monitor: the task's error of a solution (e.g. relative L2 on its grid), which a
            method may call between training steps for a convergence curve; the
            method leaves the time it takes out of its training time.
    """

    nu: float
    x_range: tuple[float, float]
    t_range: tuple[float, float]
    constraints: PointData
    field: PointData | None = None
    grid: GridSetup | None = None
    monitor: Callable[[Solution], float] | None = None


class Solution(Protocol):
    """What ``solve`` returns: u at any points of the domain."""

    def predict(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """u at the points ``(x, t)`` (1-D tensors of one length), as float64."""
        ...


class NetworkSolution:
    """A trained network u(x, t); inputs scaled to [-1, 1] by the problem's box."""

    def __init__(self, net: torch.nn.Module, lb: torch.Tensor, ub: torch.Tensor) -> None:
        self.net = net
        self.lb = lb
        self.ub = ub

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Differentiable u at float points (the dtype and device of the network)."""
        xt = torch.stack([x, t], dim=-1)
        return self.net(2.0 * (xt - self.lb) / (self.ub - self.lb) - 1.0).squeeze(-1)

    def predict(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        p = next(self.net.parameters())
        with torch.no_grad():
            out = self(x.to(p), t.to(p))
        return out.double().cpu()


class GridSolution:
    """A trajectory ``(steps + 1, n)`` on a periodic grid, read at points by linear
    interpolation in x (periodic) and in t (clamped to the simulated interval)."""

    def __init__(self, states: torch.Tensor, setup: GridSetup) -> None:
        self.states = states.detach().double().cpu()
        self.setup = setup

    def predict(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        s = self.setup
        n = s.n
        pos = ((x.double() - s.x_lo) / s.dx - 0.5).remainder(n)
        i0 = torch.floor(pos).long()
        wx = pos - i0
        i1 = (i0 + 1).remainder(n)
        k = (t.double() / s.dt).clamp(0, s.steps)
        k0 = torch.floor(k).long().clamp(max=s.steps - 1) if s.steps > 0 else k.long()
        wt = k - k0
        k1 = (k0 + 1).clamp(max=s.steps)
        st = self.states

        def at(kk: torch.Tensor) -> torch.Tensor:
            return st[kk, i0] * (1.0 - wx) + st[kk, i1] * wx

        return at(k0) * (1.0 - wt) + at(k1) * wt


def predict_checked(solution: Any, x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``solution.predict`` at the points ``(x, t)`` as a float64 array, checked against
    the contract (``plugins.methods.physics.problem.Solution``: 1-D torch tensors in, a
    1-D tensor of one value a point out): a ValueError saying what came back, not an
    error inside numpy later."""
    what = f"the method's solution ({type(solution).__name__})"
    if not callable(getattr(solution, "predict", None)):  # the contract's own check
        raise ValueError(
            f"{what} has no predict(x, t): solve() returns a Solution whose predict takes "
            "1-D torch tensors x and t and returns u there (a 1-D float64 tensor)"
        )
    out = solution.predict(torch.as_tensor(x), torch.as_tensor(t))
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (len(x),):
        shape = tuple(out.shape) if hasattr(out, "shape") else None
        raise ValueError(
            f"{what}.predict(x, t) returned {type(out).__name__} of shape {shape} for "
            f"{len(x)} points: it returns a 1-D torch tensor of one value a point"
        )
    return out.detach().double().cpu().numpy()
