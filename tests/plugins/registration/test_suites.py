"""The shipped registration suites: they validate, and the quick one runs end to end."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from bench.cli import main
from bench.suite import load_suite

pytestmark = pytest.mark.usefixtures("frozen_heap")

ROOT = Path(__file__).resolve().parents[3]
SUITES = sorted((ROOT / "suites").glob("registration-*.yaml"))


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.name)
def test_shipped_suites_validate(path):
    assert load_suite(path).cells


@pytest.mark.slow
def test_quick_suite_runs(tmp_path):
    # ~70 s on the shared 2-core machine: slow-marked (the default tests stay under 60 s)
    assert (
        main(
            [
                "run",
                str(ROOT / "suites/registration-quick.yaml"),
                "--output",
                str(tmp_path),
                "--quiet",
            ]
        )
        == 0
    )
    run = next(tmp_path.glob("registration-quick/*/"))
    cells = pd.read_parquet(run / "cells.parquet")
    assert set(cells.status) <= {"ok", "skipped"} and (cells.status == "ok").sum() >= 7
    ok = cells[cells.status == "ok"]
    pairwise = ok[ok.task == "registration.pairwise"]
    assert (pairwise["metric.dice"] > pairwise["metric.dice_before"]).all()
    assert (pairwise["metric.error_mm"] < pairwise["metric.error_mm_before"]).all()
    diffeomorphic = pairwise[pairwise.method.isin(["svf", "lddmm", "nodeo", "syn"])]
    assert (diffeomorphic["metric.folding_percent"] <= 0.01).all()
    atlas = ok[ok.task == "registration.atlas"].set_index("param.barycentre")
    assert (
        atlas.loc[1.0, "metric.mean_deformation_mm"] < atlas.loc[0.0, "metric.mean_deformation_mm"]
    )
    files = pd.read_parquet(run / "files.parquet")
    assert len(files) >= 3 * len(pairwise) + 2 * len(atlas)


def test_quick_suite_runs_every_method_at_a_few_iterations(tmp_path):
    """The shipped quick suite, every entry and method as shipped, with iterations cut to
    a handful (the default tests' share of it; the whole suite is the slow test above):
    every cell ends ok (SyN skipped where antspyx is missing) and keeps its files."""
    data = yaml.safe_load((ROOT / "suites/registration-quick.yaml").read_text())
    for entry in data["benchmarks"]:
        p = entry["params"]
        if entry["task"] == "registration.atlas":
            p["iterations"] = 3
        elif p.get("method") == "voxelmorph":
            p.update({"method.train_steps": 3, "method.pairs": 2})
        else:
            p["method.iterations"] = 3
            if "method" not in p:  # a matrix over methods: syn takes no iterations
                entry["matrix"]["method"] = [m for m in entry["matrix"]["method"] if m != "syn"]
    data["benchmarks"].append(
        {"name": "syn", "task": "registration.pairwise",
         "params": {"downsample": 3, "backend": "warp.eager", "method": "syn"}}
    )  # fmt: skip
    data.update(device="cpu")
    path = tmp_path / "quick.yaml"
    path.write_text(yaml.safe_dump(data))
    # in this process (the methods are under test here, not the worker)
    args = ["run", str(path), "--output", str(tmp_path / "out"), "--quiet", "--in-process"]
    assert main(args) == 0
    run = next((tmp_path / "out").glob("registration-quick/*/"))
    cells = pd.read_parquet(run / "cells.parquet")
    assert len(cells) == 10
    assert set(cells.status) <= {"ok", "skipped"}, cells[["method", "status", "error"]]
    assert (cells[cells.method != "syn"].status == "ok").all()
    files = pd.read_parquet(run / "files.parquet")
    for cell_id in cells[cells.status == "ok"].cell_id:
        names = set(files[files.cell_id == cell_id].name)
        assert any(n.endswith(".png") for n in names), names
