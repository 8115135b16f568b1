"""The implicit (neural-field) template of ``registration.atlas`` and the subjects' neural
velocity fields.

Template: T_theta(x, a), a coordinate network of the cell's ``encoding`` plugin (the
fields family's ``siren``, ``hashgrid``, ...: built through ``Encoding.build``) taking
the normalised coordinates x in [-1, 1]^d (align_corners, as ``grid_points``) and the
attribute a times ``attribute_scale`` as one more input, one output (the intensity).
Subject i reads it where its deformation sends each voxel: T_theta(x + u_i(x), a_i),
the network evaluated at the moved points themselves (no grid of the template, no
interpolation); ``at(a)`` evaluates it on the training grid, ``on_grid(a, finer)`` on a
grid ``finer`` times finer (fine point j at coarse voxel (j - (finer - 1)/2) / finer,
the centres of a block average's sub-voxels).

Deformations: subject i's stationary velocity v_i is a SIREN of the coordinates (the
``implicit``/``nodeo`` methods' ``Siren``, ``grid_points`` and ``to_voxels``,
``plugins.methods.registration.neural``), evaluated on the grid; its last layer starts
at zero (the identity, as the grid velocities start at 0) and u_i = exp(v_i) by the
cell's scaling-and-squaring backend (nodeo integrates the same stationary ODE with a
solver; scaling and squaring is the atlas's own integrator). With a barycentre design
(``projection: velocity``) the fit of the v_i on [1, a] is removed inside the forward
pass (v_i - fit_i(v)), so the constraint holds exactly at every step whatever the
networks' weights: a projection by reparametrisation, since a network's output cannot
be edited in place as a grid's can.

Fit (the task's docstring has the loss): first ``init_steps`` Adam steps fit
T_theta(x, a_i) to the start image at every subject's attribute (MSE, deformations
held at the identity: the grid templates' start, learned), then joint Adam on the
template's network (``field_lr``), the velocity networks (``velocity_lr``) and nothing
else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from plugins.encodings.base import build_field
from plugins.methods.registration.neural import Siren, grid_points, to_voxels
from plugins.tasks.registration.barycentre import Design
from plugins.tasks.registration.templates import Fixed


def normalised_grid(
    shape: tuple[int, ...], finer: int, device: Any, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """(N, d) normalised coordinates (align_corners on the training grid of ``shape``) of
    the grid ``finer`` times finer: ``finer`` 1 is every voxel of ``shape`` (as
    ``grid_points(shape, 1)``)."""
    axes = []
    for n in shape:
        index = torch.arange(n * finer, device=device, dtype=dtype) - (finer - 1) / 2
        axes.append(index / finer * (2.0 / (n - 1)) - 1.0)
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack(mesh, dim=-1).reshape(-1, len(shape))


class ImplicitTemplate(Fixed):
    """T_theta(x, a): the cell's encoding on (x, a * scale) (see the module's doc)."""

    def __init__(
        self,
        start: torch.Tensor,
        attributes: torch.Tensor,
        warp: Callable,
        exp: Callable,
        encoding: Any,
        scale: float,
    ) -> None:
        super().__init__(start, attributes, warp, exp)
        self.shape = tuple(start.shape[2:])
        ndim = len(self.shape)
        self.scale = scale
        self.net = build_field(encoding, ndim + 1, 1, resolution=max(self.shape)).to(start.device)
        self.points = normalised_grid(self.shape, 1, start.device)
        # voxels -> normalised units along each axis (align_corners)
        self.to_normalised = torch.tensor([2.0 / (n - 1) for n in self.shape], device=start.device)

    @property
    def images(self) -> list[torch.Tensor]:
        return []

    @property
    def networks(self) -> list[torch.nn.Parameter]:
        """The template network's weights (Adam at ``field_lr``)."""
        return list(self.net.parameters())

    def evaluate(self, points: torch.Tensor, attribute: torch.Tensor) -> torch.Tensor:
        """T_theta at ``points`` (..., d) normalised, ``attribute`` broadcast to (..., 1)."""
        a = (attribute * self.scale).expand(*points.shape[:-1], 1)
        flat = torch.cat([points, a], dim=-1).reshape(-1, points.shape[-1] + 1)
        return self.net(flat).reshape(points.shape[:-1])

    def warped(self, disp: torch.Tensor) -> torch.Tensor:
        """T_theta(x + disp_i(x), a_i) for every subject: (n, 1, *S)."""
        n, ndim = disp.shape[:2]
        moved = disp.movedim(1, -1).reshape(n, -1, ndim) * self.to_normalised
        values = self.evaluate(self.points + moved, self.attributes.reshape(n, 1, 1))
        return values.reshape(n, 1, *self.shape)

    def fit_start(self, steps: int, lr: float) -> float:
        """``steps`` Adam steps of mean (T_theta(x, a_i) - start(x))^2 over the subjects'
        attributes; returns the last loss (0.0 for no step)."""
        target = self.template.detach().reshape(1, -1)
        opt = torch.optim.Adam(self.networks, lr=lr)
        value = 0.0
        a = self.attributes.reshape(-1, 1, 1)
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            points = self.points.expand(len(self.attributes), -1, -1)
            loss = ((self.evaluate(points, a) - target) ** 2).mean()
            loss.backward()
            opt.step()
            value = float(loss.detach())
        return value

    @torch.no_grad()
    def on_grid(self, attribute: float, finer: int = 1) -> np.ndarray:
        """T_theta(., a) on the training grid (``finer`` 1) or ``finer`` times finer."""
        points = normalised_grid(self.shape, finer, self.points.device)
        a = torch.tensor(float(attribute), device=points.device)
        values = self.evaluate(points, a)
        return values.reshape([n * finer for n in self.shape]).double().cpu().numpy()

    def at(self, attribute: float) -> np.ndarray:
        return self.on_grid(attribute, 1)


class GridVelocities:
    """One learned velocity grid per subject (the grid templates' deformations)."""

    def __init__(self, count: int, shape: tuple[int, ...], device: Any) -> None:
        self.vel = torch.zeros((count, len(shape), *shape), device=device, requires_grad=True)

    @property
    def parameters(self) -> list[torch.Tensor]:
        return [self.vel]

    def field(self) -> torch.Tensor:
        return self.vel


class NeuralVelocities:
    """One SIREN velocity field per subject (see the module's doc); ``design`` given:
    its fit on [1, a] (or the mean) removed in the forward pass."""

    def __init__(
        self,
        count: int,
        shape: tuple[int, ...],
        device: Any,
        width: int,
        omega: float,
        design: Design | None,
    ) -> None:
        ndim = len(shape)
        self.nets = torch.nn.ModuleList(Siren(ndim, width, 3, omega) for _ in range(count))
        with torch.no_grad():
            for net in self.nets:
                net.weights[-1].zero_()
                net.biases[-1].zero_()
        self.nets.to(device)
        self.points, self.sub = grid_points(shape, 1, device)
        self.shape, self.design = shape, design

    @property
    def parameters(self) -> list[torch.nn.Parameter]:
        return list(self.nets.parameters())

    def field(self) -> torch.Tensor:
        """(n, d, *S) velocities in voxels."""
        vel = torch.cat([to_voxels(net(self.points), self.sub, self.shape) for net in self.nets])
        if self.design is not None:
            vel = vel - self.design.fitted(vel)
        return vel
