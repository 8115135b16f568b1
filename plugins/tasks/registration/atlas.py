"""``registration.atlas``: estimate a template from a population made from a known one.

Data: ``plugins.data.registration.population``: ``subjects`` images of the MNI152 T1
template warped by exp(v_i) with zero-mean random SVFs v_i (so the true template is the
population's barycentre), plus noise.

Model (the lecture author's atlas, rousseau/beo): the template A is a learned image
initialised to the first subject (``init: subject``, beo's choice; or the voxel-wise
mean) smoothed by a Gaussian of 1 voxel;
each subject has a stationary velocity v_i, phi_i = exp(v_i) (7 squarings through the
``svf_exp`` backend matching the ``backend`` slot's ``warp.*``). Loss, over all subjects
at once, Adam on A and the v_i:

    mean_i sim(A o phi_i, S_i) + weight * diffusion(v) + magnitude * mean |v|^2
        + barycentre * mean_x |mean_i disp_i(x)|^2

``barycentre`` 0 turns the penalty off (beo's weight is 1, gradient 1, magnitude 0.01).
``projection: true`` adds a hard constraint instead of (or beside) the penalty: after
every step the velocities are made zero-mean (mean_i v_i = 0, so the mean displacement
vanishes to first order in v). Metrics: ``template_ncc`` and ``template_psnr`` of A
against the true template inside the brain (no alignment: a template that drifted away
from the population's centre scores lower), ``mean_ncc``/``mean_psnr`` of the voxel-wise
mean image for reference, ``mean_deformation_mm`` (mean over the brain of |mean_i
disp_i(x)|), ``sharpness`` (mean gradient magnitude of A over that of the voxel-wise
mean), ``label_dice`` (the subjects' labels carried to the template by exp(-v_i),
majority vote, against the true template's labels), ``subject_error_mm`` (mean error of
the disp_i to the true ones). Files: the template as NIfTI and a figure beside the truth
and the mean.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from scipy import ndimage

from bench import CellContext, Param, Plugin, Task
from plugins.data import registration as data
from plugins.methods.registration.base import positive
from plugins.methods.registration.losses import diffusion, similarity
from plugins.tasks.registration import metrics as m
from plugins.tasks.registration.figures import atlas_figure
from plugins.tasks.registration.pairwise import _odd, exp_backend, image_params, to_tensor


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / math.sqrt((a * a).sum() * (b * b).sum()))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    # peak 1: images are scaled so that the brain's 99th percentile is 1
    return float(10.0 * np.log10(1.0 / max(float(((a - b) ** 2).mean()), 1e-12)))


def _sharpness(image: np.ndarray, mask: np.ndarray) -> float:
    grads = np.gradient(image)
    return float(np.sqrt(sum(g**2 for g in grads))[mask].mean())


class Atlas(Task):
    """Template estimation by SVFs, barycentre constraint on/off: distance to the truth."""

    name = "registration.atlas"
    components = {"backend": "backend"}
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
        "projection": Param(False, doc="hard constraint: make the velocities zero-mean each step"),
    }

    @classmethod
    def check_component(cls, slot: str, plugin: type[Plugin]) -> str | None:
        if getattr(plugin, "op", "") != "warp":
            return (
                f"it implements {getattr(plugin, 'op', '')!r}; the slot takes a warp backend "
                "(the svf_exp backend of the same implementation is derived from it)"
            )
        return None

    def run(self, ctx: CellContext) -> None:
        v = self.values
        truth, subjects, true_disps = data.population(
            v["subjects"],
            v["dim"],
            resolution=v["resolution"],
            downsample=v["downsample"],
            amplitude=v["amplitude"],
            noise=v["noise"],
            seed=ctx.seed,
        )
        warp_backend = ctx.components["backend"]
        exp = exp_backend(warp_backend)
        device, steps = ctx.device, v["steps"]
        images = torch.stack([to_tensor(s.data, device) for s in subjects])[:, None]
        mean_image = np.mean([s.data for s in subjects], axis=0)
        first = subjects[0].data if v["init"] == "subject" else mean_image
        start_image = ndimage.gaussian_filter(first, 1.0)
        template = to_tensor(start_image, device)[None, None].requires_grad_()
        shape = truth.data.shape
        vel = torch.zeros((len(subjects), len(shape), *shape), device=device, requires_grad=True)
        sim = similarity(v["similarity"], v["window"])

        def warp(image: torch.Tensor, disp: torch.Tensor) -> torch.Tensor:
            return warp_backend(image, disp, mode="bilinear", padding="zeros")

        def loss() -> torch.Tensor:
            disp = exp(vel, steps=steps, padding="zeros")
            warped = warp(template.expand(len(subjects), -1, *shape), disp)
            value = sim(warped, images) + v["weight"] * diffusion(vel)
            value = value + v["magnitude"] * (vel**2).mean()
            if v["barycentre"] > 0:
                value = value + v["barycentre"] * (disp.mean(0) ** 2).sum(0).mean()
            return value

        opt = torch.optim.Adam(
            [{"params": [vel], "lr": v["lr"]}, {"params": [template], "lr": v["template_lr"]}]
        )
        start = time.perf_counter()
        with ctx.memory("estimate"):
            for it in range(v["iterations"]):
                opt.zero_grad(set_to_none=True)
                value = loss()
                number = float(value.detach())
                if it % 10 == 0 or it == v["iterations"] - 1 or number != number:
                    ctx.curve("loss", it, number, time.perf_counter() - start)
                ctx.check_finite("loss", number)
                value.backward()
                opt.step()
                if v["projection"]:
                    with torch.no_grad():  # mean_i v_i = 0: the barycentre, to first order
                        vel -= vel.mean(0, keepdim=True)
            if device.startswith("cuda"):
                torch.cuda.synchronize(device)
        ctx.add_time("estimate", time.perf_counter() - start)
        with torch.no_grad():
            disps = exp(vel.detach(), steps=steps, padding="zeros").double().cpu().numpy()
            inverses = exp(-vel.detach(), steps=steps, padding="zeros").double().cpu().numpy()
        estimate = template.detach()[0, 0].cpu().numpy()
        self.record(ctx, truth, subjects, true_disps, estimate, mean_image, disps, inverses)

    def record(self, ctx, truth, subjects, true_disps, estimate, mean_image, disps, inverses):
        mask = truth.mask
        ctx.check_finite("template", torch.as_tensor(estimate))
        ctx.metric("template_ncc", _ncc(estimate[mask], truth.data[mask]))
        ctx.metric("template_psnr", _psnr(estimate[mask], truth.data[mask]))
        ctx.metric("mean_ncc", _ncc(mean_image[mask], truth.data[mask]))
        ctx.metric("mean_psnr", _psnr(mean_image[mask], truth.data[mask]))
        spacing = truth.spacing
        ctx.metric("mean_deformation_mm", m.error_mm(disps.mean(0), 0 * disps[0], spacing, mask))
        errors = [m.error_mm(d, t, spacing, mask) for d, t in zip(disps, true_disps)]
        ctx.metric("subject_error_mm", float(np.mean(errors)))
        sizes = [m.error_mm(0 * t, t, spacing, mask) for t in true_disps]
        ctx.metric("subject_deformation_mm", float(np.mean(sizes)))
        ctx.metric("sharpness", _sharpness(estimate, mask) / _sharpness(mean_image, mask))
        ctx.metric("sharpness_truth", _sharpness(truth.data, mask) / _sharpness(mean_image, mask))
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
        weight = self.values["barycentre"]
        constraint = f"barycentre penalty {weight:g}" if weight > 0 else "no barycentre penalty"
        if self.values["projection"]:
            constraint += ", zero-mean projection"
        title = f"atlas of {len(subjects)} subjects, {constraint}, seed {ctx.seed}"
        ctx.artifact("atlas", atlas_figure(truth.data, mean_image, estimate, title))
