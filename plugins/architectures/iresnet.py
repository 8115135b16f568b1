"""i-ResNet (Behrmann 2019): residual blocks x + g(x) with Lip(g) <= c < 1.

g = W2 act(W1 x) with ||W1|| <= 1 and ||W2|| <= c (exact spectral norms, 1-Lipschitz
activations), so each block is invertible and its inverse is the fixed point of
x = y - g(x), reached from x0 = y at the geometric rate c (Banach). The lecture's
truncated series x = y + sum_{n=1}^{N} (-1)^n g^n(y) (g^n: g composed n times) is an
option: it is the Neumann series of (I + g)^-1, exact for linear g, and for a
nonlinear g an approximation whose error does not vanish as N grows.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from bench import Param
from plugins.architectures.base import FlowArchitecture
from plugins.architectures.common import Block, FlowNet, common_params


class IResNetModule(FlowNet):
    invertible = "iterative"

    def __init__(
        self,
        width: int,
        depth: int,
        hidden: int,
        activation: str,
        coeff: float,
        method: str = "fixed_point",
        iterations: int = 200,
        tol: float = 1e-7,
        series_terms: int = 10,
    ) -> None:
        super().__init__(width, depth)
        self.coeff = coeff
        self.method = method
        self.iterations = iterations
        self.tol = tol
        self.series_terms = series_terms
        self.blocks = nn.ModuleList(
            Block(width, hidden, width, activation, bounds=(1.0, coeff)) for _ in range(depth)
        )

    def step(self, k: int, x: torch.Tensor) -> torch.Tensor:
        return x + self.blocks[k](x)

    def block_inverse(self, k: int, y: torch.Tensor) -> torch.Tensor:
        g = self.blocks[k]
        if self.method == "series":
            total, term = y, y
            for n in range(1, self.series_terms + 1):
                term = g(term)
                total = total + (-1) ** n * term
            return total
        x = y
        for _ in range(self.iterations):
            x_next = y - g(x)
            # |x_n - x*| <= c/(1-c) |x_n - x_{n-1}|: stop once the change is below tol
            done = bool((x_next - x).abs().max() < self.tol)
            x = x_next
            if done:
                break
        return x

    def fixed_point_errors(self, k: int, y: torch.Tensor, iterations: int) -> list[float]:
        """max over points of ||x_n - x*||_2 for n = 0 .. iterations of block k's fixed
        point, in float64 (x* by iterating on to 1e-15). Banach: each ratio is <= c."""
        g64 = copy.deepcopy(self.blocks[k]).double()
        with torch.no_grad():
            y = y.detach().double()
            star = y
            for _ in range(20000):
                nxt = y - g64(star)
                if (nxt - star).abs().max() < 1e-15:
                    star = nxt
                    break
                star = nxt
            x, errors = y, []
            for _ in range(iterations + 1):
                errors.append(float((x - star).norm(dim=-1).max()))
                x = y - g64(x)
        return errors

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        for k in reversed(range(self.depth)):
            y = self.block_inverse(k, y)
        return y

    @torch.no_grad()
    def lipschitz_bound(self) -> float:
        bounds = [1.0 + b.lipschitz_bound() for b in self.blocks]
        return float(torch.stack(bounds).prod())


def _below_one(coeff: float) -> str | None:
    if coeff >= 1.0:
        return (
            f"the i-ResNet coefficient must be < 1 (Lip(g) <= c < 1 makes each block "
            f"invertible), got {coeff}"
        )
    return None


class IResNet(FlowArchitecture):
    """i-ResNet: spectral norm c < 1 per block, inverse by fixed point or series (Behrmann 2019)."""

    name = "iresnet"
    params = {
        **{k: v for k, v in common_params().items() if k != "step"},
        "coeff": Param(
            0.9, low=0.0, low_open=True, check=_below_one, doc="Lipschitz bound c < 1 of g"
        ),
        "inverse": Param(
            "fixed_point",
            choices=("fixed_point", "series"),
            doc="fixed-point iteration, or the lecture's truncated series",
        ),
        "inverse_iterations": Param(200, low=1, doc="most fixed-point iterations per block"),
        "inverse_tol": Param(1e-7, low=0.0, doc="stop iterating once max |x_n - x_n-1| < tol"),
        "series_terms": Param(10, low=1, doc="terms of the truncated series"),
    }
    invertible = "iterative"

    def build(self, **kwargs: Any) -> IResNetModule:
        v = self.values
        return IResNetModule(
            v["width"],
            v["depth"],
            v["hidden"],
            v["activation"],
            v["coeff"],
            method=v["inverse"],
            iterations=v["inverse_iterations"],
            tol=v["inverse_tol"],
            series_terms=v["series_terms"],
        )
