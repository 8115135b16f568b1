"""The results folder of one run, written cell by cell and read back.

``results/<suite>/<run-id>/``:

- ``cells.parquet``: one row per cell. Columns: ``cell_id``, ``suite``, ``bench``,
  ``label``, ``task``, one column per component slot (``solver``, ...),
  ``param.*`` (task parameters) and ``param.<slot>.*`` (component parameters),
  ``seed``, ``device``, ``threads`` (torch intra-op threads the cell ran with),
  ``status``, ``error`` (one line), ``traceback`` (the full one, for a plugin's
  exception), ``wall`` (seconds the cell took
  end to end), ``finished_at``, ``time.<name>.{median,iqr,min,n}``,
  ``mem.<name>`` (bytes), ``metric.<name>``.
- ``samples.parquet``: ``cell_id``, ``timer``, ``rep``, ``seconds``: every timed sample.
- ``curves.parquet``: ``cell_id``, ``curve``, ``step``, ``time``, ``value``.
- ``files.parquet``: ``cell_id``, ``name``, ``kind``, ``path``, ``bytes``: the result
  files each cell kept (``files/<cell_id>/<name>``, see ``bench.artifacts``).
- ``run.json``: the suite file, git commit and dirty flag, package versions,
  device, CUDA version, host, start and end.

Every write goes to a temporary file that replaces the old one (``os.replace``
is atomic), samples and curves before cells: ``cells.parquet`` is the record of
what is finished, so a run killed at any moment loses at most the running cell.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from bench.cell import SUPERSEDED, VALIDATION, Cell, Outcome
from bench.fileio import FILE_MODE, atomic_path, atomic_write_bytes
from bench.params import shown

CELLS = "cells.parquet"
SAMPLES = "samples.parquet"
CURVES = "curves.parquet"
FILES = "files.parquet"
FILES_DIR = "files"
LOG = "cells.log.jsonl"  # finished cells, appended one per line until the run closes
RUN_JSON = "run.json"

BASE_COLUMNS = ["cell_id", "suite", "bench", "label", "task"]
STATUS_COLUMNS = [
    "seed",
    "device",
    "threads",
    "status",
    "error",
    "traceback",
    "wall",
    "finished_at",
]
SAMPLE_COLUMNS = ["cell_id", "timer", "rep", "seconds"]
CURVE_COLUMNS = ["cell_id", "curve", "step", "time", "value"]
FILE_COLUMNS = ["cell_id", "name", "kind", "path", "bytes"]


def is_missing(value: Any) -> bool:
    """An empty table entry: None, or a float NaN (how pandas fills a column a row lacks)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


class ResultsError(Exception):
    """A results folder or file that is missing or cannot be read."""


class ResultsWarning(UserWarning):
    """Damage in a run's records that reading skipped (named; the rest is read)."""


class RunLockedError(ResultsError):
    """A run folder that this ``bench run`` cannot take for writing: another one is
    writing it, or it cannot be written at all (read-only)."""


class RunLock:
    """An exclusive lock on a run folder (``.lock``, flock), naming its holder's pid.

    The lock is held on an open file, and ``.lock`` is never deleted (release empties
    it): deleting it let a writer that had opened it just before lock the deleted file,
    and the next one a new ``.lock``, both holding the lock at once.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / ".lock"
        self._fh: Any = None

    def acquire(self) -> None:
        import fcntl

        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            if self.path.is_symlink():  # ELOOP: a link would have us truncate its target
                raise ResultsError(
                    f"{self.path}: is a symbolic link; a run folder's lock is a plain file "
                    "(remove the link)"
                ) from None
            raise RunLockedError(
                f"{self.path.parent}: cannot write this run folder ({exc.strerror})"
            ) from None
        fh = os.fdopen(fd, "r+")  # held until release()
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            raise RunLockedError(
                f"{self.path.parent}: another bench run (pid {holder}) is writing this run "
                "folder; wait for it to finish, or stop it, before resuming"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}@{socket.gethostname()}")  # whose, for a reader elsewhere
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            self._fh.truncate(0)  # names no holder once released; still ours here
            self._fh.close()  # closing drops the flock
            self._fh = None


def writer_alive(run_dir: Path) -> bool | str:
    """Whether a ``bench run`` writes the run folder (holds its ``RunLock``), probed
    without taking the lock for longer than a probe and without writing: True, False
    (no lock file, or a free lock whose holder was a process of this host that is gone),
    or a text saying why it cannot be told from here (the holder ran on another host,
    whose lock a network file system may not show; the lock cannot be read)."""
    try:
        import fcntl
    except ImportError:  # no flock here (Windows)
        return "its writer cannot be probed on this system"
    path = Path(run_dir) / ".lock"
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError as exc:
        return f"its lock cannot be read: {exc.strerror}"
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True  # an exclusive holder: a bench run writing it
        holder = os.read(fd, 256).decode("utf-8", "replace").strip()
    finally:
        os.close(fd)  # closing drops our shared lock, if we got it
    pid, _, host = holder.partition("@")
    if host and host != socket.gethostname():
        return f"written from {host}? its lock cannot be probed from here"
    # a holder on this host that lives: a lock the file system did not keep (or a pid
    # reused: read as running, the safe side)
    return pid.isdigit() and _pid_alive(int(pid))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def atomic_write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2, default=str) + "\n").encode())


def _atomic_write_parquet(path: Path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        _parquet_safe(frame).to_parquet(tmp, index=False)


def _parquet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns holding mixed types (``3`` and ``"camera"``) or lists become
    JSON strings, which Parquet can store; an empty entry (None, NaN) stays empty
    (null), not the text ``NaN``; uniform columns are left alone."""
    frame = frame.copy()
    for col in frame.columns:
        if frame[col].dtype != object:
            continue
        values = [v for v in frame[col] if v is not None and not _is_nan(v)]
        kinds = {type(v) for v in values}
        if len(kinds) > 1 or any(isinstance(v, (list, dict, tuple)) for v in values):
            frame[col] = [
                None if v is None or _is_nan(v) else v if isinstance(v, str) else json.dumps(v)
                for v in frame[col]
            ]
    return frame


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value


def read_parquet(path: Path) -> pd.DataFrame:
    """Read one results file; a missing, empty, unreadable or corrupt one raises
    ``ResultsError`` naming it. One of the run's four tables is also checked against
    its columns (``check_table``)."""
    path = Path(path)
    try:
        if not path.is_file():
            what = "missing" if not path.exists() else "not a file"
            raise ResultsError(f"{path}: {what}")
        if path.stat().st_size == 0:
            raise ResultsError(f"{path}: empty file (0 bytes), not a Parquet table")
        frame = pd.read_parquet(path)
    except ResultsError:
        raise
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise ResultsError(f"{path}: missing") from None
        if exc.strerror and "Parquet" not in str(exc):  # the system's: cannot read it
            raise ResultsError(f"{path}: cannot read ({exc.strerror})") from None
        raise ResultsError(f"{path}: corrupt or not a Parquet file ({_one_line(exc)})") from None
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise ResultsError(f"{path}: corrupt or not a Parquet file ({_one_line(exc)})") from None
    if path.name in _SCHEMAS:
        if frame.shape == (0, 0):  # no rows, no columns: what an older bench wrote for a
            return pd.DataFrame(columns=list(_SCHEMAS[path.name][0]))  # run stopped early
        check_table(frame, path.name, path)
    return frame


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# What ``show``, ``report`` and ``compare`` read of each table: required columns, and
# the kind of value each known column holds ("id": text, never empty; "text": text or
# null; "number": numbers or null). A received run is hostile: a table that does not
# fit is one message naming the file, the column and what is wrong, never a traceback
# from deep inside pandas.
_TEXT, _ID, _NUMBER = "text", "id", "number"
_SCHEMAS: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    CELLS: (
        ("cell_id", "label", "task", "seed", "status", "error"),
        {"cell_id": _ID, "suite": _TEXT, "bench": _NUMBER, "label": _TEXT, "task": _ID,
         "seed": _NUMBER, "device": _TEXT, "threads": _NUMBER, "status": _ID,
         "error": _TEXT, "traceback": _TEXT, "wall": _NUMBER, "finished_at": _TEXT},
    ),
    SAMPLES: (tuple(SAMPLE_COLUMNS),
              {"cell_id": _ID, "timer": _ID, "rep": _NUMBER, "seconds": _NUMBER}),
    CURVES: (tuple(CURVE_COLUMNS),
             {"cell_id": _ID, "curve": _ID, "step": _NUMBER, "time": _NUMBER,
              "value": _NUMBER}),
    FILES: (tuple(FILE_COLUMNS),
            {"cell_id": _ID, "name": _ID, "kind": _ID, "path": _ID, "bytes": _NUMBER}),
}  # fmt: skip
#: cells columns by prefix: measurements are numbers
_NUMBER_PREFIXES = ("time.", "mem.", "metric.")
_NUMERIC_KINDS = frozenset({"integer", "floating", "mixed-integer-float", "decimal", "empty"})


def check_table(frame: pd.DataFrame, name: str, source: Path) -> None:
    """Raise ``ResultsError`` naming ``source`` if ``frame`` is not a run's ``name``
    table: a required column missing, or a column holding the wrong kind of values."""
    required, kinds = _SCHEMAS[name]
    what = name.split(".")[0]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ResultsError(
            f"{source}: not a dynbench {what} table: no column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(c) for c in missing)}"
        )
    for column in frame.columns:
        kind = kinds.get(column)
        if kind is None and name == CELLS and str(column).startswith(_NUMBER_PREFIXES):
            kind = _NUMBER
        if kind is not None:
            reason = _wrong_values(frame[column], kind)
            if reason:
                raise ResultsError(f"{source}: column {str(column)!r} {reason}")


def _wrong_values(values: pd.Series, kind: str) -> str | None:
    """Why ``values`` are not of ``kind``, or None."""
    from pandas.api import types

    if kind == _NUMBER:
        if types.is_bool_dtype(values.dtype):
            return "holds true/false where numbers are expected"
        if types.is_numeric_dtype(values.dtype):
            return None
        if types.infer_dtype(values, skipna=True) in _NUMERIC_KINDS:
            return None
        bad = next(v for v in values if not _is_number(v))
        return f"holds {shown(bad)} ({type(bad).__name__}) where numbers are expected"
    # text: a string dtype, or objects that are all strings (or null, for _TEXT)
    present = values.dropna() if kind == _TEXT else values
    if kind == _ID and values.isna().any():
        return "has empty entries where every row needs one"
    if types.infer_dtype(present, skipna=False) in ("string", "empty"):
        return None
    bad = next((v for v in present if not isinstance(v, str)), None)
    if bad is None:
        return None
    return f"holds {shown(bad)} ({type(bad).__name__}) where text is expected"


def _is_number(value: Any) -> bool:
    return value is None or (
        isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    )


class RunWriter:
    """Records finished cells in a run folder.

    Each finished cell is one line appended to ``cells.log.jsonl`` (its row, samples,
    curves and files), flushed and fsynced: constant work per cell however long the
    run (rewriting every table per cell made a run's writing quadratic). ``close``
    compacts the log into the Parquet tables and removes it. A run killed before that
    keeps its log, which ``load_run`` and ``--resume`` read beside the tables: a kill
    loses at most the running cell (a line cut short by the kill is ignored, and cut
    off before the next append).
    """

    #: statuses ``--retry-failed`` runs again (skipped and diverged are answers, not failures)
    RETRY_STATUSES = frozenset({"error", "timeout", "oom"})

    def __init__(self, run_dir: Path, *, resume: bool = False, retry_failed: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._cells: dict[str, dict[str, Any]] = {}
        self._samples: dict[str, list[dict[str, Any]]] = {}
        self._curves: dict[str, list[dict[str, Any]]] = {}
        self._files: dict[str, list[dict[str, Any]]] = {}
        if resume:
            tables = read_tables(self.run_dir)
            check_cells_present(self.run_dir, tables[CELLS])
            cells = tables[CELLS]
            if retry_failed and not cells.empty:
                cells = cells[~cells["status"].isin(self.RETRY_STATUSES)]
            for row in cells.to_dict("records"):
                self._cells[row["cell_id"]] = row
            # Samples, curves or files of a cell that never finished are dropped: it runs
            # again.
            for name, store in ((SAMPLES, self._samples), (CURVES, self._curves),
                                (FILES, self._files)):  # fmt: skip
                for row in tables[name].to_dict("records"):
                    if row["cell_id"] in self._cells:
                        store.setdefault(row["cell_id"], []).append(row)
        self._log = None

    @property
    def cells(self) -> list[dict[str, Any]]:
        return list(self._cells.values())

    @property
    def rows(self) -> Mapping[str, dict[str, Any]]:
        """The recorded rows by cell id, live and read-only (the rows themselves are the
        writer's: a role ``set_role`` gives shows in them)."""
        return MappingProxyType(self._cells)

    def done_ids(self) -> set[str]:
        return set(self._cells)

    def add(self, cell: Cell, outcome: Outcome, device: str, finished_at: str) -> dict[str, Any]:
        """Record one finished cell (appended to the log at once); returns its row."""
        row: dict[str, Any] = {
            "cell_id": cell.id,
            "suite": cell.suite,
            "bench": cell.bench,
            "label": cell.label,
            "task": cell.task,
            **cell.components,
            **cell.param_columns(),
            "seed": cell.seed,
            "device": device,
            "threads": outcome.threads,
            "status": outcome.status,
            "error": outcome.error,
            "traceback": outcome.traceback,
            "wall": outcome.wall,
            "finished_at": finished_at,
            **({"role": cell.role} if cell.role else {}),
            **outcome.row,
        }
        samples = [
            {"cell_id": cell.id, "timer": timer, "rep": i, "seconds": float(s)}
            for timer, values in outcome.samples.items()
            for i, s in enumerate(values)
        ]
        curves = [
            {"cell_id": cell.id, "curve": name, "step": step, "time": t, "value": value}
            for name, step, t, value in outcome.curves
        ]
        files = [
            {"cell_id": cell.id, "name": name, "kind": kind, "path": path, "bytes": nbytes}
            for name, kind, path, nbytes in outcome.files
        ]
        self._append({"cell": row, "samples": samples, "curves": curves, "files": files})
        self._cells.pop(cell.id, None)
        self._cells[cell.id] = row
        self._samples[cell.id] = samples
        self._curves[cell.id] = curves
        self._files[cell.id] = files
        return row

    def set_role(self, cell_id: str, role: str) -> None:
        """Give a recorded cell another ``role`` (``bench.tuned``: a test cell whose
        setting is no longer the choice is ``superseded``, and ``test`` again if the
        choice comes back). Logged at once, so a killed run's folder reads it too."""
        row = self._cells[cell_id]
        if row.get("role") == role:
            return
        row["role"] = role
        self._append({"cell": row, "samples": self._samples.get(cell_id, []),
                      "curves": self._curves.get(cell_id, []),
                      "files": self._files.get(cell_id, [])})  # fmt: skip

    def _append(self, entry: dict[str, Any]) -> None:
        if self._log is None:
            path = self.run_dir / LOG
            fresh = not path.exists()
            if not fresh:
                _end_at_a_whole_line(path)
            self._log = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
            if fresh:
                os.chmod(path, FILE_MODE)
        self._log.write(json.dumps(entry, default=_json_default) + "\n")
        self._log.flush()
        os.fsync(self._log.fileno())

    def close(self) -> None:
        """Write the Parquet tables from every recorded cell, then drop the log."""
        if self._log is not None:
            self._log.close()
            self._log = None
        write_tables(
            self.run_dir,
            self.cells,
            [r for rows in self._samples.values() for r in rows],
            [r for rows in self._curves.values() for r in rows],
            [r for rows in self._files.values() for r in rows],
        )
        (self.run_dir / LOG).unlink(missing_ok=True)

    def files_dir(self, cell_id: str) -> Path:
        """Where a cell's result files go (absolute, so any worker finds it): inside the
        run folder, whatever links lie under it."""
        return self.run_dir.resolve() / FILES_DIR / cell_id

    def clear_files(self, cell_id: str) -> None:
        """Remove what an earlier attempt of a cell left in its files folder (a killed
        run). A link there, or at ``files``, is removed itself, never followed:
        ``--resume`` emptied wherever a ``files/<cell_id>`` link pointed, and wrote there."""
        for path in (self.run_dir / FILES_DIR, self.run_dir / FILES_DIR / cell_id):
            if path.is_symlink() or (path.exists() and not path.is_dir()):
                path.unlink()
        shutil.rmtree(self.run_dir / FILES_DIR / cell_id, ignore_errors=True)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def write_tables(
    run_dir: Path,
    cells: list[dict[str, Any]],
    samples: list[dict[str, Any]],
    curves: list[dict[str, Any]],
    files: list[dict[str, Any]],
) -> None:
    """The four tables, each replaced atomically; cells last (the record of what is done)."""
    _atomic_write_parquet(run_dir / SAMPLES, pd.DataFrame(samples, columns=SAMPLE_COLUMNS))
    _atomic_write_parquet(run_dir / CURVES, pd.DataFrame(curves, columns=CURVE_COLUMNS))
    _atomic_write_parquet(run_dir / FILES, pd.DataFrame(files, columns=FILE_COLUMNS))
    # with its columns even when no cell has finished (a run stopped before its first):
    # a (0, 0) table is no cells table, and the run could not be resumed or shown
    frame = pd.DataFrame(cells) if cells else pd.DataFrame(columns=list(_SCHEMAS[CELLS][0]))
    _atomic_write_parquet(run_dir / CELLS, frame)


def _end_at_a_whole_line(path: Path) -> None:
    """Make a log end with a whole line before more is appended to it. A last line a
    kill cut short is cut off: a resumed run appended its first record onto it, and
    once a second kill left that glued line in the middle the run could not be read.
    A complete record that lost only its newline gets one."""
    with open(path, "rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        start = size
        while start > 0:  # back to the last newline, 64 KiB at a time (lines can be long)
            step = min(start, 1 << 16)
            fh.seek(start - step)
            block = fh.read(step)
            if start == size and block.endswith(b"\n"):
                return
            cut = block.rfind(b"\n")
            if cut >= 0:
                start = start - step + cut + 1
                break
            start -= step
        if start == size:
            return
        fh.seek(start)
        if _log_entry(fh.read().decode("utf-8", errors="replace")) is None:
            fh.truncate(start)
        else:
            fh.seek(size)
            fh.write(b"\n")
        fh.flush()
        os.fsync(fh.fileno())


def _log_entry(line: str) -> dict[str, Any] | None:
    """One log line as its entry; None for a line that is not a whole cell record."""
    try:
        entry = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("cell"), dict):
        return None
    for key in ("samples", "curves", "files"):
        rows = entry.get(key, [])
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            return None
    return entry if isinstance(entry["cell"].get("cell_id"), str) else None


def _glued_entry(line: str) -> dict[str, Any] | None:
    """A whole record an older bench appended onto a line that a kill had cut short."""
    start = line.find('{"cell": ', 1)
    while start > 0:
        entry = _log_entry(line[start:])
        if entry is not None:
            return entry
        start = line.find('{"cell": ', start + 1)
    return None


def read_log(run_dir: Path) -> list[dict[str, Any]]:
    """The entries of a run's append-only log (a run not yet compacted). A last line cut
    short by a kill is left out; a damaged line elsewhere is skipped with a
    ``ResultsWarning`` naming it, and a whole record glued onto its end is kept."""
    path = Path(run_dir) / LOG
    if not path.exists():
        return []
    entries = []
    damaged = []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for number, line in enumerate(lines, 1):
        entry = _log_entry(line) or _glued_entry(line)
        if entry is not None:
            entries.append(entry)
        elif number < len(lines):  # the last: the line being written when a kill came
            damaged.append(number)
    if damaged:
        where = ", ".join(str(n) for n in damaged[:10]) + (", ..." if len(damaged) > 10 else "")
        warnings.warn(
            f"{path}: line{'s' if len(damaged) > 1 else ''} {where} "
            f"{'are' if len(damaged) > 1 else 'is'} not a cell record (cut short by a "
            f"kill?); skipped, the {len(entries)} whole records are read",
            ResultsWarning,
            stacklevel=2,
        )
    return entries


def check_cells_present(
    run_dir: Path, cells: pd.DataFrame, meta: dict[str, Any] | None = None
) -> None:
    """``ResultsError`` where ``cells.parquet`` is missing though ``run.json`` counts more
    finished cells than the log holds (a run copied without it): shown, the run would
    lack them; resumed, it would run them again and drop their samples, curves and
    files."""
    if _exists(run_dir / CELLS):
        return
    if meta is None:
        meta = read_run_json(run_dir / RUN_JSON) if _exists(run_dir / RUN_JSON) else {}
    counts = meta.get("cells") if isinstance(meta, dict) else None
    finished = counts.get("finished") if isinstance(counts, dict) else None
    if isinstance(finished, int) and not isinstance(finished, bool) and finished > len(cells):
        raise ResultsError(
            f"{run_dir / CELLS}: missing, yet {RUN_JSON} counts {finished} finished cells "
            f"({len(cells)} in the log): the table of what was done is not here (copy it "
            "with run.json and the other tables); nothing was read or changed"
        )


def read_tables(run_dir: Path) -> dict[str, pd.DataFrame]:
    """The run's four tables: the Parquet files, with the log's cells over them."""
    empty = {CELLS: pd.DataFrame(columns=list(_SCHEMAS[CELLS][0])),
             SAMPLES: pd.DataFrame(columns=SAMPLE_COLUMNS),
             CURVES: pd.DataFrame(columns=CURVE_COLUMNS),
             FILES: pd.DataFrame(columns=FILE_COLUMNS)}  # fmt: skip
    tables = {
        name: read_parquet(run_dir / name) if (run_dir / name).exists() else frame
        for name, frame in empty.items()
    }
    entries = read_log(run_dir)
    if not entries:
        return tables
    logged: dict[str, dict[str, Any]] = {}
    for entry in entries:
        logged[entry["cell"]["cell_id"]] = entry  # a cell logged twice: the last wins
    ids = set(logged)
    out = {}
    for name, key in ((CELLS, "cell"), (SAMPLES, "samples"), (CURVES, "curves"), (FILES, "files")):
        kept = tables[name][~tables[name]["cell_id"].isin(ids)] if len(tables[name]) else None
        if key == "cell":
            new = [e["cell"] for e in logged.values()]
        else:
            new = [r for e in logged.values() for r in e.get(key, [])]
        frame = pd.DataFrame(new, columns=None if name == CELLS else empty[name].columns)
        if len(frame):
            check_table(frame, name, run_dir / LOG)
        parts = [f for f in (kept, frame) if f is not None and len(f)]
        out[name] = pd.concat(parts, ignore_index=True) if parts else empty[name]
    return out


@dataclass
class Run:
    """A run folder read back."""

    path: Path
    meta: dict[str, Any]
    cells: pd.DataFrame
    samples: pd.DataFrame
    curves: pd.DataFrame
    files: pd.DataFrame

    @property
    def name(self) -> str:
        return f"{self.meta.get('suite', self.path.parent.name)}/{self.path.name}"

    @property
    def status(self) -> str:
        """run.json's status, except a ``running`` run that, seen from this machine, no
        ``bench run`` writes any more (killed outright: ``kill -9``): ``stopped``, which
        ``--resume`` continues. Where that cannot be told from here (the writer on
        another host, whose lock a network file system may not show; a lock file this
        user cannot read), it says so and stays ``running``."""
        status = str(self.meta.get("status", "?"))
        if status != "running":
            return status
        alive = writer_alive(self.path)
        if alive is False:
            return "stopped (no bench run writes it: killed? --resume continues it)"
        if isinstance(alive, str):
            return f"running ({alive})"
        return status


def resolve_run_dir(path: str | Path) -> Path:
    """A run folder, or a suite folder (its newest run)."""
    path = Path(path)
    if not _exists(path):
        raise ResultsError(f"{path}: no such results folder")
    if not path.is_dir():
        raise ResultsError(f"{path}: is a file, not a run folder or a suite folder")
    if _exists(path / RUN_JSON) or _exists(path / CELLS):
        return path
    try:
        runs = sorted(p for p in path.iterdir() if p.is_dir() and (p / RUN_JSON).exists())
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read ({exc.strerror})") from None
    if not runs:
        raise ResultsError(f"{path}: not a run folder (no {RUN_JSON}) and holds no runs")
    return runs[-1]


def load_run(path: str | Path) -> Run:
    """Read a run folder; missing or corrupt files raise ``ResultsError`` naming them."""
    run_dir = resolve_run_dir(path)
    meta_path = run_dir / RUN_JSON
    meta = read_run_json(meta_path) if _exists(meta_path) else {}
    if not _exists(run_dir / CELLS) and not _exists(run_dir / LOG):
        raise ResultsError(f"{run_dir / CELLS}: missing")
    if _exists(run_dir / LOG) and not (run_dir / LOG).is_file():
        raise ResultsError(f"{run_dir / LOG}: not a file")
    try:
        tables = read_tables(run_dir)
    except OSError as exc:  # the log: unreadable
        raise ResultsError(f"{exc.filename or run_dir}: cannot read ({exc.strerror})") from None
    try:  # shown: what is here, said to be short; resumed (RunWriter): refused
        check_cells_present(run_dir, tables[CELLS], meta)
    except ResultsError as exc:
        warnings.warn(str(exc).replace("; nothing was read or changed", ""), ResultsWarning,
                      stacklevel=2)  # fmt: skip
    return Run(run_dir, meta, tables[CELLS], tables[SAMPLES], tables[CURVES], tables[FILES])


def _exists(path: Path) -> bool:
    """``path.exists()``, with a name the system refuses (too long) reported as such."""
    try:
        return path.exists()
    except OSError as exc:
        raise ResultsError(f"{_short(path)}: {exc.strerror}") from None


def _short(path: Path, limit: int = 120) -> str:
    text = str(path)
    return text if len(text) <= limit else f"{text[:60]}...{text[-40:]} ({len(text)} characters)"


#: the types of ``run.json``'s entries that ``show``, ``report`` and ``compare`` read
_META_TYPES: dict[str, tuple[type, str]] = {
    **{key: (str, "a string") for key in (
        "suite", "suite_file", "suite_text", "run_id", "start", "end", "status", "host",
        "platform", "command", "executor")},
    **{key: (dict, "an object") for key in ("git", "packages", "cuda", "cells")},
    "devices": (list, "a list of objects"),
    "resumed": (list, "a list"),
}  # fmt: skip


def read_run_json(path: Path) -> dict[str, Any]:
    """A run's ``run.json``: an object whose known entries have their types. Anything
    else (not UTF-8 or JSON, empty, a list, ``"devices": 3``) raises ``ResultsError``
    naming the file and what is wrong."""
    try:
        if not path.is_file():
            raise ResultsError(f"{path}: not a file")
        text = path.read_text(encoding="utf-8")
    except ResultsError:
        raise
    except UnicodeDecodeError as exc:
        raise ResultsError(f"{path}: corrupt JSON ({exc})") from None
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read ({exc.strerror})") from None
    if not text.strip():
        raise ResultsError(f"{path}: empty file, not the run's JSON record")
    try:
        meta = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ResultsError(f"{path}: corrupt JSON ({_one_line(exc)})") from None
    if not isinstance(meta, dict):
        raise ResultsError(
            f"{path}: not a run record: a JSON {_json_kind(meta)} where an object is expected"
        )
    for key, (kind, described) in _META_TYPES.items():
        if key in meta and not isinstance(meta[key], kind):
            raise ResultsError(f"{path}: {key!r} is {shown(meta[key])}, expected {described}")
    devices = meta.get("devices", [])
    if not all(isinstance(d, dict) for d in devices):
        bad = next(d for d in devices if not isinstance(d, dict))
        raise ResultsError(f"{path}: 'devices' holds {shown(bad)}, expected objects")
    return meta


def _json_kind(value: Any) -> str:
    names = {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


#: the roles that are not results (``bench.tuned`` says what they mean)
NOT_REPORTED = frozenset({VALIDATION, SUPERSEDED})


def roles(cells: pd.DataFrame) -> pd.Series:
    """Each cell's role, ``""`` for an untuned entry's."""
    if "role" not in cells.columns:
        return pd.Series("", index=cells.index, dtype=object)
    return cells["role"].map(lambda v: v if isinstance(v, str) else "")


def reported(cells: pd.DataFrame) -> pd.DataFrame:
    """The cells that are results: outside validation, not superseded."""
    return cells[~roles(cells).isin(NOT_REPORTED)]


def not_reported(cells: pd.DataFrame) -> pd.DataFrame:
    """A tuned entry's validation and superseded cells."""
    return cells[roles(cells).isin(NOT_REPORTED)]


def key_columns(cells: pd.DataFrame) -> list[str]:
    """Columns that identify what a cell measured, seed aside: task, components, params."""
    reserved = set(BASE_COLUMNS) | set(STATUS_COLUMNS) | {"role"}  # bench.tuning's
    comps = [
        c
        for c in cells.columns
        if c not in reserved and not c.startswith(("param.", "time.", "mem.", "metric."))
    ]
    params = sorted(c for c in cells.columns if c.startswith("param."))
    return ["task", *comps, *params]


def add_headlines(
    run: Run, registry: Any, record: bool = False, source: dict[str, Any] | None = None
) -> list[str]:
    """For a run made before tasks declared headlines: each of its tasks' headline as the
    task (in ``registry``) declares it now, recorded in its ``run.json`` where ``record``
    (``headlines``, and under ``headlines_added`` the commit and date each was taken at:
    pages say it was added, not recorded by the run). A headline the run recorded is
    left as it is; one added here before is taken again where the task now declares
    another (a field since added, say), unless it names fewer of the cells' quality
    metrics; one naming no metric the cells have is not added. One line per task
    saying what was (or would be) done. ``source``: where they were taken
    (``headline_source()``, taken once before any run.json is written: writing one
    makes the tree dirty). ``ResultsError`` where a bench run is writing it (its lock
    is held) or it has no ``run.json``."""
    meta_path = run.path / RUN_JSON
    if not _exists(meta_path):
        raise ResultsError(f"{meta_path}: missing; nothing to record the headlines in")
    alive = writer_alive(run.path)  # also a holder on another host, which flock may miss
    if alive and record:
        who = f" ({alive})" if isinstance(alive, str) else ""
        raise ResultsError(f"a bench run is writing it{who}; nothing was changed")
    # a folder a bench run wrote has its lock: held while run.json is read and written
    # (a resume starting meanwhile is refused, naming this pid); a copied folder has none
    lock = RunLock(run.path) if record and _exists(run.path / ".lock") else None
    if lock is not None:
        try:
            lock.acquire()
        except ResultsError as exc:
            raise ResultsError(f"{exc}; nothing was changed") from None
    try:
        return _add_headlines(run, meta_path, registry, record, source)
    finally:
        if lock is not None:
            lock.release()


def _add_headlines(
    run: Run, meta_path: Path, registry: Any, record: bool, source: dict[str, Any] | None
) -> list[str]:
    from bench.headline import Headline
    from bench.registry import UnknownPluginError

    meta = read_run_json(meta_path)
    recorded = meta.get("headlines") or {}  # null: none recorded, as the readers take it
    if not isinstance(recorded, dict):
        raise ResultsError(f"{meta_path}: 'headlines' is {shown(recorded)}, expected an object")
    tasks = [str(t) for t in dict.fromkeys(run.cells["task"])] if "task" in run.cells else []
    if not tasks:
        return ["no cells: no task to give a headline"]
    have = {c.removeprefix("metric.") for c in run.cells.columns if c.startswith("metric.")}
    lines, added = [], {}
    verb = "recorded" if record else "would record"
    ours = meta.get("headlines_added") if isinstance(meta.get("headlines_added"), dict) else {}
    for task in tasks:
        valid = isinstance(recorded.get(task), dict) and Headline.from_dict(recorded[task])
        if valid and task not in ours:
            lines.append(f"{task}: the run recorded its headline; left as it is")
            continue
        try:
            declared = registry.get("task", task).headline
        except UnknownPluginError as exc:  # not registered here: a plugin the user must name
            lines.append(
                f"{task}: no such task is registered here ({exc.args[0]}; give its plugin "
                "with --plugins); left without a headline"
            )
            continue
        if declared is None:
            lines.append(f"{task}: the task declares no headline; left without one")
            continue
        if valid:  # added here before: taken again, as the task declares it now
            if declared.to_dict() == recorded[task]:
                lines.append(f"{task}: added before, as the task still declares it; left")
                continue
            before = [q for q in recorded[task]["quality"] if q in have]
            if len([q for q in declared.quality if q in have]) < len(before):
                # a quality since renamed: the cells hold the old name, the page would lose it
                lines.append(
                    f"{task}: added before; the task now declares qualities these cells "
                    f"record fewer of (they have {', '.join(before)}); left"
                )
                continue
        # there, but not a headline: replaced, and said; one added before: taken again
        verb_here = (
            f"{verb} (in place of the one added before)"
            if valid
            else f"{verb} (in place of a malformed one)"
            if task in recorded
            else verb
        )
        missing = [name for name in declared.quality if name not in have]
        if len(missing) == len(declared.quality):
            lines.append(
                f"{task}: its cells record none of the quality metrics the task declares now "
                f"({', '.join(declared.quality)}); left without a headline"
            )
            continue
        added[task] = declared.to_dict()
        quality = ", ".join(f"{k} ({v} is better)" for k, v in declared.quality.items())
        lines.append(
            f"{task}: {verb_here} quality {quality}; cost {declared.cost}"
            + (f"; not in its cells: {', '.join(missing)}" if missing else "")
        )
    if record and added:
        source = source or headline_source()
        meta["headlines"] = {**recorded, **added}
        meta["headlines_added"] = {**ours, **{task: source for task in added}}
        atomic_write_json(meta_path, meta)
    return lines


def headline_source() -> dict[str, Any]:
    """The commit, dirty flag and date (now) a headline is taken at."""
    from datetime import datetime, timezone

    from bench.sysinfo import git_state

    state = git_state()
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return {"commit": state.get("commit"), "dirty": state.get("dirty"), "date": when}


def headline_added(meta: Any, task: str) -> str:
    """Where a task's headline was added after its run (``bench headlines --record``):
    "added after the run, from the task at commit abc1234 (2026-12-07)"; "" where the run
    recorded it or none."""
    added = meta.get("headlines_added") if isinstance(meta, dict) else None
    source = added.get(task) if isinstance(added, dict) else None
    if not isinstance(source, dict):
        return ""
    commit = source.get("commit")
    at = f"commit {str(commit)[:7]}" if isinstance(commit, str) and commit else "an unknown commit"
    if source.get("dirty") is True:
        at += " with uncommitted changes"
    date = source.get("date")
    when = f" ({str(date)[:10]})" if isinstance(date, str) and date else ""
    return f"added after the run, as the task declared it at {at}{when}"
