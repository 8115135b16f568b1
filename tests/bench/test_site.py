"""`bench site`: one static site of many runs, escaped, self-contained, checked in Chromium."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main
from bench.executors import InProcessExecutor
from bench.runner import run_suite
from bench.suite import load_suite

from .test_report import _browser

pytestmark = pytest.mark.usefixtures("frozen_heap")

PUBLISHED = Path(__file__).parents[2] / "results" / "published" / "fields-poisson-256-cpu"
HOSTILE = '<script>alert("task")</script><!--<b x="'
SUITE = (
    "suite: mine\nplugins: [FIXTURE_PLUGINS]\nrepeats: 1\nwarmup: 0\nbenchmarks:\n"
    "  - task: test.behave\n    matrix: {solver: [test.constant], value: [1.0, 2.0]}\n"
)


@pytest.fixture
def inputs(write_suite, registry, tmp_path):
    """``mine/``: two runs of a tiny suite, one with a report.html linking a shared
    plotly.js (copied into the site), one received from a hostile sender (its task,
    suite and README carry markup; its README names a picture linked to a file outside)."""
    mine = tmp_path / "mine"
    suite = load_suite(write_suite(SUITE), registry)
    for name in ("good", "hostile"):
        run_suite(suite, mine / name, executor=InProcessExecutor(registry))
    args = ["report", str(mine / "good"), "--plotly-js", str(mine / "plotly.min.js")]
    assert main(args) == 0
    (mine / "good" / "README.md").write_text(
        "# A good run\n\nTwo values of the\nconstant solver.\n\n"
        "| value | paper | here |\n|---|---:|---:|\n| 1 | 1.0 | 1.0 |\n"
    )
    bad = mine / "hostile"
    cells = pd.read_parquet(bad / "cells.parquet")
    cells["task"] = HOSTILE
    cells["param.value"] = cells["param.value"].map(lambda v: f'{v}<img src=x onerror="alert(1)">')
    cells.to_parquet(bad / "cells.parquet", index=False)
    meta = json.loads((bad / "run.json").read_text())
    meta["suite"] = HOSTILE
    (bad / "run.json").write_text(json.dumps(meta))
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"SECRET-BYTES")
    (bad / "leak.png").symlink_to(secret)
    (bad / "README.md").write_text(
        f"# {HOSTILE}\n\n<script>alert('readme')</script> and [x](javascript:alert(1))\n\n"
        f"![leak](leak.png)\n\n| paper | `{HOSTILE}` |\n|---|---|\n| 1 | 2 |\n"
    )
    return mine, secret


def test_a_site_of_my_runs_beside_a_published_one(inputs, tmp_path, capsys):
    mine, secret = inputs
    before = sorted(p.relative_to(mine) for p in mine.rglob("*"))
    site = tmp_path / "site"
    assert main(["site", str(mine), str(PUBLISHED), "-o", str(site)]) == 0
    assert "3 runs" in capsys.readouterr().out
    assert sorted(p.relative_to(mine) for p in mine.rglob("*")) == before  # inputs untouched

    index = (site / "index.html").read_text()
    # one section per family, each task's headline table, each run's report and README
    assert "Neural fields" in index and "fields.poisson" in index and "test.behave" in index
    for name, folder in [
        ("mine/good", "good"),
        ("mine/hostile", "hostile"),
        ("fields-poisson-256-cpu", "fields-poisson-256-cpu"),
    ]:
        assert f'<a href="runs/{folder}/report.html">{name}</a>' in index
        assert (site / "runs" / folder / "report.html").is_file()
        assert (site / "runs" / folder / "README.html").is_file()
    # the headline the run recorded (value, lower is better), the configurations it varied
    assert "quality value ▼; cost work time" in index
    assert "solver=test.constant value=1" in index and "mode=" not in index
    # the README's title, first paragraph and its table of the paper's numbers
    assert "A good run" in index and "Two values of the constant solver." in index
    assert "the paper's numbers beside this run's" in index and "32.91" in index
    # a copied report brings the shared plotly.js it links; the published run's (its
    # ../plotly.min.js lies outside the input given) is generated into the site instead
    good = (site / "runs" / "good" / "report.html").read_text()
    assert good == (mine / "good" / "report.html").read_text()
    assert (site / "runs" / "plotly.min.js").is_file()
    pages = list(site.rglob("*.html"))
    for page in pages:  # links are relative, into the site
        links = re.findall(r'(?:src|href)="([^"]*)"', page.read_text())
        local = [x for x in links if not x.startswith(("#", "data:", "http"))]
        assert not [x for x in local if x.startswith(("file:", "/"))]
        assert all((page.parent / x).resolve().is_relative_to(site.resolve()) for x in local)
    # received names are text, never markup
    for page in (site / "index.html", site / "runs" / "hostile" / "README.html"):
        text = page.read_text()
        assert HOSTILE not in text and "<script>alert" not in text and 'onerror="' not in text
        assert "&lt;script&gt;alert(&quot;task&quot;)&lt;/script&gt;" in text
    assert 'href="javascript' not in "".join(p.read_text() for p in pages)
    # a picture linked out of the run is neither copied nor shown
    assert not (site / "runs" / "hostile" / "leak.png").exists()
    assert all(secret.read_bytes() not in p.read_bytes() for p in site.rglob("*") if p.is_file())

    browser = _browser()
    try:
        for page in (site / "index.html", site / "runs" / "good" / "report.html"):
            browser.get(page.as_uri())
            assert browser.execute_script("return document.readyState") == "complete"
            assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
        browser.get((site / "index.html").as_uri())
        assert "dynbench results" in browser.title
    finally:
        browser.quit()


def test_a_report_linking_a_missing_file_outside_its_input_is_generated_anew(inputs, tmp_path):
    """A report written elsewhere and copied in (its plotly.js link points four folders
    up, to nothing) would point out of the site if copied as it is: it is generated."""
    mine, _ = inputs
    good = mine / "good" / "report.html"
    page = good.read_text()
    assert '<script src="../plotly.min.js">' in page
    good.write_text(page.replace('src="../plotly.min.js"', 'src="../../../../plotly.min.js"'))
    site = tmp_path / "site"
    assert main(["site", str(mine / "good"), "-o", str(site)]) == 0
    out = (site / "runs" / "good" / "report.html").read_text()
    assert "../../../../plotly.min.js" not in out and '<script src="../plotly.min.js">' in out
    assert (site / "runs" / "plotly.min.js").is_file()


def test_site_refuses_to_write_over_an_input_and_needs_runs(inputs, tmp_path, capsys):
    mine, _ = inputs
    assert main(["site", str(mine), "-o", str(mine)]) == 2
    assert "would write over the input" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["site", str(tmp_path / "empty"), "-o", str(tmp_path / "s")]) == 2
    assert "no run folders found" in capsys.readouterr().err
    # one input of two without runs (three levels down): said, not left out of a page
    # that names it as a source (a user audit)
    (tmp_path / "deep" / "a" / "b" / "c").mkdir(parents=True)
    assert main(["site", str(mine), str(tmp_path / "deep"), "-o", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'deep'}: no run folders found" in err and str(mine) not in err
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
def test_the_published_folder_builds_a_site_with_every_figure_drawn(tmp_path):
    """issue 19's done-when: `bench site results/published` builds; every page opens in
    headless Chromium without a console error and draws every figure on load."""
    from selenium.webdriver.support.ui import WebDriverWait

    site = tmp_path / "site"
    assert main(["site", str(PUBLISHED.parent), "-o", str(site)]) == 0
    pages = [site / "index.html", *sorted(site.glob("runs/**/report.html"))]
    assert len(pages) > 20
    browser = _browser()
    try:
        for page in pages:
            browser.get(page.as_uri())
            WebDriverWait(browser, 60).until(
                lambda b: b.execute_script(
                    "return [...document.querySelectorAll('div.plot')]"
                    ".every(p => p.querySelector('svg.main-svg g.trace'))"
                ),
                message=f"{page}: a figure not drawn",
            )
            errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
            assert errors == [], page
    finally:
        browser.quit()


def test_the_site_bolds_the_best_within_each_problem_among_whole_configurations():
    """As the report judges it: per problem (an easier truth is no better method), never
    a configuration that failed on some seeds, ties (last bits) both; computed over every
    row, shown or not."""
    from bench.site import _best_cells

    def row(label, dice, problem, ok=3):
        return {"label": label, "values": {"metric.dice": dice}, "ok": ok, "n": 3,
                "problem": problem}  # fmt: skip

    rows = [
        row("svf truth=x", 0.90, "truth=x"),
        row("syn truth=x", 0.95, "truth=x", ok=2),  # failed on a seed: its mean is easier
        row("svf truth=y", 0.60, "truth=y"),
        row("syn truth=y", 0.1 + 0.5, "truth=y"),  # 0.6000000000000001: tied
        row("lone truth=z", 0.99, "truth=z"),  # nothing to judge it against
    ]
    assert _best_cells([("metric.dice", "higher")], rows) == {
        (0, "metric.dice"), (2, "metric.dice"), (3, "metric.dice")}  # fmt: skip
    assert _best_cells([("metric.dice", None)], rows) == set()  # no direction, no best


def test_site_problem_keys_judge_an_old_runs_best_within_each_value(tmp_path):
    """A run recorded before tasks declared their problems: bench site --problem truth
    bolds the best per truth generator, not the easier generator's configuration alone."""
    import json

    import pandas as pd

    from bench.results import load_run
    from bench.site import task_table

    rows = [{"cell_id": f"{m}{t}{s}", "suite": "x", "bench": 0, "label": "t", "task": "reg",
             "method": m, "param.truth": t, "seed": s, "status": "ok", "wall": 1.0, "error": "",
             "finished_at": "", "device": "cpu",
             "metric.dice": base + (0.3 if t == "easy" else 0.0)}
            for m, base in (("a", 0.6), ("b", 0.5)) for t in ("easy", "hard") for s in (0, 1)
            if not (m == "a" and t == "easy")]  # fmt: skip
    rows += [{**rows[0], "cell_id": f"ceasy{s}", "method": "c", "param.truth": "easy",
              "metric.dice": 0.4, "seed": s} for s in (0, 1)]  # fmt: skip
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    pd.DataFrame(rows).to_parquet(run_dir / "cells.parquet")
    headline = {"quality": {"dice": "higher"}, "cost": "wall", "curves": []}
    (run_dir / "run.json").write_text(json.dumps({"suite": "x", "headlines": {"reg": headline}}))
    run = load_run(run_dir)

    def bold(table):
        return sorted(r["label"] for r in table.rows if "metric.dice" in r.get("best", ()))

    assert bold(task_table(run, "reg")) == ["method=b truth=easy"]  # across generators
    assert bold(task_table(run, "reg", ["truth"])) == ["method=a truth=hard", "method=b truth=easy"]
    both = task_table(run, "reg", ["truth", "param.truth"])  # one column, said once
    assert both.problem == ["param.truth"]
    from bench.site import build_site

    site = build_site([run_dir], tmp_path / "site", problem=["truth", "truht"])
    assert site.notes == ["--problem truht: no run's cells have param.truht"]
