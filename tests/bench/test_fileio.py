"""bench.atomic_path: the one way results, result files and plugin caches are written."""

from __future__ import annotations

import os

import pytest

from bench import atomic_path
from bench.fileio import FILE_MODE


def test_a_finished_write_replaces_the_file_with_the_umask_mode(tmp_path):
    out = tmp_path / "table.bin"
    out.write_bytes(b"old")
    with atomic_path(out) as tmp:
        assert tmp.parent == tmp_path and tmp != out
        tmp.write_bytes(b"new")
        assert out.read_bytes() == b"old"  # readers see the old file until the end
    assert out.read_bytes() == b"new"
    assert os.stat(out).st_mode & 0o777 == FILE_MODE
    assert [p.name for p in tmp_path.iterdir()] == ["table.bin"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    out = tmp_path / "table.bin"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(out) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["table.bin"]
