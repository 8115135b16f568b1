"""The neural-fields family's cross-parameter error (encodings and ``fields.*`` tasks)."""

from __future__ import annotations

from typing import Any

from bench import ParamError
from bench.suite import SuiteError


class FieldParamError(ParamError, SuiteError):
    """A task's cross-parameter mistake (image and size, image and color, base and finest...).

    Raised from ``resolve_params``. Suite validation calls a task's ``resolve_params``
    outside its ``ParamError`` handling (bench/suite.py ``_resolve``), so a plain
    ``ParamError`` would end ``bench run`` with a traceback; as a ``SuiteError`` too it
    is reported like every validation mistake (exit 2, nothing run), naming the task
    and the values at fault. Remove the ``SuiteError`` base once the harness catches it.
    """

    def __init__(
        self,
        task: str,
        values: dict[str, Any],
        reason: str,
        keys: tuple[str, ...] = ("image", "size", "color"),
    ) -> None:
        shown = ", ".join(f"{k}={values[k]!r}" for k in keys if k in values)
        SuiteError.__init__(self, f"{task} ({shown})", [reason])
