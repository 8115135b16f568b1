"""BACON (Lindell et al. 2022): a band-limited multiplicative filter network.

    z_0 = sin(omega_0 x + phi_0)
    z_i = sin(omega_i x + phi_i) * (W_i z_{i-1} + b_i)        i = 1..depth-1
    y_i = U_i z_i + c_i                                         one output per layer

A product of sines only adds frequencies, so along every axis the spectrum of ``z_i``
(and of ``y_i``) lies within ``sum_{j<=i} B_j`` cycles per unit, ``B_j`` the largest
|frequency| of filter j. The filters' frequencies are drawn on a grid of 0.5 cycles per
unit (period 2, the [-1, 1] domain: BACON quantises them too), uniformly in [-B_j, B_j],
and ``B_j`` is chosen so that the cut-off doubles from one output to the next and the
last output's cut-off is ``band_limit`` times the Nyquist frequency of ``resolution``
samples across [-1, 1] (``resolution / 4`` cycles per unit). ``band_limit <= 1`` is
the condition for the outputs to be alias-free at that sampling.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from bench import Param
from plugins.encodings.base import FieldEncoding

#: frequency grid step (cycles per unit): the fields are 2-periodic on [-1, 1]
FREQ_STEP = 0.5


def cutoffs(depth: int, resolution: int, band_limit: float) -> list[float]:
    """Each output's band limit (cycles per unit), doubling up to ``band_limit`` x Nyquist."""
    top = band_limit * resolution / 4.0
    return [top / 2.0 ** (depth - 1 - i) for i in range(depth)]


class Bacon(nn.Module):
    """Multiplicative filter network with one output per layer.

    ``forward`` returns the last output; ``outputs`` returns all of them, coarse to fine.
    """

    def __init__(self, in_features: int, out_features: int, width: int, cuts: list[float]) -> None:
        super().__init__()
        self.cutoffs = list(cuts)
        bounds = [cuts[0]] + [b - a for a, b in zip(cuts[:-1], cuts[1:])]
        omegas, phases = [], []
        for bound in bounds:
            steps = math.floor(bound / FREQ_STEP + 1e-9)  # largest multiple within bound
            k = torch.randint(-steps, steps + 1, (width, in_features), dtype=torch.float64)
            omegas.append(k)
            phases.append((torch.rand(width, dtype=torch.float64) * 2 - 1) * math.pi)
        # Filters are fixed (not trained): training them could leave the band limit.
        # Stored as integers k (omega = 2 pi FREQ_STEP k, formed in the input's dtype) so
        # that a float64 evaluation is 2-periodic to float64 accuracy.
        self.register_buffer("freq_index", torch.stack(omegas).float())  # (depth, width, in)
        self.register_buffer("phases", torch.stack(phases).float())  # (depth, width)
        # MFN initialisation (Fathony 2021): U(-sqrt(6/width), +) keeps z_i's scale steady.
        bound = math.sqrt(6.0 / width)
        self.linears = nn.ModuleList(nn.Linear(width, width) for _ in bounds[1:])
        for lin in self.linears:
            nn.init.uniform_(lin.weight, -bound, bound)
        self.heads = nn.ModuleList(nn.Linear(width, out_features) for _ in bounds)

    def filters(self, x: torch.Tensor) -> torch.Tensor:
        """(depth, N, width): ``sin(omega_i x + phi_i)`` for every layer at once."""
        omegas = self.freq_index.to(x.dtype) * (2 * math.pi * FREQ_STEP)
        return torch.sin(torch.einsum("nd,lwd->lnw", x, omegas) + self.phases[:, None].to(x.dtype))

    def outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        f = self.filters(x)
        z = f[0]
        outs = [self.heads[0](z)]
        for i, lin in enumerate(self.linears, start=1):
            z = f[i] * lin(z)
            outs.append(self.heads[i](z))
        return outs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outputs(x)[-1]


class BaconField(FieldEncoding):
    """BACON: band-limited multiplicative filter network, one output per layer, cut-off doubling."""

    name = "bacon"
    params = {
        "width": Param(256, low=1, doc="hidden width"),
        "depth": Param(4, low=1, doc="layers (= outputs), cut-off doubling each"),
        "band_limit": Param(
            1.0,
            low=0.0,
            high=1.0,
            low_open=True,
            doc="last output's cut-off / Nyquist of the task's sampling (>1 aliases)",
        ),
    }

    @classmethod
    def check_resolution(cls, values: dict[str, Any], resolution: int) -> str | None:
        """Why these parameters cannot make a field sampled ``resolution`` points across
        (a task asks this when the suite is validated), or None."""
        cuts = cutoffs(values["depth"], resolution, values["band_limit"])
        if cuts[0] < FREQ_STEP:
            return (
                f"bacon: depth {values['depth']} at resolution {resolution} leaves the first "
                f"output a cut-off of {cuts[0]:.3g} cycles/unit, below the {FREQ_STEP} grid"
            )
        return None

    def build(
        self, in_features: int, out_features: int, *, resolution: int = 256, **kwargs: Any
    ) -> nn.Module:
        v = self.values
        problem = self.check_resolution(v, resolution)
        if problem:
            raise ValueError(problem)
        return Bacon(
            in_features, out_features, v["width"], cutoffs(v["depth"], resolution, v["band_limit"])
        )
