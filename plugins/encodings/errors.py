"""The neural-fields family's cross-parameter error (encodings and ``fields.*`` tasks)."""

from __future__ import annotations

from typing import Any

from bench import ParamError


class FieldParamError(ParamError):
    """A task's or encoding's cross-parameter mistake (image and size, image and color,
    base and finest resolution...).

    Raised from ``resolve_params``; suite validation reports it with the entry
    (``benchmarks[i]``) and that cell's values, exit 2, nothing run. ``task``, ``values``
    and ``keys`` are kept for callers outside a suite (the message is the reason alone:
    the harness adds where and with which values).
    """

    def __init__(
        self,
        task: str,
        values: dict[str, Any],
        reason: str,
        keys: tuple[str, ...] = ("image", "size", "color"),
    ) -> None:
        super().__init__(reason)
        self.task = task
        self.values = {k: values[k] for k in keys if k in values}
