"""The one-node SLURM cluster of the scheduler tests, started and put back (issue 23).

``fixtures/slurm_up.sh`` starts munged, slurmctld and slurmd and writes
``/etc/slurm/slurm.conf`` (and a munge key, and state folders, where missing). Run as
root, the test suite left all three daemons running and the configuration rewritten.
``LocalCluster`` records what is there before the script runs and, when the tests are
done, stops only the daemons the script started (by their process ids) and puts back
every file and folder it changed: a file's old content and mode, or no file.

Several test sessions on one machine can share the cluster: each holds a shared lock
on ``LOCK`` while it uses it, and the session that started it stops it only when it
can take that lock alone; otherwise the cluster is left to the others (and said so).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
#: what slurm_up.sh writes or creates when they are missing
FILES = (Path("/etc/slurm/slurm.conf"), Path("/etc/munge/munge.key"))
FOLDERS = tuple(
    Path(p)
    for p in (
        "/etc/slurm", "/etc/munge", "/var/spool/slurmd", "/var/spool/slurmctld",
        "/var/log/slurm", "/run/munge", "/var/lib/munge", "/var/log/munge",
    )
)  # fmt: skip
LOCK = Path("/run/lock/dynbench-slurm-tests.lock")


def pids_of(name: str) -> set[int]:
    """The ids of the processes whose command name is ``name`` (``pgrep -x``)."""
    done = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True)
    return {int(pid) for pid in done.stdout.split()}


@dataclass
class Snapshot:
    """What was there before the cluster was started."""

    files: dict[Path, tuple[bytes, int] | None]  # content and mode, or None: no file
    folders: list[Path]  # the folders that did not exist
    pids: dict[str, set[int]]  # each daemon's processes already running
    started: dict[str, set[int]] = field(default_factory=dict)  # filled by ``started_by``

    @classmethod
    def take(
        cls,
        files: Iterable[Path] = FILES,
        folders: Iterable[Path] = FOLDERS,
        daemons: Iterable[str] = DAEMONS,
        pids: Callable[[str], set[int]] = pids_of,
    ) -> Snapshot:
        kept: dict[Path, tuple[bytes, int] | None] = {}
        for path in files:
            kept[path] = (path.read_bytes(), path.stat().st_mode) if path.is_file() else None
        missing = [p for p in folders if not p.exists()]
        return cls(kept, missing, {name: pids(name) for name in daemons})

    def started_by(self, pids: Callable[[str], set[int]] = pids_of) -> dict[str, set[int]]:
        """Record (and return) the daemons' processes that were not running before."""
        self.started = {name: pids(name) - before for name, before in self.pids.items()}
        self.started = {name: new for name, new in self.started.items() if new}
        return self.started

    def restore(self, grace: float = 10.0) -> list[str]:
        """Stop the processes ``started_by`` found (SIGTERM, then SIGKILL after
        ``grace`` seconds; slurmd before slurmctld before munged), then put back every
        file and remove the folders that did not exist. Returns what it did."""
        done = []
        for name in reversed(list(self.started)):
            for pid in sorted(self.started[name]):
                if _stop(pid, name, grace):
                    done.append(f"stopped {name} ({pid})")
        for path, kept in self.files.items():
            if kept is None:
                if path.is_file() or path.is_symlink():
                    path.unlink()
                    done.append(f"removed {path}")
                continue
            content, mode = kept
            now = path.read_bytes() if path.is_file() else None
            if now != content or path.stat().st_mode != mode:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
                os.chmod(path, mode & 0o7777)
                done.append(f"restored {path}")
        for folder in sorted(self.folders, key=lambda p: len(p.parts), reverse=True):
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=True)
                done.append(f"removed {folder}")
        return done


def _is(pid: int, name: str) -> bool:
    """Whether process ``pid`` still runs ``name`` (not a zombie, not a reused id)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    comm, _, rest = stat.partition("(")[2].rpartition(")")
    return comm == name and rest.split()[0] != "Z"


def _stop(pid: int, name: str, grace: float) -> bool:
    if not _is(pid, name):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _is(pid, name):
            return True
        time.sleep(0.1)
    if _is(pid, name):
        os.kill(pid, signal.SIGKILL)
    return True


class LocalCluster:
    """Start the one-node cluster (``script``) and put everything back on ``stop``."""

    def __init__(self, script: Path, lock: Path = LOCK) -> None:
        self.script = script
        self.lock = lock
        self.snapshot: Snapshot | None = None
        self._fh = None

    def start(self) -> subprocess.CompletedProcess:
        self.lock.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.lock, "a")  # noqa: SIM115 - held until stop()
        fcntl.flock(self._fh, fcntl.LOCK_SH)  # this session uses the cluster
        self.snapshot = Snapshot.take()
        done = subprocess.run(["bash", str(self.script)], capture_output=True, text=True,
                              timeout=180)  # fmt: skip
        self.snapshot.started_by()
        return done

    def stop(self) -> list[str]:
        if self._fh is None or self.snapshot is None:
            return []
        try:
            try:  # alone? (another session holding the lock shares the cluster)
                fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                if self.snapshot.started:
                    left = {n: sorted(p) for n, p in self.snapshot.started.items()}
                    warnings.warn(
                        f"another test session uses the SLURM cluster: left running {left}",
                        stacklevel=2,
                    )
                return []
            return self.snapshot.restore()
        finally:
            self._fh.close()
            self._fh = None
