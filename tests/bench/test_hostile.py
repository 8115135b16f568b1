"""Hostile input and process faults (issue 13): each class is refused with one message,
bounded in time and memory, or cleaned up — and what was measured is kept."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from bench.cli import main
from bench.executors import ProcessExecutor
from bench.results import RunLock, RunLockedError, load_run
from bench.runner import run_suite
from bench.suite import SuiteError, load_suite, read_suite_file

from .conftest import FIXTURE_PLUGINS

# --- the file itself ------------------------------------------------------------


def _alias_bomb(levels: int = 9) -> str:
    text = 'a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]\n'
    prev = "a"
    for name in "bcdefghijklmnop"[:levels]:
        refs = ", ".join(f"*{prev}" for _ in range(10))
        text += f"{name}: &{name} [{refs}]\n"
        prev = name
    return text + "suite: bomb\nbenchmarks: [{task: test.behave}]\n"


def test_an_alias_bomb_is_refused_quickly(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(_alias_bomb())  # 10^10 values expanded, in ~1 KB
    start = time.perf_counter()
    with pytest.raises(SuiteError) as err:
        read_suite_file(path)
    assert time.perf_counter() - start < 5  # measured: ~0.01 s; the unbounded walk hung
    assert "once its YAML aliases are expanded" in str(err.value)


def test_a_recursive_alias_is_refused(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("a: &a [*a]\nsuite: x\n")
    with pytest.raises(SuiteError):
        read_suite_file(path)


@pytest.mark.parametrize(
    "content, message",
    [
        (os.urandom(64) + b"\xff\xfe", "not UTF-8 text"),
        ("suite: x\n".encode("utf-16"), "not UTF-8 text (byte 0xff at offset 0)"),
        (b"suite: a\nsuite: b\nbenchmarks: []\n", "key 'suite' appears twice"),
        (b"suite: a\nbenchmarks:\n  - task: t\n    task: u\n", "key 'task' appears twice"),
    ],
    ids=["random-bytes", "utf-16", "duplicate-top-key", "duplicate-entry-key"],
)
def test_undecodable_or_ambiguous_files(tmp_path, content, message):
    path = tmp_path / "s.yaml"
    path.write_bytes(content)
    with pytest.raises(SuiteError) as err:
        read_suite_file(path)
    assert message in str(err.value)


def test_a_folder_given_as_a_suite(tmp_path, capsys):
    assert main(["run", str(tmp_path)]) == 2
    assert "is a folder, not a suite file" in capsys.readouterr().err


# --- values that pass a type check and fail later --------------------------------------

HEAD = "plugins: [FIXTURE_PLUGINS]\n"
ENTRY = "benchmarks:\n  - task: test.behave\n    matrix: {solver: [test.constant]}\n"


@pytest.mark.parametrize(
    "settings, message",
    [
        ("suite: s\ntimeout: .inf\n", "timeout: expected a number of seconds > 0 and at most"),
        ("suite: s\ntimeout: .nan\n", "timeout: expected a number of seconds > 0"),
        (f"suite: {'n' * 300}\n", "must be a name of at most 100"),
        ("suite: s\nseeds: [100000000000000000000000]\n", "seeds: expected a list of integers"),
        ("suite: s\nseeds: [-1]\n", "seeds: expected a list of integers from 0"),
        ("suite: s\nthreads: 100000\n", "threads: expected an integer from 1 to 1024"),
        ("suite: s\nrepeats: 10000000000\n", "repeats: expected an integer from 1 to 1000000"),
        # "$" matches before a trailing newline (issue 23): a device "cpu\n" was taken
        ('suite: s\ndevice: "cpu\\n"\n', "device: 'cpu\\n' is not one of auto, cpu"),
        pytest.param('suite: "s\\n"\n', "suite: ", id="newline-name"),
    ],
    ids=["inf-timeout", "nan-timeout", "long-name", "huge-seed", "negative-seed", "threads",
         "repeats", "newline-device", "newline-name"],
)  # fmt: skip
def test_values_later_stages_cannot_hold_are_refused(write_suite, registry, settings, message):
    path = write_suite(settings + HEAD + ENTRY)
    with pytest.raises(SuiteError) as err:
        load_suite(path, registry)
    assert message in str(err.value)


def test_values_are_quoted_short_in_messages(write_suite, registry):
    path = write_suite("suite: s\n" + HEAD + f"timeout: '{'x' * 100000}'\n" + ENTRY)
    with pytest.raises(SuiteError) as err:
        load_suite(path, registry)
    assert len(str(err.value)) < 500


def _huge_suite(write_suite, extra: str = "", n: int = 1000) -> str:
    values = list(range(n))
    return write_suite(
        "suite: s\n"
        + HEAD
        + extra
        + "benchmarks:\n  - task: test.behave\n"
        + f"    matrix: {{solver: [test.constant], value: {values}, seconds: {values}, "
        + f"marker: {[str(v) for v in range(10)]}}}\n"
    )


def test_a_huge_matrix_is_counted_before_it_is_expanded(write_suite, registry, monkeypatch):
    """10^7 cells took minutes and 12 GB before: now refused from the count alone, and
    the message says how to raise the limit."""
    import bench.sweep

    def no_expansion(*args, **kwargs):
        raise AssertionError("expanded a suite past its limit")

    monkeypatch.setattr(bench.sweep._Entry, "cells", no_expansion)
    with pytest.raises(SuiteError) as err:
        load_suite(_huge_suite(write_suite), registry)
    message = str(err.value)
    assert "expands to 10,000,000 cells (benchmarks[0]: 1 x 1000 x 1000 x 10 x 1 seeds)" in message
    assert "more than its limit of 1,000,000" in message
    assert "`max_cells: 10000000`" in message


def test_max_cells_counts_every_entry_and_can_be_raised(write_suite, registry):
    small = "    matrix: {solver: [test.constant], value: [1, 2, 3]}\n"
    entries = "benchmarks:\n" + "".join(f"  - task: test.behave\n{small}" for _ in range(2))
    # two entries of 3 cells: 6 (the duplicate cells are a mistake of their own, below)
    path = write_suite("suite: s\n" + HEAD + "max_cells: 5\n" + entries)
    with pytest.raises(SuiteError, match=r"expands to 6 cells .* limit of 5"):
        load_suite(path, registry)
    other = "    matrix: {solver: [test.constant], value: [4, 5, 6]}\n"
    entries = "benchmarks:\n  - task: test.behave\n" + small + "  - task: test.behave\n" + other
    path = write_suite("suite: s\n" + HEAD + "max_cells: 6\n" + entries)
    assert len(load_suite(path, registry).cells) == 6
    for bad in ("0", "true", "1.5", "100000000000"):
        path = write_suite("suite: s\n" + HEAD + f"max_cells: {bad}\n" + entries)
        with pytest.raises(SuiteError, match="max_cells: expected an integer from 1 to"):
            load_suite(path, registry)


# --- plugins that misbehave while loading ------------------------------------------------


@pytest.mark.parametrize(
    "code, message",
    [
        ("import sys\nsys.exit(7)\n", "called sys.exit(7) while importing"),
        (
            "from bench import hookimpl\n@hookimpl\ndef bench_plugins():\n"
            "    raise RuntimeError('no')\n",
            "its bench_plugins() hook raised RuntimeError: no",
        ),
        (
            "from bench import hookimpl\n@hookimpl\ndef bench_solverz():\n    return []\n",
            "bench_solverz",
        ),
    ],
    ids=["sys-exit", "hook-raises", "misspelled-hook"],
)
def test_a_misbehaving_plugin_is_one_message_in_run_and_list(tmp_path, capsys, code, message):
    plugin = tmp_path / "bad.py"
    plugin.write_text(code)
    suite = tmp_path / "s.yaml"
    suite.write_text("suite: s\nplugins: [./bad.py]\n" + ENTRY)
    assert main(["run", str(suite), "--dry-run"]) == 2
    assert message in capsys.readouterr().err
    assert main(["list", "--plugins", str(plugin)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


_HOOKS = """
import torch
from bench import Param, Solver, Task, hookimpl

def bad_check(value):
    raise KeyError("oops in check")

class BadCheck(Solver):
    name = "bad.check"
    order = 1
    params = {"step_size": Param(0.1, check=bad_check)}
    def odeint(self, func, y0, t, **options):
        return torch.stack([y0] * len(t))

class BadResolve(BadCheck):
    name = "bad.resolve"
    params = {"step_size": Param(0.1)}
    @classmethod
    def resolve_params(cls, values):
        return {**super().resolve_params(values), "x": 1 / 0}

class BadCell(Task):
    name = "bad.cell"
    components = {"solver": "solver"}
    @classmethod
    def check_cell(cls, components, params):
        return params["nope"]
    def run(self, ctx):
        pass

@hookimpl
def bench_plugins():
    return [BadCheck, BadResolve, BadCell]
"""


def test_a_plugin_hook_that_raises_while_checking_is_one_message(tmp_path, capsys):
    """A Param(check=) function, a resolve_params or a check_cell raising an ordinary
    exception crashed validation with a traceback, exit 1: each is one message naming
    the plugin, with every other mistake, exit 2."""
    (tmp_path / "bad.py").write_text(_HOOKS)
    suite = tmp_path / "s.yaml"
    suite.write_text(
        "suite: s\nplugins: [./bad.py]\nbenchmarks:\n"
        "  - task: ode.harmonic\n    params: {solver: bad.check, solver.step_size: 0.2}\n"
        "  - task: ode.harmonic\n    params: {solver: bad.resolve}\n"
        "  - task: bad.cell\n    params: {solver: rk4}\n"
    )
    assert main(["run", str(suite), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert (
        "bad.check.step_size: its check bad_check raised on 0.2: KeyError: 'oops in check'" in err
    )
    assert "bad.resolve.resolve_params raised ZeroDivisionError: division by zero" in err
    assert "bad.cell: its check_cell raised KeyError: 'nope'" in err


def test_a_missing_plugin_file_is_reported_with_the_other_mistakes(write_suite, capsys):
    path = write_suite("suite: s\nrepeats: 0\nplugins: [FIXTURE_PLUGINS, ./missing.py]\n" + ENTRY)
    assert main(["run", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "missing.py" in err and "repeats: expected an integer" in err


# --- folders and arguments -----------------------------------------------------------------


def test_a_file_where_a_folder_is_expected(write_suite, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["show", str(afile)]) == 2
    assert "is a file, not a run folder" in capsys.readouterr().err
    path = write_suite("suite: s\n" + HEAD + ENTRY)
    assert main(["run", str(path), "--output", str(afile)]) == 2
    assert "--output" in capsys.readouterr().err


def test_a_run_folder_has_one_writer(tmp_path, write_suite, registry):
    lock = RunLock(tmp_path)
    lock.acquire()
    try:
        path = write_suite("suite: s\n" + HEAD + ENTRY)
        suite = load_suite(path, registry)
        with pytest.raises(RunLockedError, match=f"pid {os.getpid()}"):
            run_suite(
                suite,
                tmp_path,
                executor=ProcessExecutor([FIXTURE_PLUGINS], tmp_path, builtins=False),
            )
    finally:
        lock.release()
    assert (tmp_path / ".lock").read_text() == ""  # kept (see below), naming no holder


def test_a_run_killed_outright_reads_stopped_not_running(tmp_path, write_suite, registry, capsys):
    """After kill -9 of bench run, run.json says running for ever (show printed
    [running], the report 'ended ? (running)'): a running run no process holds the lock
    of reads stopped, and says --resume continues it; one being written reads running."""
    import json

    from bench.cli import main
    from bench.executors import InProcessExecutor
    from bench.results import load_run

    path = write_suite("suite: s\n" + HEAD + ENTRY)
    run_suite(load_suite(path, registry), tmp_path / "r", executor=InProcessExecutor(registry))
    meta_path = tmp_path / "r" / "run.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "status": "running"}))  # as a kill -9 leaves it
    assert load_run(tmp_path / "r").status.startswith("stopped (no bench run writes it")
    assert main(["show", str(tmp_path / "r")]) == 0
    assert "[stopped (no bench run writes it: killed? --resume continues it)]" in (
        capsys.readouterr().out
    )
    lock = RunLock(tmp_path / "r")
    lock.acquire()  # a bench run writing it
    try:
        assert load_run(tmp_path / "r").status == "running"
    finally:
        lock.release()
    assert load_run(tmp_path / "r").status.startswith("stopped")


@pytest.mark.skipif(sys.platform == "win32", reason="flock: POSIX")
def test_a_run_folder_lock_never_has_two_holders(tmp_path):
    """Releasing deleted ``.lock`` first: a writer that had opened it just before then
    locked the deleted file, and the next one a new ``.lock``, both holding "the" lock."""
    import fcntl

    first = RunLock(tmp_path)
    first.acquire()
    with open(tmp_path / ".lock") as early:  # a second bench opens the file, and waits
        first.release()
        fcntl.flock(early, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ... and gets the lock
        with pytest.raises(RunLockedError):
            RunLock(tmp_path).acquire()  # a third must wait for the second
    third = RunLock(tmp_path)
    third.acquire()
    assert (tmp_path / ".lock").read_text().split("@")[0] == str(os.getpid())
    third.release()


def test_retry_failed_runs_failed_cells_again(write_suite, tmp_path, capsys):
    marker = tmp_path / "ran"
    path = write_suite(
        "suite: retry\ndevice: cpu\nrepeats: 1\n" + HEAD + "benchmarks:\n"
        "  - task: test.behave\n    matrix: {solver: [test.constant]}\n"
        f"    params: {{mode: raise, marker: '{marker}'}}\n"
        "  - task: test.behave\n    matrix: {solver: [test.constant]}\n"
    )
    out = tmp_path / "out"
    quick = ["--quiet", "--in-process"]  # what is retried is the runner's choice, not a worker's
    assert main(["run", str(path), "--output", str(out), *quick]) == 0
    run_dir = next((out / "retry").iterdir())
    assert main(["run", str(path), "--resume", str(run_dir), *quick]) == 0
    assert marker.read_text().count("\n") == 1  # plain --resume: an error is done
    assert main(["run", str(path), "--resume", str(run_dir), "--retry-failed", *quick]) == 0
    assert marker.read_text().count("\n") == 2
    assert len(load_run(run_dir).cells) == 2
    assert main(["run", str(path), "--retry-failed"]) == 2


def test_resume_refuses_what_is_not_a_run_of_this_suite(write_suite, tmp_path, capsys):
    entry = "device: cpu\nrepeats: 1\n" + HEAD + ENTRY
    mine = write_suite("suite: mine\n" + entry)
    other = write_suite("suite: other\n" + entry, "other.yaml")
    out = tmp_path / "out"
    assert main(["run", str(mine), "--output", str(out), "--quiet", "--in-process"]) == 0
    (run_dir,) = (out / "mine").iterdir()
    unrelated = tmp_path / "photos"
    unrelated.mkdir()
    (unrelated / "holiday.jpg").write_bytes(b"x")
    cases = [
        (mine, out / "mine", f"--resume {out / 'mine'}: a suite folder, not a run; resume one "
                             f"of its runs, e.g. {run_dir}"),
        (mine, unrelated, f"--resume {unrelated}: not a run folder (no run.json)"),
        (other, run_dir, f"--resume {run_dir}: a run of suite 'mine', not of 'other'"),
    ]  # fmt: skip
    for suite, folder, message in cases:
        before = sorted(p.name for p in folder.rglob("*"))
        assert main(["run", str(suite), "--resume", str(folder), "--quiet", "--in-process"]) == 2
        assert message in " ".join(capsys.readouterr().err.split())
        assert sorted(p.name for p in folder.rglob("*")) == before  # nothing written there
    assert main(["run", str(mine), "--resume", str(run_dir), "--quiet", "--in-process"]) == 0


def test_result_files_follow_the_umask(write_suite, tmp_path):
    path = write_suite("suite: perms\ndevice: cpu\nrepeats: 1\n" + HEAD + ENTRY)
    assert main(["run", str(path), "--output", str(tmp_path), "--quiet", "--in-process"]) == 0
    run_dir = next((tmp_path / "perms").iterdir())
    mask = os.umask(0)
    os.umask(mask)
    for name in ("cells.parquet", "samples.parquet", "run.json"):
        assert (run_dir / name).stat().st_mode & 0o777 == 0o666 & ~mask, name


# --- processes -------------------------------------------------------------------------------

HANG = (
    "suite: hang\ndevice: cpu\nrepeats: 1\ntimeout: 600\n" + HEAD + "benchmarks:\n"
    "  - task: test.behave\n    matrix: {solver: [test.constant]}\n"
    "    params: {mode: hang, marker: MARKER}\n"
)


def _start_run(write_suite, tmp_path):
    marker = tmp_path / "worker.pid"
    path = write_suite(HANG.replace("MARKER", str(marker)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "run", str(path), "--output", str(tmp_path / "out"),
         "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.time() + 120
    while not (marker.exists() and marker.read_text().strip()):
        assert time.time() < deadline, "the hanging cell never started"
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    return proc, int(marker.read_text().split()[0])


def _gone(pid: int, within: float) -> bool:
    deadline = time.time() + within
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # a zombie of ours counts as gone
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().split()[2] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.skipif(sys.platform != "linux", reason="parent-death signal and /proc: Linux")
# SIGHUP takes the handler SIGTERM takes (bench.cli installs one for both): slow
@pytest.mark.parametrize(
    "signum",
    [signal.SIGTERM, pytest.param(signal.SIGHUP, marks=pytest.mark.slow)],
    ids=["SIGTERM", "SIGHUP"],
)
def test_sigterm_is_handled_like_ctrl_c(write_suite, tmp_path, signum):
    proc, worker = _start_run(write_suite, tmp_path)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted; finish with" in out
    run_dir = next((tmp_path / "out" / "hang").iterdir())
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    assert _gone(worker, 15), "the hung worker outlived bench run"


class _ListeningConn:
    def __init__(self):
        self.sent = []

    def send(self, message):
        self.sent.append(message)

    def close(self):
        pass


class _HungWorker:
    """A worker process busy with a cell: alive until killed, deaf to the pipe."""

    pid = None  # no process group of ours to signal
    exitcode = -signal.SIGKILL

    def __init__(self):
        self.alive, self.joins = True, []

    def is_alive(self):
        return self.alive

    def join(self, timeout=None):
        self.joins.append(timeout)

    def kill(self):
        self.alive = False


class _Cell:
    fresh_worker, timeout = False, 600

    def to_dict(self):
        return {"cell": "hangs"}


def test_close_after_an_interrupted_cell_kills_its_worker_without_waiting(monkeypatch):
    """Ctrl-C or SIGTERM while a cell runs: close() sent the busy worker its stop message
    and waited 5 s for a reply it could not give (bench run took 6 s to exit, 1 s now)."""
    from bench import executors

    def interrupted(conns, timeout):
        raise KeyboardInterrupt

    monkeypatch.setattr(executors.mp_connection, "wait", interrupted)
    ex = ProcessExecutor([], ".", builtins=False)
    worker, conn = _HungWorker(), _ListeningConn()
    ex._proc, ex._conn = worker, conn
    with pytest.raises(KeyboardInterrupt):
        ex.execute(_Cell())
    ex.close()
    assert conn.sent == [{"cell": "hangs"}]  # no stop message to a worker that cannot read it
    assert not worker.alive and 5 not in worker.joins


def test_close_asks_an_idle_worker_to_stop_before_killing_it():
    """The polite close stays for a worker between cells (it may finish its own exit)."""
    worker, conn = _HungWorker(), _ListeningConn()
    ex = ProcessExecutor([], ".", builtins=False)
    ex._proc, ex._conn = worker, conn
    ex.close()
    assert conn.sent == [None] and worker.joins[0] == 5


def test_sighup_ends_a_run_as_sigterm_does():
    """The in-process half of the SIGHUP runs (slow): both signals get the one handler,
    which makes an interrupt of them, and the previous handlers come back afterwards."""
    from bench.cli import _termination_as_interrupt

    before = signal.getsignal(signal.SIGHUP), signal.getsignal(signal.SIGTERM)
    with _termination_as_interrupt():
        hup, term = signal.getsignal(signal.SIGHUP), signal.getsignal(signal.SIGTERM)
        assert hup is term and callable(hup)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(1)  # the handler runs in this thread between bytecodes
    assert (signal.getsignal(signal.SIGHUP), signal.getsignal(signal.SIGTERM)) == before


SLOW_IMPORT = """
import os, time
with open(os.environ["WORKER_PID_FILE"], "w") as fh:
    fh.write(f"{os.getpid()}\\n")
time.sleep(120)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="/proc: Linux")
def test_sigterm_while_the_suite_is_checked_is_an_interrupt(tmp_path):
    (tmp_path / "slow.py").write_text(SLOW_IMPORT)
    marker = tmp_path / "worker.pid"
    suite_path = tmp_path / "s.yaml"
    suite_path.write_text("suite: slow\nplugins: [./slow.py]\nbenchmarks: []\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "run", str(suite_path), "--output", str(tmp_path / "out")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "WORKER_PID_FILE": str(marker)},
    )  # fmt: skip
    deadline = time.time() + 120
    while not (marker.exists() and marker.read_text().endswith("\n")):
        assert time.time() < deadline and proc.poll() is None, "the plugin never started importing"
        time.sleep(0.2)
    started = time.time()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, err.strip()) == (130, "interrupted")  # was 143 and nothing
    assert time.time() - started < 30  # not after the plugin's two-minute import
    assert _gone(int(marker.read_text()), 10), "the starting worker outlived bench run"


@pytest.mark.skipif(sys.platform != "linux", reason="parent-death signal: Linux")
def test_a_killed_run_takes_its_worker_with_it(write_suite, tmp_path):
    proc, worker = _start_run(write_suite, tmp_path)
    proc.kill()
    proc.communicate(timeout=30)
    assert _gone(worker, 15), "the worker outlived a kill -9 of bench run"


SPAWNS = '''
import os, subprocess, time
from bench import Task, hookimpl

class Spawns(Task):
    """Starts `sleep 333`, writes its pid, then hangs."""
    name = "test.spawns"
    def run(self, ctx):
        child = subprocess.Popen(["sleep", "333"])
        with open(os.environ["CHILD_PID_FILE"], "w") as fh:
            fh.write(f"{child.pid}\\n")
        time.sleep(3600)

@hookimpl
def bench_plugins():
    return [Spawns]
'''


@pytest.mark.skipif(sys.platform != "linux", reason="parent-death signal: Linux")
@pytest.mark.parametrize(
    "how",
    ["SIGKILL", "SIGTERM", pytest.param("SIGHUP", marks=pytest.mark.slow), "two SIGTERMs"],
)
def test_a_killed_run_takes_a_cells_children_with_it(tmp_path, how):
    (tmp_path / "spawns.py").write_text(SPAWNS)
    child_file = tmp_path / "child.pid"
    suite_path = tmp_path / "s.yaml"
    suite_path.write_text(
        "suite: spawns\ndevice: cpu\ntimeout: 600\nplugins: [./spawns.py]\n"
        "benchmarks:\n  - task: test.spawns\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "run", str(suite_path), "--output", str(tmp_path / "out"),
         "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "CHILD_PID_FILE": str(child_file)},
    )  # fmt: skip
    deadline = time.time() + 120
    while not (child_file.exists() and child_file.read_text().endswith("\n")):
        assert time.time() < deadline and proc.poll() is None, "the cell never started"
        time.sleep(0.2)
    child = int(child_file.read_text())
    try:
        if how == "SIGKILL":
            proc.kill()
        elif how in ("SIGTERM", "SIGHUP"):  # one polite signal: the close that kills
            proc.send_signal(getattr(signal, how))
        else:
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        assert _gone(child, 10), f"a cell's child outlived {how} of bench run"
    finally:
        proc.kill()
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass


FORK = '''
import os, signal, time
from bench import Task, hookimpl

class Forks(Task):
    """Forks a child that sleeps holding the pipe, then crashes."""
    name = "test.forks"
    def run(self, ctx):
        pid = os.fork()
        if pid == 0:
            time.sleep(600)
            os._exit(0)
        with open(os.environ["CHILD_PID_FILE"], "w") as fh:
            fh.write(str(pid))
        os.kill(os.getpid(), signal.SIGSEGV)

@hookimpl
def bench_plugins():
    return [Forks]
'''


@pytest.mark.skipif(sys.platform != "linux", reason="process groups and fork: POSIX")
def test_a_cell_that_forks_then_crashes_is_an_error_at_once(tmp_path, monkeypatch):
    plugin = tmp_path / "forks.py"
    plugin.write_text(FORK)
    child_file = tmp_path / "child.pid"
    monkeypatch.setenv("CHILD_PID_FILE", str(child_file))
    suite_path = tmp_path / "s.yaml"
    suite_path.write_text(
        "suite: forks\ndevice: cpu\ntimeout: 120\nplugins: [./forks.py]\n"
        "benchmarks:\n  - task: test.forks\n"
    )
    suite = load_suite(suite_path)
    start = time.perf_counter()
    run_suite(suite, tmp_path / "run", executor=ProcessExecutor(suite.plugins, suite.base_dir))
    took = time.perf_counter() - start
    row = load_run(tmp_path / "run").cells.iloc[0]
    assert row["status"] == "error" and "SIGSEGV" in row["error"]
    assert took < 60  # not the 120 s timeout: the worker's death is seen by its process
    assert _gone(int(child_file.read_text()), 15), "the forked child outlived the cell"


# --- results on disk ---------------------------------------------------------------------


def test_cells_are_appended_and_compacted_when_the_run_closes(write_suite, registry, tmp_path):
    from bench.cell import Outcome
    from bench.results import LOG, RunWriter

    path = write_suite("suite: s\n" + HEAD + ENTRY)
    (cell,) = load_suite(path, registry).cells
    writer = RunWriter(tmp_path)
    outcome = Outcome("ok", row={"metric.x": 1.0}, samples={"t": [0.1, 0.2]},
                      curves=[("loss", 0, 0.0, 1.0)])  # fmt: skip
    writer.add(cell, outcome, "cpu", "now")
    assert (tmp_path / LOG).exists() and not (tmp_path / "cells.parquet").exists()
    # a kill while the next line is written leaves half a line: ignored
    with open(tmp_path / LOG, "a") as fh:
        fh.write('{"cell": {"cell_id": "half')
    (tmp_path / "run.json").write_text("{}")
    run = load_run(tmp_path)
    assert list(run.cells["cell_id"]) == [cell.id] and len(run.samples) == 2
    resumed = RunWriter(tmp_path, resume=True)
    assert resumed.done_ids() == {cell.id}
    resumed.close()
    assert not (tmp_path / LOG).exists()
    again = load_run(tmp_path)
    assert list(again.cells["metric.x"]) == [1.0] and list(again.curves["value"]) == [1.0]


def _two_cells(write_suite, registry):
    path = write_suite(
        "suite: s\n" + HEAD + "benchmarks:\n  - task: test.behave\n"
        "    matrix: {solver: [test.constant], value: [1, 2, 3]}\n"
    )
    return load_suite(path, registry).cells


def test_a_run_cut_twice_mid_line_stays_readable(write_suite, registry, tmp_path):
    """A resumed run appended its first record onto the line a kill had cut; a second
    kill then left that glued line in the middle, and the run unreadable for good."""
    from bench.cell import Outcome
    from bench.results import LOG, RunWriter

    first, second, _ = _two_cells(write_suite, registry)
    (tmp_path / "run.json").write_text("{}")
    RunWriter(tmp_path).add(first, Outcome("ok", row={"metric.x": 1.0}), "cpu", "now")
    with open(tmp_path / LOG, "a") as fh:
        fh.write('{"cell": {"cell_id": "half')  # killed mid-line
    resumed = RunWriter(tmp_path, resume=True)
    resumed.add(second, Outcome("ok", row={"metric.x": 2.0}), "cpu", "now")
    del resumed  # killed again, before close()
    assert (tmp_path / LOG).read_text().count("half") == 0  # the torn line was cut off
    run = load_run(tmp_path)
    assert sorted(run.cells["metric.x"]) == [1.0, 2.0]
    assert main(["show", str(tmp_path)]) == 0
    assert RunWriter(tmp_path, resume=True).done_ids() == {first.id, second.id}


def test_a_complete_last_record_without_its_newline_is_kept(write_suite, registry, tmp_path):
    from bench.cell import Outcome
    from bench.results import LOG, RunWriter

    first, second, _ = _two_cells(write_suite, registry)
    RunWriter(tmp_path).add(first, Outcome("ok", row={"metric.x": 1.0}), "cpu", "now")
    log = tmp_path / LOG
    log.write_bytes(log.read_bytes().rstrip(b"\n"))  # cut between the record and its \n
    RunWriter(tmp_path, resume=True).add(second, Outcome("ok"), "cpu", "now")
    (tmp_path / "run.json").write_text("{}")
    assert sorted(load_run(tmp_path).cells["cell_id"]) == sorted([first.id, second.id])


def test_a_torn_line_in_the_middle_is_skipped_with_a_warning(write_suite, registry, tmp_path):
    """Logs an older bench left damaged: every complete record is read, the record glued
    onto a torn line included, and the damage is named."""
    from bench.cell import Outcome
    from bench.results import LOG, ResultsWarning, RunWriter

    cells = _two_cells(write_suite, registry)
    writer = RunWriter(tmp_path)
    for i, cell in enumerate(cells):
        writer.add(cell, Outcome("ok", row={"metric.x": float(i)}), "cpu", "now")
    lines = (tmp_path / LOG).read_text().splitlines()
    damaged = [lines[0], '{"cell": {"cell_id": "half' + lines[1], "{not json", lines[2]]
    (tmp_path / LOG).write_text("\n".join(damaged) + "\n")
    (tmp_path / "run.json").write_text("{}")
    with pytest.warns(ResultsWarning, match=r"line 3 is not a cell record"):
        run = load_run(tmp_path)
    assert sorted(run.cells["metric.x"]) == [0.0, 1.0, 2.0]


def test_show_prints_a_damaged_log_as_one_warning(write_suite, registry, tmp_path, capsys):
    from bench.cell import Outcome
    from bench.results import LOG, RunWriter

    (cell, *_) = _two_cells(write_suite, registry)
    RunWriter(tmp_path).add(cell, Outcome("ok"), "cpu", "now")
    with open(tmp_path / LOG, "a") as fh:
        fh.write("garbage\n" + (tmp_path / LOG).read_text())
    (tmp_path / "run.json").write_text("{}")
    assert main(["show", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and f"{tmp_path / LOG}: line 2" in " ".join(err.split())


def test_writing_a_cell_costs_the_same_early_and_late(write_suite, registry, tmp_path):
    """Per-cell writing is flat in the run's length (it was 7.2 ms a cell for the
    first 100 and 15.7 ms for cells 900-999 when every table was rewritten)."""
    from bench.cell import Outcome
    from bench.results import RunWriter

    path = write_suite(
        "suite: s\n" + HEAD + "benchmarks:\n  - task: test.behave\n"
        "    matrix: {solver: [test.constant], value: " + str(list(range(2000))) + "}\n"
    )
    cells = load_suite(path, registry).cells
    writer = RunWriter(tmp_path)
    outcome = Outcome("ok", row={"metric.x": 1.0}, samples={"t": [0.1] * 5})
    times = []
    for cell in cells:
        start = time.perf_counter()
        writer.add(cell, outcome, "cpu", "now")
        times.append(time.perf_counter() - start)
    early, late = sorted(times[:200])[100], sorted(times[-200:])[100]  # medians
    assert late < 3 * early + 2e-3, (early, late)
    writer.close()
    assert len(load_run(tmp_path).cells) == 2000


# --- optional dependencies fail soft ----------------------------------------------------

HIDE_TRITON = """
import sys
sys.modules["triton"] = None  # as on macOS, Windows or a CPU container without triton
from bench.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_without_triton_everything_else_works(tmp_path):
    script = tmp_path / "no_triton.py"
    script.write_text(HIDE_TRITON)
    suite = tmp_path / "s.yaml"
    suite.write_text(
        "suite: notriton\ndevice: cpu\nrepeats: 1\nbenchmarks:\n"
        "  - task: ode.harmonic\n    matrix: {solver: [rk4]}\n"
        "  - task: kernels.warp\n    params: {size: [6, 7], batch: 1, channels: 1}\n"
        "    matrix: {backend: [warp.eager, warp.triton]}\n"
    )
    listed = subprocess.run([sys.executable, str(script), "list", "backend"],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    # the table may wrap the note inside its cell: read the words without the borders
    words = [w for w in listed.stdout.split() if w.strip("│┃")]
    assert "unavailable: warp.triton needs the optional module 'triton'" in " ".join(words)
    ran = subprocess.run(
        [sys.executable, str(script), "run", str(suite), "--output", str(tmp_path / "out"),
         "--quiet", "--in-process"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    cells = load_run(tmp_path / "out" / "notriton").cells
    statuses = dict(zip(cells["backend"].fillna("-"), cells["status"]))
    assert statuses == {"-": "ok", "warp.eager": "ok", "warp.triton": "skipped"}
    assert len(cells) == 3


def test_a_prestarted_worker_runs_cells_and_closes_cleanly(write_suite, registry, tmp_path):
    """The worker starts while the suite is validated, from a thread that stays alive
    (Linux's parent-death signal fires when the starting *thread* ends: a worker
    started from a thread that returned was killed under its first cell)."""
    path = write_suite("suite: s\ndevice: cpu\nrepeats: 1\n" + HEAD + ENTRY)
    suite = load_suite(path, registry)
    executor = ProcessExecutor(suite.plugins, suite.base_dir, builtins=False)
    executor.prestart()
    executor._wait_started()
    prestarted = executor._proc.pid
    time.sleep(1.0)  # the starting thread has long finished its start
    run_suite(suite, tmp_path / "run", executor=executor)
    row = load_run(tmp_path / "run").cells.iloc[0]
    assert row["status"] == "ok", row["error"]
    assert row["metric.pid"] == prestarted  # the same worker, not a replacement
    idle = ProcessExecutor(suite.plugins, suite.base_dir, builtins=False)
    idle.prestart()
    idle.close()  # never used: its worker is stopped, not left behind
    assert idle._proc is None


HIDE_TORCHDIFFEQ = """
import sys
sys.modules["torchdiffeq"] = None  # a dependency of one built-in module, broken or missing
from bench.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_builtin_module_that_cannot_import_is_unavailable_not_fatal(tmp_path):
    script = tmp_path / "broken.py"
    script.write_text(HIDE_TORCHDIFFEQ)
    listed = subprocess.run([sys.executable, str(script), "list"], capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    out = " ".join(listed.stdout.split())
    assert "unavailable: plugins.solvers" in out and "kernels.warp" in out  # the rest lists
    suite = tmp_path / "s.yaml"
    suite.write_text("suite: s\nbenchmarks:\n  - task: ode.harmonic\n    matrix: {solver: [rk4]}\n")
    ran = subprocess.run([sys.executable, str(script), "run", str(suite), "--dry-run"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert ran.returncode == 2
    assert "plugin modules that could not be imported: plugins.solvers" in ran.stderr


@pytest.mark.parametrize("command", ["run", "dry-run", "list"])
def test_a_plugin_that_hard_exits_while_importing_is_reported_not_obeyed(tmp_path, capsys, command):
    plugin = tmp_path / "quits.py"
    plugin.write_text("import os\nos._exit(0)  # no exception to catch: the process just ends\n")
    suite = tmp_path / "s.yaml"
    suite.write_text(
        "suite: s\nplugins: [./quits.py]\nbenchmarks:\n"
        "  - task: ode.harmonic\n    matrix: {solver: [rk4]}\n"
    )
    args = {
        "run": ["run", str(suite), "--output", str(tmp_path / "out"), "--quiet"],
        "dry-run": ["run", str(suite), "--dry-run"],
        "list": ["list", "--plugins", str(plugin)],
    }[command]
    assert main(args) == 2  # had this process obeyed os._exit(0), pytest would have ended
    err = " ".join(capsys.readouterr().err.split())
    assert "quits.py" in err and "exit code 0" in err


def test_a_plugin_slow_to_import_is_said_not_silent(tmp_path):
    """A plugin that hangs while importing held bench run without a word: waiting for the
    worker says, once, that the plugins are still importing."""
    plugin = tmp_path / "slow.py"
    plugin.write_text("import time\ntime.sleep(1.5)\n")
    executor = ProcessExecutor([str(plugin)], tmp_path)
    said = []
    try:
        executor.prestart()
        executor.wait_ready(lambda: said.append("slow"), after=0.2)
    finally:
        executor.close()
    assert said == ["slow"]


def test_a_runs_writer_elsewhere_or_unreadable_is_not_called_stopped(tmp_path):
    """A lock free here but written from another host (a network file system may keep
    locks per machine), or a lock file this user cannot read, leaves the run running
    with why; a lock naming a dead pid of this host is stopped."""
    import json
    import socket

    from bench.results import writer_alive

    (tmp_path / "run.json").write_text(json.dumps({"suite": "s", "status": "running"}))
    lock = tmp_path / ".lock"
    lock.write_text("12345@another-node")
    assert (
        writer_alive(tmp_path) == "written from another-node? its lock cannot be probed from here"
    )
    lock.write_text(f"{2**22 + 7}@{socket.gethostname()}")  # no such pid
    assert writer_alive(tmp_path) is False
    lock.write_text(f"{os.getpid()}@{socket.gethostname()}")  # alive, lock not kept
    assert writer_alive(tmp_path) is True
    held = RunLock(tmp_path)
    held.acquire()
    try:
        assert lock.read_text() == f"{os.getpid()}@{socket.gethostname()}"
        assert writer_alive(tmp_path) is True
    finally:
        held.release()
