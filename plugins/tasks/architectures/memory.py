"""``memory.depth``: what a training step costs in memory and time as depth grows.

One cell is one architecture at one depth (sweep ``architecture.depth``). A step is
a forward pass of a ``batch`` x ``width`` input, the loss mean(y^2) and the backward
pass to every parameter (no optimiser). Recorded:

- ``time.step`` and ``mem.step``: the harness's timing and peak memory of the step.
  On CUDA ``mem.step`` is the allocator's peak above the start. On CPU it is the
  process's resident-set high-water mark above the start (reset per region through
  /proc/self/clear_refs), which counts whole pages the allocator keeps or returns
  as it likes: read it as a coarse figure.
- ``saved_activation_bytes``: the bytes autograd holds for the backward pass at the
  end of the forward pass, counted exactly with ``saved_tensors_hooks`` (each storage
  once, parameters left out): the activation memory that RevNets and the adjoint
  method keep flat in depth. ``saved_parameter_bytes`` is what was saved of the
  parameters themselves (they are in memory anyway).
- ``peak_allocated_bytes`` (CPU): the peak of live bytes the CPU allocator handed out
  during one step, above the start, from the torch profiler's allocation and free
  events (profile_memory): the CPU analogue of CUDA's max_memory_allocated. It
  includes the parameters' gradients, which grow with depth for untied blocks.
  ``peak_beyond_gradients`` leaves them out: the larger of the forward pass's own
  peak (no gradient exists yet) and the step's peak less ``parameter_bytes`` (every
  gradient, live by the step's end). Taking them off the step's peak alone read below
  what is provably live where the peak is the forward's (resnet: 7.35 MB against its
  8.42 MB of saved activations), and so favoured a model for having more parameters;
  that was ``peak_minus_gradients``, the name runs before 2026-12-07 recorded, so the
  two never compare as one.
- ``parameters`` and ``parameter_bytes``: the model's size (grows with untied depth).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from bench import CellContext, Headline, Param, Task
from plugins.architectures.base import FlowArchitecture
from plugins.tasks.architectures.common import build_architecture, count_parameters


def saved_bytes(
    step: torch.nn.Module, x: torch.Tensor, params: list[torch.Tensor]
) -> tuple[int, int, torch.Tensor]:
    """Bytes autograd saves for backward during ``step(x)``: (activations, parameters,
    output). Each storage is counted once."""
    param_ptrs = {p.untyped_storage().data_ptr() for p in params}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = step(x)
    activations = sum(n for ptr, n in seen.items() if ptr not in param_ptrs)
    weights = sum(n for ptr, n in seen.items() if ptr in param_ptrs)
    return activations, weights, out


def profiled_peak(step: Callable[[], None]) -> int:
    """Peak live CPU-allocator bytes during ``step()`` (torch profiler memory events,
    each allocation at its op's start, each free at its own event, in time order)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = sorted(
        (e for e in prof.events() if e.self_cpu_memory_usage != 0),
        key=lambda e: e.time_range.start,
    )
    live = peak = 0
    for event in events:
        live += event.self_cpu_memory_usage
        peak = max(peak, live)
    return peak


class MemoryDepth(Task):
    """Peak training memory and time per step against depth (ResNet, RevNet, Neural ODE)."""

    name = "memory.depth"
    headline = Headline(
        size="parameters",
        quality={"saved_activation_bytes": "lower", "peak_beyond_gradients": "lower"},
        cost="time.step.median",
        problem=("batch",),
    )
    components = {"architecture": FlowArchitecture}
    params = {
        "batch": Param(1024, low=1, doc="points per step"),
    }

    def run(self, ctx: CellContext) -> None:
        arch, net = build_architecture(ctx)
        x = torch.randn(ctx.params["batch"], net.width, device=ctx.device)
        params = [p for p in net.parameters() if p.requires_grad]
        ctx.metric("parameters", count_parameters(net))
        ctx.metric("parameter_bytes", sum(p.numel() * p.element_size() for p in params))
        ctx.metric("depth", net.depth)

        def loss_of(z: torch.Tensor) -> torch.Tensor:
            return net(z).pow(2).mean()

        activations, weights, loss = saved_bytes(loss_of, x, params)
        ctx.metric("saved_activation_bytes", activations)
        ctx.metric("saved_parameter_bytes", weights)
        grads = torch.autograd.grad(loss, params)
        ctx.check_finite("gradient", torch.stack([g.abs().max() for g in grads]))
        del loss, grads

        def step() -> None:
            loss = loss_of(x)
            torch.autograd.grad(loss, params)

        if ctx.device == "cpu":
            peak = profiled_peak(step)
            ctx.metric("peak_allocated_bytes", peak)
            forward = profiled_peak(lambda: loss_of(x))  # before any gradient exists
            ctx.metric("peak_forward_bytes", forward)
            ctx.metric(
                "peak_beyond_gradients",
                max(forward, peak - ctx.record.metrics["parameter_bytes"]),
            )
        ctx.time("step", step)
