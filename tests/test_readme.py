"""The README's plugin example runs as written, through a suite, beside a built-in."""

from __future__ import annotations

import re
from pathlib import Path

from bench.cli import main
from bench.results import load_run

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_solver_plugin_runs_in_a_suite(tmp_path):
    code = re.search(r"# my_lab/bench_plugins.py\n(.*?)```", README.read_text(), re.S)
    assert code, "the README's plugin example is missing"
    (tmp_path / "ralston.py").write_text(code.group(1))
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "suite: readme\ndevice: cpu\nrepeats: 1\nplugins: [./ralston.py]\nbenchmarks:\n"
        "  - task: ode.harmonic\n    params: {solver.step_size: 0.05}\n"
        "    matrix: {solver: [heun, my_lab.ralston]}\n"
    )
    assert main(["run", str(suite), "--output", str(tmp_path / "out"), "--quiet"]) == 0
    cells = load_run(tmp_path / "out" / "readme").cells.set_index("solver")
    assert set(cells["status"]) == {"ok"}
    ralston = cells.loc["my_lab.ralston"]
    heun = cells.loc["heun"]
    # Same step, 2 evaluations a step. On a linear ODE every two-stage second-order
    # Runge-Kutta method has the stability polynomial 1 + z + z^2/2, so Ralston and
    # Heun give the same solution up to rounding (measured: 0.0041668 both).
    assert ralston["metric.nfe"] == heun["metric.nfe"] == 400
    assert abs(ralston["metric.final_rel_error"] - heun["metric.final_rel_error"]) < 1e-12
    assert ralston["metric.final_rel_error"] < 1e-2
