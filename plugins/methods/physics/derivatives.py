"""u, u_x, u_t and u_xx of a tanh MLP in one forward pass (Taylor-mode by hand).

Autograd gets u_xx by differentiating the graph of u_x, and the loss then
backpropagates through that second graph: three sweeps, the middle one keeping every
intermediate. Propagating the derivatives forward instead needs, per layer
``z = W h + b``, ``a = tanh(z)``::

    z_x = W h_x,  z_t = W h_t,  z_xx = W h_xx
    a' = 1 - a^2,  a'' = -2 a a'
    a_x = a' z_x,  a_t = a' z_t,  a_xx = a'' z_x^2 + a' z_xx

so the residual costs about four forward passes and one ordinary backward. The values
are the same derivatives (tested against autograd); only the cost differs. On a CPU at
Raissi's size (8 x 20, 10,100 points) the two took about the same time per loss and
gradient (0.04-0.05 s in float32, one thread, shared machine): the layers are too narrow
for the saved sweep to show; the speed suite measures both.
"""

from __future__ import annotations

import torch


def mlp_jet(
    net: torch.nn.Sequential, x: torch.Tensor, t: torch.Tensor, lb: torch.Tensor, ub: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(u, u_x, u_t, u_xx)`` of ``net`` (Linear/Tanh layers, inputs scaled to [-1, 1]
    from the box ``lb``..``ub``) at the points ``(x, t)``."""
    scale = 2.0 / (ub - lb)
    h = torch.stack([x, t], dim=-1) * scale - (lb * scale + 1.0)
    zero = torch.zeros_like(x)
    h_x = torch.stack([zero + scale[0], zero], dim=-1)
    h_t = torch.stack([zero, zero + scale[1]], dim=-1)
    h_xx = None  # the input scaling is affine: the second derivative starts at zero
    for layer in net:
        if isinstance(layer, torch.nn.Linear):
            w = layer.weight.t()
            h = h @ w + layer.bias
            h_x = h_x @ w
            h_t = h_t @ w
            h_xx = None if h_xx is None else h_xx @ w
        elif isinstance(layer, torch.nn.Tanh):
            a = torch.tanh(h)
            d1 = 1.0 - a * a
            d2 = -2.0 * a * d1
            h_xx = d2 * h_x * h_x + (0.0 if h_xx is None else d1 * h_xx)
            h_x = d1 * h_x
            h_t = d1 * h_t
            h = a
        else:
            raise TypeError(f"mlp_jet handles Linear and Tanh layers, not {type(layer).__name__}")
    if h_xx is None:
        h_xx = torch.zeros_like(h)
    return h.squeeze(-1), h_x.squeeze(-1), h_t.squeeze(-1), h_xx.squeeze(-1)
