"""``synthesis.t1_to_t2``: contrast synthesis y = r∘m∘f(x) on the MNI152 brain.

Data: x is nilearn's MNI152 T1 template; y is a T2-like image SIMULATED from
nilearn's tissue maps (``plugins.data.mni152.simulated_t2``: CSF bright, WM dark, a
smooth bias field, noise) -- not a real T2 scan. Both are scaled by their 99th
percentile inside the brain mask and clipped to [0, 1]; axial slices whose brain
area is at least 20% of the largest are kept, every ``test_every``-th slice is held
out (train/test split by slice), and the slices are cropped to the mask's box.
Training steps see ``batch`` random ``patch`` x ``patch`` crops of training slices;
evaluation runs on the whole held-out slices.

Model: f (two 3x3 convolutions, 1 -> C channels) and r (two 3x3 convolutions,
C -> 1) are shared by both contrasts; m is the ``architecture`` slot's module with
``width`` C, applied at each pixel to the C features. Then (the lecture's notation)

    T1 -> T2:  y = r∘m∘f(x)          T2 -> T1:  x = r∘m^-1∘f(y)

``mode: reversible`` trains both directions with the same weights; ``t1_to_t2`` and
``t2_to_t1`` train one direction alone through m (the baseline a reversible m is
compared with). Losses (L1 unless said, each with its weight param): ``mapping``
|r m f(x) - y|, ``inverse`` |r m^-1 f(y) - x|, ``cycle`` x -> y -> x and y -> x -> y,
``identity`` |r m f(y) - y| + |r m^-1 f(x) - x|, ``autoencoder`` |r f(x) - x| +
|r f(y) - y|, ``feature`` mean (f(y) - m(f(x)))^2.

Metrics on the held-out slices: PSNR and MAE inside the brain mask, SSIM over the
slice (scikit-image), both directions (``*_t1_to_t2``, ``*_t2_to_t1``);
``cycle_error`` (MAE of x -> y -> x in the mask); ``invertibility_error`` max
|m^-1(m(z)) - z| over the test features; ``psnr_t1_vs_t2`` (how far apart the two
contrasts are before any synthesis). Figure ``synthesis.png``: T1, true T2,
synthesised T2, error, and the same from T2 to T1, on one held-out slice.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from bench import CellContext, Param, Plugin, Task
from plugins.architectures.base import FlowArchitecture
from plugins.data import mni152
from plugins.tasks.architectures.common import build_architecture, count_parameters, needs_inverse

MODES = ("reversible", "t1_to_t2", "t2_to_t1")
LOSSES = ("mapping", "inverse", "cycle", "identity", "autoencoder", "feature")


def psnr(pred: np.ndarray, true: np.ndarray, mask: np.ndarray, data_range: float = 1.0) -> float:
    """10 log10(range^2 / MSE) over the voxels of ``mask``."""
    mse = float(np.mean((pred[mask] - true[mask]) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(data_range**2 / mse)


def ssim(pred: np.ndarray, true: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(true, pred, data_range=1.0))


@functools.lru_cache(maxsize=2)
def load_slices(resolution: int, test_every: int) -> dict[str, Any]:
    """Normalised T1 and SIMULATED T2 axial slices, split by slice, cropped to the mask
    (cached: ~5 s of nilearn loading; callers only read the tensors)."""
    t1 = mni152.load("template", resolution).data
    t2 = mni152.simulated_t2(resolution).data
    mask = mni152.load("mask", resolution).data > 0.5

    def normalise(v: np.ndarray) -> np.ndarray:
        return np.clip(v / np.percentile(v[mask], 99), 0.0, 1.0).astype(np.float32)

    t1, t2 = normalise(t1), normalise(t2)
    area = mask.sum(axis=(0, 1))
    keep = np.flatnonzero(area >= 0.2 * area.max())
    xs, ys = np.flatnonzero(mask.any(axis=(1, 2))), np.flatnonzero(mask.any(axis=(0, 2)))
    box = (slice(max(xs[0] - 2, 0), xs[-1] + 3), slice(max(ys[0] - 2, 0), ys[-1] + 3))
    test = keep[::test_every][1:]  # every test_every-th kept slice, not the first
    train = np.setdiff1d(keep, test)

    def stack(vol: np.ndarray, idx: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.stack([vol[box][:, :, z] for z in idx])[:, None].copy())

    return {
        split: {
            "t1": stack(t1, idx),
            "t2": stack(t2, idx),
            "mask": stack(mask.astype(np.float32), idx) > 0.5,
        }
        for split, idx in (("train", train), ("test", test))
    }


class Synthesis(nn.Module):
    """f, m, r of y = r∘m∘f(x); m acts on each pixel's C features."""

    def __init__(self, m: nn.Module, channels: int, hidden: int = 16) -> None:
        super().__init__()
        self.m = m
        self.f = nn.Sequential(
            nn.Conv2d(1, hidden, 3, padding=1), nn.Tanh(), nn.Conv2d(hidden, channels, 3, padding=1)
        )
        self.r = nn.Sequential(
            nn.Conv2d(channels, hidden, 3, padding=1), nn.Tanh(), nn.Conv2d(hidden, 1, 3, padding=1)
        )

    @staticmethod
    def _pixels(fn: Any, z: torch.Tensor) -> torch.Tensor:
        b, c, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, c)
        return fn(flat).reshape(b, h, w, c).permute(0, 3, 1, 2)

    def mf(self, z: torch.Tensor) -> torch.Tensor:
        return self._pixels(self.m, z)

    def mi(self, z: torch.Tensor) -> torch.Tensor:
        return self._pixels(self.m.inverse, z)

    def forward_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.r(self.mf(self.f(x)))

    def inverse_map(self, y: torch.Tensor) -> torch.Tensor:
        return self.r(self.mi(self.f(y)))


def _l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).abs().mean()


def losses(
    model: Synthesis, x: torch.Tensor, y: torch.Tensor, mode: str, w: dict[str, float]
) -> dict[str, torch.Tensor]:
    """The weighted loss terms that ``mode`` trains, as a dict (only those weighted > 0)."""
    out: dict[str, torch.Tensor] = {}
    if mode == "t2_to_t1":  # the baseline: m trained forward from T2 to T1 alone
        out["mapping"] = _l1(model.forward_map(y), x)
        return out
    fx = model.f(x)
    y_hat = model.r(model.mf(fx))
    out["mapping"] = w["mapping"] * _l1(y_hat, y)
    if mode == "t1_to_t2":
        return out
    fy = model.f(y)
    x_hat = model.r(model.mi(fy))
    if w["inverse"] > 0:
        out["inverse"] = w["inverse"] * _l1(x_hat, x)
    if w["cycle"] > 0:
        out["cycle"] = w["cycle"] * (
            _l1(model.inverse_map(y_hat), x) + _l1(model.forward_map(x_hat), y)
        )
    if w["identity"] > 0:
        out["identity"] = w["identity"] * (
            _l1(model.r(model.mf(fy)), y) + _l1(model.r(model.mi(fx)), x)
        )
    if w["autoencoder"] > 0:
        out["autoencoder"] = w["autoencoder"] * (_l1(model.r(fx), x) + _l1(model.r(fy), y))
    if w["feature"] > 0:
        out["feature"] = w["feature"] * (fy - model.mf(fx)).pow(2).mean()
    return out


def _patches(
    split: dict[str, torch.Tensor], batch: int, size: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` random square patches (one per random slice) of T1 and T2 at the same
    place: the cost of a step does not depend on the slice size."""
    n, _, h, w = split["t1"].shape
    idx = torch.randint(n, (batch,), generator=gen)
    sh, sw = min(size, h), min(size, w)
    rows = torch.randint(h - sh + 1, (batch,), generator=gen)
    cols = torch.randint(w - sw + 1, (batch,), generator=gen)
    xs, ys = [], []
    for i, r, c in zip(idx.tolist(), rows.tolist(), cols.tolist()):
        xs.append(split["t1"][i, :, r : r + sh, c : c + sw])
        ys.append(split["t2"][i, :, r : r + sh, c : c + sw])
    return torch.stack(xs), torch.stack(ys)


def _figure(panels: list[tuple[str, np.ndarray, bool]], title: str) -> Figure:
    fig = Figure(figsize=(9.0, 4.8), dpi=80)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=0.86, wspace=0.05, hspace=0.2)
    fig.suptitle(title, fontsize=9)
    for i, (name, image, is_error) in enumerate(panels):
        ax = fig.add_subplot(2, 4, i + 1)
        shown = np.rot90(image)  # anterior up
        if is_error:
            ax.imshow(shown, cmap="magma", vmin=0.0, vmax=0.3)
        else:
            ax.imshow(shown, cmap="gray", vmin=0.0, vmax=1.0)
        ax.set_title(name, fontsize=8)
        ax.axis("off")
    return fig


class SynthesisT1ToT2(Task):
    """MNI152 T1 <-> SIMULATED T2 by y = r∘m∘f(x), m from the architecture slot."""

    name = "synthesis.t1_to_t2"
    components = {"architecture": FlowArchitecture}
    params = {
        "mode": Param(
            "reversible", choices=MODES, doc="both directions through m and m^-1, or one alone"
        ),
        "resolution": Param(2, choices=(1, 2), doc="MNI152 voxel size in mm"),
        "test_every": Param(4, low=2, doc="every n-th brain slice is held out"),
        "steps": Param(400, low=1, doc="Adam steps"),
        "batch": Param(8, low=1, doc="training patches per step (one per random slice)"),
        "patch": Param(64, low=8, doc="side of the random square patch cut from each slice"),
        "lr": Param(2e-3, low=0.0, low_open=True, doc="Adam learning rate"),
        "figures": Param(True, doc="keep the synthesis figure"),
        **{
            f"w_{name}": Param(default, low=0.0, doc=f"weight of the {name} loss (reversible mode)")
            for name, default in zip(LOSSES, (1.0, 1.0, 0.0, 0.0, 0.1, 0.0))
        },
    }

    @classmethod
    def check_component(cls, slot: str, plugin: type[Plugin]) -> str | None:
        return needs_inverse(plugin, cls.name)

    def run(self, ctx: CellContext) -> None:
        p = ctx.params
        dev = ctx.device
        data = load_slices(p["resolution"], p["test_every"])
        train, test = data["train"], data["test"]
        arch, m = build_architecture(ctx)
        model = Synthesis(m, m.width).to(dev)
        ctx.metric("parameters", count_parameters(model))
        ctx.metric("train_slices", train["t1"].shape[0])
        ctx.metric("test_slices", test["t1"].shape[0])
        weights = {name: p[f"w_{name}"] for name in LOSSES}
        opt = torch.optim.Adam(model.parameters(), lr=p["lr"])
        gen = torch.Generator().manual_seed(ctx.seed)
        with ctx.memory("train"):
            t0 = time.perf_counter()
            for step in range(p["steps"]):
                x, y = _patches(train, p["batch"], p["patch"], gen)
                x, y = x.to(dev), y.to(dev)
                terms = losses(model, x, y, p["mode"], weights)
                loss = sum(terms.values())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if step % 10 == 0 or step == p["steps"] - 1:
                    elapsed = time.perf_counter() - t0
                    ctx.curve("loss", step, loss.detach(), elapsed)
                    ctx.check_finite("loss", loss.detach())
            ctx.add_time("train", time.perf_counter() - t0)
        ctx.metric("final_loss", loss.detach())
        self._evaluate(ctx, model, test, arch.name)

    def _evaluate(self, ctx: CellContext, model: Synthesis, test: dict, arch: str) -> None:
        mode = ctx.params["mode"]
        model.eval()
        x, y = test["t1"].to(ctx.device), test["t2"].to(ctx.device)
        mask = test["mask"].numpy()
        with torch.no_grad():
            preds: dict[str, torch.Tensor] = {}
            if mode in ("reversible", "t1_to_t2"):
                preds["t1_to_t2"] = model.forward_map(x)
            if mode == "reversible":
                preds["t2_to_t1"] = model.inverse_map(y)
            if mode == "t2_to_t1":
                preds["t2_to_t1"] = model.forward_map(y)
            truth = {"t1_to_t2": y, "t2_to_t1": x}
            for name, pred in preds.items():
                ctx.check_finite(name, pred)
                a = pred.clamp(0, 1).cpu().numpy()
                b = truth[name].cpu().numpy()
                ctx.metric(f"psnr_{name}", psnr(a, b, mask))
                ctx.metric(f"mae_{name}", float(np.abs(a - b)[mask].mean()))
                ctx.metric(f"ssim_{name}", np.mean([ssim(a[i, 0], b[i, 0]) for i in range(len(a))]))
            ctx.metric("psnr_t1_vs_t2", psnr(x.cpu().numpy(), y.cpu().numpy(), mask))
            if mode == "reversible":
                back = model.inverse_map(preds["t1_to_t2"]).clamp(0, 1).cpu().numpy()
                ctx.metric("cycle_error", float(np.abs(back - x.cpu().numpy())[mask].mean()))
                z = model.f(x)
                mz = model.mf(z)
                ctx.metric("invertibility_error", (model.mi(mz) - z).abs().max())
                # how much m moves the features, relative to their size (0: m is idle)
                ctx.metric("m_relative_move", (mz - z).norm() / z.norm())
        if ctx.params["figures"] and len(x):
            self._figure(ctx, x, y, preds, arch, mode)

    @staticmethod
    def _figure(ctx: CellContext, x, y, preds, arch: str, mode: str) -> None:
        i = len(x) // 2
        x0, y0 = x[i, 0].cpu().numpy(), y[i, 0].cpu().numpy()
        panels = []
        for name, src, tgt in (("t1_to_t2", x0, y0), ("t2_to_t1", y0, x0)):
            if name not in preds:
                continue
            a = preds[name][i, 0].clamp(0, 1).cpu().numpy()
            s, t = name.split("_to_")
            panels += [
                (s.upper(), src, False),
                (f"true {t.upper()}", tgt, False),
                (f"synthesised {t.upper()}", a, False),
                ("|error|", np.abs(a - tgt), True),
            ]
        title = f"{arch}, {mode}: MNI152 T1 and SIMULATED T2 (held-out slice)"
        ctx.artifact("synthesis.png", _figure(panels, title))
