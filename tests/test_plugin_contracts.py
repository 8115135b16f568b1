"""No built-in task reads what its slot's base class does not declare: no ``getattr`` on
a component for an undeclared capability, no test of a plugin's name (issue 18).

The tasks read components through the slot's base class (``WarpBackend``,
``RegistrationMethod``, ``FieldEncoding``, ...), whose documented attributes are the
contract; a plugin author can then rely on the base's docstring alone."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bench import Registry, get_plugin_manager

TASKS = Path(__file__).resolve().parent.parent / "plugins" / "tasks"
# getattr on a torch module (not a plugin): a multi-output field's ``outputs`` and its
# bands' ``cutoffs``, which FieldEncoding's docstring names as the module's optional ones
MODULE_GETATTR = {("model", "outputs"), ("model", "cutoffs")}


def _sources() -> list[Path]:
    return sorted(TASKS.rglob("*.py"))


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(TASKS)))
def test_tasks_read_no_undeclared_plugin_attribute(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("getattr", "hasattr"):
            target = ast.unparse(node.args[0])
            attr = node.args[1].value if isinstance(node.args[1], ast.Constant) else "?"
            assert (target, attr) in MODULE_GETATTR, (
                f"{path.name}:{node.lineno}: {node.func.id}({target}, {attr!r}): declare the "
                "capability on the slot's base class and read it as an attribute"
            )
        if isinstance(node, ast.Compare) and isinstance(node.left, ast.Attribute):
            named = node.left.attr == "name" and any(
                isinstance(c, ast.Constant)
                and isinstance(c.value, str)
                or isinstance(c, (ast.Tuple, ast.List, ast.Set))
                for c in node.comparators
            )
            assert not named, f"{path.name}:{node.lineno}: a task tests a plugin's name"


def test_every_slot_of_every_builtin_task_names_a_base_that_declares_what_it_reads():
    registry = Registry(get_plugin_manager())
    for entry in registry.entries("task"):
        for slot, spec in entry.cls.slots().items():
            fits = registry.fitting(spec.base)
            assert fits, f"{entry.name}: slot {slot!r} ({spec.base.__name__}) fits no plugin"
            assert spec.base.__doc__, f"{spec.base.__name__} documents its contract"
            if spec.default is not None:
                assert spec.default in fits, (entry.name, slot, spec.default)
