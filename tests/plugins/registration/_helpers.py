"""Running one registration cell with a real CellContext, and writing tiny suites."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bench import Registry, get_plugin_manager, testing

REGISTRY = Registry(get_plugin_manager())
TINY = {"downsample": 3, "amplitude": 3.0}  # a 39 x 33 slice of 6 mm voxels


def run_pairwise(
    method: str,
    tmp_path: Path,
    task: dict[str, Any] | None = None,
    warmup: int = 0,
    backend: str = "warp.eager",
    **method_params: Any,
) -> testing.CellResult:
    """One ``registration.pairwise`` cell on the tiny pair, through the worker's own path
    (bench.testing.run_cell: validated, seeded, state put back)."""
    params = {**TINY, **(task or {}), **{f"method.{k}": v for k, v in method_params.items()}}
    return testing.run_cell(
        "registration.pairwise",
        {"method": method, "backend": backend},
        params,
        warmup=warmup,
        registry=REGISTRY,
        output=tmp_path,
    )


def write_suite(path: Path, entries: list[dict[str, Any]], **settings: Any) -> str:
    suite = {
        "suite": "registration-test",
        "device": "cpu",
        "seeds": [0],
        "repeats": 1,
        "warmup": 0,
        "threads": 1,
        **settings,
        "benchmarks": entries,
    }
    path.write_text(yaml.safe_dump(suite))
    return str(path)
