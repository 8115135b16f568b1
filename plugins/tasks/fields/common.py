"""What every ``fields.*`` task shares: grids, PSNR, the model, the fit loop.

The fit loop (``fit``: Adam, or L-BFGS as an option) first takes the suite's ``warmup``
as that many untimed steps on the model, then puts back its parameters, buffers and the
random state, so that one-time costs (CUDA context, compiles, autotuning) stay out of
the time and the fit itself is the one a cold run would make. It times only the
optimisation steps (``time.fit``; evaluations between them are untimed), records a curve
point every ``eval_every`` steps against the step and the training time so far, ends the
cell ``diverged`` (its curve kept) as soon as the loss is not finite, and records
``time_to_<metric>_<X>`` / ``steps_to_<metric>_<X>``: the training time and steps until
the curve first reached the task's threshold X (absent when it never did: the harness
reads a NaN metric as a diverged cell), and ``reached_<metric>_<X>`` (1 or 0, always),
so that a table tells "not reached" from "not measured".

The ``encoding`` slot takes a ``FieldEncoding``, the ``backend`` slot a
``SineMLPBackend`` (``sine_mlp.eager`` when the suite names none). A field whose
encoding declares ``sine_backend`` (``siren``) runs its forward and backward through
it; every other encoding ignores it, and each cell records ``metric.sine_backend_used``
(1 or 0) so that a table never mistakes an unused backend for a measured one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from bench import CellContext, Diverged, Param, Plugin, Slot, Task
from plugins.backends.base import SineMLPBackend
from plugins.encodings.base import FieldEncoding, build_field, check_field_shape

#: points evaluated at once when a whole grid is evaluated (bounds activation memory)
EVAL_CHUNK = 2**16


def pixel_grid(shape: tuple[int, ...], device: str | torch.device = "cpu") -> torch.Tensor:
    """Pixel-centre coordinates in [-1, 1]: ``(prod(shape), len(shape))``, axis order as
    ``shape`` (row-major, so ``values.reshape(-1)`` lines up). Centres, not edges, so
    that the centres of a 4x coarser grid are the centres of 4x4 blocks."""
    axes = [(torch.arange(n, dtype=torch.float32, device=device) * 2 + 1) / n - 1 for n in shape]
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack(mesh, dim=-1).reshape(-1, len(shape))


def psnr(pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor) -> float:
    """PSNR in dB for signals in [0, 1] (peak 1): ``-10 log10(mean squared error)``."""
    a = torch.as_tensor(pred, dtype=torch.float64)
    b = torch.as_tensor(target, dtype=torch.float64)
    mse = float(((a - b) ** 2).mean())
    return math.inf if mse == 0 else -10.0 * math.log10(mse)


def ssim(pred: np.ndarray, target: np.ndarray, rgb: bool = False) -> float:
    """scikit-image's SSIM, data range 1 (2-D grey, RGB, or 3-D volumes)."""
    from skimage.metrics import structural_similarity

    return float(
        structural_similarity(
            np.asarray(pred, dtype=np.float64),
            np.asarray(target, dtype=np.float64),
            data_range=1.0,
            channel_axis=-1 if rgb else None,
        )
    )


def evaluate(
    model: nn.Module | Callable[[torch.Tensor], torch.Tensor],
    coords: torch.Tensor,
    chunk: int = EVAL_CHUNK,
) -> torch.Tensor:
    """The field at ``coords``, in chunks, without gradients, in evaluation mode (a
    field with dropout scores as its curves do, not with units dropped; the mode it was
    in is put back; a function of the field, one of BACON's outputs, is called as it
    is: ``fit`` leaves the field in evaluation mode). A non-finite output raises
    ``Diverged`` (a field that is NaN only when evaluated ended ok with the scores of
    its training mode)."""
    module = model if isinstance(model, nn.Module) else None  # else a function of one
    training = module.training if module is not None else False
    if module is not None:
        module.eval()
    try:
        out = _forward(model, coords, chunk)
    finally:
        if module is not None:
            module.train(training)
    if not bool(out.isfinite().all()):
        raise Diverged("the field's output is not finite (in evaluation mode)")
    return out


def _forward(
    model: nn.Module | Callable[[torch.Tensor], torch.Tensor],
    coords: torch.Tensor,
    chunk: int = EVAL_CHUNK,
) -> torch.Tensor:
    """The field at ``coords`` in chunks, without gradients, in whatever mode it is."""
    with torch.no_grad():
        return torch.cat([model(c) for c in coords.split(chunk)])


def metric_suffix(x: float) -> str:
    """30.0 -> '30', 32.5 -> '32p5' (result columns keep one dot: ``metric.<name>``)."""
    return f"{x:g}".replace(".", "p").replace("-", "m")


def mse_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the field at ``x``; a multi-output field (BACON) is
    supervised at every output with the same target, summed, as Lindell 2022 trains."""
    outputs = getattr(model, "outputs", None)
    if outputs is not None:
        return sum(((out - y) ** 2).mean() for out in outputs(x))  # type: ignore[return-value]
    return ((model(x) - y) ** 2).mean()


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class FieldTask(Task):
    """Base of the ``fields.*`` tasks: an ``encoding`` slot and a ``sine_mlp`` ``backend``."""

    components = {
        "encoding": FieldEncoding,
        "backend": Slot(SineMLPBackend, default="sine_mlp.eager"),
    }
    #: backends this task can differentiate through (None: every sine_mlp backend)
    backends: ClassVar[tuple[str, ...] | None] = None
    #: the image is the data; its size, colour mode or a held-out share only choose how
    #: much of it is seen (tune.validation_params must name another image)
    data_params = ("image",)

    @classmethod
    def check_component(cls, slot: str, plugin: type[Plugin]) -> str | None:
        if slot == "backend" and cls.backends is not None and plugin.name not in cls.backends:
            return f"{cls.name} needs {', '.join(cls.backends)} ({cls.backend_reason})"
        return None

    backend_reason: ClassVar[str] = ""

    @classmethod
    def validation_data(cls, params: dict[str, Any], select: str) -> str | None:
        return "fits and scores the same target for every seed (a seed changes the init)"

    @classmethod
    def check_cell(cls, components: dict[str, type[Plugin]], params: dict[str, Any]) -> str | None:
        encoding, backend = components.get("encoding"), components.get("backend")
        limit = backend.max_width
        width = params.get("encoding.width")
        if encoding.sine_backend and limit and width and width > limit:
            return (
                f"a siren of width {width} through {backend.name}: its fused kernel takes "
                f"hidden widths up to {limit} (use sine_mlp.eager or sine_mlp.compile)"
            )
        if params.get("optimizer") == "lbfgs" and cls.batched(params):
            return (
                "optimizer lbfgs with random batches: its curvature pairs would compare "
                "gradients of different batches (use adam, or the full grid: batch 0)"
            )
        resolution = cls.field_resolution(params)
        if resolution is not None:
            prefix = "encoding."
            own = {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}
            return encoding.check_resolution(own, resolution)
        return None

    @classmethod
    def batched(cls, params: dict[str, Any]) -> bool:
        """Whether each step's loss is on a random batch (then L-BFGS is refused)."""
        return False

    @classmethod
    def field_resolution(cls, params: dict[str, Any]) -> int | None:
        """Points across the grid the field is trained on (what ``build_model`` is given
        as ``resolution``), from the resolved parameters; None where it cannot be told
        without the run."""
        return None

    def fit_settings(self) -> dict[str, Any]:
        """What ``fit`` takes from the task's values (the ``fit_params`` every task has)."""
        return {k: self.values[k] for k in ("steps", "lr", "eval_every", "optimizer")}

    def build_model(
        self, ctx: CellContext, in_features: int, out_features: int, resolution: int
    ) -> nn.Module:
        """The encoding's module on ``ctx.device``; a SIREN is wired to the backend."""
        encoding = ctx.components["encoding"]
        used = encoding.sine_backend
        extra = {"sine_backend": ctx.components["backend"]} if used else {}
        model = build_field(encoding, in_features, out_features, resolution=resolution, **extra)
        ctx.metric("sine_backend_used", 1.0 if used else 0.0)
        ctx.metric("params", param_count(model))
        model = model.to(ctx.device)
        check_field_shape(encoding.name, model, in_features, out_features, ctx.device)
        return model


@dataclass
class FitResult:
    steps_done: int = 0
    train_seconds: float = 0.0
    last: dict[str, float] = field(default_factory=dict)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def fit(
    ctx: CellContext,
    model: nn.Module,
    loss_fn: Callable[[int], torch.Tensor],
    evaluate_fn: Callable[[], dict[str, float]],
    *,
    steps: int,
    lr: float,
    eval_every: int,
    threshold: tuple[str, float] | None = None,
    optimizer: str = "adam",
) -> FitResult:
    """Adam (or L-BFGS) on ``loss_fn(step)`` for ``steps`` steps; curves of
    ``evaluate_fn()``.

    ``optimizer``: ``"adam"``, or ``"lbfgs"``: one L-BFGS iteration a step with a
    strong-Wolfe line search, for a full-batch loss (the tasks refuse it with random
    batches: its curvature pairs would span two batches); should ``loss_fn`` draw random
    numbers anyway, every evaluation within a step draws the same (the random state is
    put back before each), so that the line search compares like with like.
    ``threshold = (curve name, X)``: ``time_to_<name>_<X>`` and
    ``steps_to_<name>_<X>`` record when that curve first reached X. Raises ``Diverged``
    on a non-finite loss.
    """
    _warm_up(ctx, model, loss_fn, lr, optimizer)
    take_step = _stepper(optimizer, model, loss_fn, lr, ctx.device)
    result = FitResult()
    reached: float | None = None
    reached_step: int | None = None

    def record(step: int) -> None:
        nonlocal reached, reached_step
        model.eval()
        try:
            values = evaluate_fn()
        except Diverged:  # a curve point NaN, kept; the loss or the final score says so
            if not result.last:  # step 0: nothing trained yet
                raise
            values = dict.fromkeys(result.last, math.nan)
        model.train()
        for name, value in values.items():
            ctx.curve(name, step, value, result.train_seconds)
        result.last = values
        if threshold and reached is None and values.get(threshold[0], -math.inf) >= threshold[1]:
            reached, reached_step = result.train_seconds, step

    with ctx.memory("fit"):
        record(0)
        for step in range(1, steps + 1):
            _sync(ctx.device)
            start = time.perf_counter()
            loss = take_step(step)
            _sync(ctx.device)
            result.train_seconds += time.perf_counter() - start
            result.steps_done = step
            if step == 1:
                _check_trainable(ctx, model)
            if not math.isfinite(float(loss.detach())):
                ctx.curve("loss", step, float("nan"), result.train_seconds)
                ctx.add_time("fit", result.train_seconds)
                ctx.check_finite("loss", loss.detach())
            if step % eval_every == 0 or step == steps:
                ctx.curve("loss", step, loss.detach(), result.train_seconds)
                record(step)
    model.eval()  # what is scored after the fit is the model its curves scored
    ctx.add_time("fit", result.train_seconds)
    ctx.metric("steps_per_s", steps / max(result.train_seconds, 1e-12))
    if threshold:
        suffix = f"{threshold[0]}_{metric_suffix(threshold[1])}"
        ctx.metric(f"reached_{suffix}", float(reached is not None))
        if reached is not None:  # absent when never reached (a NaN would read as diverged)
            ctx.metric(f"time_to_{suffix}", reached)
            ctx.metric(f"steps_to_{suffix}", reached_step)
    return result


OPTIMIZERS = ("adam", "lbfgs")


def _rng_devices(device: str) -> list[torch.device]:
    return [torch.device(device)] if device.startswith("cuda") else []


def _stepper(
    optimizer: str,
    model: nn.Module,
    loss_fn: Callable[[int], torch.Tensor],
    lr: float,
    device: str,
) -> Callable[[int], torch.Tensor]:
    """``step(i)``: one optimisation step on ``loss_fn(i)``; returns the loss before it."""
    if optimizer == "adam":
        adam = torch.optim.Adam(model.parameters(), lr=lr)

        def adam_step(step: int) -> torch.Tensor:
            adam.zero_grad(set_to_none=True)
            loss = loss_fn(step)
            loss.backward()
            adam.step()
            return loss

        return adam_step
    if optimizer != "lbfgs":
        raise ValueError(f"optimizer {optimizer!r}: not one of {', '.join(OPTIMIZERS)}")
    # max_eval: the line search's budget within the step. torch's default, max_iter * 5
    # // 4, is 1 at max_iter=1: the search cannot bracket, returns t = 0, and every later
    # step repeats the same null move (seen: a Fourier-feature fit stuck at 14.7 dB).
    lbfgs = torch.optim.LBFGS(
        model.parameters(),
        lr=lr,
        max_iter=1,
        max_eval=25,
        history_size=20,
        line_search_fn="strong_wolfe",
    )
    cuda = _rng_devices(device)

    def lbfgs_step(step: int) -> torch.Tensor:
        cpu_state = torch.get_rng_state()
        cuda_state = [torch.cuda.get_rng_state(d) for d in cuda]

        def closure() -> torch.Tensor:
            torch.set_rng_state(cpu_state)  # the same batch for every evaluation
            for d, state in zip(cuda, cuda_state):
                torch.cuda.set_rng_state(state, d)
            lbfgs.zero_grad(set_to_none=True)
            loss = loss_fn(step)
            loss.backward()
            return loss

        return lbfgs.step(closure)  # type: ignore[return-value]

    return lbfgs_step


def _check_trainable(ctx: CellContext, model: nn.Module) -> None:
    """After the first step (untimed): ValueError, by name, where its gradient was
    exactly zero in every parameter, so nothing would train, yet the cell would end ok
    with the untrained field's scores. The Laplacian of a piecewise-linear field (ReLU
    layers, a hash grid's multilinear interpolation) is zero everywhere, so supervising
    it cannot move such a field."""
    params = [p for p in model.parameters() if p.requires_grad]
    if any(p.grad is not None and bool(p.grad.ne(0).any()) for p in params):
        return
    encoding = ctx.components.get("encoding")
    name = encoding.name if encoding is not None else "the field"
    raise ValueError(
        f"encoding {name}: the loss's gradient was zero in every parameter at the first "
        f"step ({len(params)} trainable tensors): nothing would train. A loss on the "
        "field's derivatives needs a field whose derivatives depend on its parameters "
        "(the Laplacian of ReLU layers or of a hash grid's interpolation is zero "
        "everywhere)"
    )


def _warm_up(
    ctx: CellContext,
    model: nn.Module,
    loss_fn: Callable[[int], torch.Tensor],
    lr: float,
    optimizer: str,
) -> None:
    """``ctx.warmup`` untimed steps (a throwaway optimiser of the same kind), then the
    model's state and the random generators as they were: the timed fit starts where a
    cold one would, with the one-time costs already paid."""
    if ctx.warmup <= 0:
        return
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    with torch.random.fork_rng(devices=_rng_devices(ctx.device)):
        take_step = _stepper(optimizer, model, loss_fn, lr, ctx.device)
        for _ in range(ctx.warmup):
            take_step(1)
        _sync(ctx.device)
    del take_step
    model.zero_grad(set_to_none=True)
    with torch.no_grad():  # in place: compiled code keeps the same parameter tensors
        for k, v in model.state_dict().items():
            v.copy_(saved[k])


def record_throughput(ctx: CellContext, model: nn.Module, coords: torch.Tensor) -> None:
    """Inference throughput over ``coords`` (timed repeats): ``eval_points_per_s``."""
    model.eval()  # once, outside the timed calls (a mode switch walks every module)
    ctx.time("eval", lambda: _forward(model, coords))
    median = sorted(ctx.record.times["eval"])[len(ctx.record.times["eval"]) // 2]
    ctx.metric("eval_points_per_s", coords.shape[0] / max(median, 1e-12))


def fit_params(steps: int, lr: float, eval_every: int, target: float) -> dict[str, Param]:
    """The Adam parameters every field task declares (defaults per task)."""
    return {
        "steps": Param(steps, low=1, doc="optimisation steps"),
        "lr": Param(lr, low=0.0, low_open=True, doc="learning rate (L-BFGS: its step length)"),
        "optimizer": Param(
            "adam",
            choices=OPTIMIZERS,
            doc="adam, or lbfgs (one iteration a step, strong-Wolfe line search; lr 1 is usual)",
        ),
        "eval_every": Param(eval_every, low=1, doc="steps between curve points"),
        "target_psnr": Param(target, doc="threshold X of time_to_psnr_X (dB)"),
    }


def figure_of(images: dict[str, np.ndarray], cmaps: dict[str, str] | None = None) -> Any:
    """A one-row matplotlib Figure of named images (no pyplot state)."""
    from matplotlib.figure import Figure

    cmaps = cmaps or {}
    fig = Figure(figsize=(3.2 * len(images), 3.4), dpi=100)
    for i, (title, img) in enumerate(images.items()):
        ax = fig.add_subplot(1, len(images), i + 1)
        shown = ax.imshow(
            np.clip(img, 0, 1) if img.ndim == 3 else img, cmap=cmaps.get(title, "gray")
        )
        if img.ndim == 2 and title in cmaps:
            fig.colorbar(shown, ax=ax, fraction=0.046)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return fig
