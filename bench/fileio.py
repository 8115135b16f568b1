"""Writing files so that no reader ever sees half of one (results, result files, caches)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: files are made readable as the user's umask says (mkstemp alone makes them 0600)
FILE_MODE = 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary file beside ``path`` to write; when the block ends without an error
    it replaces ``path`` in one step (``os.replace``), readable as the user's umask
    says, else it is removed. Readers, and other processes, never see half a file.

        with atomic_path(out) as tmp:
            frame.to_parquet(tmp)
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes, *, sync: bool = True) -> None:
    """``data`` to ``path`` through ``atomic_path``; ``sync`` flushes it to disk first
    (what the run's own records need to survive a crash of the machine)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        if sync:
            fh.flush()
            os.fsync(fh.fileno())
