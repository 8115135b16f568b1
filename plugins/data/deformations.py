"""Random deformations with a known inverse: the truths of the registration pairs.

Three generators, chosen by ``generate(kind, ...)``; only the first is a model that a
method optimises (``svf``, which uses the same scaling and squaring), the other two are
built so that no method shares them:

- ``svf``: phi = exp(v) of a stationary velocity (Gaussian-filtered noise, max |v| =
  amplitude), by scaling and squaring in 7 steps on the grid; inverse exp(-v). The
  exact inverse of the grid map is not exp(-v) to the last digit: its residual is
  measured by composing the two grid maps with linear interpolation.
- ``bspline``: phi(x) = x + u(x), u a cubic B-spline free-form deformation (Rueckert
  et al. 1999) with control points every ``spacing`` voxels (default a sixth of the
  largest side) and random Gaussian coefficients, scaled so that max |u| over
  components and voxels is the amplitude. Invertible by construction: every control
  point's displacement is kept below spacing / 2.046 (2-D) or spacing / 2.479 (3-D)
  per component, the sufficient condition for a positive Jacobian determinant of Choi
  and Lee (2000) (the spacing is widened until it holds, ``notes["spacing"]``). The
  inverse psi (phi(x + psi(x)) = x) is found by the fixed-point iteration
  psi <- -u(x + psi), the spline evaluated exactly (``scipy.ndimage.map_coordinates``,
  order 3, unfiltered coefficients), until max |psi + u(x + psi)| < ``BSPLINE_TOL``.
- ``tv_rk4``: the flow of a time-varying velocity v(x, t) = (1 - t) a(x) + t b(x), a
  and b random Fourier series (``FOURIER_MODES`` plane waves of wavelengths between a
  third of the largest side and the whole of it, random directions and phases), both
  scaled so that max |v| over components, voxels and t in [0, 1] is the amplitude
  (|v| is convex in t, so its maximum is at t = 0 or 1). phi is the time-1 map,
  integrated by classical RK4 in ``RK4_STEPS`` steps from every voxel; the inverse is
  the backward integration (dy/ds = -v(y, 1 - s)) from every voxel. The velocity is
  analytic, evaluated exactly at every RK4 stage: the only error is RK4's (order 4).

A ``Deformation`` gives the forward displacement (the moving image is the template
read at x + forward(x)), its inverse (the registration's truth: moving(x +
inverse(x)) = fixed(x)) and ``residual``: max over the grid of |phi(psi(x)) - x| in
voxels, evaluated by the generator itself (exact spline, RK4 from psi's points; for
``svf`` the linear interpolation of the grid map).

Displacements are (ndim, *S) float32 in voxels, channel i along array axis i.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import ndimage

from kernels.reference import compose_reference, svf_exp_reference

GENERATORS = ("svf", "bspline", "tv_rk4")
#: scaling-and-squaring steps of the SVF truth (as the methods use: 7)
SVF_STEPS = 7
#: Choi and Lee's bound: a cubic B-spline FFD is locally injective when every control
#: point's displacement is below spacing / K per component
CHOI_LEE = {2: 2.046, 3: 2.479}
#: the bound is kept with this margin (max |c| <= MARGIN * spacing / K)
BSPLINE_MARGIN = 0.9
#: the B-spline inverse's fixed-point tolerance (voxels, max over the grid)
BSPLINE_TOL = 1e-6
BSPLINE_MAX_ITERATIONS = 500
RK4_STEPS = 32
FOURIER_MODES = 12


@dataclass(frozen=True)
class Deformation:
    """phi(x) = x + forward(x) and its inverse psi(x) = x + inverse(x) (voxels)."""

    kind: str
    forward: np.ndarray
    inverse: np.ndarray
    #: max |phi(psi(x)) - x| over the grid (voxels), by the generator's own evaluation
    residual: float
    notes: dict = field(default_factory=dict)


def grid_points(shape: tuple[int, ...]) -> np.ndarray:
    """Every voxel's coordinates, (ndim, N) float64, in C order."""
    axes = [np.arange(n, dtype=np.float64) for n in shape]
    return np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")])


# --- svf --------------------------------------------------------------------------------


def random_velocity(
    shape: tuple[int, ...], amplitude: float, seed: int, smoothness: float | None = None
) -> np.ndarray:
    """A smooth random velocity (ndim, *shape) in voxels: white noise filtered by a
    Gaussian of ``smoothness`` voxels (default an eighth of the largest side), then
    scaled so that max |v| over components and voxels is ``amplitude``."""
    rng = np.random.default_rng(seed)
    sigma = max(shape) / 8.0 if smoothness is None else smoothness
    fields = [ndimage.gaussian_filter(rng.normal(size=shape), sigma) for _ in shape]
    v = np.stack(fields)
    peak = float(np.abs(v).max())
    return (v * (amplitude / peak if peak > 0 else 0.0)).astype(np.float32)


def exp_velocity(velocity: np.ndarray) -> np.ndarray:
    """Displacement of exp(v) by scaling and squaring (``kernels.reference``, 7 steps, in
    float64; border padding so that the field continues past the edges)."""
    v = torch.from_numpy(np.asarray(velocity, dtype=np.float64))[None]
    disp = svf_exp_reference(v, steps=SVF_STEPS, padding="border")
    return disp[0].numpy().astype(np.float32)


def compose_grid(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """inner(x) + outer(x + inner(x)), the outer grid field read by linear interpolation
    (border values outside)."""
    a = torch.from_numpy(np.asarray(outer, np.float64))[None]
    b = torch.from_numpy(np.asarray(inner, np.float64))[None]
    return compose_reference(a, b, padding="border")[0].numpy()


def svf(shape, amplitude, seed, smoothness=None) -> Deformation:
    v = random_velocity(shape, amplitude, seed, smoothness)
    forward, inverse = exp_velocity(v), exp_velocity(-v)
    residual = float(np.abs(compose_grid(forward, inverse)).max())
    return Deformation("svf", forward, inverse, residual, {"steps": SVF_STEPS})


# --- cubic B-spline FFD -------------------------------------------------------------------


def bspline_evaluate(coeffs: np.ndarray, spacing: float, points: np.ndarray) -> np.ndarray:
    """u(points): the cubic B-spline of control coefficients ``coeffs`` (ndim, *C), control
    point k at voxel (k - 1) * spacing along each axis, at ``points`` (ndim, N) voxels.
    Exact (the unfiltered spline, zero beyond the control grid)."""
    where = np.asarray(points, np.float64) / spacing + 1.0
    return np.stack(
        [
            ndimage.map_coordinates(c, where, order=3, prefilter=False, mode="grid-constant")
            for c in coeffs
        ]
    )


def bspline_field(
    shape: tuple[int, ...], amplitude: float, seed: int, spacing: float | None = None
) -> tuple[np.ndarray, float]:
    """Random control coefficients (ndim, *C) and their spacing (voxels): max |u| over the
    grid = ``amplitude``, every coefficient below ``BSPLINE_MARGIN`` * spacing / K (K of
    ``CHOI_LEE``), the spacing widened by 1.2x steps until that holds."""
    ndim = len(shape)
    spacing = max(max(shape) / 6.0, 2.0) if spacing is None else float(spacing)
    points = grid_points(shape)
    for _ in range(50):
        rng = np.random.default_rng(seed)
        size = [int(np.ceil((n - 1) / spacing)) + 3 for n in shape]
        coeffs = rng.normal(size=(ndim, *size))
        peak = float(np.abs(bspline_evaluate(coeffs, spacing, points)).max())
        coeffs *= amplitude / peak if peak > 0 else 0.0
        if np.abs(coeffs).max() <= BSPLINE_MARGIN * spacing / CHOI_LEE[ndim]:
            return coeffs, spacing
        spacing *= 1.2
    raise ValueError(f"no invertible B-spline of amplitude {amplitude} on a {shape} grid")


def bspline_inverse(
    coeffs: np.ndarray, spacing: float, points: np.ndarray, tol: float = BSPLINE_TOL
) -> tuple[np.ndarray, float, int]:
    """psi at ``points``: phi(x + psi) = x, by psi <- -u(x + psi) until max |psi + u(x +
    psi)| < ``tol``. Returns psi, that residual and the iterations."""
    psi = -bspline_evaluate(coeffs, spacing, points)
    for iteration in range(1, BSPLINE_MAX_ITERATIONS + 1):
        u = bspline_evaluate(coeffs, spacing, points + psi)
        residual = float(np.abs(psi + u).max())
        if residual < tol:
            return psi, residual, iteration
        psi = -u
    raise RuntimeError(
        f"the B-spline inverse did not reach {tol} in {BSPLINE_MAX_ITERATIONS} iterations "
        f"(residual {residual:.3g})"
    )


def bspline(shape, amplitude, seed, spacing=None) -> Deformation:
    coeffs, spacing = bspline_field(shape, amplitude, seed, spacing)
    points = grid_points(shape)
    forward = bspline_evaluate(coeffs, spacing, points)
    inverse, residual, iterations = bspline_inverse(coeffs, spacing, points)
    notes = {
        "spacing": spacing,
        "max_coefficient": float(np.abs(coeffs).max()),
        "bound": spacing / CHOI_LEE[len(shape)],
        "iterations": iterations,
    }
    return Deformation(
        "bspline",
        forward.reshape((len(shape), *shape)).astype(np.float32),
        inverse.reshape((len(shape), *shape)).astype(np.float32),
        residual,
        notes,
    )


# --- time-varying velocity, RK4 -----------------------------------------------------------


@dataclass(frozen=True)
class FourierVelocity:
    """v(x, t) = (1 - t) a(x) + t b(x), a and b sums of plane waves sin(k . x + phase)
    with vector amplitudes: ``waves`` (M, ndim), ``phases`` (M,), ``start`` and ``end``
    (ndim, M)."""

    waves: np.ndarray
    phases: np.ndarray
    start: np.ndarray
    end: np.ndarray

    def __call__(self, points: np.ndarray, t: float) -> np.ndarray:
        basis = np.sin(self.waves @ points + self.phases[:, None])
        return ((1.0 - t) * self.start + t * self.end) @ basis


def fourier_velocity(
    shape: tuple[int, ...], amplitude: float, seed: int, modes: int = FOURIER_MODES
) -> FourierVelocity:
    """A random ``FourierVelocity``: wavelengths uniform in [L/3, L] (L the largest
    side), directions uniform, amplitudes Gaussian; a and b each scaled so that their
    max |component| over the grid is ``amplitude``."""
    rng = np.random.default_rng(seed)
    ndim, longest = len(shape), float(max(shape))
    directions = rng.normal(size=(modes, ndim))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    wavelengths = rng.uniform(longest / 3.0, longest, size=modes)
    waves = directions * (2.0 * np.pi / wavelengths)[:, None]
    phases = rng.uniform(0.0, 2.0 * np.pi, size=modes)
    basis = np.sin(waves @ grid_points(shape) + phases[:, None])
    ends = []
    for _ in range(2):
        coef = rng.normal(size=(ndim, modes))
        peak = float(np.abs(coef @ basis).max())
        ends.append(coef * (amplitude / peak if peak > 0 else 0.0))
    return FourierVelocity(waves, phases, ends[0], ends[1])


def rk4_flow(
    velocity: FourierVelocity, points: np.ndarray, steps: int = RK4_STEPS, backward=False
) -> np.ndarray:
    """Where ``points`` (ndim, N) go under the time-1 flow of ``velocity`` (classical RK4,
    ``steps`` equal steps); ``backward``: the inverse flow (dy/ds = -v(y, 1 - s))."""
    y = np.array(points, dtype=np.float64)
    h = 1.0 / steps

    def f(p: np.ndarray, s: float) -> np.ndarray:
        return -velocity(p, 1.0 - s) if backward else velocity(p, s)

    for i in range(steps):
        s = i * h
        k1 = f(y, s)
        k2 = f(y + 0.5 * h * k1, s + 0.5 * h)
        k3 = f(y + 0.5 * h * k2, s + 0.5 * h)
        k4 = f(y + h * k3, s + h)
        y = y + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    return y


def tv_rk4(shape, amplitude, seed, steps: int = RK4_STEPS) -> Deformation:
    velocity = fourier_velocity(shape, amplitude, seed)
    points = grid_points(shape)
    forward = rk4_flow(velocity, points, steps) - points
    back = rk4_flow(velocity, points, steps, backward=True)
    residual = float(np.abs(rk4_flow(velocity, back, steps) - points).max())
    return Deformation(
        "tv_rk4",
        forward.reshape((len(shape), *shape)).astype(np.float32),
        (back - points).reshape((len(shape), *shape)).astype(np.float32),
        residual,
        {"steps": steps, "modes": FOURIER_MODES},
    )


def generate(
    kind: str,
    shape: tuple[int, ...],
    amplitude: float,
    seed: int,
    smoothness: float | None = None,
) -> Deformation:
    """A random deformation of ``kind`` (``GENERATORS``) on a grid of ``shape``, max
    displacement scale ``amplitude`` voxels; ``smoothness`` is the SVF's Gaussian width
    (the other generators set theirs from the grid, see the module's docstring).

    Cached (the last 4; a 3-D 2 mm ``tv_rk4`` takes minutes on a CPU, and the cells of a
    suite that differ only by method share it): the arrays are read-only."""
    if kind not in GENERATORS:
        raise ValueError(f"unknown deformation generator {kind!r} (one of {', '.join(GENERATORS)})")
    return _generate(kind, tuple(int(n) for n in shape), float(amplitude), int(seed), smoothness)


@functools.lru_cache(maxsize=4)
def _generate(kind, shape, amplitude, seed, smoothness) -> Deformation:
    if kind == "svf":
        phi = svf(shape, amplitude, seed, smoothness)
    elif kind == "bspline":
        phi = bspline(shape, amplitude, seed)
    else:
        phi = tv_rk4(shape, amplitude, seed)
    phi.forward.setflags(write=False)
    phi.inverse.setflags(write=False)
    return phi
