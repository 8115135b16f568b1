"""Bad registration input is refused at suite validation (exit 2); NaN ends diverged."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bench.cli import main
from plugins.methods.registration.base import RegistrationMethod
from tests.plugins.registration._helpers import write_suite

pytestmark = pytest.mark.usefixtures("frozen_heap")

HERE = Path(__file__).parent


def _entry(**params):
    base = {"downsample": 4, "backend": "warp.eager", "method": "svf"}
    return {"task": "registration.pairwise", "params": {**base, **params}}


def _nifti(tmp_path, name, array, affine=None):
    path = tmp_path / name
    affine = np.eye(4) if affine is None else affine
    nib.save(nib.Nifti1Image(np.asarray(array, dtype=np.float32), affine), path)
    return str(path)


BAD = [
    ({"method": "lddmm", "method.steps": 0}, ("lddmm.steps", ">= 1")),
    ({"method.weight": 0.0}, ("svf.weight", "> 0")),
    ({"method": "implicit", "method.weight": -1.0}, ("implicit.weight",)),
    ({"similarity": "ssd"}, ("similarity", "'ssd'")),
    ({"window": 8}, ("window", "odd")),
    ({"backend": "svf_exp.eager"}, ("svf_exp.eager", "WarpBackend backends: warp.compile")),
    ({"backend": "sine_mlp.eager"}, ("sine_mlp.eager",)),
    ({"dim": 4}, ("dim",)),
    ({"method": "nodeo", "method.solver": "rk5000"}, ("rk5000", "unknown solver", "available:")),
]


def test_bad_parameters_exit_2(tmp_path, capsys):
    # one suite, one entry per mistake: validation lists every one of them (one CLI call
    # instead of a dozen keeps the test fast)
    from tests.plugins.registration._helpers import REGISTRY

    bad_file = tmp_path / "broken.nii.gz"
    bad_file.write_text("not a NIfTI")
    good = _nifti(tmp_path, "good.nii.gz", np.random.rand(20, 24, 1))
    cases = [*BAD, ({"fixed": good, "moving": str(bad_file)}, ("broken.nii.gz", "does not load"))]
    others = [
        n
        for n in REGISTRY.names("method")
        if not issubclass(REGISTRY.get("method", n), RegistrationMethod)
    ]
    if others:  # a method of another family (physics, ...) in the method slot
        cases.append(({"method": others[0]}, (others[0],)))
    path = write_suite(tmp_path / "bad.yaml", [_entry(**params) for params, _ in cases])
    assert main(["run", path, "--output", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    for i, (_, words) in enumerate(cases):
        assert f"benchmarks[{i}]" in err, err
        for word in words:
            assert word in err, (word, err)
    assert not (tmp_path / "out").exists()


def _nifti_sform(tmp_path, name, array, affine):
    """A NIfTI whose sform is ``affine`` as given (nibabel refuses to build an image from
    a NaN or singular affine: the header is written directly)."""
    image = nib.Nifti1Image(np.asarray(array, dtype=np.float32), None)
    image.header.set_qform(None, code=0)
    image.header["sform_code"] = 1
    for row, key in enumerate(("srow_x", "srow_y", "srow_z")):
        image.header[key] = affine[row]
    path = tmp_path / name
    nib.save(image, path)
    return str(path)


def test_hostile_user_images_are_refused_naming_file_and_what(tmp_path, capsys):
    """Issue 23: each of these passed validation and then crashed the method, failed at
    the end of the cell, ended diverged, or was silently taken as something else."""
    rng = np.random.default_rng(0)
    good = _nifti(tmp_path, "good.nii.gz", rng.random((20, 24, 1)))
    with_nan = rng.random((20, 24, 1))
    with_nan[1, 2, 0] = with_nan[3, 4, 0] = with_nan[5, 6, 0] = np.nan
    nan_affine = np.eye(4)
    nan_affine[0, 0] = np.nan
    zero_affine = np.diag([1.0, 0.0, 1.0, 1.0])
    cases = [
        # a 2-D series of 3 time points: squeezed, it was a 20 x 24 x 3 volume
        ({"fixed": _nifti(tmp_path, "series.nii.gz", rng.random((20, 24, 1, 3))),
          "moving": good}, ("series.nii.gz", "3 volumes along axis 3")),
        # 5 voxels along an axis: the method's pyramid had no level (AttributeError)
        ({"fixed": _nifti(tmp_path, "thin.nii.gz", rng.random((20, 5, 1))), "moving": good},
         ("thin.nii.gz", "5 voxels along axis 1", "at least 8")),
        # NaN and zero affines failed when the cell wrote its NIfTI results
        ({"fixed": good,
          "moving": _nifti_sform(tmp_path, "nanaff.nii.gz", rng.random((20, 24, 1)), nan_affine)},
         ("nanaff.nii.gz", "affine with NaN")),
        ({"fixed": _nifti_sform(tmp_path, "flat.nii.gz", rng.random((20, 24, 1)), zero_affine),
          "moving": good}, ("flat.nii.gz", "singular affine", "axis 1")),
        ({"fixed": _nifti(tmp_path, "holes.nii.gz", with_nan), "moving": good},
         ("holes.nii.gz", "3 NaN voxels")),
        ({"fixed": good, "moving": good, "amplitude": float("inf")},
         ("amplitude", "must be a finite number, got inf")),
        # dim 3 with 2-D files was ignored: a 2-D registration ran
        ({"fixed": good, "moving": good, "dim": 3}, ("dim is 3", "good.nii.gz", "2-D")),
        ({"fixed": good, "moving": good,
          "fixed_labels": _nifti(tmp_path, "huge.nii.gz", np.full((20, 24, 1), 2.0**31)),
          "moving_labels": _nifti(tmp_path, "one.nii.gz", np.ones((20, 24, 1)))},
         ("huge.nii.gz", "label 2147483648")),
    ]  # fmt: skip
    path = write_suite(tmp_path / "bad.yaml", [_entry(**params) for params, _ in cases])
    assert main(["run", path, "--output", str(tmp_path / "out"), "--quiet"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    for i, (_, words) in enumerate(cases):
        assert f"benchmarks[{i}]" in err, err
        for word in words:
            assert word in err, (word, err)
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_user_labels_are_read_without_wrapping_and_4d_singletons_are_3d(tmp_path):
    """Labels were int16: 70000 became 4464 (reported as dice_4464). A 4-D file with
    one volume is its 3-D image."""
    from plugins.data.registration import load_nifti_pair
    from plugins.tasks.registration import metrics as m

    rng = np.random.default_rng(0)
    image = _nifti(tmp_path, "v.nii.gz", rng.random((10, 12, 9, 1)))
    labels = np.zeros((10, 12, 9), dtype=np.int32)
    labels[2:6, 3:8, 2:7] = 70000
    labels[6:9, 3:8, 2:7] = 3
    path = tmp_path / "l.nii.gz"
    nib.save(nib.Nifti1Image(labels, np.eye(4)), path)
    pair = load_nifti_pair(image, image, str(path), str(path))
    assert pair.fixed.data.shape == (10, 12, 9)
    assert sorted(np.unique(pair.fixed.labels)) == [0, 3, 70000]
    assert sorted(m.dice_per_label(pair.fixed.labels, pair.moving.labels)) == [3, 70000]


def _folder(tmp_path, name, **arrays):
    folder = tmp_path / name
    folder.mkdir()
    for key, array in arrays.items():
        _nifti(folder, f"{key}.nii.gz", array)
    return str(folder)


def test_mismatched_pair_folders_exit_2(tmp_path, capsys):
    img, other = np.random.rand(20, 24, 1), np.random.rand(20, 22, 1)
    lab = np.ones((20, 22))
    empty = tmp_path / "empty"
    empty.mkdir()
    folders = [
        (_folder(tmp_path, "shapes", fixed=img, moving=other), ("shape", "resample")),
        (_folder(tmp_path, "dims", fixed=img, moving=np.random.rand(20, 24, 8)), ("2-D and",)),
        (
            _folder(tmp_path, "labels", fixed=img, moving=img, fixed_labels=lab, moving_labels=lab),
            ("fixed_labels", "must match"),
        ),
        (str(empty), ("no fixed.nii.gz",)),
    ]
    path = write_suite(tmp_path / "bad.yaml", [_entry(folder=f) for f, _ in folders])
    assert main(["run", path, "--output", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    for i, (_, words) in enumerate(folders):
        assert f"benchmarks[{i}]" in err
        for word in words:
            assert word in err, (word, err)


def test_mismatched_separate_paths_are_refused_by_resolve_params(tmp_path):
    # bench/suite.py does not yet turn a ParamError from Task.resolve_params into exit 2
    # (asked of the lead); the check itself is tested here, the folder route above.
    from bench import ParamError
    from tests.plugins.registration._helpers import REGISTRY

    task = REGISTRY.get("task", "registration.pairwise")
    a = _nifti(tmp_path, "a.nii.gz", np.random.rand(20, 24, 1))
    b = _nifti(tmp_path, "b.nii.gz", np.random.rand(20, 22, 1))
    lab = _nifti(tmp_path, "lab.nii.gz", np.ones((20, 22)))
    with pytest.raises(ParamError, match="shape"):
        task.resolve_params({"fixed": a, "moving": b})
    with pytest.raises(ParamError, match="must match"):
        task.resolve_params({"fixed": a, "moving": a, "fixed_labels": lab, "moving_labels": lab})
    with pytest.raises(ParamError, match="both fixed and moving"):
        task.resolve_params({"fixed": a})


@pytest.mark.slow
def test_user_nifti_pair_runs(tmp_path):
    from plugins.data.registration import make_pair

    pair = make_pair(2, downsample=4, seed=3)
    (tmp_path / "pair").mkdir()
    files = {
        name: _nifti(tmp_path / "pair", f"{name}.nii.gz", array[:, :, None])
        for name, array in {
            "fixed": pair.fixed.data,
            "moving": pair.moving.data,
            "fixed_labels": pair.fixed.labels,
            "moving_labels": pair.moving.labels,
        }.items()
    }
    entry = _entry(**files, **{"method.iterations": 30})
    by_folder = _entry(
        folder=str(tmp_path / "pair"), **{"method": "displacement", "method.iterations": 30}
    )
    path = write_suite(tmp_path / "user.yaml", [entry, by_folder])
    assert main(["run", path, "--output", str(tmp_path / "out"), "--quiet"]) == 0
    cells = pd.read_parquet(next((tmp_path / "out").glob("*/*/cells.parquet")))
    assert cells.status.tolist() == ["ok", "ok"]
    assert (cells["metric.dice"] > cells["metric.dice_before"]).all()
    assert "metric.error_mm" not in cells or cells["metric.error_mm"].isna().all()


def test_a_label_on_one_side_only_is_counted_and_hd95_stays_finite(tmp_path):
    from plugins.data.registration import make_pair
    from tests.plugins.registration._helpers import run_pairwise

    pair = make_pair(2, downsample=4, seed=3)
    fixed_labels = pair.fixed.labels.copy()
    fixed_labels[:3, :3] = 7  # a structure the moving subject's labels do not have
    files = {
        name: _nifti(tmp_path, f"{name}.nii.gz", array[:, :, None])
        for name, array in {
            "fixed": pair.fixed.data,
            "moving": pair.moving.data,
            "fixed_labels": fixed_labels,
            "moving_labels": pair.moving.labels,
        }.items()
    }
    ctx = run_pairwise("displacement", tmp_path, task=files, iterations=5)
    metrics = ctx.metrics
    assert metrics["labels_missing"] == metrics["labels_missing_before"] == 1
    assert np.isfinite(metrics["hd95"]) and np.isfinite(metrics["hd95_before"])
    assert metrics["dice_7"] == 0.0
    # a non-finite metric ends the cell diverged: it was "non-finite metric: hd95=inf"
    assert all(np.isfinite(value) for value in metrics.values())


def test_nan_loss_ends_diverged_keeping_the_curve(tmp_path):
    entry = _entry(method="test.nan_after_five")
    path = write_suite(tmp_path / "nan.yaml", [entry], plugins=[str(HERE / "nan_method.py")])
    args = ["run", path, "--output", str(tmp_path / "out"), "--quiet", "--in-process"]
    assert main(args) in (0, 1)
    run = next((tmp_path / "out").glob("*/*/"))
    cells = pd.read_parquet(run / "cells.parquet")
    assert cells.status.tolist() == ["diverged"]
    curves = pd.read_parquet(run / "curves.parquet")
    assert len(curves) >= 2 and curves.value.isna().iloc[-1]


def test_a_displacement_of_the_wrong_shape_ends_the_cell_naming_the_method(tmp_path):
    """A user's method returning its field channels-last failed deep inside the warp (or
    broadcast into wrong scores); the cell ends error, naming the method and the shape
    the task takes."""
    entry = _entry(method="test.channels_last")
    path = write_suite(tmp_path / "cl.yaml", [entry], plugins=[str(HERE / "nan_method.py")])
    args = ["run", path, "--output", str(tmp_path / "out"), "--quiet", "--in-process"]
    assert main(args) in (0, 1)
    run = next((tmp_path / "out").glob("*/*/"))
    (cell,) = pd.read_parquet(run / "cells.parquet").to_dict("records")
    assert cell["status"] == "error"
    assert "method test.channels_last: Result.disp is (1, " in cell["error"]
    assert "not a floating tensor of (1, ndim, *S) = (1, 2, " in cell["error"]


def test_a_solve_that_returns_no_result_ends_the_cell_naming_the_method(tmp_path):
    """A bare tensor (or None) from solve ended in "AttributeError: 'Tensor' object has
    no attribute 'check' (at pairwise.py:384)", naming neither the method nor the rule."""
    entry = _entry(method="test.bare_tensor")
    path = write_suite(tmp_path / "bt.yaml", [entry], plugins=[str(HERE / "nan_method.py")])
    args = ["run", path, "--output", str(tmp_path / "out"), "--quiet", "--in-process"]
    assert main(args) in (0, 1)
    run = next((tmp_path / "out").glob("*/*/"))
    (cell,) = pd.read_parquet(run / "cells.parquet").to_dict("records")
    assert cell["status"] == "error"
    assert (
        "test.bare_tensor.solve returned Tensor, not a Result: a registration method"
        in (cell["error"])
    )


def test_displacement_nifti_is_an_ants_warp_in_lps_mm(tmp_path):
    """A user 3-D pair whose affine permutes and flips axes (array axis 0 runs along
    world -y at 2 mm, axis 1 along +x at 3 mm, axis 2 along +z at 2.5 mm): the moving
    blob is the fixed one moved +1 voxel along array axis 0, so the map from fixed to
    moving is u = +1 voxel along that axis: (0, -2, 0) mm in nibabel's RAS world,
    (0, +2, 0) in ITK's LPS frame, which is how ANTs stores a warp (5-D, intent
    "vector"). Read back: the file carries that (the registration recovers 92% of it);
    and where antspyx is installed, ANTs itself resampling the moving image through our
    file gives our warped image."""
    n = 16
    i, j, k = np.meshgrid(*(np.arange(n, dtype=np.float64),) * 3, indexing="ij")

    def blob(ci):
        return np.exp(-((i - ci) ** 2 / 8 + (j - 7.5) ** 2 / 12 + (k - 7.5) ** 2 / 10))

    affine = np.array(
        [[0.0, 3.0, 0.0, 30.0], [-2.0, 0.0, 0.0, -20.0], [0.0, 0.0, 2.5, -15.0], [0, 0, 0, 1]]
    )
    paths = {
        name: _nifti(tmp_path, f"{name}.nii.gz", array, affine)
        for name, array in {"fixed": blob(7.5), "moving": blob(8.5)}.items()
    }
    entry = {"task": "registration.pairwise", "params": {
        **paths, "backend": "warp.eager", "method": "displacement", "similarity": "mse",
        "method.iterations": 150, "method.levels": 1}}  # fmt: skip
    path = write_suite(tmp_path / "world.yaml", [entry])
    assert main(["run", path, "--output", str(tmp_path / "out"), "--quiet"]) == 0
    (disp_path,) = (tmp_path / "out").rglob("displacement.nii.gz")
    image = nib.load(disp_path)
    assert image.header.get_intent()[0] == "vector"
    assert image.shape == (n, n, n, 1, 3)
    np.testing.assert_allclose(image.affine, affine, atol=1e-6)
    field = np.asarray(image.dataobj)[:, :, :, 0, :]
    core = blob(8.0) > 0.5
    median = np.median(field[core], axis=0)
    # +1 voxel along array axis 0 = +2 mm along LPS y (a transposed or RAS file fails)
    assert 1.6 < median[1] < 2.4, median
    assert abs(median[0]) < 0.3 and abs(median[2]) < 0.3, median
    try:
        import ants
    except ImportError:
        return
    (warped_path,) = (tmp_path / "out").rglob("warped.nii.gz")
    ours = np.asarray(nib.load(warped_path).dataobj)
    by_ants = ants.apply_transforms(
        ants.image_read(paths["fixed"]), ants.image_read(paths["moving"]), [str(disp_path)]
    ).numpy()
    inside = blob(7.5) > 0.1
    # The task scales intensities (99th percentile of each image to 1), ANTs keeps the
    # file's: one factor between them, then both are linear interpolation of the same
    # map (measured 8e-7 apart; a file in RAS, or transposed, reads 0.3 and more).
    scale = float((ours * by_ants)[inside].sum() / (by_ants * by_ants)[inside].sum())
    assert np.abs(scale * by_ants - ours)[inside].max() < 1e-4


def test_a_slice_stored_with_a_singleton_middle_axis_keeps_its_spacing(tmp_path):
    """A coronal slice stored as (X, 1, Z) with 2 x 3 x 4 mm voxels is registered as the
    2-D (X, Z) image: its spacing is (2, 4) mm, and the affine's first two columns are
    the kept axes', so that (i, k) still lands where the file says in world mm."""
    from plugins.data.registration import load_nifti_pair

    affine = np.diag([2.0, 3.0, 4.0, 1.0])
    affine[:3, 3] = [-10.0, 5.0, 7.0]
    data = np.random.default_rng(0).uniform(size=(12, 1, 9))
    a = _nifti(tmp_path, "a.nii.gz", data, affine)
    pair = load_nifti_pair(a, a)
    assert pair.fixed.data.shape == (12, 9)
    assert pair.fixed.spacing == (2.0, 4.0)
    i, k = 5, 7
    world = pair.fixed.affine @ np.array([i, k, 0, 1.0])
    np.testing.assert_allclose(world, affine @ np.array([i, 0, k, 1.0]))
