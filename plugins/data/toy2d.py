"""The lecture's 2-D classification sets (TensorFlow Playground style), with known truth.

``moons`` and ``circles`` come from scikit-learn's generators; ``spirals`` (two
interleaved arms) and ``xor`` (the sign of x1 x2 on a square) are synthesised here.
Every set has two classes, is drawn from a seed, and comes with the box
``domain(name)`` the figures and the domain metrics cover.
"""

from __future__ import annotations

import numpy as np

DATASETS = ("moons", "circles", "spirals", "xor")

#: (low, high) per axis of the box each set lives in, with some margin around the data
_DOMAINS = {
    "moons": ((-2.0, 3.0), (-1.5, 2.0)),
    "circles": ((-1.6, 1.6), (-1.6, 1.6)),
    "spirals": ((-1.6, 1.6), (-1.6, 1.6)),
    "xor": ((-1.5, 1.5), (-1.5, 1.5)),
}


def domain(name: str) -> tuple[tuple[float, float], tuple[float, float]]:
    """The box ``((x_low, x_high), (y_low, y_high))`` of set ``name``."""
    _check(name)
    return _DOMAINS[name]


def _check(name: str) -> None:
    if name not in DATASETS:
        raise ValueError(f"unknown 2-D data set {name!r} (known: {', '.join(DATASETS)})")


def make(name: str, n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points ``(n, 2)`` float32 and their labels ``(n,)`` int64 (0 or 1)."""
    _check(name)
    rng = np.random.default_rng(seed)
    if name == "moons":
        from sklearn.datasets import make_moons

        x, y = make_moons(n, noise=noise, random_state=seed)
    elif name == "circles":
        from sklearn.datasets import make_circles

        x, y = make_circles(n, noise=noise, factor=0.5, random_state=seed)
    elif name == "spirals":
        # two arms r = t, angle = 3 pi t (+ pi for the second arm), t in (0.1, 1]:
        # one and a half turns each, the arms 0.33 apart along a ray
        y = rng.integers(0, 2, size=n)
        t = 0.1 + 0.9 * np.sqrt(rng.random(n))
        angle = 3.0 * np.pi * t + np.pi * y
        x = 1.2 * t[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
        x = x + noise * rng.normal(size=x.shape)
    else:  # xor
        x = rng.uniform(-1.0, 1.0, size=(n, 2))
        y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
        x = x + noise * rng.normal(size=x.shape)
    return x.astype(np.float32), np.asarray(y, dtype=np.int64)


def grid(name: str, resolution: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A ``resolution`` x ``resolution`` grid over the set's box: the points
    ``(resolution**2, 2)`` float32 and the two coordinate axes."""
    (x0, x1), (y0, y1) = domain(name)
    xs = np.linspace(x0, x1, resolution, dtype=np.float32)
    ys = np.linspace(y0, y1, resolution, dtype=np.float32)
    gx, gy = np.meshgrid(xs, ys, indexing="xy")
    return np.stack([gx.ravel(), gy.ravel()], axis=1), xs, ys
