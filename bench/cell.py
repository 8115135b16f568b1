"""The cell model: one unit of work (``Cell``), its stable id, and what running it
gave (``Outcome``). Plain data: the suite makes cells, an executor runs them, the
results layer stores them; this module imports none of those."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Any

canonical_json = functools.partial(json.dumps, sort_keys=True, default=str)


def id_prefix(components_json: str, given_json: str) -> str:
    """The part of an id's JSON that the seeds of one combination share, from the JSON
    of its components and of its given values (each ``json.dumps(.., sort_keys=True)``)."""
    return f'{{"components": {components_json}, "given": {given_json}, '


def cell_id(prefix: str, seed: int, task: str, threads: int | None) -> str:
    """sha1 of ``json.dumps({task, components, given, seed[, threads]}, sort_keys=True)``,
    built from its sorted parts so that the seeds of one combination share the
    ``components``/``given`` part (``prefix``, from ``id_prefix``). ``threads`` enters
    only when set: a thread sweep is a sweep, and ids without it stay as they were."""
    tail = f', "threads": {threads}' if threads is not None else ""
    blob = f'{prefix}"seed": {seed}, "task": {json.dumps(task)}{tail}}}'
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


#: a tuned entry's cells (``bench.tuning``) carry a ``role``: a setting of its grid on
#: the validation seeds, the chosen setting on the test seeds, or a test cell whose
#: setting is no longer the choice (``bench.tuned``)
VALIDATION, TEST, SUPERSEDED = "validation", "test", "superseded"


@dataclass(frozen=True, slots=True)
class Cell:
    """One unit of work: a task, its components and parameters, and a seed."""

    suite: str
    bench: int  # index of the benchmark entry in the suite
    label: str
    task: str
    components: dict[str, str]  # slot -> plugin name
    task_params: dict[str, Any]  # resolved (defaults filled in)
    component_params: dict[str, dict[str, Any]]  # slot -> resolved params
    given: dict[str, Any]  # the keys the suite set explicitly, flat
    seed: int
    # one field per setting of bench.settings.SETTINGS but seeds
    device: str
    repeats: int
    warmup: int
    timeout: float
    threads: int | None = None  # torch intra-op threads; None: leave torch's default
    files_limit_mb: float = 500.0  # most result files one cell may write
    fresh_worker: bool = False  # run in a new worker process, not a reused one
    files_dir: str = ""  # where its result files go; set by the runner, not the suite
    # VALIDATION or TEST in a tuned entry (SUPERSEDED once recorded), "" elsewhere; not in
    # the id
    role: str = ""
    # the id, computed on first use (slots: a million cells take ~0.3 KB each)
    _id: str = field(default="", init=False, repr=False, compare=False)

    @property
    def id(self) -> str:
        """Stable across runs: a hash of what the suite asked for, not of defaults.
        (Computed once: a frozen dataclass's fields do not change.)"""
        if not self._id:
            prefix = id_prefix(canonical_json(self.components), canonical_json(self.given))
            object.__setattr__(self, "_id", cell_id(prefix, self.seed, self.task, self.threads))
        return self._id

    def param_columns(self) -> dict[str, Any]:
        """``param.<name>`` and ``param.<slot>.<name>`` columns, defaults included."""
        cols = {f"param.{k}": v for k, v in self.task_params.items()}
        for slot, values in self.component_params.items():
            cols.update({f"param.{slot}.{k}": v for k, v in values.items()})
        return cols

    def describe(self) -> str:
        comps = " ".join(f"{s}={n}" for s, n in self.components.items())
        given = " ".join(f"{k}={v}" for k, v in self.given.items() if k not in self.components)
        return " ".join(p for p in (self.task, comps, given, f"seed={self.seed}") if p)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.init}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cell:
        return cls(**data)


@dataclass
class Outcome:
    """What one cell produced, in plain types so it can cross a pipe."""

    status: str
    error: str = ""
    row: dict[str, Any] = field(default_factory=dict)  # time.*, mem.*, metric.*
    samples: dict[str, list[float]] = field(default_factory=dict)
    curves: list[tuple[str, int, float, float]] = field(default_factory=list)
    wall: float = 0.0
    threads: int | None = None  # torch intra-op threads the cell ran with
    device: str = ""  # the device it ran on, resolved where it ran ("" if it never started)
    files: list[tuple[str, str, str, int]] = field(default_factory=list)  # result files
    traceback: str = ""  # the full traceback of a plugin's exception
