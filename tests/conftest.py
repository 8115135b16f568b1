"""Test-wide set-up: CPU runs Triton kernels in the interpreter; GPU tests skip cleanly."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator

import pytest

try:
    import torch

    _HAS_CUDA = torch.cuda.is_available()
except ImportError:  # pragma: no cover - torch is a hard dependency
    _HAS_CUDA = False

# Must be set before triton.jit decorates any kernel (at import of kernels.*).
if not _HAS_CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _HAS_CUDA:
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(autouse=True)
def _no_inherited_terminal_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests read the output of a console that is not a terminal (200 columns, as in a
    CI log): a ``COLUMNS`` or ``LINES`` inherited from the shell, or set to 80 by
    pytest-xdist's workers, would fold their tables. A test that needs a width sets
    ``COLUMNS`` itself."""
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)


@pytest.fixture(scope="module")
def frozen_heap() -> Iterator[None]:
    """A module that runs many cells in this process (bench.testing, bench.worker's
    run_cell) freezes the heap once, as ``bench run --in-process`` does: the worker's
    full collection after each cell then skips torch, the plugins and pytest:
    tests/plugins/test_ode_tasks.py's 26 cells spent 3.8 s of CPU in it, 0.6 s on a
    frozen heap (2-core box). Opt in with
    ``pytestmark = pytest.mark.usefixtures("frozen_heap")``."""
    froze = gc.get_freeze_count() == 0
    if froze:
        gc.collect()
        gc.freeze()
    yield
    if froze:  # frozen objects are never freed: give the heap back
        gc.unfreeze()
