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
        self._executor = submitit.AutoExecutor(folder=Path(folder) / "%j", cluster=cluster)
        self.cluster = self._executor.cluster
        self._executor.update_parameters(**params)  # unknown names raise here, up front
        self.params = params
        self.plugin_specs = list(plugin_specs)
        self.base_dir = str(base_dir)
        self.cache_dir = str(cache_dir) if cache_dir else None
        self.builtins = builtins
        self._pending: list[tuple[Any, Cell]] = []

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
                yield pair[1], self._outcome(*pair)

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
        self._pending = []
