"""Plugins inside plugins: parameters that name another plugin, resolved and built.

A plugin declares ``"solver": Param("rk4", plugin=Solver)``; a suite names the nested
plugin (``architecture.solver: dopri5``) and sets its parameters with one more dot
(``architecture.solver.rtol: 1.0e-7``, swept like any other). ``resolve`` validates
such a tree against the suite's registry, where suite-local and entry-point plugins
are registered too, and returns it flat, nested defaults filled in under their dotted
names; ``build`` turns it into instances, each nested plugin handed to its holder in
``values``. Plugins never look a name up themselves.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Any

from bench.base import Plugin, SkipCell
from bench.params import ParamError, is_list_param, shown
from bench.registry import Registry, UnknownPluginError

#: report(key, message): ``key`` is the dotted parameter the message is about, or None
#: for a message about the plugin as a whole (a cross-parameter rule)
Report = Callable[[str | None, str], None]


def resolve(
    registry: Registry, cls: type[Plugin], given: dict[str, Any], report: Report
) -> dict[str, Any] | None:
    """``cls``'s parameters from ``given`` (flat; ``solver.rtol`` for a nested plugin's),
    validated, defaults filled in, each nested plugin's resolved the same way under its
    dotted prefix. Every mistake goes to ``report``; None when there was one."""
    own: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    ok = True
    for key, value in given.items():
        head, dot, rest = key.partition(".")
        param = cls.params.get(head)
        if param is None:
            known = ", ".join(sorted(cls.params)) or "none"
            close = difflib.get_close_matches(str(head), list(cls.params), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            report(key, f"{cls.name} has no parameter {shown(head)}{hint} (parameters: {known})")
            ok = False
        elif dot and param.plugin is None:
            report(key, f"{cls.name}.{head} names no plugin, so it has no parameter {shown(rest)}")
            ok = False
        elif dot:
            nested.setdefault(head, {})[rest] = value
        elif isinstance(value, list) and not is_list_param(param):
            report(key, f"expected a single value, got {shown(value)}")
            ok = False
        else:
            try:
                param.validate(value)
            except ParamError as exc:
                report(key, f"{cls.name}.{key}: {exc}")
                ok = False
            own[key] = value
    if not ok:
        return None
    try:
        resolved = cls.resolve_params(own)
    except ParamError as exc:
        report(None, f"{cls.name}: {exc}")
        return None
    except Exception as exc:  # a plugin's own hook failing: named, not a traceback
        report(None, f"{cls.name}.resolve_params raised {type(exc).__name__}: {exc}")
        return None
    for head, param in cls.plugin_params().items():
        if resolved[head] is None:  # an optional nested plugin (nullable) left out
            for rest in nested.get(head, {}):
                report(f"{head}.{rest}", f"{cls.name}.{head} is null (none), so it has no "
                       f"parameter {shown(rest)}: name the plugin too")  # fmt: skip
            if nested.get(head):
                return None
            continue
        try:
            inner = registry.lookup(param.plugin, resolved[head], f" ({cls.name}.{head})")
        except UnknownPluginError as exc:
            report(head if head in own else None, f"{cls.name}.{head}: {exc}")
            return None
        mine = nested.get(head, {})
        where = head if head in own else None
        if not _reaches(cls, (head, where), inner, resolved, mine, report):
            return None
        sub = resolve(registry, inner, mine, _prefixed(report, head))
        if sub is None:
            return None
        resolved.update((f"{head}.{k}", v) for k, v in sub.items())
    return resolved


def _reaches(
    cls: type[Plugin],
    held: tuple[str, str | None],
    inner: type[Plugin],
    resolved: dict[str, Any],
    given: dict[str, Any],
    report: Report,
) -> bool:
    """Whether what ``cls`` passes its nested plugin at run time (``nested_settings``)
    reaches it: a key the nested plugin does not have, where the suite sets none of its
    parameters, would leave it at its own setting beside others at the holder's (a
    fixed-step solver whose step is ``dt`` under node); reported, naming both. A nested
    plugin without parameters (nothing to set), or one the suite sets itself, passes.
    ``held``: the slot's name, and the key a message is about (None: the plugin)."""
    head, where = held
    try:
        passes = cls.nested_settings(head, inner, resolved)
        if not isinstance(passes, dict):
            raise TypeError(f"returned {type(passes).__name__}, not a dict")
    except Exception as exc:  # a plugin's own hook failing: named, not a traceback
        report(None, f"{cls.name}.nested_settings raised {type(exc).__name__}: {exc}")
        return False
    missing = sorted(k for k in passes if k not in inner.params)
    if not missing or given or not inner.params:
        return True
    key = missing[0]
    known = ", ".join(sorted(inner.params))
    report(where,
           f"{cls.name} passes {head}.{key} ({shown(passes[key])}), which {inner.name} "
           f"does not have (parameters: {known}): it would run at its own setting, not "
           f"{cls.name}'s; set {cls.name}'s {head}'s own (e.g. {head}.{sorted(inner.params)[0]})"
           " or give it that parameter")  # fmt: skip
    return False


def _prefixed(report: Report, head: str) -> Report:
    return lambda key, message: report(None if key is None else f"{head}.{key}", message)


def build(
    registry: Registry,
    cls: type[Plugin],
    resolved: dict[str, Any],
    given: set[str] | frozenset[str] | None = None,
) -> Plugin:
    """An instance of ``cls`` from what ``resolve`` returned: each nested plugin built
    first and handed over as an instance. ``given``: the keys the suite set (the
    instances' ``given``); None means all of them. A nested plugin whose optional
    dependency is missing ends the cell as skipped, with the reason."""
    own = {k: v for k, v in resolved.items() if "." not in k}
    for head, param in cls.plugin_params().items():
        if isinstance(own.get(head), Plugin) or own.get(head) is None:  # built, or left out
            continue
        inner = registry.lookup(param.plugin, own[head], f" ({cls.name}.{head})")
        reason = inner.missing_requirement()
        if reason:
            raise SkipCell(reason)
        cut = len(head) + 1
        sub = {k[cut:]: v for k, v in resolved.items() if k.startswith(head + ".")}
        sub_given = None if given is None else {k[cut:] for k in given if k.startswith(head + ".")}
        own[head] = build(registry, inner, sub, sub_given)
    plugin = cls(**own)
    if given is not None:
        plugin.given = frozenset(k for k in given if "." not in k)
    return plugin


def nested(plugin: Plugin) -> Iterator[Plugin]:
    """Every plugin ``plugin`` holds, depth first (not ``plugin`` itself)."""
    for key in type(plugin).plugin_params():
        inner = plugin.values.get(key)
        if isinstance(inner, Plugin):
            yield inner
            yield from nested(inner)


def passed_down(plugin: Plugin, prefix: str) -> Iterator[tuple[str, Any]]:
    """What ``plugin`` (under ``prefix``, a slot) and the plugins it holds pass the plugins
    they hold at run time (``nested_options``: node's time/depth as its solver's
    step_size), as ``(prefix.head.key, value)``: the values those plugins ran at where
    their own parameter columns keep their defaults (a user audit read a solver's
    recorded step_size 0.05 where it ran at 0.25)."""
    for head in type(plugin).plugin_params():
        inner = plugin.values.get(head)
        if not isinstance(inner, Plugin):
            continue
        for key, value in plugin.nested_options(head).items():
            yield f"{prefix}.{head}.{key}", value
        yield from passed_down(inner, f"{prefix}.{head}")


def plugin_classes(
    registry: Registry, cls: type[Plugin], resolved: dict[str, Any], prefix: str
) -> dict[str, type[Plugin]]:
    """``cls`` under ``prefix`` and every plugin it holds under its dotted key
    (``method``, ``method.solver``), holders before what they hold, from ``resolve``'s
    flat values."""
    found: dict[str, type[Plugin]] = {prefix: cls}
    for head, param in cls.plugin_params().items():
        if resolved.get(head) is None:  # an optional nested plugin left out
            continue
        inner = registry.lookup(param.plugin, resolved[head], f" ({cls.name}.{head})")
        cut = len(head) + 1
        sub = {k[cut:]: v for k, v in resolved.items() if k.startswith(head + ".")}
        found.update(plugin_classes(registry, inner, sub, f"{prefix}.{head}"))
    return found
