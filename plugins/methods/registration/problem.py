"""What a registration method's ``solve(problem, ctx)`` receives and returns.

``registration.pairwise`` builds a ``Problem`` and calls ``method.solve(problem, ctx)``;
the method returns a ``Result``. All tensors are float32 on ``problem.device``, batch 1:

- images ``(1, 1, *S)`` with S = (H, W) or (D, H, W), intensities ~[0, 1];
- displacements and velocities ``(1, ndim, *S)`` in voxels, channel i along array axis
  i, on the fixed image's grid: ``warped(x) = moving(x + disp(x))``.

A method warps only through ``problem.warp`` (the cell's ``warp.*`` backend) and
exponentiates only through ``problem.exp`` (the matching ``svf_exp.*`` backend), so the
same cell measures what the kernels buy end to end. It records its own convergence
curve (``ctx.curve("loss", ...)``) and raises ``bench.Diverged`` (``ctx.check_finite``)
when its loss stops being finite; a learned method times its training itself
(``ctx.add_time("train", s)``) while the task times ``solve`` as ``register``.

Where the task can score a displacement (labels, a known truth) it gives the problem a
``Monitor``: a method that optimises in a loop calls ``problem.monitor(step, current)``
every ``monitor.every`` steps (``base.Loop`` does), with ``current()`` returning its
displacement at that step, and the task records the scores (``dice``, ``error_mm``)
as curves against the solve's time with the monitor's own time taken out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

Warp = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Exp = Callable[[torch.Tensor, int], torch.Tensor]
Similarity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Monitor:
    """Scores a method's displacement during its solve, on a clock that leaves the
    scoring out.

    Attributes:
        evaluate: ``evaluate(disp)`` -> ``{curve name: value}`` for a displacement
            ``(1, ndim, *S')`` at any pyramid level's size (the task resamples it).
        record: ``record(name, step, value, seconds)`` (the cell's ``ctx.curve``).
        every: score every this many steps (0: never; the task still scores the result).
    """

    evaluate: Callable[[torch.Tensor], dict[str, float]]
    record: Callable[[str, int, float, float], None]
    every: int = 10
    start: float = field(default_factory=time.perf_counter)
    spent: float = 0.0  # seconds spent scoring since ``start``
    step: int = 0  # the last step the method reported (``due`` or a call)

    def restart(self) -> None:
        """Start the clock (the task calls this just before ``solve``)."""
        self.start, self.spent, self.step = time.perf_counter(), 0.0, 0

    def elapsed(self) -> float:
        """Seconds since ``restart``, less the time spent scoring."""
        return time.perf_counter() - self.start - self.spent

    def due(self, step: int) -> bool:
        self.step = step
        return self.every > 0 and step % self.every == 0

    def __call__(self, step: int, current: Callable[[], torch.Tensor]) -> None:
        """Score ``current()`` (computed inside the untimed region) as step ``step``."""
        self.step = step
        seconds = self.elapsed()
        begin = time.perf_counter()
        with torch.no_grad():
            scores = self.evaluate(current().detach())
        for name, value in scores.items():
            self.record(name, step, value, seconds)
        self.spent += time.perf_counter() - begin


@dataclass
class Problem:
    """One pairwise registration.

    Attributes:
        fixed, moving: ``(1, 1, *S)`` images.
        mask: ``(1, 1, *S)`` float, 1 inside the fixed image's brain (for information).
        spacing: voxel size in mm per axis.
        similarity: ``similarity(warped, fixed)`` -> scalar loss, lower is better.
        similarity_name: ``mse``, ``ncc`` or ``mi``; ``window`` the local NCC window.
        warp: ``warp(image, disp)`` bilinear, zero outside (the cell's backend).
        exp: ``exp(velocity, steps)`` -> displacement of exp(v) (scaling and squaring).
        training_pairs: ``training_pairs(count, seed)`` yields ``(fixed, moving)`` pairs
            of the same kind as this one but never this one (learned methods train on
            them); None where no such pairs can be made.
        device: ``cpu`` or ``cuda:N``.
        monitor: scores the method's displacement during the solve (curves of Dice and
            error against time), or None.
    """

    fixed: torch.Tensor
    moving: torch.Tensor
    mask: torch.Tensor
    spacing: tuple[float, ...]
    similarity: Similarity
    similarity_name: str
    window: int
    warp: Warp
    exp: Exp
    training_pairs: Callable[[int, int], Iterator[tuple[torch.Tensor, torch.Tensor]]] | None
    device: str = "cpu"
    monitor: Monitor | None = None

    @property
    def ndim(self) -> int:
        return self.fixed.dim() - 2

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.fixed.shape[2:])


@dataclass
class Result:
    """What a method found: ``disp`` (1, ndim, *S) voxels; ``inverse``, the displacement of
    the inverse map where the method has one (svf: exp(-v); lddmm, nodeo: the flow run
    backwards; syn: ANTs' inverse), else None; ``velocity`` where there is one."""

    disp: torch.Tensor
    inverse: torch.Tensor | None = None
    velocity: torch.Tensor | None = None

    def check(self, method: str, ndim: int, shape: tuple[int, ...]) -> None:
        """Raise ValueError naming ``method`` where a field is not a floating tensor of
        (1, ndim, *shape): a displacement channels-last, without its batch axis or at
        another size would fail deep inside the warp, or broadcast into wrong scores."""
        want = (1, ndim, *shape)
        for name in ("disp", "inverse"):
            field_ = getattr(self, name)
            if field_ is None and name == "inverse":
                continue
            got = tuple(field_.shape) if isinstance(field_, torch.Tensor) else type(field_)
            if got != want or not field_.is_floating_point():
                what = got if isinstance(field_, torch.Tensor) else f"a {got.__name__}"
                raise ValueError(
                    f"method {method}: Result.{name} is {what}"
                    + ("" if got != want else f" of {field_.dtype}")
                    + f", not a floating tensor of (1, ndim, *S) = {want} voxels"
                )


def checked_result(result: object, method: str, ndim: int, shape: tuple[int, ...]) -> Result:
    """``result`` when it is a ``Result`` whose fields ``Result.check`` accepts; else a
    ValueError naming ``method`` (a solve returning None or a bare tensor failed inside
    the task with an AttributeError naming neither)."""
    if not isinstance(result, Result):
        raise ValueError(
            f"{method}.solve returned {type(result).__name__}, not a Result: a registration "
            "method returns plugins.methods.registration.problem.Result(disp) (the "
            f"displacement in voxels, (1, {ndim}, *{shape}); inverse= where it has one)"
        )
    result.check(method, ndim, shape)
    return result
