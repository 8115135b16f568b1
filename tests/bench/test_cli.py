"""bench list and bench plot from the command line."""

from __future__ import annotations

import sys

from bench.cli import main
from bench.runner import InProcessExecutor, run_suite
from bench.suite import load_suite

from .conftest import FIXTURE_PLUGINS


def test_list_shows_kind_provider_doc_and_parameters(capsys):
    assert main(["list", "task", "--plugins", FIXTURE_PLUGINS]) == 0
    out = capsys.readouterr().out
    assert "test.behave" in out and "bench_local_harness_plugins" in out
    assert "Does what its mode says" in out
    assert "seconds: float = 0.001" in out
    assert "components: solver (solver)" in out
    assert "unavailable: test.needs_missing needs the optional module" in " ".join(out.split())


def test_list_of_all_kinds_includes_builtins(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "solvers (" in out and "tasks (" in out and "dopri5" in out


def test_list_reports_a_bad_plugin_without_traceback(tmp_path, capsys):
    assert main(["list", "--plugins", str(tmp_path / "missing.py")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err


def test_plot_writes_a_png(write_suite, registry, tmp_path, capsys):
    path = write_suite(
        "suite: p\nplugins: [FIXTURE_PLUGINS]\nrepeats: 2\nbenchmarks:\n"
        "  - task: test.behave\n    matrix: {solver: [test.constant], value: [1, 2, 4]}\n"
    )
    run_dir = tmp_path / "run"
    run_suite(load_suite(path, registry), run_dir, executor=InProcessExecutor(registry))
    png = tmp_path / "fig.png"
    args = ["plot", str(run_dir), "--x", "metric.value", "--y", "time.work.median", "-o", str(png)]
    assert main(args) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["plot", str(run_dir), "--x", "metric.nope", "-o", str(png)]) == 2
    assert "no column 'metric.nope'" in capsys.readouterr().err


def test_messages_with_brackets_are_printed_as_they_are(write_suite, capsys):
    """Rich markup is off: `dynbench[plot]`, `[64, 64]` or `[/x]` in a message or a
    parameter reach the user unchanged (and cannot break the printing)."""
    path = write_suite(
        "suite: s\nplugins: [FIXTURE_PLUGINS]\nbenchmarks:\n"
        "  - task: test.picky\n    params: {shape: [1, '[/x]']}\n"
        "    matrix: {solver: [test.constant]}\n"
    )
    assert main(["run", str(path), "--dry-run"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "got [1, '[/x]']" in err
    assert err.startswith("error:")


def test_plot_without_matplotlib_names_the_extra(
    write_suite, registry, tmp_path, capsys, monkeypatch
):
    path = write_suite(
        "suite: p\nplugins: [FIXTURE_PLUGINS]\nbenchmarks:\n"
        "  - task: test.behave\n    matrix: {solver: [test.constant]}\n"
    )
    run_dir = tmp_path / "run"
    run_suite(load_suite(path, registry), run_dir, executor=InProcessExecutor(registry))
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    assert main(["plot", str(run_dir), "--x", "metric.value", "-o", str(tmp_path / "f.png")]) == 2
    assert "pip install 'dynbench[plot]'" in capsys.readouterr().err
