"""Running one task cell the way the harness does, with a real CellContext."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import CellContext, Solver, Task
from tests.plugins._problems import registry

REGISTRY = registry()


def run_cell(
    task: str | type[Task],
    component: str | Solver,
    tmp_path: Path,
    task_params: dict[str, Any] | None = None,
    **solver_params: Any,
) -> CellContext:
    cls = REGISTRY.get("task", task) if isinstance(task, str) else task
    solver = component
    if isinstance(component, str):
        solver = REGISTRY.get("solver", component)(**solver_params)
    params = cls.resolve_params(task_params or {})
    ctx = CellContext(
        device="cpu",
        seed=0,
        repeats=2,
        warmup=1,
        components={"solver": solver},
        params=params,
        cache_dir=tmp_path,
    )
    cls(**(task_params or {})).run(ctx)
    return ctx
