"""Plugin tests run single-threaded (the frozen heap their modules opt into is
tests/conftest.py's ``frozen_heap``).

The ODE problems here hold 2-32 numbers per state, so every torch op is pure
overhead and intra-op threads only contend: 30 steps of ode.neural_ode_fit took
0.41 s with 1 thread and 2.56 s with 2 on a 2-core machine under load.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

import bench.worker


@pytest.fixture(autouse=True)
def _single_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    # A cell without a `threads` setting gets the worker's default back, which the
    # worker reads once per process: in a whole `pytest` run an earlier harness test
    # has read torch's own (2 here), so bench.testing's cells would run on 2 threads.
    # bench.testing.run_cell takes no `threads`; this is the same for the test's cells.
    monkeypatch.setattr(bench.worker, "_DEFAULT_THREADS", 1)
    yield
    torch.set_num_threads(before)
