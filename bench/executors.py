"""Executors: how a run's cells get run, behind one protocol (``Executor``).

- ``ProcessExecutor`` (default): cells run in a spawned worker process, reused
  from cell to cell so torch is imported once; a cell past its timeout gets the
  worker killed (status ``timeout``) and a fresh worker starts for the next
  cell; a worker that dies (segfault, OOM killer) ends its cell as ``error``
  (or ``oom`` for a SIGKILL while memory was near the limit: the Linux OOM killer's
  signal) and is replaced.
- ``ParallelExecutor``: several such workers at once (``--workers``, ``--gpus``).
- ``InProcessExecutor``: cells run in this process, for debugging (no timeout).
- ``bench.slurm.SlurmExecutor``: each cell a cluster job (submitit).

An executor owns its workers: it starts them (``ProcessExecutor.prestart`` while
the suite is validated) and ends them in ``close()``, which is safe to call more
than once; ``with executor:`` closes it on every path.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import multiprocessing.connection as mp_connection
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.cell import Cell, Outcome
from bench.context import CellRecord
from bench.plugins import exit_description
from bench.registry import Registry
from bench.worker import keep_partial, run_cell, worker_main

# A worker imports torch and builds the registry before its first cell; that is
# not the cell's time, so it gets its own allowance.
WORKER_START_TIMEOUT = 180.0


class WorkerStartError(RuntimeError):
    """A worker that could not start (its plugins failed to load)."""


class Executor:
    """How a run's cells get run: the one protocol ``run_suite`` uses.

    ``run_all(cells, on_cell_start)`` yields ``(cell, outcome)`` as cells finish, in any
    order, calling ``on_cell_start`` as each begins; ``close()`` ends the executor (and
    what it still runs: ``--resume`` reruns those cells). An executor that runs one
    cell at a time implements ``execute(cell)`` and inherits ``run_all``; one that runs
    cells concurrently (worker pools, a cluster) implements ``run_all`` itself.
    ``cluster`` names the scheduler where there is one (recorded in run.json).
    Build one with ``build_executor``.
    """

    cluster: str | None = None
    #: how many cells it runs at once (recorded in run.json: cells side by side share the
    #: machine, and their times are not those of one cell alone)
    concurrent: int = 1
    #: called with ``(cell, point)`` as a running cell records a curve point
    #: (``(name, step, time, value)``, at most every half second from a worker): what a
    #: display shows of a long cell's progress. Executors that run one cell at a time
    #: call it; others leave it unset.
    on_progress: Callable[[Cell, tuple[Any, ...]], None] | None = None

    def execute(self, cell: Cell) -> Outcome:
        raise NotImplementedError(f"{type(self).__name__} runs cells through run_all")

    def run_all(
        self, cells: list[Cell], on_cell_start: Callable[[Cell], None] | None = None
    ) -> Iterator[tuple[Cell, Outcome]]:
        for cell in cells:
            if on_cell_start:
                on_cell_start(cell)
            yield cell, self.execute(cell)

    def close(self) -> None:
        """End the executor and what it still runs; safe to call again."""

    def kill(self) -> None:
        """Stop what it runs now, without waiting (``close`` still follows)."""

    def recover(self) -> list[str]:
        """End what an earlier, killed run of the same folder left running (a cluster's
        jobs); ``run_suite`` calls it under the run's lock before clearing any cell's
        files. Returns what it ended."""
        return []

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is not None:  # interrupted or failed: nothing is waited for
            self.kill()
        self.close()


class InProcessExecutor(Executor):
    """Cells run in this process, one after another (``bench run --in-process``).

    As a worker does after its imports, ``run_all`` freezes the heap (``gc.freeze``)
    while it runs: the full collection after each cell then skips torch, the plugins
    and the suite (a trivial cell: 110 -> 1.3 ms, 2-core box). Not where this process
    froze its heap already.
    """

    def __init__(self, registry: Registry, cache_dir: Path | None = None) -> None:
        self.registry = registry
        self.cache_dir = cache_dir

    def execute(self, cell: Cell) -> Outcome:
        report = self.on_progress

        def listener(event: tuple[Any, ...]) -> None:
            if report is not None and event[0] == "curve":
                report(cell, event[1])

        return run_cell(cell, self.registry, self.cache_dir, listener if report else None)

    def run_all(
        self, cells: list[Cell], on_cell_start: Callable[[Cell], None] | None = None
    ) -> Iterator[tuple[Cell, Outcome]]:
        froze = gc.get_freeze_count() == 0
        if froze:
            gc.collect()
            gc.freeze()
        try:
            yield from super().run_all(cells, on_cell_start)
        finally:
            if froze:  # the process gets its heap back (frozen objects are never freed)
                gc.unfreeze()


class ProcessExecutor(Executor):
    def __init__(
        self,
        plugin_specs: list[str],
        base_dir: Path,
        cache_dir: Path | None = None,
        *,
        builtins: bool = True,
        env: dict[str, str] | None = None,
        require_cuda: bool = False,
    ) -> None:
        self.builtins = builtins
        self.env = dict(env or {})  # set in the worker before it imports torch
        self.require_cuda = require_cuda  # a worker that sees no GPU refuses to start
        self.plugin_specs = list(plugin_specs)
        self.base_dir = str(base_dir)
        self.cache_dir = str(cache_dir) if cache_dir else None
        self._ctx = mp.get_context("spawn")
        self._proc: Any = None
        self._conn: Any = None
        self._used = False  # the live worker has run a cell already
        # the live worker has a cell whose outcome is not read yet: an interrupted
        # execute leaves it set, and close then kills at once instead of waiting 5 s
        # for a worker that is not listening
        self._busy = False
        self._starting: threading.Event | None = None
        self._launching: Any = None  # a worker started but not ready yet
        self._start_error: BaseException | None = None
        self._hold = threading.Event()  # set at close: the prestarting thread may end

    def prestart(self) -> None:
        """Start the worker in the background (it imports torch and the plugins while
        the caller does other work); ``execute`` waits for it.

        The starting thread stays alive until ``close``: Linux's parent-death signal,
        which the worker asks for, fires when the *thread* that started it exits.
        """
        started = threading.Event()
        self._hold = threading.Event()

        def start() -> None:
            try:
                self._start()
            except BaseException as exc:  # noqa: BLE001 - handed to execute()
                self._start_error = exc
            started.set()
            self._hold.wait()

        self._starting = started
        threading.Thread(target=start, daemon=True).start()

    def wait_ready(self, slow: Callable[[], None] | None = None, after: float = 15.0) -> None:
        """Wait for a prestarted worker; ``WorkerStartError`` if it could not start.
        ``slow`` is called once if it is not ready within ``after`` seconds (a plugin
        slow or stuck in its imports: said, not silence)."""
        starting = self._starting
        if slow is not None and starting is not None and not starting.wait(after):
            slow()
        self._wait_started()

    def _wait_started(self) -> None:
        if self._starting is not None:
            self._starting.wait()
            self._starting = None
            if self._start_error is not None:
                error, self._start_error = self._start_error, None
                raise error

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(
            target=worker_main,
            args=(
                child,
                self.plugin_specs,
                self.base_dir,
                self.cache_dir,
                self.builtins,
                self.env,
                self.require_cuda,
            ),
            daemon=True,
        )
        proc.start()
        self._launching = proc
        child.close()
        try:
            self._handshake(proc, parent)
        finally:
            self._launching = None

    def _restart(self) -> None:
        """Start a worker from a thread of its own that lives until ``close``, as
        ``prestart`` does: the parent-death signal the worker asks for fires when the
        thread that started it ends, and the thread calling ``execute`` may end before
        the worker should (a ``ParallelExecutor`` thread ends when its queue is empty;
        the next ``run_all`` of a tuned run then sent its first cell to a dying worker)."""
        self._hold.set()  # the thread that started the worker now gone may end
        self.prestart()
        self._wait_started()

    def _handshake(self, proc: Any, parent: Any) -> None:
        if not parent.poll(WORKER_START_TIMEOUT):
            _kill(proc)
            raise WorkerStartError(f"worker did not start within {WORKER_START_TIMEOUT:.0f} s")
        try:
            kind, payload = parent.recv()
        except EOFError:
            proc.join(5)
            named = (
                f" loading the plugins {', '.join(self.plugin_specs)}" if self.plugin_specs else ""
            )
            msg = (
                f"worker ended while starting{named} ({exit_description(proc.exitcode)}): a "
                "plugin that exits or crashes the process while importing does this"
            )
            raise WorkerStartError(msg) from None
        if kind != "ready":
            _kill(proc)
            raise WorkerStartError(f"worker could not start: {payload}")
        self._proc, self._conn = proc, parent
        self._used = self._busy = False

    def execute(self, cell: Cell) -> Outcome:
        self._wait_started()
        if cell.fresh_worker and self._used:
            self.close()  # a cell that asked for a process no other cell has touched
        if self._proc is None or not self._proc.is_alive():
            self._restart()
        self._used = True
        start = time.perf_counter()
        deadline = start + cell.timeout
        partial = CellRecord()  # what the cell has recorded so far (streamed)
        self._busy = True  # before sending: a send cut short leaves a half-read stream
        self._conn.send(cell.to_dict())
        memory = _memory_seen(self._proc.pid)  # last look at the worker's memory
        looked = time.perf_counter()
        while True:
            # Wait on the pipe, and look at the process itself every half second: a
            # worker that dies while a child it forked holds the pipe (and the process
            # sentinel) open is seen dead by waitpid, not reported as a timeout.
            remaining = max(0.0, deadline - time.perf_counter())
            ready = mp_connection.wait([self._conn], min(remaining, 0.5))
            if time.perf_counter() - looked >= 0.5:  # not per message: /proc reads cost
                memory = _memory_seen(self._proc.pid) or memory
                looked = time.perf_counter()
            if not ready and remaining > 0.5 and self._proc.is_alive():
                continue
            if not ready and not self._proc.is_alive():
                # Dead: take what it sent before dying, then say how it died.
                done = self._drain(partial)
                if done is not None:
                    return done
                code = self._discard(grace=5.0)
                outcome = _death_outcome(code, time.perf_counter() - start, memory)
                keep_partial(outcome, partial)
                return outcome
            # A cell streaming values non-stop must not outrun its timeout.
            if not ready or time.perf_counter() > deadline + 0.5:
                self._discard()
                outcome = Outcome(
                    "timeout",
                    f"no result within the {cell.timeout:g} s timeout; worker killed",
                    wall=time.perf_counter() - start,
                )
                keep_partial(outcome, partial)
                return outcome
            try:
                kind, payload = self._conn.recv()
            except (EOFError, OSError):
                # The pipe closed because the worker is dying: let it finish dying so
                # its own exit status (e.g. SIGSEGV) is read, not the SIGKILL we would add.
                code = self._discard(grace=5.0)
                outcome = _death_outcome(code, time.perf_counter() - start, memory)
                keep_partial(outcome, partial)
                return outcome
            if kind == "partial":
                for event in payload:
                    partial.apply(event)
                points = [e[1] for e in payload if e[0] == "curve"]
                if points and self.on_progress is not None:
                    self.on_progress(cell, points[-1])
                continue
            self._busy = False
            if cell.fresh_worker:
                self.close()  # no later cell inherits what this one changed
            return payload

    def _drain(self, partial: CellRecord) -> Outcome | None:
        """Read what a dead worker left in the pipe; its outcome if it sent one."""
        try:
            while self._conn.poll(0):
                kind, payload = self._conn.recv()
                if kind == "partial":
                    for event in payload:
                        partial.apply(event)
                elif kind == "done":
                    self._discard()
                    return payload
        except (EOFError, OSError):
            pass
        return None

    def _discard(self, grace: float = 0.0) -> int | None:
        proc, self._proc = self._proc, None
        self._busy = False
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if proc is None:
            return None
        if grace:
            proc.join(grace)
        return _kill(proc)

    def close(self) -> None:
        try:
            self._wait_started()
        except BaseException:  # noqa: BLE001 - a worker that failed to start: nothing to close
            pass
        proc, conn = self._proc, self._conn
        if proc is not None and conn is not None and proc.is_alive() and not self._busy:
            try:
                conn.send(None)
                proc.join(5)
            except (BrokenPipeError, OSError):
                pass
        self._discard()
        self._hold.set()  # only now may a prestarting thread end (see prestart)

    def kill(self) -> None:
        """Kill the worker now, without touching the pipe another thread may be reading
        (its ``execute`` then returns a death outcome that nobody records), or while it
        starts (``close`` then need not wait for its imports)."""
        for proc in (self._proc, self._launching):
            if proc is not None and proc.is_alive():
                proc.kill()


class ParallelExecutor(Executor):
    """Several worker processes at once, one per slot; each cell goes to a free one.

    A slot is the environment of its worker: ``{"CUDA_VISIBLE_DEVICES": "2"}`` pins it to
    one GPU (``bench run --gpus 0,1,2,3``: one worker per GPU, cells on ``cuda`` or
    ``auto`` land on that worker's GPU), ``{}`` is a plain worker (``--workers N``;
    on CPU, parallel cells share the cores, so their times are not those of a quiet
    machine). Each worker keeps the protocol of ``ProcessExecutor``.
    """

    def __init__(
        self,
        plugin_specs: list[str],
        base_dir: Path,
        slots: list[dict[str, str]],
        cache_dir: Path | None = None,
        *,
        builtins: bool = True,
        require_cuda: bool = False,
    ) -> None:
        if not slots:
            raise ValueError("ParallelExecutor needs at least one slot")
        self.concurrent = len(slots)
        self.executors = [
            ProcessExecutor(
                plugin_specs,
                base_dir,
                cache_dir,
                builtins=builtins,
                env=env,
                require_cuda=require_cuda,
            )
            for env in slots
        ]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def run_all(
        self, cells: list[Cell], on_cell_start: Callable[[Cell], None] | None = None
    ) -> Iterator[tuple[Cell, Outcome]]:
        todo: queue.Queue[Cell] = queue.Queue()
        for cell in cells:
            todo.put(cell)
        events: queue.Queue[tuple[str, Cell | None, Any]] = queue.Queue()
        # a fresh event for each call: the runner calls run_all again for a tuned
        # entry's test cells, and the last call's stop must not end this one
        self._stop = stop = threading.Event()

        def serve(executor: ProcessExecutor) -> None:
            while not stop.is_set():
                try:
                    cell = todo.get_nowait()
                except queue.Empty:
                    return
                events.put(("start", cell, None))
                try:
                    events.put(("done", cell, executor.execute(cell)))
                except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                    events.put(("failed", cell, exc))
                    return

        self._threads = [
            threading.Thread(target=serve, args=(e,), daemon=True) for e in self.executors
        ]
        for thread in self._threads:
            thread.start()
        remaining = len(cells)
        try:
            while remaining:
                try:
                    kind, cell, payload = events.get(timeout=1.0)
                except queue.Empty:
                    if any(t.is_alive() for t in self._threads) or not events.empty():
                        continue
                    raise RuntimeError(
                        f"every worker thread stopped with {remaining} cells not run"
                    ) from None
                if kind == "start":
                    if on_cell_start and cell is not None:
                        on_cell_start(cell)
                    continue
                if kind == "failed":
                    raise payload
                remaining -= 1
                yield cell, payload
        finally:
            stop.set()

    def close(self) -> None:
        """Stop handing out cells, kill workers still busy (their cells are not
        recorded; ``--resume`` reruns them), wait for the threads, then close."""
        self._stop.set()
        busy = [t for t in self._threads if t.is_alive()]
        if busy:
            for executor in self.executors:
                executor.kill()
            for thread in busy:
                thread.join(15)
        for executor in self.executors:
            executor.close()

    def kill(self) -> None:
        for executor in self.executors:
            executor.kill()


def _kill(proc: Any) -> int | None:
    """Kill a worker and its process group (children a cell forked die with it)."""
    if proc.is_alive():
        proc.kill()
    proc.join(10)
    if proc.pid is not None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the worker made itself the group leader
        except (ProcessLookupError, PermissionError, OSError):
            pass
    return proc.exitcode


def _death_outcome(
    code: int | None, wall: float, memory: tuple[int, int, int] | None = None
) -> Outcome:
    """How a worker died. A SIGKILL is ``oom`` only when memory was near the limit at
    the last look (the kernel's out-of-memory killer sends it, and so do people and
    schedulers): ``memory`` is (worker RSS, memory available, memory total) in bytes."""
    if code is not None and code < 0:
        sig = -code
        try:
            signame = signal.Signals(sig).name
        except ValueError:
            signame = f"signal {sig}"
        if sig == signal.SIGKILL:
            if memory is None:
                return Outcome("error", "worker killed by SIGKILL (its memory was not seen)",
                               wall=wall)  # fmt: skip
            rss, available, total = memory
            seen = (
                f"resident {rss / 2**30:.2f} GiB, {available / 2**30:.2f} GiB of "
                f"{total / 2**30:.1f} GiB available at the last look"
            )
            if total and available < 0.1 * total:
                return Outcome(
                    "oom",
                    f"worker killed by SIGKILL with memory near the limit ({seen}): most "
                    "likely the kernel's out-of-memory killer",
                    wall=wall,
                )
            return Outcome(
                "error",
                f"worker killed by SIGKILL with memory not near the limit ({seen}): sent by "
                "a person, a scheduler or another program, or a sudden allocation",
                wall=wall,
            )
        return Outcome("error", f"worker died from {signame}", wall=wall)
    return Outcome("error", f"worker exited unexpectedly (exit code {code})", wall=wall)


def _memory_seen(pid: int | None) -> tuple[int, int, int] | None:
    """(RSS of ``pid``, MemAvailable, MemTotal) in bytes, from /proc; None elsewhere."""
    if pid is None:
        return None
    try:
        rss = 0
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
        info = {}
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("MemAvailable", "MemTotal"):
                info[key] = int(rest.split()[0]) * 1024
        return rss, info.get("MemAvailable", 0), info.get("MemTotal", 0)
    except (OSError, ValueError, IndexError):
        return None
