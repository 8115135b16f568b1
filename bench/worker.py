"""Running one cell, in whatever process the executor chose.

``run_cell`` never raises for a plugin's failure: it returns an outcome with a
status (ok, error, oom, diverged, skipped) and the message. Timeouts are the
parent's business (it kills the worker).
"""

from __future__ import annotations

import gc
import math
import os
import random
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from bench.base import Diverged, SkipCell
from bench.cell import Cell, Outcome
from bench.components import build, nested, passed_down
from bench.context import CellContext, CellRecord
from bench.params import ParamError
from bench.registry import Registry
from bench.state import ProcessState


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda:0`` when CUDA is available, else ``cpu``; ``cuda`` -> ``cuda:0``."""
    import torch

    if device == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        device = "cuda:0"
    return device


def _current_threads() -> int | None:
    try:
        import torch

        return torch.get_num_threads()
    except ImportError:
        return None


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


_DEFAULT_THREADS: int | None = None


def _set_threads(threads: int | None) -> None:
    """Apply the cell's thread count; a cell without one gets torch's default back
    (workers are reused, so one cell's setting must not leak into the next)."""
    global _DEFAULT_THREADS
    import torch

    if _DEFAULT_THREADS is None:
        _DEFAULT_THREADS = torch.get_num_threads()
    wanted = threads or _DEFAULT_THREADS
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)


def _where(exc: BaseException) -> str:
    """The innermost frame outside the harness, as ``file:line in func``."""
    frames = traceback.extract_tb(exc.__traceback__)
    here = str(Path(__file__).parent)
    inner = [f for f in frames if not f.filename.startswith(here)] or frames
    if not inner:
        return ""
    frame = inner[-1]
    filename = frame.filename
    try:
        filename = os.path.relpath(filename)
    except ValueError:
        pass
    if filename.startswith(".."):
        filename = frame.filename
    return f"{filename}:{frame.lineno} in {frame.name}"


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except ImportError:
        pass
    text = str(exc).lower()
    # CUDA: "out of memory"; torch's CPU allocator: "can't allocate memory"
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )


def _noted(exc: BaseException, message: str) -> str:
    """``message`` with the notes a task added on the way out (``bench.add_note``:
    where it was, an untimed warm-up say)."""
    notes = [str(n) for n in getattr(exc, "__notes__", None) or []]
    return f"{message} ({'; '.join(notes)})" if notes else message


def run_cell(
    cell: Cell,
    registry: Registry,
    cache_dir: Path | None = None,
    listener: Any = None,
) -> Outcome:
    """Instantiate the cell's plugins and run its task; classify any failure.

    A task that fails part-way keeps what it measured before: the times, metrics and
    curves recorded until then land in the row beside the status and the message (a
    forward time before a backward OOM, a loss curve up to the divergence).
    ``listener`` receives each value as it is recorded (see ``CellContext.listener``).
    """
    start = time.perf_counter()
    holder: list[CellContext] = []
    state = ProcessState.capture()
    try:
        ctx = _run(cell, registry, cache_dir, holder, listener)
    except SkipCell as exc:
        result = Outcome("skipped", _noted(exc, str(exc)))
    except Diverged as exc:
        result = Outcome("diverged", _noted(exc, str(exc)))
    except ParamError as exc:
        result = Outcome("error", _noted(exc, f"ParamError: {exc}"))
    except BaseException as exc:  # noqa: BLE001 - every plugin failure becomes a status
        if isinstance(exc, KeyboardInterrupt):
            raise
        status = "oom" if _is_oom(exc) else "error"
        message = _noted(exc, f"{type(exc).__name__}: {exc}".strip())
        where = _where(exc)
        result = Outcome(status, f"{message} (at {where})" if where else message)
        result.traceback = "".join(traceback.format_exception(exc))
    else:
        result = _finish(ctx)
    finally:
        state.restore()  # the next cell in this worker starts as this one did
        _cleanup(cell.device)
    if result.status != "ok" and holder:
        keep_partial(result, holder[0].record)
    result.wall = time.perf_counter() - start
    result.threads = _current_threads()
    try:
        result.device = physical_device(resolve_device(cell.device))
    except Exception:  # noqa: BLE001 - the row falls back to the runner's resolution
        pass
    return result


def physical_device(device: str) -> str:
    """``cuda:N`` as the machine numbers it: in a worker pinned with
    ``CUDA_VISIBLE_DEVICES=2,3``, its ``cuda:1`` is the machine's ``cuda:3``."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    if not device.startswith("cuda:") or not visible.strip():
        return device
    ids = [v.strip() for v in visible.split(",")]
    index = int(device.split(":", 1)[1])
    return f"cuda:{ids[index]}" if index < len(ids) and ids[index].isdigit() else device


def keep_partial(outcome: Outcome, record: CellRecord) -> None:
    """Add what a failed cell recorded before failing to its outcome."""
    outcome.row = {**record.flat(), **outcome.row}
    outcome.samples = {**dict(record.times), **outcome.samples}
    outcome.curves = outcome.curves or list(record.curves)
    outcome.files = outcome.files or list(record.files)


def _run(
    cell: Cell,
    registry: Registry,
    cache_dir: Path | None,
    holder: list[CellContext],
    listener: Any,
) -> CellContext:
    device = resolve_device(cell.device)
    task_cls = registry.get("task", cell.task)
    slots = task_cls.slots()
    classes = {"task": task_cls}
    for slot, name in cell.components.items():
        classes[slot] = registry.lookup(slots[slot].base, name)
    for cls in classes.values():
        reason = cls.missing_requirement()
        if reason:
            raise SkipCell(reason)
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise SkipCell(f"device {device} requested but CUDA is not available")
    components = {
        slot: build(registry, classes[slot], cell.component_params[slot], _given(cell, slot))
        for slot in cell.components
    }
    task = task_cls(**cell.task_params)
    held = [inner for plugin in components.values() for inner in nested(plugin)]
    for plugin in (task, *components.values(), *held):
        reason = plugin.skip(device)
        if reason:
            raise SkipCell(reason)
    for plugin in (task, *components.values(), *held):
        plugin.prepare(device)  # off the clock: the task has not started
    _seed_everything(cell.seed)
    _set_threads(cell.threads)
    ctx = CellContext(
        device=device,
        seed=cell.seed,
        repeats=cell.repeats,
        warmup=cell.warmup,
        components=components,
        params=task.values,
        cache_dir=cache_dir,
        files_dir=Path(cell.files_dir) if cell.files_dir else None,
        run_dir=Path(cell.files_dir).parent.parent if cell.files_dir else None,
        files_limit_mb=cell.files_limit_mb,
    )
    ctx.listener = listener
    holder.append(ctx)
    for slot, plugin in components.items():  # what a holder set, as metric.ran.<path>
        for path, value in passed_down(plugin, slot):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                ctx.metric(f"ran.{path}", value)
    task.run(ctx)
    return ctx


def _given(cell: Cell, slot: str) -> set[str] | None:
    """The parameters of ``slot``'s plugin (and of the plugins it holds, dotted) that
    the suite set: each instance's ``given``."""
    cut = len(slot) + 1
    return {k[cut:] for k in cell.given if k.startswith(slot + ".")}


def _finish(ctx: CellContext) -> Outcome:
    record = ctx.record
    outcome = Outcome(
        "ok",
        row=record.flat(),
        samples=dict(record.times),
        curves=list(record.curves),
        files=list(record.files),
    )
    bad = [k for k, v in record.metrics.items() if not math.isfinite(v)]
    if bad:
        outcome.status = "diverged"
        outcome.error = "non-finite metric: " + ", ".join(f"{k}={record.metrics[k]}" for k in bad)
    return outcome


def _die_with_parent() -> None:
    """Make this worker and the processes it starts one process group (so the runner
    kills them together), and on Linux have the kernel kill it when its parent dies
    (a ``kill -9`` of ``bench run`` must not leave a hung cell running), and a watchdog
    kill its group when it dies (the children a cell started must not outlive it)."""
    try:
        os.setpgid(0, 0)
    except OSError:
        pass  # already a group leader, or not allowed here: the pipe watchdog remains
    if os.uname().sysname != "Linux":
        return
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the request took effect
        os._exit(1)
    _start_group_watchdog(libc)


_PR_SET_PDEATHSIG = 1


def _start_group_watchdog(libc: Any) -> None:
    """Fork a process that waits for this worker's death, then kills the worker's
    process group, itself included.

    The parent-death signal kills the worker when ``bench run`` dies (SIGKILL, SIGHUP,
    a second SIGTERM during clean-up), but not the ``sleep 333`` a cell started in
    the worker's group: nobody is left to kill that group. The watchdog is asked the
    same signal (SIGUSR1, caught) for the worker's death. It is forked before torch is
    imported: a few MB, shared with the worker, and no thread runs yet.
    """
    import signal

    worker = os.getpid()
    if os.getpgid(0) != worker:  # not our own group: killing it would hit others
        return
    if os.fork():
        return
    try:
        # Blocked before asking for it, so a death between fork and prctl is not lost;
        # the parent is checked after asking, for a death before.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGUSR1)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # the runner's pipe ends at the worker
        while os.getppid() == worker:  # a stray SIGUSR1 to the group changes nothing
            signal.sigwait({signal.SIGUSR1})
        os.killpg(worker, signal.SIGKILL)
    finally:
        os._exit(0)


def _cleanup(device: str) -> None:
    gc.collect()
    if device != "cpu":
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass


# --- worker process -------------------------------------------------------


def worker_main(
    conn: Any,
    plugin_specs: list[str],
    base_dir: str,
    cache_dir: str | None,
    builtins: bool = True,
    env: dict[str, str] | None = None,
    require_cuda: bool = False,
) -> None:
    """Entry point of a spawned worker: build the registry once, then run cells
    received over ``conn`` until it receives ``None``. ``env`` (e.g. the GPU this worker
    is pinned to, ``CUDA_VISIBLE_DEVICES``) is set before torch is imported."""
    os.environ.update(env or {})
    _die_with_parent()
    from bench.plugins import get_plugin_manager

    try:
        # torch takes seconds to import (more on a loaded machine): pay it here,
        # before "ready", so it never counts against a cell's timeout.
        import torch

        if require_cuda and torch.cuda.device_count() == 0:
            pinned = os.environ.get("CUDA_VISIBLE_DEVICES")
            where = f" (CUDA_VISIBLE_DEVICES={pinned})" if pinned is not None else ""
            conn.send(("failed", f"this worker sees no CUDA device{where}"))
            return
        pm = get_plugin_manager(plugin_specs, base_dir=Path(base_dir), builtins=builtins)
        registry = Registry(pm)
    except BaseException as exc:  # noqa: BLE001
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    # Everything imported so far (torch, plugins: ~240k objects) lives as long as the
    # worker: frozen, the full collection after each cell no longer walks it (measured
    # in issue 13: 105 ms -> 9 ms of overhead per trivial cell).
    gc.collect()
    gc.freeze()
    conn.send(("ready", os.getpid()))
    code = 0
    try:
        _serve(conn, registry, cache_dir)
    except BaseException:  # noqa: BLE001 - a bug of the worker loop itself: say it, exit 1
        traceback.print_exc()
        code = 1
    finally:
        # A hard exit: a non-daemon thread a cell left behind would otherwise keep the
        # worker alive at shutdown (read as a hang), and frozen objects at teardown make
        # nanobind-based extensions (triton) print "leaked" reports.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _serve(conn: Any, registry: Registry, cache_dir: str | None) -> None:
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        cell = Cell.from_dict(message)
        stream = _PartialStream(conn)
        outcome = run_cell(cell, registry, Path(cache_dir) if cache_dir else None, stream)
        stream.finish(outcome)


class _PartialStream:
    """Sends a running cell's recorded values to the parent as they come, so a crash or
    a timeout (the worker is killed) loses nothing already measured.

    Curve points are batched, so a training loop that records every step does not pay a
    pipe write per step: they go with the next other value, or within ``FLUSH_S`` from
    a flusher thread (so points recorded just before a hang still arrive). ``finish``
    sends the outcome; nothing of this cell is sent after it.
    """

    FLUSH_S = 0.5

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.lock = threading.Lock()
        self.pending: list[tuple[Any, ...]] = []
        self.closed = False
        self.last_flush = time.monotonic()
        self._stop = threading.Event()
        self._waiting = threading.Event()  # set while curve points wait to be sent
        self._thread = threading.Thread(target=self._flusher, daemon=True)
        self._thread.start()

    def __call__(self, event: tuple[Any, ...]) -> None:
        with self.lock:
            if self.closed:
                return
            self.pending.append(event)
            if event[0] != "curve" or time.monotonic() - self.last_flush >= self.FLUSH_S:
                self._flush()
            else:
                self._waiting.set()

    def _flush(self) -> None:  # with the lock held
        if self.pending:
            self.conn.send(("partial", self.pending))
            self.pending = []
        self._waiting.clear()
        self.last_flush = time.monotonic()

    def _flusher(self) -> None:
        # Asleep until curve points wait (no wake-ups, and no GIL taken, otherwise),
        # then sends them within FLUSH_S.
        while True:
            self._waiting.wait()
            if self._stop.wait(self.FLUSH_S):
                return
            with self.lock:
                if self.closed:
                    return
                self._flush()

    def finish(self, outcome: Outcome) -> None:
        with self.lock:
            self.closed = True
            self.pending = []
            self.conn.send(("done", outcome))
        self._stop.set()
        self._waiting.set()  # wake the flusher so it sees the stop
        self._thread.join()
