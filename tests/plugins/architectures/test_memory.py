"""memory.depth: saved activations counted exactly; flat for RevNet and the adjoint."""

from __future__ import annotations

import pytest

from tests.plugins.architectures._run import run_cell

pytestmark = pytest.mark.usefixtures("frozen_heap")

BATCH, WIDTH = 32, 8


def _cell(tmp_path, name: str, depth: int, **values):
    arch = (name, {"depth": depth, "width": WIDTH, "hidden": 8, **values})
    return run_cell("memory.depth", {"architecture": arch}, tmp_path, batch=BATCH)


def test_resnet_saved_activations_grow_linearly(tmp_path) -> None:
    saved = [_cell(tmp_path, "resnet", d).metrics["saved_activation_bytes"] for d in (2, 4, 8)]
    # every block saves the same tensors: bytes = a + b depth exactly
    assert saved[2] - saved[1] == 2 * (saved[1] - saved[0]) > 0


def test_revnet_saves_only_its_output(tmp_path) -> None:
    for depth in (2, 16):
        m = _cell(tmp_path, "revnet", depth).metrics
        # the (batch, width) float32 output, plus mean(y^2)'s saved input (the same
        # storage: counted once)
        assert m["saved_activation_bytes"] == BATCH * WIDTH * 4
        assert m["saved_parameter_bytes"] == 0


@pytest.mark.parametrize(("adjoint", "flat"), [(True, True), (False, False)])
def test_node_adjoint_flat_direct_grows(tmp_path, adjoint, flat) -> None:
    saved = [
        _cell(tmp_path, "node", d, adjoint=adjoint).metrics["saved_activation_bytes"]
        for d in (4, 16)
    ]
    assert (saved[0] == saved[1]) is flat
    if not flat:
        assert saved[1] > 3 * saved[0]  # rk4 keeps every stage of every step


def test_peak_allocated_flat_for_revnet_beyond_gradients(tmp_path) -> None:
    peaks = [_cell(tmp_path, "revnet", d).metrics["peak_beyond_gradients"] for d in (4, 32)]
    # one block's recomputation at a time: the same at any depth, up to the small
    # tensors autograd allocates per block (a few hundred bytes); 10% is the bar
    assert abs(peaks[1] - peaks[0]) <= 0.1 * peaks[0]
    record = _cell(tmp_path, "resnet", 8)
    assert record.times["step"] and "step" in record.memory


def test_peak_beyond_gradients_never_reads_below_the_forward_peak(tmp_path) -> None:
    """Where the step's peak is the forward pass's, before any gradient exists, taking
    every gradient off it read below what was live (resnet at depth 128: 7.35 MB against
    its 8.42 MB of saved activations), favouring a model for having more parameters (a
    user audit). The forward's own peak bounds it from below, and it holds the saved
    activations themselves."""
    m = _cell(tmp_path, "resnet", 32).metrics
    assert m["peak_forward_bytes"] >= m["saved_activation_bytes"]  # they are live then
    assert m["peak_beyond_gradients"] == max(
        m["peak_forward_bytes"], m["peak_allocated_bytes"] - m["parameter_bytes"]
    )
    assert "peak_minus_gradients" not in m  # the old definition's name, not reused
