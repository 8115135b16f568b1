"""bench list and bench plot from the command line."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from bench.cli import main
from bench.executors import InProcessExecutor
from bench.runner import run_suite
from bench.suite import load_suite

from .conftest import FIXTURE_PLUGINS

pytestmark = pytest.mark.usefixtures("frozen_heap")


def test_list_shows_kind_provider_doc_and_parameters(capsys):
    assert main(["list", "task", "--plugins", FIXTURE_PLUGINS]) == 0
    out = capsys.readouterr().out
    assert "test.behave" in out and "harness_plugins.py" in out
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


@pytest.mark.parametrize("given", ["folder", "no suffix"])
def test_plot_says_the_file_it_wrote(write_suite, registry, tmp_path, capsys, given):
    path = write_suite(
        "suite: p\nplugins: [FIXTURE_PLUGINS]\nbenchmarks:\n"
        "  - task: test.behave\n    matrix: {solver: [test.constant], value: [1, 2]}\n"
    )
    run_dir = tmp_path / "run"
    run_suite(load_suite(path, registry), run_dir, executor=InProcessExecutor(registry))
    target = tmp_path / "figures"
    if given == "folder":
        target.mkdir()
        expected = target / "time.work.median-vs-metric.value.png"
    else:
        expected = tmp_path / "figures.png"
    capsys.readouterr()
    args = ["plot", str(run_dir), "--x", "metric.value", "--y", "time.work.median"]
    assert main([*args, "-o", str(target)]) == 0
    assert capsys.readouterr().out.split() == ["wrote", str(expected)]
    assert expected.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if given == "folder":
        assert not (tmp_path / "figures.png").exists()  # was written beside the folder


def test_plot_without_matplotlib_says_what_to_install(
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
    assert "pip install matplotlib" in capsys.readouterr().err


# --- what a new user tripped on (issue 8) ---------------------------------------------

MIXED = (
    "suite: mixed\ndevice: cpu\nplugins: [FIXTURE_PLUGINS]\nrepeats: 2\nbenchmarks:\n"
    "  - task: test.behave\n    matrix: {solver: [test.constant], value: [1, 2]}\n"
    "  - task: test.leaky\n"
    "  - task: test.behave\n    params: {mode: raise}\n    matrix: {solver: [test.constant]}\n"
    "  - task: test.needs_missing\n"
)


@pytest.fixture
def mixed_run(write_suite, registry, tmp_path):
    path = write_suite(MIXED)
    run_dir = tmp_path / "run"
    run_suite(load_suite(path, registry), run_dir, executor=InProcessExecutor(registry))
    return run_dir


def test_plot_keeps_one_colour_and_one_legend_per_line_across_panels(mixed_run, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.plot import plot_run
    from bench.results import load_run

    cells = load_run(mixed_run).cells.copy()
    cells["panel"] = ["a", "b"] * (len(cells) // 2) + ["a"] * (len(cells) % 2)
    cells["line"] = ["x", "y", "z", "x", "y", "z"][: len(cells)]
    seen = {}
    original = plt.subplots

    def spy(*args, **kwargs):
        fig, axes = original(*args, **kwargs)
        seen["axes"] = axes
        return fig, axes

    plt.subplots = spy
    try:
        plot_run(cells, x="metric.value", y="wall", by="line", facet="panel",
                 output=tmp_path / "f.png", logx=False, logy=False)  # fmt: skip
    finally:
        plt.subplots = original
    colours: dict[str, set] = {}
    for ax in seen["axes"][0]:
        for line in ax.get_lines():
            colours.setdefault(line.get_label(), set()).add(line.get_color())
    assert all(len(c) == 1 for c in colours.values()), colours
    legend = seen["axes"][0][-1].get_legend()
    assert sorted(t.get_text() for t in legend.get_texts()) == sorted(colours)


def test_group_by_never_pools_tasks_and_errors_have_clean_labels(mixed_run, capsys):
    assert main(["show", str(mixed_run), "--group-by", "solver"]) == 0
    out = capsys.readouterr().out
    assert "test.behave" in out and "test.leaky" in out  # one table per task
    assert "nan" not in out  # a cell without a solver slot reads 'test.needs_missing'


def test_show_errors_prints_the_full_traceback(mixed_run, capsys):
    assert main(["show", str(mixed_run), "--errors"]) == 0
    out = capsys.readouterr().out
    assert "Traceback (most recent call last)" in out
    assert "ValueError: the plugin raised on purpose" in out


def test_a_filter_matching_nothing_says_so(mixed_run, capsys):
    assert main(["show", str(mixed_run), "--filter", "solver=nope"]) == 0
    assert "no cells match solver=nope" in capsys.readouterr().out


def test_strict_and_quiet(write_suite, tmp_path, capsys):
    path = write_suite(MIXED)
    out_dir = tmp_path / "out"
    assert main(["run", str(path), "--output", str(out_dir), "--quiet", "--strict"]) == 3
    out = capsys.readouterr().out
    assert "results: " + str(out_dir) in out and "error: 1" in out
    assert len(out.strip().splitlines()) == 1


def test_compare_of_unrelated_runs_is_bad_input(write_suite, registry, tmp_path, capsys):
    runs = []
    for i, task in enumerate(["test.leaky", "test.files"]):
        path = write_suite(
            f"suite: u{i}\nplugins: [FIXTURE_PLUGINS]\nbenchmarks:\n  - task: {task}\n",
            name=f"s{i}.yaml",
        )
        run_suite(
            load_suite(path, registry), tmp_path / f"r{i}", executor=InProcessExecutor(registry)
        )
        runs.append(str(tmp_path / f"r{i}"))
    assert main(["compare", *runs]) == 2
    assert "share no cell" in capsys.readouterr().err
    # the report of the two alike (it wrote a page titled A vs B holding A alone)
    page = tmp_path / "ab.html"
    assert main(["report", *runs, "-o", str(page)]) == 2
    assert "share no cell with results in both" in capsys.readouterr().err
    assert not page.exists()


@pytest.mark.parametrize("alpha", ["-1", "nan", "1", "x"])
def test_alpha_outside_0_1_is_refused(alpha, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["compare", "a", "b", "--alpha", alpha])
    assert exit_.value.code == 2


def test_version_and_python_dash_m():
    import subprocess

    from bench import __version__

    done = subprocess.run(
        [sys.executable, "-m", "bench", "--version"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.strip() == f"dynbench {__version__}"


def test_list_shows_a_plugin_files_path(capsys):
    from .conftest import FIXTURE_PLUGINS

    assert main(["list", "task", "--plugins", FIXTURE_PLUGINS]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "harness_plugins.py" in out and "bench_local_" not in out


def test_the_run_bar_counts_a_tuned_suites_test_cells_from_the_start():
    """The eta of a tuned run was that of its validation cells alone (3/10 with 18 cells
    in all) until they ended: the test cells each configuration will run are counted from
    the start, and the total is set right once validation chose. A long cell's bar says
    its last curve point."""
    from types import SimpleNamespace

    from rich.console import Console

    from bench.cli import _RunDisplay

    cell = SimpleNamespace(task="t", id="c1", params={}, given={}, components={},
                           describe=lambda: "t", task_params={}, component_params={},
                           seed=0)  # fmt: skip
    suite = SimpleNamespace(name="s", cells=[cell] * 4, planned=10, tunings=[object()])
    out = Console(file=io.StringIO(), width=120)
    display = _RunDisplay(out, suite, Path("/tmp/x"), quiet=True)
    display.on_start([cell] * 4, 0)
    assert display.progress.tasks[0].total == 10  # 4 on validation, 6 on test to come
    for _ in range(4):
        display.on_cell_done(cell, {"status": "ok", "wall": 0.1, "error": ""})
    display.on_start([cell] * 5, 4)  # one configuration's choice failed: 5, not 6
    assert display.progress.tasks[0].total == 9
    display.on_progress(cell, ("loss", 1200, 3.0, 0.01234567))
    assert display.progress.tasks[0].description.endswith("· loss 0.01235 at step 1200")
    # a resume with 6 of the 10 done and 4 to run: 4 in all, not 4 of 10 (a user audit)
    resumed = _RunDisplay(out, suite, Path("/tmp/x"), quiet=True)
    resumed.on_start([cell] * 4, 6)
    assert resumed.progress.tasks[0].total == 4


def test_a_plot_line_runs_along_settings_never_through_one_settings_seeds():
    """A configuration's seeds differ in their measured cost: they are one point at the
    medians, not a line that reads as a trade-off (before, each distinct time was a
    point); a sweep's settings are the points of its line, in order of x."""
    import pandas as pd

    from bench.plot import _points

    one = pd.DataFrame({"task": "t", "solver": "rk4", "seed": [0, 1, 2],
                        "time.solve.median": [0.168, 0.185, 0.170],
                        "metric.err": [0.935, 0.86, 0.90]})  # fmt: skip
    pts = _points(one, "time.solve.median", "metric.err")
    assert pts.to_dict("records") == [{"time.solve.median": 0.170, "metric.err": 0.90}]
    sweep = pd.concat([one.assign(**{"param.solver.step_size": h, "time.solve.median": t})
                       for h, t in ((0.1, [2.0, 2.2, 2.1]), (0.2, [1.0, 1.1, 0.9]))])  # fmt: skip
    pts = _points(sweep, "time.solve.median", "metric.err")
    assert list(pts["time.solve.median"]) == [1.0, 2.1]


def test_plot_by_says_when_a_line_joins_other_settings():
    """`bench plot --by solver` drew float32 and float64 cells as one zig-zag line with no
    word: the columns a line mixes are named (the sweep it runs along is not)."""
    import pandas as pd

    from bench.plot import mixed_in_lines

    cells = pd.DataFrame(
        [{"task": "t", "solver": s, "param.dtype": d, "param.solver.step_size": h, "seed": 0}
         for s in ("rk4", "euler") for d in ("float32", "float64") for h in (0.1, 0.05, 0.02)]
    )  # fmt: skip
    assert mixed_in_lines(cells, "solver", "task") == ["param.dtype"]
    assert mixed_in_lines(cells[cells["param.dtype"] == "float64"], "solver", "task") == []


def test_plot_by_prints_its_note_on_a_run(write_suite, registry, tmp_path, capsys):
    """The note's text once called a string (a SyntaxWarning, and a TypeError when said)."""
    path = write_suite(
        "suite: p\nplugins: [FIXTURE_PLUGINS]\nrepeats: 1\nwarmup: 0\nbenchmarks:\n"
        "  - task: test.behave\n"
        "    matrix: {solver: [test.constant], value: [1.0, 2.0], seconds: [0.001, 0.002]}\n"
    )
    run_suite(load_suite(path, registry), tmp_path / "r", executor=InProcessExecutor(registry))
    out = tmp_path / "p.png"
    assert main(["plot", str(tmp_path / "r"), "--x", "time.work.median", "--y", "metric.value",
                 "--by", "solver", "-o", str(out)]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "note: each --by solver line joins cells that differ in" in text and out.exists()


def test_the_cells_not_ok_name_their_seed_when_seeds_differ():
    """Two failed seeds of one configuration read as two identical rows (a user audit
    of a plugin that crashed on its third seed); the row names the seed."""
    import pandas as pd
    from rich.console import Console

    from bench.display import errors_table

    cells = pd.DataFrame({"cell_id": list("abc"), "task": "t", "label": "", "seed": [0, 1, 2],
                          "status": ["ok", "error", "error"], "error": ["", "boom", "boom"],
                          "param.solver": "s"})  # fmt: skip
    console = Console(width=200, record=True)
    console.print(errors_table(cells))
    text = console.export_text()
    assert "seed=1" in text and "seed=2" in text and "seed=0" not in text


@pytest.mark.parametrize(
    "times",
    [[3.1e-3, 6.2e-3, 1.8e-2, 7.8e-2], [5.5e-3, 6.2e-3, 8.0e-3, 9.5e-3], [2.1e-3, 3e-3, 4.8e-3]],
)
def test_a_log_axis_within_a_decade_has_tick_labels_that_do_not_overlap(tmp_path, times):
    """Times from 3.1 to 78 ms on a log axis: matplotlib labels the minor ticks, and
    they ran together ("3x10^-3 4x10^-3 6x10^-3"; a user audit). Labels at 1, 2, 5 x
    10^k, each saying its tick's value (a first fix wrote 7x10^-3 at 0.0065 on an axis
    within one decade: a review); an axis holding fewer than two such keeps its own."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from bench.plot import plot_run

    n = len(times)
    cells = pd.DataFrame({"status": "ok", "solver": list("abcd"[:n]) * 2, "seed": 0,
                          "task": ["t"] * n + ["u"] * n, "time.solve.median": times * 2,
                          "metric.error": [10.0**-k for k in range(n)] * 2})  # fmt: skip
    seen = {}
    original = plt.subplots

    def spy(*args, **kwargs):
        fig, axes = original(*args, **kwargs)
        seen["fig"], seen["axes"] = fig, axes
        return fig, axes

    plt.subplots = spy
    try:
        plot_run(cells, x="time.solve.median", y="metric.error", by=None, facet="task",
                 output=tmp_path / "p.png")  # fmt: skip
    finally:
        plt.subplots = original
    fig, ax = seen["fig"], seen["axes"][0][0]
    fig.canvas.draw()
    low, high = ax.get_xlim()
    labels = [
        t
        for t in ax.get_xticklabels(which="both")
        if t.get_visible() and t.get_text() and low <= t.get_position()[0] <= high
    ]
    assert len(labels) >= 2
    boxes = sorted((t.get_window_extent() for t in labels), key=lambda b: b.x0)
    assert not [(a, b) for a, b in zip(boxes, boxes[1:]) if a.x1 > b.x0 + 0.5]
    for t in labels:  # each label is its tick's value: m x 10^e read back
        text = t.get_text().replace("$", "").replace("\\mathdefault", "")
        text = text.replace("{", "").replace("}", "").replace("\\times", "*")
        mantissa, _, exponent = text.rpartition("10^")
        value = float(mantissa.rstrip("*") or 1) * 10.0 ** float(
            exponent.replace("\\minus", "-").replace("\u2212", "-")
        )
        assert value == pytest.approx(t.get_position()[0], rel=1e-9), t.get_text()


def test_a_run_in_tritons_interpreter_says_so_wherever_its_times_are_read(
    write_suite, registry, tmp_path, capsys, monkeypatch
):
    """TRITON_INTERPRET=1 timed warp.triton at 18 ms, a 0.006x 'speedup', with nothing in
    run.json, show or the report saying the kernels ran in the CPU interpreter (a user
    audit). The run records the variables that change how cells run; show, the report
    and compare say them."""
    from bench.compare import measurement_differences
    from bench.results import load_run

    path = write_suite(
        "suite: p\nplugins: [FIXTURE_PLUGINS]\nrepeats: 1\nbenchmarks:\n"
        "  - task: test.behave\n    matrix: {solver: [test.constant]}\n"
    )
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    run_dir = tmp_path / "run"
    run_suite(load_suite(path, registry), run_dir, executor=InProcessExecutor(registry))
    meta = load_run(run_dir).meta
    meta.pop("load")  # a busy machine (this test's own suite, say) would add its own note
    assert meta["environment"]["TRITON_INTERPRET"] == "1"  # (and any other set here)
    assert main(["show", str(run_dir)]) == 0
    said = "TRITON_INTERPRET=1 (Triton kernels ran in its CPU interpreter: their times are"
    assert said in capsys.readouterr().out
    page = tmp_path / "page.html"
    assert main(["report", str(run_dir), "-o", str(page)]) == 0
    assert said in page.read_text()
    (note,) = measurement_differences(meta, {**meta, "environment": {}})
    assert note.startswith("the environment differs: ") and said in note
    assert note.endswith("in A, none set in B")
    # a run from before environments were recorded is not 'none set' (a review)
    older = {k: v for k, v in meta.items() if k != "environment"}
    (note,) = measurement_differences(meta, older)
    assert note.endswith("the other recorded no environment (a run from before bench recorded it)")
    # a resume in another environment keeps the first invocation's (a review)
    from bench.sysinfo import run_environment

    resumed = {**meta, "environment": {}, "earlier_runs": [{"environment": meta["environment"]}]}
    assert run_environment(resumed).startswith("none set; before a resume: ")
    assert said in run_environment(resumed)


def test_a_run_records_the_load_it_started_under(write_suite, registry, tmp_path, capsys):
    """A run started beside other work came out 2-4.5x slower and nothing recorded it (a
    user audit): run.json keeps the 1-minute load average and CPU count at the start;
    show, the report and compare say where it was busy."""
    import json
    import os

    from bench.compare import measurement_differences
    from bench.results import load_run
    from bench.sysinfo import load_note

    path = write_suite(
        "suite: p\nplugins: [FIXTURE_PLUGINS]\nrepeats: 1\nbenchmarks:\n"
        "  - task: test.behave\n    matrix: {solver: [test.constant]}\n"
    )
    run_dir = tmp_path / "run"
    run_suite(load_suite(path, registry), run_dir, executor=InProcessExecutor(registry))
    meta = load_run(run_dir).meta
    assert 0 < meta["load"]["cpus"] <= os.cpu_count() and meta["load"]["load_1min"] >= 0
    quiet = {**meta, "load": {"load_1min": 0.25, "cpus": 4}}
    busy = {**meta, "load": {"load_1min": 3.9, "cpus": 2}}
    assert load_note(quiet) == "0.25 on 4 CPUs at the start"
    assert load_note(busy) == (
        "3.9 on 2 CPUs at the start (the machine was busy: times may include other work)"
    )
    assert load_note({"load": "high"}) == load_note({}) == ""  # damaged, or not recorded
    # a job array's cells ran on other hosts than the one the load was read on
    assert load_note({**busy, "executor": "SlurmExecutor"}) == ""
    # resumed on a quiet machine: the busy first invocation is still said (a review)
    resumed = {**quiet, "earlier_runs": [{"load": busy["load"], "executor": "ProcessExecutor"}]}
    assert load_note(resumed) == (
        "3.9 on 2 CPUs at the start; then, resumed, 0.25 on 4 CPUs at the start (the machine "
        "was busy: times may include other work)"
    )
    assert measurement_differences(quiet, quiet) == []
    assert measurement_differences(quiet, busy) == [
        "the machine was busy as run B started (load average 3.9 on 2 CPUs at the start): "
        "its times may include other work"
    ]
    (run_dir / "run.json").write_text(json.dumps(busy))
    capsys.readouterr()
    assert main(["show", str(run_dir)]) == 0
    assert "load average: 3.9 on 2 CPUs at the start (the machine was busy" in (
        " ".join(capsys.readouterr().out.split())
    )
    page = tmp_path / "page.html"
    assert main(["report", str(run_dir), "-o", str(page)]) == 0
    assert "the machine was busy: times may include other work" in page.read_text()


def test_the_headline_plot_draws_the_cells_its_primary_leaves_out_by_their_next_quality():
    """The published atlas rerun mixes a barycentre population (no attribute_ncc) with
    conditional ones: the default plot dropped the 12 barycentre cells in silence (a
    review). They get a panel of their own, by template_ncc, as the report judges them."""
    import json
    from pathlib import Path

    import pandas as pd

    from bench.plot import headline_panels

    run = Path(__file__).resolve().parents[2] / "results/published/registration-atlas-rerun-cpu"
    cells = pd.read_parquet(run / "cells.parquet")
    panels, skipped = headline_panels(cells, json.loads((run / "run.json").read_text()))
    assert [(p.title, p.y, len(p.cells)) for p in panels] == [
        ("registration.atlas", "metric.attribute_ncc", 15),
        ("registration.atlas (no attribute_ncc)", "metric.template_ncc", 12),
    ] and skipped == []
    # a --y the user names draws what has it, no second panel
    named, _ = headline_panels(cells, json.loads((run / "run.json").read_text()),
                               y="metric.template_ncc")  # fmt: skip
    assert [len(p.cells) for p in named] == [27]
    # the barycentre cells alone (no ok cell with the primary): still drawn (a review)
    alone, skipped = headline_panels(cells[cells["metric.attribute_ncc"].isna()],
                                     json.loads((run / "run.json").read_text()))  # fmt: skip
    assert [(p.y, len(p.cells)) for p in alone] == [("metric.template_ncc", 12)]
