"""Plugin tests run single-threaded.

The ODE problems here hold 2-32 numbers per state, so every torch op is pure
overhead and intra-op threads only contend: 30 steps of ode.neural_ode_fit took
0.41 s with 1 thread and 2.56 s with 2 on a 2-core machine under load.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
