"""Reading a suite file: strict YAML (no repeated keys), size and alias-expansion
limits, and the ``plugins:`` list that is needed before a registry exists. What the
document means is ``bench.sweep``'s to check."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from bench.params import shown
from bench.settings import SETTINGS

TOP_KEYS = {
    "suite": "name of the suite (results go to results/<suite>/<run-id>/)",
    "description": "free text",
    **{key: setting.doc for key, setting in SETTINGS.items()},
    "plugins": "modules or .py files to load plugins from",
    "max_cells": "most cells the suite may expand to (default 1,000,000; a typo guard)",
    "benchmarks": "list of benchmark entries",
}
BENCH_KEYS = {
    "task": "task plugin name",
    "name": "optional label for this entry",
    "params": "task and component parameters (lists sweep)",
    "matrix": "lists to sweep (cartesian product)",
    "tune": "a grid each configuration tries on validation seeds; the best runs on the seeds",
    **{key: f"overrides the suite's {key}" for key, s in SETTINGS.items() if s.per_entry},
}
SUITE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")  # a folder name (fullmatch)


class SuiteError(Exception):
    """A suite file with mistakes; ``errors`` lists ``path: message`` strings."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        lines = "\n".join(f"  {e}" for e in errors)
        noun = "mistake" if len(errors) == 1 else "mistakes"
        super().__init__(f"{source}: {len(errors)} {noun}:\n{lines}")


MAX_SUITE_BYTES = 4 * 2**20
#: at most this many values once YAML aliases are expanded (an alias bomb of a few
#: hundred bytes multiplies by ten per level: refused before anything walks it)
MAX_SUITE_NODES = 200_000


class _StrictLoader(yaml.SafeLoader):
    """safe_load, refusing a mapping that repeats a key (YAML would keep the last)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                continue  # the base class reports an unhashable key
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {shown(key)} appears twice in this mapping (first at line "
                    f"{seen[key].start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def _expanded_size(data: Any) -> int:
    """How many values ``data`` holds with every shared (aliased) part counted each
    time it appears: a DAG walk with memo, so a bomb is measured, not expanded."""
    memo: dict[int, int] = {}

    def size(value: Any, depth: int) -> int:
        if depth > 100:
            return MAX_SUITE_NODES + 1  # nesting past any suite's
        if not isinstance(value, (list, dict)):
            return 1
        key = id(value)
        if key not in memo:
            memo[key] = MAX_SUITE_NODES + 1  # a cycle (a recursive alias) is too big
            items = value.values() if isinstance(value, dict) else value
            total = 1
            for item in items:
                total += size(item, depth + 1)
                if total > MAX_SUITE_NODES:
                    break
            memo[key] = total
        return memo[key]

    return size(data, 0)


def read_suite_file(path: str | Path) -> tuple[str, dict[str, Any]]:
    """Read and parse YAML; raise ``SuiteError`` for unreadable or malformed files.

    Refused before anything walks the document: a file past ``MAX_SUITE_BYTES``, bytes
    that are not UTF-8, a key repeated in a mapping, and a document holding more than
    ``MAX_SUITE_NODES`` values once its aliases are expanded.
    """
    source = str(path)
    path = Path(path)
    try:
        if path.is_dir():
            raise SuiteError(source, ["is a folder, not a suite file"])
        size = path.stat().st_size
        if size > MAX_SUITE_BYTES:
            raise SuiteError(
                source, [f"{size} bytes: a suite file is at most {MAX_SUITE_BYTES} bytes of YAML"]
            )
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SuiteError(source, ["file not found"]) from None
    except OSError as exc:
        raise SuiteError(source, [f"cannot read: {exc.strerror or exc}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SuiteError(
            source,
            [f"not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start}): "
             "a suite file is YAML saved as UTF-8"],
        ) from None  # fmt: skip
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SuiteError(source, [f"{where}invalid YAML: {problem}"]) from None
    except RecursionError:
        raise SuiteError(source, ["nested too deeply to be a suite"]) from None
    if not isinstance(data, dict):
        raise SuiteError(source, ["the file must be a mapping with 'suite' and 'benchmarks'"])
    if _expanded_size(data) > MAX_SUITE_NODES:
        raise SuiteError(
            source,
            [f"holds more than {MAX_SUITE_NODES} values once its YAML aliases are expanded: "
             "not a suite (an alias bomb?)"],
        )  # fmt: skip
    return text, data


def plugin_specs(data: dict[str, Any], source: str) -> list[str]:
    """The suite's ``plugins:`` list, checked (it is needed before the registry exists)."""
    plugins = data.get("plugins", [])
    if plugins is None:
        return []
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise SuiteError(source, ["plugins: expected a list of module names or .py paths"])
    return plugins
