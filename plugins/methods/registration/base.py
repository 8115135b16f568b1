"""Shared parts of the registration methods: base class, parameters, pyramid, Adam loop."""

from __future__ import annotations

import math
import time
from abc import abstractmethod
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from bench import CellContext, Method, Param
from plugins.methods.registration.losses import SIMILARITIES
from plugins.methods.registration.problem import Monitor, Problem, Result

CURVE_EVERY = 10  # one curve point every 10 iterations (and the last)


def positive(default: float, doc: str) -> Param:
    """A weight that must be > 0 (0 or less is refused when the suite is validated)."""
    return Param(float(default), low=0.0, low_open=True, doc=doc)


def common_params(iterations: int, lr: float, weight: float, levels: int) -> dict[str, Param]:
    return {
        "iterations": Param(
            iterations, low=1, doc="Adam iterations at each pyramid level (at most)"
        ),
        "tol": Param(
            0.0,
            low=0.0,
            doc="stop a level once its mean loss over `tol_window` steps falls by less than "
            "this (relative) against the steps before; 0: run every iteration",
        ),
        "tol_window": Param(10, low=1, doc="steps a mean of the stopping rule spans (`tol`)"),
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


def stopping(values: dict[str, Any]) -> dict[str, Any]:
    """``Loop.run``'s stopping-rule arguments from a method's ``common_params`` values."""
    return {"tol": values["tol"], "window": values["tol_window"]}


class RegistrationMethod(Method):
    """Base of the registration methods: what ``registration.pairwise``'s method slot
    takes. ``solve(problem, ctx)`` gets a ``Problem`` (``plugins.methods.registration.
    problem``: fixed and moving images, mask, spacing, similarity, the cell's warp and
    exp backends) and returns a ``Result`` (the displacement, and its inverse where the
    method has one)."""

    #: the similarities this method can optimise (the task refuses others)
    similarities: ClassVar[tuple[str, ...]] = SIMILARITIES

    @abstractmethod
    def solve(self, problem: Problem, ctx: CellContext) -> Result:
        """What a plugin of this family must implement (the family's contract above)."""


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
    """Adam over ``params`` for at most ``iterations`` steps a level, recording ``loss``
    into ``ctx`` (one curve across all levels) and ending the cell as ``diverged`` on a
    NaN loss.

    Stopping rule (``tol`` > 0): a level ends early once the mean loss of its last
    ``window`` steps is less than ``tol`` (relative) below the mean of the ``window``
    before them, i.e. once the loss has stopped falling. ``tol`` 0 runs every iteration.

    With a ``monitor`` (``problem.monitor``), ``current()`` (the displacement at the
    level's size) is scored every ``monitor.every`` steps and the loss curve's times
    leave the scoring out."""

    def __init__(self, ctx: CellContext, name: str = "loss", monitor: Monitor | None = None):
        self.ctx, self.name, self.step, self.monitor = ctx, name, 0, monitor
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        if self.monitor is not None:
            return self.monitor.elapsed()
        return time.perf_counter() - self.start

    def run(
        self,
        params: Iterable[torch.Tensor],
        loss_fn: Callable[[], torch.Tensor],
        iterations: int,
        lr: float,
        *,
        tol: float = 0.0,
        window: int = 10,
        current: Callable[[], torch.Tensor] | None = None,
    ) -> float:
        params = list(params)
        opt = Adam(params, lr=lr)
        value = float("nan")
        history: list[float] = []
        for it in range(iterations):
            if self.monitor is not None and current is not None and self.monitor.due(self.step):
                self.monitor(self.step, current)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn()
            value = float(loss.detach())
            history.append(value)
            last = it == iterations - 1 or value != value or converged(history, tol, window)
            if it % CURVE_EVERY == 0 or last:
                self.ctx.curve(self.name, self.step, value, self.elapsed())
            self.ctx.check_finite(self.name, value)
            loss.backward()
            opt.step()
            self.step += 1
            if last:
                break
        if self.monitor is not None:
            self.monitor.step = self.step
        return value


class Adam:
    """``torch.optim.Adam`` with its defaults (betas 0.9 and 0.999, eps 1e-8, no weight
    decay), the same arithmetic in plain tensor ops. torch.optim's first optimiser of a
    process imports torch._dynamo: 5.5 s measured on the 2-core CPU, shared, inside
    every cell's ``register`` time (issue 20), where this one imports nothing."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float) -> None:
        # a list: ``net.parameters()`` is a generator, used up by m and v below
        self.params, self.lr, self.t = list(params), lr, 0
        self.betas, self.eps = (0.9, 0.999), 1e-8
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        fix1, fix2 = 1.0 - b1**self.t, 1.0 - b2**self.t
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            g = p.grad
            m.lerp_(g, 1.0 - b1)
            v.mul_(b2).addcmul_(g, g, value=1.0 - b2)
            denom = (v.sqrt() / math.sqrt(fix2)).add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / fix1)


def converged(history: list[float], tol: float, window: int) -> bool:
    """Whether the mean of the last ``window`` losses is less than ``tol`` (relative)
    below the mean of the ``window`` before them; False before 2 ``window`` losses."""
    if tol <= 0 or len(history) < 2 * window:
        return False
    before = sum(history[-2 * window : -window]) / window
    after = sum(history[-window:]) / window
    return before - after < tol * abs(before)


def zeros_field(shape: tuple[int, ...], device: Any) -> torch.Tensor:
    return torch.zeros((1, len(shape), *shape), device=device)
