"""Every registration method is tuned alike (issue 20, item 3): each declares a grid of
exactly 8 settings, centred on its defaults, whose every value its own parameter
check accepts."""

from __future__ import annotations

import math

import pytest

from bench.testing import PluginCheckError, check_plugin, default_registry
from bench.tuning import settings_of
from plugins.methods.registration.base import RegistrationMethod
from plugins.methods.registration.classical import SVF

pytestmark = pytest.mark.usefixtures("frozen_heap")

SETTINGS = 8  # every method the same number, so a tuned suite's equal_size holds


def _methods() -> list[type]:
    registry = default_registry()
    found = []
    for name in registry.fitting(RegistrationMethod):
        found.append(registry.lookup(RegistrationMethod, name))
    return found


METHODS = _methods()


def test_the_registered_methods_include_every_built_in_one():
    # a method missing here would escape the grid checks below
    names = {cls.name for cls in METHODS}
    assert {"displacement", "svf", "lddmm", "implicit", "nodeo", "voxelmorph", "syn"} <= names


@pytest.mark.parametrize("cls", METHODS, ids=lambda c: c.name)
def test_every_method_declares_8_settings_its_own_check_accepts(cls):
    assert len(settings_of(dict(cls.tuning))) == SETTINGS, cls.tuning
    check_plugin(cls)  # each tuned value through its Param's own validation


def _numbers(value) -> list[float]:
    return [float(x) for x in value] if isinstance(value, list) else [float(value)]


@pytest.mark.parametrize("cls", METHODS, ids=lambda c: c.name)
def test_every_grid_brackets_the_defaults(cls):
    """The default of each tuned parameter lies strictly between the grid's values
    (per level for a list of iterations): the grid is centred on today's setting, not
    moved to one side of it."""
    for key, values in cls.tuning.items():
        default = _numbers(cls.params[key].default)
        tried = [_numbers(v) for v in values]
        for i, d in enumerate(default):
            level = [t[i] for t in tried]
            assert min(level) < d < max(level), (cls.name, key, values, d)


def test_the_adam_grids_are_centred_geometrically_and_arithmetically():
    # the rule adam_tuning states: rates and weights halved and doubled (geometric mean
    # the default, exactly: halving and doubling are exact in binary floating point),
    # iterations a third below and above (arithmetic mean the default)
    assert SVF.tuning == {"iterations": [100, 200], "lr": [0.05, 0.2], "weight": [0.5, 2.0]}
    for cls in METHODS:
        if cls.name == "syn" or "lr" not in cls.tuning:
            continue
        for key in ("lr", "weight"):
            if key not in cls.tuning:  # the peers tune a step but have no "weight"
                continue
            low, high = cls.tuning[key]
            assert math.sqrt(low * high) == pytest.approx(cls.params[key].default, rel=1e-12)


def test_a_grid_value_the_parameter_refuses_fails_the_plugin_check():
    class Wrong(SVF):
        """svf with a learning rate its own check refuses."""

        name = "svf_wrong_grid"
        tuning = {"lr": [0.1, -0.1]}

    with pytest.raises(PluginCheckError, match="tuning 'lr': -0.1 is refused"):
        check_plugin(Wrong)


def test_a_tuned_suite_of_every_method_expands_8_settings_each(tmp_path):
    """The harness's own expansion agrees: a tuned entry over all the methods has 8
    settings per configuration and passes equal_size."""
    suite = tmp_path / "tuned.yaml"
    names = ", ".join(cls.name for cls in METHODS)
    suite.write_text(
        "suite: tuned\ndevice: cpu\nrepeats: 1\nbenchmarks:\n"
        "  - task: registration.pairwise\n"
        f"    matrix: {{method: [{names}]}}\n"
        "    seeds: [0]\n"
        "    tune: {grid: declared, validation_seeds: [100]}\n"
    )
    from bench.suite import load_suite

    loaded = load_suite(suite)
    assert {len(t.settings) for t in loaded.tunings} == {SETTINGS}
    assert len(loaded.tunings) == len(METHODS)
