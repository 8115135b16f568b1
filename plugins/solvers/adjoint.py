"""The adjoint sensitivity method (Chen et al. 2018, Algorithm 1) for the own solvers.

The forward solve runs without building a graph, so memory does not grow with
the number of steps. The backward pass integrates the augmented state
``[y, a, a_theta]`` from the last output time to the first with the same
integrator, where ``a = dL/dy``:

    dy/dt = f(t, y),   da/dt = -a^T df/dy,   da_theta/dt = -a^T df/dtheta

(the vector-Jacobian products come from ``torch.autograd.grad``), and adds
``dL/dy(t_i)`` to ``a`` each time it passes an output time ``t_i``. The
integrators only step forward in time, so the backward solve runs in
``s = -t``, where every right-hand side above changes sign.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.autograd.function import once_differentiable

Integrate = Callable[[Callable, torch.Tensor, Sequence[float]], torch.Tensor]


class _AdjointSolve(torch.autograd.Function):
    @staticmethod
    def forward(ctx, integrate: Integrate, func: torch.nn.Module, t: torch.Tensor, y0, *params):
        times = [float(x) for x in t.tolist()]
        with torch.no_grad():
            ys = integrate(func, y0, times)
        ctx.integrate, ctx.func, ctx.times = integrate, func, times
        ctx.save_for_backward(ys, *params)
        return ys

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_ys: torch.Tensor):
        ys, *params = ctx.saved_tensors
        func, integrate, times = ctx.func, ctx.integrate, ctx.times
        shape, n = ys.shape[1:], ys[0].numel()
        sizes = [p.numel() for p in params]

        def augmented(s: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
            with torch.enable_grad():
                y = z[:n].detach().view(shape).requires_grad_(True)
                a = z[n : 2 * n].view(shape)
                f = func(-s, y)
                vjps = torch.autograd.grad(f, (y, *params), a, allow_unused=True)
            vjps = [torch.zeros_like(x) if g is None else g for g, x in zip(vjps, (y, *params))]
            return torch.cat([-f.detach().reshape(-1)] + [g.reshape(-1) for g in vjps])

        adj_y = grad_ys[-1]
        adj_p = ys.new_zeros(sum(sizes))
        for i in range(len(times) - 1, 0, -1):
            z = torch.cat([ys[i].reshape(-1), adj_y.reshape(-1), adj_p])
            z = integrate(augmented, z, [-times[i], -times[i - 1]])[-1]
            adj_y = z[n : 2 * n].view(shape) + grad_ys[i - 1]
            adj_p = z[2 * n :]
        grads_p = [g.view_as(p) for g, p in zip(torch.split(adj_p, sizes), params)]
        # No gradient for the times (None): the own solvers treat t as data.
        return (None, None, None, adj_y, *grads_p)


def odeint_adjoint(
    integrate: Integrate, func: torch.nn.Module, y0: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """Solve with ``integrate`` and give gradients by the adjoint method.

    ``integrate(func, y0, times)`` is the solver's forward integrator (increasing
    float times -> stacked states). Gradients flow to ``y0`` and to every
    parameter of ``func`` that requires grad; ``t`` gets none.
    """
    if not isinstance(func, torch.nn.Module):
        raise TypeError(
            "adjoint=True needs func to be a torch.nn.Module, whose parameters receive the "
            f"gradients; got {type(func).__name__}"
        )
    params = tuple(p for p in func.parameters() if p.requires_grad)
    return _AdjointSolve.apply(integrate, func, t, y0, *params)
