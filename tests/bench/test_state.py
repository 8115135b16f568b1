"""Process-wide state one cell changes is put back before the next cell of the worker
(bench.state): each item alone in this process, and all of them in one reused worker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import Registry, get_plugin_manager
from bench.executors import ProcessExecutor
from bench.plugins import load_plugin
from bench.results import load_run
from bench.runner import run_suite
from bench.state import ProcessState
from bench.suite import load_suite
from bench.worker import run_cell

pytestmark = pytest.mark.usefixtures("frozen_heap")

STATE_PLUGINS = str(Path(__file__).parent / "fixtures" / "state_plugins.py")
ITEMS = list(load_plugin(STATE_PLUGINS).ITEMS)


def _suite(tmp_path: Path, items: list[str]) -> Path:
    path = tmp_path / "state.yaml"
    path.write_text(
        f"suite: state\ndevice: cpu\nrepeats: 1\nplugins: [{STATE_PLUGINS}]\nbenchmarks:\n"
        + "".join(f"  - task: test.changes_state\n    params: {{item: '{i}'}}\n" for i in items)
    )
    return path


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry(get_plugin_manager([STATE_PLUGINS], builtins=False))


@pytest.mark.parametrize("item", ITEMS)
def test_a_cell_that_changes_it_leaves_the_next_cell_the_default(tmp_path, registry, item):
    outer = ProcessState.capture()  # the next test's guard, if the code under test fails
    try:
        cells = load_suite(_suite(tmp_path, [item, ""]), registry).cells
        before, after = (run_cell(cell, registry) for cell in cells)
        assert before.status == after.status == "ok", (before.error, after.error)
        assert before.row["metric.changed"] == 0.0  # nothing leaked into this test
        assert after.row[f"metric.changed.{item}"] == 0.0, f"{item} leaked into the next cell"
        assert after.row["metric.changed"] == 0.0
    finally:
        outer.restore()


def test_every_item_is_put_back_in_a_reused_worker(tmp_path, registry):
    suite = load_suite(_suite(tmp_path, [*ITEMS, ""]), registry)
    executor = ProcessExecutor(suite.plugins, suite.base_dir, builtins=False)
    run_suite(suite, tmp_path / "run", executor=executor)
    cells = load_run(tmp_path / "run").cells
    assert set(cells["status"]) == {"ok"}, cells["error"].tolist()
    assert cells["metric.pid"].nunique() == 1  # one worker ran every cell
    changed = cells.filter(like="metric.changed.").sum()
    assert changed[changed > 0].to_dict() == {}
    assert os.getpid() not in set(cells["metric.pid"])


def test_a_setting_that_cannot_be_read_or_set_does_not_stop_the_restore():
    import torch

    if not hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        pytest.skip("this torch has no fp32_precision settings")
    state = ProcessState.capture()
    torch.backends.cuda.matmul.fp32_precision = "tf32"  # the legacy allow_tf32 cannot be read
    torch.set_default_dtype(torch.float64)
    changed = state.restore()
    assert "torch.default_dtype" in changed and torch.get_default_dtype() == torch.float32
    assert torch.backends.cuda.matmul.fp32_precision == "none"
    assert not torch.backends.cuda.matmul.allow_tf32
