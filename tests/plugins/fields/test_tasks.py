"""The fields tasks end to end through the harness (tiny sizes), and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from bench.cli import main
from bench.suite import SuiteError, load_suite

pytestmark = pytest.mark.usefixtures("frozen_heap")

ROOT = Path(__file__).resolve().parents[3]
QUICK = ROOT / "suites" / "fields-quick.yaml"


def _run(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(data))
    # in this process: what these tests check is the tasks' (a worker's start, 2-3 s a
    # run, is the harness tests' business)
    args = ["run", str(path), "--output", str(tmp_path / "out"), "--quiet", "--in-process"]
    assert main(args) == 0
    (run,) = (tmp_path / "out" / data["suite"]).iterdir()
    return run


def _suite(*benchmarks: dict, name: str = "t") -> dict:
    return {"suite": name, "device": "cpu", "repeats": 1, "warmup": 0, "threads": 1,
            "benchmarks": list(benchmarks)}  # fmt: skip


def _shrink(entry: dict) -> dict:
    """The shipped entry at a tiny size: the same tasks, encodings and options."""
    p = dict(entry["params"])
    p.update(steps=4, eval_every=2)
    if entry["task"] in ("fields.image_fit", "fields.poisson", "fields.multires"):
        p["size"] = 16
    if entry["task"] in ("fields.volume_fit", "fields.occupancy"):
        p.update(downsample=8, batch=256)
    if p.get("encoding") != "hashgrid" and "encoding.width" in p:
        p["encoding.width"] = 16
    return {**entry, "params": p}


def test_quick_suite_runs_at_tiny_size_and_keeps_pictures(tmp_path):
    data = yaml.safe_load(QUICK.read_text())
    data.update(repeats=1, warmup=0, device="cpu")
    data["benchmarks"] = [_shrink(e) for e in data["benchmarks"]]
    run = _run(tmp_path, data)
    cells = pd.read_parquet(run / "cells.parquet")
    assert (cells["status"] == "ok").all(), cells[["task", "encoding", "status", "error"]]
    assert set(cells["task"]) == {
        "fields.image_fit", "fields.poisson", "fields.multires",
        "fields.volume_fit", "fields.occupancy",
    }  # fmt: skip
    assert set(cells["encoding"]) == {"relu", "positional", "fourier", "siren", "bacon", "hashgrid"}
    wanted = ["metric.psnr", "metric.params", "metric.compression_ratio"]
    wanted += ["metric.eval_points_per_s", "time.fit.median", "metric.steps_per_s"]
    assert set(wanted) <= set(cells.columns)
    fits = cells[cells["task"] == "fields.image_fit"]
    assert fits["metric.ssim"].notna().all() and fits["metric.psnr"].notna().all()
    # the siren cell ran through the backend, the others did not
    used = dict(zip(fits["encoding"], fits["metric.sine_backend_used"]))
    assert used["siren"] == 1 and used["relu"] == 0
    curves = pd.read_parquet(run / "curves.parquet")
    for cell_id in fits["cell_id"]:
        psnr_curve = curves[(curves["cell_id"] == cell_id) & (curves["curve"] == "psnr")]
        assert psnr_curve["step"].tolist() == [0, 2, 4]
        assert (np.diff(psnr_curve["time"]) > 0).all()
    files = pd.read_parquet(run / "files.parquet")
    for cell_id, task in zip(cells["cell_id"], cells["task"]):
        names = set(files[files["cell_id"] == cell_id]["name"])
        assert any(n.endswith(".png") for n in names), (task, names)
        if task == "fields.volume_fit":
            assert "fitted.nii.gz" in names
    from plugins.tasks.fields.figures import plot_curves

    png = plot_curves(run, "psnr", "time", ("encoding", "task"))
    assert png.read_bytes()[:4] == b"\x89PNG"
    multi = cells[(cells["task"] == "fields.multires") & (cells["encoding"] == "bacon")]
    assert multi["metric.psnr_output_0"].notna().all()
    assert multi["metric.psnr_quarter"].notna().all()


def test_image_fit_learns_and_reports_time_to_psnr(tmp_path):
    entry = {"task": "fields.image_fit", "params": {
        "size": 16, "steps": 60, "eval_every": 20, "lr": 1e-2, "target_psnr": 20.0,
        "encoding": "fourier", "encoding.width": 32, "encoding.features": 32,
        "backend": "sine_mlp.eager", "holdout": True}}  # fmt: skip
    cells = pd.read_parquet(_run(tmp_path, _suite(entry)) / "cells.parquet")
    row = cells.iloc[0]
    assert row["status"] == "ok"
    # 16x16 camera, 8x8 training pixels: 60 Adam steps fit them well past 20 dB
    # (measured 36.6 dB); the held-out pixels are harder (psnr_test below psnr)
    assert row["metric.psnr"] > 25
    assert row["metric.psnr_test"] < row["metric.psnr"]
    assert row["metric.steps_to_psnr_20"] in (20, 40, 60)
    assert 0 < row["metric.time_to_psnr_20"] <= row["time.fit.median"]
    assert row["metric.reached_psnr_20"] == 1.0


def test_heldout_psnr_counts_only_the_pixels_not_trained_on():
    from plugins.tasks.fields.image import heldout_mask, heldout_psnr

    mask = heldout_mask((6, 6))
    assert mask.sum() == 27 and not mask[::2, ::2].any() and mask[1::2, :].all()
    image = np.full((6, 6, 3), 0.5)
    # wrong on the training pixels only: the held-out PSNR does not see it
    recon = image.copy()
    recon[::2, ::2] = 0.0
    assert heldout_psnr(recon, image) == np.inf
    # wrong by 0.1 on every held-out pixel, by 0.3 on the trained ones: 20 dB exactly
    recon = image + 0.1
    recon[::2, ::2] = image[::2, ::2] + 0.3
    assert heldout_psnr(recon, image) == pytest.approx(20.0, abs=1e-12)


def test_holdout_reports_heldout_psnr_beside_the_full_grid(tmp_path):
    entry = {"task": "fields.image_fit", "params": {
        "size": 16, "steps": 40, "eval_every": 20, "lr": 1e-2, "target_psnr": 20.0,
        "encoding": "fourier", "encoding.width": 32, "encoding.features": 32,
        "backend": "sine_mlp.eager", "holdout": True, "image": "astronaut",
        "color": "rgb"}}  # fmt: skip
    run = _run(tmp_path, _suite(entry))
    row = pd.read_parquet(run / "cells.parquet").iloc[0]
    mse = {k: 10 ** (-row[f"metric.{k}"] / 10) for k in ("psnr", "psnr_test", "psnr_heldout")}
    # the full grid is a quarter trained pixels and three quarters held out
    assert mse["psnr_test"] == pytest.approx(0.25 * mse["psnr"] + 0.75 * mse["psnr_heldout"])
    assert row["metric.psnr_heldout"] < row["metric.psnr_test"] < row["metric.psnr"]
    assert np.isfinite(row["metric.psnr_heldout_odd"])
    curves = pd.read_parquet(run / "curves.parquet")
    held = curves[curves["curve"] == "psnr_heldout"]
    assert held["step"].tolist() == [0, 20, 40]
    assert held["value"].iloc[-1] == pytest.approx(row["metric.psnr_heldout"], abs=1e-4)


def test_a_threshold_never_reached_is_said_not_left_blank(tmp_path):
    """60 dB is out of reach in 20 steps: reached_psnr_60 = 0, no time_to (a NaN there
    would read as a diverged cell), and the cell is ok."""
    entry = {"task": "fields.image_fit", "params": {
        "size": 16, "steps": 20, "eval_every": 10, "lr": 1e-2, "target_psnr": 60.0,
        "encoding": "relu", "encoding.width": 16, "backend": "sine_mlp.eager"}}  # fmt: skip
    row = pd.read_parquet(_run(tmp_path, _suite(entry)) / "cells.parquet").iloc[0]
    assert row["status"] == "ok"
    assert row["metric.reached_psnr_60"] == 0.0
    assert "metric.time_to_psnr_60" not in row.index or pd.isna(row["metric.time_to_psnr_60"])
    assert row["metric.compression_ratio"] == pytest.approx(256 / row["metric.params"])


def test_poisson_recovers_a_smooth_image_from_its_gradients(tmp_path):
    from PIL import Image

    n = 32
    y, x = np.mgrid[0:n, 0:n] / n
    img = 0.5 + 0.3 * np.sin(2 * np.pi * x) * np.cos(np.pi * y)
    path = tmp_path / "smooth.png"
    Image.fromarray((img * 255).round().astype(np.uint8)).save(path)
    entry = {"task": "fields.poisson", "params": {
        "image": str(path), "size": n, "steps": 150, "eval_every": 50, "lr": 1e-3,
        "encoding": "siren", "encoding.width": 32, "encoding.depth": 2,
        "encoding.omega0": 10.0, "backend": "sine_mlp.eager"}}  # fmt: skip
    cells = pd.read_parquet(_run(tmp_path, _suite(entry)) / "cells.parquet")
    # The gradients alone fix the image up to a constant: a smooth one comes back to
    # well above 25 dB after matching means (measured 33 dB at 150 steps); a field that
    # ignored the supervision would sit near 10 dB (0.3 amplitude left).
    assert cells.iloc[0]["metric.psnr"] > 25


def test_poisson_from_a_float_nifti_by_gradient_and_by_laplacian(tmp_path):
    """The same smooth image as above, stored as a one-slice float NIfTI (no 8-bit
    quantisation, whose Laplacian is noise x (N/2)^2). Gradients: 45.7 dB after 150
    steps (measured). A Laplacian fixes the image only up to a harmonic function:
    after removing the degree <= 2 harmonic polynomials, 26 dB at step 50 drifting to
    23.9 at 150 (measured); matching the mean alone leaves ~12 dB (the same fit)."""
    import nibabel as nib

    n = 32
    y, x = np.mgrid[0:n, 0:n] / n
    img = 0.5 + 0.3 * np.sin(2 * np.pi * x) * np.cos(np.pi * y)
    # stored (x, y) as NIfTI slices are; read back as rot90 of the slice: img itself
    path = tmp_path / "smooth.nii.gz"
    nib.save(nib.Nifti1Image(np.rot90(img, -1)[:, :, None].astype(np.float32), np.eye(4)), path)
    common = {"image": str(path), "size": n, "steps": 150, "eval_every": 50, "lr": 1e-3,
              "encoding": "siren", "encoding.width": 32, "encoding.depth": 2,
              "encoding.omega0": 10.0, "backend": "sine_mlp.eager"}  # fmt: skip
    entries = [
        {"task": "fields.poisson", "params": {**common, "supervise": s}}
        for s in ("gradient", "laplacian")
    ]
    cells = pd.read_parquet(_run(tmp_path, _suite(*entries)) / "cells.parquet")
    by = dict(zip(cells["param.supervise"], cells.index))
    grad, lap = cells.loc[by["gradient"]], cells.loc[by["laplacian"]]
    assert grad["metric.psnr"] > 40
    assert lap["metric.psnr"] > 20
    assert lap["metric.psnr_mean_matched"] < lap["metric.psnr"] - 5


def test_volume_fit_at_1mm_writes_the_field_back_on_the_sampled_grid(tmp_path):
    """The 1 mm MNI152 T1 with every 16th voxel kept: the fitted NIfTI has that grid's
    shape and affine (the source's axes x 16, same origin: voxel (i, j, k) is source
    voxel (16i, 16j, 16k)), and nibabel reads back the values the cell measured."""
    import nibabel as nib

    from plugins.data import mni152

    entry = {"task": "fields.volume_fit", "params": {
        "resolution": 1, "downsample": 16, "steps": 2, "eval_every": 1, "batch": 256,
        "encoding": "relu", "encoding.width": 16, "backend": "sine_mlp.eager"}}  # fmt: skip
    run = _run(tmp_path, _suite(entry))
    row = pd.read_parquet(run / "cells.parquet").iloc[0]
    assert row["status"] == "ok"
    source = mni152.load("template", 1)
    (path,) = run.rglob("fitted.nii.gz")
    fitted = nib.load(path)
    assert fitted.shape == tuple(-(-n // 16) for n in source.data.shape)
    want = source.affine.copy()
    want[:3, :3] *= 16
    np.testing.assert_allclose(fitted.affine, want, atol=1e-5)  # float32 header
    assert row["metric.voxels"] == np.prod(fitted.shape)
    from plugins.tasks.fields.common import psnr

    target = source.data[::16, ::16, ::16] / source.data.max()
    # the PSNR of what nibabel reads back is the cell's (float32 values: 1e-4 dB)
    assert psnr(np.asarray(fitted.dataobj), target) == pytest.approx(row["metric.psnr"], abs=1e-4)


def test_non_finite_loss_ends_diverged_and_keeps_the_curve(tmp_path):
    entry = {"task": "fields.image_fit", "params": {
        "size": 16, "steps": 10, "eval_every": 1, "lr": 1e30, "encoding": "relu",
        "backend": "sine_mlp.eager"}}  # fmt: skip
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(_suite(entry)))
    main(["run", str(path), "--output", str(tmp_path / "out"), "--quiet"])
    (run,) = (tmp_path / "out" / "t").iterdir()
    cells = pd.read_parquet(run / "cells.parquet")
    assert cells.iloc[0]["status"] == "diverged"
    curves = pd.read_parquet(run / "curves.parquet")
    assert (curves["curve"] == "psnr").sum() >= 2  # step 0 and after the first step


def test_an_encoding_whose_field_has_the_wrong_shape_ends_its_cell_with_why(tmp_path):
    """A user's field that returns (points,) for one output would broadcast against the
    (points, 1) targets (an N x N error) and end ok at a wrong PSNR: the cell ends
    error, naming the encoding and the shapes."""
    (tmp_path / "flat.py").write_text(
        "from torch import nn\n"
        "from bench import hookimpl\n"
        "from plugins.encodings.base import FieldEncoding\n\n\n"
        "class Flat(nn.Module):\n"
        "    def __init__(self, d):\n"
        "        super().__init__()\n"
        "        self.net = nn.Linear(d, 1)\n\n"
        "    def forward(self, x):\n"
        "        return self.net(x).squeeze(-1)\n\n\n"
        "class FlatField(FieldEncoding):\n"
        '    """A field missing its output axis."""\n\n'
        '    name = "my_lab.flat"\n\n'
        "    def build(self, in_features, out_features, **kwargs):\n"
        "        return Flat(in_features)\n\n\n"
        "@hookimpl\n"
        "def bench_plugins():\n"
        "    return [FlatField]\n"
    )
    entry = {"task": "fields.image_fit", "params": {"size": 16, "steps": 2, "eval_every": 1,
                                                    "encoding": "my_lab.flat"}}  # fmt: skip
    run = _run(tmp_path, {**_suite(entry), "plugins": ["./flat.py"]})
    cell = pd.read_parquet(run / "cells.parquet").iloc[0]
    assert cell["status"] == "error"
    assert (
        "encoding my_lab.flat: for 3 points of 2 coordinates its module returns (3,), "
        in (cell["error"])
    )
    assert "not (3, 1)" in cell["error"]


def test_a_field_the_loss_cannot_move_ends_its_cell_with_why(tmp_path):
    """The Laplacian of a ReLU net or of a hash grid's multilinear interpolation is zero
    everywhere: supervise laplacian gave zero gradients, nothing trained, and the cells
    ended ok at the untrained field's PSNR (14.5 dB, beside a SIREN's 15.05 in a user
    audit). The cell ends error, naming the encoding; a SIREN trains as before."""
    entry = {"task": "fields.poisson", "params": {"size": 16, "steps": 2, "eval_every": 1,
             "supervise": "laplacian", "encoding.width": 8},
             "matrix": {"encoding": ["relu", "hashgrid", "siren"]}}  # fmt: skip
    run = _run(tmp_path, _suite(entry))
    cells = pd.read_parquet(run / "cells.parquet").set_index("encoding")
    assert cells.loc["siren", "status"] == "ok"
    for name in ("relu", "hashgrid"):
        assert cells.loc[name, "status"] == "error"
        assert (
            f"encoding {name}: the loss's gradient was zero in every parameter"
            in (cells.loc[name, "error"])
        )


def test_a_multi_output_field_without_cutoffs_runs_in_multires(tmp_path):
    """The encoding contract allows outputs(x) alone; multires read BACON's cutoffs
    from any such module and ended a user's field in AttributeError after its whole
    fit. Without cutoffs it is scored as one field (its last output)."""
    (tmp_path / "multi.py").write_text(
        "import torch\n"
        "from torch import nn\n"
        "from bench import hookimpl\n"
        "from plugins.encodings.base import FieldEncoding\n\n\n"
        "class Two(nn.Module):\n"
        "    def __init__(self, d, o):\n"
        "        super().__init__()\n"
        "        self.a, self.b = nn.Linear(d, 16), nn.Linear(16, o)\n"
        "        self.c = nn.Linear(16, o)\n\n"
        "    def outputs(self, x):\n"
        "        h = torch.sin(3 * self.a(x))\n"
        "        return [self.b(h), self.b(h) + self.c(h)]\n\n"
        "    def forward(self, x):\n"
        "        return self.outputs(x)[-1]\n\n\n"
        "class TwoField(FieldEncoding):\n"
        '    """Two outputs, no cut-offs."""\n\n'
        '    name = "my_lab.two"\n\n'
        "    def build(self, in_features, out_features, **kwargs):\n"
        "        return Two(in_features, out_features)\n\n\n"
        "@hookimpl\n"
        "def bench_plugins():\n"
        "    return [TwoField]\n"
    )
    tiny = {"size": 16, "steps": 2, "eval_every": 1}
    mine = {"task": "fields.multires", "params": {**tiny, "encoding": "my_lab.two"}}
    bacon = {"task": "fields.multires",
             "params": {**tiny, "encoding": "bacon", "encoding.width": 16}}  # fmt: skip
    run = _run(tmp_path, {**_suite(mine, bacon), "plugins": ["./multi.py"]})
    cells = pd.read_parquet(run / "cells.parquet").set_index("encoding")
    assert set(cells["status"]) == {"ok"}, cells["error"].tolist()
    assert np.isfinite(cells.loc["my_lab.two", "metric.psnr_quarter"])
    assert "metric.psnr_output_0" in cells and np.isnan(
        cells.loc["my_lab.two", "metric.psnr_output_0"]
    )
    assert np.isfinite(cells.loc["bacon", "metric.psnr_output_0"])  # BACON's bands as before


# --- bad input: one message at validation, exit 2, nothing run ---------------------------


BAD = [
    ({"image": "camra"}, "did you mean 'camera'"),
    ({"image": "/no/such/file.png"}, "does not exist"),
    ({"image": "astronaut"}, "RGB and the task is in grey mode"),
    ({"size": 1024}, "larger than image 'camera'"),
    ({"encoding": "bacon", "encoding.band_limit": 1.5}, "band_limit"),
    ({"encoding.width": 0}, "width"),
    ({"backend": "warp.eager"}, "does not subclass SineMLPBackend"),
    ({"backend": "sine_mlp.triton", "encoding.width": 512}, "hidden widths up to 256"),
    ({"optimizer": "lbfgs", "batch": 64}, "random batches"),
    # 128 px: the last output's cut-off is 32 cycles, halved 7 times to 0.25 < 0.5
    ({"size": 128, "encoding": "bacon", "encoding.depth": 8}, "below the 0.5 grid"),
]


@pytest.mark.parametrize(("change", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_input_is_refused_at_validation(tmp_path, change, message):
    params = {"encoding": "siren", "backend": "sine_mlp.eager", **change}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_suite({"task": "fields.image_fit", "params": params})))
    with pytest.raises(SuiteError, match=message.replace("(", r"\(")) as err:
        load_suite(path)
    # every mistake names its entry: a single value by its key, a cross-parameter one
    # with the values of the cell at fault
    assert "benchmarks[0]" in str(err.value)
    assert main(["run", str(path), "--output", str(tmp_path / "out"), "--quiet"]) == 2
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("cells.parquet"))


def test_occupancy_refuses_a_sigmoid_output(tmp_path):
    """Occupancy reads the output as a logit (> 0: inside): a sigmoid output is positive
    everywhere, so every voxel read as inside (IoU 0.199, the mask's share, beside 0 for
    a real fit in a user audit, both ok). Refused at validation."""
    entry = {"task": "fields.occupancy", "params": {"encoding": "relu",
             "encoding.output": "sigmoid", "downsample": 8}}  # fmt: skip
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(_suite(entry)))
    with pytest.raises(SuiteError, match="read as a logit"):
        load_suite(path)


def test_unreadable_file_and_rgb_poisson_are_refused(tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not a png")
    for task, params, message in [
        ("fields.image_fit", {"image": str(junk)}, "not readable"),
        ("fields.poisson", {"image": "astronaut", "color": "rgb"}, "grey image"),
        ("fields.poisson", {"backend": "sine_mlp.triton"}, "differentiate once"),
        ("fields.volume_fit", {"image": str(tmp_path / "x.nii.gz")}, "does not exist"),
        ("fields.image_fit", {"encoding": "hashgrid", "encoding.finest": 8}, "finest is below"),
        # 2 mm MNI152 kept every 8th voxel: 15 across, first cut-off 3.75 / 2^4 < 0.5
        (
            "fields.volume_fit",
            {"encoding": "bacon", "encoding.depth": 5, "downsample": 8},
            "resolution 15",
        ),
        (
            "fields.occupancy",
            {"encoding": "bacon", "encoding.depth": 5, "downsample": 8},
            "resolution 15",
        ),
        ("fields.volume_fit", {"optimizer": "lbfgs"}, "random batches"),
    ]:
        params = {"encoding": "siren", "backend": "sine_mlp.eager", **params}
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump(_suite({"task": task, "params": params})))
        with pytest.raises(SuiteError, match=message) as err:
            load_suite(path)
        assert "benchmarks[0]" in str(err.value)
        assert main(["run", str(path), "--output", str(tmp_path / "out"), "--quiet"]) == 2
    assert not (tmp_path / "out").exists()


# --- the suite's warm-up: paid before the timed fit, and leaves the fit unchanged ------


def _fit_once(warmup: int, calls: list[int]) -> tuple[list, dict]:
    from torch import nn

    from bench import CellContext
    from plugins.tasks.fields.common import fit

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
    x = torch.rand(64, 2)
    y = torch.sin(3 * x.sum(1, keepdim=True))
    # Made by hand on purpose: this tests the fields tasks' own fit() on a model built
    # here, and compares its final weights and the loss calls, which a cell's record
    # (bench.testing.run_cell) does not hold.
    ctx = CellContext(device="cpu", seed=0, repeats=1, warmup=warmup, components={}, params={})

    def loss_fn(step: int) -> torch.Tensor:
        calls.append(step)
        idx = torch.randint(len(x), (16,))  # random batches: the warm-up must not shift them
        return ((model(x[idx]) - y[idx]) ** 2).mean()

    def evaluate_fn() -> dict[str, float]:
        with torch.no_grad():
            return {"mse": float(((model(x) - y) ** 2).mean())}

    fit(ctx, model, loss_fn, evaluate_fn, steps=6, lr=1e-2, eval_every=2)
    return ctx.record.curves, {k: v.clone() for k, v in model.state_dict().items()}


def test_warmup_steps_run_untimed_and_the_fit_is_the_cold_one():
    """warmup: 2 takes two Adam steps before the timed fit and then puts back the
    parameters and the random state, so the curve and the final weights are exactly
    those of warmup: 0 (same CPU, same seed: bitwise)."""
    cold_calls: list[int] = []
    warm_calls: list[int] = []
    cold_curves, cold_state = _fit_once(0, cold_calls)
    warm_curves, warm_state = _fit_once(2, warm_calls)
    assert len(cold_calls) == 6 and len(warm_calls) == 8
    points = [(name, step, value) for name, step, _time, value in cold_curves]
    assert [(name, step, value) for name, step, _time, value in warm_curves] == points
    assert [p[:2] for p in points if p[0] == "mse"] == [("mse", s) for s in (0, 2, 4, 6)]
    for k in cold_state:
        assert torch.equal(cold_state[k], warm_state[k]), k


# --- L-BFGS as the optional optimiser ----------------------------------------------------


def test_lbfgs_reaches_the_least_squares_solution_and_keeps_one_batch_a_step():
    """A linear field on a quadratic loss: L-BFGS with its line search reaches the
    exact least-squares weights (torch.linalg.lstsq) in a few dozen steps; float32
    normal equations give ~1e-6 relative, so 1e-4 leaves room and fails any real miss.
    With random batches, every loss evaluation of one step sees the same batch."""
    from torch import nn

    from bench import CellContext
    from plugins.tasks.fields.common import fit

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 5, generator=gen)
    y = x @ torch.randn(5, 1, generator=gen) + 0.3 + 0.01 * torch.randn(200, 1, generator=gen)
    exact = torch.linalg.lstsq(torch.cat([x, torch.ones(200, 1)], 1).double(), y.double())
    model = nn.Linear(5, 1)
    # Made by hand on purpose: fit() on a model built here, against its exact
    # least-squares weights (through a whole cell: the image_fit test below).
    ctx = CellContext(device="cpu", seed=0, repeats=1, warmup=1, components={}, params={})
    fit(ctx, model, lambda step: ((model(x) - y) ** 2).mean(), dict, steps=30, lr=1.0,
        eval_every=10, optimizer="lbfgs")  # fmt: skip
    got = torch.cat([model.weight.detach().reshape(-1), model.bias.detach()]).double()
    assert torch.allclose(got, exact.solution.reshape(-1), rtol=1e-4, atol=1e-4)

    seen: dict[int, list[torch.Tensor]] = {}
    model = nn.Linear(5, 1)

    def batch_loss(step: int) -> torch.Tensor:
        idx = torch.randint(200, (32,))
        seen.setdefault(step, []).append(idx)
        return ((model(x[idx]) - y[idx]) ** 2).mean()

    fit(ctx.scratch(), model, batch_loss, dict, steps=5, lr=1.0, eval_every=5,
        optimizer="lbfgs")  # fmt: skip
    assert any(len(calls) > 1 for calls in seen.values())  # the line search re-evaluated
    for calls in seen.values():
        assert all(torch.equal(c, calls[0]) for c in calls)
    assert not torch.equal(seen[1][0], seen[2][0])  # a new batch each step


def test_image_fit_with_lbfgs_runs_through_the_harness(tmp_path):
    entry = {"task": "fields.image_fit", "params": {
        "size": 16, "steps": 40, "eval_every": 10, "lr": 1.0, "optimizer": "lbfgs",
        "encoding": "fourier", "encoding.width": 32, "encoding.features": 32,
        "backend": "sine_mlp.eager"}}  # fmt: skip
    row = pd.read_parquet(_run(tmp_path, _suite(entry)) / "cells.parquet").iloc[0]
    assert row["status"] == "ok"
    # 40 L-BFGS steps fit this 16x16 image to 45.9 dB (measured; Adam at lr 1e-2 is at
    # 18.3 dB after 40 steps); 35 dB fails a line search that stalls (it sat at 18.7 dB
    # when it could take only one evaluation a step)
    assert row["param.optimizer"] == "lbfgs" and row["metric.psnr"] > 35


def test_an_encoding_that_breaks_the_build_contract_ends_its_cell_with_why(tmp_path):
    """A user audit: a build() without **kwargs, returning a function, a module without
    parameters or one in float64 each ended its cell in an error from deep inside the
    task (a ZeroDivisionError in compression_ratio, a dtype mismatch). Each names the
    encoding and the rule."""
    plugin = str(Path(__file__).parent / "bad_encodings.py")
    entry = {"task": "fields.image_fit", "params": {"size": 16, "steps": 2, "eval_every": 1},
             "matrix": {"encoding": ["bad.nokwargs", "bad.notmodule", "bad.noparams",
                                     "bad.double"]}}  # fmt: skip
    run = _run(tmp_path, {**_suite(entry), "plugins": [plugin]})
    cells = pd.read_parquet(run / "cells.parquet").set_index("encoding")
    assert set(cells["status"]) == {"error"}
    want = {
        "bad.nokwargs": "build(in_features, out_features, **kwargs) is called with resolution=",
        "bad.notmodule": "build() returned function, not a torch nn.Module",
        "bad.noparams": "its module has no trainable parameter: nothing to fit",
        "bad.double": "its module's parameters are torch.float64",
    }
    for name, text in want.items():
        assert f"encoding {name}: {text}" in cells.loc[name, "error"]


def test_the_curves_figure_draws_a_tuned_runs_reported_cells_from_its_suite_folder(tmp_path):
    """`python -m plugins.tasks.fields.figures results/SUITE` failed (no cells.parquet
    in a suite's folder), and on a run folder of a tuned suite it drew the validation
    cells too (the moon's curves labelled as the cameraman's encodings)."""
    from plugins.tasks.fields.figures import drawn, plot_curves

    entry = {"task": "fields.image_fit",
             "params": {"size": 16, "steps": 2, "eval_every": 1, "encoding": "relu"},
             "tune": {"grid": {"lr": [1e-3, 1e-2]}, "validation_seeds": [100],
                      "validation_params": {"image": "moon"}}}  # fmt: skip
    run = _run(tmp_path, _suite(entry))
    folder, cells, _ = drawn(run.parent)  # the suite's folder
    assert folder == run and len(cells) == 1 and set(cells["param.image"]) == {"camera"}
    assert plot_curves(run.parent).read_bytes()[:4] == b"\x89PNG"


_MODES = (
    "import torch\n"
    "from torch import nn\n"
    "from bench import hookimpl\n"
    "from plugins.encodings.base import FieldEncoding\n\n\n"
    "class Dropped(nn.Module):\n"
    "    def __init__(self, d, nan):\n"
    "        super().__init__()\n"
    "        self.nan = nan\n"
    "        self.net = nn.Sequential(nn.Linear(d, 64), nn.ReLU(), nn.Dropout(0.5),\n"
    "                                 nn.Linear(64, 1))\n\n"
    "    def forward(self, x):\n"
    "        y = self.net(x)\n"
    "        return y * float('nan') if self.nan and not self.training else y\n\n\n"
    "class DropoutField(FieldEncoding):\n"
    '    """A field with dropout (or NaN when evaluated, nan=True)."""\n\n'
    '    name = "my_lab.dropout"\n\n'
    "    def build(self, in_features, out_features, **kwargs):\n"
    "        return Dropped(in_features, False)\n\n\n"
    "class EvalNaN(DropoutField):\n"
    '    """NaN in evaluation mode only."""\n\n'
    '    name = "my_lab.evalnan"\n\n'
    "    def build(self, in_features, out_features, **kwargs):\n"
    "        return Dropped(in_features, True)\n\n\n"
    "@hookimpl\n"
    "def bench_plugins():\n"
    "    return [DropoutField, EvalNaN]\n"
)


def test_a_field_with_dropout_is_scored_in_evaluation_mode_as_its_curves(tmp_path):
    """The final PSNR was computed with dropout on (16.1 dB beside the curve's 17.4 at
    the same step, a user audit), and a field that is NaN only when evaluated ended ok
    with its training mode's scores: scored in evaluation mode, NaN ends diverged."""
    (tmp_path / "modes.py").write_text(_MODES)
    entries = [{"task": "fields.image_fit", "params": {"size": 16, "steps": 6, "eval_every": 3,
                                                       "encoding": name}}
               for name in ("my_lab.dropout", "my_lab.evalnan")]  # fmt: skip
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({**_suite(*entries), "plugins": ["./modes.py"]}))
    args = ["run", str(path), "--output", str(tmp_path / "out"), "--quiet", "--in-process"]
    main(args)
    (run,) = (tmp_path / "out" / "t").iterdir()
    cells = pd.read_parquet(run / "cells.parquet").set_index("encoding")
    curves = pd.read_parquet(run / "curves.parquet")
    dropout = cells.loc["my_lab.dropout"]
    assert dropout["status"] == "ok"
    last = curves[(curves["cell_id"] == dropout["cell_id"]) & (curves["curve"] == "psnr")]
    # the same model at the same step, in the same mode: the same number (float32 sums
    # in the same order; 1e-9 leaves room for nothing but their printing)
    assert dropout["metric.psnr"] == pytest.approx(last.sort_values("step")["value"].iloc[-1],
                                                   rel=1e-9)  # fmt: skip
    nan = cells.loc["my_lab.evalnan"]
    assert nan["status"] == "diverged"
    assert "the field's output is not finite (in evaluation mode)" in nan["error"]


def test_the_floor_is_what_a_field_that_learned_nothing_scores(tmp_path):
    """A Poisson fit 0.2 dB above a constant image read as a result (a user audit):
    psnr_floor is the PSNR of the best field that learned nothing (the mean; for the
    Poisson tasks the null space the supervision cannot see, fitted as the fit is),
    checked against the image's own variance: a constant's MSE at best is it."""
    from bench import testing
    from plugins.data.images import load_image

    image = load_image("camera", 16, "grey").astype(np.float64)
    by_var = -10 * np.log10(image.var())
    for task, extra in (("fields.image_fit", {"holdout": True}),
                        ("fields.poisson", {"supervise": "gradient"})):  # fmt: skip
        cell = testing.run_cell(task, {"encoding": "relu"},
                                {"size": 16, "steps": 2, "eval_every": 1, **extra})  # fmt: skip
        if task == "fields.poisson":  # the whole image, mean-matched
            assert cell.metrics["psnr_floor"] == pytest.approx(by_var, abs=1e-4)
        else:  # the trained quarter; the held-out pixels against its mean
            train = image[::2, ::2]
            assert cell.metrics["psnr_floor"] == pytest.approx(-10 * np.log10(train.var()),
                                                               abs=1e-4)  # fmt: skip
            mask = np.ones_like(image, dtype=bool)
            mask[::2, ::2] = False
            held = -10 * np.log10(((image[mask] - train.mean()) ** 2).mean())
            assert cell.metrics["psnr_heldout_floor"] == pytest.approx(held, abs=1e-4)


def test_the_report_says_how_far_each_fit_is_past_its_floor(tmp_path):
    """A fit 0.2 dB above a constant image sat in the table beside real ones with no
    hint (a user audit): the page says each configuration's margin over psnr_floor."""
    import html as html_lib

    entry = {"task": "fields.image_fit", "params": {"size": 16, "steps": 3, "eval_every": 3},
             "matrix": {"encoding": ["relu", "fourier"]}}  # fmt: skip
    run = _run(tmp_path, _suite(entry))
    page = tmp_path / "page.html"
    assert main(["report", str(run), "-o", str(page)]) == 0
    text = html_lib.unescape(page.read_text())
    cells = pd.read_parquet(run / "cells.parquet").set_index("encoding")
    margins = cells["metric.psnr"] - cells["metric.psnr_floor"]  # one seed: the means
    assert "Past the floor (what learning nothing scores), mean over seeds: psnr past " in text
    assert "psnr past psnr_floor: encoding=relu" in text
    for name in ("relu", "fourier"):
        assert f"encoding={name} backend=sine_mlp.eager {margins[name]:+.3g}" in text
    # and that they differ in size (the headline's size metric, params)
    params = cells["metric.params"]
    assert params["relu"] != params["fourier"]
    assert (
        f"The configurations differ in size (params): encoding=relu backend=sine_mlp.eager "
        f"{int(params['relu'])}, encoding=fourier backend=sine_mlp.eager {int(params['fourier'])}"
    ) in text
