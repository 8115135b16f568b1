"""``classify.digits``: scikit-learn's 8x8 handwritten digits (1797 images, shipped with
scikit-learn, nothing downloaded) through any architecture.

Protocol: a stratified, seeded 70/30 train/test split; pixel values scaled to [0, 1].
With ``validation_images`` > 0 that many images are first held out, stratified, by a
fixed draw that no seed changes, and never trained or tested on: ``val_accuracy`` is
measured on them, so a tuned entry can choose on images no reported seed scores (the
70/30 split of the rest is seeded as before). Without them every image is some seed's
test image, and the task refuses tuning.
A stem maps each image to the architecture's ``width`` features (``linear``: the 64
pixels through one linear layer; ``conv``: a 3x3 convolution to 8 channels, tanh,
then a linear layer), the architecture's flow acts on them, and a linear head gives
the 10 class scores. Minibatch Adam on cross-entropy plus the architecture's own term.
Metrics: ``test_accuracy``, ``train_accuracy``, ``parameters``, ``time.train``,
``mem.train``, and for architectures with an inverse ``inverse_error_test`` (max
|m^-1(m(z)) - z| on the test features). A scikit-learn logistic regression on the same
split is recorded beside them (``logistic_test_accuracy``) as a reference point.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn

from bench import CellContext, Headline, Param, ParamError, Plugin, Task
from plugins.architectures.base import FlowArchitecture
from plugins.tasks.architectures.common import (
    build_architecture,
    count_parameters,
    no_domain_sampler,
)

#: the draw of the held-out validation images: one for every seed, so that no seed's
#: train or test split ever holds them
VALIDATION_DRAW = 20_211_797


def digits_validation_split(
    validation_images: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_rest, x_validation, y_rest, y_validation): ``validation_images`` images held
    out, stratified, by ``VALIDATION_DRAW`` (every image in ``rest`` when 0)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x, y = (x / 16.0).astype(np.float32), y.astype(np.int64)  # the set's pixels are 0..16
    if not validation_images:
        return x, x[:0], y, y[:0]
    return train_test_split(
        x, y, test_size=validation_images, stratify=y, random_state=VALIDATION_DRAW
    )


def digits_split(
    seed: int, validation_images: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, x_test, y_train, y_test): (n, 64) float32 in [0, 1] and int64 labels,
    a seeded stratified 70/30 split of the images not held out for validation."""
    from sklearn.model_selection import train_test_split

    x, _, y, _ = digits_validation_split(validation_images)
    return train_test_split(x, y, test_size=0.3, stratify=y, random_state=seed)


def make_stem(kind: str, width: int) -> nn.Module:
    if kind == "linear":
        return nn.Linear(64, width)
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 8, 3, padding=1),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(8 * 64, width),
    )


class ClassifyDigits(Task):
    """scikit-learn's 8x8 digits: linear or conv stem, any architecture, linear head."""

    name = "classify.digits"
    headline = Headline(
        size="parameters",
        quality={"test_accuracy": "higher", "inverse_error_test": "lower"},
        cost="time.train.median",
        curves=("loss",),
        problem=("validation_images",),
        validation={"val_accuracy": "higher"},
    )
    data_params = ()  # the one set of 1,797 images
    components = {"architecture": FlowArchitecture}
    params = {
        "validation_images": Param(
            0,
            low=0,
            high=1000,
            doc="images held out from every seed's split (a fixed draw) to measure "
            "val_accuracy on, so that a tuned entry chooses on images no seed scores",
        ),
        "stem": Param("linear", choices=("linear", "conv"), doc="image -> width features"),
        "epochs": Param(30, low=1, doc="passes over the training set"),
        "batch": Param(128, low=1, doc="images per Adam step"),
        "lr": Param(3e-3, low=0.0, low_open=True, doc="Adam learning rate"),
    }

    @classmethod
    def resolve_params(cls, values: dict[str, Any]) -> dict[str, Any]:
        v = super().resolve_params(values)
        if 0 < v["validation_images"] < 10:
            raise ParamError(
                f"{cls.name}.validation_images: {v['validation_images']} cannot hold every "
                "one of the 10 classes out (0 for none, or 10 to 1000)"
            )
        return v

    @classmethod
    def check_cell(cls, components: dict[str, type[Plugin]], params: dict[str, Any]) -> str | None:
        return no_domain_sampler(components, params, cls.name)

    @classmethod
    def validation_data(cls, params: dict[str, Any], select: str) -> str | None:
        if params["validation_images"] and select in cls.headline.validation:
            return None
        return (
            "splits the same 1,797 images anew for every seed: a validation seed's test "
            "images are the reported seeds' test images"
            + (
                ""
                if params["validation_images"]
                else " (validation_images: 300 holds images out of every split for "
                "val_accuracy to choose on)"
            )
        )

    def run(self, ctx: CellContext) -> None:
        from sklearn.linear_model import LogisticRegression

        p = ctx.params
        dev = ctx.device
        x_tr, x_te, y_tr, y_te = digits_split(ctx.seed, p["validation_images"])
        logistic = LogisticRegression(max_iter=2000).fit(x_tr, y_tr)
        ctx.metric("logistic_test_accuracy", logistic.score(x_te, y_te))
        arch, net = build_architecture(ctx)
        stem = make_stem(p["stem"], net.width).to(dev)
        head = nn.Linear(net.width, 10).to(dev)
        modules = (stem, net, head)
        ctx.metric("parameters", count_parameters(*modules))
        xtr, ytr = torch.from_numpy(x_tr).to(dev), torch.from_numpy(y_tr).to(dev)
        xte, yte = torch.from_numpy(x_te).to(dev), torch.from_numpy(y_te).to(dev)
        opt = torch.optim.Adam([q for m in modules for q in m.parameters()], lr=p["lr"])
        gen = torch.Generator().manual_seed(ctx.seed)
        step = 0
        with ctx.memory("train"):
            t0 = time.perf_counter()
            for epoch in range(p["epochs"]):
                for idx in torch.randperm(len(xtr), generator=gen).split(p["batch"]):
                    z = stem(xtr[idx])
                    ce = nn.functional.cross_entropy(head(net(z)), ytr[idx])
                    loss = ce + net.penalty(z)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    step += 1
                ctx.curve("loss", epoch, loss.detach(), time.perf_counter() - t0)
                ctx.check_finite("loss", loss.detach())
            ctx.add_time("train", time.perf_counter() - t0)
        for m in modules:
            m.eval()
        with torch.no_grad():

            def predict(x: torch.Tensor) -> torch.Tensor:
                out = head(net(stem(x)))  # an argmax of NaN logits is a class: diverged
                ctx.check_finite("the network's output (in evaluation mode)", out)
                return out.argmax(1)

            ctx.metric("train_accuracy", (predict(xtr) == ytr).float().mean())
            ctx.metric("test_accuracy", (predict(xte) == yte).float().mean())
            if p["validation_images"]:
                _, x_va, _, y_va = digits_validation_split(p["validation_images"])
                xva, yva = torch.from_numpy(x_va).to(dev), torch.from_numpy(y_va).to(dev)
                ctx.metric("val_accuracy", (predict(xva) == yva).float().mean())
            if arch.invertible is not None:
                z = stem(xte)
                ctx.metric("inverse_error_test", (net.inverse(net(z)) - z).abs().max())
