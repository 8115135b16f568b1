"""``voxelmorph``: a U-Net predicting a stationary velocity field, trained in the cell.

VoxelMorph (Balakrishnan 2019) with the diffeomorphic integration of Dalca 2019: the
U-Net sees (moving, fixed) and outputs v; phi = exp(v) by scaling and squaring (7
steps, the cell's ``svf_exp`` backend); loss = similarity(moving o phi, fixed) +
weight * diffusion(v). It trains, unsupervised, on ``problem.training_pairs`` (pairs
made like the test pair with other seeds; never the test pair itself for synthetic
data), timed as ``train``; then one forward pass registers the test pair (the task's
``register`` time, which includes training: ``register - train`` is inference).
"""

from __future__ import annotations

import time
from itertools import cycle, islice

import torch
import torch.nn.functional as F
from torch import nn

from bench import CellContext, Param
from plugins.methods.registration.base import (
    CURVE_EVERY,
    RegistrationMethod,
    adam_tuning,
    positive,
)
from plugins.methods.registration.losses import diffusion
from plugins.methods.registration.problem import Problem, Result


class UNet(nn.Module):
    """VoxelMorph's U-Net, ``features`` channels at every level, LeakyReLU 0.2; the flow
    head starts at N(0, 1e-5) as in VoxelMorph."""

    def __init__(self, ndim: int, features: int, depth: int) -> None:
        super().__init__()
        conv = nn.Conv2d if ndim == 2 else nn.Conv3d
        self.ndim, self.depth = ndim, depth
        self.down = nn.ModuleList()
        ch = 2
        for _ in range(depth):
            self.down.append(conv(ch, features, 3, stride=2, padding=1))
            ch = features
        self.up = nn.ModuleList(conv(2 * features, features, 3, padding=1) for _ in range(depth))
        self.first = conv(2, features, 3, padding=1)
        self.head = conv(features, ndim, 3, padding=1)
        nn.init.normal_(self.head.weight, std=1e-5)
        nn.init.zeros_(self.head.bias)

    def forward(self, moving: torch.Tensor, fixed: torch.Tensor) -> torch.Tensor:
        x = torch.cat([moving, fixed], dim=1)
        skips = [F.leaky_relu(self.first(x), 0.2)]
        for layer in self.down:
            x = F.leaky_relu(layer(x), 0.2)
            skips.append(x)
        x = skips.pop()
        mode = "bilinear" if self.ndim == 2 else "trilinear"
        for layer in self.up:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[2:], mode=mode, align_corners=False)
            x = F.leaky_relu(layer(torch.cat([x, skip], dim=1)), 0.2)
        return self.head(x)


class VoxelMorph(RegistrationMethod):
    """VoxelMorph-diff: a U-Net predicting an SVF, trained in the cell on synthetic pairs."""

    name = "voxelmorph"
    params = {
        "features": Param(16, low=2, doc="U-Net channels at every level"),
        "depth": Param(4, low=1, high=6, doc="U-Net levels"),
        "train_steps": Param(300, low=1, doc="Adam steps of training (one pair a step)"),
        "lr": positive(1e-3, "Adam learning rate"),
        "weight": positive(1.0, "weight of the velocity's diffusion"),
        "steps": Param(7, low=0, high=12, doc="scaling-and-squaring steps"),
        "pairs": Param(32, low=1, doc="distinct training pairs (cycled)"),
    }
    tuning = adam_tuning(params, iterations="train_steps")

    def solve(self, problem: Problem, ctx: CellContext) -> Result:
        v = self.values
        if problem.training_pairs is None:
            raise ValueError("voxelmorph needs training pairs, and this problem has none")
        net = UNet(problem.ndim, v["features"], v["depth"]).to(problem.device)
        opt = torch.optim.Adam(net.parameters(), lr=v["lr"])
        pairs = list(problem.training_pairs(v["pairs"], ctx.seed))
        start = time.perf_counter()
        for step, (fixed, moving) in enumerate(islice(cycle(pairs), v["train_steps"])):
            opt.zero_grad(set_to_none=True)
            vel = net(moving, fixed)
            warped = problem.warp(moving, problem.exp(vel, v["steps"]))
            loss = problem.similarity(warped, fixed) + v["weight"] * diffusion(vel)
            value = float(loss.detach())
            if step % CURVE_EVERY == 0 or step == v["train_steps"] - 1 or value != value:
                ctx.curve("train_loss", step, value, time.perf_counter() - start)
            ctx.check_finite("train_loss", value)
            loss.backward()
            opt.step()
        if problem.device.startswith("cuda"):
            torch.cuda.synchronize(problem.device)
        ctx.add_time("train", time.perf_counter() - start)
        net.eval()
        start = time.perf_counter()
        with torch.no_grad():
            vel = net(problem.moving, problem.fixed)
            disp = problem.exp(vel, v["steps"])
            if problem.device.startswith("cuda"):
                torch.cuda.synchronize(problem.device)
            ctx.add_time("inference", time.perf_counter() - start)
            return Result(disp, problem.exp(-vel, v["steps"]), vel)
