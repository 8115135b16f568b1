"""ReLU MLPs on raw, positionally encoded or Fourier-feature coordinates.

``relu``: the plain coordinate MLP (the baseline every neural-fields paper beats).
``positional``: NeRF's encoding (Mildenhall 2020), L frequencies per axis
``2^k pi`` (k = 0..L-1), or Tancik 2020's log-linear ``2 pi sigma^(k/L)`` when
``sigma`` is set. ``fourier``: Tancik 2020's Gaussian Fourier features
``gamma(v) = [cos 2 pi B v, sin 2 pi B v]``, ``B`` (m x d) drawn from N(0, sigma^2).
Coordinates are expected in [-1, 1].
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from bench import Param
from plugins.encodings.base import FieldEncoding
from plugins.encodings.errors import FieldParamError

OUTPUT_ACTIVATIONS = ("none", "sigmoid")


def relu_mlp(
    in_features: int, out_features: int, width: int, depth: int, output: str = "none"
) -> nn.Sequential:
    """``depth`` hidden ReLU layers of ``width``, then a linear output (optionally sigmoid).

    PyTorch's default (Kaiming-uniform) init, as Tancik's and NeRF's torch ports use.
    """
    layers: list[nn.Module] = []
    fan_in = in_features
    for _ in range(depth):
        layers += [nn.Linear(fan_in, width), nn.ReLU()]
        fan_in = width
    layers.append(nn.Linear(fan_in, out_features))
    if output == "sigmoid":
        layers.append(nn.Sigmoid())
    return nn.Sequential(*layers)


class PositionalEncoding(nn.Module):
    """``[v, sin(w_k v), cos(w_k v)]`` for each frequency ``w_k`` and each axis of ``v``."""

    def __init__(self, in_features: int, freqs: torch.Tensor, include_input: bool) -> None:
        super().__init__()
        self.register_buffer("freqs", freqs.float())
        self.include_input = include_input
        self.out_features = in_features * (2 * len(freqs) + int(include_input))

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        arg = (v[..., :, None] * self.freqs).flatten(-2)  # (N, d * L), axis-major
        parts = [torch.sin(arg), torch.cos(arg)]
        if self.include_input:
            parts.insert(0, v)
        return torch.cat(parts, dim=-1)


class FourierFeatures(nn.Module):
    """``[cos 2 pi B v, sin 2 pi B v]`` with a fixed Gaussian ``B`` (m x d)."""

    def __init__(self, B: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("B", B.float())
        self.out_features = 2 * B.shape[0]

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        arg = 2 * math.pi * v @ self.B.T
        return torch.cat([torch.cos(arg), torch.sin(arg)], dim=-1)


_COMMON = {
    "width": Param(256, low=1, doc="hidden width"),
    "depth": Param(3, low=1, doc="hidden layers"),
    "output": Param("none", choices=OUTPUT_ACTIVATIONS, doc="output activation"),
}


class ReluField(FieldEncoding):
    """Plain ReLU MLP on raw coordinates (the no-mapping baseline)."""

    name = "relu"
    params = dict(_COMMON)

    def build(self, in_features: int, out_features: int, **kwargs: Any) -> nn.Module:
        v = self.values
        return relu_mlp(in_features, out_features, v["width"], v["depth"], v["output"])


class PositionalField(FieldEncoding):
    """NeRF positional encoding (L octaves, or Tancik's log-linear sigma), then a ReLU MLP."""

    name = "positional"
    params = {
        **_COMMON,
        "octaves": Param(10, low=1, doc="frequencies per axis, L"),
        "sigma": Param(
            None,
            type=float,
            low=1.0,
            nullable=True,
            doc="null: NeRF's 2^k pi; else Tancik's log-linear 2 pi sigma^(k/L)",
        ),
        "include_input": Param(True, doc="also pass the raw coordinates (NeRF)"),
        "spacing": Param(
            "power",
            choices=("power", "notebook"),
            doc="with sigma: power, 2 pi sigma^(k/L), k = 0..L-1 (sigma^(k/L) cycles per unit); "
            "notebook, Tancik's 2-D notebook's 2^linspace(0, log2(1 + sigma), L) - 1 cycles "
            "over the [-1, 1] side (0 to sigma: its DIV2K setting is sigma 63, L 128)",
        ),
    }

    @classmethod
    def resolve_params(cls, values: dict[str, Any]) -> dict[str, Any]:
        v = super().resolve_params(values)
        if v["spacing"] == "notebook" and (v["sigma"] is None or v["octaves"] < 2):
            raise FieldParamError(
                cls.name,
                v,
                "spacing notebook needs a sigma (the top frequency) and octaves >= 2",
                ("spacing", "sigma", "octaves"),
            )
        return v

    def frequencies(self) -> torch.Tensor:
        """Angular frequencies (rad per unit coordinate), one per octave."""
        L, sigma = self.values["octaves"], self.values["sigma"]
        k = torch.arange(L, dtype=torch.float64)
        if sigma is None:
            return math.pi * 2.0**k
        if self.values["spacing"] == "notebook":
            # c cycles over the side of 2 units: pi * c rad per unit
            cycles = 2.0 ** torch.linspace(0.0, math.log2(1.0 + sigma), L, dtype=torch.float64)
            return math.pi * (cycles - 1.0)
        return 2 * math.pi * sigma ** (k / L)

    def build(self, in_features: int, out_features: int, **kwargs: Any) -> nn.Module:
        v = self.values
        enc = PositionalEncoding(in_features, self.frequencies(), v["include_input"])
        mlp = relu_mlp(enc.out_features, out_features, v["width"], v["depth"], v["output"])
        return nn.Sequential(enc, mlp)


class FourierField(FieldEncoding):
    """Gaussian random Fourier features (Tancik 2020), m features of scale sigma, then ReLU MLP."""

    name = "fourier"
    params = {
        **_COMMON,
        "features": Param(256, low=1, doc="m, Fourier features (output 2m)"),
        "sigma": Param(10.0, low=0.0, low_open=True, doc="std of B's entries"),
    }

    def build(self, in_features: int, out_features: int, **kwargs: Any) -> nn.Module:
        v = self.values
        B = torch.randn(v["features"], in_features, dtype=torch.float64) * v["sigma"]
        enc = FourierFeatures(B)
        mlp = relu_mlp(enc.out_features, out_features, v["width"], v["depth"], v["output"])
        return nn.Sequential(enc, mlp)
