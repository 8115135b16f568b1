"""Tight-tolerance reference trajectories from scipy, cached on disk."""

from __future__ import annotations

import functools
import hashlib
import inspect
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


def code_digest(fn: Callable[..., Any]) -> str | None:
    """A digest of the code a reference is computed from: ``fn``'s source, the values its
    closure holds and the module constants it reads, so that a cached reference of a
    right-hand side that has since changed is recomputed, not trusted (the cache key
    held its name and parameters only, and an edited RHS read its stale reference:
    final error 0.98 for 4.2e-8). A ``functools.partial`` is unwrapped (its arguments
    count), a bound method to its function, a callable object to its class's
    ``__call__``. None where no Python function is found (a builtin): no digest can
    vouch for it, and ``cached`` then computes instead of trusting a file."""
    digest = hashlib.sha256()
    while True:
        if isinstance(fn, functools.partial):
            _digest_value(digest, "args", list(fn.args))
            _digest_value(digest, "keywords", sorted(fn.keywords.items()))
            fn = fn.func
        elif inspect.ismethod(fn):
            fn = fn.__func__
        elif not inspect.isfunction(fn) and inspect.isfunction(
            call := inspect.getattr_static(type(fn), "__call__", None)
        ):
            fn = call
        else:
            break
    if not inspect.isfunction(fn):
        return None
    try:
        digest.update(inspect.getsource(fn).encode())
    except (OSError, TypeError):  # no source file: the compiled code itself
        digest.update(fn.__code__.co_code)
        digest.update(repr(fn.__code__.co_consts).encode())
    for cell in fn.__closure__ or ():
        try:
            _digest_value(digest, "", cell.cell_contents)
        except ValueError:  # an empty cell
            pass
    for name in fn.__code__.co_names:  # the module constants it reads (SPIRAL_A)
        if name in fn.__globals__:
            _digest_value(digest, name, fn.__globals__[name])
    return digest.hexdigest()[:16]


def _digest_value(digest: Any, name: str, value: Any) -> None:
    """Plain data into ``digest``, exactly: numbers and text by repr, arrays by their
    bytes (numpy's repr elides the middle of a large one), containers item by item.
    Anything else (a module, a function, an object whose repr holds its address, which
    changes every process) is left out: the source names it."""
    if isinstance(value, np.ndarray):
        digest.update(f"{name}:{value.dtype}{value.shape}".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, (bool, int, float, complex, str, bytes)) or value is None:
        digest.update(f"{name}={value!r}".encode())
    elif isinstance(value, (tuple, list)):
        digest.update(f"{name}:{type(value).__name__}{len(value)}".encode())
        for item in value:
            _digest_value(digest, "", item)


def cache_path(cache_dir: Path, key: dict[str, Any]) -> Path:
    """``<cache_dir>/ode_reference/<problem>-<hash of key>.npz``."""
    text = json.dumps(key, sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:20]
    return Path(cache_dir) / "ode_reference" / f"{key.get('problem', 'ode')}-{digest}.npz"


def cached(
    cache_dir: Path,
    key: dict[str, Any],
    compute: Callable[[], np.ndarray],
    code: Callable[..., Any] | None = None,
) -> np.ndarray:
    """The array stored under ``key`` (with ``code``'s digest, the function the array is
    computed from: ``code_digest``), computing and storing it on a miss.

    The write is atomic (a temporary file in the same folder, then
    ``os.replace``), so concurrent workers never read half a file; the key is
    stored beside the array and checked on load, so a hash collision or a
    stale file is recomputed rather than trusted.
    """
    if code is not None:
        digest = code_digest(code)
        if digest is None:  # nothing vouches for the code: computed, never read back
            return np.asarray(compute(), dtype=np.float64)
        key = {**key, "code": digest}
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
