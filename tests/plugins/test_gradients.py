"""Gradients through the solvers: gradcheck for direct backprop, adjoint against direct."""

from __future__ import annotations

import pytest
import torch

from plugins.tasks.ode.counting import CountingFunc
from tests.plugins._problems import F64, TanhField, registry

pytestmark = pytest.mark.usefixtures("frozen_heap")

REGISTRY = registry()
SOLVERS = {name: REGISTRY.get("solver", name) for name in REGISTRY.names("solver")}
OWN = ["euler", "midpoint", "heun", "rk4", "bosh3", "dopri5"]


def _options(name: str, tight: bool = False) -> dict:
    cls = SOLVERS[name]
    if "step_size" in cls.params:
        # 0.125 divides every output gap below, so torchdiffeq's fixed grid hits the
        # output times (no linear interpolation, whose adjoint is not the same).
        return {"step_size": 0.0625 if tight else 0.125}
    return {"rtol": 1e-10, "atol": 1e-10} if tight else {"rtol": 1e-6, "atol": 1e-6}


@pytest.mark.parametrize("name", OWN)
def test_gradcheck_through_own_solver(name: str) -> None:
    """Backprop through the steps equals finite differences of the same discrete solve.

    For the adaptive ones the step sizes are chosen without gradient (they are
    data), so finite differences see them move; at rtol = 1e-6 that moves the
    output by ~1e-9 per unit of y0, well inside gradcheck's atol = 1e-5.
    """
    cls = SOLVERS[name]
    t = torch.tensor([0.0, 0.5, 1.0], dtype=F64)
    field = TanhField()

    def solve(y0: torch.Tensor, theta: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
        def f(tt: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return torch.tanh(y @ W.T + field.b) + theta * torch.sin(tt)

        return cls().odeint(f, y0, t, **_options(name))

    y0 = torch.tensor([0.3, -0.7], dtype=F64, requires_grad=True)
    theta = torch.tensor(0.3, dtype=F64, requires_grad=True)
    W = field.W.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(solve, (y0, theta, W), eps=1e-6, atol=1e-5, rtol=1e-3)


ADJOINT = OWN + ["torchdiffeq.rk4", "torchdiffeq.dopri5", "torchdiffeq.euler"]


@pytest.mark.parametrize("name", ADJOINT)
def test_adjoint_matches_direct_backprop(name: str) -> None:
    """Several output times, a loss on all of them, gradients for y0 and every parameter."""
    t = torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=F64)
    target = torch.tensor([[0.2, 0.1]], dtype=F64)
    grads = []
    for adjoint in (False, True):
        field = TanhField()
        y0 = torch.tensor([[0.3, -0.7], [1.0, 0.5]], dtype=F64, requires_grad=True)
        y = SOLVERS[name]().odeint(field, y0, t, adjoint=adjoint, **_options(name, tight=True))
        ((y - target) ** 2).sum().backward()
        grads.append(
            torch.cat([y0.grad.reshape(-1)] + [p.grad.reshape(-1) for p in field.parameters()])
        )
    direct, adjoint = grads
    # The adjoint solves its own ODE backwards, so it differs from the exact
    # gradient of the discrete forward solve by the discretisation error, O(h^p)
    # at h = 1/16: measured ~1e-2 relative for euler, ~4e-5 for midpoint and
    # heun, <= 1e-7 for rk4 and the adaptive ones at rtol = 1e-10.
    tolerance = {1: 5e-2, 2: 5e-4}.get(SOLVERS[name].order, 1e-5)
    assert torch.allclose(adjoint, direct, rtol=tolerance, atol=tolerance * direct.abs().max())
    assert direct.abs().max() > 0.1  # a real gradient, not zeros on both sides


def test_adjoint_gradient_converges_to_direct_as_step_shrinks() -> None:
    """Both are consistent approximations of the same gradient: their gap shrinks at rk4's order."""
    t = torch.tensor([0.0, 1.0], dtype=F64)
    gaps = []
    for h in (0.25, 0.125):
        grads = []
        for adjoint in (False, True):
            field = TanhField()
            y0 = torch.tensor([0.3, -0.7], dtype=F64, requires_grad=True)
            y = SOLVERS["rk4"]().odeint(field, y0, t, adjoint=adjoint, step_size=h)
            (y[-1] ** 2).sum().backward()
            grads.append(torch.cat([y0.grad] + [p.grad.reshape(-1) for p in field.parameters()]))
        gaps.append((grads[0] - grads[1]).abs().max().item())
    assert gaps[1] < gaps[0] / 8  # order 4 would give /16; /8 leaves room for pre-asymptotics


def test_adjoint_needs_a_module() -> None:
    with pytest.raises(TypeError, match="torch.nn.Module"):
        SOLVERS["rk4"]().odeint(
            lambda t, y: -y, torch.ones(2, dtype=F64), torch.tensor([0.0, 1.0]), adjoint=True
        )
    with pytest.raises(TypeError, match="torch.nn.Module"):
        SOLVERS["torchdiffeq.rk4"]().odeint(
            lambda t, y: -y, torch.ones(2, dtype=F64), torch.tensor([0.0, 1.0]), adjoint=True
        )


def test_scipy_solver_has_no_adjoint_and_no_graph() -> None:
    cls = SOLVERS["torchdiffeq.scipy_solver"]
    assert not cls.supports_adjoint and "adjoint" not in cls.params
    y0 = torch.tensor([0.3, -0.7], dtype=F64, requires_grad=True)
    assert not cls().odeint(TanhField(), y0, torch.tensor([0.0, 1.0], dtype=F64)).requires_grad
    with pytest.raises(ValueError, match="unknown option 'adjoint'"):
        cls().odeint(TanhField(), y0, torch.tensor([0.0, 1.0], dtype=F64), adjoint=True)


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_function_evaluations_are_counted_forward_and_backward(name: str) -> None:
    t = torch.tensor([0.0, 0.5, 1.0], dtype=F64)
    if not SOLVERS[name].supports_adjoint:  # scipy_solver: forward only
        func = CountingFunc(TanhField())
        SOLVERS[name]().odeint(func, torch.tensor([0.3, -0.7], dtype=F64), t)
        assert func.take() > 0
        return
    counts = {}
    for adjoint in (False, True):
        func = CountingFunc(TanhField())
        y0 = torch.tensor([0.3, -0.7], dtype=F64, requires_grad=True)
        y = SOLVERS[name]().odeint(func, y0, t, adjoint=adjoint, **_options(name))
        forward = func.take()
        y.sum().backward()
        counts[adjoint] = (forward, func.take())
    (fwd_direct, bwd_direct), (fwd_adjoint, bwd_adjoint) = counts[False], counts[True]
    assert fwd_direct == fwd_adjoint > 0  # the same forward solve either way
    assert bwd_direct == 0  # backprop replays the graph, it does not call func
    assert bwd_adjoint > 0
    if name == "rk4":
        # Forward: 1 / 0.125 = 8 steps of 4 stages; backward: the same grid, reversed.
        assert fwd_adjoint == bwd_adjoint == 32
