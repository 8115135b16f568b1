"""Running one architectures-task cell the way the harness does, with a real CellContext."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import CellContext, Registry, get_plugin_manager

REGISTRY = Registry(get_plugin_manager())


def run_cell(
    task: str,
    components: dict[str, tuple[str, dict[str, Any]]],
    tmp_path: Path,
    seed: int = 0,
    **task_params: Any,
) -> CellContext:
    cls = REGISTRY.get("task", task)
    slots = {
        slot: REGISTRY.get(cls.components[slot], name)(**values)
        for slot, (name, values) in components.items()
    }
    ctx = CellContext(
        device="cpu",
        seed=seed,
        repeats=2,
        warmup=1,
        components=slots,
        params=cls.resolve_params(task_params),
        cache_dir=tmp_path,
        files_dir=tmp_path / "files",
        run_dir=tmp_path,
    )
    cls(**task_params).run(ctx)
    return ctx
