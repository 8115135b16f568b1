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
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bench.suite import Cell
from bench.worker import Outcome

CELLS = "cells.parquet"
SAMPLES = "samples.parquet"
CURVES = "curves.parquet"
FILES = "files.parquet"
FILES_DIR = "files"
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


class ResultsError(Exception):
    """A results folder or file that is missing or cannot be read."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2, default=str) + "\n").encode())


def _atomic_write_parquet(path: Path, frame: pd.DataFrame) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        _parquet_safe(frame).to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _parquet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns holding mixed types (``3`` and ``"camera"``) or lists become
    JSON strings, which Parquet can store; uniform columns are left alone."""
    frame = frame.copy()
    for col in frame.columns:
        if frame[col].dtype != object:
            continue
        values = [v for v in frame[col] if v is not None and not _is_nan(v)]
        kinds = {type(v) for v in values}
        if len(kinds) > 1 or any(isinstance(v, (list, dict, tuple)) for v in values):
            frame[col] = [
                v if v is None or isinstance(v, str) else json.dumps(v) for v in frame[col]
            ]
    return frame


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value


def read_parquet(path: Path) -> pd.DataFrame:
    """Read one results file; a corrupt one raises ``ResultsError`` naming it."""
    try:
        return pd.read_parquet(path)
    except FileNotFoundError:
        raise ResultsError(f"{path}: missing") from None
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise ResultsError(f"{path}: corrupt or not a Parquet file ({exc})") from None


class RunWriter:
    """Appends finished cells to a run folder, rewriting each file atomically."""

    def __init__(self, run_dir: Path, *, resume: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.cells: list[dict[str, Any]] = []
        self.samples: list[dict[str, Any]] = []
        self.curves: list[dict[str, Any]] = []
        self.files: list[dict[str, Any]] = []
        if resume and (self.run_dir / CELLS).exists():
            cells = read_parquet(self.run_dir / CELLS)
            done = set(cells["cell_id"])
            self.cells = cells.to_dict("records")
            # Samples or curves of a cell that never reached cells.parquet are dropped:
            # that cell runs again.
            stores = ((SAMPLES, self.samples), (CURVES, self.curves), (FILES, self.files))
            for name, store in stores:
                if (self.run_dir / name).exists():
                    frame = read_parquet(self.run_dir / name)
                    store.extend(r for r in frame.to_dict("records") if r["cell_id"] in done)

    def done_ids(self) -> set[str]:
        return {row["cell_id"] for row in self.cells}

    def add(self, cell: Cell, outcome: Outcome, device: str, finished_at: str) -> dict[str, Any]:
        """Record one finished cell; returns its row."""
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
            **outcome.row,
        }
        for timer, values in outcome.samples.items():
            self.samples.extend(
                {"cell_id": cell.id, "timer": timer, "rep": i, "seconds": float(s)}
                for i, s in enumerate(values)
            )
        for name, step, t, value in outcome.curves:
            self.curves.append(
                {"cell_id": cell.id, "curve": name, "step": step, "time": t, "value": value}
            )
        self.files = [f for f in self.files if f["cell_id"] != cell.id]
        for name, kind, path, nbytes in outcome.files:
            self.files.append(
                {"cell_id": cell.id, "name": name, "kind": kind, "path": path, "bytes": nbytes}
            )
        self.cells = [r for r in self.cells if r["cell_id"] != cell.id] + [row]
        self.flush()
        return row

    def flush(self) -> None:
        _atomic_write_parquet(
            self.run_dir / SAMPLES, pd.DataFrame(self.samples, columns=SAMPLE_COLUMNS)
        )
        _atomic_write_parquet(
            self.run_dir / CURVES, pd.DataFrame(self.curves, columns=CURVE_COLUMNS)
        )
        _atomic_write_parquet(self.run_dir / FILES, pd.DataFrame(self.files, columns=FILE_COLUMNS))
        _atomic_write_parquet(self.run_dir / CELLS, pd.DataFrame(self.cells))

    def files_dir(self, cell_id: str) -> Path:
        """Where a cell's result files go (absolute, so any worker finds it)."""
        return (self.run_dir / FILES_DIR / cell_id).resolve()


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


def resolve_run_dir(path: str | Path) -> Path:
    """A run folder, or a suite folder (its newest run)."""
    path = Path(path)
    if not path.exists():
        raise ResultsError(f"{path}: no such results folder")
    if (path / RUN_JSON).exists() or (path / CELLS).exists():
        return path
    runs = sorted(p for p in path.iterdir() if p.is_dir() and (p / RUN_JSON).exists())
    if not runs:
        raise ResultsError(f"{path}: not a run folder (no {RUN_JSON}) and holds no runs")
    return runs[-1]


def load_run(path: str | Path) -> Run:
    """Read a run folder; missing or corrupt files raise ``ResultsError`` naming them."""
    run_dir = resolve_run_dir(path)
    meta_path = run_dir / RUN_JSON
    meta: dict[str, Any] = {}
    if meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ResultsError(f"{meta_path}: corrupt JSON ({exc})") from None
    cells = read_parquet(run_dir / CELLS)
    if "cell_id" not in cells.columns or "status" not in cells.columns:
        raise ResultsError(f"{run_dir / CELLS}: not a dynbench cells table (no cell_id/status)")
    samples = (
        read_parquet(run_dir / SAMPLES)
        if (run_dir / SAMPLES).exists()
        else pd.DataFrame(columns=SAMPLE_COLUMNS)
    )
    curves = (
        read_parquet(run_dir / CURVES)
        if (run_dir / CURVES).exists()
        else pd.DataFrame(columns=CURVE_COLUMNS)
    )
    files = (
        read_parquet(run_dir / FILES)
        if (run_dir / FILES).exists()
        else pd.DataFrame(columns=FILE_COLUMNS)
    )
    return Run(run_dir, meta, cells, samples, curves, files)


def key_columns(cells: pd.DataFrame) -> list[str]:
    """Columns that identify what a cell measured, seed aside: task, components, params."""
    reserved = set(BASE_COLUMNS) | set(STATUS_COLUMNS)
    comps = [
        c
        for c in cells.columns
        if c not in reserved and not c.startswith(("param.", "time.", "mem.", "metric."))
    ]
    params = sorted(c for c in cells.columns if c.startswith("param."))
    return ["task", *comps, *params]


def measure_columns(cells: pd.DataFrame) -> list[str]:
    return [c for c in cells.columns if c.startswith(("time.", "mem.", "metric."))]
