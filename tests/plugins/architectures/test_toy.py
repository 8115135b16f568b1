"""classify.toy, its data and the quick suite."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from bench import testing
from bench.cli import main
from plugins.data import toy2d
from tests.plugins.architectures._run import run_cell

pytestmark = pytest.mark.usefixtures("frozen_heap")

SUITES = Path(__file__).resolve().parents[3] / "suites"
TINY = {"n_train": 40, "n_test": 40, "epochs": 5, "grid": 6}


@pytest.mark.parametrize("name", toy2d.DATASETS)
def test_toy_sets_are_balanced_and_inside_their_domain(name) -> None:
    x, y = toy2d.make(name, 400, 0.05, seed=3)
    assert x.shape == (400, 2) and x.dtype == np.float32 and set(np.unique(y)) == {0, 1}
    assert 0.35 < y.mean() < 0.65  # two classes of about equal size (binomial, n = 400)
    (x0, x1), (y0, y1) = toy2d.domain(name)
    inside = (x[:, 0] > x0) & (x[:, 0] < x1) & (x[:, 1] > y0) & (x[:, 1] < y1)
    assert inside.mean() > 0.99


def test_xor_and_spiral_truth() -> None:
    x, y = toy2d.make("xor", 500, 0.0, seed=1)
    np.testing.assert_array_equal(y, (x[:, 0] * x[:, 1] > 0).astype(int))
    x, y = toy2d.make("spirals", 500, 0.0, seed=1)
    r = np.linalg.norm(x, axis=1)  # r = 1.2 t with t in [0.1, 1]
    assert r.min() >= 0.12 - 1e-6 and r.max() <= 1.2 + 1e-6


def test_unknown_set_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="moons, circles, spirals, xor"):
        toy2d.make("swissroll", 10, 0.1, 0)


def test_revnet_cell_inverts_and_preserves_volume(tmp_path) -> None:
    ctx = run_cell("classify.toy", {"architecture": ("revnet", {"depth": 4})}, tmp_path, **TINY)
    m = ctx.metrics
    assert 0.0 <= m["test_accuracy"] <= 1.0
    # exact inverse: fp32 rounding over 4 blocks on O(1) values
    assert m["inverse_error_test"] < 1e-5 and m["inverse_error_domain"] < 1e-5
    assert m["inverse_error_test_fp64"] < 1e-12  # float64 round-off over 4 blocks
    # additive coupling is volume preserving: det J = 1 exactly; fp32 Jacobian rounding
    assert abs(m["detj_min"] - 1) < 1e-4 and abs(m["detj_max"] - 1) < 1e-4
    assert m["lipschitz_estimate"] <= m["lipschitz_bound"] * (1 + 1e-5)
    names = {f[0] for f in ctx.files}
    assert names == {"decision_boundary.png", "trajectories.png", "detj.png"}
    assert "train" in ctx.times and "train" in ctx.memory


def test_iresnet_cell_records_its_fixed_point_rate(tmp_path) -> None:
    ctx = run_cell(
        "classify.toy", {"architecture": ("iresnet", {"depth": 3, "coeff": 0.7})}, tmp_path, **TINY
    )
    m = ctx.metrics
    assert m["coeff"] == 0.7
    # fixed point iterated to 1e-14 in float64: c/(1-c) 1e-14 per block, 3 blocks
    assert m["inverse_error_test_fp64"] < 1e-11
    assert m["fixed_point_rate"] <= 0.7 + 1e-9  # Banach, float64 iterates
    curve = [c for c in ctx.curves if c[0] == "fixed_point_error"]
    assert len(curve) == 61
    assert "fixed_point.png" in {f[0] for f in ctx.files}


def test_mlp_cell_has_no_inverse_metrics(tmp_path) -> None:
    ctx = run_cell("classify.toy", {"architecture": ("mlp", {"depth": 2})}, tmp_path, **TINY)
    assert "inverse_error_test" not in ctx.metrics
    assert "detj_min" in ctx.metrics


def _write_suite(tmp_path: Path, benchmarks: list[dict]) -> str:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"suite": "s", "device": "cpu", "benchmarks": benchmarks}))
    return str(path)


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"params": {"dataset": "swissroll"}, "matrix": {"architecture": ["resnet"]}}, "swissroll"),
        ({"params": {"architecture.depth": 0}, "matrix": {"architecture": ["resnet"]}}, ">= 1"),
        ({"params": {"architecture.width": 3}, "matrix": {"architecture": ["revnet"]}}, "odd"),
        ({"params": {"architecture.coeff": 1.0}, "matrix": {"architecture": ["iresnet"]}}, "< 1"),
        ({"params": {"architecture.solver": "rk9"}, "matrix": {"architecture": ["node"]}}, "rk9"),
    ],
    ids=["dataset", "depth0", "revnet-odd", "iresnet-coeff", "node-solver"],
)
def test_bad_input_exits_2_naming_it(tmp_path, capsys, entry, words) -> None:
    suite = _write_suite(tmp_path, [{"task": "classify.toy", **entry}])
    assert main(["run", suite, "--output", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr()
    assert words in err.out + err.err
    assert not (tmp_path / "out").exists()  # nothing ran


def _tiny_quick_suite(tmp_path: Path, tasks: set[str]) -> tuple[dict, Path]:
    data = yaml.safe_load((SUITES / "architectures-quick.yaml").read_text())
    data["benchmarks"] = [e for e in data["benchmarks"] if e["task"] in tasks]
    for entry in data["benchmarks"]:
        if entry["task"] == "classify.toy":
            entry["params"].update(TINY, figures=False)  # figures: tested above
        if entry["task"] == "memory.depth":
            entry["params"].update({"batch": 8, "architecture.width": 4})
        if entry["task"] == "classify.digits":
            entry["params"].update(epochs=1)
        if entry["task"] == "synthesis.t1_to_t2":
            entry["params"].update(steps=2, batch=2, patch=16, test_every=20, figures=False)
    path = tmp_path / "architectures-quick.yaml"
    path.write_text(yaml.safe_dump(data))
    args = ["run", str(path), "--output", str(tmp_path / "out"), "--quiet", "--in-process"]
    assert main(args) == 0
    import pandas as pd

    (run,) = (tmp_path / "out" / "architectures-quick").iterdir()
    cells = pd.read_parquet(run / "cells.parquet")
    assert (cells["status"] == "ok").all(), cells[["status", "error"]].to_string()
    return data, run


def test_quick_suite_toy_and_memory_at_tiny_size(tmp_path) -> None:
    import pandas as pd

    data, run = _tiny_quick_suite(tmp_path, {"classify.toy", "memory.depth"})
    cells = pd.read_parquet(run / "cells.parquet")
    toy = len(data["benchmarks"][0]["matrix"]["architecture"]) + 2
    assert (cells["task"] == "classify.toy").sum() == toy
    assert (cells["task"] == "memory.depth").sum() == 8


@pytest.mark.slow
def test_quick_suite_whole_at_tiny_size(tmp_path) -> None:
    # adds synthesis (nilearn loading) and digits (scikit-learn): ~20 s more
    _tiny_quick_suite(
        tmp_path, {"classify.toy", "memory.depth", "synthesis.t1_to_t2", "classify.digits"}
    )


def test_symmetric_fixed_point_inverse_same_training_inverts_the_domain(tmp_path) -> None:
    # the lecture's D, briefly trained; inverse: fixed_point changes only the inverse
    params = {**TINY, "epochs": 60, "grid": 21}
    runs = {
        inverse: run_cell(
            "classify.toy",
            {"architecture": ("resnet_symmetric", {"variant": "domain", "inverse": inverse})},
            tmp_path / inverse,
            **params,
        ).metrics
        for inverse in ("euler", "fixed_point")
    }
    euler, fixed = runs["euler"], runs["fixed_point"]
    # the same network: same seed, same loss (the backward-Euler round trip)
    assert fixed["test_accuracy"] == euler["test_accuracy"]
    assert fixed["final_loss"] == euler["final_loss"]
    assert euler["inverse_error_domain"] > 1e-4  # backward Euler's truncation, O(h^2)
    # fixed point to a change < 1e-7 per step (h Lip f < 1), plus fp32 rounding over
    # 8 steps on |x| <= 2: ~1e-6; the target is 1e-3
    assert fixed["inverse_error_domain"] < 1e-5 and fixed["inverse_error_test"] < 1e-5


def test_validation_seeds_drawing_a_reported_cells_test_set_are_refused(tmp_path):
    """classify.toy draws a cell's test set with seed + 10000: validation seed 10000
    trained on reported seed 0's test points, and was accepted (a user audit: the
    arrays were equal). Task.data_seeds names both draws; validation seeds whose draws
    meet a reported seed's are refused, other data (validation_params) or seeds apart
    are not."""
    import numpy as np
    import yaml

    from bench.suite import SuiteError, load_suite
    from bench.testing import default_registry
    from plugins.data import toy2d

    # the leak itself, as the task draws: validation seed 10000's training points are
    # reported seed 0's test points
    train_v, _ = toy2d.make("moons", 50, 0.1, 10_000)
    test_0, _ = toy2d.make("moons", 50, 0.1, 0 + 10_000)
    assert np.array_equal(train_v, test_0)

    def suite(validation_seeds, **tune):
        entry = {"task": "classify.toy", "params": {"architecture": "resnet", "epochs": 2},
                 "tune": {"grid": {"lr": [1e-3, 1e-2]}, "validation_seeds": validation_seeds,
                          **tune}}  # fmt: skip
        path = tmp_path / "s.yaml"
        path.write_text(yaml.safe_dump({"suite": "s", "seeds": [0, 1], "benchmarks": [entry]}))
        return load_suite(path, default_registry())

    with pytest.raises(SuiteError) as err:
        suite([10_001, 500])
    assert (
        "benchmarks[0].tune.validation_seeds: validation seed 10001 draws its data with seeds "
        "[10001, 20001] and reported seed 1 with [1, 10001] (classify.toy.data_seeds): they "
        "share [10001], so the choice would be trained or scored on the reported cells' data"
    ) in str(err.value)
    assert suite([100, 101]).tunings
    assert suite([10_000], validation_params={"dataset": "circles"}).tunings  # other data


def test_a_network_not_finite_when_evaluated_ends_diverged(tmp_path, monkeypatch):
    """NaN logits in evaluation mode scored test_accuracy 0.5 (an argmax of NaN) and then
    ended 'error' with matplotlib's 'vmin, vcenter, vmax must increase' from the figures
    (a user audit): the cell ends diverged, naming what was not finite."""
    import plugins.tasks.architectures.toy as toy

    original = toy.build_architecture

    def nan_when_evaluated(ctx):
        arch, net = original(ctx)
        forward = net.forward

        def patched(z):
            out = forward(z)
            return out if net.training else out * float("nan")

        net.forward = patched
        return arch, net

    monkeypatch.setattr(toy, "build_architecture", nan_when_evaluated)
    cell = testing.run_cell(
        "classify.toy", {"architecture": "resnet"},
        {"architecture.depth": 2, "architecture.width": 4, "epochs": 2, "n_train": 32,
         "n_test": 32, "grid": 5}, check=False,
    )  # fmt: skip
    assert cell.status == "diverged"
    assert cell.error == "the network's output (in evaluation mode) is not finite"
    assert "test_accuracy" not in cell.metrics
