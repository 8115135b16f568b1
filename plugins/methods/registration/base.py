"""Shared parts of the registration methods: base class, parameters, pyramid, Adam loop."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from bench import CellContext, Method, Param
from plugins.methods.registration.losses import SIMILARITIES
from plugins.methods.registration.problem import Problem, Result

CURVE_EVERY = 10  # one curve point every 10 iterations (and the last)


def positive(default: float, doc: str) -> Param:
    """A weight that must be > 0 (0 or less is refused when the suite is validated)."""
    return Param(float(default), low=0.0, low_open=True, doc=doc)


def common_params(iterations: int, lr: float, weight: float, levels: int) -> dict[str, Param]:
    return {
        "iterations": Param(iterations, low=1, doc="Adam iterations at each pyramid level"),
        "lr": positive(lr, "Adam learning rate (voxels per step for fields)"),
        "weight": positive(weight, "regulariser weight"),
        "levels": Param(levels, low=1, high=5, doc="pyramid levels (each halves the size)"),
    }


def bracket(default: float, factor: float = 2.0) -> list[float]:
    """The two values ``default / factor`` and ``default * factor``, whose geometric
    mean is the default: how the tuning grids span a weight or a learning rate."""
    return [default / factor, default * factor]


def count_bracket(default: int) -> list[int]:
    """The two counts a third below and above ``default`` (150 -> [100, 200]), whose
    arithmetic mean is the default, so a grid costs on average what the default does."""
    third = round(default / 3)
    return [default - third, default + third]


def adam_tuning(params: dict[str, Param], iterations: str = "iterations") -> dict[str, list]:
    """The tuning grid of an Adam-optimised method (2 x 2 x 2 = 8 settings, centred on
    the defaults in ``params``): its ``iterations`` (or training steps) a third below and
    above, its learning rate ``lr`` and regulariser ``weight`` halved and doubled."""
    return {
        iterations: count_bracket(params[iterations].default),
        "lr": bracket(params["lr"].default),
        "weight": bracket(params["weight"].default),
    }


class RegistrationMethod(Method):
    """Base of the registration methods: what ``registration.pairwise``'s method slot
    takes. ``solve(problem, ctx)`` gets a ``Problem`` (``plugins.methods.registration.
    problem``: fixed and moving images, mask, spacing, similarity, the cell's warp and
    exp backends) and returns a ``Result`` (the displacement, and its inverse where the
    method has one)."""

    #: the similarities this method can optimise (the task refuses others)
    similarities: ClassVar[tuple[str, ...]] = SIMILARITIES

    def solve(self, problem: Problem, ctx: CellContext) -> Result:
        raise NotImplementedError


def downsample(image: torch.Tensor, factor: int) -> torch.Tensor:
    if factor == 1:
        return image
    pool = F.avg_pool2d if image.dim() == 4 else F.avg_pool3d
    return pool(image, factor, stride=factor, ceil_mode=True)


def resize_field(field: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Resample a voxel-unit field to ``shape`` (align_corners) and rescale each component
    by the change of voxel size along its axis."""
    old = field.shape[2:]
    if tuple(old) == tuple(shape):
        return field
    mode = "bilinear" if len(shape) == 2 else "trilinear"
    out = F.interpolate(field, size=shape, mode=mode, align_corners=True)
    scale = [(n - 1) / max(o - 1, 1) for n, o in zip(shape, old)]
    scale_t = torch.tensor(scale, device=field.device, dtype=field.dtype)
    return out * scale_t.reshape(1, -1, *([1] * len(shape)))


def pyramid(problem: Problem, levels: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(fixed, moving) from the coarsest level to the full size; a level is skipped when
    it would leave fewer than 8 voxels along an axis."""
    out = []
    for k in reversed(range(levels)):
        factor = 2**k
        if min(problem.shape) // factor < 8:
            continue
        out.append((downsample(problem.fixed, factor), downsample(problem.moving, factor)))
    return out


class Loop:
    """Adam over ``params`` for ``iterations`` steps, recording ``loss`` into ``ctx``
    (one curve across all levels) and ending the cell as ``diverged`` on a NaN loss."""

    def __init__(self, ctx: CellContext, name: str = "loss") -> None:
        self.ctx, self.name, self.step = ctx, name, 0
        self.start = time.perf_counter()

    def run(
        self,
        params: Iterable[torch.Tensor],
        loss_fn: Callable[[], torch.Tensor],
        iterations: int,
        lr: float,
    ) -> float:
        params = list(params)
        opt = torch.optim.Adam(params, lr=lr)
        value = float("nan")
        for it in range(iterations):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn()
            value = float(loss.detach())
            if it % CURVE_EVERY == 0 or it == iterations - 1 or value != value:
                self.ctx.curve(self.name, self.step, value, time.perf_counter() - self.start)
            self.ctx.check_finite(self.name, value)
            loss.backward()
            opt.step()
            self.step += 1
        return value


def zeros_field(shape: tuple[int, ...], device: Any) -> torch.Tensor:
    return torch.zeros((1, len(shape), *shape), device=device)
