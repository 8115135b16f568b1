"""``physics.burgers`` (Raissi's forward problem) and ``physics.burgers_reconstruct``
(the differentiable-physics book's inverse problem).

Both hand a ``PhysicsProblem`` to the ``method`` slot (see ``plugins.methods.physics``)
and score the returned solution on a fixed grid against a reference computed here,
untimed: the Cole-Hopf solution for Raissi's case, the book's own solver (and a
``refine`` times finer run of it) for the reconstruction.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from bench import CellContext, Diverged, Headline, Param, ParamError, Plugin, Task
from plugins.methods.physics.base import PhysicsMethod
from plugins.methods.physics.problem import (
    GridSetup,
    PhysicsProblem,
    PointData,
    Solution,
    predict_checked,
)
from plugins.methods.physics.solver import cell_centres, unstable_diffusion
from plugins.tasks.physics.book_data import BOOK_TARGET_T16
from plugins.tasks.physics.exact import MAX_NODES, RAISSI_NU, burgers_exact, burgers_exact_grid
from plugins.tasks.physics.figures import field_figure, render
from plugins.tasks.physics.reference import (
    BOOK_N,
    BOOK_STEPS,
    book_nu,
    coarse_trajectory,
    fine_reference,
)

#: the one setting the book's hard-coded target belongs to: n, steps, t_end, observe_step
BOOK_TARGET_SETTING = {"n": BOOK_N, "steps": BOOK_STEPS, "t_end": 1.0, "observe_step": 16}

#: u0 = -sin(pi x) steepens fastest at x = 0, where -u0' = pi: the shock forms at 1/pi.
SHOCK_TIME = 1.0 / math.pi


def _points(x: np.ndarray, t: np.ndarray, u: np.ndarray) -> PointData:
    as_t = [
        torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float64).reshape(-1) for a in (x, t, u)
    ]
    return PointData(*as_t)


def _grid_predict(solution: Solution, x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The solution on the grid ``x`` by ``t``: ``(len(t), len(x))``."""
    xx, tt = np.meshgrid(x, t)
    return predict_checked(solution, xx.reshape(-1), tt.reshape(-1)).reshape(len(t), len(x))


def _solve_timed(method: PhysicsMethod, problem: PhysicsProblem, ctx: CellContext) -> Solution:
    """``method.solve``, refused where it records no ``time.train``, the family's cost:
    such a cell ended ok with a blank cost, off the Pareto front without a word."""
    solution = method.solve(problem, ctx)
    if "train" not in ctx.record.times:
        raise ValueError(
            f"{method.name} recorded no time.train, the physics family's cost: add its "
            "training's seconds with ctx.add_time('train', seconds)"
        )
    return solution


def _rel_l2(pred: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(pred - ref) / max(np.linalg.norm(ref), 1e-300))


class BurgersTask(Task):
    """Burgers, Raissi's case: learn u(x, t) and score it on the 256 x 100 exact grid."""

    name = "physics.burgers"
    headline = Headline(
        quality={"rel_l2": "lower", "max_error": "lower", "shock_rel_l2": "lower"},
        cost="time.train.median",
        curves=("error", "loss"),
        problem=("nu", "nx", "nt", "shock_halfwidth", "quadrature_nodes"),
        validation={"val_rel_l2": "lower"},
        budget="loss_evaluations",
    )
    data_params = ("nu",)  # the grid and the quadrature only score the one solution
    components = {"method": PhysicsMethod}
    params = {
        "nu": Param(RAISSI_NU, doc="viscosity (Raissi: 0.01/pi)", low=0.0, low_open=True),
        "nx": Param(256, doc="x points of the evaluation grid on [-1, 1] (Raissi: 256)", low=2),
        "nt": Param(100, doc="times of the evaluation grid on [0, 0.99] (Raissi: 100)", low=2),
        "shock_halfwidth": Param(
            0.1, doc="near-shock region: |x| <= this, t >= 1/pi", low=0.0, low_open=True
        ),
        "quadrature_nodes": Param(
            120, doc="Gauss-Hermite nodes of the exact solution", low=2, high=MAX_NODES
        ),
        "field_samples": Param(
            20_000,
            doc="samples of u offered as problem.field (supervised fits a subset): at "
            "uniform random points of the domain, never the scored grid's",
            low=1,
        ),
        "validation_points": Param(
            10_000,
            doc="random points of the domain, never the grid's, where val_rel_l2 is "
            "measured (what tuning chooses by)",
            low=1,
        ),
    }

    @classmethod
    def validation_data(cls, params: dict[str, Any], select: str) -> str | None:
        if select in cls.headline.validation:
            return None
        return (
            f"scores every seed on the same {params['nx']} x {params['nt']} grid against "
            "the same exact solution"
        )

    @classmethod
    def check_component(cls, slot: str, plugin: type[Plugin]) -> str | None:
        if plugin.needs == "grid":
            return (
                f"{plugin.name} optimises a state through the periodic grid solver; "
                f"{cls.name} is posed on points with Dirichlet boundaries "
                "(use physics.burgers_reconstruct)"
            )
        return None

    def run(self, ctx: CellContext) -> None:
        p = self.values
        x = np.linspace(-1.0, 1.0, p["nx"])
        t = np.linspace(0.0, 0.99, p["nt"])
        exact = burgers_exact_grid(x, t, p["nu"], p["quadrature_nodes"])
        xx, tt = np.meshgrid(x, t)
        # Raissi's pool of N_u candidates: the initial line and both boundaries of the grid.
        edge = (tt == 0.0) | (np.abs(xx) == 1.0)
        constraints = _points(xx[edge], tt[edge], exact[edge])
        method = ctx.components["method"]
        # samples of the solution itself only to a method that learns from them: a PINN
        # handed them could fit them and read as physics-informed (a user audit)
        reads = bool(method.reads_field())
        field = self.field_samples(ctx.seed) if reads else None
        ctx.metric("field_samples_given", 1.0 if reads else 0.0)

        def monitor(solution: Solution) -> float:
            return _rel_l2(_grid_predict(solution, x, t), exact)

        problem = PhysicsProblem(
            nu=p["nu"],
            x_range=(-1.0, 1.0),
            t_range=(0.0, 1.0),
            constraints=constraints,
            field=field,
            monitor=monitor,
        )
        solution = _solve_timed(method, problem, ctx)
        pred = _grid_predict(solution, x, t)
        ctx.check_finite("prediction", float(np.abs(pred).sum()))
        err = np.abs(pred - exact)
        ctx.metric("rel_l2", _rel_l2(pred, exact))
        vx, vt, vu = self.validation_points(ctx.seed)
        ctx.metric("val_rel_l2", _rel_l2(predict_checked(solution, vx, vt), vu))
        ctx.metric("max_error", err.max())
        shock = (np.abs(xx) <= p["shock_halfwidth"]) & (tt >= SHOCK_TIME)
        if shock.any():
            ctx.metric("shock_rel_l2", _rel_l2(pred[shock], exact[shock]))
            ctx.metric("shock_max_error", err[shock].max())
        title = (
            f"{method.name} on Burgers (nu={p['nu']:.4g}), seed {ctx.seed}: "
            f"rel. L2 {_rel_l2(pred, exact):.3g}"
        )
        ctx.artifact("burgers_fit", render(field_figure(pred, exact, x, t, title)))

    def field_samples(self, seed: int) -> PointData:
        """Samples of u for a method that fits data (``problem.field``): uniform random
        points of [-1, 1] x [0, 1], drawn from the seed, with the exact solution there.
        Never the scored grid's points: a method fitted to those would be scored on its
        training data (the grid was the pool until 2026-12-07: 39 % of the scored points
        were training points at 10,100 samples)."""
        p = self.values
        rng = np.random.default_rng([seed, 0xB0B6E75])  # apart from the methods' draws
        n = p["field_samples"]
        x, t = rng.uniform(-1.0, 1.0, n), rng.uniform(0.0, 1.0, n)
        return _points(x, t, burgers_exact(x, t, p["nu"], p["quadrature_nodes"]))

    def validation_points(self, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Where ``val_rel_l2`` is measured: uniform random points of [-1, 1] x [0, 0.99]
        from the seed (a stream of their own), with the exact solution there; never the
        scored grid's points, so a tuned entry chooses on data it is not reported on."""
        p = self.values
        rng = np.random.default_rng([seed, 0x7A11D])
        n = p["validation_points"]
        x, t = rng.uniform(-1.0, 1.0, n), rng.uniform(0.0, 0.99, n)
        return x, t, burgers_exact(x, t, p["nu"], p["quadrature_nodes"])


class BurgersReconstructTask(Task):
    """Burgers, the DP book's inverse problem: the trajectory from its state at t=0.5."""

    name = "physics.burgers_reconstruct"
    # mae_fine first: mae's truth is the coarse solver's own trajectory, the very model
    # diffphys differentiates through (its mae fell below the truth's own discretisation
    # error, reference_gap); mae is the book's number, kept beside it
    headline = Headline(
        quality={
            "mae_fine": "lower",
            "mae": "lower",
            "mae_initial": "lower",
            "mae_observed": "lower",
        },
        cost="time.train.median",
        curves=("error", "loss"),
        problem=("n", "t_end", "nu", "observe_step", "boundary_points", "refine", "target"),
        budget="loss_evaluations",
    )
    data_params = ("nu",)  # the rest observe or score the one trajectory otherwise
    components = {"method": PhysicsMethod}
    params = {
        "n": Param(BOOK_N, doc="periodic cells on [-1, 1) (book: 128)", low=2),
        "steps": Param(BOOK_STEPS, doc="solver steps to t_end (book: 32)", low=1),
        "t_end": Param(1.0, doc="final time (book: 1)", low=0.0, low_open=True),
        "nu": Param(
            book_nu(), doc="viscosity (book's code: 0.01/(128 pi))", low=0.0, low_open=True
        ),
        "observe_step": Param(16, doc="the step whose state is given (book: 16, t=0.5)", low=1),
        "boundary_points": Param(
            100, doc="pool of u=0 points at x=+-1 for point methods (per side)", low=1
        ),
        "refine": Param(16, doc="resolution factor of the fine reference", low=1),
        "target": Param(
            "solver",
            choices=("solver", "book"),
            doc="the state given at observe_step: solver (the solver's own run from "
            "-sin(pi x)) or book (the book's hard-coded data, which differs from its own "
            "ground truth; n 128, steps 32, t_end 1, observe_step 16 only); the errors are "
            "against the solver's run either way, as the book's",
        ),
    }

    @classmethod
    def validation_data(cls, params: dict[str, Any], select: str) -> str | None:
        return "reconstructs the same trajectory from the same observed state for every seed"

    @classmethod
    def resolve_params(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Refuse at validation what the run would end with: an explicit diffusion step
        past its stability bound (with the bound and the largest stable dt), an
        observed step past the last one."""
        p = super().resolve_params(values)
        reason = unstable_diffusion(p["nu"], p["t_end"] / p["steps"], 2.0 / p["n"])
        if reason:
            raise ParamError(reason)
        if p["observe_step"] > p["steps"]:
            raise ParamError(f"observe_step {p['observe_step']} is past the last step {p['steps']}")
        if p["target"] == "book":
            wrong = {k: p[k] for k, want in BOOK_TARGET_SETTING.items() if p[k] != want}
            if wrong:
                raise ParamError(
                    f"target book is the book's state at step 16 of 32 on 128 cells to t = 1; "
                    f"got {wrong}"
                )
        return p

    def run(self, ctx: CellContext) -> None:
        p = self.values
        n, steps, nu = p["n"], p["steps"], p["nu"]
        dt, dx = p["t_end"] / steps, 2.0 / n
        reason = unstable_diffusion(nu, dt, dx)
        if reason:
            raise Diverged(reason)
        if p["observe_step"] > steps:
            raise ValueError(f"observe_step {p['observe_step']} is past the last step {steps}")
        truth = coarse_trajectory(n, steps, p["t_end"], nu)  # the book's ground truth
        fine = fine_reference(n, steps, p["t_end"], nu, p["refine"])
        k_obs = p["observe_step"]
        if p["target"] == "book":
            given = torch.tensor(BOOK_TARGET_T16, dtype=torch.float64)
        else:
            given = truth[k_obs]
        x = cell_centres(n).numpy()
        t = np.arange(steps + 1) * dt
        nb = p["boundary_points"]
        tb = np.linspace(0.0, p["t_end"], nb)
        constraints = _points(
            np.concatenate([x, -np.ones(nb), np.ones(nb)]),
            np.concatenate([np.full(n, k_obs * dt), tb, tb]),
            np.concatenate([given.numpy(), np.zeros(2 * nb)]),
        )
        truth_np = truth.numpy()

        def monitor(solution: Solution) -> float:
            return float(np.abs(_grid_predict(solution, x, t) - truth_np).mean())

        problem = PhysicsProblem(
            nu=nu,
            x_range=(-1.0, 1.0),
            t_range=(0.0, p["t_end"]),
            constraints=constraints,
            grid=GridSetup(n=n, dt=dt, steps=steps, observed={k_obs: given}),
            monitor=monitor,
        )
        method = ctx.components["method"]
        solution = _solve_timed(method, problem, ctx)
        pred = _grid_predict(solution, x, t)
        ctx.check_finite("prediction", float(np.abs(pred).sum()))
        err = np.abs(pred - truth_np)
        ctx.metric("mae", err.mean())
        # the book's figure: the sum over the steps + 1 states divided by steps * n
        # (its notebook's np.sum(|sol - gt|) / (STEPS * N) over 33 states), 33/32 of mae
        ctx.metric("mae_book_norm", err.sum() / (steps * n))
        ctx.metric("mae_fine", np.abs(pred - fine.numpy()).mean())
        ctx.metric("mae_initial", np.abs(pred[0] - truth_np[0]).mean())
        ctx.metric("mae_observed", np.abs(pred[k_obs] - truth_np[k_obs]).mean())
        ctx.metric("reference_gap", np.abs(truth_np - fine.numpy()).mean())
        # how far the state the method was given is from the truth it is scored against
        ctx.metric("target_gap", np.abs(given.numpy() - truth_np[k_obs]).mean())
        title = (
            f"{method.name}, Burgers reconstruction from t={k_obs * dt:.2f} "
            f"(N={n}, nu={nu:.3g}), seed {ctx.seed}: MAE {np.abs(pred - truth_np).mean():.3g}"
        )
        fig = field_figure(pred, truth_np, x, t, title, lines=(0.0, k_obs * dt, p["t_end"]))
        ctx.artifact("reconstruction", render(fig))
