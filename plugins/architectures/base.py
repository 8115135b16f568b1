"""The architecture family's base class: what the ``classify.*``, ``memory.depth`` and
``synthesis.*`` tasks' architecture slot takes."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

from torch import nn

from bench import Architecture


class FlowArchitecture(Architecture):
    """A network of ``depth`` steps on a state of ``width`` features: a ResNet, a RevNet,
    a Neural ODE. ``build()`` returns a ``FlowNet`` (``plugins.architectures.common``):
    ``forward``, ``flow``, ``trajectory`` (the state after every step), ``penalty``,
    ``lipschitz_bound`` and, where the family has one, ``inverse``.

    ``invertible`` says how the module inverts, for the tasks that measure it or need it:

    - ``"exact"``: in closed form (RevNet's couplings), up to round-off;
    - ``"iterative"``: by a fixed-point iteration per step (i-ResNet); the module then
      has ``fixed_point_errors(k, y, iterations)`` and the settable ``iterations`` and
      ``tol`` of that iteration;
    - ``"approximate"``: by stepping backwards (ResNets, Neural ODEs), exact only in the
      limit of small steps;
    - ``None``: not at all (a plain MLP); tasks that need an inverse refuse it.
    """

    invertible: ClassVar[str | None] = None

    @classmethod
    def needs_domain(cls, params: dict[str, Any]) -> bool:
        """Whether the module's ``penalty`` samples the task's input domain (it is then
        called with the task's ``sample_domain``) for these resolved parameters (``params``
        as a task's ``check_cell`` gets them: ``"architecture.variant"``). A task that
        has no domain sampler refuses such a cell before it runs."""
        return False

    @abstractmethod
    def build(self, **kwargs: Any) -> nn.Module:
        """What a plugin of this family must implement (the family's contract above)."""
