"""The neural-field family's base class: what a ``fields.*`` task's encoding slot takes."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

from torch import nn

from bench import Encoding


class FieldEncoding(Encoding):
    """A coordinate network for the ``fields.*`` tasks: coordinates in [-1, 1]^d to values.

    ``build(in_features, out_features, *, resolution=..., sine_backend=None)`` returns the
    module; ``resolution`` is the number of points across the grid the task trains on,
    ``sine_backend`` the cell's ``SineMLPBackend`` (used only where ``sine_backend`` is
    True). A module may offer ``outputs(x)``, a list of outputs (a multi-scale field:
    BACON), which the fit supervises each with the same target, and ``cutoffs``, each
    output's band limit in cycles per unit: ``fields.multires`` then samples the 1/4
    grid from the finest output it can hold and scores each output against the image
    low-passed at its cut-off (without ``cutoffs`` it scores the last output, as any
    field's).

    ``sine_backend``: the field runs through the cell's sine-MLP backend (a SIREN), so
    that backend's ``max_width`` bounds its ``width``; other fields ignore the backend.
    """

    sine_backend: ClassVar[bool] = False

    @classmethod
    def check_resolution(cls, values: dict[str, Any], resolution: int) -> str | None:
        """Why these parameters cannot make a field trained ``resolution`` points across
        (asked when the suite is validated), or None."""
        return None

    @abstractmethod
    def build(self, in_features: int, out_features: int, **kwargs: Any) -> nn.Module:
        """What a plugin of this family must implement (the family's contract above)."""


def build_field(
    encoding: FieldEncoding, in_features: int, out_features: int, **kwargs: Any
) -> nn.Module:
    """``encoding.build(in_features, out_features, **kwargs)``, checked for what a task
    trains: each shortfall one message naming the encoding (a build that cannot take
    the task's keywords, that returns no ``nn.Module``, a module without trainable
    parameters or in another dtype than float32), not an error from deep inside the
    fit. Every task that builds an encoding builds it through this."""
    import inspect

    import torch

    name = encoding.name
    try:
        inspect.signature(encoding.build).bind(in_features, out_features, **kwargs)
    except TypeError as exc:
        raise TypeError(
            f"encoding {name}: build(in_features, out_features, **kwargs) is called with "
            f"{', '.join(f'{k}=' for k in kwargs) or 'no keyword'}: {exc}"
        ) from None
    model = encoding.build(in_features, out_features, **kwargs)
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"encoding {name}: build() returned {type(model).__name__}, not a torch nn.Module"
        )
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"encoding {name}: its module has no trainable parameter: nothing to fit")
    other = sorted({str(p.dtype) for p in params if p.dtype != torch.float32})
    if other:
        raise TypeError(
            f"encoding {name}: its module's parameters are {', '.join(other)}; fields are "
            "trained in float32 on float32 coordinates (build in the default dtype)"
        )
    return model


def check_field_shape(
    name: str, model: nn.Module, in_features: int, out_features: int, device: str
) -> None:
    """A field maps ``(points, in_features)`` to ``(points, out_features)``, each of its
    ``outputs`` too: a module that returns ``(points,)`` would broadcast against the
    targets in a loss (an N x N error) and end ok with wrong numbers, so it is refused
    here, by name. ``model`` on ``device``."""
    import torch

    x = torch.zeros(3, in_features, device=device)
    with torch.no_grad():
        outputs = getattr(model, "outputs", None)
        found = outputs(x) if outputs is not None else [model(x)]
        got = [tuple(o.shape) for o in found]
    want = (3, out_features)
    if any(shape != want for shape in got):
        raise ValueError(
            f"encoding {name}: for 3 points of {in_features} coordinates its module returns "
            f"{', '.join(map(str, got))}, not {want}: a field returns (points, out_features)"
        )
