"""suites/physics-*.yaml end to end at tiny size, and bad input refused at validation."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from bench.cli import main

pytestmark = pytest.mark.usefixtures("frozen_heap")

SUITES = Path(__file__).resolve().parents[3] / "suites"

# Tiny budgets: each method still trains, the tasks still score and draw.
TINY = {
    "physics.burgers": {"nx": 17, "nt": 6},
    "physics.burgers_reconstruct": {"n": 16, "steps": 4, "observe_step": 2, "refine": 2},
    "physics.density_control": {"size": 12, "steps": 2, "iterations": 3},
}
TINY_METHOD = {
    "method.adam_steps": 5,
    "method.lbfgs_iterations": 3,
    "method.n_collocation": 50,
    "method.depth": 2,
    "method.width": 8,
    "method.iterations": 3,
    "method.monitor_every": 2,
}


def _write(tmp_path: Path, benchmarks: list[dict], name: str = "physics-bad") -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"suite": name, "device": "cpu", "benchmarks": benchmarks}))
    return str(path)


def _shrink(entry: dict) -> None:
    entry.setdefault("params", {}).update(TINY[entry["task"]])
    method = entry["params"].get("method") or entry.get("matrix", {}).get("method", [None])[0]
    allowed = {
        "pinn": {
            "method.adam_steps",
            "method.lbfgs_iterations",
            "method.n_collocation",
            "method.depth",
            "method.width",
            "method.monitor_every",
        },
        "supervised": {
            "method.adam_steps",
            "method.lbfgs_iterations",
            "method.depth",
            "method.width",
            "method.monitor_every",
        },
        "diffphys": {"method.iterations", "method.monitor_every"},
    }.get(method, set())
    entry["params"].update({k: v for k, v in TINY_METHOD.items() if k in allowed})
    entry.get("matrix", {}).pop("method.iterations", None)


def _quick_suite_at_tiny_size(tmp_path: Path, brain: bool) -> None:
    data = yaml.safe_load((SUITES / "physics-quick.yaml").read_text())
    for entry in data["benchmarks"]:
        _shrink(entry)
        if not brain and "d0" in entry.get("matrix", {}):
            # loading nilearn's template takes ~3-10 s: the slow test keeps the brain
            entry["matrix"]["d0"] = ["blob"]
            entry["params"]["steps"] = [1, 2]
    data["repeats"] = 1
    path = tmp_path / "physics-quick.yaml"
    path.write_text(yaml.safe_dump(data))
    # in-process: the cells are tiny, a worker's start-up (torch imports) would dominate
    out = str(tmp_path / "out")
    assert main(["run", str(path), "--output", out, "--quiet", "--in-process"]) == 0
    (run,) = (tmp_path / "out" / "physics-quick").iterdir()
    cells = pd.read_parquet(run / "cells.parquet")
    assert (cells["status"] == "ok").all(), cells[["task", "status", "error"]].to_string()
    assert len(cells) == 6
    if brain:
        assert set(cells["param.d0"].dropna()) == {"blob", "brain"}
    files = pd.read_parquet(run / "files.parquet")
    assert len(files) == 6  # one figure per cell
    curves = pd.read_parquet(run / "curves.parquet")
    assert {"loss", "error"} <= set(curves["curve"])


def test_quick_suite_runs_at_tiny_size(tmp_path):
    _quick_suite_at_tiny_size(tmp_path, brain=False)


@pytest.mark.slow
def test_quick_suite_runs_at_tiny_size_with_the_brain(tmp_path):
    _quick_suite_at_tiny_size(tmp_path, brain=True)


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"task": "physics.burgers", "params": {"method": "pinn", "nu": 0.0}}, "nu: must be > 0"),
        ({"task": "physics.burgers", "params": {"method": "pinn", "nu": -1.0}}, "nu: must be > 0"),
        ({"task": "physics.burgers", "params": {"method": "pinn", "nx": 1}}, "nx: must be >= 2"),
        (
            {"task": "physics.burgers_reconstruct", "params": {"method": "diffphys", "n": 1}},
            "n: must be >= 2",
        ),
        (
            {"task": "physics.burgers", "params": {"method": "pinn", "method.n_collocation": 0}},
            "n_collocation: must be >= 1",
        ),
        ({"task": "physics.burgers", "params": {"method": "diffphys"}}, "periodic grid"),
        (
            {"task": "physics.density_control", "params": {"backend": "svf_exp.eager"}},
            "does not subclass WarpBackend",
        ),
        ({"task": "physics.burgers", "params": {"method": "kernels.warp"}}, "kernels.warp"),
    ],
    ids=["nu0", "nu-neg", "nx1", "n1", "nf0", "diffphys-forward", "not-warp", "unknown"],
)
def test_bad_input_exits_2_naming_it(tmp_path, capsys, entry, words):
    suite = _write(tmp_path, [entry])
    assert main(["run", suite, "--output", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr()
    assert words in err.out + err.err
    assert not (tmp_path / "out").exists()  # nothing ran


def test_unstable_explicit_diffusion_is_refused_at_validation_with_the_bound(tmp_path, capsys):
    # n = 16, 4 steps to t = 1: dx = 1/8, dt = 1/4; nu = 1 gives nu dt / dx^2 = 16 > 1/2.
    # The bound needs three parameters at once: the task's resolve_params checks it, and
    # suite validation reports it with the entry and values, before anything runs.
    entry = {
        "task": "physics.burgers_reconstruct",
        "params": {"method": "diffphys", "n": 16, "steps": 4, "observe_step": 2, "nu": 1.0},
    }
    suite = _write(tmp_path, [entry])
    assert main(["run", suite, "--output", str(tmp_path / "out"), "--quiet"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "benchmarks[0]" in err and "nu*dt/dx^2 = 16 > 0.5" in err and "dt <= 0.0078" in err
    assert not (tmp_path / "out").exists()  # nothing ran


def test_the_report_says_where_budgets_differ_whatever_each_method_calls_them(tmp_path):
    """A method at 10x the steps of another, named its own way (steps against
    adam_steps), was starred with no word of it (a user audit): the Burgers tasks name
    loss_evaluations as their budget, and the page gives each configuration's where they
    differ. diffphys records one evaluation an iteration."""
    import html as html_lib

    small = {"method.lbfgs_iterations": 0, "method.depth": 2, "method.width": 8}
    benchmarks = [
        {"task": "physics.burgers", "params": {**TINY["physics.burgers"], **small,
                                               "method": "pinn", "method.n_collocation": 50,
                                               "method.adam_steps": 5}},
        {"task": "physics.burgers", "params": {**TINY["physics.burgers"], **small,
                                               "method": "supervised", "method.adam_steps": 7}},
        {"task": "physics.burgers_reconstruct", "params": {**TINY["physics.burgers_reconstruct"],
                                                           "method": "diffphys",
                                                           "method.iterations": 3}},
    ]  # fmt: skip
    path = _write(tmp_path, benchmarks, "budgets")
    out = tmp_path / "out"
    assert main(["run", path, "--output", str(out), "--quiet", "--in-process"]) == 0
    (run,) = (out / "budgets").iterdir()
    cells = pd.read_parquet(run / "cells.parquet").set_index("method")
    assert list(cells["metric.loss_evaluations"]) == [5, 7, 3]
    page = tmp_path / "page.html"
    assert main(["report", str(run), "-o", str(page)]) == 0
    text = html_lib.unescape(page.read_text())
    assert ("The configurations' budgets differ (loss_evaluations, mean over seeds): "
            "method=pinn 5, method=supervised 7") in text  # fmt: skip
    assert text.count("budgets differ") == 1  # one configuration: nothing to compare


def test_samples_of_the_solution_go_only_to_a_method_that_reads_them(tmp_path):
    """Every method was handed 20,000 exact samples of u (a user audit: a 'PINN' could
    fit them and read as physics-informed, nothing on a page would show it): only a
    method whose reads_field() says so gets them, and each cell says which."""
    from bench import testing

    seen = {}
    from plugins.methods.physics.methods import PINN, Supervised

    for cls, params in ((PINN, {}), (Supervised, {}), (Supervised, {"source": "constraints"})):
        original = cls.solve

        def spy(self, problem, ctx, _original=original, _key=(cls.name, str(params))):
            seen[_key] = problem.field
            return _original(self, problem, ctx)

        cls.solve = spy
        try:
            cell = testing.run_cell(
                "physics.burgers",
                {"method": cls.name},
                {**TINY["physics.burgers"], **{f"method.{k}": v for k, v in params.items()},
                 "method.adam_steps": 2, "method.lbfgs_iterations": 0,
                 "method.depth": 1, "method.width": 4},
            )  # fmt: skip
        finally:
            cls.solve = original
        given = seen[(cls.name, str(params))] is not None
        assert cell.metrics["field_samples_given"] == float(given)
        assert given == (cls is Supervised and not params)
