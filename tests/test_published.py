"""Every published run's cell ids come back from its own suite text, and its report
links only files that are there, inside ``results/published``.

A run's ``run.json`` keeps the suite text it ran; expanding that text with today's
harness must give the ids in its tables, or ``bench run --resume`` and ``bench compare``
would no longer recognise the published cells. One change of identity is known:
26a975c (2026-11-30 09:56 UTC) made ``threads`` part of a cell's id when set. Runs that
started before it and set ``threads`` carry the older ids; they must match those
exactly, and nothing else may differ.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from bench.cell import canonical_json, cell_id, id_prefix
from bench.suite import load_suite

PUBLISHED = Path(__file__).resolve().parent.parent / "results" / "published"
RUNS = sorted(p.parent.name for p in PUBLISHED.glob("*/run.json"))
THREADS_IN_ID = datetime.fromisoformat("2026-11-30T09:56:04+00:00")  # commit 26a975c


def _ids_without_threads(cells) -> set[str]:
    def prefix(c):
        return id_prefix(canonical_json(c.components), canonical_json(c.given))

    return {cell_id(prefix(c), c.seed, c.task, None) for c in cells}


@pytest.mark.parametrize("name", RUNS)
def test_published_cell_ids_come_back_from_the_suite_text(name, tmp_path):
    run = PUBLISHED / name
    meta = json.loads((run / "run.json").read_text())
    suite = tmp_path / "suite.yaml"
    suite.write_text(meta["suite_text"])
    loaded = load_suite(suite, probe=False)
    # a tuned entry's test cells (every setting's; the run ran the chosen one's) are kept
    # apart from the cells run first (bench.tuning)
    cells = loaded.cells + [c for t in loaded.tunings for per in t.test for c in per]
    published = set(pd.read_parquet(run / "cells.parquet", columns=["cell_id"]).cell_id)
    if published <= {c.id for c in cells}:
        return
    started = datetime.fromisoformat(meta["start"])
    assert started < THREADS_IN_ID, f"{name}: ids differ from its suite text's"
    assert any(c.threads is not None for c in cells), f"{name}: ids differ, threads unset"
    assert published <= _ids_without_threads(cells), f"{name}: ids differ beyond threads"


def test_the_runs_are_found():
    assert len(RUNS) >= 26


@pytest.mark.parametrize("name", RUNS)
def test_published_report_links_files_beside_it(name):
    """A report written in another folder and copied here linked plotly.js four folders
    up (three runs did so once): opened from the checkout it drew no figure."""
    page = PUBLISHED / name / "report.html"
    if not page.exists():
        pytest.skip(f"{name}: no report.html")
    links = re.findall(r'(?:src|href)="([^"#][^"]*)"', page.read_text(encoding="utf-8"))
    local = [x for x in links if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", x)]
    outside = [x for x in local if not (page.parent / x).resolve().is_relative_to(PUBLISHED)]
    missing = [x for x in local if not (page.parent / x).is_file()]
    assert outside == [] and missing == [], f"{name}: links {outside or missing}"
