"""The reference-problem tasks: harmonic oscillator, spiral, Lotka-Volterra, Van der Pol."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from bench import Param
from plugins.tasks.ode import problems
from plugins.tasks.ode.protocol import ODEProblemTask, common_params


def _problem(*names: str):
    """The protocol's headline, with this problem's own coefficients as its problem."""
    return replace(ODEProblemTask.headline, problem=(*ODEProblemTask.headline.problem, *names))


class HarmonicTask(ODEProblemTask):
    """Harmonic oscillator x'' = -omega^2 x from (1, 0), against its exact solution."""

    name = "ode.harmonic"
    headline = _problem("omega")
    data_params = ("omega",)
    params = {
        **common_params(t1=10.0),
        "omega": Param(1.0, low=0.0, low_open=True, doc="angular frequency"),
    }
    y0 = (1.0, 0.0)

    def module(self) -> torch.nn.Module:
        return problems.Harmonic(self.values["omega"])

    def exact(self, t: np.ndarray) -> np.ndarray:
        return problems.harmonic_exact(t, self.values["omega"], np.asarray(self.y0))


class SpiralTask(ODEProblemTask):
    """torchdiffeq's ode_demo cubic spiral dy/dt = (y**3) @ A from (2, 0) on [0, 25]."""

    name = "ode.spiral"
    params = common_params(t1=25.0)
    y0 = (2.0, 0.0)

    def module(self) -> torch.nn.Module:
        return problems.Spiral()

    def rhs_numpy(self):
        return problems.spiral_rhs


class LotkaVolterraTask(ODEProblemTask):
    """Lotka-Volterra predator-prey cycles from (1, 1), against a DOP853 reference."""

    name = "ode.lotka_volterra"
    headline = _problem("alpha", "beta", "gamma", "delta")
    data_params = ("alpha", "beta", "gamma", "delta")
    params = {
        **common_params(t1=10.0),
        "alpha": Param(1.5, low=0.0, doc="prey growth rate"),
        "beta": Param(1.0, low=0.0, doc="predation rate"),
        "gamma": Param(3.0, low=0.0, doc="predator death rate"),
        "delta": Param(1.0, low=0.0, doc="predator growth per prey eaten"),
    }
    y0 = (1.0, 1.0)

    def _coef(self) -> tuple[float, float, float, float]:
        v = self.values
        return v["alpha"], v["beta"], v["gamma"], v["delta"]

    def module(self) -> torch.nn.Module:
        return problems.LotkaVolterra(*self._coef())

    def rhs_numpy(self):
        return problems.lotka_volterra_rhs(self._coef())


class VanDerPolTask(ODEProblemTask):
    """Van der Pol oscillator from (2, 0); stiff for large mu (reference: Radau for mu > 10)."""

    name = "ode.van_der_pol"
    headline = _problem("mu")
    data_params = ("mu",)
    params = {
        **common_params(t1=10.0),
        "mu": Param(1.0, low=0.0, doc="nonlinear damping; the problem is stiff for mu >> 1"),
    }
    y0 = (2.0, 0.0)

    @property
    def reference_method(self) -> str:  # type: ignore[override]
        # DOP853 at 1e-12 needs ~1e5 steps per unit time at mu = 1000 (stiffness
        # ratio ~mu^2); implicit Radau IIA (order 5) handles it in a few hundred.
        return "Radau" if self.values["mu"] > 10 else "DOP853"

    def module(self) -> torch.nn.Module:
        return problems.VanDerPol(self.values["mu"])

    def rhs_numpy(self):
        return problems.van_der_pol_rhs(self.values["mu"])
