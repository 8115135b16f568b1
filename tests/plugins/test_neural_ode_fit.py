"""ode.neural_ode_fit really learns, counts its evaluations and records its curve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torchdiffeq

from plugins.tasks.ode.problems import SPIRAL_A
from tests.plugins._cells import run_cell

pytestmark = pytest.mark.usefixtures("frozen_heap")


def test_spiral_reference_matches_torchdiffeq_ode_demo(tmp_path: Path) -> None:
    """The cached spiral data equal ode_demo's own recipe (torchdiffeq dopri5, tight)."""
    run_cell("ode.neural_ode_fit", "rk4", tmp_path, {"steps": 1})
    (path,) = (tmp_path / "ode_reference").iterdir()
    with np.load(path) as data:
        ours = data["y"]
    A = torch.tensor(SPIRAL_A, dtype=torch.float64)
    t = torch.linspace(0.0, 25.0, ours.shape[0], dtype=torch.float64)
    true_y0 = torch.tensor([[2.0, 0.0]], dtype=torch.float64)
    demo = torchdiffeq.odeint(lambda t, y: (y**3) @ A, true_y0, t, rtol=1e-10, atol=1e-10)
    # dopri5 at 1e-10 over 25 time units: global error ~1e-8 on |y| ~ 1.
    assert np.abs(demo[:, 0].numpy() - ours).max() < 1e-6


def test_defaults_learn_the_spiral_with_rk4(tmp_path: Path) -> None:
    cell = run_cell("ode.neural_ode_fit", "rk4", tmp_path)
    m = cell.metrics
    steps = cell.cell.task_params["steps"]
    # Measured: 6.86 -> 0.14 (seed 0), 0.16 (seed 1) in ~3 s on one CPU thread.
    assert m["final_loss"] < 0.1 * m["initial_loss"], m
    # batch_time = 10 samples 0.05 apart and rk4's step 0.05: 9 steps of 4 stages.
    assert m["nfe_forward"] == 36
    assert m["nfe_backward"] == 0
    # the record's points are (name, step, time, value)
    losses = [value for name, _, _, value in cell.curves if name == "batch_loss"]
    times = [t for name, _, t, _ in cell.curves if name == "batch_loss"]
    assert len(losses) == steps
    # Batch windows are short (0.45 time units), so even the untrained model's
    # batch loss is small (~0.11); training takes it to ~0.012.
    assert np.mean(losses[-20:]) < 0.3 * np.mean(losses[:5])
    assert all(b >= a for a, b in zip(times, times[1:]))
    (train,) = cell.times["train"]
    assert train >= times[-1] > 0
    assert "train" in cell.memory


def test_adjoint_training_counts_backward_evaluations(tmp_path: Path) -> None:
    params = {"steps": 3}
    direct = run_cell("ode.neural_ode_fit", "rk4", tmp_path, params).metrics
    adjoint = run_cell("ode.neural_ode_fit", "rk4", tmp_path, params, adjoint=True).metrics
    # The adjoint backward retraces the 9 window intervals with the same step: 36 again.
    assert adjoint["nfe_backward"] == 36 and direct["nfe_backward"] == 0
    # Same seed, same data, gradients equal to O(h^4): the two runs stay close.
    assert abs(adjoint["final_loss"] - direct["final_loss"]) < 1e-2 * direct["final_loss"]


def test_adaptive_solver_trains(tmp_path: Path) -> None:
    m = run_cell("ode.neural_ode_fit", "torchdiffeq.dopri5", tmp_path, {"steps": 3},
                 rtol=1e-5, atol=1e-6).metrics  # fmt: skip
    assert m["nfe_forward"] > 6 and np.isfinite(m["final_loss"])


def test_a_step_the_solver_would_not_take_on_the_data_is_refused(tmp_path: Path) -> None:
    """The quickstart ran rk4 and torchdiffeq.rk4 'at 0.1' over data 0.05 apart: rk4
    stepped 0.05 (nfe 36 a window), torchdiffeq.rk4 0.1 (nfe 20; a review). A solver
    landing on every data time is refused a step the data spacing does not allow."""
    import yaml

    from bench.suite import SuiteError, load_suite
    from bench.testing import default_registry

    def suite(step: float) -> Path:
        entry = {"task": "ode.neural_ode_fit", "params": {"steps": 2, "solver.step_size": step},
                 "matrix": {"solver": ["rk4", "torchdiffeq.rk4"]}}  # fmt: skip
        path = tmp_path / f"s{step}.yaml"
        path.write_text(yaml.safe_dump({"suite": "s", "benchmarks": [entry]}))
        return path

    message = (r"rk4 steps from output time to output time \(t1 25 over n_times 501\): "
               "solver.step_size 0.1 exceeds the output spacing 0.05")  # fmt: skip
    with pytest.raises(SuiteError, match=message):
        load_suite(suite(0.1), default_registry())
    for step in (0.05, 0.025):
        assert len(load_suite(suite(step), default_registry()).cells) == 2
