"""``fields.image_fit``, ``fields.poisson`` and ``fields.multires``: 2-D images.

Images come from ``plugins.data.images`` (scikit-image's shipped images, the MNI152
slice, a user's PNG/NIfTI), as values in [0, 1] on pixel-centre coordinates in
[-1, 1]; every PSNR has peak 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from bench import CellContext, Headline, Param
from plugins.data.images import COLORS, check_image, describe_image, load_image
from plugins.encodings.errors import FieldParamError
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


def _image_exists(name: str) -> str | None:
    try:
        describe_image(name)
    except ValueError as exc:
        return str(exc)
    return None


def _image_params(size: int) -> dict[str, Param]:
    return {
        "image": Param(
            "camera",
            check=_image_exists,
            doc="scikit-image name, mni152_slice, or a PNG/NIfTI path",
        ),
        "color": Param("grey", choices=COLORS, doc="grey, rgb, or luminance (RGB to grey)"),
        "size": Param(size, low=8, doc="side of the square image fitted (px)"),
    }


def _check_image_params(name: str, v: dict[str, Any]) -> None:
    reason = check_image(v["image"], v["size"], v["color"])
    if reason:
        raise FieldParamError(name, v, reason)


def _check_grey_image_params(name: str, v: dict[str, Any]) -> None:
    """``_check_image_params`` for a task that fits one grey channel."""
    _check_image_params(name, v)
    if v["color"] == "rgb":
        raise FieldParamError(name, v, "fits a grey image (color: grey or luminance)")


def _channels(image: np.ndarray) -> int:
    return 3 if image.ndim == 3 else 1


def _as_image(values: torch.Tensor, shape: tuple[int, ...]) -> np.ndarray:
    return values.detach().float().cpu().numpy().reshape(shape)


def _save_pictures(
    ctx: CellContext, recon: np.ndarray, target: np.ndarray, prefix: str = ""
) -> None:
    """Reconstruction (PNG, [0, 1]), absolute error map (PNG, magma) and a side-by-side."""
    err = np.abs(recon - target)
    if err.ndim == 3:
        err = err.mean(-1)
    ctx.artifact(f"{prefix}reconstruction", np.clip(recon, 0, 1), vmin=0.0, vmax=1.0)
    ctx.artifact(f"{prefix}error", err, vmin=0.0, vmax=max(float(err.max()), 1e-6), cmap="magma")
    fig = figure_of({"target": target, "fitted": recon, "|error|": err}, cmaps={"|error|": "magma"})
    ctx.artifact(f"{prefix}comparison", fig)


def heldout_mask(shape: tuple[int, int]) -> np.ndarray:
    """The pixels ``holdout`` does not train on: all but the even-row, even-column
    quarter (``[::2, ::2]``), as a boolean ``shape`` array (three quarters of the grid)."""
    mask = np.ones(shape, dtype=bool)
    mask[::2, ::2] = False
    return mask


def heldout_psnr(recon: np.ndarray, image: np.ndarray) -> float:
    """PSNR over the held-out pixels only (``heldout_mask``), every channel."""
    mask = heldout_mask(image.shape[:2])
    return psnr(recon[mask], image[mask])


class ImageFit(FieldTask):
    """Fit an image with a field (Adam): PSNR/SSIM/time-to-PSNR, Tancik's held-out option.

    With ``holdout``: ``psnr`` is on the training pixels (``[::2, ::2]``), ``psnr_test``
    on the full grid (Tancik's interactive notebook cell: a quarter of it was trained
    on), ``psnr_heldout`` on the other three quarters only (pixels never trained on),
    and ``psnr_heldout_odd`` on the odd-row, odd-column quarter (``[1::2, 1::2]``: the
    test set of the notebook's final cell, which made the paper's table).
    """

    name = "fields.image_fit"
    # with holdout the primary is the PSNR on pixels never trained on (psnr_heldout,
    # recorded only then: the headline drops it from runs without); psnr is on the
    # training pixels, where a field that memorises them leads
    headline = Headline(
        size="params",
        quality={
            "psnr_heldout": "higher",
            "psnr": "higher",
            "ssim": "higher",
            "psnr_test": "higher",
        },  # fmt: skip
        cost="time.fit.median",
        curves=("psnr", "loss"),
        problem=("image", "color", "size", "holdout"),
        floor={"psnr": "psnr_floor", "psnr_heldout": "psnr_heldout_floor"},
    )
    params = {
        **_image_params(256),
        **fit_params(500, 1e-3, 50, 30.0),
        "holdout": Param(
            False,
            doc="Tancik 2020: train on every other pixel (size/2 grid), test on all (psnr_test)",
        ),
        "batch": Param(0, low=0, doc="points a step (0: every training pixel)"),
    }

    @classmethod
    def resolve_params(cls, values: dict[str, Any]) -> dict[str, Any]:
        v = super().resolve_params(values)
        _check_image_params(cls.name, v)
        if v["holdout"] and v["size"] % 2:
            raise FieldParamError(cls.name, v, f"holdout needs an even size, got {v['size']}")
        return v

    @classmethod
    def field_resolution(cls, params: dict[str, Any]) -> int | None:
        return params["size"] // 2 if params["holdout"] else params["size"]

    @classmethod
    def tuning_metric(cls, params: dict[str, Any]) -> str | None:
        return "psnr_heldout" if params["holdout"] else "psnr"

    @classmethod
    def batched(cls, params: dict[str, Any]) -> bool:
        return params["batch"] > 0

    def run(self, ctx: CellContext) -> None:
        v = self.values
        image = load_image(v["image"], v["size"], v["color"])
        shape, ch = image.shape, _channels(image)
        full = torch.from_numpy(image.reshape(-1, ch)).to(ctx.device)
        grid = pixel_grid(shape[:2], ctx.device)
        if v["holdout"]:
            # The even pixels' centres of the full grid: a (size/2)^2 grid, 2x the spacing.
            train_img = image[::2, ::2]
            keep = torch.zeros(shape[:2], dtype=torch.bool)
            keep[::2, ::2] = True
            keep = keep.reshape(-1).to(ctx.device)
            x_train, y_train = grid[keep], full[keep]
            resolution = v["size"] // 2
        else:
            train_img, x_train, y_train, resolution = image, grid, full, v["size"]
        model = self.build_model(ctx, 2, ch, resolution)
        ctx.metric("compression_ratio", image.size / ctx.record.metrics["params"])
        batch = v["batch"]

        def loss_fn(step: int) -> torch.Tensor:
            if batch and batch < len(x_train):
                idx = torch.randint(len(x_train), (batch,), device=ctx.device)
                return mse_loss(model, x_train[idx], y_train[idx])
            return mse_loss(model, x_train, y_train)

        def evaluate_fn() -> dict[str, float]:
            out = {"psnr": psnr(evaluate(model, x_train), y_train)}
            if v["holdout"]:
                pred = evaluate(model, grid)
                out["psnr_test"] = psnr(pred, full)
                out["psnr_heldout"] = psnr(pred[~keep], full[~keep])
            return out

        fit(
            ctx, model, loss_fn, evaluate_fn,
            **self.fit_settings(),
            threshold=("psnr", v["target_psnr"]),
        )  # fmt: skip
        recon = _as_image(evaluate(model, grid), shape)
        train_recon = recon[::2, ::2] if v["holdout"] else recon
        ctx.metric("psnr", psnr(train_recon, train_img))
        # what a field that learned nothing but the mean scores (a user audit: a fit
        # 0.2 dB above it was ranked beside real ones with no hint)
        mean = train_img.reshape(-1, ch).mean(0)
        ctx.metric("psnr_floor", psnr(np.broadcast_to(mean, train_img.shape), train_img))
        ctx.metric("ssim", ssim(np.clip(train_recon, 0, 1), train_img, rgb=ch == 3))
        if v["holdout"]:
            ctx.metric(
                "psnr_heldout_floor",
                heldout_psnr(np.broadcast_to(mean, image.shape).astype(np.float32), image),
            )
            ctx.metric("psnr_test", psnr(recon, image))
            ctx.metric("ssim_test", ssim(np.clip(recon, 0, 1), image, rgb=ch == 3))
            ctx.metric("psnr_heldout", heldout_psnr(recon, image))
            ctx.metric("psnr_heldout_odd", psnr(recon[1::2, 1::2], image[1::2, 1::2]))
        _save_pictures(ctx, recon, image)
        record_throughput(ctx, model, grid)


def sobel_gradient(image: np.ndarray) -> np.ndarray:
    """dI/dx per coordinate unit, (H, W, 2) along (row, column), from Sobel filters.

    scipy's Sobel is 8x the per-pixel derivative (smoothing 1-2-1 sums to 4, the
    central difference spans 2 pixels); pixels are 2/N apart on [-1, 1], so the
    derivative per unit is sobel / 8 * N / 2.
    """
    from scipy import ndimage

    n = image.shape[0]
    grads = [ndimage.sobel(image.astype(np.float64), axis=a) for a in (0, 1)]
    return (np.stack(grads, -1) * n / 16.0).astype(np.float32)


def laplacian(image: np.ndarray) -> np.ndarray:
    """The image's Laplacian per squared coordinate unit (5-point stencil / (2/N)^2)."""
    from scipy import ndimage

    n = image.shape[0]
    return (ndimage.laplace(image.astype(np.float64)) * (n / 2.0) ** 2).astype(np.float32)


def field_derivatives(model: torch.nn.Module, x: torch.Tensor, order: int) -> torch.Tensor:
    """Gradient (order 1, (N, 2)) or Laplacian (order 2, (N, 1)) of a scalar field at x,
    kept in the graph so a loss on it trains the field."""
    x = x.detach().requires_grad_()
    y = model(x)
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    if order == 1:
        return g
    lap = torch.zeros(len(x), 1, device=x.device, dtype=x.dtype)
    for k in range(x.shape[1]):
        (gg,) = torch.autograd.grad(g[:, k].sum(), x, create_graph=True)
        lap = lap + gg[:, k : k + 1]
    return lap


class Poisson(FieldTask):
    """SIREN's Poisson experiment: fit only the image's Sobel gradients (or Laplacian);
    PSNR after matching what the supervision leaves free (the mean; for a Laplacian, the
    harmonic polynomials of degree <= 2)."""

    name = "fields.poisson"
    headline = Headline(
        size="params",
        quality={"psnr": "higher", "ssim": "higher"},
        cost="time.fit.median",
        curves=("psnr", "loss"),
        problem=("image", "color", "size", "supervise"),
        floor={"psnr": "psnr_floor"},
    )
    backends = ("sine_mlp.eager",)
    backend_reason = (
        "the loss differentiates the field's input gradient again, and the fused and "
        "compiled sine_mlp backends differentiate once"
    )
    params = {
        **_image_params(256),
        **fit_params(1000, 1e-4, 100, 30.0),
        "supervise": Param("gradient", choices=("gradient", "laplacian"), doc="what the loss sees"),
    }

    @classmethod
    def resolve_params(cls, values: dict[str, Any]) -> dict[str, Any]:
        v = super().resolve_params(values)
        _check_grey_image_params(cls.name, v)
        return v

    @classmethod
    def field_resolution(cls, params: dict[str, Any]) -> int | None:
        return params["size"]

    def run(self, ctx: CellContext) -> None:
        v = self.values
        image = load_image(v["image"], v["size"], v["color"])
        grid = pixel_grid(image.shape, ctx.device)
        order = 1 if v["supervise"] == "gradient" else 2
        target_np = sobel_gradient(image) if order == 1 else laplacian(image)
        target = torch.from_numpy(target_np.reshape(len(grid), -1)).to(ctx.device)
        model = self.build_model(ctx, 2, 1, v["size"])
        ctx.metric("compression_ratio", image.size / ctx.record.metrics["params"])
        flat = image.reshape(-1)

        def loss_fn(step: int) -> torch.Tensor:
            return ((field_derivatives(model, grid, order) - target) ** 2).mean()

        # Gradients fix the image up to a constant: compare after matching means. A
        # Laplacian fixes it only up to a harmonic function (no boundary values are
        # given): compare after removing the least-squares fit of the harmonic
        # polynomials of degree <= 2 (1, x, y, xy, x^2 - y^2), and record the
        # mean-matched PSNR beside it.
        u, w = (grid[:, k].double().cpu().numpy() for k in (0, 1))
        null = [np.ones_like(u)] + ([u, w, u * w, u * u - w * w] if order == 2 else [])
        basis = np.stack(null, 1)

        def field() -> np.ndarray:
            return _as_image(evaluate(model, grid), image.shape)

        def matched(out: np.ndarray) -> np.ndarray:
            out = out.astype(np.float64)
            coef = np.linalg.lstsq(basis, flat - out.reshape(-1), rcond=None)[0]
            return (out + (basis @ coef).reshape(out.shape)).astype(np.float32)

        fit(
            ctx, model, loss_fn, lambda: {"psnr": psnr(matched(field()), image)},
            **self.fit_settings(),
            threshold=("psnr", v["target_psnr"]),
        )  # fmt: skip
        out = field()
        recon = matched(out)
        ctx.metric("psnr", psnr(recon, image))
        # a field that learned nothing, matched as the fit is: the floor of the score
        ctx.metric("psnr_floor", psnr(matched(np.zeros_like(out)), image))
        if order == 2:
            ctx.metric("psnr_mean_matched", psnr(out - out.mean() + flat.mean(), image))
        ctx.metric("ssim", ssim(np.clip(recon, 0, 1), image))
        _save_pictures(ctx, recon, image)
        mag = np.linalg.norm(target_np, axis=-1) if order == 1 else np.abs(target_np)
        ctx.artifact("supervision", mag, cmap="gray")
        record_throughput(ctx, model, grid)


def lowpass(image: np.ndarray, cutoff: float) -> np.ndarray:
    """Ideal low-pass by FFT: keep |f| <= cutoff (cycles per unit) along each axis, the
    image seen as one period of [-1, 1] (N pixels: bin k is k/2 cycles per unit)."""
    n0, n1 = image.shape
    f0 = np.abs(np.fft.fftfreq(n0, d=2.0 / n0))[:, None]
    f1 = np.abs(np.fft.fftfreq(n1, d=2.0 / n1))[None, :]
    keep = (f0 <= cutoff + 1e-9) & (f1 <= cutoff + 1e-9)
    return np.real(np.fft.ifft2(np.fft.fft2(image) * keep)).astype(np.float32)


class Multires(FieldTask):
    """Train at one size, sample at 1/4 (vs the anti-aliased image) and 4x; BACON per output."""

    name = "fields.multires"
    headline = Headline(
        size="params",
        quality={"psnr": "higher", "psnr_quarter": "higher", "psnr_4x": "higher"},
        cost="time.fit.median",
        curves=("psnr", "loss"),
        problem=("image", "color", "size"),
    )
    params = {
        **_image_params(256),
        **fit_params(500, 1e-3, 50, 30.0),
    }

    @classmethod
    def resolve_params(cls, values: dict[str, Any]) -> dict[str, Any]:
        v = super().resolve_params(values)
        _check_grey_image_params(cls.name, v)
        if v["size"] % 4:
            raise FieldParamError(cls.name, v, f"size must be a multiple of 4, got {v['size']}")
        return v

    @classmethod
    def field_resolution(cls, params: dict[str, Any]) -> int | None:
        return params["size"]

    def run(self, ctx: CellContext) -> None:
        from skimage.transform import downscale_local_mean

        v = self.values
        n = v["size"]
        image = load_image(v["image"], n, v["color"])
        grid = pixel_grid(image.shape, ctx.device)
        y = torch.from_numpy(image.reshape(-1, 1)).to(ctx.device)
        model = self.build_model(ctx, 2, 1, n)
        ctx.metric("compression_ratio", image.size / ctx.record.metrics["params"])
        # a multi-scale field's outputs by band: each output's cut-off (``cutoffs``, as
        # BACON's); a module with outputs() but no cut-offs is scored as one field
        outputs = getattr(model, "outputs", None)
        cutoffs = getattr(model, "cutoffs", None)
        if outputs is None or cutoffs is None:
            outputs = None

        fit(
            ctx, model, lambda step: mse_loss(model, grid, y),
            lambda: {"psnr": psnr(evaluate(model, grid), y)},
            **self.fit_settings(),
            threshold=("psnr", v["target_psnr"]),
        )  # fmt: skip
        recon = _as_image(evaluate(model, grid), image.shape)
        ctx.metric("psnr", psnr(recon, image))
        ctx.metric("ssim", ssim(np.clip(recon, 0, 1), image))
        _save_pictures(ctx, recon, image)

        # 1/4: the centres of 4x4 blocks, against the blocks' means (anti-aliased).
        quarter_grid = pixel_grid((n // 4, n // 4), ctx.device)
        quarter_ref = downscale_local_mean(image, (4, 4))
        field = model
        if outputs is not None:
            # BACON: the finest output whose cut-off the 1/4 grid can hold (its Nyquist
            # is (n/4)/4 cycles per unit) - Lindell 2022's alias-free evaluation.
            nyq = (n // 4) / 4.0
            fits = [i for i, c in enumerate(cutoffs) if c <= nyq + 1e-9]
            which = fits[-1] if fits else 0
            ctx.metric("quarter_output", which)

            def field(x: torch.Tensor, i: int = which) -> torch.Tensor:
                return outputs(x)[i]

        quarter = _as_image(evaluate(field, quarter_grid), quarter_ref.shape)
        ctx.metric("psnr_quarter", psnr(quarter, quarter_ref))
        ctx.artifact("quarter", np.clip(quarter, 0, 1), vmin=0.0, vmax=1.0)

        # 4x: the field between the pixels; scored where the source has the detail.
        four = 4 * n
        four_grid = pixel_grid((four, four), ctx.device)
        up = _as_image(evaluate(model, four_grid), (four, four))
        ctx.artifact("upsampled_4x", np.clip(up, 0, 1), vmin=0.0, vmax=1.0)
        if check_image(v["image"], four, v["color"]) is None:
            ctx.metric("psnr_4x", psnr(up, load_image(v["image"], four, v["color"])))

        if outputs is not None:
            with torch.no_grad():
                outs = [_as_image(torch.cat(parts), image.shape) for parts in zip(
                    *(outputs(c) for c in grid.split(2**16))
                )]  # fmt: skip
            for i, (out, cut) in enumerate(zip(outs, cutoffs)):
                ctx.metric(f"psnr_output_{i}", psnr(out, lowpass(image, cut)))
                ctx.metric(f"cutoff_output_{i}", cut)
            fig = figure_of({f"output {i} (<= {c:g} c/u)": o for i, (o, c) in enumerate(
                zip(outs, cutoffs))})  # fmt: skip
            ctx.artifact("bacon_outputs", fig)
        record_throughput(ctx, model, grid)
