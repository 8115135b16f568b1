"""Tuning by one rule (bench.tuning): each configuration tries its grid on validation
seeds, the best setting by the task's headline runs on the test seeds, and run.json
says what was tried and chosen."""

from __future__ import annotations

import json
import textwrap

import pytest

from bench import tuned
from bench.cli import main
from bench.results import load_run
from bench.suite import SuiteError, load_suite

pytestmark = pytest.mark.usefixtures("frozen_heap")

PLUGIN = textwrap.dedent(
    '''
    import os

    from bench import Headline, Method, Param, Solver, Task, hookimpl


    class Knob(Solver):
        name = "tune.knob"
        params = {"step_size": Param(0.1, low=0.0, low_open=True), "gain": Param(1.0)}
        tuning = {"step_size": [0.3, 0.1, 0.2]}

        def odeint(self, func, y0, t, **options):
            return y0


    class Other(Solver):
        name = "tune.other"
        params = {"step_size": Param(0.5, low=0.0, low_open=True)}
        tuning = {"step_size": [0.5, 0.4, 0.45]}

        def odeint(self, func, y0, t, **options):
            return y0


    class Plain(Solver):
        name = "tune.plain"  # declares no grid
        params = {"step_size": Param(0.25, low=0.0, low_open=True)}

        def odeint(self, func, y0, t, **options):
            return y0


    class Small(Solver):
        name = "tune.small"
        params = {"step_size": Param(0.5, low=0.0, low_open=True)}
        tuning = {"step_size": [0.5]}

        def odeint(self, func, y0, t, **options):
            return y0


    class Score(Task):
        """error = |h - 0.2| + 0.01 seed: 0.2 is best; fail_at makes one setting fail
        (until a file ``fixed`` is in the working folder); TUNE_KILL_AT_SEED kills the
        process running the cell of that seed."""

        name = "tune.score"
        components = {"solver": Solver}
        headline = Headline(quality={"error": "lower"})
        params = {"fail_at": Param(-1.0), "offset": Param(0.0)}

        def run(self, ctx):
            h = ctx.components["solver"].values["step_size"]
            if h == self.values["fail_at"] and not os.path.exists("fixed"):
                raise ValueError("this setting fails on purpose")
            if os.environ.get("TUNE_KILL_AT_SEED") == str(ctx.seed):
                os.kill(os.getpid(), 9)  # the whole run dies here, as by kill -9
            ctx.metric("error", abs(h - 0.2) + 0.01 * ctx.seed + self.values["offset"])


    class Holder(Method):
        """A method holding a solver: its own grid and its solver's are both declared."""

        name = "tune.holder"
        params = {"solver": Param("tune.knob", plugin=Solver), "scale": Param(1.0)}
        tuning = {"scale": [2.0, 1.0]}

        def solve(self, problem, ctx):
            h = self.values["solver"].values["step_size"]
            return abs(h - 0.2) * self.values["scale"]


    class Picker(Method):
        """A method whose own grid chooses its solver."""

        name = "tune.picker"
        params = {"solver": Param("tune.knob", plugin=Solver)}
        tuning = {"solver": ["tune.knob", "tune.other"]}

        def solve(self, problem, ctx):
            return abs(self.values["solver"].values["step_size"] - 0.2)


    class Nested(Task):
        name = "tune.nested"
        components = {"method": Method}
        headline = Headline(quality={"error": "lower"})

        def run(self, ctx):
            ctx.metric("error", ctx.components["method"].solve(None, ctx) + 0.01 * ctx.seed)


    @hookimpl
    def bench_plugins():
        return [Knob, Other, Plain, Small, Score, Holder, Picker, Nested]
    '''
)


def _suite(tmp_path, entry: str):
    (tmp_path / "tune_plugins.py").write_text(PLUGIN)
    path = tmp_path / "tuned.yaml"
    path.write_text(
        "suite: tuned\ndevice: cpu\nrepeats: 1\nplugins: [./tune_plugins.py]\n"
        "benchmarks:\n" + textwrap.indent(textwrap.dedent(entry), "  ")
    )
    return path


DECLARED = """
- task: tune.score
  matrix: {solver: [tune.knob, tune.other]}
  seeds: [0, 1]
  tune: {grid: declared, validation_seeds: [10, 11]}
"""


def test_each_configuration_runs_its_best_validation_setting_on_the_test_seeds(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    path = _suite(tmp_path, DECLARED)
    run = _run_in_process(tmp_path, path)
    cells = run.cells
    val, test = cells[cells["role"] == "validation"], cells[cells["role"] == "test"]
    assert len(val) == 2 * 3 * 2  # configurations x settings x validation seeds
    assert set(val["seed"]) == {10, 11} and set(test["seed"]) == {0, 1}
    chosen = test.groupby("solver")["param.solver.step_size"].unique().to_dict()
    # knob's grid holds 0.2 (the best); other's best is 0.4, the closest to 0.2
    assert {k: list(v) for k, v in chosen.items()} == {"tune.knob": [0.2], "tune.other": [0.4]}
    record = {t["configuration"]["solver"]: t for t in run.meta["tuning"]}
    assert record["tune.knob"]["chosen"] == {"solver.step_size": 0.2}
    assert record["tune.knob"]["settings"] == [{"solver.step_size": v} for v in (0.3, 0.1, 0.2)]
    # the scores are the validation means: |h - 0.2| + 0.01 * mean(10, 11)
    assert record["tune.knob"]["scores"] == pytest.approx([0.205, 0.205, 0.105])
    assert record["tune.other"]["test_seeds"] == [0, 1]
    # a resume has nothing left to run and makes the same choice
    run_dir = run.path
    assert main(["run", str(path), "--resume", str(run_dir), "--in-process", "--quiet"]) == 0
    again = load_run(run_dir)
    assert len(again.cells) == len(cells)
    assert again.meta["tuning"] == run.meta["tuning"]


def test_a_declared_grid_reaches_the_plugins_a_component_holds(tmp_path, monkeypatch, capsys):
    """grid: declared sweeps the nested solver's declared grid beside its holder's, under
    its dotted key; a holder whose own grid chooses the solver adds no solver grid (it
    would be the default solver's only); a nested grid is checked like any other and a
    mistake names the plugin that declared it."""
    monkeypatch.chdir(tmp_path)
    path = _suite(tmp_path, """
    - task: tune.nested
      matrix: {method: [tune.holder, tune.picker]}
      seeds: [0]
      tune: {validation_seeds: [10], equal_size: false}
    """)  # fmt: skip
    run = _run_in_process(tmp_path, path)
    record = {t["configuration"]["method"]: t for t in run.meta["tuning"]}
    holder = record["tune.holder"]["settings"]
    assert holder == [{"method.scale": scale, "method.solver.step_size": h}
                      for scale in (2.0, 1.0) for h in (0.3, 0.1, 0.2)]  # fmt: skip
    assert record["tune.holder"]["chosen"] == {"method.scale": 2.0, "method.solver.step_size": 0.2}
    assert record["tune.picker"]["settings"] == [
        {"method.solver": "tune.knob"}, {"method.solver": "tune.other"}
    ]  # fmt: skip
    test = run.cells[(run.cells["role"] == "test") & (run.cells["method"] == "tune.holder")]
    assert list(test["param.method.solver.step_size"]) == [0.2]
    # a broken declared grid in a nested plugin is refused, naming who declared it (when
    # the plugin is registered, before the suite is read)
    broken = tmp_path / "broken"
    broken.mkdir()
    path = _suite(broken, path.read_text().split("benchmarks:\n", 1)[1])
    (broken / "tune_plugins.py").write_text(
        PLUGIN.replace('tuning = {"step_size": [0.3, 0.1, 0.2]}', 'tuning = {"step_size": [-1.0]}')
    )
    assert main(["run", str(path), "--dry-run"]) == 2
    out = capsys.readouterr()
    assert "tune_plugins.py: solver 'tune.knob': tuning['step_size']: -1.0 must be > 0.0" in (
        out.err
    )


def test_a_run_cut_after_validation_resumes_with_the_test_cells(tmp_path, monkeypatch):
    """The choice is a function of the recorded rows: a run interrupted once validation
    finished runs only the chosen settings' test cells on --resume."""
    from bench.executors import InProcessExecutor
    from bench.runner import run_suite
    from bench.testing import default_registry

    monkeypatch.chdir(tmp_path)
    path = _suite(tmp_path, DECLARED)
    registry = default_registry(["./tune_plugins.py"], base_dir=tmp_path)
    suite = load_suite(path, registry)
    n_val = len(suite.cells)
    _cut_after_the_first_test_cell(suite, registry, tmp_path / "r")
    assert len(load_run(tmp_path / "r").cells) == n_val + 1
    ran = []
    run_suite(suite, tmp_path / "r", executor=InProcessExecutor(registry), resume=True,
              on_cell_done=lambda cell, row: ran.append(cell))  # fmt: skip
    assert {c.role for c in ran} == {"test"} and len(ran) == 2 * 2 - 1
    meta = json.loads((tmp_path / "r" / "run.json").read_text())
    assert meta["status"] == "complete"


def test_the_test_cells_of_the_configurations_run_interleaved_seed_by_seed(tmp_path, monkeypatch):
    """A time ratio compares cells run under one load: the configurations' test cells
    alternate (every configuration's seed 0, then every seed 1), never one configuration's
    seeds all before the next configuration's."""
    from bench.executors import InProcessExecutor
    from bench.runner import run_suite
    from bench.testing import default_registry

    monkeypatch.chdir(tmp_path)
    path = _suite(tmp_path, DECLARED.replace("seeds: [0, 1]", "seeds: [0, 1, 2]"))
    registry = default_registry(["./tune_plugins.py"], base_dir=tmp_path)
    suite = load_suite(path, registry)
    ran = []
    run_suite(suite, tmp_path / "r", executor=InProcessExecutor(registry),
              on_cell_done=lambda cell, row: ran.append(cell))  # fmt: skip
    test = [(c.components["solver"], c.seed) for c in ran if c.role == "test"]
    assert test == [(solver, seed) for seed in (0, 1, 2) for solver in ("tune.knob", "tune.other")]


def test_a_resume_at_the_test_cells_counts_the_validation_cells_done(tmp_path, monkeypatch, capsys):
    """The count said 'N test cells to run (suite cells - N already done)' when a
    resume started at the test cells (99 done for 144 in registration-icbm-2d)."""
    from bench.executors import InProcessExecutor
    from bench.runner import run_suite
    from bench.testing import default_registry

    monkeypatch.chdir(tmp_path)
    path = _suite(tmp_path, DECLARED)
    registry = default_registry(["./tune_plugins.py"], base_dir=tmp_path)
    suite = load_suite(path, registry)
    with pytest.raises(KeyboardInterrupt):
        run_suite(suite, tmp_path / "r", executor=InProcessExecutor(registry),
                  on_cell_start=lambda cell: _interrupt_at_test(cell))  # fmt: skip
    capsys.readouterr()
    assert main(["run", str(path), "--resume", str(tmp_path / "r"), "--in-process"]) == 0
    assert "4 cells to run (12 already done)" in capsys.readouterr().out


def test_a_tuned_run_counts_its_test_cells_among_the_planned_and_the_done(
    tmp_path, monkeypatch, capsys
):
    """run.json's cells.total and the resume's 'already done' counted only the suite's
    validation cells: registration-3d-icbm-tuned-cpu closed with 'total 144, finished
    189' and, resumed after 27 of its test cells, said '(144 already done)' for 171."""
    from bench.testing import default_registry

    monkeypatch.chdir(tmp_path)
    path = _suite(tmp_path, DECLARED)
    registry = default_registry(["./tune_plugins.py"], base_dir=tmp_path)
    suite = load_suite(path, registry)
    assert (len(suite.cells), suite.planned) == (12, 16)  # 2 configurations x 2 test seeds
    _cut_after_the_first_test_cell(suite, registry, tmp_path / "r")
    capsys.readouterr()
    assert main(["run", str(path), "--resume", str(tmp_path / "r"), "--in-process"]) == 0
    assert "3 cells to run (13 already done)" in capsys.readouterr().out
    meta = json.loads((tmp_path / "r" / "run.json").read_text())
    assert meta["cells"] == {"total": 16, "finished": 16}
    capsys.readouterr()
    assert main(["run", str(path), "--resume", str(tmp_path / "r"), "--in-process"]) == 0
    assert "(16 already done)" in capsys.readouterr().out  # a complete run resumed


def test_a_configuration_without_a_qualifying_setting_plans_no_test_cells(tmp_path, monkeypatch):
    """Its only setting fails on validation: nothing is chosen, no test cell runs, and
    run.json's total does not count the test cells it never planned to run."""
    monkeypatch.chdir(tmp_path)
    path = _suite(tmp_path, _failing("tune.small", 0.5, [0, 1]))
    run = _run_in_process(tmp_path, path)
    (record,) = run.meta["tuning"]
    assert record["chosen"] is None and list(run.cells["role"]) == ["validation"]
    assert run.meta["cells"] == {"total": 1, "finished": 1}


def test_a_retried_validation_cell_that_moves_the_choice_supersedes_the_old_test_cells(
    tmp_path, monkeypatch, capsys
):
    """--retry-failed runs a failed validation cell again; when the choice moves, the old
    choice's test cells stay measured in the folder as superseded, left out of what is
    reported, and the new choice's test cells run."""
    from bench.tuned import reported

    monkeypatch.chdir(tmp_path)
    path = _suite(tmp_path, _failing("tune.knob", 0.2, [0, 1]))
    first = _run_in_process(tmp_path, path)  # 0.2 fails on validation: 0.3 is chosen
    assert list(first.cells.query("role == 'test'")["param.solver.step_size"]) == [0.3, 0.3]
    # the failed validation cell is listed though the tables leave validation out
    capsys.readouterr()
    assert main(["show", str(first.path), "--errors"]) == 0
    out = capsys.readouterr().out
    # named by its setting: two failed settings of one plugin read apart
    assert "tune.score solver=tune.knob solver.step_size=0.2 (validation)" in out
    assert "fails on purpose" in out and "(validation)  seed=10" in out
    (tmp_path / "fixed").touch()  # what made 0.2 fail is fixed
    args = ["run", str(path), "--resume", str(first.path), "--retry-failed", "--in-process"]
    assert main([*args, "--quiet"]) == 0
    again = load_run(first.path)
    (record,) = again.meta["tuning"]
    assert record["chosen"] == {"solver.step_size": 0.2}
    step = again.cells.set_index("role")["param.solver.step_size"]
    assert sorted(step["test"]) == [0.2, 0.2] and sorted(step["superseded"]) == [0.3, 0.3]
    superseded = again.cells[again.cells["role"] == "superseded"]
    assert (superseded["status"] == "ok").all()  # measured, kept
    assert set(reported(again.cells)["role"]) == {"test"}
    assert again.meta["cells"] == {"total": 3 + 2, "finished": 3 + 2, "superseded": 2}
    # shown apart: left out of the tables and said so; with --validation, their own rows
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["show", str(first.path), "--group-by", "solver"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "2 test cells of settings no longer chosen" in out
    assert main(["show", str(first.path), "--group-by", "solver", "--validation"]) == 0
    roles = [r[:3] for r in _rows(capsys.readouterr().out, "0.")]
    assert ["superseded", "0.3", "2"] in roles and ["test", "0.2", "2"] in roles
    assert main(["report", str(first.path), "-o", str(tmp_path / "page.html")]) == 0
    page = (tmp_path / "page.html").read_text()
    assert "superseded test cells (settings no longer chosen) (2)" in page
    # a resume makes the same choice and leaves the roles as they are
    assert main(["run", str(path), "--resume", str(first.path), "--in-process", "--quiet"]) == 0
    assert load_run(first.path).cells["role"].value_counts().to_dict() == {
        "validation": 3, "test": 2, "superseded": 2
    }  # fmt: skip


def _failing(solver: str, fail_at: float, seeds: list[int]) -> str:
    """A tuned entry of one solver whose setting ``fail_at`` fails (validation seed 10)."""
    return (
        f"- task: tune.score\n  matrix: {{solver: [{solver}]}}\n  params: {{fail_at: {fail_at}}}\n"
        f"  seeds: {seeds}\n  tune: {{validation_seeds: [10]}}\n"
    )


def _run_in_process(tmp_path, path):
    """``bench run`` of the suite in this process, into ./out; the run it wrote."""
    assert main(["run", str(path), "--output", "out", "--in-process", "--quiet"]) == 0
    return load_run(next((tmp_path / "out" / "tuned").iterdir()))


def _cut_after_the_first_test_cell(suite, registry, run_dir):
    """Run in this process until the first test cell is recorded, then stop as Ctrl-C
    would: validation complete, one test cell done."""
    from bench.executors import InProcessExecutor
    from bench.runner import run_suite

    def stop(cell, row):
        if cell.role == "test":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_suite(suite, run_dir, executor=InProcessExecutor(registry), on_cell_done=stop)


def _interrupt_at_test(cell):
    if cell.role == "test":
        raise KeyboardInterrupt


@pytest.mark.usefixtures("ticking_clock")
def test_a_resume_extends_a_run_whose_suite_grew_and_refuses_one_that_changed(
    tmp_path, monkeypatch, capsys
):
    """A grid extended since the run started: the resume says so, runs the new
    setting's validation cells, supersedes the old choice's test cells (the message
    names both causes) and keeps the earlier suite text. A grid that lost a setting
    that was run: refused before anything runs, naming a recorded cell the suite no
    longer has (its test cells would otherwise still read as chosen)."""
    monkeypatch.chdir(tmp_path)
    grid = "{grid: {solver.step_size: [0.4, 0.3]}, validation_seeds: [10]}"
    entry = f"- task: tune.score\n  matrix: {{solver: [tune.knob]}}\n  seeds: [0]\n  tune: {grid}\n"
    path = _suite(tmp_path, entry)
    run = _run_in_process(tmp_path, path)
    assert run.meta["tuning"][0]["chosen"] == {"solver.step_size": 0.3}
    text = path.read_text()
    path.write_text(text.replace("[0.4, 0.3]", "[0.4, 0.3, 0.2]"))
    capsys.readouterr()
    assert main(["run", str(path), "--resume", str(run.path), "--in-process"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "tuned.yaml changed since this run started" in out
    again = load_run(run.path)
    assert again.meta["tuning"][0]["chosen"] == {"solver.step_size": 0.2}
    assert again.meta["suite_history"][0]["suite_text"] == text
    assert sorted(again.cells.loc[again.cells["role"] == "superseded", "seed"]) == [0]
    assert main(["show", str(run.path)]) == 0
    assert "a grid a resume extended" in " ".join(capsys.readouterr().out.split())
    # a setting taken out that was run: refused, the folder untouched
    path.write_text(text.replace("[0.4, 0.3]", "[0.3]"))
    before = sorted((run.path).iterdir())
    assert main(["run", str(path), "--resume", str(run.path), "--in-process"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    # validation of 0.4 and 0.2, the test cell of 0.2; not 0.3's two cells
    assert "3 of its 5 recorded cells are not cells of" in err
    assert "solver=tune.knob solver.step_size=0.4 (validation) seed=10" in err
    assert "Resume with the suite it was started with" in err
    meta = (run.path / "run.json").read_bytes()
    assert sorted((run.path).iterdir()) == before
    assert len(load_run(run.path).cells) == len(again.cells)
    # measured otherwise (a setting not in the ids): refused, naming it
    path.write_text(
        text.replace("[0.4, 0.3]", "[0.4, 0.3, 0.2]").replace("repeats: 1", "repeats: 2")
    )
    assert main(["run", str(path), "--resume", str(run.path), "--in-process"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert (
        "benchmarks[0] measures otherwise than when the run started (repeats 1 then, 2 now;" in err
    )
    assert (run.path / "run.json").read_bytes() == meta


@pytest.fixture
def ticking_clock(monkeypatch):
    """The runner's clock a second further at each call: a row and the resume that
    replaced its suite text never share a second (which the check cannot order)."""
    import itertools

    import bench.runner

    ticks = itertools.count(1)

    def now() -> str:
        n = next(ticks)
        return f"2026-12-07T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}+00:00"

    monkeypatch.setattr(bench.runner, "now_iso", now)


@pytest.mark.usefixtures("ticking_clock")
def test_each_recorded_cell_is_read_against_the_suite_text_it_ran_under(
    tmp_path, monkeypatch, capsys
):
    """An entry inserted before another on one resume shifts the other's index; a second
    resume reads the rows of the first text by that text (suite_history), not by the
    last one, so it is not refused for the inserted entry's settings; a real change
    still is."""
    monkeypatch.chdir(tmp_path)
    a = "- task: tune.score\n  matrix: {solver: [tune.knob]}\n  seeds: [0]\n  timeout: 30\n"
    b = "- task: tune.score\n  matrix: {solver: [tune.other]}\n  seeds: [0]\n  timeout: 60\n"
    c = "- task: tune.score\n  matrix: {solver: [tune.small]}\n  seeds: [0]\n"
    path = _suite(tmp_path, a)
    run = _run_in_process(tmp_path, path)
    args = ["run", str(path), "--resume", str(run.path), "--in-process", "--quiet"]
    path.write_text(path.read_text().split("benchmarks:\n")[0] + "benchmarks:\n" + b + a)
    assert main(args) == 0  # grew: B before A
    path.write_text(path.read_text() + c)
    assert main(args) == 0  # grew again; A's first row is still A's
    assert len(load_run(run.path).cells) == 3
    assert len(load_run(run.path).meta["suite_history"]) == 2
    path.write_text(path.read_text().replace("timeout: 30", "timeout: 45"))
    capsys.readouterr()
    assert main(args) == 2
    assert "timeout 30.0 then, 45.0 now" in " ".join(capsys.readouterr().err.split())


def test_a_wrong_tune_blocks_check_tries_each_value_once():
    from bench.sweep import _each_value

    assert _each_value({"a": [1, 2], "b": [3, 4, 5]}) == [
        {"a": 1, "b": 3}, {"a": 2, "b": 3}, {"a": 1, "b": 4}, {"a": 1, "b": 5}
    ]  # fmt: skip
    assert _each_value({"a": [1, 2], "b": []}) == []  # an empty axis: nothing to check


def test_a_resume_whose_plugins_now_expand_the_same_suite_otherwise_is_refused(
    tmp_path, monkeypatch, capsys
):
    """The suite file unchanged, but a plugin's declared grid lost the value that was
    chosen: its cells are no cells of the suite now, and the message does not send the
    user back to the suite text (the same) but to a new run."""
    import sys

    monkeypatch.chdir(tmp_path)
    path = _suite(tmp_path, DECLARED)
    run = _run_in_process(tmp_path, path)
    plugin = tmp_path / "tune_plugins.py"
    plugin.write_text(PLUGIN.replace("[0.3, 0.1, 0.2]}", "[0.3, 0.1, 0.25]}"))
    for name in [m for m in sys.modules if m.startswith("bench_local_tune_plugins_")]:
        monkeypatch.delitem(sys.modules, name)  # the edited file is imported again
    capsys.readouterr()
    assert main(["run", str(path), "--resume", str(run.path), "--in-process"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "solver=tune.knob solver.step_size=0.2 (validation) seed=10" in err
    assert "the suite file is the same, so the plugins or bench changed how it expands" in err


def test_a_resume_that_would_select_by_another_rule_is_refused(tmp_path, monkeypatch):
    """A configuration's choice made by one metric or direction, continued by another:
    refused (run.json's records against the suite's rules)."""
    from bench.plugins import plugin_sources
    from bench.resume import ResumeRefused, check
    from bench.testing import default_registry

    monkeypatch.chdir(tmp_path)
    path = _suite(tmp_path, DECLARED)
    run = _run_in_process(tmp_path, path)
    suite = load_suite(path, default_registry(["./tune_plugins.py"], base_dir=tmp_path))
    rows = {row["cell_id"]: row for row in run.cells.to_dict("records")}
    sources = plugin_sources(suite.plugins, suite.base_dir)
    assert check(suite, rows, run.meta, sources) == []  # as it ran
    previous = json.loads(json.dumps(run.meta))
    previous["tuning"][0]["better"] = "higher"
    with pytest.raises(ResumeRefused, match=r"selects by error \(lower\), the run started "
                       r"selecting by error \(higher\)"):  # fmt: skip
        check(suite, rows, previous, sources)


def test_a_grid_over_max_settings_is_refused_before_its_settings_are_made(
    tmp_path, monkeypatch, capsys
):
    """A mapping grid of 1000 x 1000 x 1000 values (a billion settings) is refused by its
    size, not expanded first; with a wrong tune block beside it too (its entry is then
    checked for its other mistakes, and the size told once the block is right)."""
    monkeypatch.chdir(tmp_path)
    values = "[" + ", ".join(str(v / 1000) for v in range(1000)) + "]"
    grid = f"{{offset: {values}, fail_at: {values}, solver.step_size: {values}}}"
    tune = f"{{grid: {grid}, validation_seeds: [10]}}"
    entry = f"- task: tune.score\n  matrix: {{solver: [tune.knob]}}\n  seeds: [0]\n  tune: {tune}\n"
    path = _suite(tmp_path, entry)
    assert main(["run", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert (
        "benchmarks[0].tune: solver=tune.knob tries 1000000000 settings, more than max_settings 8"
        in err
    )
    path.write_text(path.read_text().replace("validation_seeds: [10]", "validation_seeds: [0]"))
    assert main(["run", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "[0] are also test seeds" in err and "tries" not in err


def test_a_plugin_file_edited_before_a_resume_is_told_and_recorded(tmp_path, monkeypatch, capsys):
    """run.json records each plugin file's SHA-256; a resume after the file changed says
    that the cells recorded so far ran the earlier code, run.json keeps the change and
    the report's header shows it."""
    import hashlib

    monkeypatch.chdir(tmp_path)
    path = _suite(tmp_path, DECLARED)
    run = _run_in_process(tmp_path, path)
    plugin = tmp_path / "tune_plugins.py"
    first = hashlib.sha256(plugin.read_bytes()).hexdigest()
    assert run.meta["plugin_files"] == [
        {"spec": "./tune_plugins.py", "path": str(plugin.resolve()), "sha256": first}
    ]
    plugin.write_text(PLUGIN + "# edited\n")
    capsys.readouterr()
    assert main(["run", str(path), "--resume", str(run.path), "--in-process"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert (
        f"note: plugin ./tune_plugins.py changed since this run started (sha256 {first[:12]}" in out
    )
    (change,) = load_run(run.path).meta["plugin_changes"]
    assert change["sha256_before"] == first and change["spec"] == "./tune_plugins.py"
    assert change["sha256"] == hashlib.sha256(plugin.read_bytes()).hexdigest()
    assert main(["report", str(run.path), "-o", str(tmp_path / "page.html")]) == 0
    assert f"cells recorded before ran {first[:12]}" in (tmp_path / "page.html").read_text()


def test_a_plugin_package_is_hashed_over_its_modules(tmp_path, monkeypatch):
    from bench.plugins import plugin_sources

    package = tmp_path / "lab_pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "solvers.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    (before,) = plugin_sources(["lab_pkg"])
    assert before["path"] == str(package) and len(before["sha256"]) == 64
    (package / "sub" / "solvers.py").write_text("X = 2\n")  # a module below the package
    assert plugin_sources(["lab_pkg"])[0]["sha256"] != before["sha256"]
    (missing,) = plugin_sources(["no_such_lab_pkg"])
    assert "error" in missing and "sha256" not in missing


def test_a_module_plugin_is_hashed_over_its_top_level_package(tmp_path, monkeypatch):
    """``my_lab.bench_plugins`` imports its lab's other modules: an edit to one of them
    is an edit to the plugin (hashing the module's own file missed it)."""
    from bench.plugins import plugin_sources

    package = tmp_path / "lab_mod_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "bench_plugins.py").write_text("from lab_mod_pkg.helpers import X\n")
    (package / "helpers.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    (before,) = plugin_sources(["lab_mod_pkg.bench_plugins"])
    assert before["path"] == str(package)
    (package / "helpers.py").write_text("X = 2\n")  # a sibling the plugin imports
    assert plugin_sources(["lab_mod_pkg.bench_plugins"])[0]["sha256"] != before["sha256"]
    (top,) = plugin_sources(["json"])  # a top-level package is hashed over its modules
    assert top["path"].endswith("json")


def test_a_setting_that_fails_on_validation_is_never_chosen(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _suite(tmp_path, _failing("tune.knob", 0.2, [0]))
    run = _run_in_process(tmp_path, path)
    (record,) = run.meta["tuning"]
    assert record["scores"][2] is None  # 0.2, the best, failed: out
    # 0.3 and 0.1 are equally far from 0.2 (0.3 a rounding closer, and first in order)
    assert record["chosen"] == {"solver.step_size": 0.3}
    assert list(run.cells.query("role == 'test'")["param.solver.step_size"]) == [0.3]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "- task: tune.score\n  matrix: {solver: [tune.knob]}\n  seeds: [0, 1]\n"
            "  tune: {validation_seeds: [1, 2]}\n",
            "validation_seeds: [1] are also test seeds",
        ),
        (
            "- task: tune.score\n  matrix: {solver: [tune.knob, tune.small]}\n"
            "  tune: {validation_seeds: [9]}\n",
            "try different numbers of settings (solver=tune.knob: 3, solver=tune.small: 1)",
        ),
        (
            "- task: tune.score\n  matrix: {solver: [tune.knob]}\n"
            "  tune: {validation_seeds: [9], max_settings: 2}\n",
            "tries 3 settings, more than max_settings 2",
        ),
        (
            "- task: tune.score\n  matrix: {solver: [tune.knob]}\n"
            "  tune: {validation_seeds: [9], select: gain}\n",
            "say which way 'gain' is better",
        ),
        (
            "- task: tune.score\n  matrix: {solver: [tune.knob]}\n  tune: {grid: declared}\n",
            "validation_seeds: missing",
        ),
        (
            "- task: tune.score\n  matrix: {solver: [tune.knob]}\n"
            "  tune: {validation_seeds: [9], grid: {solver.step_size: [-1.0]}}\n",
            "tune.grid.solver.step_size",
        ),
    ],
)
def test_a_tune_block_that_is_not_a_fair_rule_is_refused(tmp_path, monkeypatch, entry, message):
    from bench.testing import default_registry

    monkeypatch.chdir(tmp_path)
    path = _suite(tmp_path, entry)
    with pytest.raises(SuiteError) as info:
        load_suite(path, default_registry(["./tune_plugins.py"], base_dir=tmp_path))
    assert message in str(info.value)


def test_an_explicit_grid_and_the_ids_of_untuned_entries_stay(tmp_path, monkeypatch):
    from bench.testing import default_registry

    monkeypatch.chdir(tmp_path)
    path = _suite(
        tmp_path,
        """
        - task: tune.score
          matrix: {solver: [tune.knob]}
          seeds: [0]
          tune: {validation_seeds: [5], grid: {offset: [0.0, 1.0]}}
        - task: tune.score
          matrix: {solver: [tune.other]}
        """,
    )
    registry = default_registry(["./tune_plugins.py"], base_dir=tmp_path)
    suite = load_suite(path, registry)
    (tuning,) = suite.tunings
    assert tuning.settings == [{"offset": 0.0}, {"offset": 1.0}]
    untuned = [c for c in suite.cells if c.role == ""]
    plain = _suite(tmp_path, "- task: tune.score\n  matrix: {solver: [tune.other]}\n")
    assert [c.id for c in untuned] == [c.id for c in load_suite(plain, registry).cells]


def test_a_tuned_run_with_workers_runs_its_test_cells(tmp_path, monkeypatch):
    """The runner calls the executor's run_all twice (validation, then the chosen test
    cells); with --workers the second call used to find the first call's stop event
    set, hand out nothing and wait forever (registration-icbm-2d hung after 144
    validation cells)."""
    monkeypatch.chdir(tmp_path)
    path = _suite(tmp_path, DECLARED)
    code = main(["run", str(path), "--output", "out", "--workers", "2", "--quiet"])
    assert code == 0
    run = load_run(next((tmp_path / "out" / "tuned").iterdir()))
    assert (run.cells["role"] == "validation").sum() == 12
    assert (run.cells["role"] == "test").sum() == 2 * 2  # configurations x test seeds
    assert run.meta["cells"]["finished"] == 16


# --- what a tuned run shows: its test cells, and what each configuration chose ---------


@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory):
    """DECLARED run once: 2 configurations x 3 settings x validation seeds 10, 11
    (12 cells), then each chosen setting on test seeds 0, 1 (4 cells)."""
    tmp = tmp_path_factory.mktemp("tuned")
    path = _suite(tmp, DECLARED)
    args = ["run", str(path), "--output", str(tmp / "out"), "--in-process", "--quiet"]
    assert main(args) == 0
    return load_run(next((tmp / "out" / "tuned").iterdir()))


def _rows(out: str, word: str) -> list[list[str]]:
    """The table rows of ``out`` that mention ``word``, split into their cells."""
    return [
        [c.strip() for c in line.split("│")[1:-1]]
        for line in out.splitlines()
        if word in line and "│" in line
    ]


def test_show_reports_the_test_cells_and_the_choices(tuned_run, capsys, monkeypatch):
    """bench show leaves the validation cells out of its tables (a chosen setting's mean
    would otherwise take in the seeds it was chosen on) and says what each
    configuration chose, with its validation score and the next best."""
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["show", str(tuned_run.path), "--group-by", "solver"]) == 0
    out = capsys.readouterr().out
    assert "tuning: the setting each configuration chose (validation means)" in out
    assert (
        "tuned: 2 of 2 configurations chose a setting on validation seeds 10, 11 (12 "
        "validation cells, not in the tables: only the chosen settings on the test seeds 0, 1"
    ) in " ".join(out.split())
    (knob,) = [r for r in _rows(out, "solver=tune.knob") if "solver.step_size=0.2" in r]
    # validation means: 0.2 -> 0.105; 0.3 and 0.1 -> 0.205 each
    assert knob[-3:] == ["0.105", "0.205", "3 of 3 (2 distinct)"]  # 0.1 and 0.3 tie
    (other,) = [r for r in _rows(out, "solver=tune.other") if "solver.step_size=0.4" in r]
    assert other[-3:] == ["0.305", "0.355", "3 of 3"]  # 0.4 chosen, then 0.45
    # the grouped table pools each configuration's two test cells, not its validation ones
    grouped = [r for r in _rows(out, "tune.") if "solver=" not in " ".join(r)]
    assert sorted(r[:3] for r in grouped) == [
        ["tune.knob", "0.2", "2"], ["tune.other", "0.4", "2"]
    ]  # fmt: skip
    # the median error over test seeds 0, 1 (|h - 0.2| + 0.01 seed), not over 10, 11 too
    assert sorted(r[-1] for r in grouped) == ["0.005", "0.205"]


def test_show_validation_tells_the_roles_apart(tuned_run, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["show", str(tuned_run.path), "--group-by", "solver", "--validation"]) == 0
    out = capsys.readouterr().out
    assert "not in the tables" not in out
    rows = [r[1:4] for r in _rows(out, "tune.knob") if r[1] in ("test", "validation")]
    # role is a configuration column: the chosen 0.2's 2 validation and 2 test cells
    # are two rows, and every setting's validation cells are there
    assert sorted(tuple(r) for r in rows) == [
        ("test", "0.2", "2"),
        ("validation", "0.1", "2"), ("validation", "0.2", "2"), ("validation", "0.3", "2"),
    ]  # fmt: skip
    # --filter role=validation asks for them as --validation does
    assert main(["show", str(tuned_run.path), "--filter", "role=validation"]) == 0
    out = capsys.readouterr().out
    assert "not in the tables" not in out
    assert sorted(r[2] for r in _rows(out, "tune.") if r[1] == "0.3") == ["10", "11"]


def test_the_report_judges_on_the_test_cells_and_shows_the_choices(tuned_run, tmp_path):
    from tests.bench.test_report import _embedded, _headline_rows

    output = tmp_path / "page.html"
    assert main(["report", str(tuned_run.path), "-o", str(output)]) == 0
    page = output.read_text()
    assert "<section class=tuning><h2>tuning</h2>" in page
    assert "validation cells (12), not in the tables below" in page
    tables = _embedded(page, "TABLES")
    choice = next(t for t in tables if "settings ok" in t["columns"])
    # exact in decimal, not in binary: the means of two float sums
    assert [r[1:] for r in choice["rows"]] == [
        ["error (lower)", "solver.step_size=0.2", pytest.approx(0.105), pytest.approx(0.205),
         "3 of 3 (2 distinct)"],
        ["error (lower)", "solver.step_size=0.4", pytest.approx(0.305), pytest.approx(0.355),
         "3 of 3"],
    ]  # fmt: skip
    # the task's headline table has the two chosen configurations, two test cells each
    rows = _headline_rows(page, "tune.score")
    assert len(rows) == 2 and all("2/2" in r for r in rows)
    assert not any("0.3" in r or "0.45" in r for r in rows)  # settings only tried


def test_stats_and_plot_leave_the_validation_cells_out(tuned_run, tmp_path, capsys):
    from bench.stats import paired_cells

    pairing = paired_cells(tuned_run.cells, "error", "solver=tune.knob")
    assert sorted(int(p.reference["seed"]) for p in pairing.pairs) == [0, 1]
    assert main(["plot", str(tuned_run.path), "-o", str(tmp_path / "p.png")]) == 0
    assert "12 validation cells, not in the figure" in " ".join(capsys.readouterr().out.split())


def test_a_configuration_without_a_grid_reads_as_run_on_its_defaults(tmp_path, monkeypatch, capsys):
    """A plugin that declares no grid has one setting, its defaults ({} in run.json): it
    is that configuration's choice, not 'none', and has no next best."""
    monkeypatch.chdir(tmp_path)
    entry = DECLARED.replace("tune.other]", "tune.plain]")
    path = _suite(tmp_path, entry.replace("11]}", "11], equal_size: false}"))
    run = _run_in_process(tmp_path, path)
    record = {t["configuration"]["solver"]: t for t in run.meta["tuning"]}
    assert record["tune.plain"]["chosen"] == {} and record["tune.plain"]["why_none"] is None
    monkeypatch.setenv("COLUMNS", "200")
    capsys.readouterr()
    assert main(["show", str(run.path), "--group-by", "solver"]) == 0
    out = capsys.readouterr().out
    (plain,) = _rows(out, "solver=tune.plain")
    # chosen, validation score |0.25 - 0.2| + 0.01 * 10.5, no next best, 1 of 1
    assert plain[2:] == ["error (lower)", "its defaults (no grid declared)", "0.155", "", "1 of 1"]
    assert "tuned: 2 of 2 configurations chose" in " ".join(out.split())


def test_damaged_tuning_records_are_left_out_not_raised_on():
    from bench.tuned import choices

    good = {"task": "t", "configuration": {"m": "a"}, "settings": [{"x": 1}, {"x": 2}],
            "scores": [0.5, "nan?"], "chosen": {"x": 1}, "better": "lower"}  # fmt: skip
    meta = {"tuning": [good, "text", {"settings": "no"}, {"settings": [1]}, None]}
    (found,) = choices(meta)
    assert found.settings == [("x=1", 0.5), ("x=2", None)] and found.chosen == 0
    assert found.runner_up is None and found.qualified == 1
    assert choices({"tuning": {"not": "a list"}}) == [] and choices([]) == []


def test_a_run_cut_during_validation_shows_no_result_and_why(tmp_path, monkeypatch, capsys):
    """Validation incomplete: no choice yet, so nothing is reported; show and report
    say so (no task vanishes from the page), plot refuses with the reason."""
    from bench.executors import InProcessExecutor
    from bench.runner import run_suite
    from bench.testing import default_registry

    monkeypatch.chdir(tmp_path)
    path = _suite(tmp_path, DECLARED)
    registry = default_registry(["./tune_plugins.py"], base_dir=tmp_path)

    def stop(cell, row):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_suite(load_suite(path, registry), tmp_path / "r", executor=InProcessExecutor(registry),
                  on_cell_done=stop)  # fmt: skip
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["show", str(tmp_path / "r")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "none: validation cells not all recorded yet" in out
    assert "tuned: 0 of 2 configurations chose a setting" in out and "(1 validation cells" in out
    assert main(["report", str(tmp_path / "r"), "-o", str(tmp_path / "page.html")]) == 0
    page = (tmp_path / "page.html").read_text()
    assert "<h2>tune.score</h2><p class=warn>no reported cells" in page
    assert main(["plot", str(tmp_path / "r")]) == 2
    assert "no reported cells yet" in capsys.readouterr().err


def test_compare_aligns_the_reported_cells_only(tuned_run):
    """Two runs of one tuned suite compare their chosen settings' test cells, not the
    validation cells pooled in under the same configuration."""
    from bench.compare import compare_runs

    cmp = compare_runs(tuned_run, tuned_run)
    rows = [r for r in cmp.metrics if r.metric == "metric.error"]
    # one row per tuned configuration (the settings only tried are not compared)
    assert sorted(r.label for r in rows) == ["solver=tune.knob", "solver=tune.other"]
    assert {r.key["param.solver.step_size"] for r in rows} == {"tuned"}
    # the means over test seeds 0, 1: knob 0.005, other 0.205 (not the validation's)
    assert sorted(round(r.a, 6) for r in rows) == [0.005, 0.205]


def test_a_choice_is_named_by_what_tells_it_apart():
    """A configuration reads as the keys that differ between its task's tuned
    configurations, less a component's own parameter (each method keeps one value);
    two entries that look alike are told apart by their index."""
    from bench.tuned import choices

    def record(entry, **given):
        return {"entry": entry, "task": "t", "configuration": given, "settings": [{"x": 1}]}

    meta = {"tuning": [record(0, method="svf", **{"method.levels": 3}, truth="a"),
                       record(0, method="syn", truth="a"),
                       record(1, method="svf", **{"method.levels": 3}, truth="a")]}  # fmt: skip
    assert [c.configuration for c in choices(meta)] == [
        "entry=0 method=svf", "entry=0 method=syn", "entry=1 method=svf"
    ]  # fmt: skip
    assert [c.configuration for c in choices({"tuning": meta["tuning"][:2]})] == [
        "method=svf", "method=syn"
    ]  # fmt: skip
    assert choices(meta, tasks={"other"}) == []


def test_settings_that_score_alike_are_counted_as_one():
    """A grid axis that changes nothing (svf's step cap under its stopping rule) leaves
    fewer settings to choose from than the grid's size: the choices say how many."""
    from bench.tuned import choices, rows

    record = {"task": "t", "configuration": {}, "better": "higher", "chosen": {"x": 1},
              "settings": [{"x": 1}, {"x": 2}, {"x": 3}], "scores": [0.9, 0.9, 0.8]}  # fmt: skip
    (found,) = choices({"tuning": [record]})
    assert (found.qualified, found.distinct, found.runner_up) == (3, 2, 0.9)
    assert rows([found])[1][0][-1] == "3 of 3 (2 distinct)"
    # significant digits, not decimals: tiny errors stay apart
    record.update(scores=[3e-13, 1e-13, 4e-13], better="lower", chosen={"x": 2})
    (tiny,) = choices({"tuning": [record]})
    assert tiny.distinct == 3 and rows([tiny])[1][0][-1] == "3 of 3"


@pytest.mark.parametrize("better", ["lower", "higher"])
def test_scores_apart_only_in_their_last_bits_are_a_tie_for_the_first_setting(better):
    """0.1 + 0.2 and 0.3 differ in the last bit (summation order; a GPU's atomics move
    such bits from run to run): one score, so the first setting in grid order is chosen
    whichever way the noise fell, and the choices count one distinct score. Scores apart
    by more than that (3e-13 and 1e-13; 0.3 and 0.3 + 1e-9) are not tied."""
    from types import SimpleNamespace

    from bench.tuned import choices
    from bench.tuning import TuneRule, Tuning

    def chosen(means: list[float]) -> int | None:
        rule = TuneRule(grid=None, select="error", better=better, validation_seeds=[10])
        cells = [[SimpleNamespace(id=f"v{i}")] for i in range(len(means))]
        tuning = Tuning(0, "t", {}, rule, [{"x": i} for i in range(len(means))], cells)
        rows = {f"v{i}": {"status": "ok", "metric.error": m} for i, m in enumerate(means)}
        return tuning.choose(rows)[0]

    noisy = 0.1 + 0.2  # 0.30000000000000004
    assert noisy != 0.3
    assert chosen([noisy, 0.3]) == 0 and chosen([0.3, noisy]) == 0  # before: by the last bit
    assert chosen([0.5, noisy, 0.3]) == (1 if better == "lower" else 0)
    assert chosen([0.3 + 1e-9, 0.3]) == (1 if better == "lower" else 0)
    assert chosen([3e-13, 1e-13]) == (1 if better == "lower" else 0)
    # an error's round-off from an O(1) solution: 5.2e-7 against 1.3e-15 more (2.6e-9
    # relative) is one score (a user audit: starred on it)
    assert chosen([5.208204e-7 + 1.33e-15, 5.208204e-7]) == 0
    from bench.tuning import tied

    inf = float("inf")
    assert tied(inf, inf) and not tied(1.0, inf) and not tied(-inf, inf)
    record = {"task": "t", "configuration": {}, "better": better, "chosen": {"x": 0},
              "settings": [{"x": 0}, {"x": 1}, {"x": 2}], "scores": [noisy, 0.3, 0.5]}  # fmt: skip
    assert choices({"tuning": [record]})[0].distinct == 2


def test_compare_aligns_a_tuned_configuration_whose_choice_moved(tmp_path, monkeypatch):
    """Run A chose 0.3 (0.2 failed on validation), run B 0.2: the knob compares as one
    tuned configuration, its metric's change is B's better choice, and the row says
    what each chose (not 'only in A' and 'only in B')."""
    from bench.compare import Gate, check_gates, compare_runs

    monkeypatch.chdir(tmp_path)
    path = _suite(tmp_path, _failing("tune.knob", 0.2, [0, 1]))
    args = ["run", str(path), "--in-process", "--quiet", "--output"]
    assert main([*args, "a"]) == 0
    (tmp_path / "fixed").touch()
    assert main([*args, "b"]) == 0
    run_a = load_run(next((tmp_path / "a" / "tuned").iterdir()))
    run_b = load_run(next((tmp_path / "b" / "tuned").iterdir()))
    cmp = compare_runs(run_a, run_b)
    assert (cmp.only_a, cmp.only_b) == (0, 0)
    (row,) = [r for r in cmp.metrics if r.metric == "metric.error"]
    # test seeds 0, 1: |0.3 - 0.2| + 0.005 in A, |0.2 - 0.2| + 0.005 in B
    assert (row.a, row.b) == (pytest.approx(0.105), pytest.approx(0.005))
    assert row.label.endswith("(chose solver.step_size=0.3 in A, solver.step_size=0.2 in B)"), (
        row.label
    )
    assert not check_gates(cmp, [Gate.parse("metric.error:+5%")])  # it improved
    assert main(["report", str(run_a.path), str(run_b.path), "-o", "page.html"]) == 0
    page = (tmp_path / "page.html").read_text()
    assert "(chose solver.step_size=0.3 in A, solver.step_size=0.2 in B)" in page


def test_a_tuned_run_killed_outright_still_says_what_it_chose(tmp_path, monkeypatch):
    """run.json gets the tuning records before the test cells run, not only at the
    run's close: run A is killed by SIGKILL in its second test cell (no close runs), yet
    compares with run B as one tuned configuration whose choice moved."""
    from bench.compare import compare_runs

    monkeypatch.chdir(tmp_path)
    path = _suite(tmp_path, _failing("tune.knob", 0.2, [0, 1]))
    args = ["run", str(path), "--in-process", "--quiet", "--output"]
    _killed_at_seed_1(tmp_path, [*args, "a"])
    run_a = load_run(next((tmp_path / "a" / "tuned").iterdir()))
    assert run_a.meta["status"] == "running"
    assert run_a.meta["tuning"][0]["chosen"] == {"solver.step_size": 0.3}
    assert sorted(run_a.cells.loc[run_a.cells["role"] == "test", "seed"]) == [0]
    (tmp_path / "fixed").touch()
    assert main([*args, "b"]) == 0
    run_b = load_run(next((tmp_path / "b" / "tuned").iterdir()))
    cmp = compare_runs(run_a, run_b)
    assert (cmp.only_a, cmp.only_b) == (0, 0)  # before: 1 and 1, the choices apart
    (row,) = [r for r in cmp.metrics if r.metric == "metric.error"]
    assert row.label.endswith("(chose solver.step_size=0.3 in A, solver.step_size=0.2 in B)")


def test_a_killed_retry_that_moved_the_choice_reports_only_the_new_one(tmp_path, monkeypatch):
    """The roles are settled before each stage too, not only at the close: a
    --retry-failed resume that moves the choice and is then killed outright leaves the
    old choice's test cells superseded beside the new choice's first test cell."""
    monkeypatch.chdir(tmp_path)
    path = _suite(tmp_path, _failing("tune.knob", 0.2, [0, 1]))
    first = _run_in_process(tmp_path, path)  # 0.2 fails on validation: 0.3 is chosen
    (tmp_path / "fixed").touch()
    _killed_at_seed_1(tmp_path, ["run", str(path), "--resume", str(first.path),
                                 "--retry-failed", "--in-process", "--quiet"])  # fmt: skip
    again = load_run(first.path)
    assert again.meta["tuning"][0]["chosen"] == {"solver.step_size": 0.2}
    test = again.cells[again.cells["role"] == "test"]
    assert list(zip(test["param.solver.step_size"], test["seed"])) == [(0.2, 0)]
    superseded = again.cells[again.cells["role"] == "superseded"]
    assert sorted(superseded["param.solver.step_size"]) == [0.3, 0.3]  # before: "test"


def _killed_at_seed_1(cwd, args: list[str]) -> None:
    """``bench args`` in a child process whose cell of seed 1 kills it by SIGKILL."""
    import os
    import signal
    import subprocess
    import sys

    env = {**os.environ, "TUNE_KILL_AT_SEED": "1"}
    code = "import sys; from bench.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=cwd,
                          capture_output=True, timeout=120)  # fmt: skip
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]


def test_compare_marks_each_tuned_configuration_by_its_own_grid(tmp_path, monkeypatch):
    """Two tuned entries of one task, one tuning step_size and the other offset: each
    configuration's own grid reads as tuned, so neither pools with the other and a
    value the other entry fixed is no choice."""
    from bench.compare import compare_runs

    monkeypatch.chdir(tmp_path)
    entries = (
        DECLARED.replace("solver: [tune.knob, tune.other]", "solver: [tune.knob]")
        + "- task: tune.score\n  matrix: {solver: [tune.knob]}\n  params: {solver.step_size: 0.3}\n"
        "  seeds: [0, 1]\n  tune: {grid: {offset: [0.0, 1.0]}, validation_seeds: [10, 11]}\n"
    )
    path = _suite(tmp_path, entries)
    run = _run_in_process(tmp_path, path)
    cmp = compare_runs(run, run)
    rows = sorted((str(r.key["param.solver.step_size"]), str(r.key["param.offset"]),
                   round(r.a, 6)) for r in cmp.metrics if r.metric == "metric.error")  # fmt: skip
    # entry 0 tuned step_size (chose 0.2) with offset fixed at 0; entry 1 tuned offset
    # (chose 0) with step_size fixed at 0.3: two configurations, each its own test cells
    assert rows == [("0.3", "tuned", 0.105), ("tuned", "0.0", 0.005)]
    assert not cmp.moved


def test_a_plugin_hashed_over_other_files_since_is_not_called_edited():
    """A run started when a dotted module was hashed as its own file, resumed now that its
    package is: the hashes differ with nothing edited, and are not compared."""
    from bench.resume import plugins_changed

    before = {"plugin_files": [{"spec": "lab.mod", "path": "/x/lab/mod.py", "sha256": "a"}]}
    now = [{"spec": "lab.mod", "path": "/x/lab", "sha256": "b"}]
    assert plugins_changed(before, now) == []
    now[0]["path"] = "/x/lab/mod.py"  # the same basis: an edit
    assert plugins_changed(before, now) == [("lab.mod", "a", "b")]


def test_a_resume_notes_cells_that_ran_another_default(tmp_path):
    """A plugin's default that changed between a run and its resume is in no cell id: the
    recorded cells ran the old value. The resume says so (values compared as the results
    tables give them back: lists as JSON text, integer columns with blanks as floats,
    NaN for None, so a run read back unchanged says nothing)."""
    import pandas as pd

    from bench.results import _parquet_safe
    from bench.resume import check
    from bench.suite import load_suite
    from bench.testing import default_registry

    path = tmp_path / "s.yaml"
    path.write_text(
        "suite: s\nbenchmarks:\n"
        "  - task: ode.harmonic\n    matrix: {solver: [rk4, torchdiffeq.dopri5]}\n"
        "  - task: kernels.warp\n    params: {size: [16, 16], backend: warp.eager}\n"
    )
    suite = load_suite(path, default_registry())
    rows = [{"cell_id": c.id, **c.param_columns()} for c in suite.cells]
    _parquet_safe(pd.DataFrame(rows)).to_parquet(tmp_path / "cells.parquet")
    back = {r["cell_id"]: r for r in pd.read_parquet(tmp_path / "cells.parquet").to_dict("records")}
    assert check(suite, back, {}, []) == []  # read back unchanged: nothing to say
    rk4 = next(c.id for c in suite.cells if c.components.get("solver") == "rk4")
    back[rk4]["param.solver.step_size"] = 0.5  # as if rk4's default had been 0.5
    (note,) = check(suite, back, {}, [])
    assert note.startswith("1 recorded cells ran other values than their cells resolve to now "
                           "(solver.step_size 0.5 then, ")  # fmt: skip


def test_a_select_no_cell_records_is_told_apart_from_failures(tmp_path):
    """`select: {metric: Dice, better: higher}`: every validation cell ended ok, none
    records 'Dice', and the choice said "no setting ended ok with a finite value"; it
    says which metric is missing and what they record. A misspelt plain select gets a
    did-you-mean."""
    from types import SimpleNamespace

    from bench import Headline
    from bench.tuning import TuneRule, Tuning, read_rule

    rule = TuneRule(grid={"lr": [0.1, 0.2]}, select="Dice", better="higher",
                    validation_seeds=[100])  # fmt: skip
    cells = [[SimpleNamespace(id="a")], [SimpleNamespace(id="b")]]
    tuning = Tuning(0, "t", {}, rule, [{"lr": 0.1}, {"lr": 0.2}], validation=cells)
    # rows read back from a table hold NaN where a cell records no such metric
    nan = float("nan")
    rows = {i: {"status": "ok", "metric.dice": 0.8, "metric.hd95": 2.0, "metric.Dice": nan,
                "metric.psnr": nan} for i in "ab"}  # fmt: skip
    why = tuning.record(rows)["why_none"]
    assert why == (
        "the validation cells ended ok but record no 'Dice'; did you mean 'dice'? "
        "(they record dice, hd95)"
    )
    rows["a"]["status"] = rows["b"]["status"] = "error"
    assert tuning.record(rows)["why_none"].startswith("no setting ended ok")
    errors: list[str] = []
    headline = Headline(quality={"dice": "higher"})
    read_rule({"grid": {"lr": [0.1]}, "select": "Dice", "validation_seeds": [100]},
              "benchmarks[0].tune", headline, [0], errors)  # fmt: skip
    assert any("say which way 'Dice' is better" in e and "did you mean 'dice'?" in e
               for e in errors)  # fmt: skip


def test_a_select_metric_no_cell_records_is_said_before_and_exits_strict(tmp_path, capsys):
    """select: {metric: accuracy, better: higher} (classify.toy records test_accuracy)
    ran every validation cell, chose nothing, ran no test cell and exited 0, its one
    configuration labelled 'default' (a user audit). A name close to a ranked one gets a
    note before anything runs (not a refusal: train_accuracy is close to test_accuracy
    and recorded); one never recorded ends a --strict run with 3, and the configuration
    is named by what the suite gave it."""
    typo = """
    - task: tune.score
      matrix: {solver: [tune.knob]}
      seeds: [0]
      tune: {validation_seeds: [10], select: {metric: erorr, better: lower}}
    """
    path = _suite(tmp_path, typo)
    out = str(tmp_path / "out")
    assert main(["run", str(path), "--output", out, "--in-process", "--strict"]) == 3
    assert (
        "note: benchmarks[0].tune.select: 'erorr' is not a metric the task's headline ranks "
        "(error); did you mean 'error'? It is taken as named"
    ) in capsys.readouterr().err
    (choice,) = tuned.choices(load_run(next((tmp_path / "out" / "tuned").iterdir())).meta)
    assert choice.chosen is None and choice.configuration == "solver=tune.knob"
    # a name close to no ranked one: no note
    path = _suite(tmp_path, typo.replace("erorr", "wall_seconds"))
    assert main(["run", str(path), "--dry-run"]) == 0
    assert "note:" not in capsys.readouterr().err


def test_a_declared_grid_no_plugin_declares_is_refused(tmp_path, monkeypatch, capsys):
    """grid: declared where no configuration's plugins declare one ran every one at its
    defaults and read "tuned: 2 of 2 configurations chose a setting" (a user audit)."""
    monkeypatch.chdir(tmp_path)
    entry = (
        "- task: tune.score\n  matrix: {solver: [tune.plain, rk4]}\n  seeds: [0]\n"
        "  tune: {validation_seeds: [10]}\n"
    )
    path = _suite(tmp_path, entry)
    assert main(["run", str(path), "--dry-run"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert (
        "benchmarks[0].tune: grid declared, but no plugin of solver=tune.plain, solver=rk4 "
        "declares a tuning grid: each would run at its defaults and read as tuned" in err
    )


def test_a_choice_at_an_end_of_its_grid_is_named():
    """Two built-ins chose the lowest weight and the most iterations their grid tried;
    one step beyond, both beat the starred method, and nothing said the choices sat on
    the grid's boundary (a user audit)."""
    from bench.tuned import choices, grid_edges

    settings = [{"method.weight": w, "method.iterations": n, "method.mode": m}
                for w in (0.5, 2.0) for n in (100, 200) for m in ("a", "b")]  # fmt: skip
    scores = [0.1 * i for i in range(len(settings))]
    meta = {"tuning": [
        {"task": "t", "entry": 0, "configuration": {"method": "svf"}, "settings": settings,
         "scores": scores, "chosen": {"method.weight": 0.5, "method.iterations": 200,
                                      "method.mode": "a"}, "better": "higher"},
        {"task": "t", "entry": 0, "configuration": {"method": "mine"},
         "settings": [{"method.sigma": s, "method.iterations": [40, 20]} for s in (1.0, 2.0, 3.0)],
         "scores": [1, 2, 1], "chosen": {"method.sigma": 2.0, "method.iterations": [40, 20]},
         "better": "higher"},
    ]}  # fmt: skip
    found = choices(meta)
    assert found[0].edges == [
        "method.weight=0.5 (lowest of 2 tried)",
        "method.iterations=200 (highest of 2 tried)",
    ]  # a word axis has no end
    assert found[1].edges == []  # bracketed: 1 < 2 < 3
    assert grid_edges(found) == (
        "1 of 2 configurations chose an end of a numeric grid axis, so a better setting may "
        "lie beyond it (only an axis of 3 values or more can bracket a best): method=svf: "
        "method.weight=0.5 (lowest of 2 tried), method.iterations=200 (highest of 2 tried)"
    )
    assert grid_edges(found[1:]) == ""
    # a flat end: iterations changed nothing, and the tie went to the first, the lowest
    flat = {
        "task": "t",
        "entry": 0,
        "configuration": {"method": "svf"},
        "settings": [{"method.iterations": n} for n in (100, 200, 400)],
        "scores": [0.9, 0.9, 0.9],
        "chosen": {"method.iterations": 100},
        "better": "higher",
    }
    assert choices({"tuning": [flat]})[0].edges == []
    flat["scores"] = [0.9, 0.8, 0.7]  # a real end: the next value in scored worse
    assert choices({"tuning": [flat]})[0].edges == ["method.iterations=100 (lowest of 3 tried)"]
