"""The differentiable-physics book's periodic Burgers setup and its fine reference.

The book (its PhiFlow notebooks): N = 128 cells on [-1, 1) with periodic boundaries,
u0 = -sin(pi x) at the cell centres, 32 steps of dt = 1/32, and in its code
NU = 0.01 / (N pi) -- not Raissi's 0.01 / pi: the book's viscosity is N = 128 times
smaller, so its shock is sharper and the two tasks' solutions differ.

The reference for a coarse trajectory is the same solver ``refine`` times finer in
space and time (the semi-Lagrangian step is first order in dt, its interpolation adds
O(dx^2 / dt): both shrink like 1/refine when dx and dt shrink together), read back at
the coarse cell centres by linear interpolation. A test shows the convergence.
"""

from __future__ import annotations

import math

import torch

from plugins.methods.physics.solver import cell_centres, sample_periodic, simulate

BOOK_N = 128
BOOK_STEPS = 32
BOOK_T_END = 1.0


def book_nu(n: int = BOOK_N) -> float:
    """The book's NU = 0.01 / (N pi)."""
    return 0.01 / (n * math.pi)


def initial_state(n: int) -> torch.Tensor:
    """-sin(pi x) at the ``n`` cell centres of [-1, 1)."""
    return -torch.sin(math.pi * cell_centres(n))


def coarse_trajectory(n: int, steps: int, t_end: float, nu: float) -> torch.Tensor:
    """The solver's own trajectory ``(steps + 1, n)`` from -sin(pi x)."""
    return simulate(initial_state(n), nu, t_end / steps, 2.0 / n, steps)


def fine_reference(n: int, steps: int, t_end: float, nu: float, refine: int) -> torch.Tensor:
    """The trajectory at ``refine`` times the resolution in x and t, at the coarse
    cell centres and the coarse times: ``(steps + 1, n)``."""
    fine_n = n * refine
    fine = simulate(
        initial_state(fine_n), nu, t_end / (steps * refine), 2.0 / fine_n, steps * refine
    )
    at_coarse_times = fine[::refine]
    # coarse centre i sits at fine index (i + 1/2) * refine - 1/2
    pos = (torch.arange(n, dtype=torch.float64) + 0.5) * refine - 0.5
    return sample_periodic(at_coarse_times, pos.expand(steps + 1, n))
