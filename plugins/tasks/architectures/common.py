"""What the architecture tasks share: building the slot's module, counting parameters."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from bench import Architecture, CellContext, Plugin


def build_architecture(ctx: CellContext, slot: str = "architecture") -> tuple[Any, nn.Module]:
    """The slot's module on the cell's device, checked against what the tasks use of it
    (``plugins.architectures.common.FlowNet``): a ValueError naming the plugin and the
    contract where it falls short, not an AttributeError inside torch later."""
    arch = ctx.components[slot]
    assert isinstance(arch, Architecture)
    net = arch.build()
    check_flow_module(arch.name, net, getattr(arch, "invertible", None))
    return arch, net.to(ctx.device)


#: what every architecture task reads of the module (FlowNet's attributes and methods)
FLOW_MEMBERS = ("width", "depth", "forward", "flow", "trajectory", "penalty", "lipschitz_bound")
#: what an ``invertible = "iterative"`` module has besides (i-ResNet's fixed point)
ITERATIVE_MEMBERS = ("inverse", "fixed_point_errors", "iterations", "tol")


def check_flow_module(name: str, net: Any, invertible: str | None) -> None:
    """ValueError unless ``net`` is an ``nn.Module`` with FlowNet's members (and an
    iterative inverse's, where ``invertible`` says so) mapping ``(N, width)`` to
    ``(N, width)``."""
    where = f"{name}.build() returned"
    if not isinstance(net, nn.Module):
        raise ValueError(f"{where} {type(net).__name__}, not a torch nn.Module (a FlowNet)")
    wanted = FLOW_MEMBERS + (ITERATIVE_MEMBERS if invertible == "iterative" else ())
    missing = [m for m in wanted if not hasattr(net, m)]
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


def needs_inverse(plugin: type[Plugin], task: str) -> str | None:
    """check_component's reason to refuse an architecture without an inverse."""
    if plugin.invertible is None:
        return f"{plugin.name} has no inverse, and {task} needs m^-1"
    return None


def no_domain_sampler(components: dict[str, type[Plugin]], params: dict[str, Any], task: str):
    """check_cell's reason to refuse an architecture whose penalty samples the input
    domain (``FlowArchitecture.needs_domain``) in a task that has no domain to sample
    (its inputs are images or learned features); None otherwise."""
    arch = components.get("architecture")
    needs = getattr(arch, "needs_domain", None)
    if needs is not None and needs(params):
        return (
            f"{arch.name}'s penalty samples the input domain (variant: domain), and {task} "
            "has no domain sampler (its inputs are images or learned features): use "
            "variant: data"
        )
    return None


def count_parameters(*modules: nn.Module) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())
