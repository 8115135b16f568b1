"""``fireants.greedy`` and ``fireants.syn``: FireANTs (Jena, Chaudhari, Gee 2024), an
optional dependency (``pip install fireants``; the ``peers-registration`` extra).

FireANTs is PyTorch: multi-scale Riemannian Adam on a dense compositive warp, greedy
(one warp, moving onto fixed) or SyN (a warp from each side to a midpoint, composed
with the inverse of the fixed one's). The images go to it as SimpleITK images built in
memory (no file) with the fixed image's spacing, zero origin and identity direction; it
works in torch's normalised [-1, 1] coordinates (align_corners, x along the LAST array
axis). Its map, read back with ``get_warped_coordinates`` (the normalised point of the
moving image each fixed voxel samples), becomes our displacement: to voxels by
``(c + 1) (n - 1) / 2`` per axis, components reversed to array-axis order, minus the
voxel's own index, so ``warped(x) = moving(x + disp(x))`` as ours. Its own warped image
(``evaluate``: bilinear, zeros outside) is what our warp of that displacement gives
(tests/plugins/registration/test_peers.py checks it).

Levels: ``iterations`` per level, coarsest first, at scales 2^(L-1), ..., 2, 1 (its
tutorial's [4, 2, 1] for three). Similarity: ``mse`` -> its MSE, ``ncc`` -> its local CC
with the cell's window as kernel size, ``mi`` -> its global (Parzen, 32-bin) mutual
information. FireANTs stops a level early when its loss stops moving (its own
convergence monitor, kept). It runs on the cell's device with the cell's torch threads;
it never uses the cell's warp backend (it has its own interpolator).
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from typing import Any, ClassVar

import numpy as np
import torch

from bench import CellContext, Param
from plugins.methods.registration.base import RegistrationMethod, bracket, positive
from plugins.methods.registration.problem import Problem, Result

INSTALL = "pip install fireants (the peers-registration extra)"


def iteration_list(value: list) -> str | None:
    """A non-empty list of positive iteration counts, one per level (coarsest first)."""
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in value)
    ):
        return f"expected a non-empty list of iteration counts >= 1 per level, got {value!r}"
    return None


def missing_module(name: str, modules: tuple[str, ...], install: str) -> str | None:
    """The reason a peer cannot run here (a module is not installed), or None."""
    import importlib.util

    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return (
                f"{name} needs the optional module {module!r}, which is not installed ({install})"
            )
    return None


def import_fireants() -> Any:
    """Import FireANTs without its import-time side effects on this process: it prints
    its fused-ops status to stdout, calls ``logging.basicConfig(level=INFO)`` (which
    would turn on every library's INFO logging) and warns through it that its fused ops
    are not compiled; the root logger is put back and FireANTs' own loggers are set to
    WARNING."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    disabled = root.manager.disable
    # without its compiled fused ops (a CUDA extension) FireANTs warns so at import and
    # at every downsampling; the baseline it falls back on is what runs here: dropped
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import fireants.io.image
            import fireants.registration.greedy
            import fireants.registration.syn  # noqa: F401
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
        logging.disable(disabled)
    for name in list(logging.root.manager.loggerDict):
        if name == "fireants" or name.startswith("fireants."):
            logging.getLogger(name).setLevel(logging.WARNING)
    # (the downsampling's notice: that logger reports errors only)
    logging.getLogger("fireants.utils.imageutils").setLevel(logging.ERROR)
    import fireants

    return fireants


class _Recorder:
    """FireANTs' loss function, recording each value as the ``loss`` curve and ending
    the cell as diverged on a non-finite loss; everything else goes to the wrapped loss
    (FireANTs asks it for ``set_current_scale_and_iterations`` and the like)."""

    def __init__(self, loss_fn: Any, ctx: CellContext) -> None:
        self._loss_fn, self._ctx = loss_fn, ctx
        self._step, self._start = 0, time.perf_counter()

    def __call__(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        loss = self._loss_fn(*args, **kwargs)
        value = float(loss.detach())
        if self._step % 10 == 0 or value != value:
            self._ctx.curve("loss", self._step, value, time.perf_counter() - self._start)
        self._ctx.check_finite("loss", value)
        self._step += 1
        return loss

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loss_fn, name)


def to_fireants(image: torch.Tensor, spacing: tuple[float, ...], device: str) -> Any:
    """A (1, 1, *S) tensor as FireANTs' BatchedImages, through an in-memory SimpleITK
    image (SimpleITK's index order is the array's reversed, so is its spacing)."""
    import SimpleITK as sitk
    from fireants.io.image import BatchedImages, Image

    array = image[0, 0].detach().cpu().numpy().astype(np.float32)
    itk_image = sitk.GetImageFromArray(array)
    itk_image.SetSpacing([float(s) for s in reversed(spacing)])
    return BatchedImages([Image(itk_image, device=device)])


def coordinates_to_displacement(coords: torch.Tensor) -> torch.Tensor:
    """FireANTs' warped coordinates (1, *S, ndim): normalised, align_corners, component
    0 along the last array axis -> our displacement (1, ndim, *S) in voxels along the
    array axes."""
    shape = coords.shape[1:-1]
    ndim = len(shape)
    sizes = torch.tensor(shape, dtype=coords.dtype, device=coords.device)
    voxels = (coords[0].flip(-1) + 1) * (sizes - 1) / 2  # (*S, ndim), array-axis order
    axes = [torch.arange(n, dtype=coords.dtype, device=coords.device) for n in shape]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
    return (voxels - grid).permute(ndim, *range(ndim))[None].contiguous()


class _FireANTs(RegistrationMethod):
    """Shared parts of the FireANTs peers."""

    requires = ("fireants", "SimpleITK")
    similarities = ("mse", "ncc", "mi")
    loss_types: ClassVar[dict[str, str]] = {"mse": "mse", "ncc": "cc", "mi": "mi"}

    @classmethod
    def missing_requirement(cls) -> str | None:
        return missing_module(cls.name, cls.requires, INSTALL)

    def prepare(self, device: str) -> None:
        """FireANTs' import (and SimpleITK's), off the first registration's clock."""
        import_fireants()

    def registration(self, problem: Problem, fixed: Any, moving: Any, **common: Any) -> Any:
        raise NotImplementedError

    def solve(self, problem: Problem, ctx: CellContext) -> Result:
        import_fireants()
        v = self.values
        levels = len(v["iterations"])
        fixed = to_fireants(problem.fixed, problem.spacing, problem.device)
        moving = to_fireants(problem.moving, problem.spacing, problem.device)
        reg = self.registration(
            problem,
            fixed,
            moving,
            scales=[2 ** (levels - 1 - k) for k in range(levels)],
            iterations=list(v["iterations"]),
            loss_type=self.loss_types[problem.similarity_name],
            cc_kernel_size=problem.window,
            deformation_type="compositive",
            optimizer="Adam",
            optimizer_lr=v["lr"],
            smooth_grad_sigma=v["smooth_grad_sigma"],
            smooth_warp_sigma=v["smooth_warp_sigma"],
            progress_bar=False,
        )
        reg.loss_fn = _Recorder(reg.loss_fn, ctx)
        reg.optimize()
        # SyN's map inverts the fixed side's warp by a FireANTs optimisation that shows a
        # progress bar on stderr whatever is asked: kept out of the cell's log
        with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
            coords = reg.get_warped_coordinates(fixed, moving)
        disp = coordinates_to_displacement(coords.float())
        return Result(disp.to(device=problem.device, dtype=torch.float32))


def _fireants_params(iterations: list[int], grad_sigma: float, warp: str) -> dict[str, Param]:
    """The parameters both FireANTs methods take, with their own defaults."""
    return {
        "iterations": Param(
            iterations,
            check=iteration_list,
            doc="iterations per level, coarsest first (scales 2^(L-1) .. 1)",
        ),
        "lr": positive(0.5, "FireANTs' Adam learning rate"),
        "smooth_grad_sigma": Param(
            grad_sigma, low=0.0, doc="Gaussian smoothing of the gradient (voxels): the fluid term"
        ),
        "smooth_warp_sigma": Param(
            0.5, low=0.0, doc=f"Gaussian smoothing of {warp} (voxels): the elastic term"
        ),
    }


class FireANTsGreedy(_FireANTs):
    """FireANTs greedy deformable registration (compositive warp, Riemannian Adam)."""

    name = "fireants.greedy"
    params = _fireants_params([200, 100, 50], 2.0, "the warp")
    # 8 settings centred on FireANTs' LPBA40 settings ([200, 100, 50], lr 0.5, gradient
    # sigma 2), as adam_tuning centres ours: the iterations per level a third below and
    # above, the step halved and doubled, the gradient sigma 1 (the tutorial's) and 3
    tuning = {
        "iterations": [[133, 67, 33], [267, 133, 67]],
        "lr": bracket(0.5),
        "smooth_grad_sigma": [1.0, 3.0],
    }

    def registration(self, problem: Problem, fixed: Any, moving: Any, **common: Any) -> Any:
        from fireants.registration.greedy import GreedyRegistration

        return GreedyRegistration(fixed_images=fixed, moving_images=moving, **common)


class FireANTsSyN(_FireANTs):
    """FireANTs symmetric (SyN) registration: a warp from each image to a midpoint."""

    name = "fireants.syn"
    params = _fireants_params([100, 75, 50], 1.0, "each warp")
    # 8 settings centred on FireANTs' LPBA40 SyN settings ([100, 75, 50], lr 0.5,
    # gradient sigma 1): the iterations per level a third below and above, the step
    # halved and doubled, the gradient sigma half a voxel below and above
    tuning = {
        "iterations": [[67, 50, 33], [133, 100, 67]],
        "lr": bracket(0.5),
        "smooth_grad_sigma": [0.5, 1.5],
    }

    def registration(self, problem: Problem, fixed: Any, moving: Any, **common: Any) -> Any:
        from fireants.registration.syn import SyNRegistration

        return SyNRegistration(fixed_images=fixed, moving_images=moving, **common)
