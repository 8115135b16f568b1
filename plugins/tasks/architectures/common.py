"""What the architecture tasks share: building the slot's module, counting parameters."""

from __future__ import annotations

from typing import Any

from torch import nn

from bench import Architecture, CellContext, Plugin
from plugins.architectures.base import FlowArchitecture
from plugins.architectures.common import check_flow_module


def build_architecture(ctx: CellContext, slot: str = "architecture") -> tuple[Any, nn.Module]:
    """The slot's module on the cell's device, checked against what the tasks use of it
    (``plugins.architectures.common.FlowNet``): a ValueError naming the plugin and the
    contract where it falls short, not an AttributeError inside torch later."""
    arch = ctx.components[slot]
    assert isinstance(arch, Architecture)
    net = arch.build()
    check_flow_module(arch.name, net, arch.invertible)
    return arch, net.to(ctx.device)


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
    if isinstance(arch, type) and issubclass(arch, FlowArchitecture) and arch.needs_domain(params):
        return (
            f"{arch.name}'s penalty samples the input domain (variant: domain), and {task} "
            "has no domain sampler (its inputs are images or learned features): use "
            "variant: data"
        )
    return None


def count_parameters(*modules: nn.Module) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())
