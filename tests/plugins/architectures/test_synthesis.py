"""synthesis.t1_to_t2: data split, metrics against scikit-image, a tiny run, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from bench.cli import main
from plugins.tasks.architectures.synthesis import load_slices, psnr
from tests.plugins.architectures._run import run_cell

pytestmark = pytest.mark.usefixtures("frozen_heap")

TINY = {"steps": 2, "batch": 2, "patch": 16, "test_every": 20}
REVNET = ("revnet", {"width": 4, "depth": 2, "hidden": 4})


def test_psnr_matches_scikit_image() -> None:
    from skimage.metrics import peak_signal_noise_ratio

    rng = np.random.default_rng(0)
    a, b = rng.random((2, 30, 40)).astype(np.float32)
    mask = rng.random((30, 40)) > 0.3
    ours = psnr(a, b, mask)
    ref = peak_signal_noise_ratio(b[mask], a[mask], data_range=1.0)
    assert ours == pytest.approx(ref, rel=1e-6)  # the same formula, float32 inputs


def test_slices_split_by_slice_and_normalised() -> None:
    data = load_slices(2, 4)
    train, test = data["train"], data["test"]
    assert train["t1"].shape[1:] == test["t1"].shape[1:]
    assert len(train["t1"]) > 2 * len(test["t1"]) > 0
    for split in (train, test):
        for key in ("t1", "t2"):
            assert float(split[key].min()) >= 0.0 and float(split[key].max()) <= 1.0
    # no held-out slice is also a training slice
    flat_train = {bytes(s.numpy().tobytes()) for s in train["t1"]}
    assert not any(bytes(s.numpy().tobytes()) in flat_train for s in test["t1"])
    # simulated T2 contrast: CSF bright, WM dark, so T1 and T2 are anti-correlated in the brain
    m = train["mask"]
    corr = np.corrcoef(train["t1"][m].numpy(), train["t2"][m].numpy())[0, 1]
    assert corr < -0.3


def test_reversible_revnet_run(tmp_path) -> None:
    ctx = run_cell("synthesis.t1_to_t2", {"architecture": REVNET}, tmp_path, **TINY)
    m = ctx.metrics
    for key in ("psnr", "ssim", "mae"):
        assert f"{key}_t1_to_t2" in m and f"{key}_t2_to_t1" in m
    assert m["invertibility_error"] < 1e-5  # exact inverse, fp32 over 2 blocks
    assert m["cycle_error"] >= 0.0
    assert {f[0] for f in ctx.files} == {"synthesis.png", "figure_slice.npz"}


def test_one_direction_baseline(tmp_path) -> None:
    ctx = run_cell(
        "synthesis.t1_to_t2",
        {"architecture": REVNET},
        tmp_path,
        mode="t2_to_t1",
        figures=False,
        **TINY,
    )
    m = ctx.metrics
    assert "psnr_t2_to_t1" in m and "psnr_t1_to_t2" not in m and "cycle_error" not in m


def test_architecture_without_inverse_refused(tmp_path, capsys) -> None:
    path = tmp_path / "s.yaml"
    entry = {"task": "synthesis.t1_to_t2", "matrix": {"architecture": ["revnet", "mlp"]}}
    path.write_text(yaml.safe_dump({"suite": "s", "benchmarks": [entry]}))
    assert main(["run", str(path), "--output", str(tmp_path / "out"), "--quiet"]) == 2
    out = capsys.readouterr()
    assert "mlp has no inverse" in out.out + out.err


def test_the_architectures_own_term_is_trained() -> None:
    """A symmetric ResNet's invertibility loss (its penalty) is a loss term here as in the
    classify tasks: before, synthesis left it out, and resnet_symmetric at weight 1e4
    trained bit for bit as resnet_shared. Checked against the term written out by hand
    (weight * mean ||backward-Euler(m(z)) - z||^2 over the pixels' features); an
    architecture without a term (revnet) gets none, its loss unchanged."""
    import torch

    from bench.testing import default_registry
    from plugins.tasks.architectures.synthesis import Synthesis, losses

    registry = default_registry()
    arch = registry.get("architecture", "resnet_symmetric")(width=4, depth=2, hidden=4)
    torch.manual_seed(0)
    model = Synthesis(arch.build(), 4)
    x, y = torch.rand(2, 2, 1, 8, 8)
    weights = {k: 1.0 for k in ("mapping", "inverse", "cycle", "identity", "autoencoder",
                                "feature")}  # fmt: skip
    for mode, source in (("t1_to_t2", x), ("t2_to_t1", y), ("reversible", x)):
        terms = losses(model, x, y, mode, weights)
        z = model.f(source).permute(0, 2, 3, 1).reshape(-1, 4)
        back = z_hat = model.m(z)
        for k in reversed(range(model.m.depth)):  # backward Euler, step by step
            back = back - model.m.h * model.m.block(k)(back)
        by_hand = 1e4 * (back - z).pow(2).sum(dim=1).mean()
        assert z_hat.shape == z.shape
        assert torch.allclose(terms["architecture"], by_hand, rtol=1e-5), mode
    revnet = registry.get("architecture", "revnet")(width=4, depth=2, hidden=4)
    plain = losses(Synthesis(revnet.build(), 4), x, y, "reversible", weights)
    assert "architecture" not in plain


def test_a_domain_penalty_is_refused_where_there_is_no_domain(tmp_path, capsys) -> None:
    path = tmp_path / "s.yaml"
    entries = [
        {
            "task": task,
            "params": {"architecture": "resnet_symmetric", "architecture.variant": "domain"},
        }  # fmt: skip
        for task in ("synthesis.t1_to_t2", "classify.digits")
    ]
    path.write_text(yaml.safe_dump({"suite": "s", "benchmarks": entries}))
    assert main(["run", str(path), "--output", str(tmp_path / "out"), "--quiet"]) == 2
    out = capsys.readouterr()
    text = out.out + out.err
    for task in ("synthesis.t1_to_t2", "classify.digits"):
        assert f"and {task} has no domain sampler" in text
