"""The kernel operations' base classes: what a slot of each takes and may rely on.

A backend of your own subclasses one of these (``class MyWarp(WarpBackend)``) and lands
in every task whose slot names it: the ``kernels.*`` micro-benchmarks, registration,
atlas building, density control (warp), the fields family (sine-MLP).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import torch

from bench import Backend


class SvfExpBackend(Backend):
    """Exponential of a stationary velocity field by scaling and squaring.

    ``backend(velocity, *, steps=7, padding="zeros") -> displacement``: ``velocity`` is
    ``(N, d, *spatial)`` in voxels (channel k along spatial axis k); the result is the
    displacement of exp(v), same shape, after ``steps`` squarings of v / 2^steps.
    """

    op = "svf_exp"

    @abstractmethod
    def __call__(self, velocity: torch.Tensor, *, steps: int = 7, padding: str = "zeros"):
        """The operation (the family's contract above)."""


class WarpBackend(Backend):
    """Warps images by a displacement.

    ``backend(image, disp, *, mode="bilinear", padding="zeros") -> warped``: ``image``
    is ``(N, C, *spatial)``, ``disp`` ``(N, d, *spatial)`` in voxels (channel k along
    spatial axis k); the result samples ``image`` at index + disp, differentiably in both.

    ``svf_exp``: the scaling-and-squaring backend of the same implementation, which a task
    that exponentiates velocities uses beside this warp (so a cell exercises one
    implementation end to end); it is built with this backend's parameters. A warp
    backend that names none gets ``SquaringByWarp``: the squarings through its own warp.
    """

    op = "warp"
    svf_exp: ClassVar[type[SvfExpBackend] | None] = None

    @abstractmethod
    def __call__(self, image: torch.Tensor, disp: torch.Tensor, *, mode: str = "bilinear",
                 padding: str = "zeros"):  # fmt: skip
        """The operation (the family's contract above)."""

    def exp_backend(self) -> SvfExpBackend:
        """The scaling-and-squaring backend that goes with this warp."""
        paired = type(self).svf_exp
        if paired is None:
            return SquaringByWarp(self)
        return paired(**self.values)


class SquaringByWarp(SvfExpBackend):
    """Scaling and squaring through a warp backend: u <- u + u o (id + u), ``steps`` times."""

    name = "svf_exp.by_warp"

    def __init__(self, warp: WarpBackend, **values: Any) -> None:
        super().__init__(**values)
        self.warp = warp

    def __call__(self, velocity: torch.Tensor, *, steps: int = 7, padding: str = "zeros"):
        disp = velocity / 2**steps
        for _ in range(steps):
            disp = disp + self.warp(disp, disp, padding=padding)
        return disp


class SineMLPBackend(Backend):
    """Evaluates a SIREN: sine layers, then a linear output layer.

    ``backend(x, weights, biases, *, omega0=30.0, precision="fp32") -> (N, out)`` float32:
    ``x`` is ``(N, in)``, ``weights[i]`` ``(out_i, in_i)``; every layer but the last is
    ``sin(omega0 * (h W^T + b))``. ``precision`` is ``fp32``, ``tf32``, ``fp16`` or ``bf16``.
    Differentiable in ``x``, the weights and the biases.

    ``max_width``: the widest hidden layer this backend takes (a fused kernel's limit),
    None for no limit; a task refuses wider fields when the suite is validated.
    """

    op = "sine_mlp"
    max_width: ClassVar[int | None] = None

    @abstractmethod
    def __call__(self, x: torch.Tensor, weights: list[torch.Tensor], biases: list[torch.Tensor],
                 *, omega0: float = 30.0, precision: str = "fp32"):  # fmt: skip
        """The operation (the family's contract above)."""
