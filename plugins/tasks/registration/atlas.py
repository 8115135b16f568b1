"""``registration.atlas``: estimate a template from a population made from a known one.

Data: ``plugins.data.registration.population``: ``subjects`` images of the MNI152 T1
template warped by exp(v_i) with zero-mean random SVFs v_i (so the true template is the
population's barycentre), plus noise. With ``attribute`` > 0 (or ``conditional``), the
population is ``conditional_population``: each subject has an attribute a_i (evenly in
[-1, 1]) and is made from its own true template T(a) = T(0) o exp(a w), w a SIMULATED
ventricle dilation of max ``attribute`` voxels, the v_i zero-mean and uncorrelated with a.

Model (the lecture author's atlas, rousseau/beo): the template A is a learned image
initialised to the first subject (``init: subject``, beo's choice; or the voxel-wise
mean) smoothed by a Gaussian of 1 voxel;
each subject has a stationary velocity v_i, phi_i = exp(v_i) (7 squarings through the
``svf_exp`` backend matching the ``backend`` slot's ``warp.*``). Loss, over all subjects
at once, Adam on A and the v_i:

    mean_i sim(A o phi_i, S_i) + weight * diffusion(v) + magnitude * mean |v|^2
        + barycentre * mean_x |mean_i disp_i(x)|^2

``barycentre`` 0 turns the penalty off (beo's weight is 1, gradient 1, magnitude 0.01).
One difference from beo: its gradient regulariser is the mean absolute difference (L1);
``diffusion`` here is the mean squared one, as the registration methods' (a user audit
found it unlabelled). The population is SIMULATED by the model it is estimated with:
each subject is exp(v_i) by 7 squarings, as every form estimates them, and T(a) =
T(0) o exp(a w) is the ``deformed`` form's own, which ``linear`` (A0 + a A1) can only
approximate: a comparison of forms on it favours ``deformed`` by construction.
``projection`` adds a hard constraint instead of (or beside) the penalty, after every
step (``plugins.tasks.registration.barycentre``): ``velocity`` makes the velocities
zero-mean (the mean displacement vanishes to first order in v), ``displacement`` makes
the mean displacement itself zero (a fixed-point correction of the velocities).

``conditional`` makes the template a function of the attribute
(``plugins.tasks.registration.templates``): ``linear``, A(a) = A0 + a A1 in image space;
``deformed``, A(a) = A0 o exp(a w), w a learned velocity regularised as the v_i are.
``implicit``, T_theta(x, a), a neural field of the ``encoding`` slot's plugin (siren,
hashgrid, ... of the fields family) on (x, a * ``attribute_scale``), read by each subject
at its moved points, each subject's velocity a SIREN (``velocities`` auto/neural), all
fitted by joint Adam after ``init_steps`` steps fitting the field to the start image
(``plugins.tasks.registration.implicit``). Subject i is matched to A(a_i), and the
barycentre penalty and projections apply to the least-squares fit of the deformations on
[1, a] (mean and slope), so the deformations cannot carry the attribute's effect.
``linear`` is the simpler (one more image, no warp) and the first-order expansion of
the true T(0) o exp(a w); ``deformed`` holds the truth exactly and cannot blend
intensities. On the published protocol (``results/published/registration-atlas-cpu``)
only ``deformed`` beats one template in every seed and at both ends of the attribute's
range: local NCC leaves ``linear``'s A1 free to carry local intensity changes.

Metrics: ``template_ncc`` and ``template_psnr`` of A (A(0) when conditional) against the
true template T(0) inside the brain (no alignment: a template that drifted away from the
population's centre scores lower); ``template_ncc_aligned`` / ``template_psnr_aligned``
the same once A is registered onto T(0) (an SVF by the cell's similarity, weight and
learning rate, 150 Adam steps, untimed), which leaves the template's intensity fidelity
(blur), and ``template_alignment_mm`` how far that registration moved it (mean |disp|
in the brain: the drift); ``mean_ncc``/``mean_psnr`` of the voxel-wise mean
image for reference, ``mean_deformation_mm`` (mean over the brain of |mean_i
disp_i(x)|), ``truth_mean_deformation_mm`` (the same for the true deformations: what
the true template scores, not zero) and ``mean_deformation_error_mm`` (mean over the
brain of |mean_i disp_i(x) - mean_i true_i(x)|: the headline's, whose best is the
truth; ``mean_deformation_mm`` alone ranked a template below the truth's own 0.09 mm
as better), ``sharpness`` (mean gradient magnitude of A over that of the
voxel-wise mean), ``label_dice`` (the subjects' labels carried to the template by
exp(-v_i), majority vote, against the true template's labels; not for a conditional
template, whose subjects land on different A(a_i)), ``subject_error_mm`` (mean error of
the disp_i to each subject's own true displacement: from T(0), or in a conditional
population from T(a_i), for every form alike, so that one table compares them on one
truth; a one-template atlas then carries the attribute's effect in its disp_i, which
is what a conditional template is for), ``subject_error_total_mm`` (``conditional:
none`` in a conditional population: the error to the displacements from T(0), which
are what its model can reach); the implicit template's and neural velocities'
parameters are n/a (None) in cells that do not use them, and refused where set;
``projection_passes`` (the displacement projection's mean passes per step). With an
attribute: ``attribute_ncc_low``/``_mid``/``_high`` (NCC inside the brain of A(a), or
the one template, against T(a) at a = -1, 0, 1) and their mean ``attribute_ncc``;
``attribute_ncc_oracle`` (the same for the best image-space template of the cell's
form, the least-squares fit of the true T(a_i) on 1 or on [1, a]; not for ``deformed``,
whose best is the truth); ``attribute_deformation_mm`` (mean over the brain of |slope
of disp_i in a|, mm per unit a: the attribute's effect the deformations took up);
``template_slope`` (``linear``: RMS of A1 in the brain) and ``template_slope_truth``
(the oracle's); ``template_velocity_mm`` (``deformed``: mean |w| in the brain, mm) and
``template_velocity_truth_mm`` (the true w's). With ``finer`` > 1 (a conditional
population, ``downsample`` a multiple of it): ``finer_ncc_low``/``_mid``/``_high`` and
their mean ``finer_ncc``, the template on a grid ``finer`` times finer against the truth
made on that grid (``ConditionalPopulation.template_at(a, finer)``): the implicit
template evaluated there, a grid template interpolated bilinearly;
``finer_ncc_interpolated`` (implicit only) its own training-grid image interpolated
instead; ``init_loss`` (implicit) the MSE left by the start fit. Files: the template
(A0) as NIfTI, and A1 for ``linear``; the subjects' estimated and true displacements
(``displacements``, ``true_displacements``: (*S, subject, axis) in voxels) and the
brain mask as NIfTI, what ``subject_error_mm`` and the mean deformation read (2-D
only, a few hundred KB; a 3-D population's would be tens of MB, and its seed redraws
the truth); a figure beside the truth and the mean; with an
attribute, a figure of the template at a = -1, 0, 1 beside the truth; with ``finer``,
the same on the finer grid (``finer.png``).

The implicit template against CINA (Dannecker et al., MICCAI 2024, conditional implicit
neural atlas; read in its authors' code, ``models/cina.py`` and ``atlas.py`` of
m-dannecker/CINeMA, the successor repository that keeps CINA's model):

- per-subject registration: CINA registers each subject to the atlas by a learned
  rigid transform of the coordinates only (6 parameters a subject, learned jointly),
  and represents each subject's own anatomy by a learned latent code (an auto-decoder:
  a small latent grid per subject, interpolated at x); here each subject has a
  diffeomorphic deformation (a SIREN velocity, exp by scaling and squaring) and no
  latent code, so the template at a is one field and the subjects' differences are
  deformations, held to zero mean and no slope in a as the grid templates' are;
- age conditioning: CINA normalises the age, scales it by 0.05 (``cond_scale``) and
  concatenates it to the latent code, which modulates chosen sine layers (a scale and
  a shift per unit, FiLM-like) and enters the last layer; its atlas at age t is the
  network at t with the Gaussian-kernel-weighted mean of the subjects' latent codes
  around t. Here a times ``attribute_scale`` (0.05, CINA's scale) is one more input
  coordinate of an unmodified encoding plugin, and T_theta(x, a) is the atlas itself;
- fit: CINA minimises L1 on intensities (and a segmentation loss) over random
  coordinate batches by AdamW (net 1e-4, latents 5e-4, rigid 7.5e-3) with a cosine
  schedule; here the cell's similarity (local NCC by default) on the whole grid, the
  velocities' diffusion and magnitude, by Adam at ``field_lr`` and ``velocity_lr``.
With the attribute scaled by 0.5 (and a field of width 128) the field memorised each
subject at its own a (attribute NCC 0.66 at 8 mm with 4 subjects, the a = 0 template a
blend of two subjects); at 0.05 and width 64, 0.90 (both changed at once). A small scale
keeps T_theta smooth in a, which makes it a template and not a table of subjects.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from bench import CellContext, Headline, Param, ParamError, Plugin, Slot, Task
from plugins.backends.base import WarpBackend
from plugins.data import registration as data
from plugins.encodings.base import FieldEncoding
from plugins.methods.registration.base import positive
from plugins.methods.registration.classical import SVF
from plugins.methods.registration.losses import diffusion, similarity
from plugins.methods.registration.problem import Problem
from plugins.tasks.registration import metrics as m
from plugins.tasks.registration.barycentre import PROJECTIONS, Design
from plugins.tasks.registration.figures import atlas_figure, attribute_figure
from plugins.tasks.registration.implicit import (
    GridVelocities,
    ImplicitTemplate,
    NeuralVelocities,
    normalised_grid,
)
from plugins.tasks.registration.pairwise import _odd, image_params, to_tensor
from plugins.tasks.registration.templates import FORMS, template_model

#: attribute values at which a template is compared with the truth (the population's range)
ATTRIBUTE_VALUES = (-1.0, 0.0, 1.0)

#: the subjects' velocity parametrisations (auto: neural for the implicit template)
VELOCITIES = ("auto", "grid", "neural")


#: the parameters only the implicit template uses, and only neural velocities use, with
#: their defaults where they are used (CINA's attribute scale 0.05; nodeo's omega0 8)
FORM_DEFAULTS = {
    "attribute_scale": 0.05, "field_lr": 1e-4, "init_steps": 200,
    "velocity_lr": 1e-4, "velocity_width": 64, "velocity_omega": 8.0,
}  # fmt: skip
IMPLICIT_ONLY = ("attribute_scale", "field_lr", "init_steps")
NEURAL_ONLY = ("velocity_lr", "velocity_width", "velocity_omega")
#: the lowest each takes (a width of at least 4; rates and scales above 0)
_FORM_LOW = {"init_steps": 0, "velocity_width": 4}


def _one_form(name: str, kind: type, doc: str) -> Param:
    """A parameter of one form: None (n/a) unless the cell's form uses it."""
    low = _FORM_LOW.get(name, 0.0)
    return Param(None, type=kind, low=low, low_open=name not in _FORM_LOW,
                 doc=f"{doc} ({FORM_DEFAULTS[name]:g} where used; n/a elsewhere)")  # fmt: skip


def neural_velocities(values: dict[str, Any]) -> bool:
    """Whether the subjects' velocities are SIRENs (``velocities``, resolved)."""
    if values["velocities"] == "auto":
        return values["conditional"] == "implicit"
    return values["velocities"] == "neural"


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / math.sqrt((a * a).sum() * (b * b).sum()))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    # peak 1: images are scaled so that the brain's 99th percentile is 1
    return float(10.0 * np.log10(1.0 / max(float(((a - b) ** 2).mean()), 1e-12)))


#: Adam iterations of the alignment of the estimated template onto the true one
ALIGN_ITERATIONS = 150


def align(
    ctx: CellContext,
    moving: np.ndarray,
    fixed: data.Image,
    warp: Any,
    exp: Any,
    values: dict[str, Any],
    iterations: int = ALIGN_ITERATIONS,
) -> tuple[np.ndarray, np.ndarray]:
    """``moving`` registered onto ``fixed`` by the family's own ``svf`` method (one level,
    ``iterations`` Adam steps, with the cell's similarity, window, weight, learning rate
    and squaring steps from ``values``; the atlas's deformations without their magnitude
    term), in a scratch context: the warped image and the displacement (voxels,
    (d, *shape)). Regularised, it moves a little less than the drift it undoes
    (measured 4.48 mm for 4.76 mm)."""
    fixed_t = to_tensor(fixed.data, ctx.device)[None, None]
    problem = Problem(
        fixed=fixed_t,
        moving=to_tensor(moving, ctx.device)[None, None],
        mask=to_tensor(fixed.mask, ctx.device)[None, None],
        spacing=fixed.spacing,
        similarity=similarity(values["similarity"], values["window"]),
        similarity_name=values["similarity"],
        window=values["window"],
        warp=warp,
        exp=exp,
        training_pairs=None,
        device=ctx.device,
    )
    method = SVF(
        iterations=iterations, lr=values["lr"], weight=values["weight"], levels=1,
        steps=values["steps"],
    )  # fmt: skip
    disp = method.solve(problem, ctx.scratch()).disp
    with torch.no_grad():
        out = warp(problem.moving, disp)
    return out[0, 0].double().cpu().numpy(), disp[0].double().cpu().numpy()


def _subject_error(disps: Any, truths: Any, spacing: Any, mask: np.ndarray) -> float:
    """Mean over the subjects of each displacement's error (mm) to its truth in ``mask``."""
    return float(np.mean([m.error_mm(d, t, spacing, mask) for d, t in zip(disps, truths)]))


def _sharpness(image: np.ndarray, mask: np.ndarray) -> float:
    grads = np.gradient(image)
    return float(np.sqrt(sum(g**2 for g in grads))[mask].mean())


class Atlas(Task):
    """Template estimation by SVFs, barycentre constraint on/off: distance to the truth."""

    name = "registration.atlas"
    headline = Headline(
        # a conditional population is judged by the template across the attribute (A(a)
        # against T(a) at a = -1, 0, 1): by A(0) alone a one template tied the deformed
        # conditional one (0.8819 against 0.8817) that is 0.12 closer across a; the
        # barycentre population, which has no attribute, by template_ncc
        quality={
            "attribute_ncc": "higher",
            "template_ncc": "higher",
            "mean_deformation_error_mm": "lower",
            "subject_error_mm": "lower",
        },
        cost="time.estimate.median",
        curves=("loss",),
        problem=(
            "dim",
            "resolution",
            "downsample",
            "amplitude",
            "noise",
            "subjects",
            "attribute",
            "population",
        ),
    )
    components = {
        "backend": Slot(WarpBackend, default="warp.eager"),
        "encoding": Slot(
            FieldEncoding, optional=True, doc="conditional implicit: the template's neural field"
        ),
    }
    params = {
        **image_params(),
        "subjects": Param(8, low=2, doc="population size"),
        "similarity": Param("ncc", choices=("mse", "ncc"), doc="template-to-subject similarity"),
        "window": Param(9, low=3, check=_odd, doc="local NCC window (voxels, odd)"),
        "barycentre": Param(1.0, low=0.0, doc="weight of |mean displacement|^2 (0: off)"),
        "weight": positive(1.0, "weight of the velocities' diffusion"),
        "magnitude": positive(0.01, "weight of mean |v|^2"),
        "iterations": Param(300, low=1, doc="Adam iterations"),
        "lr": positive(0.1, "Adam learning rate of the velocities (voxels)"),
        "template_lr": positive(0.01, "Adam learning rate of the template's intensities"),
        "steps": Param(7, low=0, high=12, doc="scaling-and-squaring steps"),
        "init": Param("subject", choices=("subject", "mean"), doc="template start (smoothed)"),
        "projection": Param(
            "none",
            choices=PROJECTIONS,
            doc="hard constraint after each step: zero-mean velocities or displacements",
        ),
        "attribute": Param(
            0.0, low=0.0, doc="SIMULATED ventricle dilation at a = 1 (max voxels; 0: none)"
        ),
        "population": Param(
            "barycentre",
            choices=("barycentre", "conditional"),
            doc="the subjects: barycentre (random velocities made zero mean), or conditional "
            "(attributes in [-1, 1], velocities with their fit on [1, a] removed), which an "
            "attribute or a conditional template takes when it is not given. Give "
            "conditional to compare a one-template atlas with conditional ones on the same "
            "subjects at attribute 0",
        ),
        "conditional": Param(
            "none",
            choices=FORMS,
            doc="template as a function of a: A0 + a A1, A0 o exp(a w), or a neural field T(x, a)",
        ),
        "velocities": Param(
            "auto",
            choices=VELOCITIES,
            doc="subjects' velocities: a grid each, or a SIREN each (auto: neural for implicit)",
        ),
        # one form's parameters: None (n/a) where the cell's form does not use them,
        # its default (FORM_DEFAULTS) where it does
        "attribute_scale": _one_form(
            "attribute_scale", float, "implicit: a enters the field as a * this"
        ),
        "field_lr": _one_form(
            "field_lr", float, "implicit: Adam learning rate of the template's network"
        ),
        "init_steps": _one_form(
            "init_steps", int, "implicit: Adam steps fitting the field to the start"
        ),
        "velocity_lr": _one_form(
            "velocity_lr", float, "neural velocities: Adam learning rate of their SIRENs"
        ),
        "velocity_width": _one_form(
            "velocity_width", int, "neural velocities: hidden width of each SIREN"
        ),
        "velocity_omega": _one_form(
            "velocity_omega", float, "neural velocities: SIREN frequency omega0"
        ),
        "finer": Param(
            1, low=1, high=4, doc="also score the template on a grid this many times finer (1: off)"
        ),
    }

    @classmethod
    def check_cell(cls, components: dict[str, type[Plugin]], params: dict[str, Any]) -> str | None:
        implicit = params.get("conditional") == "implicit"
        if implicit and "encoding" not in components:
            return "conditional implicit needs an encoding (the template's field: siren, ...)"
        if not implicit and "encoding" in components:
            return "an encoding is the implicit template's field: give conditional implicit"
        return None

    @classmethod
    def resolve_params(cls, values: dict[str, Any]) -> dict[str, Any]:
        v = super().resolve_params(values)
        plain = v["attribute"] == 0 and v["conditional"] == "none"
        if v["population"] == "barycentre" and not plain:
            if "population" in values:  # asked for: refused, never switched behind its back
                raise ParamError(
                    "population barycentre has no attributes: an attribute or a conditional "
                    "template needs population conditional"
                )
            v["population"] = "conditional"
        neural = neural_velocities(v)
        if neural and v["projection"] == "displacement":
            raise ParamError(
                "projection displacement edits grid velocities in place; neural velocities "
                "(conditional implicit, or velocities neural) take projection none or velocity"
            )
        if v["velocities"] == "grid" and v["conditional"] == "implicit":
            raise ParamError(
                "conditional implicit reads its template at the moved points of neural "
                "velocities; velocities grid is for the grid templates (use auto or neural)"
            )
        # parameters of one form only: n/a elsewhere (left out of labels, never shown as
        # a setting a cell did not use), and refused where a suite gives them
        for names, used, what in (
            (IMPLICIT_ONLY, v["conditional"] == "implicit", "conditional implicit"),
            (
                NEURAL_ONLY,
                neural,
                "a cell with neural velocities (conditional implicit, or velocities neural)",
            ),
        ):
            if used:
                v.update((k, FORM_DEFAULTS[k]) for k in names if v[k] is None)
                continue
            given = sorted(k for k in names if values.get(k) is not None)
            if given:
                them = "them" if len(given) > 1 else "it"
                raise ParamError(
                    f"{', '.join(given)}: only {what} takes {them} (this cell: conditional "
                    f"{v['conditional']}, velocities {v['velocities']}); set {them} in an "
                    "entry of that form"
                )
        if v["finer"] > 1:
            if v["population"] == "barycentre":
                raise ParamError(
                    "finer scores a template against the conditional population's truth: "
                    "give an attribute or a conditional template"
                )
            if v["downsample"] % v["finer"]:
                raise ParamError(
                    f"finer {v['finer']} needs a downsample it divides (the finer truth is "
                    f"the template block-averaged by downsample / finer), got downsample "
                    f"{v['downsample']}"
                )
        return v

    def population(self, seed: int) -> tuple[data.Image, list, list, Any]:
        """The truth T(0), the subjects, their own true displacements (from T(a_i) in a
        conditional population: the attribute's effect is not the subject's, whatever
        form the template takes), and the conditional population (None without one)."""
        v = self.values
        common = {
            "resolution": v["resolution"],
            "downsample": v["downsample"],
            "amplitude": v["amplitude"],
            "noise": v["noise"],
            "seed": seed,
        }
        if v["population"] == "barycentre":
            truth, subjects, disps = data.population(v["subjects"], v["dim"], **common)
            return truth, subjects, disps, None
        pop = data.conditional_population(v["subjects"], v["dim"], effect=v["attribute"], **common)
        return pop.template, pop.subjects, pop.disps, pop

    def run(self, ctx: CellContext) -> None:
        v = self.values
        truth, subjects, true_disps, pop = self.population(ctx.seed)
        warp_backend = ctx.components["backend"]
        exp = warp_backend.exp_backend()
        device, steps = ctx.device, v["steps"]
        images = torch.stack([to_tensor(s.data, device) for s in subjects])[:, None]
        mean_image = np.mean([s.data for s in subjects], axis=0)
        first = subjects[0].data if v["init"] == "subject" else mean_image
        start_image = to_tensor(ndimage.gaussian_filter(first, 1.0), device)[None, None]
        shape = truth.data.shape
        sim = similarity(v["similarity"], v["window"])

        def warp(image: torch.Tensor, disp: torch.Tensor) -> torch.Tensor:
            return warp_backend(image, disp, mode="bilinear", padding="zeros")

        def exponential(velocity: torch.Tensor) -> torch.Tensor:
            return exp(velocity, steps=steps, padding="zeros")

        attributes, design = None, Design()
        if v["conditional"] != "none":
            attributes = torch.as_tensor(pop.attributes, dtype=torch.float32, device=device)
            design = Design(attributes)
        if v["conditional"] == "implicit":
            model = ImplicitTemplate(
                start_image,
                attributes,
                warp,
                exponential,
                ctx.components["encoding"],
                v["attribute_scale"],
            )
        else:
            model = template_model(v["conditional"], start_image, attributes, warp, exponential)
        if neural_velocities(v):
            fields = NeuralVelocities(
                len(subjects), shape, device, v["velocity_width"], v["velocity_omega"],
                design if v["projection"] == "velocity" else None,
            )  # fmt: skip
            field_groups = [{"params": fields.parameters, "lr": v["velocity_lr"]}]
        else:
            fields = GridVelocities(len(subjects), shape, device)
            field_groups = [{"params": fields.parameters, "lr": v["lr"]}]
        vel = fields.field() if isinstance(fields, GridVelocities) else None

        def loss() -> torch.Tensor:
            vel = fields.field()
            disp = exponential(vel)
            value = sim(model.warped(disp), images) + v["weight"] * diffusion(vel)
            value = value + v["magnitude"] * (vel**2).mean()
            value = value + model.regulariser(v["weight"], v["magnitude"])
            if v["barycentre"] > 0:
                value = value + v["barycentre"] * design.penalty(disp)
            return value

        groups = [
            *field_groups,
            {"params": model.velocities, "lr": v["lr"]},
            {"params": model.images, "lr": v["template_lr"]},
            {"params": model.networks, "lr": v["field_lr"]},
        ]
        opt = torch.optim.Adam([g for g in groups if g["params"]])
        passes = 0
        start = time.perf_counter()
        with ctx.memory("estimate"):
            if isinstance(model, ImplicitTemplate):
                fitted = model.fit_start(v["init_steps"], v["field_lr"])
                ctx.metric("init_loss", fitted)
                ctx.check_finite("init_loss", fitted)
            for it in range(v["iterations"]):
                opt.zero_grad(set_to_none=True)
                value = loss()
                number = float(value.detach())
                if it % 10 == 0 or it == v["iterations"] - 1 or number != number:
                    ctx.curve("loss", it, number, time.perf_counter() - start)
                ctx.check_finite("loss", number)
                value.backward()
                opt.step()
                if vel is None:  # neural velocities: projected in their forward pass
                    continue
                if v["projection"] == "velocity":
                    design.project_velocities(vel)
                elif v["projection"] == "displacement":
                    passes += design.project_displacements(vel, exponential)
            if device.startswith("cuda"):
                torch.cuda.synchronize(device)
        ctx.add_time("estimate", time.perf_counter() - start)
        if v["projection"] == "displacement":
            ctx.metric("projection_passes", passes / v["iterations"])
        with torch.no_grad():
            final = fields.field().detach()
            disps = exponential(final).double().cpu().numpy()
            inverses = exponential(-final).double().cpu().numpy()
        estimate = model.at(0.0).astype(np.float32)
        self.record(ctx, truth, subjects, true_disps, estimate, mean_image, disps, inverses)
        # Untimed: the template against the truth once aligned onto it, which leaves
        # intensity fidelity; and how far it had to move (its drift from the truth)
        aligned, moved = align(
            ctx, estimate, truth, warp, lambda vel, n: exp(vel, steps=n, padding="zeros"), v
        )
        mask = truth.mask
        ctx.metric("template_ncc_aligned", _ncc(aligned[mask], truth.data[mask]))
        ctx.metric("template_psnr_aligned", _psnr(aligned[mask], truth.data[mask]))
        ctx.metric("template_alignment_mm", m.error_mm(moved, 0 * moved, truth.spacing, mask))
        if pop is not None:
            if v["conditional"] == "none":  # what a one-template model can reach
                total = _subject_error(disps, pop.totals, truth.spacing, mask)
                ctx.metric("subject_error_total_mm", total)
            self.record_attribute(ctx, pop, model, disps)
        if v["finer"] > 1:
            self.record_finer(ctx, pop, model)

    def record(self, ctx, truth, subjects, true_disps, estimate, mean_image, disps, inverses):
        mask = truth.mask
        ctx.check_finite("template", torch.as_tensor(estimate))
        ctx.metric("template_ncc", _ncc(estimate[mask], truth.data[mask]))
        ctx.metric("template_psnr", _psnr(estimate[mask], truth.data[mask]))
        ctx.metric("mean_ncc", _ncc(mean_image[mask], truth.data[mask]))
        ctx.metric("mean_psnr", _psnr(mean_image[mask], truth.data[mask]))
        spacing = truth.spacing
        ctx.metric("mean_deformation_mm", m.error_mm(disps.mean(0), 0 * disps[0], spacing, mask))
        true_mean = np.mean(true_disps, axis=0)
        ctx.metric("truth_mean_deformation_mm", m.error_mm(true_mean, 0 * true_mean, spacing, mask))
        # the truth's own mean is not zero (0.09 mm on the published population): lower
        # is better only as a distance to it
        ctx.metric("mean_deformation_error_mm", m.error_mm(disps.mean(0), true_mean, spacing, mask))
        ctx.metric("subject_error_mm", _subject_error(disps, true_disps, spacing, mask))
        sizes = [m.error_mm(0 * t, t, spacing, mask) for t in true_disps]
        ctx.metric("subject_deformation_mm", float(np.mean(sizes)))
        ctx.metric("sharpness", _sharpness(estimate, mask) / _sharpness(mean_image, mask))
        ctx.metric("sharpness_truth", _sharpness(truth.data, mask) / _sharpness(mean_image, mask))
        if self.values["conditional"] == "none":
            votes = np.stack(
                [
                    np.rint(data.warp_array(s.labels, inv, mode="nearest")).astype(np.int64)
                    for s, inv in zip(subjects, inverses)
                ]
            )
            counts = np.stack([(votes == k).sum(0) for k in range(4)])
            labels = counts.argmax(0)
            ctx.metric("label_dice", m.mean_dice(truth.labels, labels))
        ctx.artifact("template", estimate.astype(np.float32), affine=truth.affine)
        # what subject_error_mm and the mean deformation read, so that they can be
        # recomputed from the cell's folder (a user audit could not): (*S, subject, axis)
        # in voxels, float32, the estimate's and the truth's; the brain mask is the truth's.
        # 2-D only: a 3-D population's would be tens of MB (the seed redraws the truth)
        if truth.data.ndim == 2:
            for name, fields in (("displacements", disps), ("true_displacements", true_disps)):
                stacked = np.moveaxis(np.asarray(fields, dtype=np.float32), (0, 1), (-2, -1))
                ctx.artifact(name, stacked, affine=truth.affine)
            ctx.artifact("brain_mask", truth.mask.astype(np.uint8), affine=truth.affine)
        title = f"atlas of {len(subjects)} subjects, {self.constraint()}, seed {ctx.seed}"
        ctx.artifact("atlas", atlas_figure(truth.data, mean_image, estimate, title))

    def constraint(self) -> str:
        """The barycentre handling, in words, for figure titles."""
        weight = self.values["barycentre"]
        words = f"barycentre penalty {weight:g}" if weight > 0 else "no barycentre penalty"
        if self.values["projection"] != "none":
            words += f", zero-mean {self.values['projection']} projection"
        return words

    def record_attribute(self, ctx, pop, model, disps):
        """The template across the attribute against the truth (see the module's doc)."""
        v = self.values
        trues = [pop.template_at(a) for a in ATTRIBUTE_VALUES]
        estimates = [model.at(a) for a in ATTRIBUTE_VALUES]
        scores = [_ncc(e[t.mask], t.data[t.mask]) for e, t in zip(estimates, trues)]
        for name, score in zip(("low", "mid", "high"), scores):
            ctx.metric(f"attribute_ncc_{name}", score)
        ctx.metric("attribute_ncc", float(np.mean(scores)))
        if v["conditional"] in ("none", "linear"):
            # the best template of this image-space form: the least-squares fit, over the
            # population's attributes, of the true templates on 1 or on [1, a] (the
            # deformed form holds the truth exactly: its best is 1)
            own = np.stack([pop.template_at(a).data for a in pop.attributes]).astype(np.float64)
            columns = [np.ones_like(pop.attributes)]
            if v["conditional"] == "linear":
                columns.append(pop.attributes)
            coef = np.tensordot(np.linalg.pinv(np.stack(columns, axis=1)), own, axes=1)
            slope = coef[1] if len(coef) > 1 else 0.0
            oracles = [coef[0] + a * slope for a in ATTRIBUTE_VALUES]
            best = [_ncc(o[t.mask], t.data[t.mask]) for o, t in zip(oracles, trues)]
            ctx.metric("attribute_ncc_oracle", float(np.mean(best)))
        mask, spacing, affine = pop.template.mask, pop.template.spacing, pop.template.affine
        a = pop.attributes - pop.attributes.mean()
        trend = np.tensordot(a / (a**2).sum(), disps, axes=1)
        ctx.metric("attribute_deformation_mm", m.error_mm(trend, 0 * trend, spacing, mask))
        if v["conditional"] == "linear":
            increment = model.increment.detach()[0, 0].cpu().numpy()
            ctx.metric("template_slope", float(np.sqrt((increment[mask] ** 2).mean())))
            ctx.metric("template_slope_truth", float(np.sqrt((coef[1][mask] ** 2).mean())))
            ctx.artifact("template_slope", increment.astype(np.float32), affine=affine)
        if v["conditional"] == "deformed":
            w = model.velocity.detach()[0].double().cpu().numpy()
            ctx.metric("template_velocity_mm", m.error_mm(w, 0 * w, spacing, mask))
            truth = pop.effect.astype(np.float64)
            ctx.metric("template_velocity_truth_mm", m.error_mm(truth, 0 * truth, spacing, mask))
        kinds = {
            "none": "one template",
            "linear": "A0 + a A1",
            "deformed": "A0 o exp(a w)",
            "implicit": "neural field T(x, a)",
        }
        title = (
            f"{kinds[v['conditional']]}, ventricle dilation {v['attribute']:g} voxels at a = 1, "
            f"{self.constraint()}, seed {ctx.seed}"
        )
        figure = attribute_figure([t.data for t in trues], estimates, ATTRIBUTE_VALUES, title)
        ctx.artifact("attribute", figure)

    def record_finer(self, ctx, pop, model):
        """The template on a grid ``finer`` times finer against the truth made there
        (``ConditionalPopulation.template_at(a, finer)``): the implicit template evaluated
        there, a grid template (and, for reference, the implicit one's training-grid
        image) interpolated there bilinearly."""
        finer = self.values["finer"]
        trues = [pop.template_at(a, finer) for a in ATTRIBUTE_VALUES]
        coarse = [model.at(a) for a in ATTRIBUTE_VALUES]
        upsampled = [interpolate(image, finer) for image in coarse]
        if isinstance(model, ImplicitTemplate):
            estimates = [model.on_grid(a, finer) for a in ATTRIBUTE_VALUES]
            scores = [_ncc(u[t.mask], t.data[t.mask]) for u, t in zip(upsampled, trues)]
            ctx.metric("finer_ncc_interpolated", float(np.mean(scores)))
        else:
            estimates = upsampled
        scores = [_ncc(e[t.mask], t.data[t.mask]) for e, t in zip(estimates, trues)]
        for name, score in zip(("low", "mid", "high"), scores):
            ctx.metric(f"finer_ncc_{name}", score)
        ctx.metric("finer_ncc", float(np.mean(scores)))
        title = (
            f"{self.values['conditional']} template on a grid {finer}x finer than trained "
            f"({'evaluated' if isinstance(model, ImplicitTemplate) else 'bilinear'}), "
            f"seed {ctx.seed}"
        )
        figure = attribute_figure([t.data for t in trues], estimates, ATTRIBUTE_VALUES, title)
        ctx.artifact("finer", figure)


def interpolate(image: np.ndarray, finer: int) -> np.ndarray:
    """``image`` read bilinearly (border) at the points of the grid ``finer`` times finer
    (``implicit.normalised_grid``)."""
    shape = image.shape
    points = normalised_grid(shape, finer, "cpu", torch.float64)
    grid = points.flip(-1).reshape(1, *[n * finer for n in shape], len(shape))
    source = torch.from_numpy(np.asarray(image, dtype=np.float64))[None, None]
    out = torch.nn.functional.grid_sample(
        source, grid, mode="bilinear", padding_mode="border", align_corners=True
    )
    return out[0, 0].numpy()
