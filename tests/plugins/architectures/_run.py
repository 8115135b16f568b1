"""Running one architectures-task cell the way the harness does (bench.testing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import testing


def run_cell(
    task: str,
    components: dict[str, str | tuple[str, dict[str, Any]]],
    tmp_path: Path,
    seed: int = 0,
    **task_params: Any,
) -> testing.CellResult:
    """``components``: slot -> name, or (name, that plugin's parameters)."""
    names, params = {}, dict(task_params)
    for slot, choice in components.items():
        name, values = choice if isinstance(choice, tuple) else (choice, {})
        names[slot] = name
        params.update((f"{slot}.{k}", v) for k, v in values.items())
    return testing.run_cell(task, names, params, seed, repeats=2, warmup=1, output=tmp_path)
