"""Plugin loading: built-ins, .py paths, entry points, duplicates, typos, missing deps."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

from bench import Registry, Solver, get_plugin_manager, hookimpl
from bench.base import BASES
from bench.plugins import PluginLoadError

from .conftest import FIXTURE_PLUGINS

pytestmark = pytest.mark.usefixtures("frozen_heap")


def _plugin_file(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


def test_builtins_are_registered_through_the_distributions_own_entry_points():
    from importlib.metadata import entry_points

    ours = [e for e in entry_points(group="bench") if e.dist.metadata["Name"] == "dynbench"]
    modules = {e.value for e in ours}
    assert {"plugins.solvers", "plugins.backends", "plugins.tasks.registration"} <= modules
    assert len(modules) == 13  # 12 of plugins, and bench new's templates
    with_builtins, without = get_plugin_manager(), get_plugin_manager(builtins=False)
    for module in modules:
        assert with_builtins.get_plugin(module) is not None, module
        assert without.get_plugin(module) is None, module


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
        def bench_plugins():
            return [S]
        """,
    )
    registry = Registry(get_plugin_manager(["./local.py"], base_dir=tmp_path, builtins=False))
    assert registry.names("solver") == ["local.s"]


def test_a_plugin_file_imports_its_sibling_modules(tmp_path, monkeypatch):
    """A plugin file importing a module beside it (from helper import K) failed under
    the `bench` script ("No module named 'helper'") and worked under `python -m bench`
    from that folder; its folder is on the import path, as a script's is."""
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "lab_helper_mod.py").write_text("ORDER = 2\n")
    source = (
        "from lab_helper_mod import ORDER\n"
        "from bench import Solver, hookimpl\n"
        "class S(Solver):\n"
        '    """A solver whose order a sibling module holds."""\n'
        '    name = "local.sibling"\n'
        "    order = ORDER\n"
        "    def odeint(self, func, y0, t, **o):\n"
        "        return y0\n"
        "@hookimpl\n"
        "def bench_plugins():\n"
        "    return [S]\n"
    )
    _plugin_file(tmp_path / "lab", "uses_helper.py", source)
    monkeypatch.chdir(tmp_path)  # elsewhere than the plugin's folder
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    pm = get_plugin_manager(["./lab/uses_helper.py"], base_dir=tmp_path, builtins=False)
    assert Registry(pm).get("solver", "local.sibling").order == 2


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
        def bench_plugins():
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


BAD_DECLARATIONS = [
    ("params = {'width': 32}", "params['width'] is 32, not a bench.Param"),
    ("params = {'h': Param(0.1, low=1.0)}", "params['h']: its default 0.1 must be >= 1.0"),
    ("params = {'h': Param(0.1)}; tuning = {'hh': [0.1]}",
     "tuning['hh']: no such parameter; did you mean 'h'?"),
    ("params = {'h': Param(0.1, low=0.0)}; tuning = {'h': [-1.0]}",
     "tuning['h']: -1.0 must be >= 0.0"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "message"), BAD_DECLARATIONS)
def test_a_plugin_declared_wrongly_is_refused_when_registered(tmp_path, body, message):
    """A user audit: params = {"width": 32} crashed `bench list` with a traceback; a
    default outside its bounds and a tuning typo were accepted. Each is one message
    naming the file and the plugin, when the plugin is registered."""
    source = (
        "from bench import Param, Solver, hookimpl\n"
        "class Declared(Solver):\n"
        '    """Declared wrongly."""\n'
        '    name = "my_lab.declared"\n'
        "    order = 1\n"
        f"    {body}\n"
        "    def odeint(self, func, y0, t, **o):\n"
        "        return y0\n"
        "@hookimpl\n"
        "def bench_plugins():\n"
        "    return [Declared]\n"
    )
    path = _plugin_file(tmp_path, "declared.py", source)
    with pytest.raises(Exception) as info:
        Registry(get_plugin_manager([path], builtins=False))
    text = str(info.value)
    assert text.startswith(f"{os.path.relpath(path)}: solver 'my_lab.declared': "), text
    assert message in text


def test_a_family_plugin_missing_its_method_is_refused_by_name(tmp_path):
    """An encoding without build() passed check_plugin and suite validation and ended
    its cell in a bare NotImplementedError: the family base had a concrete one."""
    source = (
        "from bench import hookimpl\n"
        "from plugins.encodings.base import FieldEncoding\n"
        "class NoBuild(FieldEncoding):\n"
        '    """No build."""\n'
        '    name = "my_lab.nobuild"\n'
        "@hookimpl\n"
        "def bench_plugins():\n"
        "    return [NoBuild]\n"
    )
    path = _plugin_file(tmp_path, "nobuild.py", source)
    with pytest.raises(Exception, match=r"encoding 'my_lab.nobuild': does not implement build "
                       r"\(what a FieldEncoding must\)"):  # fmt: skip
        Registry(get_plugin_manager([path]))


def test_wrong_base_class_is_rejected(tmp_path):
    path = _plugin_file(
        tmp_path,
        "wrong.py",
        """
        from bench import hookimpl
        class NotASolver:
            name = "x"
        @hookimpl
        def bench_plugins():
            return [NotASolver]
        """,
    )
    with pytest.raises(Exception, match="it must subclass the base of a kind"):
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
    with pytest.raises(
        PluginLoadError, match="bench_solver.*dynbench's hooks: bench_kinds, bench_plugins"
    ):
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
            def bench_plugins():
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


@pytest.mark.parametrize("kind", sorted(BASES))
def test_the_registration_hook_reads_each_kind_from_the_class(tmp_path, kind):
    """Meta-test: the hookspec is documented and a class of every kind returned from it
    is registered under its kind."""
    from bench import hookspecs

    assert "Called once per registry" in (hookspecs.bench_plugins.__doc__ or "")
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
            def solve(self, *a, **k): pass
        @hookimpl
        def bench_plugins():
            return [One]
        """,
    )
    registry = Registry(get_plugin_manager([path], builtins=False))
    assert registry.names(kind) == [f"one.{kind}"]


def test_every_hookspec_is_tested_here():
    """Guards this test module: a new hook must be tested here."""
    from bench import hookspecs

    specs = {n for n in dir(hookspecs) if n.startswith("bench_")}
    assert specs == {"bench_plugins", "bench_kinds", "bench_templates"}


KIND_PLUGIN = """
import torch
from bench import Param, Plugin, Task, hookimpl


class Dataset(Plugin):
    '''A data set: a kind this package adds.'''

    kind = "dataset"

    def load(self, seed):
        raise NotImplementedError


class Ramp(Dataset):
    '''0, 1, ..., n - 1.'''

    name = "lab.ramp"
    params = {"n": Param(4, low=1)}

    def load(self, seed):
        return torch.arange(self.values["n"], dtype=torch.float64)


class Mean(Task):
    '''The mean of a data set.'''

    name = "lab.mean"
    components = {"data": Dataset}

    def run(self, ctx):
        ctx.metric("mean", ctx.components["data"].load(ctx.seed).mean())


@hookimpl
def bench_kinds():
    return [Dataset]


@hookimpl
def bench_plugins():
    return [Ramp, Mean]
"""


def test_a_plugin_package_can_add_a_kind(tmp_path, capsys):
    from bench.cli import main
    from bench.results import load_run

    path = _plugin_file(tmp_path, "lab_kind.py", KIND_PLUGIN)
    registry = Registry(get_plugin_manager([path], builtins=False))
    assert "dataset" in registry.kinds and registry.names("dataset") == ["lab.ramp"]
    suite = tmp_path / "kind.yaml"
    suite.write_text(
        "suite: kind\ndevice: cpu\nplugins: [./lab_kind.py]\nbenchmarks:\n"
        "  - task: lab.mean\n    matrix: {data: [lab.ramp], data.n: [3, 5]}\n"
    )
    assert main(["run", str(suite), "--output", str(tmp_path / "out"), "--quiet"]) == 0
    cells = load_run(tmp_path / "out" / "kind").cells.sort_values("param.data.n")
    assert cells["metric.mean"].tolist() == [1.0, 2.0]
    assert main(["list", "dataset", "--plugins", path]) == 0
    assert "lab.ramp" in capsys.readouterr().out
    assert main(["list", "datasets", "--plugins", path]) == 2
    assert "unknown plugin kind 'datasets'" in capsys.readouterr().err


def test_a_class_of_no_known_kind_is_refused(tmp_path):
    from bench.registry import RegistryError

    path = _plugin_file(
        tmp_path,
        "nokind.py",
        """
        from bench import Plugin, hookimpl
        class Thing(Plugin):
            '''Of a kind nobody declared.'''
            kind = "thing"
            name = "x.thing"
        @hookimpl
        def bench_plugins():
            return [Thing]
        """,
    )
    with pytest.raises(RegistryError, match=r"or bench_kinds\(\) must add its kind"):
        Registry(get_plugin_manager([path], builtins=False))


def test_solver_base_requires_odeint():
    class Incomplete(Solver):
        name = "incomplete"

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()


def test_hookimpl_is_the_bench_marker():
    assert hookimpl.project_name == "bench"


def test_a_summary_is_the_docstrings_first_paragraph_whole():
    """bench list cut lipschitz's description mid-sentence ('..., or a')."""
    from bench import Solver

    class Wrapped(Solver):
        """A first sentence that wraps
        onto a second line.

        Details."""

        name = "t.wrapped"

    assert Wrapped.summary() == "A first sentence that wraps onto a second line."
    Wrapped.__doc__ = "First line.\n    \n    Details."  # a blank line holding spaces
    assert Wrapped.summary() == "First line."


def test_a_tasks_data_params_of_the_wrong_shape_are_refused_when_registered(tmp_path):
    """data_params = "image" (a string) was iterated letter by letter at `bench run`."""
    source = (
        "from bench import Headline, Param, Task, hookimpl\n"
        "class T(Task):\n"
        '    """A task with its data parameters spelt as a string."""\n'
        '    name = "my_lab.t"\n'
        '    headline = Headline(quality={"e": "lower"}, problem=("image",))\n'
        '    params = {"image": Param("a")}\n'
        '    data_params = "image"\n'
        "    def run(self, ctx):\n"
        '        ctx.metric("e", 0.0)\n'
        "@hookimpl\n"
        "def bench_plugins():\n"
        "    return [T]\n"
    )
    path = _plugin_file(tmp_path, "t.py", source)
    with pytest.raises(Exception, match="task 'my_lab.t': data_params is 'image', not a tuple"):
        Registry(get_plugin_manager([path], builtins=False))


def test_a_plugin_of_another_kind_in_a_slot_is_named_as_what_it_is(tmp_path):
    """matrix: {solver: [my_lab.midnet]} said "unknown solver 'my_lab.midnet'; did you
    mean ...", where midnet is an architecture (a user audit)."""
    import yaml

    from bench.suite import SuiteError, load_suite
    from bench.testing import default_registry

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"suite": "s", "benchmarks": [
        {"task": "ode.harmonic", "matrix": {"solver": ["resnet"]}},
        {"task": "classify.toy", "matrix": {"architecture": ["rk4"]}}]}))  # fmt: skip
    with pytest.raises(SuiteError) as err:
        load_suite(path, default_registry())
    text = str(err.value)
    assert "benchmarks[0].matrix.solver: 'resnet' is an architecture, not a solver" in text
    assert "benchmarks[1].matrix.architecture: 'rk4' is a solver, not an architecture" in text
    assert "unknown" not in text


def test_bench_new_refuses_a_name_already_registered(tmp_path, monkeypatch, capsys):
    """bench new solver rk4 wrote a plugin clashing with the built-in rk4 and a suite
    that could not run (a user audit)."""
    from bench.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["new", "solver", "rk4"]) == 2
    assert "a solver named 'rk4' is registered already" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
    # a user's own name taken by their own plugin: the offer is another name (a review)
    assert main(["new", "solver", "my_lab.ralston"]) == 0
    capsys.readouterr()
    plugin = str(tmp_path / "ralston.py")
    assert main(["new", "solver", "my_lab.ralston", "--plugins", plugin, "-o", "x"]) == 2
    err = capsys.readouterr().err
    assert "registered already" in err and "e.g. my_lab.ralston_2" in err


def test_every_suite_plugin_that_cannot_load_is_named_at_once(tmp_path):
    """plugins: [./broken.py, ./missing.py] named the first only; the second came to
    light on the next try (a user audit)."""
    from bench.plugins import PluginLoadError, get_plugin_manager

    (tmp_path / "broken.py").write_text("raise RuntimeError('my import is broken')\n")
    with pytest.raises(PluginLoadError) as err:
        get_plugin_manager(["./broken.py", "./missing.py"], base_dir=tmp_path, builtins=False)
    text = str(err.value)
    assert text.startswith("2 plugins cannot load: ")
    assert "'./broken.py' failed to import: RuntimeError: my import is broken" in text
    assert "'./missing.py' does not exist" in text
    with pytest.raises(PluginLoadError) as err:  # one file named twice is one failure
        get_plugin_manager(["./broken.py", "./broken.py"], base_dir=tmp_path, builtins=False)
    assert not str(err.value).startswith("2 plugins")


def test_add_note_works_before_python_3_11_and_after():
    """A note a task adds on a failure's way out (bench.add_note) reaches __notes__
    however the interpreter keeps them (BaseException.add_note is 3.11's; the package
    runs on 3.10)."""
    from bench import add_note

    exc = ValueError("x")
    add_note(exc, "first")
    add_note(exc, "second")
    assert exc.__notes__ == ["first", "second"]
