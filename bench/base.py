"""Base classes for every kind of plugin.

A plugin is a class with a unique ``name``, a docstring (its first line is what
``bench list`` shows), and typed ``params``. It is registered by returning it
from the ``bench_plugins`` hook; its kind is read from the class.

Required and optional members, per kind:

- every plugin: ``name``; optional ``params``, ``requires`` (modules that must
  import for the plugin to run), ``skip(device)`` for other reasons to skip,
  ``prepare(device)`` for one-time set-up kept off every clock.
- ``Solver``: ``order`` and ``odeint(func, y0, t, **options)``; optional
  ``adaptive``, ``supports_adjoint``.
- ``Architecture``: ``build(**kwargs) -> torch.nn.Module``.
- ``Encoding``: ``build(in_features, out_features, **kwargs) -> torch.nn.Module``.
- ``Backend``: ``op`` (the hot operation it implements) and ``__call__``.
- ``Method``: ``family`` (the problem family it solves, e.g. ``registration``) and
  ``solve(problem, ctx)``; the family's tasks document what ``problem`` holds.
- ``Task``: ``components`` (slot -> the base class its plugins must subclass, or a
  ``Slot`` with a default) and ``run(ctx)``.

A family narrows a kind by subclassing its base (``RegistrationMethod(Method)``,
``WarpBackend(Backend)``) and declares there, as documented class attributes and
methods, what its tasks may rely on; a task's slot names that subclass.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from bench.headline import Headline
from bench.params import Param, ParamError

if TYPE_CHECKING:
    import torch

    from bench.context import CellContext

KINDS = ("solver", "architecture", "encoding", "method", "task", "backend")


class SkipCell(Exception):
    """Raise from a plugin to end its cell with status ``skipped`` and this reason."""


class Diverged(Exception):
    """Raise from a plugin to end its cell with status ``diverged`` and this reason."""


def add_note(exc: BaseException, note: str) -> None:
    """Add where a failure was to an exception on its way out (``except ...:
    add_note(exc, "in the untimed warm-up"); raise``): the cell's message says it in
    parentheses, whatever the status. ``BaseException.add_note`` from Python 3.11, the
    same ``__notes__`` list before it."""
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list):
        notes.append(note)
    else:
        exc.__notes__ = [note]  # type: ignore[attr-defined]


class Plugin(ABC):
    """Common base: a named, documented class with typed parameters."""

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    params: ClassVar[dict[str, Param]] = {}
    requires: ClassVar[tuple[str, ...]] = ()
    #: the settings a tuned suite tries for this plugin (``tune: {grid: declared}``):
    #: parameter -> values, swept as a cartesian product (bench.tuning)
    tuning: ClassVar[dict[str, list[Any]]] = {}

    def __init__(self, **values: Any) -> None:
        self.values = self.resolve_params(values)
        #: the parameters set explicitly (by the suite, or by the caller), the rest
        #: being defaults: a plugin holding another may let its own setting yield to
        #: one the suite gave (a Neural ODE's step h = T/depth, unless the suite set
        #: ``architecture.solver.step_size``)
        self.given: frozenset[str] = frozenset(values)

    @classmethod
    def plugin_params(cls) -> dict[str, Param]:
        """The parameters that name another plugin (``Param(..., plugin=Solver)``)."""
        return {k: p for k, p in cls.params.items() if p.plugin is not None}

    @classmethod
    def nested_settings(
        cls, head: str, inner: type[Plugin], resolved: dict[str, Any]
    ) -> dict[str, Any]:
        """What this plugin passes the nested plugin ``inner`` it holds as ``head`` at run
        time, from its own ``resolved`` values, where the suite sets none (a Neural ODE
        steps its solver time/depth). Checked when the suite is validated: a key ``inner``
        does not have, where the suite sets none of its parameters, is refused naming
        both (a solver whose step is ``dt`` would run at its own). Default: nothing."""
        return {}

    def nested_options(self, head: str) -> dict[str, Any]:
        """What ``nested_settings`` passes the plugin this one holds as ``head``, at run
        time: the keys that plugin has and its suite (or caller) did not set itself."""
        inner = self.values[head]
        passes = type(self).nested_settings(head, type(inner), self.values)
        return {k: v for k, v in passes.items() if k in inner.params and k not in inner.given}

    @classmethod
    def resolve_params(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Validate ``values`` against ``params`` and fill in defaults.

        Raises ``ParamError`` naming the first bad parameter.
        """
        unknown = sorted(set(values) - set(cls.params))
        if unknown:
            known = ", ".join(sorted(cls.params)) or "none"
            raise ParamError(
                f"{cls.name} has no parameter {unknown[0]!r} (its parameters: {known})"
            )
        resolved = {}
        for key, param in cls.params.items():
            if key in values:
                try:
                    resolved[key] = param.validate(values[key])
                except ParamError as exc:
                    raise ParamError(f"{cls.name}.{key}: {exc}") from None
            else:
                resolved[key] = param.default
        return resolved

    @classmethod
    def summary(cls) -> str:
        """The docstring's first paragraph, as one line (a first sentence that wraps onto
        a second line was cut mid-sentence)."""
        doc = inspect.cleandoc(cls.__doc__ or "")
        paragraph = re.split(r"\n\s*\n", doc, maxsplit=1)[0] if doc else ""
        return " ".join(line.strip() for line in paragraph.splitlines())

    @classmethod
    def missing_requirement(cls) -> str | None:
        """The reason this plugin cannot run here, or None.

        Checks that every module in ``requires`` can be imported, without
        importing it.
        """
        for module in cls.requires:
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                return f"{cls.name} needs the optional module {module!r}, which is not installed"
        return None

    def skip(self, device: str) -> str | None:
        """Override to skip on some devices or settings: return a reason, or None."""
        return None

    def prepare(self, device: str) -> None:
        """One-time set-up that no measurement should count: importing an optional
        package (ANTs', ITK's lazy modules), reading a file. The harness calls it in the
        cell's worker after ``skip`` and before the task runs, so with ``warmup: 0`` the
        first timed call of a worker does not pay it. Default: nothing."""
        return None


class Solver(Plugin):
    """Integrates dx/dt = f(t, x) from ``t[0]`` through every time in ``t``.

    ``odeint`` has torchdiffeq's semantics: ``func(t, y)`` returns dy/dt, ``y0``
    is a tensor, ``t`` is a 1-D increasing tensor, and the result has shape
    ``(len(t), *y0.shape)`` with ``result[0] == y0``.
    """

    kind = "solver"
    order: ClassVar[int] = 0
    adaptive: ClassVar[bool] = False
    supports_adjoint: ClassVar[bool] = False
    #: a fixed-step solver that steps from each output time to the next, landing on
    #: each (no interpolation), with its ``step_size`` parameter: a step above the
    #: output spacing runs at the spacing, and one that does not divide it cannot be
    #: taken throughout (a shorter last step, or equal shorter ones). Tasks that know
    #: their output times refuse both rather than label a cell with a step it did not take.
    lands_on_outputs: ClassVar[bool] = False

    @classmethod
    def steps_by_size(cls) -> bool:
        """Whether a plugin holding this solver steps it by ``step_size``: a fixed-step
        solver (it must have one) or an adaptive one that takes a ``step_size``."""
        return not cls.adaptive or "step_size" in cls.params

    @abstractmethod
    def odeint(self, func: Any, y0: torch.Tensor, t: torch.Tensor, **options: Any) -> torch.Tensor:
        """Solve and return the solution at every time in ``t``.

        ``options`` may carry ``adjoint=True`` (only where ``supports_adjoint``;
        ``func`` must then be an ``nn.Module``) and overrides of the solver's
        own parameters for this call.
        """


class Architecture(Plugin):
    """A family of torch modules (ResNet, RevNet, Neural ODE, ...)."""

    kind = "architecture"

    @abstractmethod
    def build(self, **kwargs: Any) -> torch.nn.Module:
        """Return a fresh module; ``kwargs`` are sizes the task decides."""


class Encoding(Plugin):
    """A coordinate network (neural field) mapping coordinates to values."""

    kind = "encoding"

    @abstractmethod
    def build(self, in_features: int, out_features: int, **kwargs: Any) -> torch.nn.Module:
        """Return a fresh module mapping ``(N, in_features)`` to ``(N, out_features)``."""


class Method(Plugin):
    """An algorithm that solves one family's problem: a registration method, a PINN.

    A family subclasses this once (``RegistrationMethod``, ``PhysicsMethod``) and its
    tasks' ``method`` slot names that subclass, so the suite refuses a method of
    another family when it is validated. The family's base documents the ``problem``
    its tasks hand to ``solve`` and what it returns.
    """

    kind = "method"

    @abstractmethod
    def solve(self, problem: Any, ctx: CellContext) -> Any:
        """Solve ``problem`` (the family's problem object), recording into ``ctx``."""


class Backend(Plugin):
    """One implementation of a hot operation, e.g. warp or sine-MLP.

    Each operation subclasses this once (``WarpBackend``, ``SineMLPBackend``), with
    the call its implementations share; a slot names that subclass. ``op`` is the
    operation's name, for listings.
    """

    kind = "backend"
    op: ClassVar[str] = ""

    @abstractmethod
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the operation."""


@dataclass(frozen=True)
class Slot:
    """What one of a task's component slots accepts.

    Args:
        base: the class its plugins must subclass (``Solver``, or a family's own
            ``RegistrationMethod``, ``WarpBackend``); the suite refuses any other.
        default: the plugin used when a suite leaves the slot out.
        optional: the slot may stay empty (the task then gets no such component).
        doc: one line for ``bench list``.
    """

    base: type[Plugin]
    default: str | None = None
    optional: bool = False
    doc: str = ""

    @property
    def kind(self) -> str:
        return self.base.kind

    def accepts(self, cls: type) -> bool:
        return isinstance(cls, type) and issubclass(cls, self.base)

    def describe(self) -> str:
        """``WarpBackend backend, default warp.eager`` for listings and messages."""
        text = base_label(self.base)
        if self.default is not None:
            text += f", default {self.default}"
        elif self.optional:
            text += ", optional"
        return text


def base_label(base: type[Plugin], bases: dict[str, type[Plugin]] | None = None) -> str:
    """``solver`` for a kind's own base, ``WarpBackend backend`` for a family's."""
    return base.kind if base is (bases or BASES).get(base.kind) else f"{base.__name__} {base.kind}"


def as_slot(spec: Slot | type[Plugin] | str) -> Slot:
    """A ``components`` value as a ``Slot``: a Slot, a base class, or a kind's name
    (``"solver"``, the older spelling, meaning the kind's base class)."""
    if isinstance(spec, Slot):
        return spec
    if isinstance(spec, str):
        return Slot(BASES[spec])
    return Slot(spec)


class Task(Plugin):
    """A problem, a protocol and its metrics.

    ``components`` maps each slot the task needs to the base class its plugins must
    subclass, e.g. ``{"solver": Solver}``, or to a ``Slot`` with a default
    (``Slot(WarpBackend, default="warp.eager")``); a suite fills each slot with a
    plugin name and the harness passes instances in ``ctx.components``. ``run``
    makes its data (untimed), then times the work with ``ctx.time`` and records
    results with ``ctx.metric`` and ``ctx.curve``.
    """

    kind = "task"
    components: ClassVar[dict[str, Slot | type[Plugin] | str]] = {}
    #: what the task's result is (quality metrics and which way is better, cost,
    #: curves): ``show``, ``report``, ``compare`` and ``site`` lead with it
    headline: ClassVar[Headline | None] = None
    #: the problem parameters that choose the data itself (the image, the viscosity),
    #: where the headline's other ``problem`` parameters choose how much of it is seen
    #: or how it is scored (the size, a held-out share, a grid): ``tune:
    #: validation_params`` must change one of them, or the validation cells would
    #: choose on the reported data. None: every ``problem`` parameter; ``()``: none
    #: (the task has one data set)
    data_params: ClassVar[tuple[str, ...] | None] = None

    @classmethod
    def slots(cls) -> dict[str, Slot]:
        """``components`` with every value as a ``Slot``."""
        return {name: as_slot(spec) for name, spec in cls.components.items()}

    @classmethod
    def check_component(cls, slot: str, plugin: type[Plugin]) -> str | None:
        """Refuse a plugin that fits the slot's base class but that this task still
        cannot use (a field task that needs one particular sine backend).

        Called while a suite is validated, for every plugin named in a slot; return
        the reason, or None. What every plugin of a family can or cannot do belongs
        on the family's base class, which the slot names, not here.
        """
        return None

    @classmethod
    def check_cell(cls, components: dict[str, type[Plugin]], params: dict[str, Any]) -> str | None:
        """Refuse a combination of this task's parameters and its components' classes
        that cannot run (e.g. a method that cannot optimise the task's similarity).

        Called while a suite is validated, once per cell configuration, with the slot ->
        plugin class mapping and the resolved parameters: the task's by name, and each
        component's as ``"slot.name"`` (``params["encoding.width"]``), as a suite names
        them; return the reason, or None. Reported with the entry and the cell's values,
        exit 2, nothing run.
        """
        return None

    @classmethod
    def tuning_metric(cls, params: dict[str, Any]) -> str | None:
        """The metric a tuned entry whose suite names no ``select`` chooses by, for these
        resolved parameters; one of the headline's quality or validation metrics. None:
        the headline's first validation metric, else its primary. A task whose primary
        is recorded only under some parameters (a held-out PSNR, with a held-out share)
        names another for the rest."""
        return None

    @classmethod
    def data_seeds(cls, params: dict[str, Any], seed: int) -> tuple[int, ...]:
        """The seeds a cell of ``seed`` draws its data with, for these resolved task
        parameters: its own (the default), or more where it draws, say, its test set
        with another (``(seed, seed + 10000)``). A tuned entry is refused where a
        validation cell would draw with a seed a reported cell draws with, on the same
        data parameters: a choice trained or scored on the reported cells' data."""
        return (seed,)

    @classmethod
    def validation_data(cls, params: dict[str, Any], select: str) -> str | None:
        """Why a tuned entry choosing by the metric ``select`` would choose on the data its
        reported cells are scored on, for these resolved task parameters ("scores every
        seed on the same 256 x 100 grid"); None where it would not (a seed draws its own
        data, or ``select`` is measured on a validation split the reported metrics never
        see: ``Headline.validation`` names those). Such a suite is refused before
        anything runs, with the reason."""
        return None

    @abstractmethod
    def run(self, ctx: CellContext) -> None:
        """Run one cell."""


BASES: dict[str, type[Plugin]] = {
    "solver": Solver,
    "architecture": Architecture,
    "encoding": Encoding,
    "method": Method,
    "task": Task,
    "backend": Backend,
}
