"""The template of ``registration.atlas`` as a function of an attribute a of each subject.

Three forms, each giving the loss the template at every subject's a_i carried by that
subject's deformation, and the template at any a for the metrics:

- ``Fixed``: one learned image A (beo's atlas); a is ignored.
- ``Linear``: A(a) = A0 + a A1, two learned images (A1 starting at 0): the template
  linear in a in image space, the first-order expansion of any smooth T(a) (Dalca 2019
  decode the template from the attribute by a network; this is its linear case).
- ``Deformed``: A(a) = A0 o exp(a w), one learned image and one stationary velocity w
  (starting at 0, regularised as the subjects' velocities are): the template moved
  along a one-parameter subgroup of diffeomorphisms (the SVF framework's stand-in for
  a geodesic), as in geodesic image regression (Niethammer 2011; Fletcher 2013) and
  atlases conditioned by a deformation of a population template (Diff-Def, 2024). It
  can only move intensities, not create them: a change of shape with a stays one.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from plugins.methods.registration.losses import diffusion

Warp = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Exp = Callable[[torch.Tensor], torch.Tensor]

#: ``implicit`` (a neural field T(x, a)) lives in ``plugins.tasks.registration.implicit``:
#: it needs the cell's encoding, so ``registration.atlas`` builds it itself
FORMS = ("none", "linear", "deformed", "implicit")


class Fixed:
    """One template image for every subject."""

    def __init__(self, start: torch.Tensor, attributes: torch.Tensor | None, warp: Warp, exp: Exp):
        self.template = start.clone().requires_grad_()
        self.attributes = attributes
        self.warp, self.exp = warp, exp

    @property
    def images(self) -> list[torch.Tensor]:
        """Learned images (Adam at the template's learning rate)."""
        return [self.template]

    @property
    def velocities(self) -> list[torch.Tensor]:
        """Learned velocity fields (Adam at the velocities' learning rate)."""
        return []

    @property
    def networks(self) -> list[torch.nn.Parameter]:
        """Learned network weights (Adam at the field's learning rate): none here."""
        return []

    def warped(self, disp: torch.Tensor) -> torch.Tensor:
        """The template at each subject's attribute, read at x + disp_i(x): (n, 1, *S)."""
        shape = disp.shape[2:]
        return self.warp(self.template.expand(len(disp), -1, *shape), disp)

    def regulariser(self, weight: float, magnitude: float) -> torch.Tensor:
        return self.template.new_zeros(())

    @torch.no_grad()
    def at(self, attribute: float) -> np.ndarray:
        """The template at attribute ``attribute`` (numpy, float64)."""
        return self.template.detach()[0, 0].double().cpu().numpy()

    def _per_subject(self, like: torch.Tensor) -> torch.Tensor:
        a = self.attributes.to(like)
        return a.reshape((len(a),) + (1,) * (like.dim() - 1))


class Linear(Fixed):
    """A(a) = A0 + a A1 in image space."""

    def __init__(self, start, attributes, warp, exp):
        super().__init__(start, attributes, warp, exp)
        self.increment = torch.zeros_like(start, requires_grad=True)

    @property
    def images(self) -> list[torch.Tensor]:
        return [self.template, self.increment]

    def warped(self, disp):
        per_subject = self.template + self._per_subject(self.template) * self.increment
        return self.warp(per_subject, disp)

    @torch.no_grad()
    def at(self, attribute):
        image = self.template + attribute * self.increment
        return image.detach()[0, 0].double().cpu().numpy()


class Deformed(Fixed):
    """A(a) = A0 o exp(a w): subject i reads A0 at x + total_i(x), total_i the
    displacement of exp(a_i w) o exp(v_i) (one interpolation of A0 per subject)."""

    def __init__(self, start, attributes, warp, exp):
        super().__init__(start, attributes, warp, exp)
        ndim = start.dim() - 2
        self.velocity = start.new_zeros((1, ndim, *start.shape[2:])).requires_grad_()

    @property
    def velocities(self) -> list[torch.Tensor]:
        return [self.velocity]

    def warped(self, disp):
        own = self.exp(self._per_subject(disp) * self.velocity.expand_as(disp))
        total = disp + self.warp(own, disp)
        return super().warped(total)

    def regulariser(self, weight, magnitude):
        # w is the velocity from A(0) to A(1): weighed as one more subject's velocity
        return weight * diffusion(self.velocity) + magnitude * (self.velocity**2).mean()

    @torch.no_grad()
    def at(self, attribute):
        disp = self.exp(attribute * self.velocity)
        return self.warp(self.template, disp).detach()[0, 0].double().cpu().numpy()


def template_model(
    form: str, start: torch.Tensor, attributes: torch.Tensor | None, warp: Warp, exp: Exp
) -> Fixed:
    """The template of ``form`` (one of ``FORMS``), starting from image ``start``."""
    kinds = {"none": Fixed, "linear": Linear, "deformed": Deformed}
    if form not in kinds:
        raise ValueError(f"Invalid grid template {form!r}. Must be one of {tuple(kinds)}")
    if form != "none" and attributes is None:
        raise ValueError(f"a {form} conditional template needs the subjects' attributes")
    return kinds[form](start, attributes, warp, exp)
