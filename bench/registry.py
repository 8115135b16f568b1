"""The registry: every plugin class, by kind and name, with who provided it."""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, replace
from typing import Any

import pluggy

from bench.base import BASES, Plugin, Solver, base_label
from bench.params import Param, ParamError, article, did_you_mean, shown


class RegistryError(Exception):
    """A plugin registration that cannot stand (duplicate name, wrong base class)."""


class UnknownPluginError(KeyError):
    """A plugin name that no registered plugin has."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


@dataclass(frozen=True)
class Entry:
    cls: type[Plugin]
    provider: str  # the registered plugin (module) that returned the class

    @property
    def name(self) -> str:
        return self.cls.name


class Registry:
    """Plugin classes collected from a plugin manager's registration hooks."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        #: plugin modules that failed to import: name -> reason (see get_plugin_manager)
        self.unavailable: dict[str, str] = dict(getattr(pm, "unavailable", {}))
        #: kind -> its base class: the harness's own, then those plugins add
        self.bases: dict[str, type[Plugin]] = dict(BASES)
        for cls, provider in self._returned("bench_kinds"):
            self._add_kind(cls, provider)
        self._entries: dict[str, dict[str, Entry]] = {kind: {} for kind in self.bases}
        for cls, provider in self._returned("bench_plugins"):
            self._add(cls, provider)

    @property
    def kinds(self) -> list[str]:
        return list(self.bases)

    def where(self, provider: str) -> str:
        """A plugin file's path rather than the module name it was imported under."""
        module = self.pm.get_plugin(provider)
        path = getattr(module, "__file__", None)
        if provider.startswith("bench_local_") and path:
            try:
                return os.path.relpath(path)
            except ValueError:  # another drive
                return path
        return provider

    def _returned(self, hook_name: str) -> list[tuple[Any, str]]:
        """Every class the implementations of a hook return, with who returned it."""
        out = []
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():  # registration order
            try:
                classes = impl.function() or []
            except Exception as exc:  # noqa: BLE001 - named, not a traceback
                where, what = self.where(impl.plugin_name), type(exc).__name__
                message = f"{where}: its {hook_name}() hook raised {what}: {exc}"
                raise RegistryError(message) from None
            if not isinstance(classes, (list, tuple)):
                raise RegistryError(
                    f"{self.where(impl.plugin_name)}: {hook_name}() must return a list of classes, "
                    f"got {type(classes).__name__}"
                )
            out.extend((cls, impl.plugin_name) for cls in classes)
        return out

    def _add_kind(self, cls: Any, provider: str) -> None:
        kind = getattr(cls, "kind", "") if isinstance(cls, type) else ""
        if not (isinstance(cls, type) and issubclass(cls, Plugin)) or not kind:
            raise RegistryError(
                f"{provider} returned {cls!r} from bench_kinds(); a kind is a subclass of "
                "bench.Plugin that sets `kind`"
            )
        existing = self.bases.get(kind)
        if existing is not None and existing is not cls:
            raise RegistryError(
                f"{provider}: kind {kind!r} ({cls.__qualname__}) exists already "
                f"({existing.__module__}.{existing.__qualname__})"
            )
        self.bases[kind] = cls

    def _add(self, cls: Any, provider: str) -> None:
        kind = getattr(cls, "kind", None) if isinstance(cls, type) else None
        base = self.bases.get(kind) if isinstance(kind, str) else None
        if base is None or not issubclass(cls, base):
            known = ", ".join(b.__name__ for b in self.bases.values())
            raise RegistryError(
                f"{provider} returned {cls!r} from bench_plugins(); it must subclass the "
                f"base of a kind ({known}), or bench_kinds() must add its kind"
            )
        if not cls.name:
            raise RegistryError(f"{provider}: {cls.__qualname__} has no name")
        if cls not in _CHECKED:  # once per class and process: a registry is built often
            _CHECKED[cls] = _declaration_problem(cls, base)
        problem = _CHECKED[cls]
        if problem:
            raise RegistryError(f"{self.where(provider)}: {kind} {cls.name!r}: {problem}")
        existing = self._entries[kind].get(cls.name)
        if existing is not None:
            raise RegistryError(
                f"duplicate {kind} name {cls.name!r}: provided by {existing.provider} "
                f"({existing.cls.__qualname__}) and by {provider} ({cls.__qualname__})"
            )
        self._entries[kind][cls.name] = Entry(cls, provider)

    def names(self, kind: str) -> list[str]:
        return sorted(self._entries[kind])

    def entries(self, kind: str | None = None) -> list[Entry]:
        kinds = self.kinds if kind is None else (kind,)
        return [self._entries[k][n] for k in kinds for n in sorted(self._entries[k])]

    def has(self, kind: str, name: str) -> bool:
        return name in self._entries.get(kind, {})

    def fitting(self, base: type[Plugin]) -> list[str]:
        """The names of the plugins that subclass ``base`` (what a slot of it takes)."""
        return [n for n, e in sorted(self._entries.get(base.kind, {}).items())
                if issubclass(e.cls, base)]  # fmt: skip

    def lookup(self, base: type[Plugin], name: object, what: str = "") -> type[Plugin]:
        """The plugin ``name`` if it subclasses ``base``; else ``UnknownPluginError``
        whose message lists only the plugins that do (``what`` names the slot)."""
        entry = self._entries.get(base.kind, {}).get(name) if isinstance(name, str) else None
        if entry is not None and issubclass(entry.cls, base):
            return entry.cls
        fits = self.fitting(base)
        label = base_label(base, self.bases)
        if entry is not None:
            raise UnknownPluginError(
                f"{name!r} is a {base.kind} that does not subclass {base.__name__}{what} "
                f"({label}s: {', '.join(fits) or 'none'})"
            )
        message = self._other_kind(base.kind, name, fits) or unknown_message(label, name, fits)
        raise UnknownPluginError(self._with_unavailable(message))

    def get(self, kind: str, name: str) -> type[Plugin]:
        """The class registered as ``name`` for ``kind``; unknown names say what is close."""
        if kind not in self._entries:
            known = ", ".join(self.kinds)
            raise UnknownPluginError(f"unknown plugin kind {kind!r}; kinds are {known}")
        try:
            return self._entries[kind][name].cls
        except KeyError:
            raise UnknownPluginError(self.unknown(kind, name)) from None

    def unknown(self, kind: str, name: object) -> str:
        """The message for a name no plugin of ``kind`` has: close names, the known ones,
        and the plugin modules that could not be imported (one of them may hold it); or,
        where a plugin of another kind has it, that it is of that kind."""
        message = self._other_kind(kind, name) or unknown_message(kind, name, self.names(kind))
        return self._with_unavailable(message)

    def _other_kind(self, kind: str, name: object, fits: list[str] | None = None) -> str | None:
        """``'my_lab.midnet' is an architecture, not a solver (solvers: ...)`` where a
        plugin of another kind has the name (``fits``: the names the slot takes, where
        it narrows the kind); None where none has."""
        if not isinstance(name, str):
            return None
        other = [k for k in self.kinds if k != kind and name in self._entries[k]]
        if not other:
            return None
        listing = self.names(kind) if fits is None else fits
        shown_ = ", ".join(listing) if len(listing) <= 12 else f"see `bench list {kind}`"
        return f"{name!r} is {article(other[0])}, not {article(kind)} ({kind}s: {shown_ or 'none'})"

    def _with_unavailable(self, message: str) -> str:
        """``message`` and the plugin modules that could not be imported (one of them
        may hold the plugin asked for)."""
        if not self.unavailable:
            return message
        down = "; ".join(f"{m}: {why}" for m, why in self.unavailable.items())
        return f"{message} (plugin modules that could not be imported: {down})"


def unknown_message(kind: str, name: object, known: list[str]) -> str:
    hint = did_you_mean(name, known, n=3, cutoff=0.5)
    if len(known) <= 12:
        listing = ", ".join(known)
    else:
        listing = f"{len(known)} {kind}s (see `bench list {kind}`)"
    return f"unknown {kind} {name!r}{hint} (available: {listing or 'none'})"


#: each plugin class's declaration problem (None: none), checked once per process
_CHECKED: dict[type, str | None] = {}


def _declaration_problem(cls: type[Plugin], base: type[Plugin]) -> str | None:
    """What a plugin class declares wrongly, told when it is registered (a suite's
    plugin file, an entry point) rather than as a traceback from inside a cell: a
    method of its family's contract left unimplemented, a parameter that is not a
    ``Param`` or whose default its own bounds refuse, a tuning grid over a parameter it
    does not have or with a value it refuses. The rest is ``bench.testing.check_plugin``'s."""
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
        family = next(
            (b.__name__ for b in cls.__mro__[1:] if missing and inspect.isabstract(b)),
            base.__name__,
        )
        return f"does not implement {missing} (what a {family} must)"
    params = getattr(cls, "params", {})
    if not isinstance(params, dict):
        return f"params is {shown(params)}, not a mapping of names to bench.Param"
    for key, param in params.items():
        if not isinstance(param, Param):
            return f"params[{key!r}] is {shown(param)}, not a bench.Param (Param(default, doc=...))"
        if param.plugin is None:
            try:  # its type, bounds and choices; a check= function runs on suites' values
                replace(param, check=None).validate(param.default)
            except ParamError as exc:
                return f"params[{key!r}]: its default {shown(param.default)} {exc}"
    problem = data_params_problem(cls)
    if problem:
        return problem
    tuning = getattr(cls, "tuning", {})
    if not isinstance(tuning, dict):
        return f"tuning is {shown(tuning)}, not a mapping of parameter names to value lists"
    for key, values in tuning.items():
        if key not in params:
            hint = did_you_mean(str(key), params)
            return f"tuning[{key!r}]: no such parameter{hint}"
        if not isinstance(values, list) or not values:
            return f"tuning[{key!r}]: a non-empty list of values to try, got {shown(values)}"
        if params[key].plugin is None:
            for value in values:
                try:
                    replace(params[key], check=None).validate(value)
                except ParamError as exc:
                    return f"tuning[{key!r}]: {shown(value)} {exc}"
    return None


def fixed_step_problem(cls: type) -> str | None:
    """Why a solver that is not adaptive breaks the contract that it takes its step as
    ``step_size``, or None (a user audit: 100 Euler steps an interval with no parameter
    ran under node beside rk4 at node's step, nothing said). ``check_plugin``'s rule,
    not a registration's: a solver whose step is ``dt`` still runs where the suite sets
    its step itself (validation refuses it where a holder would set one)."""
    if not (isinstance(cls, type) and issubclass(cls, Solver)) or cls.adaptive:
        return None
    if "step_size" in getattr(cls, "params", {}):
        return None
    return (
        "a fixed-step solver (adaptive False) takes its step as a step_size parameter: a "
        "plugin holding it (node steps it time/depth, nodeo at its step_size) sets it "
        "there, and one it cannot set would run at its own step beside others at the "
        "holder's (an adaptive solver sets adaptive = True)"
    )


def data_params_problem(cls: type) -> str | None:
    """Why a task's ``data_params`` are not a tuple of parameter names (or None), or
    None: a string would be read letter by letter."""
    data = getattr(cls, "data_params", None)
    if data is None or (isinstance(data, tuple) and all(isinstance(n, str) for n in data)):
        return None
    return f"data_params is {shown(data)}, not a tuple of parameter names (or None)"
