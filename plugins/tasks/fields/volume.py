"""``fields.volume_fit`` and ``fields.occupancy``: 3-D fields on the MNI152 template.

Volumes come from nilearn's shipped MNI152 2009 maps (``plugins.data.mni152``) or a
user's NIfTI; ``downsample`` k keeps every k-th voxel along each axis (the affine
follows), so that a CPU run or a test can take a coarser grid of the same anatomy.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench import CellContext, Headline, Param, Plugin
from plugins.tasks.fields.common import (
    FieldTask,
    evaluate,
    figure_of,
    fit,
    fit_params,
    mse_loss,
    pixel_grid,
    psnr,
    record_throughput,
    ssim,
)

#: a user NIfTI's "mask" for psnr_mask: voxels above this fraction of its maximum
FOREGROUND = 0.05


def _subsample(data: np.ndarray, affine: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every k-th voxel from index 0; the new voxel (i, j, l) is the old (k i, k j, k l)."""
    out = np.ascontiguousarray(data[::k, ::k, ::k])
    scaled = affine.copy()
    scaled[:3, :3] = affine[:3, :3] * k
    return out, scaled


def _subsampled_side(shape: tuple[int, ...], k: int) -> int:
    """The longest axis of ``_subsample``'s grid: every k-th voxel from index 0."""
    return max(-(-n // k) for n in shape)


@functools.lru_cache(maxsize=64)
def _volume_shape(image: str, resolution: int) -> tuple[int, ...]:
    """The volume's grid (validation asks it once per cell: a header read, cached)."""
    if image == "mni152":
        from plugins.data import mni152

        return mni152.load("template", resolution).data.shape
    import nibabel as nib

    return tuple(nib.load(image).shape[:3])


def _load_volume(image: str, resolution: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(data scaled to [0, 1], affine, mask) of the MNI152 T1 or a user NIfTI."""
    if image == "mni152":
        from plugins.data import mni152

        vol, mask = mni152.load("template", resolution), mni152.load("mask", resolution)
        data = vol.data / max(float(vol.data.max()), 1e-12)
        return data.astype(np.float32), vol.affine, mask.data > 0.5
    import nibabel as nib

    img = nib.load(image)
    data = np.asarray(img.get_fdata(), dtype=np.float64)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    lo, hi = float(data.min()), float(data.max())
    data = (data - lo) / max(hi - lo, 1e-12)
    return data.astype(np.float32), np.asarray(img.affine, dtype=np.float64), data > FOREGROUND


def _volume_problem(image: str) -> str | None:
    """Why ``image`` cannot be fitted as a volume, or None (a Param check)."""
    if image == "mni152":
        return None
    path = Path(image).expanduser()
    if not str(image).endswith((".nii", ".nii.gz")):
        return f"image {image!r} is neither 'mni152' nor a .nii/.nii.gz path"
    if not path.is_file():
        return f"image file {image!r} does not exist"
    try:
        import nibabel as nib

        shape = nib.load(str(path)).shape
    except Exception as exc:  # noqa: BLE001 - any reader failure is "unreadable"
        return f"image file {image!r} is not readable: {exc}"
    if len(shape) != 3 and not (len(shape) == 4 and shape[3] == 1):
        return f"image {image!r} is not a 3-D volume (shape {shape})"
    return None


def _mid_slice(volume: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(volume[:, :, volume.shape[2] // 2]))


class VolumeFit(FieldTask):
    """Fit a 3-D volume (MNI152 T1 or a NIfTI): PSNR overall and in the brain mask, NIfTI out."""

    name = "fields.volume_fit"
    headline = Headline(
        size="params",
        quality={"psnr": "higher", "psnr_mask": "higher", "ssim": "higher"},
        cost="time.fit.median",
        curves=("psnr", "loss"),
        problem=("image", "resolution", "downsample"),
    )
    params = {
        "image": Param(
            "mni152", check=_volume_problem, doc="mni152 (nilearn's T1) or a 3-D NIfTI path"
        ),
        "resolution": Param(2, choices=(1, 2), doc="MNI152 voxel size (mm)"),
        "downsample": Param(1, low=1, doc="keep every k-th voxel along each axis"),
        "batch": Param(2**14, low=1, doc="random voxels a step"),
        **fit_params(500, 1e-3, 100, 30.0),
    }

    @classmethod
    def field_resolution(cls, params: dict[str, Any]) -> int | None:
        shape = _volume_shape(params["image"], params["resolution"])
        return _subsampled_side(shape, params["downsample"])

    @classmethod
    def batched(cls, params: dict[str, Any]) -> bool:
        return True

    def run(self, ctx: CellContext) -> None:
        v = self.values
        data, affine, mask = _load_volume(v["image"], v["resolution"])
        data, affine = _subsample(data, affine, v["downsample"])
        mask = mask[:: v["downsample"], :: v["downsample"], :: v["downsample"]]
        shape = data.shape
        grid = pixel_grid(shape, ctx.device)
        y = torch.from_numpy(data.reshape(-1, 1)).to(ctx.device)
        inside = torch.from_numpy(mask.reshape(-1)).to(ctx.device)
        model = self.build_model(ctx, 3, 1, max(shape))
        ctx.metric("compression_ratio", data.size / ctx.record.metrics["params"])
        ctx.metric("voxels", data.size)
        batch = min(v["batch"], len(grid))

        def loss_fn(step: int) -> torch.Tensor:
            idx = torch.randint(len(grid), (batch,), device=ctx.device)
            return mse_loss(model, grid[idx], y[idx])

        def evaluate_fn() -> dict[str, float]:
            out = evaluate(model, grid)
            return {"psnr": psnr(out, y), "psnr_mask": psnr(out[inside], y[inside])}

        fit(
            ctx, model, loss_fn, evaluate_fn,
            **self.fit_settings(),
            threshold=("psnr", v["target_psnr"]),
        )  # fmt: skip
        recon = evaluate(model, grid).cpu().numpy().reshape(shape)
        ctx.metric("psnr", psnr(recon, data))
        ctx.metric("psnr_mask", psnr(recon[mask], data[mask]))
        if min(shape) >= 7:  # scikit-image's SSIM window is 7 voxels
            ctx.metric("ssim", ssim(np.clip(recon, 0, 1), data))
        ctx.artifact("fitted", recon.astype(np.float32), affine=affine)
        err = np.abs(_mid_slice(recon) - _mid_slice(data))
        ctx.artifact("slice_reconstruction", np.clip(_mid_slice(recon), 0, 1), vmin=0.0, vmax=1.0)
        ctx.artifact("slice_error", err, vmin=0.0, vmax=max(float(err.max()), 1e-6), cmap="magma")
        fig = figure_of(
            {"target": _mid_slice(data), "fitted": _mid_slice(recon), "|error|": err},
            cmaps={"|error|": "magma"},
        )
        ctx.artifact("slice_comparison", fig)
        record_throughput(ctx, model, grid)


def _world(shape: tuple[int, ...], affine: np.ndarray) -> np.ndarray:
    """(prod(shape), 3) world (mm) coordinates of every voxel centre."""
    idx = np.stack(np.meshgrid(*(np.arange(n) for n in shape), indexing="ij"), -1)
    idx = idx.reshape(-1, 3).astype(np.float64)
    return idx @ affine[:3, :3].T + affine[:3, 3]


def iou(pred: torch.Tensor, truth: torch.Tensor) -> float:
    """Intersection over union of two boolean occupancies."""
    union = float((pred | truth).sum())
    return 1.0 if union == 0 else float((pred & truth).sum()) / union


class Occupancy(FieldTask):
    """Occupancy of the MNI152 brain mask (BCE); IoU at 0.5 on the 2 mm grid and the 1 mm grid.

    The field's output is read as a logit (BCE with logits; occupied where it is > 0):
    an encoding with a bounded output (a sigmoid) would call every voxel occupied, so
    ``encoding.output: sigmoid`` is refused.
    """

    name = "fields.occupancy"
    headline = Headline(
        size="params",
        quality={"iou": "higher", "iou_fine": "higher"},
        cost="time.fit.median",
        curves=("iou", "loss"),
        problem=("downsample",),
    )
    data_params = ()  # the one MNI152 brain mask
    params = {
        "downsample": Param(1, low=1, doc="keep every k-th voxel (both grids)"),
        "batch": Param(2**14, low=1, doc="random training voxels a step"),
        **{k: p for k, p in fit_params(500, 1e-3, 100, 0.0).items() if k != "target_psnr"},
        "target_iou": Param(0.9, low=0.0, high=1.0, doc="threshold X of time_to_iou_X"),
    }

    @classmethod
    def field_resolution(cls, params: dict[str, Any]) -> int | None:
        return _subsampled_side(_volume_shape("mni152", 2), params["downsample"])  # mask's grid

    @classmethod
    def batched(cls, params: dict[str, Any]) -> bool:
        return True

    @classmethod
    def check_cell(cls, components: dict[str, type[Plugin]], params: dict[str, Any]) -> str | None:
        reason = super().check_cell(components, params)
        if reason is None and params.get("encoding.output") == "sigmoid":
            return (
                "the field's output is read as a logit (occupied where > 0): output "
                "sigmoid is positive everywhere, every voxel would read as occupied "
                "(use output: none)"
            )
        return reason

    def run(self, ctx: CellContext) -> None:
        from plugins.data import mni152

        k = self.values["downsample"]
        v = self.values
        coarse, coarse_aff = _subsample(
            mni152.load("mask", 2).data > 0.5, mni152.load("mask", 2).affine, k
        )
        fine, fine_aff = _subsample(
            mni152.load("mask", 1).data > 0.5, mni152.load("mask", 1).affine, k
        )
        # One frame for both grids: world mm scaled so the 2 mm volume spans [-1, 1].
        world = _world(coarse.shape, coarse_aff)
        lo, hi = world.min(0), world.max(0)
        centre, half = (lo + hi) / 2, (hi - lo) / 2

        def frame(points: np.ndarray) -> torch.Tensor:
            return torch.tensor((points - centre) / half, dtype=torch.float32, device=ctx.device)

        x, x_fine = frame(world), frame(_world(fine.shape, fine_aff))
        y = torch.from_numpy(coarse.reshape(-1, 1).astype(np.float32)).to(ctx.device)
        y_bool = y[:, 0] > 0.5
        fine_bool = torch.from_numpy(fine.reshape(-1)).to(ctx.device)
        model = self.build_model(ctx, 3, 1, max(coarse.shape))
        ctx.metric("compression_ratio", coarse.size / ctx.record.metrics["params"])
        ctx.metric("voxels", coarse.size)
        ctx.metric("voxels_fine", fine.size)
        bce = torch.nn.BCEWithLogitsLoss()
        batch = min(v["batch"], len(x))

        def loss_fn(step: int) -> torch.Tensor:
            idx = torch.randint(len(x), (batch,), device=ctx.device)
            return bce(model(x[idx]), y[idx])

        def evaluate_fn() -> dict[str, float]:
            # probability 0.5 is logit 0
            return {
                "iou": iou(evaluate(model, x)[:, 0] > 0, y_bool),
                "iou_fine": iou(evaluate(model, x_fine)[:, 0] > 0, fine_bool),
            }

        fit(
            ctx, model, loss_fn, evaluate_fn,
            **self.fit_settings(),
            threshold=("iou", v["target_iou"]),
        )  # fmt: skip
        pred = evaluate(model, x)[:, 0] > 0
        pred_fine = evaluate(model, x_fine)[:, 0] > 0
        ctx.metric("iou", iou(pred, y_bool))
        ctx.metric("iou_fine", iou(pred_fine, fine_bool))
        ctx.metric("accuracy_fine", float((pred_fine == fine_bool).float().mean()))
        occ = pred_fine.cpu().numpy().reshape(fine.shape).astype(np.float32)
        ctx.artifact("occupancy_fine", occ, affine=fine_aff)
        fig = figure_of(
            {
                "mask 1 mm": _mid_slice(fine.astype(np.float32)),
                "predicted (p > 0.5)": _mid_slice(occ),
                "disagreement": _mid_slice(np.abs(occ - fine)),
            }
        )
        ctx.artifact("slice_comparison", fig)
        record_throughput(ctx, model, x_fine)
