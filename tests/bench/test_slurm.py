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
    # no scheduler here: submitit's AutoExecutor would run every cell as a local process
    # at once, the partition ignored (a user audit's timings doubled without a word)
    import submitit

    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: -1))
    assert main([*args, "--slurm", "slurm_partition=debug"]) == 2
    assert "--slurm: no SLURM scheduler here (srun is not on the PATH)" in (capsys.readouterr().err)
    assert not any(tmp_path.rglob("cells.parquet"))
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
    from bench.executors import InProcessExecutor
    from bench.runner import run_suite
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


@pytest.mark.slow  # 25 s; test_a_resume_ends_the_local_jobs_a_killed_submitter_left (the
# local controller's end) and ..._scancels_the_slurm_jobs_... (SLURM's) are its twins
def test_resume_ends_the_job_a_killed_submitter_left_running(write_suite, tmp_path):
    """kill -9 of ``bench run --slurm``: its job went on running, and a resume queued a
    duplicate beside it whose folder the orphan kept writing into. The resume now ends
    the jobs ``jobs.json`` names before clearing and rerunning their cells."""
    import json
    import os
    import signal
    import subprocess
    import time

    from bench.slurm import _alive

    marker = tmp_path / "hung-once"
    path = write_suite(
        "suite: orphan\ndevice: cpu\nrepeats: 1\ntimeout: 90\nplugins: [FIXTURE_PLUGINS]\n"
        "benchmarks:\n  - task: test.behave\n    matrix: {solver: [test.constant]}\n"
        f"    params: {{mode: hang_once, marker: '{marker}'}}\n"
    )
    out = tmp_path / "results"
    base = [sys.executable, "-m", "bench", "run", str(path), "--quiet", "--slurm", "cluster=local"]
    proc = subprocess.Popen([*base, "--output", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    deadline = time.time() + 120
    while not marker.exists():
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.2)
    run_dir = next((out / "orphan").iterdir())
    jobs = json.loads((run_dir / "slurm" / "jobs.json").read_text())
    (job,) = jobs["jobs"].values()
    assert jobs["cluster"] == "local"
    os.kill(proc.pid, signal.SIGKILL)  # the submitter only, without warning
    proc.wait(30)
    time.sleep(1)
    assert _alive(int(job))  # its job goes on: the orphan
    done = subprocess.run([*base, "--resume", str(run_dir)], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not _alive(int(job))
    rows = load_run(run_dir).cells
    assert list(rows["status"]) == ["ok"]
    assert not (run_dir / "slurm" / "jobs.json").exists()  # every job recorded


def test_a_resume_ends_the_local_jobs_a_killed_submitter_left(tmp_path):
    """The local half of the resume's orphan handling, on real processes (the end-to-end
    test with a killed ``bench run`` is slow): a job jobs.json names whose process is
    still this run's submitit controller is ended with the processes below it; a pid
    now held by another process (reused) is left alone."""
    import contextlib
    import json
    import os
    import signal
    import subprocess
    import time

    from bench.slurm import SlurmExecutor, _alive, _descendants

    folder = tmp_path / "slurm"
    folder.mkdir()
    # a stand-in controller: its command line names submitit's local module and the folder.
    # SIGINT as a foreground process has it (a background shell's children ignore it; the
    # recovery's SIGKILL, 10 s later, ends such a job too, but slowly)
    code = (
        "import signal, subprocess, time; "
        "signal.signal(signal.SIGINT, signal.default_int_handler); "
        "subprocess.Popen(['sleep', '60'], "
        "preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)); time.sleep(60)"
    )
    controller = subprocess.Popen(
        [sys.executable, "-c", code, "submitit.local._local", str(folder)]
    )
    stranger = subprocess.Popen(["sleep", "60"])  # a reused pid: not ours
    children: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while not children and time.monotonic() < deadline:
            time.sleep(0.05)
            children = _descendants(controller.pid)
        assert len(children) == 1, f"the stand-in controller started {children} in 30 s"
        (child,) = children
        jobs = {"cell-a": str(controller.pid), "cell-b": str(stranger.pid)}
        (folder / "jobs.json").write_text(json.dumps({"cluster": "local", "jobs": jobs}))
        executor = SlurmExecutor([], tmp_path, folder, {"cluster": "local"})
        assert executor.recover() == [str(controller.pid)]
        controller.wait(10)
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child)  # the job's own processes went with it
        assert stranger.poll() is None  # left alone
        assert not (folder / "jobs.json").exists()
    finally:
        for proc in (controller, stranger):
            proc.kill()
            proc.wait()
        for pid in children:  # the job's own process, if the test failed before its end
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def test_a_local_controller_started_through_a_shell_is_recognised(tmp_path):
    """submitit starts its local controller through ``sh -c 'setup && python -m
    submitit.local._local <folder>'`` when the executor has ``setup`` commands: the
    shell's pid is the job id, and the resume must know it as this run's (the shell
    stays the parent here: dash does not exec the last command of an && list)."""
    import os
    import shlex
    import signal
    import subprocess
    import time
    from pathlib import Path

    from bench.slurm import _is_our_controller

    folder = tmp_path / "slurm"
    job = [sys.executable, "-c", "import time; time.sleep(60)", "submitit.local._local"]
    shells = {
        "ours": " && ".join(["true", shlex.join([*job, str(folder / "17")])]),
        "another run's": " && ".join(["true", shlex.join([*job, str(tmp_path / "x" / "17")])]),
        "unbalanced quote": "true && sleep 60 # submitit.local._local 'unended " + str(folder),
    }
    procs = {name: subprocess.Popen(cmd, shell=True, start_new_session=True)
             for name, cmd in shells.items()}  # fmt: skip
    try:
        seen = {}
        for name, proc in procs.items():
            deadline = time.monotonic() + 10  # until the shell has its command line
            while b"-c" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes():
                assert time.monotonic() < deadline
                time.sleep(0.01)
            seen[name] = _is_our_controller(proc.pid, folder)
        assert seen == {"ours": True, "another run's": False, "unbalanced quote": False}
    finally:
        for proc in procs.values():  # the shell and the process it started
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_a_resume_scancels_the_slurm_jobs_a_killed_submitter_left(tmp_path, monkeypatch):
    """The SLURM half of the resume's orphan handling (the real-scheduler test of it is
    slow): the jobs jobs.json names are scancelled, and the resume waits until squeue no
    longer lists them (here the second look), then forgets the file."""
    import json
    import subprocess

    import bench.slurm
    from bench.slurm import SlurmExecutor

    calls, listings = [], iter(["41_0\n42_1\n", "41_0\n"])

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        out = next(listings) if cmd[0] == "squeue" else ""
        return subprocess.CompletedProcess(cmd, 0, stdout=out, stderr="")

    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setattr(bench.slurm, "POLL_S", 0.01)
    folder = tmp_path / "slurm"
    folder.mkdir()
    jobs = {"cell-a": "42_1", "cell-b": "43"}
    (folder / "jobs.json").write_text(json.dumps({"cluster": "slurm", "jobs": jobs}))
    executor = SlurmExecutor([], tmp_path, folder, {"cluster": "local"})
    assert sorted(executor.recover()) == ["42_1", "43"]
    assert calls[0] == ["scancel", "42_1", "43"]
    assert [c[0] for c in calls] == ["scancel", "squeue", "squeue"]  # 42 listed, then gone
    assert not (folder / "jobs.json").exists()


# --- a real scheduler: a one-node SLURM cluster on this machine -------------------------


@pytest.fixture(scope="module")
def slurm_cluster():
    """Starts Debian's slurm-wlm (slurmctld + slurmd, munge) on this host when the
    packages are installed and we are root (`.ci/run` installs them); skips otherwise.
    Afterwards it stops the daemons it started and puts back ``/etc/slurm/slurm.conf``
    and what else the start changed (``tests/bench/_slurm_cluster.py``)."""
    import os
    import shutil
    from pathlib import Path

    from ._slurm_cluster import LocalCluster

    if not shutil.which("slurmctld") or not shutil.which("sbatch"):
        pytest.skip("no SLURM here: apt-get install slurm-wlm munge to test against a scheduler")
    if os.geteuid() != 0:
        pytest.skip("starting slurmctld and slurmd needs root")
    cluster = LocalCluster(Path(__file__).parent / "fixtures" / "slurm_up.sh")
    try:
        done = cluster.start()
        if done.returncode != 0:
            pytest.skip(f"could not start a one-node SLURM cluster: {done.stdout or done.stderr}")
        yield "debug"
    finally:
        cluster.stop()


REAL = """
suite: real
device: cpu
repeats: 2
timeout: 8
plugins: [FIXTURE_PLUGINS]
benchmarks:
  - task: test.behave
    matrix: {solver: [test.constant], mode: [ok, raise, nan, crash_late, hang_late]}
"""


@pytest.mark.slow  # 28 s; the statuses are classified by the code the submitit-local test
# (test_cells_run_as_jobs_with_the_local_statuses) runs, and test_a_cancelled_job_says_so
# goes through the real scheduler in the default run
def test_a_real_scheduler_gives_the_local_statuses(slurm_cluster, write_suite, tmp_path, capsys):
    path = write_suite(REAL)
    out = tmp_path / "results"
    args = ["run", str(path), "--output", str(out), "--quiet"]
    assert main([*args, "--slurm", f"slurm_partition={slurm_cluster}"]) == 0
    run = load_run(next((out / "real").iterdir()))
    assert run.meta["cluster"] == "slurm"
    status = dict(zip(run.cells["param.mode"], run.cells["status"]))
    assert status == {
        "ok": "ok",
        "raise": "error",
        "nan": "diverged",
        "crash_late": "error",
        "hang_late": "timeout",
    }
    late = run.cells[run.cells["param.mode"].isin(["crash_late", "hang_late"])]
    assert list(late["metric.value"]) == [1.0, 1.0]  # measured before failing, kept
    err = capsys.readouterr().err
    assert err.count("Bypassing sacct error") == 0  # said once, in our words, if at all


def test_a_cancelled_job_says_so(slurm_cluster, write_suite, tmp_path):
    import subprocess
    import time

    marker = tmp_path / "started"
    path = write_suite(
        "suite: cancel\ndevice: cpu\nrepeats: 1\ntimeout: 300\nplugins: [FIXTURE_PLUGINS]\n"
        "benchmarks:\n  - task: test.behave\n    matrix: {solver: [test.constant]}\n"
        f"    params: {{mode: hang, marker: '{marker}'}}\n"
    )
    out = tmp_path / "results"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "run", str(path), "--output", str(out), "--quiet",
         "--slurm", f"slurm_partition={slurm_cluster}", "--slurm", "name=dynbench-cancel-test"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.time() + 180
    while not marker.exists():
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.5)
    subprocess.run(["scancel", "--name", "dynbench-cancel-test"], check=True, timeout=30)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    row = load_run(next((out / "cancel").iterdir())).cells.iloc[0]
    assert row["status"] == "error"
    assert "cancelled by the scheduler" in row["error"], row["error"]
    assert "Bypassing sacct error" not in err  # submitit's warning, said in our words


@pytest.mark.slow  # 20 s; test_a_resume_scancels_the_slurm_jobs_a_killed_submitter_left is
# its twin in the default run (the same resume code, SLURM's commands faked)
def test_resume_after_the_submitting_process_is_killed(slurm_cluster, write_suite, tmp_path):
    import signal
    import subprocess
    import time

    marker = tmp_path / "hung-once"
    path = write_suite(
        "suite: resumed\ndevice: cpu\nrepeats: 1\ntimeout: 20\nplugins: [FIXTURE_PLUGINS]\n"
        "benchmarks:\n  - task: test.behave\n    matrix: {solver: [test.constant], value: [1, 2]}\n"
        "  - task: test.behave\n    matrix: {solver: [test.constant]}\n"
        f"    params: {{mode: hang_once, marker: '{marker}'}}\n"
    )
    out = tmp_path / "results"
    base = [sys.executable, "-m", "bench", "run", str(path), "--quiet",
            "--slurm", f"slurm_partition={slurm_cluster}"]  # fmt: skip
    proc = subprocess.Popen([*base, "--output", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    deadline = time.time() + 180
    while not marker.exists():
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.5)
    log = next((out / "resumed").iterdir()) / "cells.log.jsonl"
    while not (log.exists() and log.read_text().count("\n") >= 2):
        # the two quick cells' jobs finish and are recorded
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.5)
    os_kill = __import__("os").killpg
    os_kill(proc.pid, signal.SIGKILL)  # the submitting process, without warning
    proc.communicate(timeout=30)
    run_dir = next((out / "resumed").iterdir())
    before = len(load_run(run_dir).cells)
    assert before < 3
    import json

    orphans = set(json.loads((run_dir / "slurm" / "jobs.json").read_text())["jobs"].values())
    done = subprocess.run([*base, "--resume", str(run_dir)], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    after = load_run(run_dir).cells
    assert len(after) == 3 and set(after["status"]) == {"ok"}
    # the killed submitter's jobs were cancelled by the resume, not left running beside it
    queued = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True)
    assert not orphans & set(queued.stdout.split())
    assert not (run_dir / "slurm" / "jobs.json").exists()
