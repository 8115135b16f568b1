"""The plugin tutorials (docs/plugins.md, linked from the README) run as written: every
fenced block that starts with ``# <file>`` is written to that file, and every suite among
them runs through ``bench``. The README itself stays short (under 300 lines)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.cli import main
from bench.results import load_run

pytestmark = pytest.mark.usefixtures("frozen_heap")

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TUTORIALS = ROOT / "docs" / "plugins.md"
BLOCK = re.compile(r"```(?:python|yaml)\n# ([\w/.-]+\.(?:py|yaml))\n(.*?)```", re.S)


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory) -> Path:
    """A folder holding every file the README's tutorials write, as written."""
    folder = tmp_path_factory.mktemp("readme")
    blocks = BLOCK.findall(TUTORIALS.read_text())
    assert {name for name, _ in blocks} >= {
        "my_lab/bench_plugins.py",
        "ralston-inside.yaml",
        "my_lab/smoothed.py",
        "my-method.yaml",
        "my_lab/decay.py",
        "decay.yaml",
    }, "a README tutorial is missing"
    for name, body in blocks:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    return folder


def _run(tutorial: Path, suite: str, tmp_path: Path, monkeypatch) -> object:
    # from another folder: the suite's own folder puts my_lab on the import path
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    assert main(["run", str(tutorial / suite), "--output", str(out), "--quiet"]) == 0
    return load_run(next(out.iterdir())).cells


def test_readme_solver_plugin_runs_beside_a_builtin(tutorial, tmp_path, monkeypatch):
    (tutorial / "solver.yaml").write_text(
        "suite: readme\ndevice: cpu\nrepeats: 1\nplugins: [my_lab.bench_plugins]\n"
        "benchmarks:\n  - task: ode.harmonic\n    params: {solver.step_size: 0.05}\n"
        "    matrix: {solver: [heun, my_lab.ralston]}\n"
    )
    cells = _run(tutorial, "solver.yaml", tmp_path, monkeypatch).set_index("solver")
    assert set(cells["status"]) == {"ok"}
    ralston, heun = cells.loc["my_lab.ralston"], cells.loc["heun"]
    # Same step, 2 evaluations a step. On a linear ODE every two-stage second-order
    # Runge-Kutta method has the stability polynomial 1 + z + z^2/2, so Ralston and
    # Heun give the same solution up to rounding (measured: 0.0041668 both).
    assert ralston["metric.nfe"] == heun["metric.nfe"] == 400
    assert abs(ralston["metric.final_rel_error"] - heun["metric.final_rel_error"]) < 1e-12
    assert ralston["metric.final_rel_error"] < 1e-2


def test_readme_solver_runs_inside_node_and_nodeo(tutorial, tmp_path, monkeypatch):
    cells = _run(tutorial, "ralston-inside.yaml", tmp_path, monkeypatch)
    assert set(cells["status"]) == {"ok"}, cells[["task", "status", "error"]]
    toy = cells[cells.task == "classify.toy"].set_index("param.architecture.solver.step_size")
    assert sorted(toy.index) == [0.125, 0.25]
    assert set(toy["param.architecture.solver"]) == {"my_lab.ralston"}
    # trained: moons classified (rk4's node reaches 0.994 at these settings)
    assert (toy["metric.test_accuracy"] > 0.9).all()
    # the step reaches the solver: the two cells share seed, data and initial weights, so
    # a step the Neural ODE ignored would give them bit-identical losses
    loss = toy["metric.final_loss"]
    assert loss[0.125] != loss[0.25], loss
    nodeo = cells[cells.task == "registration.pairwise"].iloc[0]
    assert nodeo["param.method.solver"] == "my_lab.ralston"
    assert nodeo["param.method.solver.step_size"] == 0.5
    assert nodeo["metric.dice"] > nodeo["metric.dice_before"]


def test_readme_registration_method_runs_beside_svf_and_syn(tutorial, tmp_path, monkeypatch):
    cells = _run(tutorial, "my-method.yaml", tmp_path, monkeypatch).set_index("method")
    assert cells.loc["my_lab.smoothed", "status"] == "ok"
    assert cells.loc["svf", "status"] == "ok"
    assert cells.loc["syn", "status"] in ("ok", "skipped")
    if cells.loc["syn", "status"] == "skipped":
        assert "antspyx" in cells.loc["syn", "error"] or "ants" in cells.loc["syn", "error"]
    assert set(cells["backend"]) == {"warp.eager"}  # the slot's default
    mine = cells.loc["my_lab.smoothed"]
    # registered: Dice up from the unregistered pair, error to the truth down
    assert mine["metric.dice"] > mine["metric.dice_before"]
    assert mine["metric.error_mm"] < mine["metric.error_mm_before"]


def test_readme_task_runs_with_a_builtin_and_the_readme_solver(tutorial, tmp_path, monkeypatch):
    cells = _run(tutorial, "decay.yaml", tmp_path, monkeypatch).set_index("solver")
    assert set(cells["status"]) == {"ok"}
    # rk4 at h = 0.1 on dy/dt = -2y: error ~ (2h)^5/120 * 10 steps ~ 3e-6 of exp(-2) ~ 1e-6;
    # Ralston (second order) ~ (2h)^3/6 * 10 steps ~ 1e-3 of exp(-2) ~ 2e-3
    assert cells.loc["rk4", "metric.error"] < 1e-5
    assert 1e-5 < cells.loc["my_lab.ralston", "metric.error"] < 1e-2


def test_the_readme_is_short_and_its_links_resolve():
    """Set-up, the commands, a plugin in one minute and the families table; the rest in
    docs/ and the published runs' own READMEs. Every relative link names a real path."""
    import re

    text = README.read_text()
    assert len(text.splitlines()) < 300
    for page in (README, *sorted((ROOT / "docs").glob("*.md"))):
        for target in re.findall(r"\]\((?!https?:|#|mailto:)([^)#\s]+)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name}: broken link {target}"
