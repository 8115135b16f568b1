"""Running a suite: the executor a run asks for (``build_executor``) and the run
itself (``run_suite``): which cells are left, ``run.json``, each finished cell
written at once. How cells run is ``bench.executors``'s."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.cell import SUPERSEDED, TEST, Cell
from bench.executors import (
    Executor,
    InProcessExecutor,
    ParallelExecutor,
    ProcessExecutor,
)
from bench.plugins import plugin_sources
from bench.registry import Registry
from bench.results import RUN_JSON, RunLock, RunWriter, atomic_write_json
from bench.resume import check as check_resume
from bench.resume import plugins_changed
from bench.suite import Suite
from bench.sysinfo import run_metadata
from bench.worker import resolve_device


class ExecutorChoiceError(ValueError):
    """Options that do not make an executor (say ``--gpus x`` or two kinds at once)."""


def build_executor(
    suite: Suite,
    run_dir: Path,
    *,
    slurm: dict[str, Any] | None = None,
    gpus: str | None = None,
    workers: int | None = None,
    in_process: bool = False,
    prestarted: ProcessExecutor | None = None,
) -> Executor:
    """The executor for one run: a SLURM job array (``slurm``: submitit parameters),
    one worker per GPU (``gpus``: "0,1,..."), ``workers`` parallel CPU workers, this
    process (``in_process``), or one reused worker process (the default; ``prestarted``
    is one already importing the suite's plugins). Raises ExecutorChoiceError."""
    chosen = [
        name
        for name, given in (
            ("--slurm", slurm is not None),
            ("--in-process", in_process),
            ("--gpus", gpus is not None),
            ("--workers", workers is not None),
        )
        if given
    ]
    if len(chosen) > 1:
        raise ExecutorChoiceError(f"{' and '.join(chosen)} exclude each other")
    if slurm is not None:
        from bench.slurm import SlurmExecutor, SlurmUnavailable

        try:
            return SlurmExecutor(suite.plugins, suite.base_dir, run_dir / "slurm", slurm)
        except SlurmUnavailable as exc:
            raise ExecutorChoiceError(str(exc)) from None
        except (ValueError, TypeError, NameError) as exc:  # submitit refuses a name
            raise ExecutorChoiceError(f"--slurm: {exc}") from None
    if gpus is not None:
        return _gpu_executor(suite, gpus)
    if workers is not None:
        if workers < 1:
            raise ExecutorChoiceError(f"--workers {workers}: expected 1 or more")
        return ParallelExecutor(suite.plugins, suite.base_dir, [{} for _ in range(workers)])
    if in_process:
        from bench.plugins import get_plugin_manager

        return InProcessExecutor(
            Registry(get_plugin_manager(suite.plugins, base_dir=suite.base_dir))
        )
    return prestarted or ProcessExecutor(suite.plugins, suite.base_dir)


def new_run_id() -> str:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(2)}"


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


Callback = Callable[[Cell, dict[str, Any]], None]


def _gpu_executor(suite: Suite, gpus: str) -> ParallelExecutor:
    """One worker per listed GPU, each pinned to it (``--gpus 0,1,2,3``)."""
    ids = [g.strip() for g in gpus.split(",")]
    if not all(g.isdigit() for g in ids) or len(set(ids)) != len(ids):
        raise ExecutorChoiceError(f"--gpus {gpus!r}: expected distinct GPU numbers, e.g. 0,1,2,3")
    pinned = sorted({c.device for c in suite.cells if c.device.startswith("cuda:")})
    if pinned:
        raise ExecutorChoiceError(
            f"--gpus assigns each cell a GPU, but the suite names {', '.join(pinned)}: "
            "use device: cuda (or auto) in the suite"
        )
    # A worker pinned to a GPU that does not exist would see no CUDA and quietly skip
    # (device: cuda) or run on CPU (auto) every cell it takes: refuse instead.
    require_cuda = any(c.device in ("cuda", "auto") for c in suite.cells)
    slots = [{"CUDA_VISIBLE_DEVICES": g} for g in ids]
    return ParallelExecutor(suite.plugins, suite.base_dir, slots, require_cuda=require_cuda)


def run_suite(
    suite: Suite,
    run_dir: Path,
    *,
    executor: Executor,
    resume: bool = False,
    on_start: Callable[[list[Cell], int], None] | None = None,
    on_cell_start: Callable[[Cell], None] | None = None,
    on_cell_done: Callback | None = None,
    command: str = "",
    retry_failed: bool = False,
    on_note: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every cell not already in ``run_dir`` and return all rows.

    ``executor`` has ``execute(cell) -> Outcome`` and ``close()``; one that runs cells
    concurrently (``bench.slurm.SlurmExecutor``) also has ``run_all(cells,
    on_cell_start)``, yielding ``(cell, outcome)`` as cells finish.

    ``on_note(text)`` gets what a resume should say (a suite that grew, a plugin file
    edited since the run started); a resume it must not make raises
    ``bench.resume.ResumeRefused`` before anything in the folder changes.

    ``on_start(todo, done)`` is called before each stage (a tuned run's test cells are a
    second) with the cells about to run and how many the folder already holds.

    Each finished cell is written at once. ``run.json`` is written at the start
    (status ``running``), again before each stage of a tuned run (its ``tuning``
    records: the choices made so far) and at the end (``complete`` or
    ``interrupted``).
    """
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    lock = RunLock(Path(run_dir))
    lock.acquire()  # a second writer of this folder gets an error naming the first
    try:
        return _run_locked(
            suite, Path(run_dir), executor, resume, retry_failed, command,
            on_start, on_cell_start, on_cell_done, on_note,
        )  # fmt: skip
    finally:
        lock.release()


def _run_locked(
    suite: Suite,
    run_dir: Path,
    executor: Executor,
    resume: bool,
    retry_failed: bool,
    command: str,
    on_start: Callable[[list[Cell], int], None] | None,
    on_cell_start: Callable[[Cell], None] | None,
    on_cell_done: Callback | None,
    on_note: Callable[[str], None] | None,
) -> list[dict[str, Any]]:
    writer = RunWriter(run_dir, resume=resume, retry_failed=retry_failed)
    previous = _previous_meta(run_dir) if resume else {}
    sources = plugin_sources(suite.plugins, suite.base_dir)  # read once: check and run.json
    if resume:  # refused (ResumeRefused) before anything in the folder changes
        for note in check_resume(suite, writer.rows, previous, sources):
            if on_note:
                on_note(note)
        executor.recover()  # before clearing files an orphaned job could still write
    todo = _not_done(suite.cells, writer)
    meta_path = Path(run_dir) / RUN_JSON
    meta = _start_meta(suite, run_dir, previous if resume else None, sources)
    if command:
        meta["command"] = command
    # With SLURM, "devices" and "host" describe the submitting machine; each row's
    # `device` column is resolved where the cell ran.
    meta["executor"] = type(executor).__name__
    meta["concurrent"] = executor.concurrent
    if executor.cluster:
        meta["cluster"] = executor.cluster
    atomic_write_json(meta_path, meta)
    status = "interrupted"
    try:
        # the cells, then a tuned entry's test cells once its validation is recorded
        todo = todo or _not_done(_chosen_test_cells(suite, writer), writer)
        while True:
            if suite.tunings:
                # the choices made so far, in run.json and the roles before their test
                # cells run: a run killed outright (kill -9: no close) still says what
                # each chose, and no test cell of an old choice reads as reported
                _settle_roles(suite, writer)
                meta["tuning"] = _records(suite, writer.rows)
                atomic_write_json(meta_path, meta)
            if on_start:
                on_start(todo, len(writer.done_ids()))
            outcomes = executor.run_all(todo, on_cell_start)
            try:
                for cell, outcome in outcomes:
                    device = outcome.device or resolve_device(cell.device)
                    row = writer.add(cell, outcome, device, now_iso())
                    if on_cell_done:
                        on_cell_done(cell, row)
            finally:
                outcomes.close()  # stops a concurrent executor handing out cells
            todo = _not_done(_chosen_test_cells(suite, writer), writer)
            if not todo:
                break
        status = "complete"
    finally:
        # Each step runs whatever the one before it raised (a full disk fails them all);
        # an exception already on its way out wins, else the first failure is raised.
        # The log keeps what finished either way.
        rows = writer.rows  # live: the roles _settle_roles sets show in them
        failed = _each(executor.close, lambda: _settle_roles(suite, writer), writer.close)
        meta["status"] = "interrupted" if failed else status
        if suite.tunings:
            meta["tuning"] = _records(suite, rows)
        superseded = sum(row.get("role") == SUPERSEDED for row in rows.values())
        counts = {"total": _planned(suite, rows), "finished": len(writer.cells) - superseded}
        if superseded:
            counts["superseded"] = superseded
        failed = failed or _each(lambda: _finish_meta(meta_path, meta, counts))
        if failed and status == "complete":  # nothing else is on its way out
            raise failed
    return writer.cells


def _records(suite: Suite, rows: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """run.json's ``tuning``: each tuned configuration's scores and choice from the
    recorded rows (by cell id)."""
    return [tuning.record(rows) for tuning in suite.tunings]


def _not_done(cells: list[Cell], writer: RunWriter) -> list[Cell]:
    """The cells the run folder has no row for, each with its files folder emptied:
    what an earlier attempt that never finished (a killed run) left there goes."""
    done = writer.done_ids()
    todo = []
    for cell in cells:
        if cell.id not in done:
            writer.clear_files(cell.id)
            todo.append(replace(cell, files_dir=str(writer.files_dir(cell.id))))
    return todo


def _chosen_test_cells(suite: Suite, writer: RunWriter) -> list[Cell]:
    """Each tuned configuration's test cells, for the setting its recorded validation
    cells chose (none while they are missing, or when no setting qualified), interleaved:
    every configuration's first test cell, then every second one, and so on (seed by
    seed), so that the configurations' test cells run side by side in time and their
    times compare under one load, as a time ratio asks."""
    rows = writer.rows
    lists = []
    for tuning in suite.tunings:
        chosen, _ = tuning.choose(rows)
        if chosen is not None:
            lists.append(tuning.test[chosen])
    return [cell for group in itertools.zip_longest(*lists) for cell in group if cell is not None]


def _settle_roles(suite: Suite, writer: RunWriter) -> None:
    """Each tuned configuration's recorded test cells are ``test`` for the setting its
    validation now chooses and ``superseded`` for any other: ``--retry-failed`` can run a
    failed validation cell again and move the choice after the old choice's test cells
    ran. They stay in the folder, measured; tables and verdicts leave them out
    (``bench.tuned``). While validation is incomplete every recorded test cell waits as
    superseded; it is ``test`` again (and not run again) if the choice comes back."""
    rows = writer.rows
    for tuning in suite.tunings:
        chosen, _ = tuning.choose(rows)
        for index, cells in enumerate(tuning.test):
            for cell in cells:
                if cell.id in rows:
                    writer.set_role(cell.id, TEST if index == chosen else SUPERSEDED)


def _planned(suite: Suite, rows: Mapping[str, dict[str, Any]]) -> int:
    """The rows the run is to record (``rows``: those recorded, by cell id): the cells,
    then each tuned configuration's test cells for the setting its recorded validation
    chose; none where no setting qualified, and one setting's worth while its
    validation is incomplete."""
    total = len(suite.cells)
    for tuning in suite.tunings:
        chosen, scores = tuning.choose(rows)
        if chosen is not None:
            total += len(tuning.test[chosen])
        elif len(scores) < len(tuning.settings) and tuning.test:
            total += len(tuning.test[0])
    return total


def _each(*steps: Callable[[], object]) -> BaseException | None:
    """Run every step; the first exception raised, if any."""
    first: BaseException | None = None
    for step in steps:
        try:
            step()
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            first = first or exc
    return first


def _finish_meta(path: Path, meta: dict[str, Any], counts: dict[str, int]) -> None:
    meta["end"] = now_iso()
    meta["cells"] = counts
    atomic_write_json(path, meta)


def _previous_meta(run_dir: Path) -> dict[str, Any]:
    """The ``run.json`` a resumed run wrote before (empty where it is missing or not a
    JSON object)."""
    import json

    meta_path = Path(run_dir) / RUN_JSON
    previous: dict[str, Any] = {}
    if meta_path.exists():
        try:
            previous = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            previous = {}
        if not isinstance(previous, dict):
            previous = {}
        if not isinstance(previous.get("resumed", []), list):
            previous["resumed"] = []
    return previous


def _start_meta(
    suite: Suite, run_dir: Path, previous: dict[str, Any] | None, sources: list[dict[str, str]]
) -> dict[str, Any]:
    """run.json at the start; ``previous``: a resumed run's earlier one (None: a new run);
    ``sources``: the suite's ``plugin_sources``."""
    resume = previous is not None
    previous = previous or {}
    devices = sorted({resolve_device(c.device) for c in suite.cells})
    meta = run_metadata(devices)
    meta.update(
        {
            "suite": suite.name,
            "suite_file": os.path.abspath(suite.source),
            "suite_text": suite.text,
            "run_id": Path(run_dir).name,
            "headlines": suite.headlines,
            "start": previous.get("start", now_iso()),
            "status": "running",
        }
    )
    meta["plugin_files"] = sources
    if resume:
        meta["resumed"] = previous.get("resumed", []) + [now_iso()]
        changes = previous.get("plugin_changes")
        changes = changes if isinstance(changes, list) else []
        for spec, before, now in plugins_changed(previous, meta["plugin_files"]):
            changes.append({"at": meta["resumed"][-1], "spec": spec, "sha256_before": before,
                            "sha256": now})  # fmt: skip
        if changes:
            meta["plugin_changes"] = changes
        # how each earlier invocation ran its cells: a run begun with one worker and
        # resumed with two keeps both (the last one's are at the top level)
        earlier = previous.get("earlier_runs")
        earlier = earlier if isinstance(earlier, list) else []
        how = ("command", "executor", "concurrent", "cluster", "environment", "load")
        earlier.append(
            {"until": meta["resumed"][-1], **{k: previous[k] for k in how if k in previous}}
        )
        meta["earlier_runs"] = earlier
        history = previous.get("suite_history")
        history = history if isinstance(history, list) else []
        if previous.get("suite_text") not in (None, suite.text):  # grown (bench.resume)
            history.append({"until": meta["resumed"][-1], "suite_text": previous["suite_text"]})
        if history:
            meta["suite_history"] = history
    return meta
