"""The physics family's base class: what ``physics.*`` tasks' method slot takes."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

from bench import CellContext, Method


class PhysicsMethod(Method):
    """Base of the physics methods: ``solve(problem, ctx)`` takes a ``PhysicsProblem``
    and returns a ``Solution`` (see ``plugins.methods.physics``).

    ``needs``: what the method learns from, ``points`` (constraint and field samples,
    which every physics task gives) or ``grid`` (the book's periodic ``GridSetup``,
    which only the grid-posed tasks give); a task refuses a method that needs what it
    does not offer when the suite is validated.

    ``solve`` records its training's seconds (``ctx.add_time("train", ...)``, refused
    without) and should record ``loss_evaluations``, the Burgers tasks' budget: the
    pages say where it differs between configurations, or where a method records none.
    """

    needs: ClassVar[str] = "points"

    def reads_field(self) -> bool:
        """Whether ``solve`` learns from ``problem.field``, samples of the solution itself
        anywhere in the domain: a task gives them only to a method that says so (others
        get None) and records ``field_samples_given`` (1 or 0), so that a table tells a
        method that fitted the solution from one that was given its constraints alone.
        Default: no (a PINN's data are its constraints)."""
        return False

    @abstractmethod
    def solve(self, problem: Any, ctx: CellContext) -> Any:
        """What a plugin of this family must implement (the family's contract above)."""
