"""Optimisation-based registration: a dense displacement, an SVF, and LDDMM.

All three optimise with Adam over a coarse-to-fine pyramid (``levels``; each level
halves the size), through the cell's warp (and exp) backend.
"""

from __future__ import annotations

from typing import Any

import torch

from bench import CellContext, Param
from plugins.methods.registration.base import (
    Loop,
    RegistrationMethod,
    adam_tuning,
    common_params,
    positive,
    pyramid,
    resize_field,
    stopping,
    zeros_field,
)
from plugins.methods.registration.losses import apply_spectrum, diffusion, smoothing_spectrum
from plugins.methods.registration.problem import Problem, Result


class Displacement(RegistrationMethod):
    """Dense displacement by Adam with a diffusion regulariser (classical baseline)."""

    name = "displacement"
    params = common_params(iterations=150, lr=0.1, weight=1.0, levels=3)
    tuning = adam_tuning(params)

    def solve(self, problem: Problem, ctx: CellContext) -> Result:
        v = self.values
        loop, disp = Loop(ctx, monitor=problem.monitor), None
        for fixed, moving in pyramid(problem, v["levels"]):
            shape = tuple(fixed.shape[2:])
            start = zeros_field(shape, fixed.device) if disp is None else resize_field(disp, shape)
            disp = start.detach().requires_grad_()

            def loss(fixed=fixed, moving=moving, disp=disp) -> torch.Tensor:
                warped = problem.warp(moving, disp)
                return problem.similarity(warped, fixed) + v["weight"] * diffusion(disp)

            loop.run(
                [disp],
                loss,
                v["iterations"],
                v["lr"],
                **stopping(v),
                current=lambda disp=disp: disp,
            )
        return Result(disp.detach())


class SVF(RegistrationMethod):
    """Stationary velocity field, phi = exp(v) by scaling and squaring; optional symmetric."""

    name = "svf"
    params = {
        **common_params(iterations=150, lr=0.1, weight=1.0, levels=3),
        "steps": Param(7, low=0, high=12, doc="scaling-and-squaring steps"),
        "symmetric": Param(False, doc="add the loss of the fixed image warped by exp(-v)"),
    }
    tuning = adam_tuning(params)

    def solve(self, problem: Problem, ctx: CellContext) -> Result:
        v = self.values
        steps = v["steps"]
        loop, vel = Loop(ctx, monitor=problem.monitor), None
        for fixed, moving in pyramid(problem, v["levels"]):
            shape = tuple(fixed.shape[2:])
            start = zeros_field(shape, fixed.device) if vel is None else resize_field(vel, shape)
            vel = start.detach().requires_grad_()

            def loss(fixed=fixed, moving=moving, vel=vel) -> torch.Tensor:
                value = problem.similarity(problem.warp(moving, problem.exp(vel, steps)), fixed)
                if v["symmetric"]:
                    back = problem.warp(fixed, problem.exp(-vel, steps))
                    value = 0.5 * (value + problem.similarity(back, moving))
                return value + v["weight"] * diffusion(vel)

            def current(vel=vel) -> torch.Tensor:
                return problem.exp(vel, steps)

            loop.run([vel], loss, v["iterations"], v["lr"], **stopping(v), current=current)
        with torch.no_grad():
            vel = vel.detach()
            return Result(problem.exp(vel, steps), problem.exp(-vel, steps), vel)


def lddmm_flow(velocities: torch.Tensor, warp: Any, inverse: bool = False) -> torch.Tensor:
    """Displacement of phi = (id + v_0/T) o ... o (id + v_{T-1}/T) for velocities
    (T, ndim, *S) (Euler steps of the flow, each a composition through ``warp``), or of
    its inverse (id - v_{T-1}/T) o ... o (id - v_0/T) when ``inverse``."""
    steps = velocities.shape[0]
    disp = torch.zeros_like(velocities[:1])
    for k in range(steps):
        if inverse:
            small = -velocities[k : k + 1] / steps
            disp = disp + warp(small, disp)  # (id + small) o (id + disp)
        else:
            small = velocities[k : k + 1] / steps
            disp = small + warp(disp, small)  # (id + disp) o (id + small)
    return disp


class LDDMM(RegistrationMethod):
    """LDDMM: T time-dependent velocities, kinetic energy with L = (1 - alpha Lap)^2."""

    name = "lddmm"
    params = {
        **common_params(iterations=150, lr=1.0, weight=0.03, levels=3),
        "steps": Param(8, low=1, doc="time steps T of the flow (>= 1)"),
        "alpha": positive(2.0, "smoothing length^2 of L = (1 - alpha Laplacian)^2 (voxels^2)"),
    }
    tuning = adam_tuning(params)

    def solve(self, problem: Problem, ctx: CellContext) -> Result:
        v = self.values
        steps = v["steps"]
        loop, momentum, kernel = Loop(ctx, monitor=problem.monitor), None, None
        for fixed, moving in pyramid(problem, v["levels"]):
            shape = tuple(fixed.shape[2:])
            symbol = smoothing_spectrum(shape, v["alpha"], str(fixed.device))
            kernel = 1.0 / symbol  # K = L^-1: the velocity is the smoothed momentum
            if momentum is None:
                start = zeros_field(shape, fixed.device).repeat(steps, 1, *([1] * len(shape)))
            else:
                start = resize_field(momentum, shape)
            momentum = start.detach().requires_grad_()

            def loss(fixed=fixed, moving=moving, momentum=momentum, kernel=kernel):
                vel = apply_spectrum(momentum, kernel)
                disp = lddmm_flow(vel, problem.warp)
                # kinetic energy (1/T) sum_t <L v_t, v_t> = (1/T) sum_t <m_t, v_t>, per voxel
                energy = (momentum * vel).sum(dim=1).mean()
                return problem.similarity(problem.warp(moving, disp), fixed) + v["weight"] * energy

            def current(momentum=momentum, kernel=kernel) -> torch.Tensor:
                return lddmm_flow(apply_spectrum(momentum, kernel), problem.warp)

            loop.run([momentum], loss, v["iterations"], v["lr"], **stopping(v), current=current)
        with torch.no_grad():
            vel = apply_spectrum(momentum.detach(), kernel)
            disp = lddmm_flow(vel, problem.warp)
            inverse = lddmm_flow(vel, problem.warp, inverse=True)
        return Result(disp, inverse, vel)
