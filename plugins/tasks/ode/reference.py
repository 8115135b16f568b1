"""Tight-tolerance reference trajectories from scipy, cached on disk."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy.integrate import solve_ivp

from bench import atomic_path

# rtol = atol = 1e-12 keeps the reference's own error near 1e-11 on these problems,
# far below the best float64 solver error a cell is expected to measure (~1e-9).
REFERENCE_TOL = 1e-12


def scipy_reference(
    rhs: Callable[[float, np.ndarray], np.ndarray],
    y0: np.ndarray,
    t: np.ndarray,
    method: str = "DOP853",
    tol: float = REFERENCE_TOL,
) -> np.ndarray:
    """``solve_ivp`` at every time in ``t``; returns ``(len(t), len(y0))`` float64."""
    sol = solve_ivp(
        rhs, (float(t[0]), float(t[-1])), np.asarray(y0, dtype=np.float64),
        method=method, t_eval=t, rtol=tol, atol=tol,
    )  # fmt: skip
    if not sol.success:
        raise RuntimeError(f"reference solve ({method}) failed: {sol.message}")
    return sol.y.T.copy()


def cache_path(cache_dir: Path, key: dict[str, Any]) -> Path:
    """``<cache_dir>/ode_reference/<problem>-<hash of key>.npz``."""
    text = json.dumps(key, sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:20]
    return Path(cache_dir) / "ode_reference" / f"{key.get('problem', 'ode')}-{digest}.npz"


def cached(cache_dir: Path, key: dict[str, Any], compute: Callable[[], np.ndarray]) -> np.ndarray:
    """The array stored under ``key``, computing and storing it on a miss.

    The write is atomic (a temporary file in the same folder, then
    ``os.replace``), so concurrent workers never read half a file; the key is
    stored beside the array and checked on load, so a hash collision or a
    stale file is recomputed rather than trusted.
    """
    path = cache_path(cache_dir, key)
    text = json.dumps(key, sort_keys=True)
    if path.exists():
        try:
            with np.load(path) as data:
                if str(data["key"]) == text:
                    return data["y"]
        except (OSError, ValueError, KeyError):
            pass  # unreadable or foreign: recompute and overwrite
    y = np.asarray(compute(), dtype=np.float64)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, y=y, key=np.asarray(text))
    return y
