"""``bench new KIND NAME``: a plugin file and a suite that runs it beside built-ins.

Templates come from plugins, through the ``bench_templates`` hook, so that this module
knows no family: each holds a plugin file and a suite with ``$name`` (the plugin's
name), ``$cls`` (its class name) and ``$module`` (the files' stem) to fill in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from string import Template as _Text

import pluggy

_NAME_RE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")  # fullmatch: "$" takes a "\n"


class ScaffoldError(Exception):
    """A ``bench new`` that cannot be made (unknown kind, bad name, a file in the way)."""


@dataclass(frozen=True)
class Template:
    """A starting point for a plugin of ``kind``: its ``plugin`` file and a ``suite``."""

    kind: str
    doc: str
    plugin: str
    suite: str


def templates(pm: pluggy.PluginManager) -> dict[str, Template]:
    """Every template the registered plugins offer, by kind (the first one wins)."""
    found: dict[str, Template] = {}
    for batch in reversed(pm.hook.bench_templates()):
        for template in batch or []:
            found.setdefault(template.kind, template)
    return found


def write(template: Template, name: str, out_dir: Path) -> tuple[Path, Path]:
    """Write ``<stem>.py`` and ``<stem>.yaml`` into ``out_dir``; never overwrite."""
    if not _NAME_RE.fullmatch(name):
        raise ScaffoldError(
            f"plugin name {name!r}: lower-case letters, digits and '_', in dotted parts "
            "each starting with a letter (e.g. my_lab.ralston)"
        )
    stem = name.rsplit(".", 1)[-1]
    cls = "".join(part.capitalize() for part in stem.split("_")) or "Plugin"
    values = {"name": name, "cls": cls, "module": stem}
    plugin, suite = out_dir / f"{stem}.py", out_dir / f"{stem}.yaml"
    for path in (plugin, suite):
        if path.exists():
            raise ScaffoldError(f"{path} exists already; bench new never overwrites a file")
    out_dir.mkdir(parents=True, exist_ok=True)
    plugin.write_text(_Text(template.plugin).substitute(values))
    suite.write_text(_Text(template.suite).substitute(values))
    return plugin, suite
