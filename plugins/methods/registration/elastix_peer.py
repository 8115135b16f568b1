"""``elastix.bspline``: elastix's B-spline free-form registration (Klein, Staring et al.)
through itk-elastix, an optional dependency (``pip install itk-elastix``; the
``peers-registration`` extra).

elastix's default ``bspline`` parameter map (4 smoothing-pyramid levels, a cubic
B-spline transform on a grid of 10 mm at the finest level, adaptive stochastic gradient
descent with its automatic step size, 2048 random samples an iteration, the bending
energy penalty beside the similarity), with the similarity set by the cell: ``mse`` ->
AdvancedMeanSquares, ``ncc`` -> AdvancedNormalizedCorrelation (global: elastix has no
local NCC), ``mi`` -> AdvancedMattesMutualInformation (its default). The images go to it
as ITK images built in memory with the fixed image's spacing, zero origin and identity
direction (ITK's index order is the array's reversed). Its transform, evaluated by
transformix as a deformation field on the fixed grid (physical mm, component 0 along
ITK's x = the LAST array axis), becomes our displacement: components reversed to
array-axis order and divided by the spacing, so ``warped(x) = moving(x + disp(x))``
as ours. With ``FinalBSplineInterpolationOrder`` 1 its own resampled image is what our
warp of that displacement gives (tests/plugins/registration/test_peers.py checks it).

elastix writes its per-iteration metric only to files: they go to a temporary folder
inside the cell's folder (the system's where the cell keeps no files), read back as the
``loss`` curve (the cost at each iteration, all levels in a row; the seconds are
elastix's own) and removed. Its sampler's seed is elastix's fixed default, so a cell
is deterministic. It runs on the CPU with ONE thread (itk-elastix 0.25.4 segfaults here with two),
never with the cell's warp backend (its own is ITK's).
"""

from __future__ import annotations

import glob
import os
import tempfile
from typing import Any

import numpy as np
import torch

from bench import CellContext, Param
from plugins.methods.registration.base import (
    RegistrationMethod,
    bracket,
    count_bracket,
    positive,
)
from plugins.methods.registration.fireants_peer import missing_module
from plugins.methods.registration.problem import Problem, Result

INSTALL = "pip install itk-elastix (the peers-registration extra)"
METRICS = {
    "mse": "AdvancedMeanSquares",
    "ncc": "AdvancedNormalizedCorrelation",
    "mi": "AdvancedMattesMutualInformation",
}


def to_itk(image: torch.Tensor, spacing: tuple[float, ...]) -> Any:
    import itk

    array = np.ascontiguousarray(image[0, 0].detach().cpu().numpy(), dtype=np.float32)
    out = itk.image_from_array(array)
    out.SetSpacing([float(s) for s in reversed(spacing)])
    return out


def field_to_displacement(field: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """transformix's deformation field (*S, ndim) in mm, component 0 along the last array
    axis -> our displacement (ndim, *S) in voxels along the array axes."""
    voxels = field[..., ::-1] / np.asarray(spacing, dtype=np.float64)
    return np.moveaxis(voxels, -1, 0).astype(np.float32)


def read_curve(folder: str) -> list[tuple[float, float]]:
    """(cost, elastix's seconds since the start) of every iteration, level after level,
    from elastix's IterationInfo files."""
    points: list[tuple[float, float]] = []
    elapsed = 0.0
    for path in sorted(glob.glob(os.path.join(folder, "IterationInfo.0.R*.txt"))):
        with open(path) as fh:
            header = fh.readline().split("\t")
            cost = header.index("2:Metric")
            ms = header.index("Time[ms]") if "Time[ms]" in header else None
            for line in fh:
                cells = line.rstrip("\n").split("\t")
                if len(cells) <= cost:
                    continue
                if ms is not None and len(cells) > ms and cells[ms].strip():
                    elapsed += float(cells[ms]) / 1000.0
                points.append((float(cells[cost]), elapsed))
    return points


class ElastixBSpline(RegistrationMethod):
    """elastix B-spline FFD (default bspline map, ASGD) via itk-elastix."""

    name = "elastix.bspline"
    requires = ("itk", "itk.ElastixPython")
    similarities = tuple(METRICS)
    params = {
        "iterations": Param(256, low=1, doc="ASGD iterations at each level"),
        "levels": Param(4, low=1, high=6, doc="smoothing-pyramid levels"),
        "grid_spacing": positive(10.0, "B-spline control-point spacing at the finest level (mm)"),
        "bending_weight": Param(
            1.0, low=0.0, doc="weight of the bending energy penalty (the similarity's is 1)"
        ),
        "samples": Param(2048, low=64, doc="random spatial samples an iteration"),
    }
    # 8 settings centred on elastix's default map (256 iterations, 10 mm grid, bending
    # weight 1), as adam_tuning centres ours: the iterations a third below and above,
    # the grid spacing and the bending weight halved and doubled. ASGD sets its own
    # step (automatic parameter estimation): no learning rate to tune.
    tuning = {
        "iterations": count_bracket(256),
        "grid_spacing": bracket(10.0),
        "bending_weight": bracket(1.0),
    }

    @classmethod
    def missing_requirement(cls) -> str | None:
        return missing_module(cls.name, cls.requires, INSTALL)

    def prepare(self, device: str) -> None:
        """ITK loads its modules lazily, at an attribute's first use: 27 s for these
        on the 2-core CPU, which the first timed registration of a worker would count."""
        import itk

        for name in ("image_from_array", "array_from_image", "ParameterObject",
                     "ElastixRegistrationMethod", "TransformixFilter"):  # fmt: skip
            getattr(itk, name)

    def parameter_map(self, similarity: str, interpolation_order: int = 3) -> Any:
        import itk

        v = self.values
        po = itk.ParameterObject.New()
        pm = po.GetDefaultParameterMap("bspline", v["levels"], float(v["grid_spacing"]))
        metrics = [METRICS[similarity]]
        if v["bending_weight"] > 0:
            metrics.append("TransformBendingEnergyPenalty")
            pm["Metric1Weight"] = [str(float(v["bending_weight"]))]
        pm["Metric"] = metrics
        pm["Metric0Weight"] = ["1.0"]
        if len(metrics) == 1:
            del pm["Metric1Weight"]
        pm["MaximumNumberOfIterations"] = [str(v["iterations"])]
        pm["NumberOfSpatialSamples"] = [str(v["samples"])]
        pm["FinalBSplineInterpolationOrder"] = [str(interpolation_order)]
        pm["WriteIterationInfo"] = ["true"]
        pm["WriteResultImage"] = ["false"]
        po.AddParameterMap(pm)
        return po

    def register(
        self, problem: Problem, ctx: CellContext, interpolation_order: int = 3
    ) -> tuple[Any, Any, list[tuple[float, float]]]:
        """elastix's run: (the registration object, its transform parameters, the curve)."""
        import itk

        fixed = to_itk(problem.fixed, problem.spacing)
        moving = to_itk(problem.moving, problem.spacing)
        where = str(ctx.files_dir) if ctx.files_dir is not None else None
        if where is not None:
            os.makedirs(where, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="elastix-", dir=where) as tmp:
            el = itk.ElastixRegistrationMethod.New(fixed, moving)
            el.SetParameterObject(self.parameter_map(problem.similarity_name, interpolation_order))
            el.SetLogToConsole(False)
            # itk-elastix 0.25.4 segfaults in this map's registration with more than one
            # thread (measured on 39x33 and 117x99 slices, 2 threads): one thread always
            el.SetNumberOfThreads(1)
            el.SetOutputDirectory(tmp)
            el.UpdateLargestPossibleRegion()
            curve = read_curve(tmp)
        return el, el.GetTransformParameterObject(), curve

    def displacement(self, problem: Problem, transform: Any) -> np.ndarray:
        import itk

        transformix = itk.TransformixFilter.New(to_itk(problem.moving, problem.spacing))
        transformix.SetTransformParameterObject(transform)
        transformix.ComputeDeformationFieldOn()
        transformix.SetLogToConsole(False)
        # transformix writes deformationField.nii to its output folder (the working
        # directory unless told): a temporary one, removed
        with tempfile.TemporaryDirectory(prefix="transformix-") as tmp:
            transformix.SetOutputDirectory(tmp)
            transformix.UpdateLargestPossibleRegion()
            field = itk.array_from_image(transformix.GetOutputDeformationField()).copy()
        return field_to_displacement(np.asarray(field, dtype=np.float64), problem.spacing)

    def solve(self, problem: Problem, ctx: CellContext) -> Result:
        _, transform, curve = self.register(problem, ctx)
        for step, (cost, seconds) in enumerate(curve):
            if step % 10 == 0 or step == len(curve) - 1 or cost != cost:
                ctx.curve("loss", step, cost, seconds)
        if curve:
            ctx.check_finite("loss", curve[-1][0])
        disp = self.displacement(problem, transform)
        return Result(torch.as_tensor(disp, device=problem.device, dtype=torch.float32)[None])
