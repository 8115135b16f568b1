"""bench run --slurm: cells as submitit jobs (here cluster=local: local processes).

Inside each job a cell runs in a worker process exactly as ``bench run`` does locally,
so every status, and what a failing cell measured, must come back the same.
"""

from __future__ import annotations

import sys

import pytest

from bench.cli import main
from bench.results import load_run

SUITE = """
suite: sl
device: cpu
repeats: 2
timeout: 6
plugins: [FIXTURE_PLUGINS]
benchmarks:
  - task: test.behave
    matrix: {solver: [test.constant], mode: [ok, raise, crash_late, hang_late]}
"""


def test_cells_run_as_jobs_with_the_local_statuses(write_suite, tmp_path, capsys):
    path = write_suite(SUITE)
    out = tmp_path / "results"
    code = main(["run", str(path), "--output", str(out), "--quiet", "--slurm", "cluster=local"])
    assert code == 0
    run = load_run(next((out / "sl").iterdir()))
    status = dict(zip(run.cells["param.mode"], run.cells["status"]))
    assert status == {"ok": "ok", "raise": "error", "crash_late": "error", "hang_late": "timeout"}
    errors = dict(zip(run.cells["param.mode"], run.cells["error"]))
    assert errors["crash_late"] == "worker died from SIGSEGV"
    assert errors["hang_late"] == "no result within the 6 s timeout; worker killed"
    # what the failing cells measured before failing comes back from the job too
    late = run.cells[run.cells["param.mode"].isin(["crash_late", "hang_late"])]
    assert list(late["metric.value"]) == [1.0, 1.0]
    assert set(run.cells["device"]) == {"cpu"}
    assert run.meta["status"] == "complete"
    assert (run.meta["executor"], run.meta["cluster"]) == ("SlurmExecutor", "local")
    assert list((out / "sl").iterdir())[0].joinpath("slurm").is_dir()  # submitit's logs


def test_bad_slurm_options_are_reported(write_suite, tmp_path, capsys, monkeypatch):
    path = write_suite(SUITE)
    args = ["run", str(path), "--output", str(tmp_path), "--quiet"]
    assert main([*args, "--slurm", "partition"]) == 2
    assert "--slurm 'partition': expected KEY=VALUE" in capsys.readouterr().err
    assert main([*args, "--slurm", "cluster=local", "--slurm", "no_such_param=1"]) == 2
    assert "no_such_param" in capsys.readouterr().err
    assert main([*args, "--slurm", "cluster=local", "--in-process"]) == 2
    assert "--slurm and --in-process exclude each other" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "submitit", None)
    assert main([*args, "--slurm", "cluster=local"]) == 2
    assert "needs submitit: pip install 'dynbench[slurm]'" in capsys.readouterr().err


class _FakeJob:
    job_id = "42_3"

    def __init__(self, state):
        self.state = state

        class _Paths:
            folder = "/logs/42_3"

        self.paths = _Paths()

    def result(self):
        import submitit

        raise submitit.core.utils.UncompletedJobError("Job 42_3 ...\nroom for a warning")


@pytest.mark.parametrize(
    "state, status, message",
    [
        ("TIMEOUT", "timeout", "job 42_3 reached its time limit; logs in /logs/42_3"),
        ("OUT_OF_MEMORY", "oom", "job 42_3 ran out of memory; logs in /logs/42_3"),
        ("NODE_FAIL", "error", "job 42_3 failed (NODE_FAIL): Job 42_3 ...; logs in /logs/42_3"),
    ],
)
def test_a_job_that_died_is_classified_by_its_scheduler_state(tmp_path, state, status, message):
    from bench.slurm import SlurmExecutor
    from bench.suite import Cell

    executor = SlurmExecutor([], tmp_path, tmp_path / "slurm", {"cluster": "local"})
    outcome = executor._outcome(_FakeJob(state), Cell.__new__(Cell))
    assert (outcome.status, outcome.error) == (status, message)


def test_resume_submits_only_the_missing_cells(write_suite, registry, tmp_path):
    from bench.runner import InProcessExecutor, run_suite
    from bench.suite import load_suite

    path = write_suite(
        "suite: rs\ndevice: cpu\nrepeats: 1\nplugins: [FIXTURE_PLUGINS]\nbenchmarks:\n"
        "  - task: test.behave\n    matrix: {solver: [test.constant], value: [1, 2, 3]}\n"
    )
    run_dir = tmp_path / "run"

    def stop_after_one(cell, row):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_suite(
            load_suite(path, registry),
            run_dir,
            executor=InProcessExecutor(registry),
            on_cell_done=stop_after_one,
        )
    assert len(load_run(run_dir).cells) == 1
    args = ["run", str(path), "--resume", str(run_dir), "--quiet", "--slurm", "cluster=local"]
    assert main(args) == 0
    run = load_run(run_dir)
    assert sorted(run.cells["metric.value"]) == [1.0, 2.0, 3.0]
    jobs = [p for p in (run_dir / "slurm").iterdir() if p.name[0].isdigit()]  # job ids
    assert len(jobs) == 2  # one job per missing cell, none for the finished one
