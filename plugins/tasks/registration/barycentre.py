"""The barycentre constraint of ``registration.atlas``: the subjects' deformations, fitted
on a design (the mean, or the mean and the slope in an attribute), held at zero.

A template is the population's barycentre when the subjects' deformations from it
average to the identity. Which average is a choice (the lecture's "the sum of the
deformation fields should be minimal"):

- ``velocity``: mean_i v_i = 0, the log-Euclidean barycentre of SVFs (Arsigny 2006):
  one subtraction, exact, and the mean displacement vanishes to first order in v only;
- ``displacement``: mean_i exp(v_i) - id = 0, the barycentre as beo's penalty and the
  ``mean_deformation_mm`` metric measure it (the issue's "mean displacement toward
  zero"). It is no longer linear in v, so it is solved by a fixed-point iteration:
  v_i <- v_i - m, m the current mean displacement (a Newton iteration whose Jacobian is
  replaced by the identity, as Guimond's (2000) and ANTs' template updates move the
  template by the inverse of the mean displacement). Since exp(v - m) = exp(v) - m +
  O(|grad v| |m|), inside the image each pass shrinks m about 40-fold (measured from
  the velocity projection of 8 subjects of 3-voxel fields at 4 mm: 7e-2, 2e-3, 1e-4
  voxels); at the edges, where scaling and squaring reads zeros past the grid, only by
  about 0.7 a pass, which sets the count.

With a conditional template the same constraint holds at every attribute value: the
least-squares fit of the fields on the design [1, a] (mean and slope) is removed, so the
deformations cannot take up a linear trend in a that the template should carry.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

#: the displacement projection stops when max |fitted mean displacement| <= this (voxels)
TOLERANCE = 1e-4
#: ... or after this many passes (measured 12 to 15 a step on average, warm-started from
#: the previous step, on 4 to 8 subjects; about 25 from the velocity projection alone)
MAX_PASSES = 30

PROJECTIONS = ("none", "velocity", "displacement")


class Design:
    """Least-squares fits across subjects of per-subject fields (n, C, *S) on a design:
    the mean (``attributes`` None) or the mean and the slope in the attributes."""

    def __init__(self, attributes: torch.Tensor | None = None) -> None:
        self.hat: torch.Tensor | None = None
        if attributes is not None:
            design = torch.stack([torch.ones_like(attributes), attributes], dim=1)
            self.hat = design @ torch.linalg.pinv(design)  # (n, n) fitted-values matrix

    def fitted(self, fields: torch.Tensor) -> torch.Tensor:
        """The fitted fields: the mean (1, C, *S), or one per subject (n, C, *S)."""
        if self.hat is None:
            return fields.mean(0, keepdim=True)
        return torch.einsum("ij,j...->i...", self.hat.to(fields), fields)

    def penalty(self, disps: torch.Tensor) -> torch.Tensor:
        """mean over voxels (and subjects) of |fitted displacement|^2: beo's barycentre
        loss, mean_x |mean_i disp_i(x)|^2, when the design is the mean."""
        return (self.fitted(disps) ** 2).sum(1).mean()

    @torch.no_grad()
    def project_velocities(self, vel: torch.Tensor) -> None:
        """In place: the velocities' fit removed (mean_i v_i = 0, and no slope in a)."""
        vel -= self.fitted(vel)

    @torch.no_grad()
    def project_displacements(
        self, vel: torch.Tensor, exp: Callable[[torch.Tensor], torch.Tensor]
    ) -> int:
        """In place: the velocities corrected until the fit of their displacements
        exp(v_i) vanishes (max |fit| <= ``TOLERANCE`` voxels); returns the passes made.
        Starts from the velocity projection, which leaves a second-order remainder."""
        self.project_velocities(vel)
        for passes in range(MAX_PASSES):
            remainder = self.fitted(exp(vel))
            if float(remainder.abs().max()) <= TOLERANCE:
                return passes
            vel -= remainder
        return MAX_PASSES
