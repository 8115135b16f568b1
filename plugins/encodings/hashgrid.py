"""Multiresolution hash encoding (Mueller et al. 2022) in plain torch, then a ReLU MLP.

Level l has resolution ``N_l = floor(N_min b^l)``, ``b = exp((ln N_max - ln N_min)/(L-1))``,
and a table of ``2^T`` feature vectors. A point's ``2^d`` surrounding grid vertices are
indexed directly where the level's ``(N_l + 1)^d`` vertices fit the table, else hashed
``(xor_i c_i pi_i) mod 2^T`` with the paper's primes; features are d-linearly
interpolated and the levels' features concatenated. Every level is looked up at once
(one gather over a (points, levels, corners) index tensor, no loop over points or
levels), and the memory is the tables: ``L 2^T F`` values, never a dense grid.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import torch
from torch import nn

from bench import Param
from plugins.encodings.base import FieldEncoding
from plugins.encodings.errors import FieldParamError
from plugins.encodings.mlp import relu_mlp

#: the paper's hashing primes (pi_1 = 1 keeps the first axis coherent in memory)
PRIMES = (1, 2654435761, 805459861)
MASK32 = 0xFFFFFFFF


def level_resolutions(levels: int, base: int, finest: int) -> list[int]:
    if levels == 1:
        return [base]
    b = math.exp((math.log(finest) - math.log(base)) / (levels - 1))
    return [int(math.floor(base * b**lvl + 1e-9)) for lvl in range(levels)]


class HashGrid(nn.Module):
    """The encoding alone: (N, d) in [-1, 1] -> (N, levels * features)."""

    def __init__(
        self, in_features: int, levels: int, features: int, log2_table: int, base: int, finest: int
    ) -> None:
        super().__init__()
        if in_features > len(PRIMES):
            raise ValueError(f"hashgrid takes 1 to {len(PRIMES)} coordinates, got {in_features}")
        self.d = in_features
        self.table_size = 2**log2_table
        res = level_resolutions(levels, base, finest)
        self.register_buffer("res", torch.tensor(res, dtype=torch.int64))
        dense = [(r + 1) ** in_features <= self.table_size for r in res]
        self.register_buffer("dense", torch.tensor(dense))
        # Dense strides (r+1)^k per axis; unused on hashed levels.
        strides = [[(r + 1) ** k for k in range(in_features)] for r in res]
        self.register_buffer("strides", torch.tensor(strides, dtype=torch.int64))
        self.register_buffer("primes", torch.tensor(PRIMES[:in_features], dtype=torch.int64))
        corners = list(itertools.product((0, 1), repeat=in_features))
        self.register_buffer("corners", torch.tensor(corners, dtype=torch.int64))  # (2^d, d)
        self.table = nn.Parameter(torch.empty(levels, self.table_size, features))
        nn.init.uniform_(self.table, -1e-4, 1e-4)  # the paper's init
        self.out_features = levels * features

    def indices(self, cell: torch.Tensor) -> torch.Tensor:
        """Table rows of vertices ``cell`` (N, L, C, d) integer coordinates -> (N, L, C)."""
        dense = (cell * self.strides[None, :, None, :]).sum(-1)
        h = (cell * self.primes) & MASK32  # uint32 products, as the paper's CUDA code
        hashed = h[..., 0]
        for k in range(1, self.d):
            hashed = hashed ^ h[..., k]
        idx = torch.where(self.dense[None, :, None], dense, hashed)
        return idx & (self.table_size - 1)

    def corner_indices(self, base: torch.Tensor) -> torch.Tensor:
        """``indices`` of the 2^d vertices of the cells at ``base`` (N, L, d) -> (N, L, C).

        Fast path of ``indices(base[:, :, None] + corners)``: products are formed once per
        cell and per corner offset, then added (mod 2^32 both ways), not per vertex.
        """
        dense = (base * self.strides).sum(-1)[..., None] + (
            self.corners[None] * self.strides[:, None, :]
        ).sum(-1)  # (N, L, 1) + (L, C)
        hb = base * self.primes  # (N, L, d)
        off = self.corners * self.primes  # (C, d)
        hashed = (hb[..., 0, None] + off[:, 0]) & MASK32
        for k in range(1, self.d):
            hashed = hashed ^ ((hb[..., k, None] + off[:, k]) & MASK32)
        idx = torch.where(self.dense[None, :, None], dense, hashed)
        return idx & (self.table_size - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = ((x + 1) / 2).clamp(0, 1)  # [-1, 1] -> [0, 1]
        pos = u[:, None, :] * self.res[None, :, None].to(u.dtype)  # (N, L, d)
        base = pos.floor().clamp(max=self.res[None, :, None] - 1)
        frac = pos - base
        idx = self.corner_indices(base.long())  # (N, L, C)
        levels, size, feats = self.table.shape
        # One embedding gather over the levels' tables laid end to end.
        flat = idx + torch.arange(levels, device=x.device)[:, None] * size
        got = nn.functional.embedding(flat, self.table.view(levels * size, feats))
        c = self.corners.to(u.dtype)
        f = frac[:, :, None, :]
        w = (c * f + (1 - c) * (1 - f)).prod(-1)  # (N, L, C) d-linear weights
        return (w[..., None] * got).sum(2).flatten(1)


class HashGridField(FieldEncoding):
    """Multiresolution hash encoding (Mueller 2022), levels vectorised in torch, + ReLU MLP."""

    name = "hashgrid"
    params = {
        "levels": Param(8, low=1, doc="L, grid levels"),
        "features": Param(2, low=1, doc="F, features per level"),
        "log2_table": Param(15, low=4, high=24, doc="T, table size 2^T per level"),
        "base": Param(16, low=1, doc="N_min, coarsest resolution"),
        "finest": Param(256, low=1, doc="N_max, finest resolution"),
        "width": Param(64, low=1, doc="MLP hidden width"),
        "depth": Param(2, low=1, doc="MLP hidden layers"),
    }

    @classmethod
    def resolve_params(cls, values: dict[str, Any]) -> dict[str, Any]:
        v = super().resolve_params(values)
        if v["finest"] < v["base"]:
            raise FieldParamError(
                cls.name, v, "finest is below base (levels must not coarsen)", ("base", "finest")
            )
        return v

    def build(self, in_features: int, out_features: int, **kwargs: Any) -> nn.Module:
        v = self.values
        grid = HashGrid(
            in_features, v["levels"], v["features"], v["log2_table"], v["base"], v["finest"]
        )
        return nn.Sequential(
            grid, relu_mlp(grid.out_features, out_features, v["width"], v["depth"])
        )
