"""What a task sees while it runs one cell: its components and the recorders."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.artifacts import DEFAULT_FILES_LIMIT_MB, FileStore
from bench.base import Diverged, Plugin
from bench.timing import PeakMemory, flush_buffer, is_cuda, summarize, time_callable


@dataclass
class CellRecord:
    """Everything one cell measured; the runner turns it into result rows."""

    times: dict[str, list[float]] = field(default_factory=dict)
    memory: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    curves: list[tuple[str, int, float, float]] = field(default_factory=list)
    files: list[tuple[str, str, str, int]] = field(default_factory=list)  # name, kind, path, bytes

    def add_file(self, info: tuple[str, str, str, int]) -> None:
        """List a result file; one saved again under the same name replaces its entry."""
        self.files = [f for f in self.files if f[0] != info[0]] + [tuple(info)]

    def apply(self, event: tuple[Any, ...]) -> None:
        """Replay one event that ``CellContext`` streamed (see ``CellContext.listener``)."""
        kind = event[0]
        if kind == "times":
            self.times[event[1]] = list(event[2])
        elif kind == "memory":
            self.memory[event[1]] = int(event[2])
        elif kind == "metric":
            self.metrics[event[1]] = float(event[2])
        elif kind == "curve":
            self.curves.append(tuple(event[1]))
        elif kind == "file":
            self.add_file(tuple(event[1]))
        else:
            raise ValueError(f"unknown record event {kind!r}")

    def flat(self) -> dict[str, Any]:
        """Flat ``time.*``, ``mem.*`` and ``metric.*`` columns."""
        row: dict[str, Any] = {}
        for name, samples in self.times.items():
            for stat, value in summarize(samples).items():
                row[f"time.{name}.{stat}"] = value
        for name, nbytes in self.memory.items():
            row[f"mem.{name}"] = nbytes
        for name, value in self.metrics.items():
            row[f"metric.{name}"] = value
        return row


def default_cache_dir() -> Path:
    """Where tasks cache expensive references (``$DYNBENCH_CACHE`` overrides)."""
    env = os.environ.get("DYNBENCH_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dynbench"


class CellContext:
    """Handed to ``Task.run``.

    Attributes:
        device: ``"cpu"`` or ``"cuda:N"``.
        seed: the cell's seed; the harness has already seeded torch, numpy and random.
        repeats: timed repetitions the suite asks for; ``warmup``: untimed calls first.
        components: slot name -> plugin instance (``ctx.components["solver"]``).
        params: the task's own resolved parameters (also ``task.values``).
        cache_dir: a directory for cached references shared across runs.
        files_dir: where ``artifact`` writes this cell's result files (None: nowhere,
            e.g. a task run by hand; files are then encoded and counted, not kept).
    """

    def __init__(
        self,
        *,
        device: str,
        seed: int,
        repeats: int,
        warmup: int,
        components: dict[str, Plugin],
        params: dict[str, Any],
        cache_dir: Path | None = None,
        files_dir: Path | None = None,
        run_dir: Path | None = None,
        files_limit_mb: float = DEFAULT_FILES_LIMIT_MB,
    ) -> None:
        self.device = device
        self.seed = seed
        self.repeats = repeats
        self.warmup = warmup
        self.components = components
        self.params = params
        self.cache_dir = cache_dir or default_cache_dir()
        self.record = CellRecord()
        self.files_dir = files_dir
        self._files = FileStore(files_dir, run_dir, int(files_limit_mb * 2**20))
        # The worker sets this to stream each recorded value to the parent process, so
        # that a cell that crashes or hangs later still keeps what it measured.
        self.listener: Callable[[tuple[Any, ...]], None] | None = None

    def scratch(self) -> CellContext:
        """A context for untimed work that must leave no trace (a task's own warm-up
        runs): same device, seed, components and parameters; what it records is
        dropped, and it cannot save files."""
        return CellContext(
            device=self.device,
            seed=self.seed,
            repeats=self.repeats,
            warmup=0,
            components=self.components,
            params=self.params,
            cache_dir=self.cache_dir,
        )

    def _emit(self, event: tuple[Any, ...]) -> None:
        if self.listener is not None:
            self.listener(event)

    def time(
        self,
        name: str,
        fn: Callable[[], Any],
        *,
        repeats: int | None = None,
        warmup: int | None = None,
        flush_l2: bool = False,
    ) -> Any:
        """Time ``fn()`` (after untimed warm-up calls); also record its peak memory.

        Returns what the last call returned, so the timed work's output can be
        checked afterwards. Samples land in ``time.<name>.*`` and
        ``samples.parquet``; peak memory above the start in ``mem.<name>``.
        """
        if flush_l2 and is_cuda(self.device):
            flush_buffer(self.device)  # allocated outside the measured region
        with PeakMemory(self.device) as mem:
            samples, result = time_callable(
                fn,
                device=self.device,
                repeats=self.repeats if repeats is None else repeats,
                warmup=self.warmup if warmup is None else warmup,
                flush_l2=flush_l2,
            )
        self.record.times[name] = samples
        self.record.memory[name] = mem.peak_bytes
        self._emit(("times", name, list(samples)))
        self._emit(("memory", name, mem.peak_bytes))
        return result

    def add_time(self, name: str, seconds: float) -> None:
        """Record a duration the task measured itself (e.g. a training loop)."""
        self.record.times.setdefault(name, []).append(float(seconds))
        self._emit(("times", name, list(self.record.times[name])))

    @contextlib.contextmanager
    def memory(self, name: str) -> Iterator[PeakMemory]:
        """Record the peak memory of a ``with`` block in ``mem.<name>``."""
        with PeakMemory(self.device) as mem:
            yield mem
        self.record.memory[name] = mem.peak_bytes
        self._emit(("memory", name, mem.peak_bytes))

    def metric(self, name: str, value: Any) -> float:
        """Record a scalar metric (a number or a one-element tensor)."""
        number = float(value.item() if hasattr(value, "item") else value)
        self.record.metrics[name] = number
        self._emit(("metric", name, number))
        return number

    def curve(self, name: str, step: int, value: Any, time: float = math.nan) -> None:
        """Record one point of a convergence curve (``curves.parquet``)."""
        number = float(value.item() if hasattr(value, "item") else value)
        point = (name, int(step), float(time), number)
        self.record.curves.append(point)
        self._emit(("curve", point))

    def artifact(
        self,
        name: str,
        value: Any,
        *,
        affine: Any = None,
        svg: bool = False,
        vmin: float | None = None,
        vmax: float | None = None,
        cmap: str | None = None,
    ) -> list[str]:
        """Keep a result file of this cell: a picture, a volume, a figure or raw bytes.

        A 2-D array (or ``(H, W, 3|4)``) becomes a PNG (floats scaled to ``vmin``..``vmax``,
        default the array's range; ``cmap`` colours grey); an array with ``affine`` (4x4,
        voxel to mm) a NIfTI ``.nii.gz``; a matplotlib figure a PNG (and an SVG with
        ``svg=True``), closed afterwards; ``bytes``/``str`` are written as given (the
        name carries the suffix). The suffix is added where missing. The file is written
        at once, so it survives a later failure of the cell. Returns the file names.
        Raises ``bench.artifacts.ArtifactError`` for a bad name or value, or when the
        cell's files would pass the suite's ``files_limit_mb``.
        """
        infos = self._files.save(
            name, value, affine=affine, svg=svg, vmin=vmin, vmax=vmax, cmap=cmap
        )
        for info in infos:
            self.record.add_file(info.as_tuple())
            self._emit(("file", info.as_tuple()))
        return [info.name for info in infos]

    def check_finite(self, name: str, value: Any) -> None:
        """Raise ``Diverged`` if ``value`` (number or tensor) has a NaN or Inf."""
        if hasattr(value, "isfinite"):
            ok = bool(value.isfinite().all())
        else:
            ok = math.isfinite(float(value))
        if not ok:
            raise Diverged(f"{name} is not finite")
