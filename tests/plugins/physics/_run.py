"""Running one physics cell in-process with a real CellContext, files kept in tmp."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import CellContext, Plugin, Task


def run_cell(
    task_cls: type[Task],
    components: dict[str, Plugin],
    tmp_path: Path,
    seed: int = 0,
    **task_params: Any,
) -> CellContext:
    task = task_cls(**task_params)
    ctx = CellContext(
        device="cpu",
        seed=seed,
        repeats=1,
        warmup=0,
        components=components,
        params=task.values,
        cache_dir=tmp_path,
        files_dir=tmp_path / "files",
        run_dir=tmp_path,
    )
    task.run(ctx)
    return ctx
