"""Plugin loading: built-ins, .py paths, entry points, duplicates, typos, missing deps."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bench import Registry, Solver, get_plugin_manager, hookimpl
from bench.hookspecs import REGISTRATION_HOOKS
from bench.plugins import BUILTIN_PLUGINS, PluginLoadError

from .conftest import FIXTURE_PLUGINS


def _plugin_file(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


def test_builtins_are_registered_through_the_same_manager():
    pm = get_plugin_manager()
    for name in BUILTIN_PLUGINS:
        assert pm.get_plugin(name) is not None


def test_plugin_loaded_from_a_py_path_is_registered(registry):
    assert registry.names("task") == [
        "test.behave",
        "test.files",
        "test.leaky",
        "test.needs_missing",
        "test.picky",
        "test.uses_method",
    ]
    entry = registry.entries("solver")[0]
    assert entry.name == "test.constant"
    assert entry.provider.startswith("bench_local_harness_plugins_")


def test_relative_py_path_resolves_against_the_suite_folder(tmp_path):
    _plugin_file(
        tmp_path,
        "local.py",
        """
        from bench import Solver, hookimpl
        class S(Solver):
            '''A local solver.'''
            name = "local.s"
            order = 1
            def odeint(self, func, y0, t, **o):
                return y0
        @hookimpl
        def bench_solvers():
            return [S]
        """,
    )
    registry = Registry(get_plugin_manager(["./local.py"], base_dir=tmp_path, builtins=False))
    assert registry.names("solver") == ["local.s"]


def test_missing_plugin_file_names_it(tmp_path):
    with pytest.raises(PluginLoadError, match=r"plugin file 'nope\.py' does not exist"):
        get_plugin_manager(["nope.py"], base_dir=tmp_path, builtins=False)


def test_plugin_file_that_fails_to_import_names_it_and_the_error(tmp_path):
    path = _plugin_file(tmp_path, "broken.py", "import a_module_that_does_not_exist_anywhere\n")
    with pytest.raises(PluginLoadError) as info:
        get_plugin_manager([path], builtins=False)
    assert "broken.py' failed to import: ModuleNotFoundError" in str(info.value)


def test_unknown_plugin_module_names_it():
    with pytest.raises(PluginLoadError, match="plugin module 'no_such_lab.plugins' failed"):
        get_plugin_manager(["no_such_lab.plugins"], builtins=False)


def test_duplicate_names_name_both_providers(tmp_path):
    path = _plugin_file(
        tmp_path,
        "dup.py",
        """
        from bench import Solver, hookimpl
        class Again(Solver):
            '''Same name as the fixture's solver.'''
            name = "test.constant"
            order = 1
            def odeint(self, func, y0, t, **o):
                return y0
        @hookimpl
        def bench_solvers():
            return [Again]
        """,
    )
    pm = get_plugin_manager([FIXTURE_PLUGINS, path], builtins=False)
    with pytest.raises(Exception) as info:
        Registry(pm)
    msg = str(info.value)
    assert msg.startswith("duplicate solver name 'test.constant': provided by bench_local_harness")
    assert "(ConstantSolver) and by bench_local_dup_" in msg
    assert msg.endswith("(Again)")


def test_wrong_base_class_is_rejected(tmp_path):
    path = _plugin_file(
        tmp_path,
        "wrong.py",
        """
        from bench import hookimpl
        class NotASolver:
            name = "x"
        @hookimpl
        def bench_solvers():
            return [NotASolver]
        """,
    )
    with pytest.raises(Exception, match="it must be a subclass of bench.Solver"):
        Registry(get_plugin_manager([path], builtins=False))


def test_hook_name_typo_is_caught_by_check_pending(tmp_path):
    path = _plugin_file(
        tmp_path,
        "typo.py",
        """
        from bench import hookimpl
        @hookimpl
        def bench_solver():
            return []
        """,
    )
    # pluggy's check_pending finds it; the message names the hook and lists the real ones
    with pytest.raises(PluginLoadError, match="bench_solver.*dynbench's hooks: .*bench_solvers"):
        get_plugin_manager([path], builtins=False)


def test_entry_point_plugins_are_loaded(tmp_path, monkeypatch):
    pkg = tmp_path / "lab_plugins.py"
    pkg.write_text(
        textwrap.dedent(
            """
            from bench import Solver, hookimpl
            class LabSolver(Solver):
                '''From an installed package.'''
                name = "lab.solver"
                order = 2
                def odeint(self, func, y0, t, **o):
                    return y0
            @hookimpl
            def bench_solvers():
                return [LabSolver]
            """
        )
    )
    dist = tmp_path / "lab_plugins-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: lab-plugins\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[bench]\nlab = lab_plugins\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry(get_plugin_manager(builtins=False))
    assert registry.names("solver") == ["lab.solver"]
    assert registry.entries("solver")[0].provider == "lab"


def test_missing_optional_dependency_stays_listed_with_a_reason(registry):
    cls = registry.get("task", "test.needs_missing")
    assert cls.missing_requirement() == (
        "test.needs_missing needs the optional module "
        "'a_module_that_does_not_exist_anywhere', which is not installed"
    )


def test_unknown_name_suggests_close_matches(registry):
    with pytest.raises(KeyError) as info:
        registry.get("task", "test.behav")
    assert str(info.value) == (
        "unknown task 'test.behav'; did you mean 'test.behave', 'test.leaky', 'test.files'? "
        "(available: test.behave, test.files, test.leaky, test.needs_missing, test.picky, "
        "test.uses_method)"
    )


@pytest.mark.parametrize("hook_name, kind", sorted(REGISTRATION_HOOKS.items()))
def test_every_registration_hook_registers_its_kind(tmp_path, hook_name, kind):
    """Meta-test: each hookspec is documented and a class returned from it is registered."""
    from bench import hookspecs
    from bench.base import BASES

    spec = getattr(hookspecs, hook_name)
    assert spec.__doc__ and "Called once per registry" in spec.__doc__
    base = BASES[kind].__name__
    path = _plugin_file(
        tmp_path,
        f"one_{kind}.py",
        f"""
        from bench import {base}, hookimpl
        class One({base}):
            '''One {kind}.'''
            name = "one.{kind}"
            op = "noop"
            def odeint(self, *a, **k): pass
            def build(self, *a, **k): pass
            def run(self, ctx): pass
            def __call__(self, *a, **k): pass
        @hookimpl
        def {hook_name}():
            return [One]
        """,
    )
    registry = Registry(get_plugin_manager([path], builtins=False))
    assert registry.names(kind) == [f"one.{kind}"]


def test_every_hookspec_is_a_registration_hook():
    """Guards this test module: a new hook must be added to REGISTRATION_HOOKS and tested."""
    from bench import hookspecs

    specs = {n for n in dir(hookspecs) if n.startswith("bench_")}
    assert specs == set(REGISTRATION_HOOKS)


def test_solver_base_requires_odeint():
    class Incomplete(Solver):
        name = "incomplete"

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()


def test_hookimpl_is_the_bench_marker():
    assert hookimpl.project_name == "bench"
