"""Every suite shipped in suites/ validates against the registered plugins."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.suite import load_suite

SUITES = sorted((Path(__file__).resolve().parent.parent / "suites").glob("*.yaml"))


def test_there_are_suites():
    assert any(p.name == "quickstart.yaml" for p in SUITES)


@pytest.mark.parametrize("path", SUITES, ids=[p.stem for p in SUITES])
def test_suite_validates(path):
    suite = load_suite(path)
    assert suite.name == path.stem
    assert suite.cells
    assert len({c.id for c in suite.cells}) == len(suite.cells)
