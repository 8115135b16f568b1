"""Physics methods (family ``physics``): ``supervised``, ``pinn``, ``diffphys``, and
``deepxde.pinn`` (DeepXDE's PINN as a peer; optional, skipped without deepxde).

The ``problem`` a physics method's ``solve(problem, ctx)`` receives is a
``PhysicsProblem`` (``plugins.methods.physics.problem``): Burgers' equation
u_t + u u_x = nu u_xx with its viscosity ``nu``, the box ``x_range`` x ``t_range``, and
what is known of u:

- ``constraints``: point data ``(x, t, u)`` a PINN is given (Raissi's case: the initial
  line and the two boundaries; the book's reconstruction: the state at t = 0.5 and
  u = 0 at x = +-1);
- ``field``: samples of u anywhere in the domain, where the task offers them
  (``supervised`` fits these);
- ``grid``: a ``GridSetup`` (cells, dt, steps, observed states by step) where the task
  is posed on the book's periodic grid (``diffphys`` needs it);
- ``monitor``: the task's error of a candidate solution, for convergence curves.

``solve`` returns a ``Solution``: ``predict(x, t)`` gives u (float64) at any points, so
the task scores every method on the same points against the same reference. A method
records into ``ctx`` its training time (``time.train``: the training loop, the
monitor's evaluations left out), peak memory (``mem.train``), the loss curves
(``loss``, ``loss.<part>``), the ``error`` curve, and counts (``parameters``,
``data_points``, ``collocation_points``, ``lbfgs_iterations``, ...).
"""

from __future__ import annotations

from bench import Method, hookimpl
from plugins.methods.physics.deepxde_peer import DeepXDEPINN
from plugins.methods.physics.methods import PINN, DiffPhys, Supervised

PHYSICS_METHODS: list[type[Method]] = [Supervised, PINN, DiffPhys, DeepXDEPINN]


@hookimpl
def bench_plugins() -> list[type[Method]]:
    return list(PHYSICS_METHODS)
