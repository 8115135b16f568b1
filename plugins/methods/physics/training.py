"""Networks, sampling and the Adam-then-L-BFGS loop shared by ``supervised`` and ``pinn``.

Raissi's PINN code: a tanh MLP with Xavier-initialised weights and zero biases, inputs
scaled to [-1, 1]; collocation points by Latin-hypercube sampling; trained by L-BFGS-B
with ``ftol`` at machine epsilon. Here Adam warms up first (the lecture's recipe; 0
steps is Raissi's), then torch's L-BFGS with a strong-Wolfe line search. The first
stage may instead be plain gradient descent (``gd``: the differentiable-physics book's
PINN, TensorFlow's ``GradientDescentOptimizer``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from bench import CellContext


def tanh_mlp(depth: int, width: int, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    """2 -> ``depth`` tanh layers of ``width`` -> 1; Xavier-normal weights, zero biases."""
    layers: list[torch.nn.Module] = []
    fan_in = 2
    for _ in range(depth):
        layers += [torch.nn.Linear(fan_in, width), torch.nn.Tanh()]
        fan_in = width
    layers.append(torch.nn.Linear(fan_in, 1))
    net = torch.nn.Sequential(*layers).to(dtype)
    for module in net:
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.xavier_normal_(module.weight)
            torch.nn.init.zeros_(module.bias)
    return net


def latin_hypercube(n: int, lb: np.ndarray, ub: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``n`` points in the box: one per stratum of each axis, strata paired at random
    (pyDOE's ``lhs``, which Raissi's code uses, without a criterion)."""
    dims = len(lb)
    strata = np.stack([rng.permutation(n) for _ in range(dims)], axis=1)
    unit = (strata + rng.random((n, dims))) / n
    return lb + (ub - lb) * unit


def saved_tensor_bytes(fn: Callable[[], torch.Tensor]) -> int:
    """Bytes of the tensors autograd keeps for the backward of ``fn()``'s graph.

    Counted by ``saved_tensors_hooks`` (each storage once), so it is the same on every
    machine: what backpropagation must hold, where a CPU's resident-set peak only
    shows what the allocator had to ask the system for.
    """
    seen: dict[tuple[int, int], int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        seen[(storage.data_ptr(), storage.nbytes())] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


#: the first-stage optimisers ``fit`` knows, by the name a method's ``optimizer`` takes
FIRST_ORDER = ("adam", "gd")


def first_order_optimizer(name: str, params: list[torch.nn.Parameter], lr: float):
    """``adam``: ``torch.optim.Adam`` with its defaults; ``gd``: plain full-batch gradient
    descent, ``p <- p - lr * grad`` (``torch.optim.SGD`` with no momentum, dampening,
    Nesterov or weight decay: TensorFlow's ``GradientDescentOptimizer``)."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "gd":
        return torch.optim.SGD(
            params, lr=lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False
        )
    raise ValueError(f"unknown optimizer {name!r}; one of {', '.join(FIRST_ORDER)}")


@dataclass
class FitResult:
    adam_steps: int
    lbfgs_iterations: int
    evaluations: int
    loss: float
    seconds: float
    stopped: str


class _Clock:
    """Training time with the monitor's evaluations left out."""

    def __init__(self) -> None:
        self.total = 0.0
        self._start = time.perf_counter()

    def pause(self) -> None:
        self.total += time.perf_counter() - self._start

    def resume(self) -> None:
        self._start = time.perf_counter()

    def now(self) -> float:
        return self.total + time.perf_counter() - self._start


def fit(
    params: list[torch.nn.Parameter],
    loss_fn: Callable[[], tuple[torch.Tensor, dict[str, torch.Tensor]]],
    ctx: CellContext,
    *,
    adam_steps: int,
    lr: float,
    lbfgs_iterations: int,
    optimizer: str = "adam",
    history: int = 50,
    time_limit: float = 0.0,
    log_every: int = 10,
    monitor: Callable[[], float] | None = None,
    monitor_every: int = 0,
) -> FitResult:
    """Minimise ``loss_fn`` (total, named parts) by Adam then L-BFGS, recording curves.

    ``adam_steps`` steps of the first-order ``optimizer`` (``adam``, or ``gd``: plain
    gradient descent) at learning rate ``lr``, then up to ``lbfgs_iterations`` of L-BFGS.

    Curves (every ``log_every`` evaluations): ``loss`` and ``loss.<part>``, with the
    training time so far; ``error`` (from ``monitor``) every ``monitor_every``
    iterations, its cost left out of the clock. ``time_limit`` > 0 stops training once
    that many training seconds have passed (checked between L-BFGS chunks of 50
    iterations). Raises ``Diverged`` when the loss stops being finite.
    """
    clock = _Clock()
    evals = 0
    last = math.nan

    def record(step: int, loss: torch.Tensor, parts: dict[str, torch.Tensor]) -> None:
        nonlocal last
        last = float(loss.detach())
        ctx.check_finite("loss", last)
        if step % log_every == 0:
            now = clock.now()
            ctx.curve("loss", step, last, now)
            for name, value in parts.items():
                ctx.curve(f"loss.{name}", step, float(value.detach()), now)
        if monitor is not None and monitor_every and step % monitor_every == 0:
            clock.pause()
            ctx.curve("error", step, monitor(), clock.total)
            clock.resume()

    def over_time() -> bool:
        return time_limit > 0 and clock.now() >= time_limit

    stopped = "budget"
    adam = first_order_optimizer(optimizer, params, lr)
    done_adam = 0
    for step in range(adam_steps):
        if step % 50 == 0 and over_time():
            stopped = "time_limit"
            break
        adam.zero_grad(set_to_none=True)
        loss, parts = loss_fn()
        loss.backward()
        adam.step()
        evals += 1
        done_adam += 1
        record(evals, loss, parts)

    iterations = 0
    if lbfgs_iterations > 0 and stopped == "budget":
        # Raissi's L-BFGS-B stops at ftol = machine epsilon (float64) or maxiter: the same
        # here with torch's tolerances; chunks of 50 iterations let the time limit act.
        lbfgs = torch.optim.LBFGS(
            params,
            lr=1.0,
            max_iter=50,
            max_eval=62,
            history_size=history,
            tolerance_grad=0.0,
            tolerance_change=float(np.finfo(float).eps),
            line_search_fn="strong_wolfe",
        )

        def closure() -> torch.Tensor:
            nonlocal evals
            lbfgs.zero_grad(set_to_none=True)
            loss, parts = loss_fn()
            loss.backward()
            evals += 1
            record(evals, loss, parts)
            return loss

        while iterations < lbfgs_iterations:
            chunk = min(50, lbfgs_iterations - iterations)
            max_eval = chunk * 4
            lbfgs.param_groups[0]["max_iter"] = chunk
            lbfgs.param_groups[0]["max_eval"] = max_eval
            state = lbfgs.state[params[0]]
            before, evals_before = state.get("n_iter", 0), evals
            lbfgs.step(closure)
            advanced = state.get("n_iter", 0) - before
            iterations += advanced
            if advanced == 0 or (advanced < chunk and evals - evals_before < max_eval):
                stopped = "converged"  # a tolerance was met or the line search stalled
                break
            if over_time():
                stopped = "time_limit"
                break
    clock.pause()
    return FitResult(done_adam, iterations, evals, last, clock.total, stopped)
