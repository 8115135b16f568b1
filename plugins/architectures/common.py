"""What every architecture of this family shares: parameters, blocks, the module API.

Every module built here maps ``(N, width)`` to ``(N, width)`` (a flow of the hidden
state; the task adds its own stem and head) and offers:

- ``trajectory(x)``: the state after each block (or solver output time), stacked
  ``(depth + 1, N, width)``, the lecture's "evolution of spatial configuration";
- ``inverse(y)`` where the architecture has one (``invertible`` says how exact);
- ``flow(x)``: the same map as ``forward``, twice differentiable (RevNet's
  memory-saving backward is not), for Jacobian-vector products;
- ``penalty(x, sample_domain)``: the architecture's own training loss term
  (symmetric ResNet's invertibility loss, Lipschitz penalties), zero otherwise;
- ``lipschitz_bound()``: an upper bound on the map's Lipschitz constant (2-norm)
  from the layers' spectral norms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from bench import Param

#: activations offered; all are 1-Lipschitz, which the Lipschitz bounds rely on
ACTIVATIONS = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "softplus": nn.Softplus,
    "identity": nn.Identity,  # linear blocks: the i-ResNet series is then exact
}

#: how an architecture inverts: exact (closed form), iterative (to a tolerance),
#: approximate (integrating backwards, exact only in the limit h -> 0), or None
INVERTIBLE = ("exact", "iterative", "approximate")

Sampler = Callable[[int], torch.Tensor]


def depth_param() -> Param:
    return Param(8, low=1, doc="number of blocks (node: solver steps)")


def width_param(check: Callable[[int], str | None] | None = None) -> Param:
    return Param(2, low=2, check=check, doc="features of the hidden state the blocks act on")


def hidden_param() -> Param:
    return Param(16, low=1, doc="hidden units inside each block")


def step_param() -> Param:
    return Param(
        None,
        type=float,
        nullable=True,
        low=0.0,
        low_open=True,
        doc="step size h of x + h f(x); null: 1/depth (total time 1 at any depth)",
    )


def activation_param() -> Param:
    return Param("tanh", choices=tuple(ACTIVATIONS), doc="activation inside each block")


def common_params() -> dict[str, Param]:
    return {
        "depth": depth_param(),
        "width": width_param(),
        "hidden": hidden_param(),
        "step": step_param(),
        "activation": activation_param(),
    }


def spectral_norm(weight: torch.Tensor) -> torch.Tensor:
    """Exact largest singular value (SVD; the matrices here are at most a few hundred wide)."""
    return torch.linalg.matrix_norm(weight, ord=2)


class SNLinear(nn.Linear):
    """A linear layer whose weight is scaled down to spectral norm <= ``bound`` when used
    (the constraint of Gouk 2018 and Behrmann 2019, with the exact norm, not one
    power-iteration step)."""

    def __init__(self, width_in: int, width_out: int, bound: float) -> None:
        super().__init__(width_in, width_out)
        self.bound = float(bound)

    def effective_weight(self) -> torch.Tensor:
        sigma = spectral_norm(self.weight)
        return self.weight * torch.clamp(self.bound / sigma, max=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.effective_weight(), self.bias)


def effective_weight(layer: nn.Linear) -> torch.Tensor:
    return layer.effective_weight() if isinstance(layer, SNLinear) else layer.weight


class Block(nn.Module):
    """f(x) = W2 act(W1 x + b1) + b2, the residual function of one block.

    ``bounds=(b1, b2)`` constrains ||W1|| <= b1 and ||W2|| <= b2 (so Lip f <= b1 b2).
    """

    def __init__(
        self,
        width_in: int,
        hidden: int,
        width_out: int,
        activation: str,
        bounds: tuple[float, float] | None = None,
    ) -> None:
        super().__init__()
        if bounds is None:
            self.inner = nn.Linear(width_in, hidden)
            self.outer = nn.Linear(hidden, width_out)
        else:
            self.inner = SNLinear(width_in, hidden, bounds[0])
            self.outer = SNLinear(hidden, width_out, bounds[1])
        self.act = ACTIVATIONS[activation]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outer(self.act(self.inner(x)))

    def lipschitz_bound(self) -> torch.Tensor:
        # ||W2|| * Lip(act) * ||W1||, with every activation offered 1-Lipschitz
        inner = spectral_norm(effective_weight(self.inner))
        return spectral_norm(effective_weight(self.outer)) * inner


class FlowNet(nn.Module):
    """Base of every module of this family: a map of ``(N, width)`` built of steps."""

    invertible: ClassVar[str | None] = None
    #: an iterative inverse's contraction bound c (each step's residual c-Lipschitz), the
    #: rate its fixed point converges at, where the module has one (i-ResNet); None: none
    coeff: float | None = None

    def __init__(self, width: int, depth: int) -> None:
        super().__init__()
        self.width = width
        self.depth = depth

    def step(self, k: int, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for k in range(self.depth):
            x = self.step(k, x)
        return x

    def flow(self, x: torch.Tensor) -> torch.Tensor:
        """The same map as ``forward``, differentiable twice (Jacobian-vector products)."""
        return self(x)

    def trajectory(self, x: torch.Tensor) -> torch.Tensor:
        """States after 0, 1, ..., depth steps: ``(depth + 1, N, width)``."""
        states = [x]
        for k in range(self.depth):
            states.append(self.step(k, states[-1]))
        return torch.stack(states)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no inverse")

    def penalty(self, x: torch.Tensor, sample_domain: Sampler | None = None) -> torch.Tensor:
        """The architecture's own loss term at the training batch ``x`` (zero here)."""
        return x.new_zeros(())

    def lipschitz_bound(self) -> float:
        raise NotImplementedError


#: what every architecture task reads of the module (FlowNet's attributes and methods)
FLOW_MEMBERS = (
    "width",
    "depth",
    "step",
    "forward",
    "flow",
    "trajectory",
    "penalty",
    "lipschitz_bound",
)
#: what an ``invertible = "iterative"`` module has besides (i-ResNet's fixed point)
ITERATIVE_MEMBERS = ("inverse", "fixed_point_errors", "iterations", "tol", "coeff")


def check_flow_module(name: str, net: Any, invertible: str | None) -> None:
    """ValueError unless ``net`` is an ``nn.Module`` with FlowNet's members (and an
    iterative inverse's, where ``invertible`` says so) mapping ``(N, width)`` to
    ``(N, width)``."""
    where = f"{name}.build() returned"
    if not isinstance(net, nn.Module):
        raise ValueError(f"{where} {type(net).__name__}, not a torch nn.Module (a FlowNet)")
    wanted = FLOW_MEMBERS + (ITERATIVE_MEMBERS if invertible == "iterative" else ())
    missing = [m for m in wanted if not hasattr(net, m)]  # the contract's own check
    if missing:
        raise ValueError(
            f"{where} a {type(net).__name__} without {', '.join(missing)}: the architecture "
            "tasks use a FlowNet's (plugins.architectures.common.FlowNet: subclass it)"
            + (" and an iterative inverse's" if invertible == "iterative" else "")
        )
    width = int(net.width)
    with torch.no_grad():
        param = next(net.parameters(), None)
        probe = torch.zeros(
            2,
            width,
            dtype=param.dtype if param is not None else None,
            device=param.device if param is not None else None,  # where build() put it
        )
        try:
            out = net(probe)
        except RuntimeError as exc:  # a shape mismatch inside the module
            raise ValueError(
                f"{where} a module that cannot take a (2, {width}) batch on {probe.device} "
                f"({exc}): a flow maps (N, width) -> (N, width), and its width is {width}"
            ) from None
    if tuple(out.shape) != (2, width):
        raise ValueError(
            f"{where} a module mapping a (2, {width}) batch to {tuple(out.shape)}: a flow "
            f"keeps its width, (N, width) -> (N, width), and its width is {width}"
        )
