"""Counting function evaluations by wrapping the right-hand side."""

from __future__ import annotations

import torch


class CountingFunc(torch.nn.Module):
    """``func(t, y)`` that counts its calls; an ``nn.Module`` so adjoint solvers see its parameters.

    Solvers see only this wrapper, so every evaluation is counted, whoever makes
    it: forward steps, a solver's initial-step probe, or the augmented dynamics
    of an adjoint backward pass.
    """

    def __init__(self, func: torch.nn.Module) -> None:
        super().__init__()
        self.func = func
        self.calls = 0

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.func(t, y)

    def take(self) -> int:
        """The count so far, and start counting again from 0."""
        calls, self.calls = self.calls, 0
        return calls
