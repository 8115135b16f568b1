"""The scheduler tests' cluster is put back (issue 23): run as root, the tests left
slurmctld, slurmd and munged running and /etc/slurm/slurm.conf rewritten. Here the
restore itself, on files and processes of the test's own."""

from __future__ import annotations

import fcntl
import subprocess
import sys

import pytest

from ._slurm_cluster import LocalCluster, Snapshot

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="/proc and flock: Linux")


def test_files_are_put_back_and_created_folders_removed(tmp_path):
    conf, key = tmp_path / "slurm.conf", tmp_path / "munge.key"
    conf.write_text("the machine's own configuration\n")
    conf.chmod(0o640)
    made, existing = tmp_path / "spool", tmp_path / "log"
    existing.mkdir()
    snapshot = Snapshot.take([conf, key], [made, existing], daemons=[], pids=lambda n: set())
    # what slurm_up.sh does
    conf.write_text("ClusterName=dynbench\n")
    conf.chmod(0o644)
    key.write_bytes(b"\0" * 1024)
    (made / "state").mkdir(parents=True)
    (made / "state" / "node").write_text("x")
    done = snapshot.restore()
    assert conf.read_text() == "the machine's own configuration\n"
    assert conf.stat().st_mode & 0o777 == 0o640
    assert not key.exists() and not made.exists() and existing.is_dir()
    assert done == [f"restored {conf}", f"removed {key}", f"removed {made}"]
    assert snapshot.restore() == []  # nothing left to do


def test_only_the_daemons_it_started_are_stopped(tmp_path):
    ours = [subprocess.Popen(["sleep", "60"])]  # a "daemon" running before the start
    try:

        def pids(name):
            return {p.pid for p in ours if p.poll() is None} if name == "sleep" else set()

        snapshot = Snapshot.take([], [], daemons=["sleep"], pids=pids)
        ours.append(subprocess.Popen(["sleep", "60"]))  # the one the start starts
        assert snapshot.started_by(pids) == {"sleep": {ours[1].pid}}
        assert snapshot.restore(grace=5.0) == [f"stopped sleep ({ours[1].pid})"]
        assert ours[1].wait(timeout=5) is not None
        assert ours[0].poll() is None  # running before: left alone
    finally:
        for proc in ours:
            proc.kill()
            proc.wait()


def test_a_cluster_another_session_uses_is_left_running(tmp_path):
    conf = tmp_path / "slurm.conf"
    conf.write_text("old\n")
    lock = tmp_path / "lock"
    cluster = LocalCluster(tmp_path / "unused.sh", lock=lock)
    cluster.snapshot = Snapshot.take([conf], [], daemons=[], pids=lambda n: set())
    cluster.snapshot.started = {"slurmd": {2**22 + 1}}  # no such process
    cluster._fh = open(lock, "a")  # noqa: SIM115
    fcntl.flock(cluster._fh, fcntl.LOCK_SH)
    conf.write_text("new\n")
    with open(lock) as other:  # another session holds the cluster too
        fcntl.flock(other, fcntl.LOCK_SH)
        with pytest.warns(UserWarning, match="another test session uses the SLURM cluster"):
            assert cluster.stop() == []
    assert conf.read_text() == "new\n"
    # alone, it puts things back
    cluster._fh = open(lock, "a")  # noqa: SIM115
    fcntl.flock(cluster._fh, fcntl.LOCK_SH)
    assert cluster.stop() == [f"restored {conf}"] and conf.read_text() == "old\n"
