"""``syn``: ANTs SyN (Avants 2008) through antspyx, an optional dependency.

The images go to ANTs with unit spacing, zero origin and identity direction, so ANTs'
physical space is the voxel index space and its displacement fields are in voxels along
the array axes. ``type_of_transform="SyNOnly"`` (no affine stage: the synthetic pairs
differ by a deformation only). Similarity: ``mse`` -> MeanSquares, ``ncc`` -> CC with
radius window // 2, ``mi`` -> Mattes MI (32 bins). ANTs runs on the CPU whatever the
cell's device, with as many ITK threads as the cell's torch threads; it never uses the
cell's warp backend (its own is ITK's).
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import torch

from bench import CellContext, Param
from plugins.methods.registration.base import RegistrationMethod, positive
from plugins.methods.registration.problem import Problem, Result


def _iterations(value: list) -> str | None:
    if not value or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in value
    ):
        return f"expected a list of iteration counts >= 0 per level, got {value!r}"
    return None


class SyN(RegistrationMethod):
    """ANTs SyN via antspyx (SyNOnly); skipped where antspyx is not installed."""

    name = "syn"
    requires = ("ants",)
    params = {
        "iterations": Param([40, 20, 10], check=_iterations, doc="SyN iterations per level"),
        "grad_step": positive(0.2, "SyN gradient step"),
        "flow_sigma": Param(3.0, low=0.0, doc="smoothing of the update field (voxels)"),
        "total_sigma": Param(0.0, low=0.0, doc="smoothing of the total field (voxels)"),
    }
    #: 8 settings centred on the defaults (antspy's own grad_step 0.2 and flow_sigma 3):
    #: the iterations per level a half below and above (40/20/10 -> 20/10/5, 60/30/15),
    #: the gradient step 0.1 (antsRegistrationSyN.sh's) and 0.3, the update field's
    #: smoothing 2 and 4 voxels; total_sigma stays 0 as in antspy and ANTs' scripts
    tuning = {
        "iterations": [[20, 10, 5], [60, 30, 15]],
        "grad_step": [0.1, 0.3],
        "flow_sigma": [2.0, 4.0],
    }

    def prepare(self, device: str) -> None:
        """antspyx's import (6 s on the 2-core CPU), off the first registration's clock."""
        import ants  # noqa: F401

    def _field(self, path: str, ndim: int) -> np.ndarray:
        import ants

        field = ants.image_read(path).numpy()  # (*S, ndim)
        return np.moveaxis(field, -1, 0).astype(np.float32)

    def _check_identity(self, path: str, ndim: int) -> None:
        import ants

        params = np.asarray(ants.read_transform(path).parameters, dtype=np.float64)
        identity = np.concatenate([np.eye(ndim).ravel(), np.zeros(ndim)])
        if params.shape != identity.shape or not np.allclose(params, identity, atol=1e-6):
            raise RuntimeError(f"SyNOnly's initial transform is not the identity: {params}")

    def solve(self, problem: Problem, ctx: CellContext) -> Result:
        import ants

        v = self.values
        os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(torch.get_num_threads())
        fixed = ants.from_numpy(problem.fixed[0, 0].detach().cpu().numpy().astype(np.float32))
        moving = ants.from_numpy(problem.moving[0, 0].detach().cpu().numpy().astype(np.float32))
        metric = {"mse": "meansquares", "ncc": "CC", "mi": "mattes"}[problem.similarity_name]
        sampling = problem.window // 2 if metric == "CC" else 32
        with tempfile.TemporaryDirectory() as tmp:
            out = ants.registration(
                fixed,
                moving,
                type_of_transform="SyNOnly",
                syn_metric=metric,
                syn_sampling=sampling,
                reg_iterations=tuple(v["iterations"]),
                grad_step=v["grad_step"],
                flow_sigma=v["flow_sigma"],
                total_sigma=v["total_sigma"],
                outprefix=os.path.join(tmp, "syn"),
                random_seed=ctx.seed,
            )
            warps = [p for p in out["fwdtransforms"] if p.endswith((".nii.gz", ".nii"))]
            inverse_warps = [p for p in out["invtransforms"] if p.endswith((".nii.gz", ".nii"))]
            for path in out["fwdtransforms"]:
                if path.endswith(".mat"):  # SyNOnly adds its identity initial transform
                    self._check_identity(path, problem.ndim)
            if len(warps) != 1 or len(inverse_warps) != 1:
                raise RuntimeError(f"SyNOnly returned transforms {out['fwdtransforms']}")
            disp = self._field(warps[0], problem.ndim)
            inverse = self._field(inverse_warps[0], problem.ndim)
        to = {"device": problem.device, "dtype": torch.float32}
        return Result(torch.as_tensor(disp, **to)[None], torch.as_tensor(inverse, **to)[None])
