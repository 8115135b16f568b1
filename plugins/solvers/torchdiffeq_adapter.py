"""Every torchdiffeq method as a solver plugin: one adapter class generated per method.

torchdiffeq has no public list of its methods; ``torchdiffeq._impl.odeint.SOLVERS``
(method name -> solver class) is the table ``torchdiffeq.odeint`` itself checks
``method`` against, so a method added there shows up here without a code change
(it needs an entry in ``_SUMMARIES`` to get a docstring, else a generic one).

How torchdiffeq meets the output times: fixed-grid methods step on the grid
``t0 + k * step_size`` (last point set to ``t[-1]``) and interpolate *linearly*
between grid points for output times off the grid (first order, whatever the
method); adaptive methods use their own dense output (dopri5: 4th-order
polynomial). The own solvers (``plugins.solvers.own``) clip steps instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, ClassVar

import torch
import torchdiffeq
from torchdiffeq._impl.odeint import SOLVERS
from torchdiffeq._impl.scipy_wrapper import ScipyWrapperODESolver
from torchdiffeq._impl.solvers import AdaptiveStepsizeODESolver, FixedGridODESolver

from bench import Param, Solver
from plugins.solvers.adaptive import MaxStepsExceeded  # one class: one except catches both
from plugins.solvers.options import call_options

_SUMMARIES = {
    "dopri8": "Dormand-Prince 8(7), adaptive",
    "dopri5": "Dormand-Prince 5(4), adaptive, 4th-order dense output",
    "bosh3": "Bogacki-Shampine 3(2), adaptive",
    "fehlberg2": "Runge-Kutta-Fehlberg 2(1), adaptive",
    "adaptive_heun": "Heun 2(1) with Euler error estimate, adaptive",
    "euler": "Forward Euler, fixed step",
    "midpoint": "Explicit midpoint rule, fixed step",
    "heun2": "Heun's method (explicit trapezoidal rule), fixed step",
    "heun3": "Heun's third-order method, fixed step",
    "rk4": "Fourth-order Runge-Kutta by Kutta's 3/8 rule, fixed step",
    "explicit_adams": "Adams-Bashforth multistep (rk4 start-up), fixed step",
    "implicit_adams": "Adams-Bashforth-Moulton predictor-corrector (rk4 start-up), fixed step",
    "fixed_adams": "Adams-Bashforth-Moulton (old name of implicit_adams), fixed step",
    "scipy_solver": "scipy.integrate.solve_ivp via torchdiffeq (numpy round trip, no gradients)",
}

_ADJOINT = Param(False, doc="gradients by torchdiffeq.odeint_adjoint (func must be an nn.Module)")
_STEP = Param(
    0.05, low=0.0, low_open=True, doc="grid step; outputs off the grid are interpolated linearly"
)
_RTOL = Param(1e-7, low=0.0, doc="relative tolerance (torchdiffeq's default)")
_ATOL = Param(1e-9, low=0.0, doc="absolute tolerance (torchdiffeq's default)")

# torchdiffeq's Adams methods use max_order - 1 previous derivatives, i.e. an
# Adams-Bashforth method of order max_order - 1, up to max_order = 12 by default.
# Measured on the harmonic oscillator over [0, 2] (float64): explicit_adams with
# the default 12 is unstable (error 7e6 at h = 1/80), with max_order = 5 it
# converges at order 3.99. implicit_adams with max_order = 4 (AB3 predictor, AM4
# corrector) converges at order 3.9-4.0. These defaults make torchdiffeq's
# declared order (4) the one actually observed. Below 4 torchdiffeq silently
# falls back to rk4, hence the lower bound.
_EXTRA_PARAMS: dict[str, dict[str, Param]] = {
    "explicit_adams": {
        "max_order": Param(
            5, low=4, high=12, doc="torchdiffeq max_order (AB of order max_order - 1)"
        ),
    },
    "implicit_adams": {
        "max_order": Param(
            4, low=4, high=12, doc="torchdiffeq max_order (corrector of order max_order)"
        ),
        "rtol": _RTOL,
        "atol": _ATOL,
    },
    "scipy_solver": {
        "solver": Param(
            "LSODA",
            choices=("RK23", "RK45", "DOP853", "Radau", "BDF", "LSODA"),
            doc="scipy.integrate.solve_ivp method (torchdiffeq's default LSODA)",
        ),
    },
}
_EXTRA_PARAMS["fixed_adams"] = _EXTRA_PARAMS["implicit_adams"]

# Keys of ``opts`` handed to torchdiffeq as solver options (the rest are odeint arguments).
_OPTION_NAMES = {"step_size", "max_order", "solver"}


class TorchdiffeqSolver(Solver):
    """Base of the generated adapters; ``method`` is the torchdiffeq method name."""

    method: ClassVar[str] = ""

    def odeint(self, func: Callable, y0: torch.Tensor, t: torch.Tensor, **options: Any):
        """``torchdiffeq.odeint`` (or ``odeint_adjoint`` with ``adjoint=True``) with this method."""
        opts = call_options(self, options)
        solver_options = {k: v for k, v in opts.items() if k in _OPTION_NAMES}
        if "max_steps" in opts:
            solver_options["max_num_steps"] = opts["max_steps"]
        kwargs: dict[str, Any] = {"method": self.method, "options": solver_options}
        if "rtol" in opts:
            kwargs["rtol"], kwargs["atol"] = opts["rtol"], opts["atol"]
        if opts.get("adjoint") and not isinstance(func, torch.nn.Module):
            raise TypeError(
                "adjoint=True needs func to be a torch.nn.Module, whose parameters receive "
                f"the gradients; got {type(func).__name__}"
            )
        try:
            if opts.get("adjoint"):
                return torchdiffeq.odeint_adjoint(func, y0, t, **kwargs)
            with warnings.catch_warnings():
                # torchdiffeq's scipy wrapper always passes min_step, which scipy's
                # explicit RK methods ignore with a warning on every call.
                warnings.filterwarnings("ignore", "The following arguments have no effect")
                return torchdiffeq.odeint(func, y0, t, **kwargs)
        except AssertionError as exc:
            if "max_num_steps exceeded" not in str(exc):
                raise
            raise MaxStepsExceeded(
                f"{self.name}: reached max_steps={opts['max_steps']} before t={float(t[-1]):.6g}; "
                "the problem may be stiff or the tolerances too tight: raise max_steps, "
                "loosen rtol/atol, or use an implicit method"
            ) from None


def _describe(method: str, solver_cls: type) -> tuple[dict[str, Param], int, bool, bool]:
    """(params, order, adaptive, supports_adjoint) for one torchdiffeq method."""
    if issubclass(solver_cls, ScipyWrapperODESolver):
        # solve_ivp works on numpy copies with func called under no_grad: the
        # solution has no graph, and an adjoint solve cannot work either, since
        # its augmented dynamics need autograd's vector-Jacobian products of func.
        # Order 0 means variable: LSODA (the default) switches between Adams
        # orders 1-12 and BDF orders 1-5.
        params = {"rtol": _RTOL, "atol": _ATOL, **_EXTRA_PARAMS[method]}
        return params, 0, True, False
    if issubclass(solver_cls, FixedGridODESolver):
        params = {"step_size": _STEP, **_EXTRA_PARAMS.get(method, {}), "adjoint": _ADJOINT}
        return params, solver_cls.order, False, True
    if issubclass(solver_cls, AdaptiveStepsizeODESolver):
        params = {
            "rtol": _RTOL,
            "atol": _ATOL,
            "max_steps": Param(
                100_000, low=1, doc="torchdiffeq max_num_steps; exceeding it raises"
            ),
            "adjoint": _ADJOINT,
        }
        return params, solver_cls.order, True, True
    raise TypeError(f"torchdiffeq method {method!r} ({solver_cls.__name__}) has an unknown kind")


def make_adapter(method: str, solver_cls: type) -> type[TorchdiffeqSolver]:
    """The plugin class for one torchdiffeq method, named ``torchdiffeq.<method>``."""
    params, order, adaptive, supports_adjoint = _describe(method, solver_cls)
    summary = _SUMMARIES.get(method, f"torchdiffeq method {method!r}")
    cls_name = "Torchdiffeq_" + method
    return type(
        cls_name,
        (TorchdiffeqSolver,),
        {
            "__doc__": f"{summary} (torchdiffeq).\n\nCalls torchdiffeq.odeint(method={method!r}).",
            "__module__": __name__,
            "__qualname__": cls_name,
            "name": f"torchdiffeq.{method}",
            "method": method,
            "order": order,
            "adaptive": adaptive,
            "supports_adjoint": supports_adjoint,
            "params": params,
        },
    )


TORCHDIFFEQ_SOLVERS: list[type[Solver]] = [make_adapter(m, cls) for m, cls in SOLVERS.items()]
# Module-level names, so the classes pickle by reference into worker processes.
globals().update({cls.__name__: cls for cls in TORCHDIFFEQ_SOLVERS})
