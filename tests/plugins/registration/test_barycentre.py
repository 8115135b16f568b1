"""The barycentre projections and the conditional population's known truth."""

from __future__ import annotations

import numpy as np
import torch

from kernels.reference import svf_exp_reference
from plugins.data import registration as data
from plugins.tasks.registration.barycentre import TOLERANCE, Design


def _velocities(n=4, shape=(48, 40), amplitude=3.0):
    # tapered to 0 at the edges, as an atlas's velocities are over the background (where
    # scaling and squaring reads zeros past the grid, the projection converges slowly)
    taper = np.outer(*[np.sin(np.pi * np.arange(k) / (k - 1)) for k in shape])
    fields = [data.random_velocity(shape, amplitude, seed) * taper for seed in range(n)]
    return torch.from_numpy(np.stack(fields)).double()


def _exp(v):
    return svf_exp_reference(v, steps=7, padding="zeros")


def test_velocity_projection_removes_mean_and_slope():
    v = _velocities()
    a = torch.linspace(-1, 1, len(v), dtype=v.dtype)
    Design().project_velocities(v)
    assert v.mean(0).abs().max() < 1e-12
    Design(a).project_velocities(v)
    slope = torch.einsum("i,i...->...", a, v)
    assert v.mean(0).abs().max() < 1e-12 and slope.abs().max() < 1e-12


def test_displacement_projection_zeroes_the_mean_displacement():
    v = _velocities()
    after_velocity = v.clone()
    Design().project_velocities(after_velocity)
    # zero-mean velocities leave a second-order mean displacement
    assert _exp(after_velocity).mean(0).abs().max() > 100 * TOLERANCE
    passes = Design().project_displacements(v, _exp)
    assert 1 <= passes < 30
    assert _exp(v).mean(0).abs().max() <= TOLERANCE


def test_conditional_displacement_projection_removes_the_trend():
    v = _velocities(n=5)
    a = torch.linspace(-1, 1, len(v), dtype=v.dtype)
    Design(a).project_displacements(v, _exp)
    disp = _exp(v)
    assert disp.mean(0).abs().max() <= 2 * TOLERANCE
    slope = torch.einsum("i,i...->...", a / (a**2).sum(), disp)
    assert slope.abs().max() <= 2 * TOLERANCE


def test_conditional_population_truth():
    pop = data.conditional_population(4, 2, effect=2.0, downsample=4, amplitude=0.0, noise=0.0)
    ref = data.reference(2, 2, 4)
    assert np.allclose(pop.template_at(0.0).data, ref.data, atol=1e-6)
    assert np.isclose(np.sqrt((pop.effect**2).sum(0)).max(), 2.0)
    # no random deformation, no noise: each subject is its true template T(a_i)
    for a, s in zip(pop.attributes, pop.subjects):
        assert np.allclose(s.data, pop.template_at(a).data, atol=1e-6)
    # a > 0 dilates the ventricles: more CSF (label 1) with a
    csf = [(pop.template_at(a).labels == 1).sum() for a in (-1.0, 0.0, 1.0)]
    assert csf[0] < csf[1] < csf[2]


def test_conditional_population_velocities_carry_no_attribute():
    pop = data.conditional_population(6, 2, effect=1.0, downsample=4, noise=0.0, seed=3)
    disps = np.stack(pop.disps)
    a = pop.attributes
    assert np.isclose(a.mean(), 0.0) and a.min() == -1.0 and a.max() == 1.0
    # the v_i have no mean and no slope in a, so neither have their exp, to first order
    sizes = np.abs(disps).mean()
    assert np.abs(disps.mean(0)).mean() < 0.1 * sizes
    assert np.abs(np.tensordot(a / (a**2).sum(), disps, axes=1)).mean() < 0.1 * sizes
