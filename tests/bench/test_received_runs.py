"""A run folder received from elsewhere is hostile (issue 23): each kind of damaged
run file is one message naming the file and what is wrong (exit 2) in ``bench show``,
``bench report`` and ``bench compare``, never a traceback; so are a name the system
refuses (over 255 characters) and a folder that cannot be written."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main

from .conftest import FIXTURE_PLUGINS

pytestmark = pytest.mark.usefixtures("frozen_heap")

SUITE = f"""
suite: received
device: cpu
seeds: [0, 1]
repeats: 2
warmup: 0
plugins: [{FIXTURE_PLUGINS}]
benchmarks:
  - task: test.behave
    matrix: {{solver: [test.constant], value: [1, 2]}}
  - task: test.files
    seeds: [0]
"""


@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("received")
    (tmp / "suite.yaml").write_text(SUITE)
    assert main(["run", str(tmp / "suite.yaml"), "--output", str(tmp / "out"), "--quiet"]) == 0
    (run,) = (tmp / "out" / "received").iterdir()
    return run


def _table(name, change):
    def damage(run: Path) -> None:
        frame = change(pd.read_parquet(run / name))
        frame.to_parquet(run / name, index=False)

    return damage


def _write(name, content):
    def damage(run: Path) -> None:
        (run / name).unlink()
        if content is None:
            (run / name).mkdir()
        elif isinstance(content, bytes):
            (run / name).write_bytes(content)
        else:
            (run / name).write_text(content)

    return damage


def _log_only(lines):
    """The run as a killed run leaves it: no cells.parquet, the cells in the log."""

    def damage(run: Path) -> None:
        (run / "cells.parquet").unlink()
        (run / "cells.log.jsonl").write_text("".join(line + "\n" for line in lines))

    return damage


def _truncated_run_json(run: Path) -> None:
    text = (run / "run.json").read_text()
    (run / "run.json").write_text(text[: len(text) // 2])


# (damage, file, what the message says); each crashed one command or more before
MALFORMED = {
    "run.json truncated": (_truncated_run_json, "run.json", "corrupt JSON"),
    "run.json a list": (_write("run.json", "[1, 2]"), "run.json", "a JSON list where an object"),
    "run.json empty": (_write("run.json", ""), "run.json", "empty file"),
    "run.json a folder": (_write("run.json", None), "run.json", "not a file"),
    "run.json entry of the wrong type": (
        _write("run.json", '{"suite": "received", "devices": 3}'),
        "run.json",
        "'devices' is 3, expected a list of objects",
    ),
    "log cells missing keys": (
        _log_only([json.dumps({"cell": {"cell_id": "a"}}), json.dumps({"cell": {"cell_id": "b"}})]),
        "cells.log.jsonl",
        "no columns 'label', 'task', 'seed', 'status', 'error'",
    ),
    "cells not parquet": (
        _write("cells.parquet", "hello, not parquet"),
        "cells.parquet",
        "corrupt or not a Parquet file",
    ),
    "cells empty file": (_write("cells.parquet", b""), "cells.parquet", "empty file (0 bytes)"),
    "curves empty file": (_write("curves.parquet", b""), "curves.parquet", "empty file"),
    "cells missing a column": (
        _table("cells.parquet", lambda f: f.drop(columns=["task"])),
        "cells.parquet",
        "not a dynbench cells table: no column 'task'",
    ),
    "samples missing columns": (
        _table("samples.parquet", lambda f: f.drop(columns=["timer"])),
        "samples.parquet",
        "no column 'timer'",
    ),
    "cells status of the wrong type": (
        _table("cells.parquet", lambda f: f.assign(status=1)),
        "cells.parquet",
        "column 'status' holds 1 (int) where text is expected",
    ),
    "cells metric of the wrong type": (
        _table("cells.parquet", lambda f: f.assign(**{"metric.value": "high"})),
        "cells.parquet",
        "column 'metric.value' holds 'high' (str) where numbers are expected",
    ),
    "samples seconds of the wrong type": (
        _table("samples.parquet", lambda f: f.assign(seconds="fast")),
        "samples.parquet",
        "where numbers are expected",
    ),
    "files path of the wrong type": (
        _table("files.parquet", lambda f: f.assign(path=3)),
        "files.parquet",
        "column 'path' holds 3 (int)",
    ),
}


def _one_message(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize("command", ["show", "report", "compare"])
@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_run_file_is_one_message(good_run, tmp_path, capsys, case, command):
    damage, name, words = MALFORMED[case]
    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    damage(run)
    argv = {
        "show": ["show", str(run)],
        "report": ["report", str(run), "-o", str(tmp_path / "page.html")],
        "compare": ["compare", str(good_run), str(run)],
    }[command]
    assert main(argv) == 2
    line = _one_message(capsys.readouterr().err)
    assert f"{run / name}: " in line and words in line, line


def test_a_log_line_that_is_not_a_record_is_one_warning(good_run, tmp_path, capsys):
    """A damaged line is skipped and named (the run stays readable up to its last
    record: issue 23, item 1); a line that is JSON but not an object is one of them."""
    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    cells = pd.read_parquet(run / "cells.parquet")
    record = json.dumps({"cell": json.loads(cells.iloc[[0]].to_json(orient="records"))[0]})
    _log_only([record, "[1, 2]", '{"cell": {"cell_id": "x"}, "samples": 5}', record])(run)
    assert main(["show", str(run)]) == 0
    err = capsys.readouterr().err
    # and one more: run.json counts 5 finished cells, the log holds 1 and no table is here
    assert "Traceback" not in err and err.count("warning:") == 2
    assert f"{run / 'cells.log.jsonl'}: lines 2, 3 are not a cell record" in " ".join(err.split())
    assert "cells.parquet: missing, yet run.json counts 5 finished cells (1 in the log)" in (
        " ".join(err.split())
    )


@pytest.mark.parametrize("command", ["show", "report", "compare"])
def test_a_name_past_255_characters_is_one_message(good_run, tmp_path, capsys, command):
    long = tmp_path / ("x" * 300)
    argv = {
        "show": ["show", str(long)],
        "report": ["report", str(good_run), "-o", f"{long}.html"],
        "compare": ["compare", str(good_run), str(long)],
    }[command]
    assert main(argv) == 2
    line = _one_message(capsys.readouterr().err)
    assert "File name too long" in line and "characters)" in line  # the name, cut short


def _read_only(path: Path) -> OSError:
    return OSError(errno.EROFS, "Read-only file system", str(path))


def test_a_report_into_a_read_only_folder_is_one_message(good_run, capsys, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise _read_only(self)

    monkeypatch.setattr(Path, "write_text", refuse)
    assert main(["report", str(good_run)]) == 2
    line = _one_message(capsys.readouterr().err)
    assert f"{good_run / 'report.html'}: cannot write (Read-only file system)" in line


def test_resuming_a_read_only_run_folder_is_one_message(tmp_path, capsys, monkeypatch):
    from bench.results import RunLock, RunLockedError

    def refuse(path, *args, **kwargs):
        raise _read_only(path)

    monkeypatch.setattr("bench.results.os.open", refuse)  # the lock opens with os.open
    with pytest.raises(RunLockedError, match="cannot write this run folder"):
        RunLock(tmp_path).acquire()


def test_a_run_copied_without_its_cells_table_is_refused_not_rerun(good_run, tmp_path, capsys):
    """A user audit copied a complete run without cells.parquet: --resume ran every cell
    again and dropped the other tables' rows; show listed none. run.json counts the
    finished cells, so the missing table is one message, and nothing is changed."""
    run = tmp_path / "copy"
    shutil.copytree(good_run, run)
    (run / "cells.parquet").unlink()
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    assert main(["show", str(run)]) == 2  # no log either: nothing to show
    assert "cells.parquet: missing" in capsys.readouterr().err
    assert main(["run", str(suite), "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert "cells.parquet: missing, yet run.json counts 5 finished cells (0 in the log)" in err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_a_run_stopped_before_its_first_cell_reads_as_empty_and_resumes(tmp_path):
    """Stopped (SIGINT/SIGTERM) before any cell finished, a run wrote a cells table with
    no columns, which --resume and show refused as 'not a dynbench cells table'. The
    table is written with its columns, and one written so before is read as empty."""
    from bench.results import CELLS, RunWriter, load_run, write_tables

    write_tables(tmp_path, [], [], [], [])
    assert list(pd.read_parquet(tmp_path / CELLS).columns)[:3] == ["cell_id", "label", "task"]
    (tmp_path / "run.json").write_text(json.dumps({"suite": "s", "status": "interrupted"}))
    assert load_run(tmp_path).cells.empty  # what this bench writes reads back
    assert len(RunWriter(tmp_path, resume=True).cells) == 0
    pd.DataFrame().to_parquet(tmp_path / CELLS)  # what an older bench wrote
    assert load_run(tmp_path).cells.empty
    writer = RunWriter(tmp_path, resume=True)
    assert len(writer.cells) == 0
    writer.close()


def test_a_parameter_is_filtered_and_plotted_by_the_name_its_table_shows(good_run, capsys):
    """Tables head param.value as 'value', and --group-by and stats --by took it so;
    --filter value=1 and plot --by value said "no column 'value'" (a user audit)."""
    assert main(["show", str(good_run), "--filter", "value=1"]) == 0
    out = capsys.readouterr().out
    assert "test.behave" in out
    assert main(["show", str(good_run), "--filter", "valu=1"]) == 2
    assert "--filter 'valu=1': no column 'valu'" in capsys.readouterr().err
    from bench.columns import resolve

    assert resolve(["param.value", "metric.value_error"], "value") == "param.value"
    assert resolve(["metric.value", "param.value"], "value", prefer="param.") == "param.value"
    with pytest.raises(KeyError, match="it could be"):
        resolve(["param.x", "metric.x"], "x")
