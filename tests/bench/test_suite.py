"""Suite files: every kind of mistake is reported with its path, before anything runs."""

from __future__ import annotations

import pytest

from bench.cli import main
from bench.suite import SuiteError, expand, load_suite

HEADER = """
suite: s
plugins: [FIXTURE_PLUGINS]
"""


def errors_of(write_suite, registry, body: str) -> list[str]:
    path = write_suite(HEADER + body)
    with pytest.raises(SuiteError) as info:
        load_suite(path, registry)
    return info.value.errors


def test_cartesian_product_of_matrix_and_param_lists(write_suite, registry):
    path = write_suite(
        HEADER
        + """
seeds: 2
benchmarks:
  - task: test.behave
    params: {seconds: [0.0, 0.1], solver.step_size: 0.5}
    matrix:
      solver: [test.constant]
      value: [1, 2, 3]
"""
    )
    suite = load_suite(path, registry)
    assert len(suite.cells) == 2 * 3 * 2
    first = suite.cells[0]
    assert first.components == {"solver": "test.constant"}
    assert first.component_params == {"solver": {"step_size": 0.5}}
    assert first.task_params == {"mode": "ok", "seconds": 0.0, "value": 1.0, "marker": ""}
    assert [c.seed for c in suite.cells[:2]] == [0, 1]
    assert len({c.id for c in suite.cells}) == 12


def test_cell_ids_are_stable_and_ignore_defaults(write_suite, registry):
    body = """
benchmarks:
  - task: test.behave
    matrix: {solver: [test.constant]}
"""
    a = load_suite(write_suite(HEADER + body, "a.yaml"), registry).cells[0]
    b = load_suite(write_suite(HEADER + body, "b.yaml"), registry).cells[0]
    assert a.id == b.id
    explicit = body.replace("matrix:", "params: {mode: ok}\n    matrix:")
    c = load_suite(write_suite(HEADER + explicit, "c.yaml"), registry).cells[0]
    assert c.id != a.id  # what the suite asked for differs, even if the values agree


def test_settings_inherit_and_override(write_suite, registry):
    path = write_suite(
        HEADER
        + """
repeats: 7
timeout: 3
device: cpu
benchmarks:
  - task: test.behave
    matrix: {solver: [test.constant]}
    repeats: 2
"""
    )
    cell = load_suite(path, registry).cells[0]
    assert (cell.repeats, cell.timeout, cell.device, cell.warmup) == (2, 3.0, "cpu", 1)


@pytest.mark.parametrize(
    "body, expected",
    [
        (
            "benchmark: []\n",
            [
                "benchmark: unknown key; did you mean 'benchmarks'? (allowed: suite, description,"
                " device, seeds, repeats, warmup, timeout, threads, files_limit_mb, fresh_worker,"
                " plugins, max_cells, benchmarks)",
                "benchmarks: missing (a list of benchmark entries)",
            ],
        ),
        ("benchmarks: {}\n", ["benchmarks: expected a non-empty list"]),
        (
            "device: gpu\nbenchmarks: [{task: test.behave, matrix: {solver: [test.constant]}}]\n",
            ["device: 'gpu' is not one of auto, cpu, cuda, cuda:N"],
        ),
        (
            "seeds: [0, 0]\nbenchmarks: [{task: test.behave, matrix: {solver: [test.constant]}}]\n",
            ["seeds: [0, 0] repeats a seed"],
        ),
        (
            "repeats: 0\nbenchmarks: [{task: test.behave, matrix: {solver: [test.constant]}}]\n",
            ["repeats: expected an integer from 1 to 1000000, got 0"],
        ),
        (
            "timeout: soon\nbenchmarks: [{task: test.behave, matrix: {solver: [test.constant]}}]\n",
            [
                "timeout: expected a number of seconds > 0 and at most 2.592e+06 (30 days),"
                " got 'soon'"
            ],
        ),
        (
            "threads: 0\nbenchmarks: [{task: test.behave, matrix: {solver: [test.constant]}}]\n",
            ["threads: expected an integer from 1 to 1024, got 0"],
        ),
        (
            "benchmarks:\n  - task: test.behav\n",
            [
                "benchmarks[0].task: unknown task 'test.behav'; "
                "did you mean 'test.behave', 'test.leaky', 'test.files'? "
                "(available: test.behave, test.files, test.leaky, test.needs_missing, test.picky, "
                "test.uses_method)"
            ],
        ),
        (
            "benchmarks:\n  - task: test.behave\n    matrix: {solver: [test.constnt]}\n",
            [
                "benchmarks[0].matrix.solver: unknown solver 'test.constnt'; "
                "did you mean 'test.constant'? (available: test.constant)"
            ],
        ),
        (
            "benchmarks:\n  - task: test.behave\n",
            [
                "benchmarks[0]: test.behave needs a solver in slot 'solver' "
                "(add e.g. `matrix: {solver: [test.constant]}`)"
            ],
        ),
        (
            "benchmarks:\n  - task: test.behave\n    params: {secnds: 1}\n"
            "    matrix: {solver: [test.constant]}\n",
            [
                "benchmarks[0].params.secnds: test.behave has no parameter 'secnds'; "
                "did you mean 'seconds'? (parameters: marker, mode, seconds, value)"
            ],
        ),
        (
            "benchmarks:\n  - task: test.behave\n    params: {seconds: fast}\n"
            "    matrix: {solver: [test.constant]}\n",
            ["benchmarks[0].params.seconds: expected a number, got 'fast'"],
        ),
        (
            "benchmarks:\n  - task: test.behave\n    params: {seconds: -1}\n"
            "    matrix: {solver: [test.constant]}\n",
            ["benchmarks[0].params.seconds: must be >= 0.0, got -1.0"],
        ),
        (
            "benchmarks:\n  - task: test.behave\n    matrix: {solver: test.constant}\n",
            ["benchmarks[0].matrix.solver: matrix values must be lists, got 'test.constant'"],
        ),
        (
            "benchmarks:\n  - task: test.behave\n"
            "    matrix: {solver: [test.constant], solver.step_size: [0]}\n",
            [
                "benchmarks[0].matrix.solver.step_size: test.constant.step_size: "
                "must be > 0.0, got 0.0"
            ],
        ),
        (
            "benchmarks:\n  - task: test.behave\n"
            "    matrix: {solver: [test.constant], solver.rtol: [0.1]}\n",
            [
                "benchmarks[0].matrix.solver.rtol: test.constant has no parameter 'rtol' "
                "(parameters: step_size)"
            ],
        ),
        (
            "benchmarks:\n  - task: test.behave\n"
            "    matrix: {solver: [test.constant], solvr.rtol: [0.1]}\n",
            [
                "benchmarks[0].matrix.solvr.rtol: test.behave has no component slot 'solvr' "
                "(slots: solver)"
            ],
        ),
        (
            "benchmarks:\n  - task: test.behave\n    mtrix: {}\n    matrix: {solver: []}\n",
            [
                "benchmarks[0].mtrix: unknown key; did you mean 'matrix'? (allowed: task, name,"
                " params, matrix, tune, device, seeds, repeats, warmup, timeout, threads,"
                " files_limit_mb, fresh_worker)",
                "benchmarks[0].matrix.solver: an empty list sweeps over nothing",
            ],
        ),
        (
            "benchmarks:\n  - task: test.behave\n    matrix: {solver: [test.constant]}\n"
            "  - task: test.behave\n    matrix: {solver: [test.constant]}\n",
            ["benchmarks[1]: cell 'test.behave solver=test.constant seed=0' repeats benchmarks[0]"],
        ),
        (
            "benchmarks:\n  - task: test.picky\n    matrix: {solver: [test.constant]}\n",
            [
                "benchmarks[0].matrix.solver: test.picky cannot use 'test.constant': "
                "test.constant has order 1; test.picky needs 2 or more"
            ],
        ),
        (
            "benchmarks:\n  - task: test.picky\n    params: {shape: [2, 0]}\n"
            "    matrix: {solver: [test.constant]}\n",
            [
                "benchmarks[0].params.shape: expected a non-empty list of positive integers, "
                "got [2, 0]",
                "benchmarks[0].matrix.solver: test.picky cannot use 'test.constant': "
                "test.constant has order 1; test.picky needs 2 or more",
            ],
        ),
        (
            "benchmarks:\n  - just a string\n",
            ["benchmarks[0]: expected a mapping with a 'task', got 'just a string'"],
        ),
    ],
)
def test_each_mistake_is_reported_with_its_path(write_suite, registry, body, expected):
    assert errors_of(write_suite, registry, body) == expected


def test_all_mistakes_are_reported_at_once(write_suite, registry):
    errors = errors_of(
        write_suite,
        registry,
        """
repeats: -1
benchmarks:
  - task: test.behave
    params: {seconds: x}
    matrix: {solver: [test.constant]}
  - task: nope
""",
    )
    assert len(errors) == 3
    assert errors[0].startswith("repeats:")
    assert errors[1].startswith("benchmarks[0].params.seconds:")
    assert errors[2].startswith("benchmarks[1].task: unknown task 'nope'")


def test_a_mistake_found_while_expanding_is_reported_beside_the_others(write_suite, registry):
    """A component's parameter is checked when the cells are made; one entry's mistake
    found earlier (a task parameter) must not hide another entry's found then."""
    errors = errors_of(
        write_suite,
        registry,
        """
benchmarks:
  - task: test.behave
    params: {seconds: x}
    matrix: {solver: [test.constant]}
  - task: test.behave
    params: {solver.step_size: -1.0}
    matrix: {solver: [test.constant]}
""",
    )
    assert len(errors) == 2
    assert errors[0].startswith("benchmarks[0].params.seconds:")
    assert errors[1].startswith("benchmarks[1].params.solver.step_size:")


TUNED = "benchmarks:\n  - task: test.behave\n    matrix: {solver: [test.constant]}\n"


@pytest.mark.parametrize(
    "body, expected",
    [
        (
            TUNED + "    params: {valu: 2}\n",
            "benchmarks[0].params.valu: test.behave has no parameter 'valu'; did you mean "
            "'value'? (parameters: marker, mode, seconds, value)",
        ),
        (
            TUNED.replace("[test.constant]}", "[test.constant], valu: [2]}"),
            "benchmarks[0].matrix.valu: test.behave has no parameter 'valu'; did you mean "
            "'value'? (parameters: marker, mode, seconds, value)",
        ),
        (
            TUNED + "    tune: {grid: {valu: [1, 2]}, validation_seeds: [9]}\n",
            "benchmarks[0].tune.grid.valu: test.behave has no parameter 'valu'; did you mean "
            "'value'? (parameters: marker, mode, seconds, value)",
        ),
        (
            TUNED + "    tune: {grid: {seconds: [0.0, -1]}, validation_seeds: [9]}\n",
            "benchmarks[0].tune.grid.seconds: must be >= 0.0, got -1.0",
        ),
    ],
    ids=["params", "matrix", "grid-name", "grid-value"],
)
def test_a_task_parameter_names_the_axis_that_sets_it(write_suite, registry, body, expected):
    """A task parameter misspelt in a tune grid was reported with the entry's label and
    values (`benchmarks[0] (solver=..., valu=1): test.behave: ...`), while a component's
    parameter beside it named `benchmarks[0].tune.grid.solver.x`; each axis (params,
    matrix, tune grid) names its own path."""
    assert errors_of(write_suite, registry, body) == [expected]


def test_a_grid_key_the_entry_also_sets_is_reported_once(write_suite, registry, tmp_path):
    """The clash was reported by each configuration of the entry: twice for two."""
    body = TUNED.replace("[test.constant]}", "[test.constant], value: [1, 2]}")
    explicit = body + "    tune: {grid: {value: [3, 4]}, validation_seeds: [9]}\n"
    assert errors_of(write_suite, registry, explicit) == [
        "benchmarks[0].tune: value set both in the grid and the entry"
    ]
    # a declared grid is known per configuration (its components'): still once
    (tmp_path / "tuned_solver.py").write_text(
        "from bench import Param, Solver, hookimpl\n"
        "class Tuned(Solver):\n"
        '    """Declares a grid."""\n'
        '    name = "test.tuned"\n'
        '    params = {"step_size": Param(0.1, low=0.0, low_open=True)}\n'
        '    tuning = {"step_size": [0.1, 0.2]}\n'
        "    def odeint(self, func, y0, t, **options):\n"
        "        return y0\n"
        "@hookimpl\n"
        "def bench_plugins():\n"
        "    return [Tuned]\n"
    )
    suite = write_suite(
        "suite: s\nplugins: [FIXTURE_PLUGINS, ./tuned_solver.py]\nbenchmarks:\n"
        "  - task: test.behave\n    params: {solver.step_size: 0.3}\n"
        "    matrix: {solver: [test.tuned], value: [1, 2]}\n"
        "    tune: {validation_seeds: [9]}\n",
        "declared.yaml",
    )
    with pytest.raises(SuiteError) as info:
        load_suite(suite)
    assert info.value.errors == [
        "benchmarks[0].tune: solver.step_size set both in the grid and the entry"
    ]


def test_a_wrong_tune_block_hides_none_of_the_entrys_other_mistakes(write_suite, registry):
    """A tune block with a mistake left its entry unexpanded: the mistakes found only as
    cells are made (a component's parameters, in the entry or in the grid) came a fix
    later, and the grid's own keys later still."""
    errors = errors_of(
        write_suite,
        registry,
        """
benchmarks:
  - task: test.behave
    params: {solver.step_size: -1.0}
    matrix: {solver: [test.constant]}
    tune: {grdi: declared, validation_seeds: [9]}
  - task: test.behave
    matrix: {solver: [test.constant], value: [1, 2]}
    tune: {grid: {valu: [1], solver.rtol: [0.1]}, validation_seeds: [0]}
  - task: test.behave
    matrix: {solver: [test.constant], mode: [ok]}
""",
    )
    assert errors == [
        "benchmarks[0].tune.grdi: unknown key; did you mean 'grid'? (allowed: grid, select, "
        "validation_seeds, max_settings, equal_size, validation_params)",
        "benchmarks[1].tune.validation_seeds: [0] are also test seeds; a choice made on the "
        "seeds it is reported on is not a held-out choice",
        "benchmarks[1].tune.grid.valu: test.behave has no parameter 'valu'; did you mean "
        "'value'? (parameters: marker, mode, seconds, value)",
        "benchmarks[0].params.solver.step_size: test.constant.step_size: must be > 0.0, got -1.0",
        "benchmarks[1].tune.grid.solver.rtol: test.constant has no parameter 'rtol' "
        "(parameters: step_size)",
    ]


def test_missing_suite_name(registry):
    with pytest.raises(SuiteError) as info:
        expand(
            {"benchmarks": [{"task": "test.behave", "matrix": {"solver": ["test.constant"]}}]},
            registry,
        )
    assert info.value.errors == ["suite: missing (the suite's name)"]


@pytest.mark.parametrize("name", ["quick\n", "quick\nstart", "../up", ""])
def test_a_suite_name_is_one_folder_name(registry, name):
    """``$`` matched before a trailing newline: "quick\\n" became a folder name."""
    entry = {"task": "test.behave", "matrix": {"solver": ["test.constant"]}}
    with pytest.raises(SuiteError) as info:
        expand({"suite": name, "benchmarks": [entry]}, registry)
    assert info.value.errors[0].startswith("suite:")


def test_yaml_syntax_error_gives_line_and_column(write_suite):
    path = write_suite("suite: s\nbenchmarks:\n  - task: [unclosed\n")
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert len(info.value.errors) == 1
    assert info.value.errors[0].startswith("line 4, column 1: invalid YAML:")


def test_file_that_is_not_a_mapping(write_suite):
    with pytest.raises(SuiteError) as info:
        load_suite(write_suite("- a\n- b\n"))
    assert info.value.errors == ["the file must be a mapping with 'suite' and 'benchmarks'"]


def test_cli_reports_suite_mistakes_with_exit_2_and_no_traceback(write_suite, capsys):
    path = write_suite("suite: s\nrepeats: 0\nbenchmarks:\n  - task: ode.nope\n")
    assert main(["run", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"{path}: 2 mistakes:" in err
    assert "repeats: expected an integer from 1 to 1000000, got 0" in err
    assert "benchmarks[0].task: unknown task 'ode.nope'" in err


def test_cli_reports_a_missing_file(tmp_path, capsys):
    assert main(["run", str(tmp_path / "none.yaml")]) == 2
    assert "none.yaml: 1 mistake:\n  file not found" in capsys.readouterr().err


def test_dry_run_prints_the_cells(write_suite, capsys):
    path = write_suite(
        HEADER + "benchmarks:\n  - task: test.behave\n    matrix: {solver: [test.constant], "
        "mode: [ok, nan]}\n"
    )
    assert main(["run", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("s: 2 cells\n")
    assert "test.behave solver=test.constant mode=ok seed=0" in out
    assert "test.behave solver=test.constant mode=nan seed=0" in out


def test_threads_is_part_of_a_cells_identity_only_when_set(write_suite, registry):
    body = (
        "suite: t\nplugins: [FIXTURE_PLUGINS]\nbenchmarks:\n"
        "  - task: test.behave\n    matrix: {solver: [test.constant]}\n    threads: THREADS\n"
    )
    one = load_suite(write_suite(body.replace("THREADS", "1"), name="a.yaml"), registry).cells
    two = load_suite(write_suite(body.replace("THREADS", "2"), name="b.yaml"), registry).cells
    unset = load_suite(
        write_suite(body.replace("    threads: THREADS\n", ""), name="c.yaml"), registry
    ).cells
    assert one[0].id != two[0].id
    assert unset[0].id not in (one[0].id, two[0].id)
    # two entries that differ only in threads are two measurements, not a repeat
    both = body.replace("    threads: THREADS\n", "    threads: 1\n") + (
        "  - task: test.behave\n    matrix: {solver: [test.constant]}\n    threads: 2\n"
    )
    assert len(load_suite(write_suite(both, name="d.yaml"), registry).cells) == 2


def test_a_plugins_own_cross_parameter_check_names_the_entry_and_values(tmp_path, registry):
    plugin = tmp_path / "cross.py"
    plugin.write_text(
        "from bench import Param, ParamError, Task, hookimpl\n"
        "class Cross(Task):\n"
        '    """Needs lo < hi."""\n'
        '    name = "test.cross"\n'
        '    params = {"lo": Param(0), "hi": Param(1)}\n'
        "    @classmethod\n"
        "    def resolve_params(cls, values):\n"
        "        v = super().resolve_params(values)\n"
        '        if v["lo"] >= v["hi"]:\n'
        "            raise ParamError(f\"lo ({v['lo']}) must be below hi ({v['hi']})\")\n"
        "        return v\n"
        "    def run(self, ctx):\n"
        "        pass\n"
        "@hookimpl\n"
        "def bench_plugins():\n"
        "    return [Cross]\n"
    )
    suite = tmp_path / "s.yaml"
    suite.write_text(
        "suite: s\nplugins: [./cross.py]\nbenchmarks:\n"
        "  - task: test.cross\n    matrix: {lo: [0, 5], hi: [3]}\n"
    )
    with pytest.raises(SuiteError) as err:
        load_suite(suite)
    assert err.value.errors == [
        "benchmarks[0] (lo=5, hi=3): test.cross: lo (5) must be below hi (3)"
    ]


def test_a_task_refuses_a_combination_of_components_and_params(tmp_path):
    plugin = tmp_path / "combo.py"
    plugin.write_text(
        "from bench import Method, Param, Task, hookimpl\n"
        "class Fast(Method):\n"
        '    """Knows only mse."""\n'
        '    name = "test.fast"\n'
        '    similarities = ("mse",)\n'
        '    params = {"levels": Param(1, low=1)}\n'
        "    def solve(self, problem, ctx):\n"
        "        return problem\n"
        "class Combo(Task):\n"
        '    """Takes a method and a similarity."""\n'
        '    name = "test.combo"\n'
        '    components = {"method": Method}\n'
        '    params = {"similarity": Param("mse", choices=("mse", "ncc")), "size": Param(4)}\n'
        "    @classmethod\n"
        "    def check_cell(cls, components, params):\n"
        '        method, sim = components["method"], params["similarity"]\n'
        "        if sim not in method.similarities:\n"
        '            return f"{method.name} cannot optimise {sim}"\n'
        '        if params["method.levels"] > params["size"]:\n'
        '            return "more levels than pixels"\n'
        "    def run(self, ctx):\n"
        "        pass\n"
        "@hookimpl\n"
        "def bench_plugins():\n"
        "    return [Fast, Combo]\n"
    )
    suite = tmp_path / "s.yaml"
    suite.write_text(
        "suite: s\nplugins: [./combo.py]\nbenchmarks:\n"
        "  - task: test.combo\n    matrix: {method: [test.fast], similarity: [mse, ncc]}\n"
        "  - task: test.combo\n    params: {method: test.fast, size: 2}\n"
        "    matrix: {method.levels: [1, 2, 3]}\n"
    )
    with pytest.raises(SuiteError) as err:
        load_suite(suite)
    # the components' parameters reach check_cell as "slot.name"
    assert err.value.errors == [
        "benchmarks[0] (method='test.fast', similarity='ncc'): test.combo: test.fast cannot "
        "optimise ncc",
        "benchmarks[1] (method='test.fast', size=2, method.levels=3): test.combo: more "
        "levels than pixels",
    ]


def test_ids_written_while_expanding_equal_the_cells_own(write_suite, registry):
    """expand writes each id from per-value JSON pieces (fast at a million cells);
    a cell rebuilt from its fields computes it from the whole json.dumps. Values with
    quotes, unicode, floats at the edges, 2^63 - 1 seeds and threads must agree."""
    path = write_suite(
        """
        suite: s
        plugins: [FIXTURE_PLUGINS]
        seeds: [0, 7, 9223372036854775807]
        benchmarks:
          - task: test.behave
            params: {solver.step_size: [0.1, 1.0e-300, 3]}
            matrix:
              solver: [test.constant]
              value: [-0.0, 1.5, 1.0e+300, 2]
              marker: ['', 'a "quoted" ü name', "back\\\\slash"]
          - task: test.behave
            threads: 2
            matrix: {solver: [test.constant], mode: [ok, raise]}
        """
    )
    cells = load_suite(path, registry).cells
    assert len(cells) == 3 * 4 * 3 * 3 + 2 * 3
    for cell in cells:
        assert cell.id == type(cell).from_dict(cell.to_dict()).id


def test_each_part_of_a_cell_is_resolved_once_per_distinct_value(
    write_suite, registry, monkeypatch
):
    """A product of sweeps resolves the task's parameters once per task value and a
    component's once per its own: 3 x 4 combinations, 3 + 4 resolutions."""
    calls = {"task": 0, "solver": 0}
    task_cls = registry.get("task", "test.behave")
    solver_cls = registry.get("solver", "test.constant")
    for name, cls in (("task", task_cls), ("solver", solver_cls)):
        original = cls.resolve_params.__func__

        def counted(klass, given, _original=original, _name=name):
            calls[_name] += 1
            return _original(klass, given)

        monkeypatch.setattr(cls, "resolve_params", classmethod(counted))
    path = write_suite(
        """
        suite: s
        plugins: [FIXTURE_PLUGINS]
        benchmarks:
          - task: test.behave
            params: {solver.step_size: [0.1, 0.2, 0.3, 0.4]}
            matrix: {solver: [test.constant], value: [1.0, 2.0, 3.0]}
        """
    )
    cells = load_suite(path, registry).cells
    assert len(cells) == 12
    assert calls == {"task": 3, "solver": 4}
    assert sorted({c.task_params["value"] for c in cells}) == [1.0, 2.0, 3.0]
    assert sorted({c.component_params["solver"]["step_size"] for c in cells}) == [
        0.1,
        0.2,
        0.3,
        0.4,
    ]


def test_the_readme_lists_every_harness_setting():
    """The settings table is generated from bench.settings.SETTINGS (the one place a
    setting is declared); docs/suites.md must hold it as generated."""
    from pathlib import Path

    from bench.settings import markdown_table

    readme = (Path(__file__).resolve().parents[2] / "docs" / "suites.md").read_text()
    assert markdown_table() in readme, (
        "regenerate: python -c 'from bench.settings import markdown_table; print(markdown_table())'"
    )


def test_a_wrong_task_value_does_not_hide_a_components_mistake(tmp_path):
    """One wrong task parameter stopped the entry before its cells were made, where a
    component's values are checked: `solver.step_size: abc` showed only once `n_times`
    was fixed (three rounds for a nested nodeo). Every mistake is said at once, with a
    close parameter name suggested."""
    from bench.suite import SuiteError, load_suite
    from bench.testing import default_registry

    path = tmp_path / "s.yaml"
    path.write_text(
        "suite: s\nbenchmarks:\n  - task: ode.harmonic\n"
        "    params: {solver: rk4, solver.step_size: abc, solver.stepsize: 1, n_times: 2.5}\n"
    )
    with pytest.raises(SuiteError) as info:
        load_suite(path, default_registry())
    text = str(info.value)
    assert "3 mistakes" in text and "params.n_times: expected an integer, got 2.5" in text
    assert "params.solver.step_size: rk4.step_size: expected a number, got 'abc'" in text
    assert "rk4 has no parameter 'stepsize'; did you mean 'step_size'?" in text


def test_a_wrong_task_value_adds_no_mistake_about_the_default_standing_in(tmp_path):
    """The entry's cells are made without the wrong value's axis, so the task's own checks
    would judge its default: `conditional: implicitt` with `encoding: siren` also read
    'an encoding is the implicit template's field'. Only the components' values are
    checked there."""
    from bench.suite import SuiteError, load_suite
    from bench.testing import default_registry

    path = tmp_path / "s.yaml"
    path.write_text(
        "suite: s\nbenchmarks:\n  - task: registration.atlas\n"
        "    params: {conditional: implicitt, encoding: siren, encoding.widht: 8}\n"
    )
    with pytest.raises(SuiteError) as info:
        load_suite(path, default_registry())
    text = str(info.value)
    assert "2 mistakes" in text and "params.conditional: 'implicitt' is not one of" in text
    assert "siren has no parameter 'widht'; did you mean 'width'?" in text
    assert "an encoding is the implicit template's field" not in text


def test_a_component_parameter_taking_a_list_is_one_value_in_params(tmp_path):
    """docs/suites.md: a list in params given to a parameter that takes a list is not
    swept. That held for task parameters only: `method.iterations: [20, 10]` (syn's
    iterations per level) was swept into 20 and 10, each refused as not a list."""
    import yaml

    from bench.suite import load_suite

    def cells(value):
        entry = {
            "task": "registration.pairwise",
            "params": {"downsample": 4, "method": "syn", "method.iterations": value},
        }
        path = tmp_path / "s.yaml"
        path.write_text(yaml.safe_dump({"suite": "s", "seeds": [0], "benchmarks": [entry]}))
        return [c.component_params["method"]["iterations"] for c in load_suite(path).cells]

    assert cells([20, 10]) == [[20, 10]]
    assert cells([[20, 10], [10, 5]]) == [[20, 10], [10, 5]]  # a list of lists sweeps


def test_a_components_parameter_given_as_the_tasks_names_its_slot(tmp_path, capsys):
    """`sigma: 2.0` beside a method with a sigma said only that the task has no such
    parameter (a user audit): the message says how a component's parameter is given."""
    path = tmp_path / "s.yaml"
    path.write_text(
        "suite: x\ndevice: cpu\nbenchmarks:\n  - task: registration.pairwise\n"
        "    params: {downsample: 4, levels: 2}\n    matrix: {method: [svf, lddmm]}\n"
    )
    assert main(["run", str(path), "--dry-run"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "registration.pairwise has no parameter 'levels'" in err
    assert "a component's parameter is given with its slot: method.levels (svf, lddmm's)" in err
