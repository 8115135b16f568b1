"""registration.atlas: known answers and the barycentre constraint."""

from __future__ import annotations

from bench import CellContext
from tests.plugins.registration._helpers import REGISTRY


def _run(tmp_path, **params):
    cls = REGISTRY.get("task", "registration.atlas")
    values = {"downsample": 4, "subjects": 4, "iterations": 80, **params}
    ctx = CellContext(
        device="cpu",
        seed=0,
        repeats=1,
        warmup=0,
        components={"backend": REGISTRY.get("backend", "warp.eager")()},
        params=cls.resolve_params(values),
        cache_dir=tmp_path,
    )
    cls(**values).run(ctx)
    return ctx.record


def test_undeformed_population_returns_the_template(tmp_path):
    # amplitude 0, no noise: every subject is the template; the estimate starts from a
    # 1-voxel Gaussian smoothing of it and must stay the template (NCC ~1, no deformation)
    record = _run(tmp_path, amplitude=0.0, noise=0.0)
    assert record.metrics["template_ncc"] > 0.98
    assert record.metrics["mean_deformation_mm"] < 0.05
    assert record.metrics["label_dice"] == 1.0


def test_barycentre_constraint_centres_the_template(tmp_path):
    off = _run(tmp_path, barycentre=0.0).metrics
    on = _run(tmp_path, barycentre=1.0).metrics
    # initialised to one subject, the unconstrained template stays near that subject's
    # frame; the constraint pulls the mean displacement toward 0 (>= 5x at 80 steps)
    assert on["mean_deformation_mm"] < 0.2 * off["mean_deformation_mm"]
    assert on["template_ncc"] > off["template_ncc"]


def test_projection_makes_the_velocities_zero_mean(tmp_path):
    off = _run(tmp_path, barycentre=0.0).metrics
    hard = _run(tmp_path, barycentre=0.0, projection=True).metrics
    # zero-mean velocities leave a mean displacement of second order in v only: on this
    # coarse 8 mm grid with 4 subjects that is a third of the unconstrained one (measured
    # 0.30 against 0.91 mm); the template lands closer to the truth
    assert hard["mean_deformation_mm"] < 0.5 * off["mean_deformation_mm"]
    assert hard["template_ncc"] > off["template_ncc"]


def test_atlas_keeps_template_and_figure(tmp_path):
    record = _run(tmp_path, iterations=5)
    names = {f[0] for f in record.files}
    assert {"template.nii.gz", "atlas.png"} <= names
    assert record.curves and "estimate" in record.times
