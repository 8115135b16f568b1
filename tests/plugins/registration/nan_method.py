"""Registration methods that go wrong: a loss that turns NaN at step 5 (the diverged
path's fixture), a displacement returned channels-last."""

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


class ChannelsLast(RegistrationMethod):
    """Test fixture: a zero displacement returned (1, *S, ndim), as grid_sample wants."""

    name = "test.channels_last"

    def solve(self, problem, ctx):
        return Result(zeros_field(problem.shape, problem.device).movedim(1, -1))


class BareTensor(RegistrationMethod):
    """Test fixture: the displacement itself returned, not in a Result."""

    name = "test.bare_tensor"

    def solve(self, problem, ctx):
        return zeros_field(problem.shape, problem.device)


@hookimpl
def bench_plugins():
    return [NaNAfterFive, ChannelsLast, BareTensor]
