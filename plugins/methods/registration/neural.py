"""Registration by neural fields: IDIR (``implicit``) and NODEO (``nodeo``).

Both evaluate a SIREN of normalised coordinates ([-1, 1] per axis, align_corners) on
the fixed grid, every ``stride``-th voxel along each axis (1: every voxel; a 3-D 2 mm
volume on a CPU needs 2 to 4), and upsample the displacement linearly to the full grid
for the warp. Weights start from SIREN's initialisation (``kernels.reference``).

``field``: any field encoding plugin (``method.field: my_lab.gabor``, its parameters
as ``method.field.width``) in the SIREN's place, built ``ndim -> ndim`` for the
evaluation grid's resolution: a user's field measured as the deformation of the same
method, same loss, steps and budget (``width``, ``layers`` and ``omega`` are then the
method's SIREN's, unused).

- ``implicit`` (Wolterink 2022, IDIR): the SIREN outputs the displacement; loss =
  similarity + weight * mean |1 - det J| (IDIR: weight 0.05, omega 32, three hidden
  layers of 256, Adam 1e-5 for 2500 steps on 10,000 random points; here det J by
  central differences on the evaluation grid and the whole grid each step: see README
  for the reduced steps and width on CPU).
- ``nodeo`` (Wu 2022, NODEO): the SIREN is a stationary velocity v(x); every grid point
  follows dx/dt = v(x) from t = 0 to 1, integrated by a ``solver`` plugin (optionally
  by the adjoint method); the inverse map integrates from t = 1 back to 0. Loss =
  similarity + weight * diffusion of v on the grid + fold_weight * mean relu(-det J).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from bench import CellContext, Param, Plugin, Solver
from kernels.reference import sine_mlp_reference, siren_parameters
from plugins.encodings.base import FieldEncoding, build_field, check_field_shape
from plugins.methods.registration.base import (
    Loop,
    RegistrationMethod,
    adam_tuning,
    positive,
    resize_field,
)
from plugins.methods.registration.losses import diffusion, jacobian_det
from plugins.methods.registration.problem import Problem, Result


class Siren(torch.nn.Module):
    """A SIREN ``ndim -> hidden -> ndim`` with SIREN's initialisation (seeded by torch)."""

    def __init__(self, ndim: int, width: int, layers: int, omega: float) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, ()).item()))
        weights, biases = siren_parameters(
            ndim, [width] * layers, ndim, omega0=omega, generator=gen
        )
        self.weights = torch.nn.ParameterList(weights)
        self.biases = torch.nn.ParameterList(biases)
        self.omega = omega

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sine_mlp_reference(
            x, list(self.weights), list(self.biases), omega0=self.omega, first_omega0=self.omega
        )


def grid_points(shape: tuple[int, ...], stride: int, device: Any) -> tuple[torch.Tensor, tuple]:
    """Normalised coordinates (N, ndim) of every ``stride``-th voxel (and the last one)."""
    axes = []
    for n in shape:
        idx = torch.arange(0, n, stride, device=device, dtype=torch.float32)
        if idx[-1] != n - 1:
            idx = torch.cat([idx, torch.tensor([n - 1.0], device=device)])
        axes.append(idx * (2.0 / (n - 1)) - 1.0)
    mesh = torch.meshgrid(*axes, indexing="ij")
    sub = tuple(len(a) for a in axes)
    return torch.stack(mesh, dim=-1).reshape(-1, len(shape)), sub


def to_voxels(normalised: torch.Tensor, sub: tuple, full: tuple) -> torch.Tensor:
    """(N, ndim) normalised displacements on the sub-grid -> (1, ndim, *sub) in voxels of
    the sub-grid (so that finite differences on it give det J)."""
    field = normalised.t().reshape(1, len(sub), *sub)
    scale = torch.tensor([(s - 1) / 2.0 for s in sub], device=field.device)
    return field * scale.reshape(1, -1, *([1] * len(sub)))


def _network(v: dict[str, Any], problem: Problem, sub: tuple[int, ...]) -> torch.nn.Module:
    """The method's SIREN, or the ``field`` encoding's module (``ndim -> ndim``)."""
    field = v["field"]
    if field is None:
        return Siren(problem.ndim, v["width"], v["layers"], v["omega"]).to(problem.device)
    net = build_field(field, problem.ndim, problem.ndim, resolution=max(sub)).to(problem.device)
    check_field_shape(field.name, net, problem.ndim, problem.ndim, problem.device)
    return net


def _siren_params(width: int, omega: float, iterations: int, lr: float) -> dict[str, Param]:
    return {
        "field": Param(
            None,
            plugin=FieldEncoding,
            nullable=True,
            doc="a field encoding in the SIREN's place (none: the method's own SIREN)",
        ),
        "iterations": Param(iterations, low=1, doc="Adam steps"),
        "lr": positive(lr, "Adam learning rate"),
        "width": Param(width, low=4, doc="hidden width of the SIREN"),
        "layers": Param(3, low=1, doc="hidden layers"),
        "omega": positive(omega, "SIREN frequency omega0"),
        "stride": Param(1, low=1, high=8, doc="evaluate the field every stride-th voxel"),
    }


class Implicit(RegistrationMethod):
    """IDIR: displacement as a SIREN of coordinates, Jacobian regulariser |1 - det J|."""

    name = "implicit"
    params = {
        **_siren_params(width=128, omega=32.0, iterations=300, lr=1e-4),
        "weight": positive(0.05, "weight of mean |1 - det J| (IDIR: 0.05)"),
    }
    tuning = adam_tuning(params)

    def solve(self, problem: Problem, ctx: CellContext) -> Result:
        v = self.values
        points, sub = grid_points(problem.shape, v["stride"], problem.device)
        net = _network(v, problem, sub)

        def field() -> torch.Tensor:
            return to_voxels(net(points), sub, problem.shape)

        def loss() -> torch.Tensor:
            coarse = field()
            disp = resize_field(coarse, problem.shape)
            sim = problem.similarity(problem.warp(problem.moving, disp), problem.fixed)
            return sim + v["weight"] * (1.0 - jacobian_det(coarse)).abs().mean()

        Loop(ctx).run(net.parameters(), loss, v["iterations"], v["lr"])
        with torch.no_grad():
            return Result(resize_field(field(), problem.shape))


class _Velocity(torch.nn.Module):
    """dx/dt = v(x) (an nn.Module, as the adjoint method needs)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(y)


class NODEO(RegistrationMethod):
    """NODEO: velocity as a SIREN of coordinates, points integrated by a solver plugin."""

    name = "nodeo"
    params = {
        **_siren_params(width=64, omega=8.0, iterations=200, lr=3e-4),
        "weight": positive(0.1, "weight of the velocity's diffusion on the grid"),
        "fold_weight": positive(1.0, "weight of mean relu(-det J)"),
        "solver": Param("rk4", plugin=Solver, doc="the solver plugin integrating the flow"),
        "step_size": positive(
            0.25, "solver step (fixed-step solvers), unless the suite sets method.solver.step_size"
        ),
        "adjoint": Param(False, doc="gradients by the adjoint method"),
    }
    tuning = adam_tuning(params)

    @classmethod
    def nested_settings(
        cls, head: str, inner: type[Plugin], resolved: dict[str, Any]
    ) -> dict[str, Any]:
        # a solver with a step (a fixed-step one must have it) steps step_size unless the
        # suite sets the solver's own
        if head == "solver" and issubclass(inner, Solver) and inner.steps_by_size():
            return {"step_size": resolved["step_size"]}
        return {}

    def _solver(self) -> tuple[Solver, dict[str, Any]]:
        """The nested solver, and the options each call passes it."""
        solver = self.values["solver"]
        if not isinstance(solver, Solver):
            raise TypeError(
                f"nodeo's solver is {solver!r}, a name: built outside the harness it takes a "
                "Solver instance, or build it with bench.testing.build_plugin"
            )
        if self.values["adjoint"] and not solver.supports_adjoint:
            raise ValueError(f"solver {solver.name} has no adjoint method")
        options: dict[str, Any] = {"adjoint": True} if self.values["adjoint"] else {}
        return solver, {**options, **self.nested_options("solver")}

    def solve(self, problem: Problem, ctx: CellContext) -> Result:
        v = self.values
        solver, extra = self._solver()
        points, sub = grid_points(problem.shape, v["stride"], problem.device)
        net = _network(v, problem, sub)
        func = _Velocity(net)
        times = torch.tensor([0.0, 1.0], device=problem.device)

        def flow(t: torch.Tensor) -> torch.Tensor:
            end = solver.odeint(func, points, t, **extra)[-1]
            return to_voxels(end - points, sub, problem.shape)

        def loss() -> torch.Tensor:
            coarse = flow(times)
            disp = resize_field(coarse, problem.shape)
            sim = problem.similarity(problem.warp(problem.moving, disp), problem.fixed)
            vel = to_voxels(net(points), sub, problem.shape)
            folds = F.relu(-jacobian_det(coarse)).mean()
            return sim + v["weight"] * diffusion(vel) + v["fold_weight"] * folds

        Loop(ctx).run(net.parameters(), loss, v["iterations"], v["lr"])
        with torch.no_grad():
            disp = resize_field(flow(times), problem.shape)
            inverse = resize_field(flow(times.flip(0)), problem.shape)
        return Result(disp, inverse)
