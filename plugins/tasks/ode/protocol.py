"""The measuring protocol shared by the ``ode.*`` reference-problem tasks."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch

from bench import CellContext, Headline, Param, Plugin, SkipCell, Solver, Task
from plugins.tasks.ode.counting import CountingFunc
from plugins.tasks.ode.figures import trajectory_figure
from plugins.tasks.ode.reference import cached, scipy_reference

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def common_params(t1: float, n_times: int = 101) -> dict[str, Param]:
    """Parameters every reference-problem task has, with this task's end time."""
    return {
        "t1": Param(t1, low=0.0, low_open=True, doc="end time (the solve starts at 0)"),
        "n_times": Param(n_times, low=2, doc="output times, evenly spaced on [0, t1]"),
        "dtype": Param(
            "float64", choices=tuple(DTYPES), doc="dtype of state, times and parameters"
        ),
        "gradient": Param(False, doc="also time forward+backward of an MSE loss through the solve"),
    }


def relative_error(y: torch.Tensor, ref: torch.Tensor) -> float:
    """||y - ref|| / ||ref|| in float64 (Frobenius norm over everything given)."""
    y, ref = y.detach().to(torch.float64), ref.to(torch.float64)
    return float(torch.linalg.vector_norm(y - ref) / torch.linalg.vector_norm(ref))


def check_trajectory(solver: Solver, y: torch.Tensor, y0: torch.Tensor, t: torch.Tensor) -> None:
    """ValueError unless ``solver.odeint`` returned the state at every time,
    ``(len(t), *y0.shape)``: a ``(T, 1, d)`` or transposed result broadcast in the error
    and was scored (rel_l2_error 4.6 for 3e-7), status ok."""
    wanted = (len(t), *y0.shape)
    shape = tuple(y.shape) if isinstance(y, torch.Tensor) else None
    if shape != wanted:
        raise ValueError(
            f"{solver.name}.odeint returned {type(y).__name__} of shape {shape} for "
            f"{len(t)} times of a state shaped {tuple(y0.shape)}: it returns the state at "
            f"every time, a tensor of shape {wanted}"
        )


def adjoint_requested(solver: Solver) -> bool:
    """Whether the solver is asked for the adjoint (its ``adjoint`` parameter, where it
    has one; the task skips a solver asked for it without ``supports_adjoint``)."""
    return bool(solver.values.get("adjoint", False))


#: how far from a whole number of steps an interval may be and still be that many
#: steps (the own solvers' and the solver template's slack, for float32 output times)
STEP_SLACK = 1e-3


def solver_step_problem(
    components: dict[str, type[Plugin]], params: dict[str, Any], t1: float, n_times: int
) -> str | None:
    """A task's ``check_cell`` over ``n_times`` output times on [0, ``t1``]: why its
    ``solver`` slot's plugin would not take ``solver.step_size`` (``output_step_problem``),
    where it lands on every output time; None where it would, or has no such step."""
    solver, step = components.get("solver"), params.get("solver.step_size")
    if solver is None or step is None or not issubclass(solver, Solver):
        return None
    if not solver.lands_on_outputs:
        return None
    return output_step_problem(solver.name, float(step), t1, n_times)


def output_step_problem(solver: str, step: float, t1: float, n_times: int) -> str | None:
    """Why a solver that steps from output time to output time (``lands_on_outputs``)
    would not take ``step`` throughout: above the output spacing it runs at the spacing;
    one that does not divide the spacing cannot step it throughout (the own solvers end
    each interval with a shorter step, the solver template takes equal shorter ones).
    None where the spacing is a whole number of steps (within ``STEP_SLACK``)."""
    spacing = t1 / (n_times - 1)
    per = spacing / step
    if per >= 1 - STEP_SLACK and abs(per - round(per)) <= STEP_SLACK:
        return None
    offer = ", ".join(f"{spacing / k:.6g}" for k in (1, 2, 4, 8))
    if per < 1:
        what = f"exceeds the output spacing {spacing:.6g} and would run at {spacing:.6g}"
    else:
        what = (f"does not divide the output spacing {spacing:.6g} ({per:.4g} steps) and "
                "cannot be taken throughout")  # fmt: skip
    # output times spaced a whole number m of steps: (n_times - 1) m = t1 / step
    steps = t1 / step
    fits = []
    if abs(steps - round(steps)) <= STEP_SLACK * max(1.0, steps) and round(steps) >= 1:
        whole = round(steps)
        fits = [whole // m + 1 for m in range(1, whole + 1) if whole % m == 0][:4]
    more = (
        f", or n_times {', '.join(map(str, fits))}"
        if fits
        else f" (no n_times spaces the outputs a whole number of steps {step:g} apart)"
    )
    return (
        f"{solver} steps from output time to output time (t1 {t1:g} over n_times "
        f"{n_times}): solver.step_size {step:g} {what}, so the cell would not measure the "
        f"step it is labelled with; give a step dividing the spacing ({offer}, ...){more}"
    )


class ODEProblemTask(Task):
    """Base of the reference-problem tasks; subclasses describe the problem.

    Subclasses set ``y0`` and implement ``module()`` (the right-hand side) and
    either ``exact(t)`` or ``rhs_numpy()`` (then the reference is scipy DOP853
    at rtol = atol = 1e-12, cached under ``ctx.cache_dir``).

    Metrics: ``rel_l2_error`` (whole trajectory), ``final_rel_error`` (at t1),
    ``nfe``; time ``solve`` (under ``no_grad``). With ``gradient``: time
    ``backward`` (forward and backward of the MSE to the reference, with
    ``mem.backward``), ``nfe_backward`` (evaluations during ``backward()`` only:
    0 for backprop, the adjoint solve's for ``adjoint=True``), ``loss`` and
    ``grad_norm`` (over y0 and the problem's coefficients).

    Result file: ``trajectory.png``, the solution beside the reference (components,
    phase portrait, error against time).
    """

    components = {"solver": "solver"}

    @classmethod
    def validation_data(cls, params: dict[str, Any], select: str) -> str | None:
        return "solves the same problem for every seed (the seed changes nothing it scores)"

    @classmethod
    def check_cell(cls, components: dict[str, type[Plugin]], params: dict[str, Any]) -> str | None:
        return solver_step_problem(components, params, params["t1"], params["n_times"])

    headline = Headline(
        quality={"final_rel_error": "lower", "rel_l2_error": "lower"},
        cost="time.solve.median",
        problem=("t1", "n_times", "dtype", "gradient"),
    )
    #: the coefficients pose another problem (a subclass names its own); t1, the
    #: output times and the dtype only choose how much of the one trajectory is scored
    data_params: ClassVar[tuple[str, ...] | None] = ()
    y0: ClassVar[tuple[float, ...]] = ()
    reference_method: ClassVar[str] = "DOP853"

    @abstractmethod
    def module(self) -> torch.nn.Module:
        """The right-hand side ``f(t, y)``, its coefficients as parameters."""

    def exact(self, t: np.ndarray) -> np.ndarray | None:
        """The exact solution at ``t`` (float64, ``(len(t), dim)``), or None if there is none."""
        return None

    def rhs_numpy(self) -> Callable[[float, np.ndarray], np.ndarray]:
        """The right-hand side for scipy; needed when there is no ``exact``."""
        raise NotImplementedError(f"{self.name} has neither an exact solution nor rhs_numpy")

    def problem_key(self) -> dict[str, Any]:
        """Everything the reference trajectory depends on (dtype and gradient do not)."""
        key = {k: v for k, v in self.values.items() if k not in ("dtype", "gradient")}
        return {"problem": self.name, "y0": list(self.y0), "method": self.reference_method, **key}

    def reference(self, ctx: CellContext, t: np.ndarray) -> np.ndarray:
        exact = self.exact(t)
        if exact is not None:
            return exact
        key = {**self.problem_key(), "tol": 1e-12}
        rhs = self.rhs_numpy()
        return cached(
            ctx.cache_dir,
            key,
            lambda: scipy_reference(rhs, np.asarray(self.y0), t, self.reference_method),
            code=rhs,
        )

    def run(self, ctx: CellContext) -> None:
        solver: Solver = ctx.components["solver"]
        if adjoint_requested(solver) and not solver.supports_adjoint:
            raise SkipCell(f"{solver.name} has no adjoint mode")
        p = ctx.params
        dtype = DTYPES[p["dtype"]]
        t_np = np.linspace(0.0, p["t1"], p["n_times"])
        ref = torch.as_tensor(self.reference(ctx, t_np), dtype=torch.float64)
        t = torch.as_tensor(t_np, dtype=dtype, device=ctx.device)
        y0 = torch.tensor(self.y0, dtype=dtype, device=ctx.device)
        func = CountingFunc(self.module().to(device=ctx.device, dtype=dtype))

        def solve() -> torch.Tensor:
            with torch.no_grad():
                return solver.odeint(func, y0, t)

        func.take()
        y = solve()
        ctx.metric("nfe", func.take())
        check_trajectory(solver, y, y0, t)
        ctx.check_finite("solution", y)
        y = ctx.time("solve", solve)
        ctx.metric("rel_l2_error", relative_error(y.cpu(), ref))
        ctx.metric("final_rel_error", relative_error(y[-1].cpu(), ref[-1]))
        ctx.artifact(
            "trajectory",
            trajectory_figure(
                t_np,
                y.detach().cpu().double().numpy().reshape(len(t_np), -1),
                ref.numpy().reshape(len(t_np), -1),
                title=f"{self.name} with {solver.name}",
            ),
        )
        if p["gradient"]:
            self._gradient(ctx, solver, func, y0, t, ref.to(device=ctx.device, dtype=dtype))

    def _gradient(
        self,
        ctx: CellContext,
        solver: Solver,
        func: CountingFunc,
        y0: torch.Tensor,
        t: torch.Tensor,
        ref: torch.Tensor,
    ) -> None:
        y0 = y0.clone().requires_grad_(True)

        def loss_of_solve() -> torch.Tensor:
            return ((solver.odeint(func, y0, t) - ref) ** 2).mean()

        def forward_backward() -> torch.Tensor:
            func.zero_grad(set_to_none=True)
            y0.grad = None
            loss = loss_of_solve()
            loss.backward()
            return loss.detach()

        func.take()
        loss = loss_of_solve()
        func.take()
        if not loss.requires_grad:
            raise SkipCell(f"{solver.name} returns a solution without an autograd graph")
        loss.backward()
        ctx.metric("nfe_backward", func.take())
        loss = ctx.time("backward", forward_backward)
        ctx.metric("loss", loss)
        grads = [y0.grad] + [q.grad for q in func.parameters() if q.grad is not None]
        grad = torch.cat([g.reshape(-1) for g in grads])
        ctx.check_finite("gradient", grad)
        ctx.metric("grad_norm", torch.linalg.vector_norm(grad.detach().to(torch.float64)))
