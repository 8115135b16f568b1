"""What a task's result is: its quality metrics (and which way is better), what a cell
cost, and the curves that show the work progressing. A task declares it
(``Task.headline``); a run records it in ``run.json`` so that ``show``, ``report``,
``compare`` and ``site`` lead with it without importing any plugin.

::

    class Harmonic(Task):
        headline = Headline(
            quality={"final_rel_error": "lower"},
            cost="time.solve.median",
            curves=("error",),
        )
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DIRECTIONS = ("lower", "higher")
#: the columns a cost may name: a timer's median, a memory peak, the cell's wall time,
#: or a metric the task records as its cost (e.g. seconds of training)
COST_PREFIXES = ("time.", "mem.", "metric.")


class HeadlineError(ValueError):
    """A headline that does not say what a task's result is."""


@dataclass(frozen=True)
class Headline:
    """``quality``: metric name -> ``"lower"`` or ``"higher"`` (which is better), in
    order of importance (the first is the primary); ``cost``: a column of the cells
    table (``time.<timer>.median``, ``mem.<name>``, ``wall`` or ``metric.<name>``);
    ``curves``: curve names, the first the main one; ``validation``: validation-split
    metrics (see the field); ``problem``: the task's own
    parameters that pose another problem rather than another way to solve it (the
    data, a truth generator, an image): the best configuration and the Pareto front
    are judged within each of their values, never across (an easier problem is no
    better method)."""

    quality: dict[str, str]
    cost: str = "wall"
    curves: tuple[str, ...] = field(default=())
    problem: tuple[str, ...] = field(default=())
    #: metric name -> direction: the same quality measured on a validation split the
    #: quality metrics never see; a tuned entry chooses by the first unless told
    validation: dict[str, str] = field(default_factory=dict)
    #: the metric that says how big a configuration is (``parameters``): where it
    #: differs between the configurations of a problem, the pages say so beside the best
    size: str = ""
    #: the metric that says how much work a configuration was given (``loss_evaluations``):
    #: where it differs between the configurations of a problem, or some do not record
    #: it, the pages say so beside the best (budgets a plugin names its own way, steps
    #: against adam_steps, stay comparable through it)
    budget: str = ""
    #: quality metric -> the metric recording its floor, what a configuration that
    #: learned nothing scores (``{"psnr": "psnr_floor"}``): the pages give each
    #: configuration's margin past it
    floor: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "quality", dict(self.quality))
        object.__setattr__(self, "curves", tuple(self.curves))
        object.__setattr__(self, "problem", tuple(self.problem))
        object.__setattr__(self, "validation", dict(self.validation))
        for name, direction in self.validation.items():
            if not isinstance(name, str) or not name or name.startswith("metric."):
                raise HeadlineError(f"validation metric {name!r}: give the metric's own name")
            if direction not in DIRECTIONS:
                raise HeadlineError(
                    f"validation metric {name!r}: {direction!r} is not 'lower' or 'higher'"
                )
        if not self.quality:
            raise HeadlineError("a headline names at least one quality metric")
        for name, direction in self.quality.items():
            if not isinstance(name, str) or not name or name.startswith("metric."):
                raise HeadlineError(f"quality metric {name!r}: give the metric's own name")
            if direction not in DIRECTIONS:
                raise HeadlineError(
                    f"quality metric {name!r}: {direction!r} is not 'lower' or 'higher' "
                    "(which is better)"
                )
        if self.cost != "wall" and not self.cost.startswith(COST_PREFIXES):
            raise HeadlineError(
                f"cost {self.cost!r}: a column, e.g. time.solve.median, mem.peak, wall or "
                "metric.train_seconds"
            )
        if not all(isinstance(c, str) and c for c in self.curves):
            raise HeadlineError(f"curves {self.curves!r}: curve names")
        object.__setattr__(self, "floor", dict(self.floor))
        for name, floor in self.floor.items():
            if name not in self.quality or not isinstance(floor, str) or not floor:
                raise HeadlineError(
                    f"floor {name!r}: a quality metric's name -> the metric of its floor"
                )
        for what, name in (("size", self.size), ("budget", self.budget)):
            if not isinstance(name, str) or name.startswith("metric."):
                raise HeadlineError(f"{what} {name!r}: give the metric's own name")
        for name in self.problem:
            if not isinstance(name, str) or not name or name.startswith("param.") or "." in name:
                raise HeadlineError(
                    f"problem {name!r}: give the name of one of the task's own parameters "
                    "(truth, image)"
                )

    @property
    def primary(self) -> str:
        """The primary quality column (``metric.<name>``)."""
        return f"metric.{next(iter(self.quality))}"

    @property
    def ranked(self) -> dict[str, str]:
        """Every metric the headline ranks, with which way is better: the quality
        metrics, then the validation ones (what a tuning may choose by)."""
        return {**self.quality, **self.validation}

    @property
    def quality_columns(self) -> list[str]:
        return [f"metric.{name}" for name in self.quality]

    def better(self, column: str) -> str | None:
        """``lower``/``higher`` for a quality column, None for another column."""
        return self.quality.get(column.removeprefix("metric."))

    @property
    def problem_columns(self) -> list[str]:
        return [f"param.{name}" for name in self.problem]

    def to_dict(self) -> dict[str, Any]:
        out = {"quality": dict(self.quality), "cost": self.cost, "curves": list(self.curves)}
        if self.problem:
            out["problem"] = list(self.problem)
        if self.validation:
            out["validation"] = dict(self.validation)
        if self.size:
            out["size"] = self.size
        if self.budget:
            out["budget"] = self.budget
        if self.floor:
            out["floor"] = dict(self.floor)
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Headline | None:
        """From ``run.json`` (a received file: anything malformed is None, not raised)."""
        if not isinstance(data, dict) or not isinstance(data.get("quality"), dict):
            return None
        problem, validation = data.get("problem", []), data.get("validation", {})
        if not isinstance(problem, list) or not isinstance(validation, dict):
            return None  # a string would read as its letters, a list would not map
        try:
            return cls(
                quality=data["quality"],
                cost=str(data.get("cost", "wall")),
                curves=tuple(data.get("curves", ())),
                problem=tuple(problem),
                validation=dict(validation),
                size=data.get("size", "") if isinstance(data.get("size", ""), str) else "",
                budget=data.get("budget", "") if isinstance(data.get("budget", ""), str) else "",
                floor=data.get("floor", {}) if isinstance(data.get("floor", {}), dict) else {},
            )
        except (HeadlineError, TypeError, AttributeError):
            return None
