"""Running a suite's cells as cluster jobs through submitit (SLURM, or local processes).

Each cell is one job of a job array. Inside its job a cell runs exactly as on a
workstation, in a ``ProcessExecutor`` worker: the cell's own timeout, a crash or a hang
ending the cell with its status and what it recorded, the same rows. The runner writes
each row when its job finishes (in the order they finish), so ``--resume`` submits only
what is missing after an interruption.

    bench run suite.yaml --slurm slurm_partition=gpu --slurm gpus_per_node=1

``--slurm KEY=VALUE`` sets any submitit parameter (``timeout_min``, ``mem_gb``,
``cpus_per_task``, ``gpus_per_node``, ``slurm_partition``, ``slurm_array_parallelism``,
...); ``cluster=local`` runs the jobs as local processes (no SLURM needed), as the tests
do. ``timeout_min`` defaults to the longest cell timeout plus 5 minutes for starting.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.cell import Cell, Outcome
from bench.executors import Executor

START_MARGIN_MIN = 5  # job start, imports and worker spawn, on top of the cell timeout
POLL_S = 1.0
#: the jobs of a run not yet recorded, by cell id: what a killed submitter left behind
JOBS_FILE = "jobs.json"
#: how long a resume waits for an earlier submitter's cancelled jobs to end
ORPHAN_WAIT_S = 120.0
SHELLS = ("sh", "dash", "bash")  # what subprocess's shell=True starts submitit through


class SlurmUnavailable(RuntimeError):
    """submitit is not installed."""


def run_cell_job(
    cell: dict[str, Any],
    plugin_specs: list[str],
    base_dir: str,
    cache_dir: str | None,
    builtins: bool,
) -> Outcome:
    """The job's function: one cell in a worker process, as ``bench run`` does locally."""
    from bench.executors import ProcessExecutor

    executor = ProcessExecutor(
        plugin_specs,
        Path(base_dir),
        Path(cache_dir) if cache_dir else None,
        builtins=builtins,
    )
    try:
        outcome = executor.execute(Cell.from_dict(cell))
    finally:
        executor.close()
    if outcome.status == "error" and outcome.error == "worker died from SIGTERM":
        # Inside a job, SIGTERM comes from the scheduler: scancel, the time limit, or
        # preemption (it signals every process of the job).
        outcome.error = (
            "cancelled by the scheduler: the job was sent SIGTERM (scancel, its time limit "
            "or preemption) and its worker died from it"
        )
    return outcome


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence the standard error of the scheduler's commands that submitit runs while
    it polls (file descriptor 2, which child processes inherit)."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class _SacctNotice(logging.Filter):
    """submitit logs "Bypassing sacct error ... status may be inaccurate" twice per poll
    on a cluster without job accounting; say once what it means, then stay quiet."""

    def __init__(self) -> None:
        super().__init__()
        self.said = False

    def filter(self, record: logging.LogRecord) -> bool:
        if "Bypassing sacct error" not in record.getMessage():
            return True
        if self.said:
            return False
        self.said = True
        record.msg = (
            "this cluster has no job accounting (sacct fails): dynbench reads each job's "
            "outcome from the job itself, and a job the scheduler killed from its log "
            "(said once)"
        )
        record.args = ()
        return True


class SlurmExecutor(Executor):
    """Submits cells as a submitit job array and yields their outcomes as jobs finish."""

    def __init__(
        self,
        plugin_specs: list[str],
        base_dir: Path,
        folder: Path,
        parameters: dict[str, Any] | None = None,
        cache_dir: Path | None = None,
        *,
        builtins: bool = True,
    ) -> None:
        try:
            import submitit
        except ImportError:
            raise SlurmUnavailable(
                "running on a cluster needs submitit: pip install 'dynbench[slurm]'"
            ) from None
        params = dict(parameters or {})
        cluster = params.pop("cluster", None)
        self._submitit = submitit
        self._notice = _SacctNotice()
        logging.getLogger("submitit").addFilter(self._notice)
        if cluster is None and not _slurm_here(submitit):
            # submitit's AutoExecutor would fall back to local processes, every cell at
            # once and the SLURM parameters ignored: timings no one asked for
            raise SlurmUnavailable(
                "--slurm: no SLURM scheduler here (srun is not on the PATH), and submitit "
                "would run every cell as a local process, all at once, ignoring the SLURM "
                "parameters; run it where SLURM is, or pass --slurm cluster=local to run "
                "local jobs knowingly"
            )
        self._executor = submitit.AutoExecutor(folder=Path(folder) / "%j", cluster=cluster)
        self.cluster = self._executor.cluster
        # a job array runs as many cells at once as the scheduler gives it: 0 says so
        self.concurrent = int(params.get("slurm_array_parallelism", 0) or 0)
        self._executor.update_parameters(**params)  # unknown names raise here, up front
        self.params = params
        self.plugin_specs = list(plugin_specs)
        self.base_dir = str(base_dir)
        self.cache_dir = str(cache_dir) if cache_dir else None
        self.builtins = builtins
        self.folder = Path(folder)
        self._pending: list[tuple[Any, Cell]] = []

    # --- jobs an earlier submitter left: recorded, and ended on resume ------------------

    def _record_pending(self) -> None:
        """``jobs.json``: the job of each cell not yet recorded, rewritten as jobs end,
        so that a resume after ``kill -9`` of this process knows what still runs."""
        from bench.fileio import atomic_write_bytes

        jobs = {cell.id: str(job.job_id) for job, cell in self._pending}
        path = self.folder / JOBS_FILE
        if not jobs:
            path.unlink(missing_ok=True)
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        data = {"cluster": self.cluster, "jobs": jobs}
        atomic_write_bytes(path, json.dumps(data, sort_keys=True).encode())

    def recover(self) -> list[str]:
        """End the jobs an earlier submitter of this run left running (it was killed
        before it could record or cancel them): each would go on computing and write
        its files into the folder of the cell a resume reruns. Called under the run's
        lock, before any cell's files are cleared; returns the job ids it ended."""
        path = self.folder / JOBS_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            jobs = [str(j) for j in data["jobs"].values()]
            cluster = str(data.get("cluster", self.cluster))
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            logging.getLogger("bench").warning("%s: unreadable, ignored", path)
            path.unlink(missing_ok=True)
            return []
        if cluster == "local":
            ended = [j for j in jobs if _end_local_job(j, self.folder)]
        else:
            ended = _end_slurm_jobs(jobs)
        path.unlink(missing_ok=True)
        return ended

    def run_all(
        self, cells: list[Cell], on_cell_start: Callable[[Cell], None] | None = None
    ) -> Iterator[tuple[Cell, Outcome]]:
        """Submit every cell, then yield ``(cell, outcome)`` as their jobs finish."""
        if not cells:
            return
        longest = max(c.timeout for c in cells)
        params = {
            "name": f"bench-{cells[0].suite}",
            "timeout_min": math.ceil(longest / 60) + START_MARGIN_MIN,
            **self.params,
        }
        self._executor.update_parameters(**params)
        jobs = []
        with self._executor.batch():
            for cell in cells:
                args = (cell.to_dict(), self.plugin_specs, self.base_dir, self.cache_dir)
                jobs.append(self._executor.submit(run_cell_job, *args, self.builtins))
        self._pending = list(zip(jobs, cells))
        self._record_pending()
        for cell in cells:
            if on_cell_start:
                on_cell_start(cell)
        while self._pending:
            with _quiet_stderr():  # sacct's own "accounting storage is disabled", per poll
                finished = [(job, cell) for job, cell in self._pending if job.done()]
            if not finished:
                time.sleep(POLL_S)
                continue
            for pair in finished:
                self._pending.remove(pair)
                outcome = self._outcome(*pair)
                self._record_pending()
                yield pair[1], outcome

    def _outcome(self, job: Any, cell: Cell) -> Outcome:
        try:
            outcome = job.result()
        except self._submitit.core.utils.UncompletedJobError as exc:
            # The scheduler's state says why; the message carries the job's whole log.
            try:
                state = str(job.state).upper()
            except Exception:  # noqa: BLE001 - no state to be had: call it an error
                state = ""
            first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
            logs = f"; logs in {job.paths.folder}"
            if state.startswith("TIMEOUT"):
                return Outcome("timeout", f"job {job.job_id} reached its time limit{logs}")
            if state.startswith("OUT_OF_ME"):
                return Outcome("oom", f"job {job.job_id} ran out of memory{logs}")
            detail = f" ({state})" if state else ""
            return Outcome("error", f"job {job.job_id} failed{detail}: {first[:300]}{logs}")
        if not isinstance(outcome, Outcome):
            return Outcome("error", f"job {job.job_id} returned {type(outcome).__name__}")
        return outcome

    def close(self) -> None:
        """Cancel the jobs not finished (an interrupted run); ``--resume`` reruns them."""
        logging.getLogger("submitit").removeFilter(self._notice)
        for job, _ in self._pending:
            try:
                job.cancel(check=False)
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
        # jobs.json keeps naming them: a resume makes sure they ended.
        self._pending = []


def _end_slurm_jobs(jobs: list[str]) -> list[str]:
    """``scancel`` the jobs, then wait (``ORPHAN_WAIT_S`` at most) until ``squeue`` no
    longer lists them; the ids cancelled."""
    import subprocess

    try:
        subprocess.run(["scancel", *jobs], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    bases = {j.split("_")[0] for j in jobs}
    deadline = time.monotonic() + ORPHAN_WAIT_S
    while time.monotonic() < deadline:
        try:
            listed = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True,
                                    text=True, timeout=60, check=False).stdout  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            break
        if not {line.split("_")[0] for line in listed.split()} & bases:
            break
        time.sleep(POLL_S)
    return jobs


def _end_local_job(job_id: str, folder: Path) -> bool:
    """A local job's id is its controller's pid: end that process and its descendants,
    if it still is our controller (its command line names this run's job folder; a
    reused pid is left alone). SIGINT as submitit's own cancel, SIGKILL after 10 s."""
    import signal

    if not job_id.isdigit() or not _is_our_controller(int(job_id), folder):
        return False
    tree = [int(job_id), *_descendants(int(job_id))]
    for sig, wait in ((signal.SIGINT, 10.0), (signal.SIGKILL, 5.0)):
        for pid in tree:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(_alive(pid) for pid in tree):
            time.sleep(0.1)
        if not any(_alive(pid) for pid in tree):
            break
    return True


def _is_our_controller(pid: int, folder: Path) -> bool:
    """Whether ``pid`` runs submitit's local controller for a job under ``folder``:
    ``python -m submitit.local._local <folder>/<job>``, or the shell submitit starts it
    through when the executor has ``setup`` commands (``sh -c 'setup && python -m
    submitit.local._local ...'``), whose words are read from its command string."""
    import shlex

    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    words = [a.decode(errors="replace") for a in argv]
    if len(words) > 2 and words[1] == "-c" and Path(words[0]).name in SHELLS:
        try:
            words = shlex.split(words[2])
        except ValueError:  # not a command string submitit wrote
            return False
    return "submitit.local._local" in words and any(
        w.startswith(str(folder.resolve())) or w.startswith(str(folder)) for w in words
    )


def _descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (from /proc's parent ids), children first."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            parents[int(stat.parent.name)] = int(text.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found: list[int] = []
    frontier = [pid]
    while frontier:
        children = [c for c, p in parents.items() if p in frontier and c not in found]
        found += children
        frontier = children
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped by its parent, counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _slurm_here(submitit: Any) -> bool:
    """Whether submitit finds a SLURM scheduler (its own test: srun on the PATH)."""
    try:
        return bool(submitit.SlurmExecutor.affinity() > 0)
    except Exception:  # an older submitit: the test it makes
        import shutil

        return shutil.which("srun") is not None
