"""Pure-torch references for every kernel in this package.

Shared by the kernels' ``backend="torch"`` path, the tests and the benchmarks.
Each section belongs to one kernel family; keep them independent.
"""

from __future__ import annotations

import torch  # noqa: F401

# ---------------------------------------------------------------------------
# warp / compose / svf_exp (kernels/warp.py, kernels/svf.py)
# ---------------------------------------------------------------------------

# (section: warp)

# ---------------------------------------------------------------------------
# sine_mlp (kernels/sine_mlp.py)
# ---------------------------------------------------------------------------

# (section: sine_mlp)
