"""The plain and residual networks: mlp, resnet, resnet_shared, resnet_symmetric, lipschitz.

A residual block is one explicit Euler step x_{k+1} = x_k + h f_k(x_k) (Haber and
Ruthotto 2017). Integrating backwards, x_k ~ x_{k+1} - h f_k(x_{k+1}), is these
networks' approximate inverse: its error is O(h^2 Lip(f)^2) per step, so it inverts
only where the learnt flow is gentle; the symmetric ResNet trains it to (the
lecture's C and D). ``inverse="fixed_point"`` instead solves each step's own equation
x_k = x_{k+1} - h f_k(x_k) by fixed-point iteration, the step's exact inverse wherever
h Lip(f_k) < 1 (Banach; the i-ResNet's inverse with g = h f_k).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from bench import Param
from plugins.architectures.base import FlowArchitecture
from plugins.architectures.common import Block, FlowNet, Sampler, common_params


def resolve_step(step: float | None, depth: int) -> float:
    return 1.0 / depth if step is None else float(step)


class PlainNet(FlowNet):
    """x_{k+1} = f_k(x_k): no skip connection."""

    def __init__(self, width: int, depth: int, hidden: int, activation: str) -> None:
        super().__init__(width, depth)
        self.blocks = nn.ModuleList(Block(width, hidden, width, activation) for _ in range(depth))

    def step(self, k: int, x: torch.Tensor) -> torch.Tensor:
        return self.blocks[k](x)

    @torch.no_grad()
    def lipschitz_bound(self) -> float:
        return float(torch.stack([b.lipschitz_bound() for b in self.blocks]).prod())


class ResidualNet(FlowNet):
    """x_{k+1} = x_k + h f_k(x_k), with ``depth`` blocks or one shared block."""

    invertible = "approximate"

    def __init__(
        self,
        width: int,
        depth: int,
        hidden: int,
        activation: str,
        step: float,
        shared: bool = False,
        bounds: tuple[float, float] | None = None,
        inverse: str = "euler",
        iterations: int = 200,
        tol: float = 1e-7,
    ) -> None:
        super().__init__(width, depth)
        if inverse not in ("euler", "fixed_point"):
            raise ValueError(f"inverse must be 'euler' or 'fixed_point', not {inverse!r}")
        self.h = step
        self.shared = shared
        self.inverse_method = inverse
        self.iterations = iterations
        self.tol = tol
        count = 1 if shared else depth
        self.blocks = nn.ModuleList(
            Block(width, hidden, width, activation, bounds) for _ in range(count)
        )

    def block(self, k: int) -> nn.Module:
        return self.blocks[0 if self.shared else k]

    def step(self, k: int, x: torch.Tensor) -> torch.Tensor:
        return x + self.h * self.block(k)(x)

    def euler_inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Integrate backwards: x_k = x_{k+1} - h f_k(x_{k+1}), k = depth-1 ... 0."""
        for k in reversed(range(self.depth)):
            y = y - self.h * self.block(k)(y)
        return y

    def step_inverse(self, k: int, y: torch.Tensor) -> torch.Tensor:
        """Step k's exact inverse: the fixed point of x = y - h f_k(x), iterated from the
        backward-Euler guess y - h f_k(y) until max |x_n - x_{n-1}| < tol (at most
        ``iterations``). A contraction of rate h Lip(f_k) where that is below 1."""
        f = self.block(k)
        x = y - self.h * f(y)
        for _ in range(self.iterations):
            x_next = y - self.h * f(x)
            done = bool((x_next - x).abs().max() < self.tol)
            x = x_next
            if done:
                break
        return x

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        if self.inverse_method == "euler":
            return self.euler_inverse(y)
        for k in reversed(range(self.depth)):
            y = self.step_inverse(k, y)
        return y

    @torch.no_grad()
    def lipschitz_bound(self) -> float:
        bounds = [1.0 + self.h * self.block(k).lipschitz_bound() for k in range(self.depth)]
        return float(torch.stack(bounds).prod())


class SymmetricResNet(ResidualNet):
    """A shared-weight ResNet trained so that integrating backwards returns the input.

    The invertibility loss is always the backward-Euler round trip (the lecture's
    definition); ``inverse`` only chooses how the trained network is inverted, so both
    choices train the same network.
    """

    def __init__(self, *args: Any, variant: str, weight: float, **kwargs: Any) -> None:
        super().__init__(*args, shared=True, **kwargs)
        self.variant = variant
        self.weight = weight

    def penalty(self, x: torch.Tensor, sample_domain: Sampler | None = None) -> torch.Tensor:
        if self.variant == "domain":
            if sample_domain is None:
                raise ValueError(
                    "resnet_symmetric variant 'domain' needs the task's domain sampler"
                )
            x = sample_domain(x.shape[0])
        return self.weight * (self.euler_inverse(self(x)) - x).pow(2).sum(dim=1).mean()


class LipschitzResNet(ResidualNet):
    """A ResNet whose blocks are held to Lip(f_k) <= bound, by constraint or penalty."""

    def __init__(self, *args: Any, mode: str, bound: float, weight: float, **kwargs: Any) -> None:
        root = bound**0.5  # each of the block's two layers gets sqrt(bound)
        constrained = (root, root) if mode == "spectral_constraint" else None
        super().__init__(*args, bounds=constrained, **kwargs)
        self.mode = mode
        self.bound = bound
        self.weight = weight

    def penalty(self, x: torch.Tensor, sample_domain: Sampler | None = None) -> torch.Tensor:
        if self.mode == "spectral_constraint":
            return x.new_zeros(())
        if self.mode == "spectral_penalty":
            excess = [torch.relu(b.lipschitz_bound() - self.bound) for b in self.blocks]
            return self.weight * torch.stack(excess).pow(2).sum()
        # gradient penalty: ||J_f(x_k)^T u|| for a random unit u at every block's input
        # (a one-direction estimate of the local Lipschitz constant, Gulrajani 2017 style)
        states = self.trajectory(x)
        total = x.new_zeros(())
        for k in range(self.depth):
            xk = states[k].detach().requires_grad_(True)
            fk = self.block(k)(xk)
            u = torch.nn.functional.normalize(torch.randn_like(fk), dim=1)
            (g,) = torch.autograd.grad(fk, xk, u, create_graph=True)
            total = total + torch.relu(g.norm(dim=1) - self.bound).pow(2).mean()
        return self.weight * total


class MLP(FlowArchitecture):
    """Plain MLP x_{k+1} = f_k(x_k): the residual nets' blocks without the skip (baseline)."""

    name = "mlp"
    params = {k: v for k, v in common_params().items() if k != "step"}
    invertible = None

    def build(self, **kwargs: Any) -> PlainNet:
        v = self.values
        return PlainNet(v["width"], v["depth"], v["hidden"], v["activation"])


class ResNet(FlowArchitecture):
    """ResNet x + h f_k(x), untied blocks: explicit Euler of a time-varying flow (He 2016)."""

    name = "resnet"
    params = common_params()
    invertible = "approximate"

    def build(self, **kwargs: Any) -> ResidualNet:
        v = self.values
        h = resolve_step(v["step"], v["depth"])
        return ResidualNet(v["width"], v["depth"], v["hidden"], v["activation"], h)


class ResNetShared(FlowArchitecture):
    """ResNet with one block applied depth times: a stationary flow (Rousseau 2020)."""

    name = "resnet_shared"
    params = common_params()
    invertible = "approximate"

    def build(self, **kwargs: Any) -> ResidualNet:
        v = self.values
        h = resolve_step(v["step"], v["depth"])
        return ResidualNet(v["width"], v["depth"], v["hidden"], v["activation"], h, shared=True)


class ResNetSymmetric(FlowArchitecture):
    """Shared-weight ResNet plus an invertibility loss on data or domain points (C, D)."""

    name = "resnet_symmetric"
    params = {
        **common_params(),
        "variant": Param(
            "data",
            choices=("data", "domain"),
            doc="invertibility loss on the training points (data) or over the domain",
        ),
        # 1e4: on moons (depth 8, 1500 epochs) max |f^-1(f(x)) - x| over the domain
        # fell from 0.12 (weight 1) to 1e-3 (weight 1e4) at the same accuracy
        "weight": Param(1e4, low=0.0, doc="weight of the invertibility loss"),
        # issue 21: backward Euler's round trip is only first order; the step's own
        # equation solved by fixed point inverts the same trained network exactly
        # (scripts/symmetric_inverse.py, results/published/architectures-toy-inverse-cpu)
        "inverse": Param(
            "euler",
            choices=("euler", "fixed_point"),
            doc="how the trained net is inverted: backward Euler x - h f(x) (the "
            "invertibility loss's own) or each step's fixed point x = y - h f(x)",
        ),
        "inverse_iterations": Param(200, low=1, doc="most fixed-point iterations per step"),
        "inverse_tol": Param(1e-7, low=0.0, doc="stop iterating once max |x_n - x_n-1| < tol"),
    }
    invertible = "approximate"

    @classmethod
    def needs_domain(cls, params: dict[str, Any]) -> bool:
        return params.get("architecture.variant") == "domain"

    def build(self, **kwargs: Any) -> SymmetricResNet:
        v = self.values
        h = resolve_step(v["step"], v["depth"])
        return SymmetricResNet(
            v["width"],
            v["depth"],
            v["hidden"],
            v["activation"],
            h,
            variant=v["variant"],
            weight=v["weight"],
            inverse=v["inverse"],
            iterations=v["inverse_iterations"],
            tol=v["inverse_tol"],
        )


class Lipschitz(FlowArchitecture):
    """ResNet with Lip(f_k) <= bound per block: spectral constraint or penalty, or a
    gradient penalty (Gouk 2018; Oberman and Calder 2018)."""

    name = "lipschitz"
    params = {
        **common_params(),
        "mode": Param(
            "spectral_constraint",
            choices=("spectral_constraint", "spectral_penalty", "gradient_penalty"),
            doc="how Lip(f_k) <= bound is imposed",
        ),
        "bound": Param(1.0, low=0.0, low_open=True, doc="target Lipschitz constant per block"),
        "weight": Param(1.0, low=0.0, doc="penalty weight (penalty modes)"),
    }
    invertible = "approximate"

    def build(self, **kwargs: Any) -> LipschitzResNet:
        v = self.values
        h = resolve_step(v["step"], v["depth"])
        return LipschitzResNet(
            v["width"],
            v["depth"],
            v["hidden"],
            v["activation"],
            h,
            mode=v["mode"],
            bound=v["bound"],
            weight=v["weight"],
        )
