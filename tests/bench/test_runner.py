"""Running cells in worker processes: every status, timeouts, crashes, kill and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main
from bench.executors import InProcessExecutor, ProcessExecutor
from bench.results import load_run
from bench.runner import run_suite
from bench.suite import load_suite

from .conftest import FIXTURE_PLUGINS

MODES_SUITE = """
suite: statuses
device: cpu
repeats: 3
timeout: 4
plugins: [FIXTURE_PLUGINS]
benchmarks:
  - task: test.behave
    matrix:
      solver: [test.constant]
      mode: [ok, raise, nan, diverge, skip, oom, hang, crash, kill]
  - task: test.behave
    matrix:
      solver: [test.constant]
      mode: [diverge_late, oom_late, hang_late, crash_late]
  - task: test.behave
    params: {value: 2}
    matrix: {solver: [test.constant]}
  - task: test.needs_missing
"""


@pytest.fixture(scope="module")
def statuses_run(tmp_path_factory, registry_module):
    tmp = tmp_path_factory.mktemp("statuses")
    path = tmp / "suite.yaml"
    path.write_text(MODES_SUITE.replace("FIXTURE_PLUGINS", FIXTURE_PLUGINS))
    suite = load_suite(path, registry_module)
    executor = ProcessExecutor(suite.plugins, suite.base_dir, builtins=False)
    executor.on_progress = lambda cell, point: PROGRESS.append((cell.task_params["mode"], point))
    run_dir = tmp / "run"
    run_suite(suite, run_dir, executor=executor)
    return load_run(run_dir)


#: what the statuses run's executor reported of its cells' progress (mode, curve point)
PROGRESS: list[tuple[str, tuple]] = []


def test_a_running_cells_curve_points_reach_the_display(statuses_run, registry_module, tmp_path):
    """bench run's bar shows a long cell's last curve point (the worker streams them every
    half second); before, it sat at 0/1 for the whole cell. A cell that crashes after
    recording its curve still reported it; in-process cells report each point."""
    modes = {mode for mode, _ in PROGRESS}
    assert "crash_late" in modes and "hang_late" in modes
    name, step, _, value = next(p for m, p in PROGRESS if m == "crash_late")
    assert name == "loss" and value == 1.0 / (step + 1)
    from bench.executors import InProcessExecutor

    path = tmp_path / "suite.yaml"
    path.write_text(MODES_SUITE.replace("FIXTURE_PLUGINS", FIXTURE_PLUGINS).split("  - task")[0]
                    + "  - task: test.behave\n    matrix: {solver: [test.constant]}\n")  # fmt: skip
    seen = []
    executor = InProcessExecutor(registry_module)
    executor.on_progress = lambda cell, point: seen.append(point)
    run_suite(load_suite(path, registry_module), tmp_path / "run", executor=executor)
    assert [p[0] for p in seen] == ["loss"] * len(seen) and len(seen) >= 2


@pytest.fixture(scope="module")
def registry_module():
    from bench import Registry, get_plugin_manager

    return Registry(get_plugin_manager([FIXTURE_PLUGINS], builtins=False))


def _row(run, **where) -> pd.Series:
    cells = run.cells
    for col, value in where.items():
        cells = cells[cells[col] == value]
    assert len(cells) == 1, where
    return cells.iloc[0]


@pytest.mark.parametrize(
    "mode, status, error",
    [
        ("ok", "ok", ""),
        ("nan", "diverged", "non-finite metric: value=nan"),
        ("diverge", "diverged", "loss exploded on purpose"),
        ("skip", "skipped", "skipped on purpose"),
        ("oom", "oom", "MemoryError: could not allocate on purpose (at "),
        ("raise", "error", "ValueError: the plugin raised on purpose (at "),
        ("hang", "timeout", "no result within the 4 s timeout; worker killed"),
        ("crash", "error", "worker died from SIGSEGV"),
        # a SIGKILL with memory far from the limit is not called an out-of-memory kill
        ("kill", "error", "worker killed by SIGKILL with memory not near the limit ("),
    ],
)
def test_each_failure_ends_its_cell_with_a_status(statuses_run, mode, status, error):
    row = _row(statuses_run, **{"param.mode": mode, "param.value": 1.0})
    assert row["status"] == status
    assert row["error"].startswith(error)
    if status == "error" and mode == "raise":
        assert "harness_plugins.py:" in row["error"] and "in run)" in row["error"]


@pytest.mark.parametrize(
    "mode, status, error",
    [
        ("diverge_late", "diverged", "loss exploded after measuring"),
        ("oom_late", "oom", "MemoryError: could not allocate the backward (at "),
        ("hang_late", "timeout", "no result within the 4 s timeout; worker killed"),
        ("crash_late", "error", "worker died from SIGSEGV"),
    ],
)
def test_a_cell_failing_late_keeps_what_it_measured(statuses_run, mode, status, error):
    row = _row(statuses_run, **{"param.mode": mode})
    assert (row["status"], row["error"][: len(error)]) == (status, error)
    assert row["metric.value"] == 1.0
    assert row["time.work.n"] == 3
    samples = statuses_run.samples
    assert len(samples[(samples["cell_id"] == row["cell_id"]) & (samples["timer"] == "work")]) == 3
    curves = statuses_run.curves
    assert list(curves[curves["cell_id"] == row["cell_id"]]["value"]) == pytest.approx(
        [1.0, 0.5, 1.0 / 3]
    )


def test_the_run_goes_on_after_every_failure(statuses_run):
    assert len(statuses_run.cells) == 15
    assert statuses_run.meta["status"] == "complete"
    assert _row(statuses_run, **{"param.value": 2.0})["status"] == "ok"


def test_worker_is_reused_and_replaced_after_a_timeout_or_crash(statuses_run):
    first_ok = _row(statuses_run, **{"param.mode": "ok", "param.value": 1.0})
    after_kill = _row(statuses_run, **{"param.value": 2.0})
    nan = _row(statuses_run, **{"param.mode": "nan"})
    assert first_ok["metric.pid"] == nan["metric.pid"]  # reused
    assert after_kill["metric.pid"] != first_ok["metric.pid"]  # replaced


def test_missing_optional_dependency_is_skipped_with_the_reason(statuses_run):
    row = _row(statuses_run, task="test.needs_missing")
    assert row["status"] == "skipped"
    assert "needs the optional module 'a_module_that_does_not_exist_anywhere'" in row["error"]


def test_prepare_runs_before_the_task_once(write_suite, registry, tmp_path):
    """``Plugin.prepare``: one-time set-up (an optional package's import) is done in the
    worker before the task runs, so that no clock of the task counts it."""
    path = write_suite(
        """
        suite: prep
        device: cpu
        plugins: [FIXTURE_PLUGINS]
        benchmarks:
          - task: test.uses_method
            matrix: {method: [test.prepared, test.double]}
        """
    )
    run_dir = tmp_path / "out"
    run_suite(load_suite(path, registry), run_dir, executor=InProcessExecutor(registry))
    cells = pd.read_parquet(run_dir / "cells.parquet").set_index("method")
    assert cells.loc["test.prepared", "metric.prepared_first"] == 1.0
    assert cells.loc["test.prepared", "metric.answer"] == 42
    assert pd.isna(cells.loc["test.double", "metric.prepared_first"])  # default: nothing


def test_results_folder_layout(statuses_run):
    run = statuses_run
    row = _row(run, **{"param.mode": "ok", "param.value": 1.0})
    for col in ("time.work.median", "time.work.iqr", "time.work.min", "time.work.n", "mem.work"):
        assert col in run.cells.columns
    assert row["time.work.n"] == 3
    samples = run.samples[run.samples["cell_id"] == row["cell_id"]]
    assert list(samples["rep"]) == [0, 1, 2]
    assert samples["seconds"].median() == pytest.approx(row["time.work.median"])
    curves = run.curves[run.curves["cell_id"] == row["cell_id"]]
    assert list(curves["value"]) == pytest.approx([1.0, 0.5, 1 / 3])
    meta = run.meta
    for key in ("git", "packages", "devices", "cuda", "host", "start", "end", "suite_text"):
        assert key in meta
    assert meta["packages"]["torch"]
    assert meta["cells"] == {"total": 15, "finished": 15}


def test_in_process_executor_runs_the_same_protocol(write_suite, registry, tmp_path):
    path = write_suite(
        "suite: inproc\nplugins: [FIXTURE_PLUGINS]\nrepeats: 2\nbenchmarks:\n"
        "  - task: test.behave\n    matrix: {solver: [test.constant], mode: [ok, raise]}\n"
    )
    suite = load_suite(path, registry)
    rows = run_suite(suite, tmp_path / "run", executor=InProcessExecutor(registry))
    assert [r["status"] for r in rows] == ["ok", "error"]
    assert rows[0]["metric.pid"] == os.getpid()


def test_a_thread_left_by_one_cell_does_not_disguise_a_later_crash(write_suite, tmp_path):
    """A cell leaves a non-daemon thread running in the reused worker; the next cell
    crashes. The crash is reported as a crash at once (the worker's death is seen by
    its process, not by a pipe the thread could keep open), not as a timeout, and the
    run ends (the worker exits hard, not waiting for the thread)."""
    path = write_suite(
        "suite: threads\nplugins: [FIXTURE_PLUGINS]\nrepeats: 1\ntimeout: 30\nbenchmarks:\n"
        "  - task: test.behave\n    matrix: {solver: [test.constant], mode: [thread, crash, ok]}\n"
    )
    start = time.monotonic()
    assert main(["run", str(path), "--output", str(tmp_path / "out"), "--quiet"]) == 0
    run = load_run(next((tmp_path / "out" / "threads").iterdir()))
    status = dict(zip(run.cells["param.mode"], run.cells["status"]))
    assert status == {"thread": "ok", "crash": "error", "ok": "ok"}
    crash = _row(run, **{"param.mode": "crash"})
    assert crash["error"].startswith("worker died from SIGSEGV")
    assert crash["wall"] < 30  # not the timeout
    assert time.monotonic() - start < 60  # the run did not wait for the thread


def test_executors_share_one_protocol(write_suite, registry, tmp_path):
    """run_suite speaks only Executor's run_all/close: an executor that finishes cells
    out of order (as a pool or a cluster does) has each row recorded under its cell."""
    from bench.executors import Executor, ParallelExecutor
    from bench.slurm import SlurmExecutor

    assert all(issubclass(k, Executor) for k in (ParallelExecutor, SlurmExecutor))

    class Reversed(InProcessExecutor):
        closed = False

        def run_all(self, cells, on_cell_start=None):
            yield from reversed(list(super().run_all(cells, on_cell_start)))

        def close(self):
            Reversed.closed = True

    path = write_suite(
        "suite: order\nplugins: [FIXTURE_PLUGINS]\nrepeats: 1\nbenchmarks:\n"
        "  - task: test.behave\n    matrix: {solver: [test.constant], value: [1.0, 2.0, 3.0]}\n"
    )
    suite = load_suite(path, registry)
    run_suite(suite, tmp_path / "run", executor=Reversed(registry))
    cells = load_run(tmp_path / "run").cells
    assert sorted(cells["metric.value"]) == [1.0, 2.0, 3.0]
    by_id = {c.id: c.task_params["value"] for c in suite.cells}
    assert all(by_id[row.cell_id] == row["metric.value"] for _, row in cells.iterrows())
    assert Reversed.closed
    with pytest.raises(NotImplementedError, match="run_all"):
        Executor().execute(suite.cells[0])


def _bench(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.cli", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def test_a_killed_run_loses_only_the_running_cell_and_resumes(write_suite, tmp_path):
    marker = tmp_path / "hung-once"
    path = write_suite(
        f"""
        suite: resumable
        device: cpu
        repeats: 2
        timeout: 300
        plugins: [FIXTURE_PLUGINS]
        benchmarks:
          - task: test.behave
            params: {{value: 1}}
            matrix: {{solver: [test.constant]}}
          - task: test.behave
            params: {{mode: hang_once, marker: "{marker}"}}
            matrix: {{solver: [test.constant]}}
          - task: test.behave
            params: {{value: 3}}
            matrix: {{solver: [test.constant]}}
        """
    )
    out = tmp_path / "out"
    proc = _bench("run", str(path), "--output", str(out), cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not marker.exists():  # the second cell has started (and hangs)
        assert time.monotonic() < deadline, proc.communicate(timeout=5)[0]
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # bench and its worker, without warning
    proc.wait(10)
    (run_dir,) = (out / "resumable").iterdir()
    before = load_run(run_dir)
    assert len(before.cells) == 1 and before.cells.iloc[0]["status"] == "ok"
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]

    # --dry-run with --resume lists what the resume would run, not every cell
    dry = _bench("run", str(path), "--resume", str(run_dir), "--dry-run", cwd=tmp_path)
    text = dry.communicate(timeout=60)[0]
    assert dry.returncode == 0 and "resumable: 2 of 3 cells to run (the rest done)" in text
    assert before.cells.iloc[0]["cell_id"][:12] not in text
    resumed = _bench("run", str(path), "--resume", str(run_dir), cwd=tmp_path)
    log = resumed.communicate(timeout=180)[0]
    assert resumed.returncode == 0, log
    assert "2 cells to run (1 already done)" in log
    after = load_run(run_dir)
    assert sorted(after.cells["param.value"]) == [1.0, 1.0, 3.0]
    assert set(after.cells["status"]) == {"ok"}
    assert after.cells["cell_id"].is_unique
    kept = after.cells[after.cells["cell_id"] == before.cells.iloc[0]["cell_id"]].iloc[0]
    assert kept["finished_at"] == before.cells.iloc[0]["finished_at"]  # not run again
    assert after.meta["status"] == "complete" and len(after.meta["resumed"]) == 1
    assert len(after.samples) == 3 * 2  # no samples left over from the killed cell
    # how the first invocation ran its cells is kept beside the resume's
    (first,) = after.meta["earlier_runs"]
    assert first["concurrent"] == after.meta["concurrent"] == 1
    assert first["until"] == after.meta["resumed"][0] and "bench run" in first["command"]


@pytest.fixture
def finished_run(write_suite, registry, tmp_path) -> Path:
    path = write_suite(
        "suite: small\nplugins: [FIXTURE_PLUGINS]\nrepeats: 2\nbenchmarks:\n"
        "  - task: test.behave\n    matrix: {solver: [test.constant]}\n"
    )
    suite = load_suite(path, registry)
    run_dir = tmp_path / "results" / "small" / "r1"
    run_suite(suite, run_dir, executor=InProcessExecutor(registry))
    return run_dir


def test_corrupt_cells_file_gives_one_clear_message(finished_run, capsys):
    (finished_run / "cells.parquet").write_bytes(b"not parquet at all")
    assert main(["show", str(finished_run)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"{finished_run / 'cells.parquet'}: corrupt or not a Parquet file" in " ".join(
        err.split()
    )


def test_resume_refuses_a_corrupt_run_and_leaves_it_alone(finished_run, write_suite, capsys):
    target = finished_run / "cells.parquet"
    target.write_bytes(b"garbage")
    suite = write_suite(
        "suite: small\nplugins: [FIXTURE_PLUGINS]\nbenchmarks:\n"
        "  - task: test.behave\n    matrix: {solver: [test.constant]}\n",
        "again.yaml",
    )
    assert main(["run", str(suite), "--resume", str(finished_run)]) == 2
    assert "cannot resume:" in capsys.readouterr().err
    assert target.read_bytes() == b"garbage"


def test_corrupt_run_json_is_named(finished_run, capsys):
    (finished_run / "run.json").write_text("{not json")
    assert main(["show", str(finished_run)]) == 2
    assert "run.json: corrupt JSON" in capsys.readouterr().err


def test_show_accepts_a_suite_folder_and_filters(finished_run, capsys):
    assert main(["show", str(finished_run.parent), "--filter", "status=ok"]) == 0
    out = capsys.readouterr().out
    assert "small/r1" in out and "test.constant" in out
    assert main(["show", str(finished_run), "--filter", "nope=1"]) == 2
    assert "no column 'nope'" in capsys.readouterr().err
    assert main(["show", str(finished_run), "--group-by", "solver"]) == 0
    assert "test.constant" in capsys.readouterr().out


def test_threads_apply_per_cell_and_do_not_leak(write_suite, registry, tmp_path):
    import torch

    before = torch.get_num_threads()
    path = write_suite(
        "suite: threads\nplugins: [FIXTURE_PLUGINS]\nrepeats: 1\nbenchmarks:\n"
        "  - task: test.behave\n    threads: 1\n    matrix: {solver: [test.constant]}\n"
        "  - task: test.behave\n    params: {value: 2}\n    matrix: {solver: [test.constant]}\n"
    )
    suite = load_suite(path, registry)
    rows = run_suite(suite, tmp_path / "r", executor=InProcessExecutor(registry))
    assert rows[0]["threads"] == 1
    assert rows[1]["threads"] == before  # the next cell gets torch's default back
    assert torch.get_num_threads() == before


def test_a_sigkill_is_oom_only_when_memory_was_near_the_limit():
    from bench.executors import _death_outcome

    gib = 2**30
    near = _death_outcome(-signal.SIGKILL, 1.0, (20 * gib, 1 * gib, 24 * gib))
    assert near.status == "oom" and "most likely the kernel's out-of-memory killer" in near.error
    far = _death_outcome(-signal.SIGKILL, 1.0, (1 * gib, 20 * gib, 24 * gib))
    assert far.status == "error" and "not near the limit" in far.error
    assert "resident 1.00 GiB, 20.00 GiB of 24.0 GiB available" in far.error
    unseen = _death_outcome(-signal.SIGKILL, 1.0, None)
    assert unseen.status == "error" and "not seen" in unseen.error


def test_in_process_cells_run_on_a_frozen_heap(write_suite, registry, tmp_path, monkeypatch):
    """The full collection after each cell walked the whole unfrozen heap: 97 % of an
    in-process trivial cell (173 ms against a worker's 5)."""
    import gc

    import bench.executors

    frozen = []
    real = bench.executors.run_cell

    def spy(*args, **kwargs):
        frozen.append(gc.get_freeze_count())
        return real(*args, **kwargs)

    monkeypatch.setattr(bench.executors, "run_cell", spy)
    path = write_suite(
        "suite: frozen\nplugins: [FIXTURE_PLUGINS]\nrepeats: 1\nseeds: [0, 1]\nbenchmarks:\n"
        "  - task: test.behave\n    matrix: {solver: [test.constant]}\n"
    )
    assert gc.get_freeze_count() == 0
    rows = run_suite(
        load_suite(path, registry), tmp_path / "r", executor=InProcessExecutor(registry)
    )
    assert [row["status"] for row in rows] == ["ok", "ok"]
    assert len(frozen) == 2 and min(frozen) > 10_000  # torch and the rest, frozen once
    assert gc.get_freeze_count() == 0  # close gave this process its heap back


def test_a_resume_ends_orphaned_jobs_before_clearing_their_cells_files(tmp_path, registry_module):
    """What the slow end-to-end resume after a killed ``bench run --slurm`` checks, in the
    default run: the executor ends the jobs a killed submitter left (``recover``) before
    the cells to rerun get their files folders emptied, so an orphan never writes into
    a folder that is being reused."""
    path = tmp_path / "suite.yaml"
    path.write_text(
        "suite: orphans\ndevice: cpu\nrepeats: 1\nplugins: [FIXTURE_PLUGINS]\nbenchmarks:\n"
        "  - task: test.behave\n    matrix: {solver: [test.constant]}\n".replace(
            "FIXTURE_PLUGINS", FIXTURE_PLUGINS
        )
    )
    suite = load_suite(path, registry_module)
    (cell,) = suite.cells
    stale = tmp_path / "r" / "files" / cell.id / "written-by-the-orphan.txt"
    stale.parent.mkdir(parents=True)
    stale.write_text("a killed run's job was still writing here")
    seen = []

    class Recording(InProcessExecutor):
        def recover(self):
            seen.append(stale.exists())
            return []

    run_suite(suite, tmp_path / "r", executor=Recording(registry_module), resume=True)
    assert seen == [True]  # called once, while the files were still there
    assert not stale.exists()  # then cleared for the rerun
    assert list(load_run(tmp_path / "r").cells["status"]) == ["ok"]
