"""Running one ODE-task cell the way the harness does (bench.testing.run_cell), with the
task's cached references kept in the test's own folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import Registry, testing
from tests.plugins._problems import registry

REGISTRY = registry()


def run_cell(
    task: str,
    component: str,
    tmp_path: Path,
    task_params: dict[str, Any] | None = None,
    *,
    registry: Registry = REGISTRY,
    output: Path | None = None,
    check: bool = True,
    **solver_params: Any,
) -> testing.CellResult:
    """``task`` with the solver ``component`` (its parameters as keywords) in slot
    ``solver``: 1 warm-up call, 2 timed repeats, seed 0, through the worker's own path.
    References are cached under ``tmp_path`` (``$DYNBENCH_CACHE``, which the worker
    reads), so a test never reads or fills the user's cache. ``registry``: one that
    also holds a test's own solver; ``output``: a folder for the cell's result files."""
    params = {**(task_params or {}), **{f"solver.{k}": v for k, v in solver_params.items()}}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DYNBENCH_CACHE", str(tmp_path))
        return testing.run_cell(
            task,
            {"solver": component},
            params,
            repeats=2,
            warmup=1,
            registry=registry,
            output=output,
            check=check,
        )
