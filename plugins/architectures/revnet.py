"""RevNet (Gomez 2017): additive coupling, exact inverse, backward by recomputation.

Each block splits the state in halves and computes

    y1 = x1 + h F(x2),    y2 = x2 + h G(y1)
    x2 = y2 - h G(y1),    x1 = y1 - h F(x2)      (exact inverse)

With ``memory_saving`` (the default) the whole stack runs as one autograd Function
that keeps only its output: the backward pass rebuilds each block's input from its
output with the inverse and recomputes that one block with a graph, so the
activations kept do not grow with depth (one block's graph lives at a time).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from bench import Param
from plugins.architectures.base import FlowArchitecture
from plugins.architectures.common import Block, FlowNet, common_params
from plugins.architectures.residual import resolve_step


class _Reversible(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, net: RevNetModule, *params: torch.Tensor):
        with torch.no_grad():
            y = net.plain_forward(x)
        ctx.net = net
        ctx.save_for_backward(y)  # the output only: inputs are rebuilt by the inverse
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_y: torch.Tensor):
        (y,) = ctx.saved_tensors
        net: RevNetModule = ctx.net
        params = list(net.parameters())
        index = {id(p): i for i, p in enumerate(params)}
        grads: list[torch.Tensor | None] = [None] * len(params)
        for k in reversed(range(net.depth)):
            with torch.no_grad():
                x = net.block_inverse(k, y)
            with torch.enable_grad():
                xk = x.detach().requires_grad_(True)
                yk = net.step(k, xk)
                block_params = [p for p in net.block_parameters(k) if p.requires_grad]
                got = torch.autograd.grad(yk, [xk, *block_params], grad_y, allow_unused=True)
            grad_y = got[0]
            for p, g in zip(block_params, got[1:]):
                if g is None:
                    continue
                i = index[id(p)]
                grads[i] = g if grads[i] is None else grads[i] + g
            y = x
        return (grad_y, None, *grads)


class RevNetModule(FlowNet):
    invertible = "exact"

    def __init__(
        self,
        width: int,
        depth: int,
        hidden: int,
        activation: str,
        step: float,
        memory_saving: bool,
    ) -> None:
        super().__init__(width, depth)
        half = width // 2
        self.h = step
        self.memory_saving = memory_saving
        self.f = nn.ModuleList(Block(half, hidden, half, activation) for _ in range(depth))
        self.g = nn.ModuleList(Block(half, hidden, half, activation) for _ in range(depth))

    def block_parameters(self, k: int) -> list[nn.Parameter]:
        return [*self.f[k].parameters(), *self.g[k].parameters()]

    def step(self, k: int, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=-1)
        y1 = x1 + self.h * self.f[k](x2)
        y2 = x2 + self.h * self.g[k](y1)
        return torch.cat([y1, y2], dim=-1)

    def block_inverse(self, k: int, y: torch.Tensor) -> torch.Tensor:
        y1, y2 = y.chunk(2, dim=-1)
        x2 = y2 - self.h * self.g[k](y1)
        x1 = y1 - self.h * self.f[k](x2)
        return torch.cat([x1, x2], dim=-1)

    def plain_forward(self, x: torch.Tensor) -> torch.Tensor:
        for k in range(self.depth):
            x = self.step(k, x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.memory_saving and torch.is_grad_enabled():
            return _Reversible.apply(x, self, *self.parameters())
        return self.plain_forward(x)

    def flow(self, x: torch.Tensor) -> torch.Tensor:
        return self.plain_forward(x)  # twice differentiable, for Jacobian-vector products

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        for k in reversed(range(self.depth)):
            y = self.block_inverse(k, y)
        return y

    @torch.no_grad()
    def lipschitz_bound(self) -> float:
        # each coupling is two residual half-steps: Lip <= (1 + h Lip F)(1 + h Lip G)
        total = torch.ones(())
        for f, g in zip(self.f, self.g):
            total = total * (1 + self.h * f.lipschitz_bound()) * (1 + self.h * g.lipschitz_bound())
        return float(total)


def _even(width: int) -> str | None:
    if width % 2:
        return (
            f"a RevNet splits its features into two equal halves; width {width} is odd "
            "(use an even width)"
        )
    return None


class RevNet(FlowArchitecture):
    """RevNet: additive coupling, exact inverse, backward by recomputation (Gomez 2017)."""

    name = "revnet"
    params = {
        **common_params(),
        "width": Param(2, low=2, check=_even, doc="features of the state (even: split in halves)"),
        "memory_saving": Param(
            True, doc="backward by recomputation (activations not stored); false: plain autograd"
        ),
    }
    invertible = "exact"

    def build(self, **kwargs: Any) -> RevNetModule:
        v = self.values
        h = resolve_step(v["step"], v["depth"])
        return RevNetModule(
            v["width"], v["depth"], v["hidden"], v["activation"], h, v["memory_saving"]
        )
