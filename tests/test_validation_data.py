"""A tuned entry chooses on data its reported cells are not scored on: a task that
scores every seed on the same data says so (``Task.validation_data``), and the suite is
refused before anything runs unless it chooses by a validation metric measured on a
split the reported metrics never see (``Headline.validation``)."""

from __future__ import annotations

import pytest
import yaml

from bench.suite import SuiteError, load_suite
from bench.testing import default_registry

REGISTRY = default_registry()


def _load(tmp_path, entry):
    path = tmp_path / "s.yaml"
    suite = {"suite": "s", "seeds": [0, 1], "benchmarks": [entry]}
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return load_suite(path, REGISTRY)


def _refused(tmp_path, entry) -> str:
    with pytest.raises(SuiteError) as info:
        _load(tmp_path, entry)
    return str(info.value)


TUNE = {"validation_seeds": [100, 101]}


def test_a_deterministic_problem_cannot_be_tuned_on_other_seeds(tmp_path):
    text = _refused(tmp_path, {
        "task": "ode.harmonic", "matrix": {"solver": ["rk4"]},
        "tune": {**TUNE, "grid": {"solver.step_size": [0.1, 0.05]}},
    })  # fmt: skip
    assert "benchmarks[0].tune.select: 'final_rel_error' would choose on the reported data" in text
    assert "ode.harmonic (solver='rk4') solves the same problem for every seed" in text
    assert "sweep the values in matrix instead: every setting is then reported" in text


def test_burgers_chooses_by_its_off_grid_validation_points(tmp_path):
    entry = {"task": "physics.burgers", "params": {"method": "pinn"},
             "tune": {**TUNE, "grid": {"method.lr": [1e-3, 1e-2]}}}  # fmt: skip
    suite = _load(tmp_path, entry)  # the default select is the validation metric
    (tuning,) = suite.tunings
    assert (tuning.rule.select, tuning.rule.better) == ("val_rel_l2", "lower")
    entry["tune"]["select"] = "rel_l2"  # the reported grid's own error
    text = _refused(tmp_path, entry)
    assert "scores every seed on the same 256 x 100 grid against the same exact solution" in text
    assert "choose by a validation metric it records (val_rel_l2)" in text


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"task": "classify.digits", "params": {"architecture": "resnet"}},
         "splits the same 1,797 images anew for every seed"),
        ({"task": "synthesis.t1_to_t2", "params": {"architecture": "revnet"},
          "select": "val_psnr_t1_to_t2"},
         "data: simulated has no validation split"),
        ({"task": "fields.image_fit", "params": {"encoding": "siren"}},
         "fits and scores the same target for every seed"),
        ({"task": "physics.burgers_reconstruct", "params": {"method": "diffphys"}},
         "reconstructs the same trajectory"),
        ({"task": "ode.neural_ode_fit", "params": {"solver": "rk4"}},
         "fits and scores the same spiral trajectory for every seed"),
    ],
)  # fmt: skip
def test_tasks_scoring_every_seed_on_the_same_data_refuse_tuning(tmp_path, entry, reason):
    select = entry.pop("select", None)
    slot = next(iter(entry["params"]))
    tune = {**TUNE, "grid": {f"{slot}.lr" if slot != "architecture" else "lr": [0.1, 0.01]}}
    if slot in ("encoding", "solver"):
        tune["grid"] = {"lr": [1e-3, 1e-4]}
    if select:
        tune["select"] = select
    assert reason in _refused(tmp_path, {**entry, "tune": tune})


def test_data_apart_by_seed_is_tuned_as_before(tmp_path):
    suite = _load(tmp_path, {
        "task": "synthesis.t1_to_t2", "params": {"architecture": "revnet", "data": "icbm"},
        "tune": {**TUNE, "grid": {"lr": [1e-3, 1e-2]}},
    })  # fmt: skip
    # the validation slab's mean of the two directions the reversible model trains
    assert suite.tunings[0].rule.select == "val_psnr_mean"
    suite = _load(tmp_path, {
        "task": "registration.pairwise", "params": {"method": "svf"},
        "tune": {**TUNE, "grid": "declared", "select": "dice"},
    })  # fmt: skip
    assert suite.tunings and suite.tunings[0].rule.select == "dice"
    import nibabel as nib
    import numpy as np

    image = tmp_path / "image.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((16, 16, 1), np.float32), np.eye(4)), image)
    text = _refused(tmp_path, {
        "task": "registration.pairwise",
        "params": {"method": "svf", "fixed": str(image), "moving": str(image)},
        "tune": {**TUNE, "grid": "declared", "select": "dice"},
    })  # fmt: skip
    assert "registers the same given pair (fixed, moving) for every seed" in text


def test_validation_params_tune_on_other_data(tmp_path):
    """A task that scores every seed on one image can be tuned on another: the
    validation cells run with `validation_params` (a problem parameter: other data), the
    reported cells with the entry's own; run.json's record says which."""
    entry = {"task": "fields.image_fit", "params": {"encoding": "siren", "size": 16},
             "tune": {**TUNE, "grid": {"lr": [1e-3, 1e-4]},
                      "validation_params": {"image": "moon"}}}  # fmt: skip
    suite = _load(tmp_path, entry)
    (tuning,) = suite.tunings
    assert {c.task_params["image"] for cs in tuning.validation for c in cs} == {"moon"}
    assert {c.task_params["image"] for cs in tuning.test for c in cs} == {"camera"}
    assert tuning.record({})["validation_params"] == {"image": "moon"}
    from bench.tuned import choices

    (choice,) = choices({"tuning": [tuning.record({})]})
    assert choice.validation_params == "image=moon"  # what show and the report say
    entry["tune"]["validation_params"] = {"image": "moon", "lr": 0.1}  # the grid's own key
    assert "lr set both in the grid and validation_params" in _refused(tmp_path, entry)
    entry["tune"]["validation_params"] = {"steps": 10}  # not a problem parameter: same data
    text = _refused(tmp_path, entry)
    assert "fits and scores the same target for every seed" in text
    # the refusal offers the way out (the audit found only "sweep in matrix" offered)
    assert "; tune on other data (tune: validation_params: another image); or sweep" in text
    entry["tune"]["validation_params"] = {"encoding.width": 8, "imag": "x"}
    text = _refused(tmp_path, entry)
    assert "tune.validation_params.encoding.width" in text and "a component's are" in text
    assert "tune.validation_params.imag" in text


@pytest.mark.parametrize(
    ("task", "params", "instead", "data"),
    [
        # the audit's: the test image itself, its luminance, a held-out share, another size
        ("fields.image_fit", {"encoding": "siren", "size": 16}, {"image": "camera"}, "image"),
        ("fields.image_fit", {"encoding": "siren", "size": 16}, {"color": "luminance"},
         "image"),
        ("fields.image_fit", {"encoding": "siren", "size": 16}, {"holdout": True}, "image"),
        ("fields.image_fit", {"encoding": "siren", "size": 16}, {"size": 15}, "image"),
        ("fields.volume_fit", {"encoding": "siren", "downsample": 4}, {"downsample": 8},
         "image"),
        ("ode.harmonic", {"solver": "rk4"}, {"t1": 5.0}, "omega"),
        ("physics.burgers_reconstruct", {"method": "diffphys"}, {"observe_step": 8}, "nu"),
    ],
)  # fmt: skip
def test_validation_params_that_keep_the_data_are_refused(tmp_path, task, params, instead, data):
    """`validation_params` naming a problem parameter was taken for other data whatever
    its value: the cameraman validated the cameraman (or every other pixel of it, or it
    at 15 px), and the reported cells were chosen on what they report. The task's
    data_params say which parameters pose other data; one of them must change."""
    grid = {"lr": [1e-3, 1e-4]}
    if "solver" in params:
        grid = {"solver.step_size": [0.1, 0.05]}
    elif "method" in params:
        grid = {"method.lr": [0.1, 0.01]}
    entry = {"task": task, "params": params,
             "tune": {**TUNE, "grid": grid, "validation_params": instead}}  # fmt: skip
    text = _refused(tmp_path, entry)
    assert "benchmarks[0].tune.validation_params: {" in text
    assert f"would choose on the reported data: the data of {task} is set by {data}" in text


def test_validation_params_on_other_data_pass_and_one_data_set_is_said(tmp_path):
    for task, params, instead, grid in [
        ("ode.harmonic", {"solver": "rk4"}, {"omega": 2.0}, {"solver.step_size": [0.1, 0.05]}),
        ("physics.burgers", {"method": "pinn"}, {"nu": 0.01}, {"method.lr": [1e-3, 1e-2]}),
        ("fields.image_fit", {"encoding": "siren", "size": 16}, {"image": "moon", "size": 15},
         {"lr": [1e-3, 1e-4]}),
    ]:  # fmt: skip
        entry = {"task": task, "params": params,
                 "tune": {**TUNE, "grid": grid, "validation_params": instead}}  # fmt: skip
        assert len(_load(tmp_path, entry).tunings) == 1, task
    text = _refused(tmp_path, {
        "task": "fields.occupancy", "params": {"encoding": "relu"},
        "tune": {**TUNE, "grid": {"lr": [1e-3, 1e-2]}, "validation_params": {"downsample": 2}},
    })  # fmt: skip
    assert "fields.occupancy has one data set: no parameter poses other data" in text


def test_validation_params_beside_a_validation_split_or_new_data_per_seed_pass(tmp_path):
    """The other-data rule applies where choosing on the entry's own parameters would
    choose on the reported data: a review found it refusing burgers tuned by its
    off-grid val_rel_l2 with validation_params {nx: 128}, digits by val_accuracy on its
    held-out images with {epochs: 5}, and synthetic registration pairs (a new pair per
    seed) with {training_pairs: 8}, all accepted before."""
    for task, params, grid, instead in [
        ("physics.burgers", {"method": "pinn"}, {"method.lr": [1e-3, 1e-2]}, {"nx": 128}),
        ("classify.digits", {"architecture": "resnet", "validation_images": 300},
         {"lr": [1e-3, 1e-2]}, {"epochs": 5}),
        ("registration.pairwise", {"method": "svf", "downsample": 4},
         {"method.lr": [0.05, 0.1]}, {"downsample": 3}),
    ]:  # fmt: skip
        entry = {"task": task, "params": params,
                 "tune": {**TUNE, "grid": grid, "validation_params": instead}}  # fmt: skip
        assert len(_load(tmp_path, entry).tunings) == 1, task
    # a given pair is the data: its downsample is the same pair, seen coarser
    import nibabel as nib
    import numpy as np

    for name in ("f.nii.gz", "m.nii.gz"):
        image = np.random.default_rng(0).random((12, 12, 12)).astype(np.float32)
        nib.save(nib.Nifti1Image(image, np.eye(4)), tmp_path / name)
    pair = {"task": "registration.pairwise",
            "params": {"method": "svf", "fixed": str(tmp_path / "f.nii.gz"),
                       "moving": str(tmp_path / "m.nii.gz")},
            "tune": {**TUNE, "grid": {"method.lr": [0.05, 0.1]},
                     "validation_params": {"downsample": 3}}}  # fmt: skip
    text = _refused(tmp_path, pair)
    assert "the data of registration.pairwise is set by fixed, moving, folder" in text


def test_a_validation_data_hook_that_raises_is_named(tmp_path, monkeypatch):
    """With validation_params on a problem parameter the resolver never asks the hook,
    and its exception was swallowed as 'same data' (a review): it is one error, named."""
    from plugins.tasks.fields.image import ImageFit

    def broken(cls, params, select):
        raise KeyError("oops")

    monkeypatch.setattr(ImageFit, "validation_data", classmethod(broken))
    entry = {"task": "fields.image_fit", "params": {"encoding": "siren", "size": 16},
             "tune": {**TUNE, "grid": {"lr": [1e-3, 1e-4]},
                      "validation_params": {"image": "moon"}}}  # fmt: skip
    text = _refused(tmp_path, entry)
    assert "benchmarks[0].tune: fields.image_fit.validation_data raised KeyError: 'oops'" in text
