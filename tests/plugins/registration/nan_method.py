"""A registration method whose loss turns NaN at step 5 (the diverged path's fixture)."""

from __future__ import annotations

from bench import hookimpl
from plugins.methods.registration.base import Loop, RegistrationMethod, zeros_field
from plugins.methods.registration.problem import Result


class NaNAfterFive(RegistrationMethod):
    """Test fixture: an SVF-free displacement whose loss is NaN from step 5 on."""

    name = "test.nan_after_five"

    def solve(self, problem, ctx):
        disp = zeros_field(problem.shape, problem.device).requires_grad_()
        step = {"n": 0}

        def loss():
            step["n"] += 1
            value = problem.similarity(problem.warp(problem.moving, disp), problem.fixed)
            return value * (float("nan") if step["n"] > 5 else 1.0)

        Loop(ctx).run([disp], loss, 20, 0.1)
        return Result(disp.detach())


@hookimpl
def bench_plugins():
    return [NaNAfterFive]
