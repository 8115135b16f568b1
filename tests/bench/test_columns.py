"""The column schema (bench.columns) and task headlines (bench.Headline)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bench import Headline
from bench.columns import (
    blanks_emptied,
    configuration_columns,
    configuration_labels,
    headline,
    short_name,
    timers,
    unit,
)
from bench.headline import HeadlineError
from bench.results import _parquet_safe

pytestmark = pytest.mark.usefixtures("frozen_heap")


def _cells() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "cell_id": list("abcdefg"),
            "suite": "s",
            "bench": 0,
            "label": "",
            "task": ["ode"] * 4 + ["fit"] * 3,
            "solver": ["rk4", "rk4", "euler", "euler", None, None, None],
            "encoding": [None] * 4 + ["siren", "siren", "fourier"],
            "param.t1": [10.0] * 4 + [np.nan] * 3,  # a default nobody changed
            "param.solver.step_size": [0.1, 0.1, 0.1, 0.01, np.nan, np.nan, np.nan],
            "param.steps": [np.nan] * 4 + [100, 100, 100],
            "seed": [0, 1, 0, 0, 0, 1, 0],
            "status": "ok",
            "time.solve.median": 1.0,
            "metric.err": 0.1,
        }
    )


def test_a_configuration_is_the_components_and_what_varies_within_a_task():
    cells = _cells()
    labels = configuration_labels(cells)
    assert list(labels) == [
        "solver=rk4 solver.step_size=0.1",
        "solver=rk4 solver.step_size=0.1",  # the seeds of one configuration share it
        "solver=euler solver.step_size=0.1",
        "solver=euler solver.step_size=0.01",
        "encoding=siren",  # steps is 100 everywhere in this task: not in the label
        "encoding=siren",
        "encoding=fourier",
    ]
    ode = cells[cells["task"] == "ode"]
    assert configuration_columns(ode) == ["solver", "param.solver.step_size"]


def _registration_cells() -> pd.DataFrame:
    """Five methods as a registration suite runs them: each method's own lr and
    iterations (set once per method, or its plugin's default), svf twice (symmetric or
    not), syn's iterations a list (so the column holds mixed types), voxelmorph with no
    iterations at all; two contrasts."""
    methods = ["displacement", "svf", "svf", "lddmm", "syn", "voxelmorph", "voxelmorph"]
    return pd.DataFrame(
        {
            "cell_id": [f"c{i}" for i in range(7)],
            "task": "registration.pairwise",
            "method": methods,
            "backend": "warp.eager",
            "param.contrast": ["t1"] * 6 + ["t2"],
            "param.method.lr": [0.1, 0.1, 0.1, 1.0, np.nan, 0.001, 0.001],
            "param.method.iterations": [150, 150, 150, 150, [40, 20, 10], np.nan, np.nan],
            "param.method.symmetric": [np.nan, False, True, np.nan, np.nan, np.nan, np.nan],
            "seed": 0,
            "status": "ok",
        }
    )


def _stored(cells: pd.DataFrame, tmp_path, nan_as_text: bool = False) -> pd.DataFrame:
    """The cells as a run's cells.parquet gives them back; ``nan_as_text``: as a run
    written before empty entries of a mixed column were kept empty (``"NaN"``)."""
    safe = _parquet_safe(cells)
    if nan_as_text:
        col = safe["param.method.iterations"]
        safe["param.method.iterations"] = col.where(col.notna(), "NaN")
    safe.to_parquet(tmp_path / "cells.parquet", index=False)
    return pd.read_parquet(tmp_path / "cells.parquet")


@pytest.mark.parametrize("nan_as_text", [False, True])
def test_a_label_leaves_out_what_a_plugin_alone_decides_and_empty_entries(tmp_path, nan_as_text):
    cells = _stored(_registration_cells(), tmp_path, nan_as_text)
    assert (cells["param.method.iterations"].iloc[-1] == "NaN") is nan_as_text
    assert list(configuration_labels(cells)) == [
        "method=displacement backend=warp.eager contrast=t1",
        "method=svf backend=warp.eager contrast=t1 method.symmetric=False",
        "method=svf backend=warp.eager contrast=t1 method.symmetric=True",
        "method=lddmm backend=warp.eager contrast=t1",
        "method=syn backend=warp.eager contrast=t1",
        "method=voxelmorph backend=warp.eager contrast=t1",
        "method=voxelmorph backend=warp.eager contrast=t2",
    ]  # never lr=0.1, iterations=150, iterations=NaN or nan: each method's own settings


def test_a_plugin_setting_that_one_plugin_varies_is_in_every_label_that_has_it():
    cells = _registration_cells()
    cells.loc[6, "param.method.lr"] = 0.01  # voxelmorph at two learning rates
    labels = list(configuration_labels(cells))
    assert labels[0] == "method=displacement backend=warp.eager contrast=t1 method.lr=0.1"
    assert labels[4] == "method=syn backend=warp.eager contrast=t1"  # syn has no lr
    assert labels[5:] == [
        "method=voxelmorph backend=warp.eager contrast=t1 method.lr=0.001",
        "method=voxelmorph backend=warp.eager contrast=t2 method.lr=0.01",
    ]


@pytest.mark.parametrize("nan_as_text", [False, True])
def test_an_optional_nested_plugin_left_out_beside_one_given_is_another_configuration(
    tmp_path, nan_as_text
):
    """Two cells of one method, one with its optional nested network left out (None),
    one with a siren in it, read as one configuration (one label, their seeds pooled in
    the report: a user audit): empty and set where nothing else tells the cells apart is
    a difference; empty where another plugin lacks the parameter is not, nor is a nested
    plugin's own parameter where that plugin is left out."""
    cells = pd.DataFrame({
        "cell_id": list("abcd"), "task": "physics.burgers",
        "method": ["my.pinn", "my.pinn", "pinn", "supervised"],
        "param.method.field": [None, "siren", None, None],
        "param.method.field.width": [None, 32, None, None],
        "param.method.steps": [200, 200, None, 300],
        "param.nu": [0.01] * 4,
    })  # fmt: skip
    cells = _stored(cells, tmp_path)
    if nan_as_text:  # a run written before empty entries of a mixed column were None
        cells["param.method.field"] = cells["param.method.field"].fillna("NaN")
    assert list(configuration_labels(cells)) == [
        "method=my.pinn", "method=my.pinn method.field=siren", "method=pinn", "method=supervised",
    ]  # fmt: skip
    # a task parameter one form of a task uses (None elsewhere: the atlas's init_steps),
    # the form telling the rows apart already: not a difference of its own; two implicit
    # rows at two init_steps are
    atlas = pd.DataFrame({
        "cell_id": list("abcd"), "task": "registration.atlas",
        "param.conditional": ["linear", "deformed", "implicit", "implicit"],
        "param.init_steps": [None, None, 100, 100],
    })  # fmt: skip
    assert list(configuration_labels(atlas)) == [
        "conditional=linear", "conditional=deformed", "conditional=implicit",
        "conditional=implicit",
    ]  # fmt: skip
    # the nested plugin's name stays where its own parameter varies too (a review)
    nested = pd.DataFrame({
        "cell_id": list("abc"), "task": "t", "method": "p",
        "param.method.field": [None, "siren", "siren"],
        "param.method.field.width": [None, 32, 64],
    })  # fmt: skip
    assert list(configuration_labels(nested)) == [
        "method=p", "method=p method.field=siren method.field.width=32",
        "method=p method.field=siren method.field.width=64",
    ]  # fmt: skip
    # a problem parameter empty in some cells is another problem, with the pages' own
    # label column beside it or not (the report adds one, the site did not: a review)
    from bench.columns import problems

    posed = pd.DataFrame({"cell_id": list("abcd"), "task": "t", "method": "m",
                          "param.folder": [None, None, "mine", "mine"]})  # fmt: skip
    alone = list(problems(posed, ["param.folder"]))
    posed["config"] = configuration_labels(posed)
    assert list(problems(posed, ["param.folder"])) == alone
    assert alone == ["default", "default", "folder=mine", "folder=mine"]
    atlas.loc[3, "param.init_steps"] = 20
    assert list(configuration_labels(atlas))[2:] == [
        "conditional=implicit init_steps=100", "conditional=implicit init_steps=20",
    ]  # fmt: skip


def test_an_empty_entry_in_a_mixed_column_is_empty_in_tables(tmp_path):
    from bench.display import fmt_number

    cells = _stored(_registration_cells(), tmp_path, nan_as_text=True)
    shown = blanks_emptied(cells)["param.method.iterations"]
    assert shown.iloc[-1] is None and shown.iloc[0] == "150"
    assert fmt_number(cells["param.method.iterations"].iloc[-1]) == ""
    assert fmt_number(float("nan")) == "" and fmt_number("camera") == "camera"


def test_column_names_and_units():
    assert short_name("time.solve.median") == "solve"
    assert short_name("param.solver.rtol") == "solver.rtol"
    assert short_name("metric.final_rel_error") == "final_rel_error"
    assert [unit(c) for c in ("wall", "time.a.median", "time.a.n", "mem.peak", "speedup.a")] == [
        "s", "s", "", "B", "x",
    ]  # fmt: skip
    assert timers(["time.a.median", "time.a.n", "metric.x"]) == ["time.a.median"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"quality": {}}, "at least one quality metric"),
        ({"quality": {"err": "smaller"}}, "is not 'lower' or 'higher'"),
        ({"quality": {"metric.err": "lower"}}, "the metric's own name"),
        ({"quality": {"err": "lower"}, "cost": "solve"}, "a column"),
    ],
)
def test_a_headline_that_does_not_say_what_matters_is_refused(kwargs, message):
    with pytest.raises(HeadlineError, match=message):
        Headline(**kwargs)


def test_a_headline_round_trips_and_a_received_one_is_never_trusted():
    h = Headline(quality={"err": "lower", "psnr": "higher"}, cost="mem.peak", curves=["loss"])
    assert Headline.from_dict(json.loads(json.dumps(h.to_dict()))) == h
    assert h.primary == "metric.err" and h.better("metric.psnr") == "higher"
    for bad in (None, [], {"quality": "err"}, {"quality": {"err": "up"}}, {"quality": {1: 2}}):
        assert Headline.from_dict(bad) is None


def test_the_recorded_headline_keeps_only_the_columns_the_cells_have():
    meta = {"headlines": {"ode": {"quality": {"err": "lower", "gone": "higher"},
                                  "cost": "time.missing.median", "curves": []}}}  # fmt: skip
    h = headline(meta, "ode", _cells())
    assert h.quality == {"err": "lower"} and h.cost == "wall"
    assert headline(meta, "fit", _cells()) is None  # declared nothing
    assert headline({}, "ode") is None  # a run from before headlines


def test_a_run_records_its_tasks_headlines(write_suite, registry, tmp_path):
    from bench.executors import InProcessExecutor
    from bench.results import load_run
    from bench.runner import run_suite
    from bench.suite import load_suite

    path = write_suite(
        "suite: h\nrepeats: 1\nplugins: [FIXTURE_PLUGINS]\nbenchmarks:\n"
        "  - task: test.behave\n    matrix: {solver: [test.constant]}\n"
    )
    run_suite(load_suite(path, registry), tmp_path / "r", executor=InProcessExecutor(registry))
    run = load_run(tmp_path / "r")
    h = headline(run.meta, "test.behave", run.cells)
    assert h == Headline(quality={"value": "lower"}, cost="time.work.median", curves=("loss",))


def test_run_cell_curve_reads_values_and_times_in_their_places(registry):
    """CellResult.curve swapped value and time (the record holds name, step, time, value)."""
    from bench.testing import run_cell

    cell = run_cell("test.behave", {"solver": "test.constant"}, registry=registry)
    # test.behave records loss 1/(step+1) at time 0.1 step
    assert cell.curve("loss") == [(0, 1.0, 0.0), (1, 0.5, 0.1), (2, 1.0 / 3.0, 0.2)]


def test_the_fallback_metric_passes_over_flags_and_constants_for_report_and_site():
    """A run recorded before tasks declared a headline: the site took reached_psnr_30
    (a 0/1 flag whose name holds 'psnr') as the fields runs' quality, the report took
    params; one rule now: flags and constants passed over, a result's name first."""
    import pandas as pd

    from bench.columns import fallback_metric

    cells = pd.DataFrame({
        "metric.params": [100.0, 200.0], "metric.reached_psnr_30": [1.0, 0.0],
        "metric.similarity_before": [0.3, 0.3], "metric.psnr": [31.0, 28.5],
    })  # fmt: skip
    assert fallback_metric(cells) == "metric.psnr"
    # a time or a count to reach a PSNR is no PSNR (a review: fields-mni152-cpu's volume
    # fit took time_to_psnr_25); one configuration's result is named all the same
    reach = pd.DataFrame({"metric.time_to_psnr_25": [3.0], "metric.steps_to_psnr_25": [40.0],
                          "metric.params": [9.0], "metric.iou": [0.8]})  # fmt: skip
    assert fallback_metric(reach) == "metric.iou"
    # nor a count or a training score (physics-raissi took loss_evaluations, the toy runs
    # train_accuracy); an exact result's name first (dice before dice_1)
    more = pd.DataFrame({"metric.loss_evaluations": [3.0, 4.0], "metric.train_accuracy": [0.9, 1.0],
                         "metric.dice_1": [0.5, 0.6], "metric.dice": [0.7, 0.8]})  # fmt: skip
    assert fallback_metric(more) == "metric.dice"
    assert fallback_metric(more.drop(columns=["metric.dice", "metric.dice_1"])) == (
        "metric.loss_evaluations"  # no result named: the first that varies
    )
    assert fallback_metric(cells.drop(columns="metric.psnr")) == "metric.params"
    assert fallback_metric(cells[["metric.reached_psnr_30"]]) == "metric.reached_psnr_30"
    assert fallback_metric(pd.DataFrame({"x": [1]})) is None


def test_what_each_plugin_sets_on_its_own_is_said_under_the_table():
    """A tuned run chose architecture.hidden 8 for one plugin and 32 for another, and
    node ran at its default depth 4 beside the others' 8: no table showed either (a
    user audit; labels leave out what each plugin alone decides). The foot says it."""
    from pathlib import Path

    from bench import columns as C
    from bench.display import task_tables
    from bench.report import Colours, _task_section, describe_task

    rows = []
    for arch, depth, hidden in [("node", 4, 16), ("midnet", 8, 8), ("resnet", 8, 32)]:
        for seed in (0, 1):
            rows.append({"cell_id": f"{arch}{seed}", "task": "t", "status": "ok", "seed": seed,
                         "architecture": arch, "param.architecture.depth": depth,
                         "param.architecture.hidden": hidden, "param.lr": 0.01,
                         "metric.acc": 0.9})  # fmt: skip
    cells = pd.DataFrame(rows)
    line = (
        "architecture.depth: 4 (node), 8 (midnet, resnet); "
        "architecture.hidden: 16 (node), 8 (midnet), 32 (resnet)"
    )
    assert "; ".join(C.own_settings(cells)) == line
    assert task_tables(cells)[-1] == "set by each plugin, not in the rows: " + line
    assert C.own_settings(
        cells[cells["architecture"] != "node"].assign(**{"param.architecture.depth": 8})
    ) == ["architecture.hidden: 8 (midnet), 32 (resnet)"]
    # a suite that set one value for all says nothing
    assert C.own_settings(cells.assign(**{"param.architecture.depth": 8,
                                          "param.architecture.hidden": 8})) == []  # fmt: skip
    from bench.results import Run

    run = Run(Path("."), {}, cells, pd.DataFrame(), pd.DataFrame(), pd.DataFrame())
    t = describe_task(run, "t", cells, pd.DataFrame(), Colours())

    class Page:  # what the section asks of the page: tables and figures as text
        def table(self, *a, **k):
            return ""

        def figure(self, *a, **k):
            return ""

    class Gallery:
        def html(self, t):
            return ""

    html = _task_section(Page(), run, t, Gallery(), 0)
    assert "set by each plugin, not in the labels: " + line in html.replace("&#x27;", "'")


def test_a_table_mixing_tuned_and_untuned_configurations_says_so():
    """One method tuned on validation seeds beside three at the suite's values shared a
    table and a star with no word of it (a user audit)."""
    from bench import columns as C
    from bench.display import task_tables

    rows = [{"cell_id": f"{m}{s}", "task": "t", "status": "ok", "seed": s, "method": m,
             "role": "test" if m == "mine" else None, "metric.err": 0.1}
            for m in ("mine", "pinn", "supervised") for s in (0, 1)]  # fmt: skip
    cells = pd.DataFrame(rows)
    text = (
        "not tuned: method=pinn, method=supervised ran at the values the suite gave, beside "
        "1 configuration tuned on validation seeds: tuned against untuned, not one rule for all"
    )
    assert C.untuned_beside_tuned(cells) == text
    assert text in task_tables(cells)
    assert C.untuned_beside_tuned(cells[cells["method"] == "mine"]) == ""
    assert C.untuned_beside_tuned(cells.assign(role=None)) == ""
    # bench show --validation: a tuned entry's validation and superseded cells are tuned
    # (their grid settings were listed as 'not tuned': a review)
    mine = cells[cells["method"] == "mine"]
    shown_too = pd.concat([mine, mine.assign(role="validation", **{"param.method.lr": 0.1}),
                           mine.assign(role="superseded", **{"param.method.lr": 0.3})],
                          ignore_index=True)  # fmt: skip
    assert C.untuned_beside_tuned(shown_too) == ""


def test_a_table_comparing_plugins_none_of_them_tuned_says_so():
    """A star over methods that each ran at the suite's values (every run published
    before tuning existed) is the best of those values, not of tuned methods: said."""
    from bench import columns as C

    rows = [{"cell_id": f"{m}{s}", "task": "t", "status": "ok", "seed": s, "method": m,
             "backend": "warp.eager", "metric.err": 0.1}
            for m in ("pinn", "supervised") for s in (0, 1)]  # fmt: skip
    cells = pd.DataFrame(rows)
    assert C.none_tuned(cells) == (
        "none tuned: each method ran at the values the suite gave (no tune block chose them "
        "on validation seeds), so the best is the best of these values, not of methods "
        "each tuned by one rule"
    )
    assert C.none_tuned(cells[cells["method"] == "pinn"]) == ""  # one plugin: no comparison
    assert C.none_tuned(cells.assign(role="test")) == ""  # tuned
    # the mixed case is untuned_beside_tuned's line, not this one
    assert C.none_tuned(cells.assign(role=["test", "test", None, None])) == ""


def test_a_number_near_a_whole_one_is_not_shown_as_it():
    """bench show printed an SSIM of 0.999982 as "1", as if exact (a user audit)."""
    from bench.display import fmt_number, fmt_value

    assert fmt_number(0.999982) == fmt_value(0.999982) == "0.999982"
    assert fmt_number(99.99996) == "99.99996" and fmt_number(0.9999999999) == "1"
    assert fmt_number(1.0) == "1" and fmt_number(3.14159) == "3.142"
    assert fmt_number(12345.6) == "1.235e4" and fmt_number(1234.4) == "1234"
    # the report and the site as the page's script writes it (toPrecision(4)): "1.000"
    from bench.report import fmt
    from bench.site import _fmt

    assert fmt(0.999982) == _fmt(0.999982, "metric.ssim") == "1.000"
    assert fmt(1.0) == "1" and _fmt(0.5, "metric.ssim") == "0.5"


def test_a_headlines_size_and_floor_come_back_from_run_json():
    """Headline.size and Headline.floor survive run.json; a floor names a quality, and
    a run's headline keeps only the ones its cells record."""
    from bench import Headline
    from bench import columns as C
    from bench.headline import HeadlineError

    h = Headline(quality={"psnr": "higher", "ssim": "higher"}, size="params",
                 floor={"psnr": "psnr_floor"})  # fmt: skip
    assert Headline.from_dict(h.to_dict()) == h
    with pytest.raises(HeadlineError, match="floor 'loss'"):
        Headline(quality={"psnr": "higher"}, floor={"loss": "loss_floor"})
    cells = pd.DataFrame({"metric.psnr": [1.0], "metric.ssim": [0.5], "metric.params": [3]})
    found = C.headline({"headlines": {"t": h.to_dict()}}, "t", cells)
    assert found.size == "params" and found.floor == {}  # no psnr_floor in these cells
    cells["metric.psnr_floor"] = 0.5
    assert C.headline({"headlines": {"t": h.to_dict()}}, "t", cells).floor == {"psnr": "psnr_floor"}
    # a budget survives too, and is kept where no cell records it: the page says so
    b = Headline(quality={"psnr": "higher"}, budget="loss_evaluations")
    assert Headline.from_dict(b.to_dict()) == b and b.to_dict()["budget"] == "loss_evaluations"
    assert C.headline({"headlines": {"t": b.to_dict()}}, "t", cells).budget == "loss_evaluations"
    with pytest.raises(HeadlineError, match="budget 'metric.steps'"):
        Headline(quality={"psnr": "higher"}, budget="metric.steps")
