"""The terminal (issue 19.6): `bench show` fits 100 columns and leads with the task's
headline, `--group-by` never pools two configurations, `bench plot RUN` with no axes
draws the headline figure of any task."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from bench.cli import main
from bench.plot import line_groups, sweeps

pytestmark = pytest.mark.usefixtures("frozen_heap")

FIXTURE_PLUGINS = str(Path(__file__).parent / "bench" / "fixtures" / "harness_plugins.py")
WIDTH = 100


def _run(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / f"{data['suite']}.yaml"
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    assert main(["run", str(path), "--output", str(out), "--quiet", "--in-process"]) == 0
    (run,) = (out / data["suite"]).iterdir()
    return run


@pytest.fixture(scope="module")
def fields_run(tmp_path_factory) -> Path:
    """fields-quick's image fits, tiny: six encodings, three learning rates, a dozen
    measures and values like 1.114e+04 (the parameter counts)."""
    tmp = tmp_path_factory.mktemp("fields")
    common = {"image": "camera", "size": 16, "steps": 4, "eval_every": 2, "target_psnr": 25.0,
              "backend": "sine_mlp.eager"}  # fmt: skip
    data = {
        "suite": "fields-tiny",
        "device": "cpu",
        "repeats": 1,
        "warmup": 0,
        "threads": 1,
        "benchmarks": [
            {
                "task": "fields.image_fit",
                "params": {**common, "encoding.width": 16, "lr": 1e-3},
                "matrix": {"encoding": ["relu", "positional", "fourier", "bacon"]},
            },
            {
                "task": "fields.image_fit",
                "params": {**common, "encoding": "siren", "encoding.width": 16, "lr": 1e-4},
            },
            {"task": "fields.image_fit", "params": {**common, "encoding": "hashgrid", "lr": 1e-2}},
        ],  # fmt: skip
    }
    return _run(tmp, data)


def _show(run: Path, capsys, monkeypatch, *args: str) -> str:
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    capsys.readouterr()
    assert main(["show", str(run), *args]) == 0
    return capsys.readouterr().out


def _tables(out: str) -> list[dict]:
    """Each table printed: its header cells and its body rows (lists of cells)."""
    tables, current, part = [], None, None
    for line in out.splitlines():
        if line.startswith("┏"):
            current, part = {"header": [], "rows": []}, "header"
            tables.append(current)
        elif line.startswith("┡"):
            part = "rows"
        elif line.startswith("└"):
            current = None
        elif current is not None and line[:1] in ("┃", "│"):
            cells = [c.strip() for c in re.split("[┃│]", line)[1:-1]]
            current[part].append(cells)
    return tables


def test_show_fits_100_columns_and_leads_with_the_headline(fields_run, capsys, monkeypatch):
    out = _show(fields_run, capsys, monkeypatch)
    assert max(map(len, out.splitlines())) <= WIDTH, out
    (table,) = _tables(out)
    assert len(table["header"]) == 1, out  # no header broken over lines
    assert len(table["rows"]) == 6, out  # no value wrapped onto a second line
    header = table["header"][0]
    # the configuration, then the quality metrics (fields.image_fit: psnr, ssim), the cost
    assert header[:2] == ["encoding", "lr"], header
    assert header[header.index("status") + 1 :] == ["psnr", "ssim", "fit"], header
    assert "+" in out and "--all" in out  # the other measures: how to see them


def test_show_all_keeps_every_number_whole(fields_run, capsys, monkeypatch):
    out = _show(fields_run, capsys, monkeypatch, "--all")
    assert max(map(len, out.splitlines())) <= WIDTH, out
    tables = _tables(out)
    assert len(tables) > 1
    shown = set()
    for table in tables:
        assert len(table["header"]) == 1, out
        assert len(table["rows"]) == 6, out
        shown |= set(table["header"][0])
        for row in table["rows"]:  # every number whole: 1.114e4, not 1.11/4e+0/4
            for value in row:
                assert re.fullmatch(r"|[\w.+\-\[\], =]+", value), (value, out)
    cells = pd.read_parquet(fields_run / "cells.parquet")
    assert {"params", "compression_ratio", "steps_per_s", "eval", "mem.fit"} <= shown
    assert cells["metric.params"].max() > 1e4  # a number that used to wrap is shown
    assert "+" not in out.split("\n")[-2]


def test_show_columns_by_short_name(fields_run, capsys, monkeypatch):
    out = _show(fields_run, capsys, monkeypatch, "--columns", "encoding,params,psnr")
    (table,) = _tables(out)
    assert table["header"][0][-3:] == ["encoding", "params", "psnr"] or table["header"][0][-2:] == [
        "params",
        "psnr",
    ], out


def test_a_run_from_before_headlines_shows_every_measure(fields_run, tmp_path, capsys, monkeypatch):
    import shutil

    old = tmp_path / "old-run"
    shutil.copytree(fields_run, old)
    meta = json.loads((old / "run.json").read_text())
    del meta["headlines"]
    (old / "run.json").write_text(json.dumps(meta))
    out = _show(old, capsys, monkeypatch)
    assert max(map(len, out.splitlines())) <= WIDTH, out
    headers = {h for t in _tables(out) for h in t["header"][0]}
    assert {"fit", "eval", "mem.fit", "psnr", "params", "compression_ratio"} <= headers
    assert "--all" not in out


# --- --group-by -------------------------------------------------------------------------


@pytest.fixture
def two_configurations(tmp_path) -> Path:
    """test.behave with value 1 and 4, two seeds each: two configurations of one solver."""
    matrix = {"solver": ["test.constant"], "value": [1.0, 4.0]}
    data = {"suite": "two", "device": "cpu", "plugins": [FIXTURE_PLUGINS], "repeats": 2,
            "seeds": [0, 1], "benchmarks": [{"task": "test.behave", "matrix": matrix}]}  # fmt: skip
    return _run(tmp_path, data)


def test_group_by_keeps_configurations_apart(two_configurations, capsys, monkeypatch):
    out = _show(two_configurations, capsys, monkeypatch, "--group-by", "solver")
    (table,) = _tables(out)
    header = table["header"][0]
    assert header[0] == "value", out  # the configuration column added
    assert "solver=test.constant" in out  # the same in every row: in the title
    rows = {r[0]: dict(zip(header, r)) for r in table["rows"]}
    assert set(rows) == {"1.0", "4.0"}, out
    assert all(r["cells"] == "2" for r in rows.values())  # the two seeds of each
    # metric.value (its header "metric.value": the parameter is "value") is 1 and 4,
    # never the pooled 2.5
    assert sorted(r["metric.value"] for r in rows.values()) == ["1", "4"], out
    assert "grouped by value too" in out


# --- bench plot -------------------------------------------------------------------------


def test_plot_without_axes_draws_the_headline_of_a_non_ode_run(
    two_configurations, capsys, monkeypatch
):
    pytest.importorskip("matplotlib")
    assert main(["plot", str(two_configurations)]) == 0
    png = two_configurations / "metric.value-vs-time.work.median.png"
    assert capsys.readouterr().out.split() == ["wrote", str(png)]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_axes_on_fields(fields_run, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["plot", str(fields_run), "-o", str(tmp_path / "f.png")]) == 0
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


def test_plot_says_what_to_do_when_a_run_has_no_headline(two_configurations, capsys):
    pytest.importorskip("matplotlib")
    meta = json.loads((two_configurations / "run.json").read_text())
    del meta["headlines"]
    (two_configurations / "run.json").write_text(json.dumps(meta))
    assert main(["plot", str(two_configurations)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "records no headline" in err and "--x COLUMN --y COLUMN" in err


def test_a_line_per_configuration_along_the_swept_parameter():
    rows = [
        {"task": "ode", "solver": s, "param.solver.adjoint": adj, "param.solver.step_size": h,
         "seed": 0, "status": "ok"}
        for s in ("rk4", "euler") for adj in (False, True) for h in (0.1, 0.05, 0.025)
    ]  # fmt: skip
    cells = pd.DataFrame(rows)
    assert sweeps(cells) == ["param.solver.step_size"]
    lines = line_groups(cells, by=None)
    assert sorted(name for name, _ in lines) == [
        "solver=euler solver.adjoint=False",
        "solver=euler solver.adjoint=True",
        "solver=rk4 solver.adjoint=False",
        "solver=rk4 solver.adjoint=True",
    ]
    assert all(len(group) == 3 for _, group in lines)
    # two values are two configurations, not a sweep (the atlas' barycentre 0 and 1)
    two = cells[cells["param.solver.step_size"] != 0.025]
    assert sweeps(two) == []
    assert len(line_groups(two, by=None)) == 8


def test_a_configuration_too_wide_for_its_columns_folds_into_one_label():
    """The published registration-2d run at 100 columns (issue 19.6): its nine varying
    keys do not fit beside the numbers, so they become one ``configuration`` column that
    folds onto more lines; two svf configurations (symmetric or not, T1 by NCC or T2 by
    MI) never read alike, and no number wraps."""
    from rich.console import Console

    from bench.display import grouped_tables, task_tables

    rows = []
    for method, symmetric, contrast, similarity in [
        ("displacement", None, "t1", "ncc"),
        ("svf", False, "t1", "ncc"),
        ("svf", True, "t1", "ncc"),
        ("svf", False, "t2", "mi"),
        ("syn", None, "t2", "mi"),
    ]:
        for seed in (0, 1):
            rows.append({"task": "registration.pairwise", "method": method,
                         "backend": "warp.eager", "param.contrast": contrast,
                         "param.similarity": similarity, "param.reverse": contrast == "t1",
                         "param.method.symmetric": symmetric, "param.downsample": 2,
                         "seed": seed, "status": "ok", "time.register.median": 12.3 + seed,
                         "time.train.median": None, "mem.register": 1.2e6,
                         "metric.dice": 0.81234 + seed, "metric.hd95": 1.114e4,
                         "metric.folding_percent": 0.0, "metric.error_mm": 1.06})  # fmt: skip
    cells = pd.DataFrame(rows)
    # grouped (--group-by): the counts keep their own columns beside the folded label
    console = Console(width=WIDTH, record=True)
    for table in grouped_tables(cells, ["method", "contrast", "similarity", "reverse",
                                        "method.symmetric"], width=WIDTH):  # fmt: skip
        console.print(table)
    (grouped, *_) = _tables(console.export_text())
    assert {"configuration", "cells", "ok"} <= set(grouped["header"][0]), grouped
    console = Console(width=WIDTH, record=True)
    for table in task_tables(cells, "run", width=WIDTH):
        console.print(table)
    out = console.export_text()
    assert max(map(len, out.splitlines())) <= WIDTH, out
    (first, *_) = _tables(out)
    assert first["header"][0][:4] == ["#", "configuration", "seed", "status"], out
    labels, current = [], None
    for row in first["rows"]:  # a row starts where its number is; its label's folds join
        if row[0]:
            current = [row[1]]
            labels.append(current)
        else:
            current.append(row[1])
        assert row[0] or not any(row[2:]), row  # a fold holds the label only: numbers whole
    joined = [" ".join(parts) for parts in labels]
    assert len(joined) == 10 and len(set(joined)) == 5, joined  # one per configuration
    assert "svf contrast=t2 similarity=mi reverse=False method.symmetric=False" in joined
    assert "svf contrast=t1 similarity=ncc reverse=True method.symmetric=True" in joined
    assert "…" not in out


def test_text_from_cells_writes_no_control_sequence_to_the_terminal():
    """A parameter value or a plugin's error holding ESC ] 0 ; ... BEL (retitle) or ESC [
    31 m (recolour) reached the terminal as is through bench run / show: a received
    results folder could do that to its reader. Rich's own colours still pass."""
    import io

    from rich.table import Table
    from rich.text import Text

    from bench.display import SafeConsole, make_console

    assert isinstance(make_console(), SafeConsole) and isinstance(make_console(True), SafeConsole)
    hostile = "x=\x1b]0;PWNED\x07\x1b[31mred\x9b2J"
    # as on a terminal: rich styles with escape codes
    out = SafeConsole(file=io.StringIO(), force_terminal=True, color_system="standard",
                      markup=False, highlight=False)  # fmt: skip
    table = Table("configuration", "error")
    table.add_row(hostile, Text(hostile, style="red"))
    out.print(table)
    out.print(Text.assemble(("error:", "bold red"), f" {hostile}"))
    written = out.file.getvalue()
    assert "PWNED" in written and "red" in written  # the text stays, readable
    assert "\x1b]" not in written and "\x07" not in written and "\x9b" not in written
    assert "\x1b[31mred" not in written  # the injected colour, not rich's
    assert "\x1b[1;31merror:" in written  # rich's own style codes pass
