"""bench run --workers N / --gpus LIST: several workers at once, the same protocol."""

from __future__ import annotations

import pytest

from bench.cli import main
from bench.results import load_run
from bench.worker import physical_device


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


SUITE = """
suite: par
device: DEVICE
repeats: 2
timeout: 20
plugins: [FIXTURE_PLUGINS]
benchmarks:
  - task: test.behave
    matrix: {solver: [test.constant], value: [1, 2]}
  - task: test.behave
    matrix: {solver: [test.constant], mode: [raise, crash]}
"""


def _run(write_suite, tmp_path, *flags, device="cpu"):
    path = write_suite(SUITE.replace("DEVICE", device))
    out = tmp_path / "results"
    code = main(["run", str(path), "--output", str(out), "--quiet", *flags])
    return code, (load_run(next((out / "par").iterdir())) if code == 0 else None)


def test_workers_run_cells_side_by_side_with_the_usual_statuses(write_suite, tmp_path):
    code, run = _run(write_suite, tmp_path, "--workers", "2")
    assert code == 0
    ok = run.cells[run.cells["status"] == "ok"]
    assert sorted(ok["metric.value"]) == [1.0, 2.0]
    # The first two cells are taken by the two workers at once: two processes.
    assert ok["metric.pid"].nunique() == 2
    status = dict(zip(run.cells["param.mode"].fillna("ok"), run.cells["status"]))
    assert status["raise"] == "error" and status["crash"] == "error"
    assert run.meta["executor"] == "ParallelExecutor" and run.meta["concurrent"] == 2
    assert run.meta["cells"] == {"total": 4, "finished": 4}


def test_gpus_pin_one_worker_to_each_listed_gpu(write_suite, tmp_path):
    """Without a GPU here the cells run on CPU, but each worker's environment shows the
    GPU it is pinned to (CUDA_VISIBLE_DEVICES, set before torch is imported)."""
    code, run = _run(write_suite, tmp_path, "--gpus", "3,5")
    assert code == 0
    ok = run.cells[run.cells["status"] == "ok"]
    assert sorted(ok["metric.visible_gpu"]) == [3.0, 5.0]
    assert set(run.cells["device"]) == {"cpu"}


@pytest.mark.parametrize(
    "flags, device, message",
    [
        (["--gpus", "0,x"], "cpu", "--gpus '0,x': expected distinct GPU numbers, e.g. 0,1,2,3"),
        (["--gpus", "1,1"], "cpu", "--gpus '1,1': expected distinct GPU numbers"),
        (["--workers", "0"], "cpu", "--workers 0: expected 1 or more"),
        (
            ["--gpus", "0,1"],
            "cuda:1",
            "--gpus assigns each cell a GPU, but the suite names cuda:1: use device: cuda",
        ),
        (["--gpus", "0", "--workers", "2"], "cpu", "--gpus and --workers exclude each other"),
    ],
)
def test_bad_parallel_options(write_suite, tmp_path, capsys, flags, device, message):
    code, _ = _run(write_suite, tmp_path, *flags, device=device)
    assert code == 2
    assert message in " ".join(capsys.readouterr().err.split())


def test_physical_device_follows_the_pinning(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert physical_device("cuda:1") == "cuda:3"
    assert physical_device("cuda:0") == "cuda:2"
    assert physical_device("cpu") == "cpu"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert physical_device("cuda:1") == "cuda:1"


def _two_workers(write_suite, registry, cells: int):
    """A suite of ``cells`` 0.2 s cells and a two-worker ParallelExecutor for it."""
    from bench.executors import ParallelExecutor
    from bench.suite import load_suite

    values = list(range(1, cells + 1))
    path = write_suite(
        "suite: two\nplugins: [FIXTURE_PLUGINS]\nrepeats: 1\nbenchmarks:\n"
        "  - task: test.behave\n    params: {seconds: 0.2}\n"
        f"    matrix: {{solver: [test.constant], value: {values}}}\n"
    )
    suite = load_suite(path, registry)
    return suite, ParallelExecutor(suite.plugins, suite.base_dir, [{}, {}], builtins=False)


def test_a_failure_while_recording_stops_every_worker(write_suite, registry, tmp_path):
    """If recording a row fails (here the callback raises), no worker may go on taking
    cells after the executor is closed, and run.json still says the run was cut short."""
    import json

    from bench.runner import run_suite

    suite, executor = _two_workers(write_suite, registry, cells=8)

    def explode(cell, row):
        raise RuntimeError("the disk is full")

    with pytest.raises(RuntimeError, match="the disk is full"):
        run_suite(suite, tmp_path / "run", executor=executor, on_cell_done=explode)
    assert all(e._proc is None for e in executor.executors)
    assert not any(t.is_alive() for t in executor._threads)
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["status"] == "interrupted"


@pytest.mark.skipif(_has_cuda(), reason="needs a machine without CUDA")
def test_gpus_on_a_machine_without_that_gpu_is_refused(write_suite, tmp_path, capsys):
    code, _ = _run(write_suite, tmp_path, "--gpus", "0", device="cuda")
    assert code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "worker could not start: this worker sees no CUDA device (CUDA_VISIBLE_DEVICES=0)" in err


def test_a_worker_outlives_the_thread_that_handed_it_cells(write_suite, registry, tmp_path):
    """A ParallelExecutor thread ends when its queue is empty, and a tuned run then calls
    ``run_all`` again for its test cells. A worker started from that thread asked for the
    parent-death signal, which fires when the *thread* ends: the next call's first cell
    went to a dying worker ("killed by SIGKILL" at 0.0 s, the first test cell of
    registration-3d-icbm-tuned-cpu). Workers must live until ``close``."""
    import time

    suite, executor = _two_workers(write_suite, registry, cells=4)
    try:
        first = [outcome.status for _, outcome in executor.run_all(suite.cells)]
        for thread in executor._threads:
            thread.join(10)
        assert not any(t.is_alive() for t in executor._threads)
        time.sleep(1.0)  # the parent-death signal lands within milliseconds
        started = {e: e._proc for e in executor.executors if e._proc is not None}
        assert started and all(proc.is_alive() for proc in started.values())
        second = [outcome for _, outcome in executor.run_all(suite.cells)]
        assert first == ["ok"] * 4
        assert [o.status for o in second] == ["ok"] * 4, [o.error for o in second]
        assert all(e._proc is proc for e, proc in started.items())  # none was replaced
    finally:
        executor.close()
    assert all(e._proc is None for e in executor.executors)
