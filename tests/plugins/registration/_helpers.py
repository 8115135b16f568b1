"""Running one registration cell with a real CellContext, and writing tiny suites."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from bench import CellContext, Registry, get_plugin_manager

REGISTRY = Registry(get_plugin_manager())
TINY = {"downsample": 3, "amplitude": 3.0}  # a 39 x 33 slice of 6 mm voxels


def run_pairwise(
    method: str,
    tmp_path: Path,
    task: dict[str, Any] | None = None,
    warmup: int = 0,
    backend: str = "warp.eager",
    **method_params: Any,
) -> CellContext:
    # As the harness seeds a cell (torch, numpy, random), so that a method's result does
    # not depend on which tests ran before it in this process (voxelmorph's recovery read
    # 0.62 of the starting error alone and 0.71 after other tests, threshold 0.8).
    import random

    import numpy as np

    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    cls = REGISTRY.get("task", "registration.pairwise")
    values = {**TINY, **(task or {})}
    components = {
        "method": REGISTRY.get("method", method)(**method_params),
        "backend": REGISTRY.get("backend", backend)(),
    }
    ctx = CellContext(
        device="cpu",
        seed=0,
        repeats=1,
        warmup=warmup,
        components=components,
        params=cls.resolve_params(values),
        cache_dir=tmp_path,
    )
    cls(**values).run(ctx)
    return ctx


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
