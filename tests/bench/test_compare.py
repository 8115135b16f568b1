"""bench compare: alignment, ratios against a known slowdown, significance, gates."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from bench.cli import main
from bench.compare import (
    AcrossError,
    Gate,
    GateError,
    check_gates,
    compare_runs,
    with_speedups,
)
from bench.executors import InProcessExecutor
from bench.results import load_run
from bench.runner import run_suite
from bench.suite import load_suite

pytestmark = pytest.mark.usefixtures("frozen_heap")


def _fake_run(tmp_path, name, scale, metric, statuses=("ok", "ok"), n=8, seed=0):
    """A run folder with two configurations x two seeds and known samples."""
    rng = np.random.default_rng(seed)
    run_dir = tmp_path / name
    run_dir.mkdir()
    cells, samples = [], []
    for cfg, solver in enumerate(("euler", "rk4")):
        for s in (0, 1):
            cid = f"{name}-{cfg}-{s}"
            cells.append(
                {
                    "cell_id": cid,
                    "suite": "x",
                    "bench": 0,
                    "label": "t",
                    "task": "ode.t",
                    "solver": solver,
                    "param.step_size": 0.1,
                    "seed": s,
                    "device": "cpu",
                    "status": statuses[cfg],
                    "error": "",
                    "wall": 1.0,
                    "finished_at": "",
                    "metric.err": metric * (cfg + 1),
                }
            )
            base = 0.010 * (cfg + 1)
            for rep, x in enumerate(base * scale * (1 + 0.01 * rng.standard_normal(n))):
                samples.append({"cell_id": cid, "timer": "solve", "rep": rep, "seconds": x})
    pd.DataFrame(cells).to_parquet(run_dir / "cells.parquet")
    pd.DataFrame(samples).to_parquet(run_dir / "samples.parquet")
    (run_dir / "run.json").write_text('{"suite": "x"}')
    return run_dir


def test_ratio_and_significance_of_a_known_slowdown(tmp_path):
    a = load_run(_fake_run(tmp_path, "a", 1.0, 0.1))
    b = load_run(_fake_run(tmp_path, "b", 1.5, 0.1, seed=1))
    cmp = compare_runs(a, b)
    assert [t.key["solver"] for t in cmp.times] == ["euler", "rk4"]
    for row in cmp.times:
        assert row.ratio == pytest.approx(1.5, rel=0.02)  # 1 % noise on 16 pooled samples
        assert row.n_a == row.n_b == 16  # seeds pooled
        assert row.p_value < 1e-4
    assert check_gates(cmp, [Gate.parse("time:+10%")])
    assert not check_gates(cmp, [Gate.parse("time:+60%")])


def test_noise_alone_does_not_cross_a_gate(tmp_path):
    a = load_run(_fake_run(tmp_path, "a", 1.0, 0.1, seed=0))
    b = load_run(_fake_run(tmp_path, "b", 1.0, 0.1, seed=1))
    cmp = compare_runs(a, b)
    assert all(abs(r.ratio - 1) < 0.02 for r in cmp.times)
    assert check_gates(cmp, [Gate.parse("time:+1%")]) == []  # 1 % noise is not significant


def test_metric_means_are_over_the_seeds_ok_in_both_runs(tmp_path):
    """B fails the hard seed (1) that A got worst: comparing B's easy-seed mean with A's
    mean over both would read as an improvement. The means are over seed 0 in both, and
    the row says so; runs that share no seed compare unpaired and say that."""
    from bench.compare import compare_runs

    def frame(run_dir, errors, statuses, seeds=(0, 1)):
        cells = pd.read_parquet(run_dir / "cells.parquet")
        cells = cells[cells["solver"] == "euler"].copy()
        cells["metric.err"], cells["status"], cells["seed"] = errors, statuses, list(seeds)
        cells.to_parquet(run_dir / "cells.parquet")
        return load_run(run_dir)

    a = frame(_fake_run(tmp_path, "a", 1.0, 0.1), [0.1, 0.5], ["ok", "ok"])
    b = frame(_fake_run(tmp_path, "b", 1.0, 0.1), [0.1, math.nan], ["ok", "error"])
    cmp = compare_runs(a, b)
    (row,) = cmp.metrics
    assert (row.a, row.b, row.seeds) == (0.1, 0.1, "1 of 2")  # before: 0.3 -> 0.1, "better"
    (time,) = cmp.times  # the timers too: seed 0's 8 samples a side, not A's 16
    assert (time.n_a, time.n_b) == (8, 8)
    other = frame(_fake_run(tmp_path, "c", 1.0, 0.1), [0.2, 0.2], ["ok", "ok"], seeds=(5, 6))
    (row,) = compare_runs(a, other).metrics
    assert (row.a, row.b, row.seeds) == (0.3, 0.2, "unpaired (2 in A, 2 in B)")


def test_compare_says_when_the_runs_ran_different_code(tmp_path, capsys):
    """A plugin file edited between two runs (run.json's plugin_files) or another bench
    commit is part of what a comparison measures: said, not left to guess."""
    import json

    from bench.compare import code_differences

    a, b = _fake_run(tmp_path, "a", 1.0, 0.1), _fake_run(tmp_path, "b", 1.0, 0.1)
    lab_a = {"spec": "./lab.py", "sha256": "d0c34ede9bc3" + "0" * 52}
    lab_b = {"spec": "./lab.py", "sha256": "b0f33e5bf35c" + "0" * 52}
    new = {"spec": "./new.py", "sha256": "a" * 64}
    meta_a = {"suite": "x", "git": {"commit": "1" * 40, "dirty": False}, "plugin_files": [lab_a]}
    meta_b = {**meta_a, "plugin_files": [lab_b, new]}
    (a / "run.json").write_text(json.dumps(meta_a))
    (b / "run.json").write_text(json.dumps(meta_b))
    assert code_differences(meta_a, meta_a) == []
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert (
        "note: the runs ran different code: plugin ./lab.py: d0c34ede9bc3 in A, b0f33e5bf35c in B"
        in out
    )
    assert "plugin ./new.py: none in A, aaaaaaaaaaaa in B" in out
    dirty = {**meta_a, "git": {"commit": "1" * 40, "dirty": True}}
    assert code_differences(meta_a, dirty) == [
        "bench commit 111111111111 in A, 111111111111 (dirty) in B"
    ]
    assert code_differences(dirty, dirty) == [
        "both at bench commit 111111111111 (dirty), each with uncommitted changes"
    ]
    edited = {**meta_a, "plugin_changes": [{"spec": "./lab.py", "at": "2026-12-07T05:20:41"}]}
    assert code_differences(meta_a, edited) == [
        "plugin ./lab.py was edited during run B (resumed at 2026-12-07T05:20:41)"
    ]


def test_a_timer_at_zero_in_both_runs_has_no_ratio():
    """0 / 0 printed 'xinf' (a timer a configuration never used): no ratio, said so, and
    no gate crossed; from 0 to something is still infinite."""
    import math

    from bench.compare import Comparison, TimeRow
    from bench.display import comparison_tables

    both = TimeRow({"task": "t"}, "solve", 0.0, 0.0, 3, 3, math.nan)
    assert math.isnan(both.ratio)
    assert TimeRow({"task": "t"}, "solve", 0.0, 1.0, 3, 3, math.nan).ratio == math.inf
    cmp = Comparison("a", "b", ["task"], times=[both])
    console = Console(width=200, record=True)
    for table in comparison_tables(cmp):
        console.print(table)
    text = console.export_text()
    assert "both 0" in text and "xinf" not in text and "xnan" not in text
    assert not check_gates(cmp, [Gate.parse("time:+10%")])


def test_metric_and_status_gates(tmp_path):
    a = load_run(_fake_run(tmp_path, "a", 1.0, 0.1))
    b = load_run(_fake_run(tmp_path, "b", 1.0, 0.12, statuses=("ok", "diverged")))
    cmp = compare_runs(a, b)
    (row,) = [m for m in cmp.metrics if m.key["solver"] == "euler"]
    assert row.delta == pytest.approx(0.02) and row.relative == pytest.approx(0.2)
    # euler rose 20 %; rk4 diverged in B: its metric is gone, which fails any gate on it
    crossed = check_gates(cmp, [Gate.parse("metric.err:+10%")])
    assert [(v.key["solver"], v.what) for v in crossed] == [
        ("euler", "metric.err"),
        ("rk4", "metric.err"),
    ]
    (gone,) = check_gates(cmp, [Gate.parse("metric.err:+25%")])
    assert gone.key["solver"] == "rk4" and gone.detail == "0.2 -> none (B: diverged)"
    assert len(check_gates(cmp, [Gate.parse("metric.err:+0.01")])) == 2  # absolute
    assert len(check_gates(cmp, [Gate.parse("metric.err:-0.01")])) == 1  # it rose, not fell
    (status,) = check_gates(cmp, [Gate.parse("status")])
    assert status.key["solver"] == "rk4" and status.detail == "ok -> diverged"


def test_a_metric_that_became_nan_or_vanished_fails_its_gate(tmp_path, capsys):
    a = _fake_run(tmp_path, "a", 1.0, 0.1)
    b = _fake_run(tmp_path, "b", 1.0, 0.1, seed=1)
    cells = pd.read_parquet(b / "cells.parquet")
    cells.loc[cells["solver"] == "rk4", ["status", "metric.err"]] = ["diverged", np.nan]
    cells.loc[(cells["solver"] == "euler") & (cells["seed"] == 1), "metric.err"] = np.inf
    cells.to_parquet(b / "cells.parquet")
    assert main(["compare", str(a), str(b), "--fail-on", "metric.err:+50%"]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "0.1 -> inf" in out and "0.2 -> none (B: diverged)" in out


@pytest.mark.parametrize(
    "gate, message",
    [
        ("metric.eror:+5%", "--fail-on metric.eror:+5%: no metric 'eror' in either run "
                            "(their metrics: err)"),
        ("time.slove:+10%", "--fail-on time.slove:+10%: no timer 'slove' in either run "
                            "(their timers: solve)"),
    ],
)  # fmt: skip
def test_a_gate_on_a_name_no_run_has_is_bad_input(tmp_path, capsys, gate, message):
    a = _fake_run(tmp_path, "a", 1.0, 0.1)
    b = _fake_run(tmp_path, "b", 2.0, 0.5, seed=1)
    assert main(["compare", str(a), str(b), "--fail-on", gate]) == 2
    captured = capsys.readouterr()
    assert message in " ".join(captured.err.split()) and "gates held" not in captured.out


# a trailing newline was taken ("$" matches before one; issue 23)
@pytest.mark.parametrize(
    "text", ["time:10%", "time:+x%", "speed:+10%", "time:+0.1", "time:+10%\n", "status\n"]
)
def test_unreadable_gates_are_refused(text):
    with pytest.raises(GateError, match="--fail-on"):
        Gate.parse(text)


def test_cli_exit_codes(tmp_path, capsys):
    a = _fake_run(tmp_path, "a", 1.0, 0.1)
    b = _fake_run(tmp_path, "b", 1.3, 0.1, seed=1)
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "x1.3" in out and "euler" in out
    assert main(["compare", str(a), str(b), "--fail-on", "time:+10%"]) == 1
    assert "gates crossed" in capsys.readouterr().out
    assert main(["compare", str(a), str(b), "--fail-on", "time:+50%"]) == 0
    out = capsys.readouterr().out
    assert "gates held: time:+50%" in out
    # a time gate says what its p-values assume (a user audit: identical code apart
    # crossed time:+10%)
    assert "a time gate compares two runs made apart" in " ".join(out.split())
    assert main(["compare", str(a), str(b), "--fail-on", "bogus"]) == 2


def test_gates_do_not_hold_over_what_b_did_not_measure(tmp_path, capsys):
    """A configuration B no longer ran (a plugin's default changed), and a run B still
    going or interrupted, each left every gate 'held' (a user audit): said, exit 1."""
    import json

    a = _fake_run(tmp_path, "a", 1.0, 0.1)
    b = _fake_run(tmp_path, "b", 1.0, 0.1, seed=1)
    cells = pd.read_parquet(b / "cells.parquet")
    cells.loc[cells["solver"] == "rk4", "param.step_size"] = 0.05
    cells.to_parquet(b / "cells.parquet")
    assert main(["compare", str(a), str(b), "--fail-on", "time:+50%"]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "gates not held: 1 configuration of A not in B" in out and "gates held" not in out
    assert main(["compare", str(a), str(b)]) == 0  # no gate: a comparison, no verdict
    capsys.readouterr()
    assert main(["compare", str(a), str(b), "--fail-on", "time:+50%", "--allow-missing"]) == 0
    assert "gates held" in capsys.readouterr().out  # a subset on purpose: said so
    capsys.readouterr()
    b = _fake_run(tmp_path, "b2", 1.0, 0.1, seed=1)
    (b / "run.json").write_text(json.dumps({"suite": "x", "status": "interrupted"}))
    assert main(["compare", str(a), str(b), "--fail-on", "time:+50%"]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "warning: run B is interrupted, not complete" in out
    assert "gates not held: run B is interrupted" in out


def test_two_real_runs_align(write_suite, registry, tmp_path, capsys):
    path = write_suite(
        "suite: cmp\nplugins: [FIXTURE_PLUGINS]\nrepeats: 3\nbenchmarks:\n"
        "  - task: test.behave\n    matrix: {solver: [test.constant], seconds: [0.001, 0.004]}\n"
    )
    suite = load_suite(path, registry)
    for name in ("r1", "r2"):
        run_suite(suite, tmp_path / name, executor=InProcessExecutor(registry))
    cmp = compare_runs(load_run(tmp_path / "r1"), load_run(tmp_path / "r2"))
    assert cmp.only_a == cmp.only_b == 0
    assert len(cmp.times) == 2
    for row in cmp.times:  # sleep-bound work: the same within scheduler noise
        assert 0.5 < row.ratio < 2.0
    assert main(["compare", str(tmp_path / "r1"), str(tmp_path / "r2")]) == 0


def test_too_few_samples_for_the_test_never_fail_a_gate(tmp_path):
    # 3 repeats x 2 seeds = 6 a side can reach p < 0.05; 1 repeat x 2 seeds = 2 a side
    # cannot (smallest two-sided p = 2 / C(4, 2) = 0.33): such a comparison is
    # untestable, and never fails a gate by itself, however far apart its samples
    from bench.compare import samples_needed, untestable_notes, untestable_under

    a = load_run(_fake_run(tmp_path, "a", 1.0, 0.1, n=1))
    b = load_run(_fake_run(tmp_path, "b", 1.5, 0.1, n=1, seed=1))
    cmp = compare_runs(a, b)
    assert all(not row.testable and np.isnan(row.p_value) for row in cmp.times)
    assert all(row.separated and not row.significant for row in cmp.times)
    gate = Gate.parse("time:+10%")
    assert check_gates(cmp, [gate]) == []
    listed = untestable_under(cmp, [gate])
    assert [(v.label, v.verdict) for v in listed] == [
        ("solver=euler", "untestable (n=2 a side)"),
        ("solver=rk4", "untestable (n=2 a side)"),
    ]
    (note,) = untestable_notes(cmp, [gate])
    assert "2 of 2 timer comparisons untestable (n=2 a side)" in note
    assert samples_needed(0.05) == 4 and samples_needed(0.2) == 3
    a3 = load_run(_fake_run(tmp_path, "a3", 1.0, 0.1, n=3))
    b3 = load_run(_fake_run(tmp_path, "b3", 1.5, 0.1, n=3, seed=1))
    cmp3 = compare_runs(a3, b3)
    assert all(row.testable and row.p_value < 0.01 for row in cmp3.times)
    assert len(check_gates(cmp3, [gate])) == 2 and untestable_under(cmp3, [gate]) == []


TINY = (
    "suite: tiny\nplugins: [FIXTURE_PLUGINS]\nrepeats: 1\nwarmup: 0\nbenchmarks:\n"
    "  - task: test.behave\n"
    "    matrix: {solver: [test.constant], solver.step_size: [0.1, 0.2], value: [1.0, 2.0]}\n"
)


def _two_tiny_runs(write_suite, registry, tmp_path):
    """Two runs of one suite on one commit, in-process, one timed repeat a cell (as a
    quick suite has): test.behave records a headline (value, lower is better)."""
    suite = load_suite(write_suite(TINY), registry)
    for name in ("r1", "r2"):
        run_suite(suite, tmp_path / name, executor=InProcessExecutor(registry))
    return tmp_path / "r1", tmp_path / "r2"


def _scale(run_dir, column, factor, where=None):
    for table in ("cells.parquet", "samples.parquet"):
        frame = pd.read_parquet(run_dir / table)
        if column in frame.columns:
            rows = frame.index if where is None else where(frame)
            frame.loc[rows, column] = frame.loc[rows, column] * factor
            frame.to_parquet(run_dir / table, index=False)


def test_two_runs_of_one_commit_pass_a_time_gate_saying_what_is_untestable(
    write_suite, registry, tmp_path, capsys
):
    r1, r2 = _two_tiny_runs(write_suite, registry, tmp_path)
    # one sample a side: even a doubling cannot be told from noise, and does not fail
    _scale(r2, "seconds", 2.0)
    assert main(["compare", str(r1), str(r2), "--fail-on", "time:+10%"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "untestable (n=1 a side): not failed" in out  # the gate table's rows
    assert "time:+10%: 4 of 4 timer comparisons untestable (n=1 a side)" in out
    assert "4 a side are needed" in out and "gates held: time:+10%" in out


def test_labels_hold_what_differs_between_configurations(write_suite, registry, tmp_path, capsys):
    r1, r2 = _two_tiny_runs(write_suite, registry, tmp_path)
    cmp = compare_runs(load_run(r1), load_run(r2))
    labels = {row.label for row in cmp.times}
    assert labels == {
        f"solver=test.constant value={v} solver.step_size={s}" for s in (0.1, 0.2) for v in (1, 2)
    }  # never the defaults nobody changed (mode, seconds, marker)
    assert all(cmp.label(row.key) == row.label for row in cmp.times + cmp.metrics)
    # the gate table tells apart two crossings that differ in one parameter only
    _scale(r2, "metric.value", 1.5, where=lambda f: f["param.value"] == 1.0)
    assert main(["compare", str(r1), str(r2), "--fail-on", "metric.value:+10%"]) == 1
    out = capsys.readouterr().out
    table = out[out.index("gates crossed") :]
    assert "value=1 solver.step_size=0.1" in table and "value=1 solver.step_size=0.2" in table
    assert "mode=" not in out and "seconds=" not in out


def test_at_100_columns_no_label_is_cut_and_no_number_wraps(
    write_suite, registry, tmp_path, capsys, monkeypatch
):
    """A terminal of 100 columns (issue 19.6): the labels fold onto more lines instead of
    ending in an ellipsis (``solver=test.co…`` made two configurations read alike)."""
    r1, r2 = _two_tiny_runs(write_suite, registry, tmp_path)
    _scale(r2, "metric.value", 1.5, where=lambda f: f["param.value"] == 1.0)
    for run in (r1, r2):  # a component's name as long as torchdiffeq's solvers' names
        cells = pd.read_parquet(run / "cells.parquet")
        cells["solver"] = "torchdiffeq.dopri5_adjoint"
        cells.to_parquet(run / "cells.parquet", index=False)
    monkeypatch.setenv("COLUMNS", "100")
    capsys.readouterr()
    assert main(["compare", str(r1), str(r2), "--fail-on", "time:+10%", "--fail-on",
                 "metric.value:+10%"]) == 1  # fmt: skip
    out = capsys.readouterr().out
    assert max(map(len, out.splitlines())) <= 100, out
    assert "…" not in out, out
    # each table's column read top to bottom, its folds joined: every configuration's
    # label is there whole (the spaces where a line folded are lost, so none compared)
    columns: dict[int, str] = {}
    for line in out.splitlines():
        if line.startswith("┏"):
            tables = len(columns)
            columns.update({tables + i: "" for i in range(line.count("┳") + 1)})
        elif line.startswith("│"):
            for i, piece in enumerate(line.split("│")[1:-1]):
                columns[tables + i] += piece.replace(" ", "")
    cells = columns[0]  # the time table's cell column
    configuration = columns[max(columns) - 3]  # the gate table's (then what, change, verdict)
    for v in (1, 2):
        for step in (0.1, 0.2):
            label = f"solver=torchdiffeq.dopri5_adjoint value={v} solver.step_size={step}"
            assert label.replace(" ", "") in cells, (label, out)
            if v == 1:  # the ones whose metric rose 50 %
                assert label.replace(" ", "") in configuration, (label, out)
    for line in out.splitlines():  # ratios and changes whole on their line
        for number in re.findall(r"x\d[\d.]*", line):
            assert re.fullmatch(r"x\d+\.\d{3}", number), (number, out)


def test_a_headline_gate_follows_each_quality_metrics_direction(
    write_suite, registry, tmp_path, capsys
):
    import json

    r1, r2 = _two_tiny_runs(write_suite, registry, tmp_path)
    assert main(["compare", str(r1), str(r2), "--fail-on", "headline:+5%"]) == 0
    assert "gates held: headline:+5%" in capsys.readouterr().out
    _scale(r2, "metric.value", 1.1)  # value is lower-is-better: 10 % worse
    assert main(["compare", str(r1), str(r2), "--fail-on", "headline:+5%"]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "gates crossed" in out and "(lower is better)" in out
    assert main(["compare", str(r1), str(r2), "--fail-on", "headline:+20%"]) == 0
    capsys.readouterr()
    # had the task declared higher-is-better, a rise would be no failure, a fall one
    for run in (r1, r2):
        meta = json.loads((run / "run.json").read_text())
        meta["headlines"]["test.behave"]["quality"] = {"value": "higher"}
        (run / "run.json").write_text(json.dumps(meta))
    assert main(["compare", str(r1), str(r2), "--fail-on", "headline:+5%"]) == 0
    assert main(["compare", str(r2), str(r1), "--fail-on", "headline:+5%"]) == 1
    # a headline metric gone (or NaN) in B fails the gate
    cells = pd.read_parquet(r2 / "cells.parquet")
    cells.loc[cells.index[0], "metric.value"] = np.nan
    cells.to_parquet(r2 / "cells.parquet", index=False)
    capsys.readouterr()
    assert main(["compare", str(r1), str(r2), "--fail-on", "headline:+50%"]) == 1
    assert "-> none" in capsys.readouterr().out
    with pytest.raises(GateError, match="headline:\\+5%"):
        Gate.parse("headline:-5%")


def test_a_headline_gate_on_runs_without_headlines_is_bad_input(tmp_path, capsys):
    a = _fake_run(tmp_path, "a", 1.0, 0.1)  # run.json records no headline
    b = _fake_run(tmp_path, "b", 1.0, 0.1, seed=1)
    assert main(["compare", str(a), str(b), "--fail-on", "headline:+5%"]) == 2
    assert "neither run records a headline" in " ".join(capsys.readouterr().err.split())
    assert main(["compare", str(a), str(b)]) == 0  # without the gate they compare as ever


def _cells(rows):
    base = {"task": "k.t", "seed": 0, "status": "ok", "error": "", "wall": 1.0}
    return pd.DataFrame([{**base, **r} for r in rows])


def test_speedups_against_a_baseline_within_a_run():
    cells = _cells(
        [
            {"backend": "eager", "param.n": 1, "time.fwd.median": 6.0, "time.bwd.median": 9.0},
            {"backend": "fused", "param.n": 1, "time.fwd.median": 1.0, "time.bwd.median": 3.0},
            # compile's own parameter does not stop it matching the eager cell
            {
                "backend": "compile",
                "param.backend.mode": "default",
                "param.n": 1,
                "time.fwd.median": 2.0,
                "time.bwd.median": 4.5,
            },
            {"backend": "eager", "param.n": 2, "time.fwd.median": 8.0, "time.bwd.median": 8.0},
            {"backend": "fused", "param.n": 2, "time.fwd.median": 2.0, "time.bwd.median": 2.0},
            {"backend": "fused", "param.n": 3, "time.fwd.median": 1.0, "time.bwd.median": 1.0},
            {
                "backend": "fused",
                "param.n": 2,
                "seed": 1,
                "time.fwd.median": 1.0,
                "time.bwd.median": 1.0,
            },
        ]
    )
    out = with_speedups(cells, "backend", "eager")
    assert list(out["speedup.fwd"].fillna(-1)) == [1.0, 6.0, 3.0, 1.0, 4.0, -1, -1]
    assert list(out["speedup.bwd"].fillna(-1)) == [1.0, 3.0, 2.0, 1.0, 4.0, -1, -1]
    # n=3 has no eager cell, seed 1 no eager cell of its seed: no speedup, not a guess.
    failed = cells.copy()
    failed.loc[0, "status"] = "oom"
    assert out["speedup.fwd"].notna().sum() == 5
    assert with_speedups(failed, "backend", "eager")["speedup.fwd"].notna().sum() == 2
    # Several baselines: one per configuration (per task, typically), never two.
    two_tasks = _cells(
        [
            {"task": "k.warp", "backend": "warp.eager", "time.fwd.median": 4.0},
            {"task": "k.warp", "backend": "warp.fused", "time.fwd.median": 1.0},
            {"task": "k.svf", "backend": "svf.eager", "time.fwd.median": 9.0},
            {"task": "k.svf", "backend": "svf.fused", "time.fwd.median": 3.0},
        ]
    )
    two = with_speedups(two_tasks, "backend", ["warp.eager", "svf.eager"])
    assert list(two["speedup.fwd"]) == [1.0, 4.0, 1.0, 3.0]
    with pytest.raises(KeyError, match="backend=eager and backend=compile are both baselines"):
        with_speedups(cells, "backend", ["eager", "compile"])
    with pytest.raises(KeyError, match=r"no cell has backend=eagr \(its values: compile, eager"):
        with_speedups(cells, "backend", "eagr")
    with pytest.raises(KeyError, match="no column 'backnd'"):
        with_speedups(cells, "backnd", "eager")


def test_show_baseline_from_the_command_line(write_suite, registry, tmp_path, capsys):
    path = write_suite(
        "suite: sp\nplugins: [FIXTURE_PLUGINS]\nrepeats: 2\nbenchmarks:\n"
        "  - task: test.behave\n    matrix: {solver: [test.constant], value: [1, 2]}\n"
    )
    run_dir = tmp_path / "run"
    run_suite(load_suite(path, registry), run_dir, executor=InProcessExecutor(registry))
    capsys.readouterr()
    assert main(["show", str(run_dir), "--baseline", "param.value=1.0"]) == 0
    out = capsys.readouterr().out
    assert "speedup.work" in out and "x1 " in out
    assert main(["show", str(run_dir), "--baseline", "value"]) == 2
    assert "--baseline 'value': expected COL=VALUE" in capsys.readouterr().err


def test_speedups_never_cross_devices_or_divide_by_zero():
    cells = _cells(
        [
            {"backend": "eager", "device": "cpu", "time.fwd.median": 8.0},
            {"backend": "eager", "device": "cuda:0", "status": "oom", "time.fwd.median": 1.0},
            {"backend": "fused", "device": "cuda:0", "time.fwd.median": 0.5},
            {"backend": "fused", "device": "cpu", "time.fwd.median": 0.0},
        ]
    )
    out = with_speedups(cells, "backend", "eager")
    # the CUDA cell's baseline failed: no ratio against the CPU one; a zero time: none
    assert out["speedup.fwd"].isna().tolist() == [False, True, True, True]


def test_many_samples_neither_overflow_nor_take_long(tmp_path):
    import time

    a = load_run(_fake_run(tmp_path, "a", 1.0, 0.1, n=1500))
    b = load_run(_fake_run(tmp_path, "b", 1.01, 0.1, n=1500, seed=1))
    start = time.perf_counter()
    cmp = compare_runs(a, b)  # 3000 samples a side: 2 / C(6000, 3000) is past any float
    assert time.perf_counter() - start < 30
    assert all(row.testable and row.p_value < 1e-6 for row in cmp.times)
    assert all(not np.isnan(row.p_adjusted) for row in cmp.times)


def test_p_values_are_corrected_for_many_comparisons():
    from bench.compare import TimeRow, _adjust

    rows = [TimeRow({}, "t", 1.0, 1.0, 10, 10, p) for p in (0.01, 0.04, 0.5)]
    _adjust(rows)
    # Benjamini-Hochberg by hand: p_(i) * m / i, made monotone from the top
    assert [r.p_adjusted for r in rows] == pytest.approx([0.03, 0.06, 0.5])
    assert rows[0].significant and not rows[1].significant


def test_cells_on_different_devices_are_not_aligned(tmp_path):
    a = load_run(_fake_run(tmp_path, "a", 1.0, 0.1))
    b_dir = _fake_run(tmp_path, "b", 1.0, 0.1)
    cells = pd.read_parquet(b_dir / "cells.parquet")
    cells["device"] = "cuda:0"
    cells.to_parquet(b_dir / "cells.parquet")
    cmp = compare_runs(a, load_run(b_dir))
    assert cmp.times == [] and cmp.only_a == cmp.only_b == 2


def _stepped(run_dir, step, where=None):
    cells = pd.read_parquet(run_dir / "cells.parquet")
    rows = cells.index if where is None else where(cells)
    cells.loc[rows, "param.step_size"] = step
    cells.to_parquet(run_dir / "cells.parquet")
    return run_dir


def test_across_pairs_configurations_whose_parameter_changed(tmp_path, capsys):
    """A step size changed between two runs: without --across nothing is compared and the
    hint names the key; with it each solver is compared with itself, its rows saying
    both values, and a gate judges them."""
    a = _fake_run(tmp_path, "a", 1.0, 0.1)
    b = _stepped(_fake_run(tmp_path, "b", 2.0, 0.2, seed=1), 0.2)
    plain = compare_runs(load_run(a), load_run(b))
    assert plain.times == [] and plain.only_a == plain.only_b == 2
    assert plain.pairable == ["param.step_size"]
    assert main(["compare", str(a), str(b)]) == 2  # nothing to compare
    assert "--across step_size compares them" in capsys.readouterr().out
    cmp = compare_runs(load_run(a), load_run(b), across=["step_size"])
    assert cmp.only_a == cmp.only_b == 0 and cmp.across == ["param.step_size"]
    assert sorted(r.label for r in cmp.metrics) == [
        "solver=euler (step_size=0.1 in A, 0.2 in B)",
        "solver=rk4 (step_size=0.1 in A, 0.2 in B)",
    ]
    assert [round(r.b / r.a, 6) for r in cmp.metrics] == [2.0, 2.0]
    assert all(1.9 < r.ratio < 2.1 and r.significant for r in cmp.times)
    code = main(["compare", str(a), str(b), "--across", "step_size", "--fail-on", "time:+50%"])
    out = capsys.readouterr().out
    assert code == 1 and "step_size=0.1 in A, 0.2 in B" in out  # the gate crossed
    page = tmp_path / "page.html"
    assert main(["report", str(a), str(b), "--across", "step_size", "-o", str(page)]) == 0
    html = page.read_text()
    assert "compared across step_size" in html and "step_size=0.1 in A, 0.2 in B" in html


def test_across_refuses_what_would_pool_settings_or_is_unknown(tmp_path, capsys):
    a = _fake_run(tmp_path, "a", 1.0, 0.1)
    # B ran two step sizes of one solver: pooled, they would mix two settings
    b = _stepped(_fake_run(tmp_path, "b", 1.0, 0.1), 0.2, lambda c: c["seed"] == 1)
    with pytest.raises(AcrossError, match=r"run B holds step_size = 0.1, 0.2 in one config"):
        compare_runs(load_run(a), load_run(b), across=["step_size"])
    with pytest.raises(AcrossError, match="did you mean step_size"):
        compare_runs(load_run(a), load_run(a), across=["stepsize"])
    with pytest.raises(AcrossError, match="is not a configuration column of both runs"):
        compare_runs(load_run(a), load_run(a), across=["metric.err"])
    assert main(["compare", str(a), str(b), "--across", "step_size"]) == 2
    assert "run B holds step_size" in capsys.readouterr().err
    assert main(["report", str(a), "--across", "step_size"]) == 2
    assert "give a second run" in capsys.readouterr().err
    with pytest.raises(AcrossError, match="another task is another measure"):
        compare_runs(load_run(a), load_run(a), across=["task"])
    # the same value in both runs: compared as without --across, no value said
    same = compare_runs(load_run(a), load_run(a), across=["step_size"])
    assert len(same.metrics) == 2 and all("in A" not in r.label for r in same.metrics)


def test_compare_says_when_the_runs_ran_cells_side_by_side_otherwise(tmp_path, capsys):
    """--workers 2 times differ from one worker's (the cells share the cores): run.json
    records how many cells ran at once, and compare says so where the runs differ, or
    where a run was resumed with another number."""
    import json

    from bench.compare import measurement_differences

    a = _fake_run(tmp_path, "a", 1.0, 0.1)
    b = _fake_run(tmp_path, "b", 1.0, 0.1)
    (a / "run.json").write_text(json.dumps({"suite": "x", "concurrent": 1}))
    (b / "run.json").write_text(json.dumps({"suite": "x", "concurrent": 2}))
    assert main(["compare", str(a), str(b)]) == 0
    assert "cells ran 1 at a time in A, 2 at a time in B: cells side by side" in (
        capsys.readouterr().out
    )
    resumed = {"concurrent": 2, "earlier_runs": [{"until": "t", "concurrent": 1}]}
    notes = measurement_differences(resumed, resumed)
    assert notes == [
        "run A was resumed with another number of cells at a time (1 at a time, 2 at a time)",
        "run B was resumed with another number of cells at a time (1 at a time, 2 at a time)",
    ]
    assert measurement_differences({"concurrent": 1}, {"concurrent": 1}) == []
    assert measurement_differences({}, {"concurrent": 2}) == []  # a run from before: unknown


def test_runs_timed_with_other_repeats_or_warmup_are_said_to_differ():
    """A run at repeats 2, warmup 1 against one at repeats 1, warmup 0 showed euler 1.89x
    slower with no word (a user audit): the note names each entry both runs hold that
    ran otherwise (entry by entry: two entries swapping their repeats differ, an entry
    one run alone holds does not count; a review)."""
    from bench.compare import measurement_differences

    a = {
        "suite_text": "suite: a\nrepeats: 2\nbenchmarks:\n  - task: t\n"
        "  - task: u\n    warmup: 0\n  - task: v\n    repeats: 7\n"
    }
    b = {"suite_text": "suite: b\nrepeats: 1\nwarmup: 0\nbenchmarks:\n  - task: t\n"
                       "  - task: u\n"}  # fmt: skip
    assert measurement_differences(a, b) == [
        "repeats differ (t: 2 in A, 1 in B; u: 2 in A, 1 in B): the time ratios measure "
        "that too (a median over another number of timed calls)",
        "warmup differ (t: 1 in A, 0 in B): the time ratios measure that too (first-call "
        "costs (compilation, caches) timed or not)",
    ]
    assert measurement_differences(a, a) == []
    swapped = {
        "suite_text": "suite: c\nbenchmarks:\n  - {task: t, name: e, repeats: 2}\n"
        "  - {task: t, name: r, repeats: 1}\n"
    }
    other = {"suite_text": "suite: c\nbenchmarks:\n  - {task: t, name: e, repeats: 1}\n"
                           "  - {task: t, name: r, repeats: 2}\n"}  # fmt: skip
    assert len(measurement_differences(swapped, other)) == 1
    # the audit's case: one task swept by entries written otherwise in the two runs
    one = {"suite_text": "suite: a\nrepeats: 2\nbenchmarks:\n  - {task: t, params: {h: [1]}}\n"}
    two = {"suite_text": "suite: b\nrepeats: 1\nbenchmarks:\n  - {task: t, params: {h: [2]}}\n"}
    assert measurement_differences(one, two)[0].startswith("repeats differ (t: 2 in A, 1 in B)")
    # a text that is not a suite says nothing, and raises nothing
    assert measurement_differences({"suite_text": "[: bad"}, b) == []


def test_across_a_problem_reads_no_quality_as_better_or_worse(tmp_path):
    """--across truth read every method '13 % better' where B's B-spline pairs were
    easier (a user audit): across a parameter its task declares a problem, a quality
    changed with the problem."""
    import json

    from bench import Headline
    from bench.report import comparison_data

    a = _fake_run(tmp_path, "a", 1.0, 0.1)
    b = _stepped(_fake_run(tmp_path, "b", 1.0, 0.05, seed=1), 0.2)  # err halved
    cmp = compare_runs(load_run(a), load_run(b), across=["step_size"])

    def verdicts(problem):
        head = Headline(quality={"err": "lower"}, problem=problem)
        data = comparison_data(cmp, headlines={"ode.t": head})
        return [row[-1] for row in data["tasks"][0]["metrics"]["rows"]]

    assert verdicts(()) == ["better", "better"]
    assert verdicts(("step_size",)) == ["changed with the problem (step_size)"] * 2
    head = {"quality": {"err": "lower"}, "cost": "wall", "problem": ["step_size"]}
    for run in (a, b):
        (run / "run.json").write_text(json.dumps({"suite": "x", "headlines": {"ode.t": head}}))
    page = tmp_path / "page.html"
    assert main(["report", str(a), str(b), "--across", "step_size", "-o", str(page)]) == 0
    html = page.read_text()
    assert "step_size poses another problem (its task judges each value apart)" in html
    assert "changed with the problem (step_size)" in html
    # a gate on the quality does not judge it either: listed, not failed (a review)
    from bench.compare import Gate, check_gates, untestable_under

    worse = _stepped(_fake_run(tmp_path, "w", 1.0, 0.2, seed=1), 0.2)  # err doubled
    (worse / "run.json").write_text(json.dumps({"suite": "x", "headlines": {"ode.t": head}}))
    for gate in ("headline:+5%", "metric.err:+5%"):
        code = main(["compare", str(a), str(worse), "--across", "step_size", "--fail-on", gate])
        assert code == 0, gate
        cmp = compare_runs(load_run(a), load_run(worse), across=["step_size"])
        assert check_gates(cmp, [Gate.parse(gate)]) == []
        listed = [v.verdict for v in untestable_under(cmp, [Gate.parse(gate)])]
        assert listed == ["not judged: the problem changed (step_size)"] * 2
    # a value B lost crosses its gate across a problem too (a review)
    lost = _stepped(_fake_run(tmp_path, "l", 1.0, 0.2, seed=1), 0.2)
    cells = pd.read_parquet(lost / "cells.parquet")
    cells.loc[cells["solver"] == "rk4", ["status", "metric.err"]] = ["error", float("nan")]
    cells.to_parquet(lost / "cells.parquet")
    (lost / "run.json").write_text(json.dumps({"suite": "x", "headlines": {"ode.t": head}}))
    args = ["compare", str(a), str(lost), "--across", "step_size", "--fail-on", "headline:+5%"]
    assert main(args) == 1
    # without --across's problem (no headline problem), the same doubling fails the gate
    plain = {"quality": {"err": "lower"}, "cost": "wall"}
    for run in (a, worse):
        (run / "run.json").write_text(json.dumps({"suite": "x", "headlines": {"ode.t": plain}}))
    args = ["compare", str(a), str(worse), "--across", "step_size", "--fail-on", "headline:+5%"]
    assert main(args) == 1
