"""SIREN (Sitzmann et al. 2020): ``h <- sin(omega0 (W h + b))``, linear output.

Initialisation as the paper derives it (sec. 3.2): first layer U(-1/in, 1/in), later
layers U(-sqrt(6/n)/omega0, +sqrt(6/n)/omega0), so that every hidden pre-activation
``omega0 W h`` is ~N(0, 1) and every activation arcsine-distributed, whatever the depth.
Biases as nn.Linear's default; like the official code, omega0 multiplies the bias too.

The forward runs through ``self.backend`` when a task sets one (any ``sine_mlp.*``
backend: ``backend(x, weights, biases, omega0=...)``), else through the plain torch
reference of ``kernels.reference``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from bench import Param
from kernels.reference import sine_mlp_reference, siren_parameters
from plugins.encodings.base import FieldEncoding


class Siren(nn.Module):
    """A SIREN whose weights and biases are lists, as ``sine_mlp`` backends take them."""

    def __init__(
        self, in_features: int, out_features: int, width: int, depth: int, omega0: float
    ) -> None:
        super().__init__()
        weights, biases = siren_parameters(
            in_features, [width] * depth, out_features, omega0=omega0
        )
        self.weights = nn.ParameterList(nn.Parameter(w) for w in weights)
        self.biases = nn.ParameterList(nn.Parameter(b) for b in biases)
        self.omega0 = float(omega0)
        self.backend: Callable[..., torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights, biases = list(self.weights), list(self.biases)
        if self.backend is not None:
            return self.backend(x, weights, biases, omega0=self.omega0)
        return sine_mlp_reference(x, weights, biases, omega0=self.omega0, first_omega0=self.omega0)

    def preactivations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``omega0 (W h + b)`` of every sine layer (for the initialisation tests)."""
        out, h = [], x
        for w, b in zip(list(self.weights)[:-1], list(self.biases)[:-1]):
            z = self.omega0 * nn.functional.linear(h, w, b)
            out.append(z)
            h = torch.sin(z)
        return out


class SirenField(FieldEncoding):
    """SIREN: sine activations, omega0 = 30, the paper's initialisation; sine_mlp backends."""

    name = "siren"
    sine_backend = True
    params = {
        "width": Param(256, low=1, doc="hidden width"),
        "depth": Param(3, low=1, doc="hidden (sine) layers"),
        "omega0": Param(30.0, low=0.0, low_open=True, doc="sine frequency omega0"),
    }

    def build(self, in_features: int, out_features: int, **kwargs: Any) -> nn.Module:
        v = self.values
        model = Siren(in_features, out_features, v["width"], v["depth"], v["omega0"])
        model.backend = kwargs.get("sine_backend")
        return model
