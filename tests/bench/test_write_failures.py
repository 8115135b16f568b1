"""A run whose results folder cannot be written ends with one message, never a
traceback, and keeps what it recorded: a disk that fills up mid-run (four chained
tracebacks before, ``run.json`` left ``running``), a read-only results folder."""

from __future__ import annotations

import errno
import json
import os

import pytest

from bench.cli import main
from bench.results import load_run

pytestmark = pytest.mark.usefixtures("frozen_heap")

SUITE = """
suite: full
device: cpu
repeats: 1
plugins: [FIXTURE_PLUGINS]
benchmarks:
  - task: test.behave
    matrix: {solver: [test.constant], value: [1, 2, 3]}
"""


def test_a_disk_that_fills_mid_run_is_one_message_and_keeps_the_cells(
    write_suite, tmp_path, monkeypatch, capsys
):
    real_fsync = os.fsync
    calls = []

    def fsync(fd):
        calls.append(fd)
        if len(calls) > 2:  # run.json and the first cell's line went through
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    path = write_suite(SUITE)
    out = tmp_path / "results"
    monkeypatch.setattr(os, "fsync", fsync)
    code = main(["run", str(path), "--output", str(out), "--in-process", "--quiet"])
    monkeypatch.setattr(os, "fsync", real_fsync)
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err and err.count("error:") == 1, err
    assert "cannot write the results:" in err and "No space left on device" in err
    run_dir = next((out / "full").iterdir())
    assert f"--resume {run_dir}" in err
    assert len(load_run(run_dir).cells) >= 1  # the cells written before the disk filled
    # with space again, the resume finishes the run
    assert main(["run", str(path), "--resume", str(run_dir), "--in-process", "--quiet"]) == 0
    run = load_run(run_dir)
    assert sorted(run.cells["metric.value"]) == [1.0, 2.0, 3.0]
    assert json.loads((run_dir / "run.json").read_text())["status"] == "complete"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder anyway")
def test_a_read_only_results_folder_is_one_message(write_suite, tmp_path, capsys):
    path = write_suite(SUITE)
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        code = main(["run", str(path), "--output", str(out), "--in-process", "--quiet"])
    finally:
        out.chmod(0o755)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert "cannot write the results:" in err and "Permission denied" in err


def test_a_results_folder_that_cannot_be_made_is_one_message(write_suite, tmp_path, capsys):
    """Under a file (what root meets too): mkdir fails with "Not a directory"."""
    path = write_suite(SUITE)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder goes")
    code = main(["run", str(path), "--output", str(blocker / "sub"), "--in-process", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert "cannot write the results:" in err


def test_a_read_only_file_system_is_one_message(write_suite, tmp_path, monkeypatch, capsys):
    """EROFS (a read-only mount), which root meets too, simulated at the folder's mkdir."""
    from pathlib import Path

    real_mkdir = Path.mkdir
    out = tmp_path / "mounted"

    def mkdir(self, *args, **kwargs):
        if str(self).startswith(str(out)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        return real_mkdir(self, *args, **kwargs)

    path = write_suite(SUITE)
    monkeypatch.setattr(Path, "mkdir", mkdir)
    code = main(["run", str(path), "--output", str(out), "--in-process", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert "cannot write the results:" in err and "Read-only file system" in err


def test_a_lock_that_is_a_link_is_refused_and_its_target_untouched(write_suite, tmp_path, capsys):
    """``.lock`` opened with "a+" followed a link and truncated its target (a run folder
    received as an archive could name ~/.bashrc)."""
    path = write_suite(SUITE)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps({"suite": "full"}))
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    (run_dir / ".lock").symlink_to(precious)
    code = main(["run", str(path), "--resume", str(run_dir), "--in-process", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert "is a symbolic link" in err
    assert precious.read_text() == "keep me"
