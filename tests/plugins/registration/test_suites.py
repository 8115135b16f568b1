"""The shipped registration suites: they validate, and the quick one runs end to end."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main
from bench.suite import load_suite

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
