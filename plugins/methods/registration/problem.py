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
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

Warp = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Exp = Callable[[torch.Tensor, int], torch.Tensor]
Similarity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


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
