"""Running one physics cell the way the harness does (bench.testing.run_cell), its
result files kept under the test's folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import Registry, testing


def run_cell(
    task: str,
    components: dict[str, str | tuple[str, dict[str, Any]]],
    tmp_path: Path,
    seed: int = 0,
    registry: Registry | None = None,
    **task_params: Any,
) -> testing.CellResult:
    """``components``: slot -> plugin name, or (name, that plugin's parameters);
    ``registry``: one that also holds a test's own plugins. One timed run, no warm-up;
    the files land in ``tmp_path/files/<cell id>/`` (see ``result_file``)."""
    names, params = {}, dict(task_params)
    for slot, choice in components.items():
        name, values = choice if isinstance(choice, tuple) else (choice, {})
        names[slot] = name
        params.update((f"{slot}.{k}", v) for k, v in values.items())
    return testing.run_cell(task, names, params, seed, registry=registry, output=tmp_path)


def result_file(cell: testing.CellResult, tmp_path: Path, name: str) -> Path:
    """Where the cell run with ``tmp_path`` saved its result file ``name``."""
    (path,) = [path for saved, _, path, _ in cell.files if saved == name]
    return tmp_path / path
