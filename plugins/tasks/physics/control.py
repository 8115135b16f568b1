"""``physics.density_control``: find a velocity that carries a density to a target.

A 2-D density d0 (a Gaussian blob, or a grey-matter slice of the MNI152 template) is
advected for ``steps`` semi-Lagrangian steps of dt = 1/steps::

    d_{k+1}(x) = d_k(x - u_k(x) dt)        # a warp by the displacement -u_k dt

The target is d0 advected the same way by a known smooth velocity (a translation plus a
Gaussian-windowed swirl), computed by the float64 reference warp, so a solution exists.
The velocity (one field, or one per step) starts at zero and Adam minimises
``MSE(d_T, target) + smoothness * mean |grad u|^2`` through the unrolled steps; each
step is a call of the ``backend`` slot (``warp.eager`` / ``warp.compile`` /
``warp.triton``), so the kernels of the warp family serve here too.

Metrics: ``final_l2`` (||d_T - target|| / ||d0 - target||: 1 is no progress, 0 exact),
``final_rmse``, ``mass_drift`` ((sum d_T - sum d0) / sum d0: semi-Lagrangian advection
with bilinear sampling does not conserve mass), ``kinetic_energy`` (0.5 mean |u|^2, in
voxels^2 per unit time^2) beside ``kinetic_energy_truth``, training time and memory,
and the timed forward+backward of one optimisation step (``time.step``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from bench import Backend, CellContext, Headline, Param, SkipCell, Slot, Task
from kernels.reference import grid_sample_warp
from plugins.backends.base import WarpBackend
from plugins.tasks.physics.figures import render, sequence_figure


def blob(size: int) -> np.ndarray:
    """A Gaussian blob of standard deviation size/10, left of centre."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    c = (size - 1) / 2.0
    s = size / 10.0
    return np.exp(-((yy - c) ** 2 + (xx - c + size / 8.0) ** 2) / (2 * s * s))


def brain_slice(size: int) -> np.ndarray:
    """The MNI152 grey-matter probability map, mid axial slice at 2 mm, padded square
    and resampled to ``size`` x ``size`` (values in [0, 1])."""
    from plugins.data.mni152 import axial_slice, load

    image = axial_slice(load("gm", 2).data).astype(np.float64)
    h, w = image.shape
    m = max(h, w)
    square = np.zeros((m, m))
    square[(m - h) // 2 : (m - h) // 2 + h, (m - w) // 2 : (m - w) // 2 + w] = image
    t = torch.as_tensor(square)[None, None]
    out = torch.nn.functional.interpolate(t, size=(size, size), mode="area")[0, 0]
    return out.clamp(0.0, 1.0).numpy()


def true_velocity(size: int, shift: float, swirl: float) -> torch.Tensor:
    """``(2, size, size)`` float64 velocity in voxels per unit time (axis 0 rows, axis 1
    columns): ``shift`` voxels to the right plus a rotation of up to ``swirl`` radians
    per unit time about the centre, windowed by a Gaussian of width size/4."""
    yy, xx = torch.meshgrid(
        torch.arange(size, dtype=torch.float64),
        torch.arange(size, dtype=torch.float64),
        indexing="ij",
    )
    c = (size - 1) / 2.0
    dy, dx = yy - c, xx - c
    window = torch.exp(-(dy**2 + dx**2) / (2 * (size / 4.0) ** 2))
    u_rows = swirl * dx * window
    u_cols = shift - swirl * dy * window
    return torch.stack([u_rows, u_cols])


def advect(
    warp: object, d: torch.Tensor, velocity: torch.Tensor, steps: int, padding: str
) -> list[torch.Tensor]:
    """The densities ``[d0, d1, ..., d_T]``; ``velocity`` is ``(1 | steps, 2, H, W)``."""
    dt = 1.0 / steps
    frames = [d]
    for k in range(steps):
        u = velocity[min(k, velocity.shape[0] - 1)][None]
        frames.append(warp(frames[-1], -u * dt, mode="bilinear", padding=padding))
    return frames


def _reference_warp(image: torch.Tensor, disp: torch.Tensor, *, mode: str, padding: str):
    return grid_sample_warp(image, disp, mode=mode, padding=padding)


class DensityControlTask(Task):
    """2-D density control: a velocity advecting d0 to a target, through a warp backend."""

    name = "physics.density_control"
    headline = Headline(
        quality={"final_l2": "lower", "final_rmse": "lower"},
        cost="time.train.median",
        curves=("loss", "loss.data"),
        problem=("d0", "size", "shift", "swirl", "padding"),
    )
    data_params = ("d0", "shift", "swirl")  # the density and its target
    components = {"backend": Slot(WarpBackend, default="warp.eager")}
    params = {
        "d0": Param("blob", choices=("blob", "brain"), doc="blob, or an MNI152 GM slice"),
        "size": Param(64, doc="grid size (size x size)", low=8),
        "steps": Param(8, doc="advection steps T (dt = 1/T)", low=1),
        "velocity": Param(
            "stationary", choices=("stationary", "time_dependent"), doc="one u, or u per step"
        ),
        "iterations": Param(150, doc="Adam iterations", low=1),
        "lr": Param(0.5, doc="Adam learning rate (voxels per unit time)", low=0.0, low_open=True),
        "smoothness": Param(1e-3, doc="weight of mean |grad u|^2 in the loss", low=0.0),
        "shift": Param(6.0, doc="true velocity: translation (voxels per unit time)"),
        "swirl": Param(0.5, doc="true velocity: rotation (radians per unit time)"),
        "padding": Param("border", choices=("border", "zeros"), doc="warp padding"),
    }

    @classmethod
    def validation_data(cls, params: dict[str, Any], select: str) -> str | None:
        return "steers the same density to the same target for every seed"

    def run(self, ctx: CellContext) -> None:
        p = self.values
        backend: Backend = ctx.components["backend"]
        size, steps = p["size"], p["steps"]
        if p["d0"] == "brain":
            try:
                d0_np = brain_slice(size)
            except ImportError as exc:
                raise SkipCell(f"the brain density needs nilearn: {exc}") from None
        else:
            d0_np = blob(size)
        d0_64 = torch.as_tensor(d0_np, dtype=torch.float64)[None, None]
        truth = true_velocity(size, p["shift"], p["swirl"])
        target_64 = advect(_reference_warp, d0_64, truth[None], steps, p["padding"])[-1]
        dev = {"device": ctx.device, "dtype": torch.float32}
        d0, target = d0_64.to(**dev), target_64.to(**dev)
        n_fields = steps if p["velocity"] == "time_dependent" else 1
        velocity = torch.zeros(n_fields, 2, size, size, **dev, requires_grad=True)
        opt = torch.optim.Adam([velocity], lr=p["lr"])
        smooth = p["smoothness"]

        def loss_fn() -> tuple[torch.Tensor, torch.Tensor]:
            final = advect(backend, d0, velocity, steps, p["padding"])[-1]
            data = torch.mean((final - target) ** 2)
            grad_r = velocity[:, :, 1:, :] - velocity[:, :, :-1, :]
            grad_c = velocity[:, :, :, 1:] - velocity[:, :, :, :-1]
            reg = grad_r.pow(2).mean() + grad_c.pow(2).mean()
            return data + smooth * reg, data

        def one_step() -> None:
            opt.zero_grad(set_to_none=True)
            loss, _ = loss_fn()
            loss.backward()

        train = 0.0
        with ctx.memory("train"):
            for it in range(1, p["iterations"] + 1):
                start = time.perf_counter()
                opt.zero_grad(set_to_none=True)
                loss, data = loss_fn()
                loss.backward()
                opt.step()
                train += time.perf_counter() - start
                ctx.check_finite("loss", loss)
                ctx.curve("loss", it, loss, train)
                ctx.curve("loss.data", it, data, train)
        ctx.add_time("train", train)
        # The harness's timing protocol for one forward+backward (the update left out).
        ctx.time("step", one_step)
        with torch.no_grad():
            frames = advect(backend, d0, velocity, steps, p["padding"])
        final = frames[-1]
        misfit0 = float(torch.linalg.norm(d0 - target))
        ctx.metric("final_l2", float(torch.linalg.norm(final - target)) / max(misfit0, 1e-30))
        ctx.metric("final_rmse", torch.sqrt(torch.mean((final - target) ** 2)))
        ctx.metric("mass_drift", (final.sum() - d0.sum()) / d0.sum())
        ctx.metric("kinetic_energy", 0.5 * velocity.detach().pow(2).sum(1).mean())
        ctx.metric("kinetic_energy_truth", 0.5 * truth.pow(2).sum(0).mean())
        picks = sorted({0, steps // 4, steps // 2, (3 * steps) // 4, steps})
        shown = [(f"d{k}", frames[k][0, 0].cpu().numpy()) for k in picks]
        shown.append(("target", target[0, 0].cpu().numpy()))
        shown.append(("error |dT - target|", (final - target).abs()[0, 0].cpu().numpy()))
        title = (
            f"{backend.name}, {p['d0']} {size}x{size}, {steps} steps, {p['velocity']} u: "
            f"final L2 {ctx.record.metrics['final_l2']:.3g}"
        )
        ctx.artifact("density_sequence", render(sequence_figure(shown, title)))
        ctx.metric("iterations", p["iterations"])
        ctx.metric("seconds_per_iteration", train / p["iterations"])
