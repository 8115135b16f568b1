"""`bench report`: the page's content, and the page opened in a real browser."""

from __future__ import annotations

import html
import json
import re
import shutil

import pytest

from bench.cli import main
from bench.results import load_run

from .conftest import FIXTURE_PLUGINS

pytestmark = pytest.mark.usefixtures("frozen_heap")

SUITE = """
suite: report
device: cpu
repeats: 3
seeds: [0, 1]
timeout: 30
plugins: [FIXTURE_PLUGINS]
benchmarks:
  - task: test.behave
    matrix:
      solver: [test.constant]
      value: [1.0, 2.0, 4.0]
      seconds: [0.001, 0.004]
  - task: test.behave
    params: {mode: raise}
    matrix: {solver: [test.constant]}
    seeds: [0]
  - task: test.files
    seeds: [0]
"""


@pytest.fixture(scope="module")
def report_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    suite = tmp / "suite.yaml"
    suite.write_text(SUITE.replace("FIXTURE_PLUGINS", FIXTURE_PLUGINS))
    assert main(["run", str(suite), "--output", str(tmp / "out"), "--quiet"]) == 0
    return load_run(tmp / "out" / "report")


@pytest.fixture(scope="module")
def page(report_run):
    assert main(["report", str(report_run.path)]) == 0
    return (report_run.path / "report.html").read_text()


def _embedded(page: str, name: str):
    match = re.search(rf"const {name}=(.*?);\n", page)
    assert match, name
    return json.loads(match.group(1).replace("<\\/", "</"))


def test_the_page_is_self_contained(page):
    assert "<script src" not in page and "<link" not in page
    assert "https://" not in page.split("<script>", 2)[-1]  # nothing fetched by our code
    assert "Plotly" in page


def test_the_run_header_names_suite_command_machine_and_failures(page, report_run):
    assert "bench run" in page and report_run.meta["host"] in page
    assert "ok 13" in page and "error 1" in page
    assert "ValueError: the plugin raised on purpose" in page
    assert "Traceback (most recent call last)" in page  # the full traceback is kept


def test_tables_hold_every_cell_with_the_parameters_that_differ(page):
    tables = _embedded(page, "TABLES")
    behave = next(t for t in tables if len(t["rows"]) == 13)
    assert behave["columns"][0] == "configuration"
    assert {"seconds", "seed", "status", "work (s)", "value"} <= set(behave["columns"])
    assert len(set(behave["colours"])) == 7  # one per configuration (six ok, one raising)


def _headline_rows(page: str, task: str = "test.behave") -> list[str]:
    section = page.split(f"<h2>{task}</h2>", 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr(?: class=bestrow)?>(.*?)</tr>", section.split("<tbody>", 1)[1])


def test_each_task_leads_with_its_headline_table(page):
    """Configurations first: the headline's quality (mean ± sd over seeds), its cost, the
    best by the headline's direction (lower value) and the Pareto front."""
    section = page.split("<h2>test.behave</h2>", 1)[1]
    assert section.index('class="headline sortable"') < section.index('class="plot"')
    assert "headline: quality value (lower is better); cost work (s); curves loss" in section
    rows = _headline_rows(page)
    assert len(rows) == 7  # 3 values x 2 sleeps, and the raising configuration
    best = [r for r in rows if "★ best" in r]
    assert len(best) == 2 and all("value=1 " in r or r.count("value=1<") for r in best)
    assert all("1 ± 0" in r for r in best)  # value 1.0 in both seeds: sd 0
    # the cost with its spread over seeds too, as the caption says (a user audit)
    costs = [re.findall(r'<td class="num" data-v="[^"]*">([^<]*)</td>', r)[-1] for r in best]
    assert all(re.fullmatch(r"\S+ \S*s ± \S+ \S*s", c) for c in costs), costs
    front = [r for r in rows if "●" in r]
    assert front and all("seconds=0.001" in r for r in front)
    assert any("0/1 (error 1)" in r for r in rows)
    # a configuration's label: what the suite varied, never a default nobody changed
    assert "marker=" not in section.split("</table>", 1)[0]


def test_means_apart_only_in_their_last_bits_are_both_best():
    """Two configurations whose means differ by summation order (0.1 + 0.2 and 0.3) are
    tied, as tuning's choice ties them: both best, not whichever last bit fell lower."""
    from types import SimpleNamespace

    import pandas as pd

    from bench.report import configuration_summary

    cells = pd.DataFrame({"config": ["a", "b", "c"], "status": ["ok"] * 3,
                          "metric.error": [0.1 + 0.2, 0.3, 0.3 + 1e-9]})  # fmt: skip
    task = SimpleNamespace(configs=["a", "b", "c"], cells=cells, quality=["metric.error"],
                           better={"metric.error": "lower"}, cost=None)  # fmt: skip
    assert list(configuration_summary(task)["best"]) == [True, True, False]
    # a mean that overflowed (two seeds of 1e308) is no tie with every finite one
    task.cells = pd.DataFrame({"config": ["a", "a", "b", "c"], "status": ["ok"] * 4,
                               "metric.error": [1e308, 1e308, 0.3, 1.0]})  # fmt: skip
    task.better = {"metric.error": "higher"}
    summary = configuration_summary(task)
    assert summary["metric.error"][0] == float("inf")
    assert list(summary["best"]) == [True, False, False]


def test_a_configuration_with_failed_cells_is_never_best():
    """A method that fails on the hard seeds has a mean over the easy ones: it is not
    starred over one whose every cell ended ok, however good that mean."""
    from types import SimpleNamespace

    import pandas as pd

    from bench.report import configuration_summary

    cells = pd.DataFrame({"config": ["a", "a", "b", "b"], "status": ["ok", "error", "ok", "ok"],
                          "metric.dice": [0.95, float("nan"), 0.93, 0.92]})  # fmt: skip
    task = SimpleNamespace(configs=["a", "b"], cells=cells, quality=["metric.dice"],
                           better={"metric.dice": "higher"}, cost=None)  # fmt: skip
    assert list(configuration_summary(task)["best"]) == [False, True]


def test_the_best_says_whether_its_seeds_tell_it_from_the_runner_up():
    """The star is by mean; the line under the table pairs the best with the runner-up
    on seed, as bench stats does (scipy's Wilcoxon, checked by hand: 6 pairs all one
    way give the exact two-sided p = 2 / 2^6 = 0.03125)."""
    from types import SimpleNamespace

    import pandas as pd

    from bench.report import best_margin, configuration_summary

    def task(a, b, c=None):
        n = len(a)
        rows = {"config": ["a"] * n + ["b"] * n, "seed": list(range(n)) * 2,
                "status": ["ok"] * 2 * n, "metric.dice": [*a, *b]}  # fmt: skip
        if c is not None:
            rows["config"] += ["c"] * n
            rows["seed"] += list(range(n))
            rows["status"] += ["ok"] * n
            rows["metric.dice"] += c
        return SimpleNamespace(configs=sorted(set(rows["config"])), cells=pd.DataFrame(rows),
                               quality=["metric.dice"], better={"metric.dice": "higher"},
                               cost=None)  # fmt: skip

    t = task([0.91, 0.92, 0.93, 0.90, 0.95, 0.94], [0.90, 0.91, 0.92, 0.89, 0.94, 0.93],
             [0.5] * 6)  # fmt: skip
    text = best_margin(t, configuration_summary(t))
    assert text.startswith("a is best by mean dice; against the runner-up b, paired on 6 seeds")
    assert "Wilcoxon p = 0.0312 (better at alpha 0.05)" in text
    t = task([0.91, 0.92, 0.93], [0.90, 0.91, 0.92])  # 3 seeds: 0.25 at best
    text = best_margin(t, configuration_summary(t))
    assert "untestable (n=3: p >= 0.25)" in text
    t = task([0.91, 0.80, 0.93, 0.90, 0.95, 0.94], [0.90, 0.91, 0.92, 0.89, 0.94, 0.93])
    assert "not significantly better" in best_margin(t, configuration_summary(t))
    t = task([0.9, 0.9], [0.9, 0.9])  # tied: both starred, no runner-up
    assert best_margin(t, configuration_summary(t)) == ""
    # the seed changes nothing (an ODE problem): six copies are no sample (a test over
    # them gave p = 2 / 2^6 = 0.031, "better")
    t = task([0.9] * 6, [0.8] * 6)
    assert best_margin(t, configuration_summary(t)).endswith(
        "paired on 6 seeds: the same on every seed (a deterministic result): ahead by 0.1"
    )
    # the best by mean leads on one outlier seed; the ranks favour the runner-up on 11
    t = task([0.85] * 12, [0.9] * 11 + [0.0])
    text = best_margin(t, configuration_summary(t))
    assert text.startswith("a is best by mean dice; against the runner-up b, paired on 12")
    assert "(yet the seeds' ranks favour the runner-up at alpha 0.05)" in text


def test_a_configuration_that_failed_on_some_seeds_is_off_the_front():
    """The star left out a configuration that failed on some seeds (its mean is over
    the easy ones); the Pareto front did not (a user audit: a crashing plugin on the
    front at 2/3 ok). Both judge the configurations whose every cell ended ok."""
    from types import SimpleNamespace

    import pandas as pd

    from bench.report import configuration_summary

    rows = [("whole", 0, 0.80, "ok"), ("whole", 1, 0.82, "ok"),
            ("partial", 0, 0.95, "ok"), ("partial", 1, float("nan"), "error")]  # fmt: skip
    cells = pd.DataFrame(rows, columns=["config", "seed", "metric.dice", "status"])
    cells["time.solve.median"] = [2.0, 2.0, 1.0, 1.0]  # the partial one cheaper and better
    task = SimpleNamespace(configs=["whole", "partial"], cells=cells, quality=["metric.dice"],
                           better={"metric.dice": "higher"}, cost="time.solve.median",
                           problem=[])  # fmt: skip
    summary = configuration_summary(task).set_index("config")
    assert summary.loc["whole", "best"] and summary.loc["whole", "front"]
    assert not summary.loc["partial", "best"] and not summary.loc["partial", "front"]


def test_the_best_is_judged_within_each_problem():
    """Two truth generators, one easier: the best on each is starred and paired with its
    own runner-up; before, the easier truth's configuration was the page's only best
    (an easier problem is no better method)."""
    from types import SimpleNamespace

    import pandas as pd

    from bench.report import best_margins, configuration_summary

    rows = [(c, p, s, v) for c, p, base in (("a", "truth=x", 0.9), ("b", "truth=x", 0.8),
                                            ("c", "truth=y", 0.5), ("d", "truth=y", 0.6))
            for s, v in enumerate(base + 0.01 * k for k in range(6))]  # fmt: skip
    cells = pd.DataFrame(rows, columns=["config", "problem", "seed", "metric.dice"])
    cells["status"] = "ok"
    cells["time.solve.median"] = [1.0 if c in "ad" else 2.0 for c in cells["config"]]
    task = SimpleNamespace(configs=["a", "b", "c", "d"], cells=cells, quality=["metric.dice"],
                           better={"metric.dice": "higher"}, cost="time.solve.median",
                           problem=["param.truth"])  # fmt: skip
    summary = configuration_summary(task)
    assert list(summary["best"]) == [True, False, False, True]
    assert list(summary["front"]) == [True, False, False, True]  # one front per truth
    one, two = best_margins(task, summary)
    assert one.startswith("truth=x: a is best by mean dice; against the runner-up b, paired")
    assert two.startswith("truth=y: d is best by mean dice; against the runner-up c, paired")
    assert "Wilcoxon p = 0.0312 (better" in one  # 6 seeds, all one way: 2 / 2^6


def test_report_problem_keys_from_the_command_line(report_run, tmp_path, capsys):
    out = tmp_path / "page.html"
    assert main(["report", str(report_run.path), "--problem", "seconds", "-o", str(out)]) == 0
    section = out.read_text().split("<h2>test.behave</h2>", 1)[1].split("<h2>", 1)[0]
    assert "judged within each seconds (another problem" in section
    for sleep in ("0.001", "0.004"):
        assert (f"<li>★ seconds={sleep}: solver=test.constant mode=ok seconds={sleep} value=1 "
                f"is best by mean value; against the runner-up") in section  # fmt: skip
    assert main(["report", str(report_run.path), "--problem", "second"]) == 2
    assert "--problem second: no task parameter of the run has it; did you mean seconds" in (
        capsys.readouterr().err
    )


def test_the_page_says_what_separates_the_best(page):
    section = page.split("<h2>test.behave</h2>", 1)[1].split("<h2>", 1)[0]
    assert "(2 tied) is best by mean value; against the runner-up" in section


def test_one_colour_per_configuration_across_the_page(page):
    figures = _embedded(page, "FIGURES")
    colours: dict[str, set[str]] = {}
    for fig in figures:
        for variant in fig["variants"]:
            for trace in variant["data"]:
                group = trace.get("legendgroup", "")
                if not group.startswith("solver="):  # test.behave's (test.files: "default")
                    continue
                colour = (trace.get("line") or {}).get("color") or trace["marker"]["color"]
                colours.setdefault(group, set()).add(colour)
    assert len(colours) == 6 and all(len(c) == 1 for c in colours.values())
    assert len({next(iter(c)) for c in colours.values()}) == 6
    keys = re.findall(r'<li data-config="([^"]*)"[^>]*><span class="swatch" '
                      r'style="background:(#[0-9a-f]{6})">', page)  # fmt: skip
    for label, colour in keys:
        assert colours.get(html.unescape(label), {colour}) == {colour}


def test_figures_follow_the_headline(page):
    figures = _embedded(page, "FIGURES")
    titles = [f["title"] for f in figures]
    # one cost-against-quality figure, the curve by step and time, the rest by a selector
    assert titles == [
        "value against work (s)",
        "loss against step",
        "loss against time",
        "any measure against work (s)",
    ]
    cost = figures[0]["variants"][0]
    means = [t for t in cost["data"] if t.get("showlegend", True) and "Pareto" not in t["name"]]
    seeds = [t for t in cost["data"] if t.get("showlegend") is False and t["mode"] == "markers"]
    assert len(means) == 6  # one marker (and legend entry) per configuration
    assert sum(len(t["x"]) for t in seeds) == 12  # every seed's cell, faint
    assert any(t["name"] == "Pareto front" for t in cost["data"])
    assert cost["layout"]["yaxis"]["exponentformat"] in ("e", "power")  # no "10n"
    assert cost["layout"]["xaxis"]["ticksuffix"] == "s"
    curves = figures[1]["variants"][0]["data"]
    assert len({t["legendgroup"] for t in curves}) == 6
    assert sum(t["showlegend"] for t in curves) == 6  # seeds share their configuration's
    measures = [v["name"] for v in figures[3]["variants"]]
    assert "pid" in measures and "value" not in measures  # the headline's is figure 1


def test_a_run_without_a_headline_falls_back(report_run, tmp_path):
    run_dir = _received(report_run, tmp_path)
    meta = json.loads((run_dir / "run.json").read_text())
    meta.pop("headlines", None)
    (run_dir / "run.json").write_text(json.dumps(meta))
    assert main(["report", str(run_dir)]) == 0
    page = (run_dir / "report.html").read_text()
    assert "no headline recorded for this task" in page
    assert "★ best" not in page and '"name":"Pareto front"' not in page
    titles = [f["title"] for f in _embedded(page, "FIGURES")]
    assert titles[0] == "value against work (s)"  # the first metric, the first timer


def test_the_gallery_inlines_the_pictures_and_opens_them_without_a_jump(page):
    body = page.split("</head>", 1)[1]  # plotly.js itself holds such a string
    assert body.count('src="data:image/png;base64,') == 2  # ramp, figure (its svg twin left out)
    assert 'href="#"' not in body


def test_the_page_is_a_template_with_real_files(page):
    from bench.report import asset

    for name in ("report.css", "report.js"):
        text = asset(name)
        assert text.strip() and text.strip()[:200] in page
    assert "{{" not in page.split("</head>", 1)[1].split("<script>", 1)[0]


def test_speedup_bars_with_a_baseline(report_run, tmp_path):
    out = tmp_path / "speed.html"
    assert (
        main(["report", str(report_run.path), "-o", str(out), "--baseline", "param.seconds=0.001"])
        == 0
    )
    titles = [f["title"] for f in _embedded(out.read_text(), "FIGURES")]
    assert any(t.startswith("speedup.work") for t in titles)


def test_two_runs_compared(report_run, tmp_path):
    out = tmp_path / "cmp.html"
    assert main(["report", str(report_run.path), str(report_run.path), "-o", str(out)]) == 0
    page = out.read_text()
    assert "comparison: B against A" in page
    body = page.split("</head>", 1)[1]
    assert body.index("comparison: B against A") < body.index("run A (baseline)")
    tables = _embedded(page, "TABLES")
    times = next(t for t in tables if t["columns"][:2] == ["configuration", "timer"])
    # the same run against itself: every ratio is 1 and nothing is slower
    assert {row[4] for row in times["rows"]} == {1.0}
    assert "slower" not in {row[6] for row in times["rows"]}
    # labels hold what differs between the compared configurations only
    labels = {row[0] for row in times["rows"]}
    assert len(labels) == 6
    assert all("mode=" not in x and "marker" not in x and "value=" in x for x in labels)
    assert len(times["colours"]) == len(times["rows"])


def test_untestable_timer_rows_say_so():
    from bench.compare import TimeRow
    from bench.report import time_verdict

    one = TimeRow({}, "solve", 1.0, 2.0, 1, 1, float("nan"))
    one.range_a, one.range_b = (1.0, 1.0), (2.0, 2.0)
    assert time_verdict(one) == "untestable (n=1/1)"
    three = TimeRow({}, "solve", 1.0, 2.0, 3, 3, float("nan"))
    three.range_a, three.range_b = (0.9, 1.1), (1.9, 2.1)
    assert time_verdict(three) == "untestable (n=3/3); no overlap: slower"


def test_bad_report_arguments_are_one_message(report_run, tmp_path, capsys):
    assert main(["report", str(report_run.path), "-o", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["report", str(report_run.path), "--baseline", "nonsense"]) == 2
    assert "expected COL=VALUE" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing")]) == 2


def test_a_shared_plotly_js_is_linked_once(report_run, tmp_path):
    """--plotly-js: pages kept together link one copy of the library (a relative path)."""
    shared = tmp_path / "plotly.min.js"
    (tmp_path / "a").mkdir()
    out = tmp_path / "a" / "report.html"
    args = ["report", str(report_run.path), "-o", str(out), "--plotly-js", str(shared)]
    assert main(args) == 0
    page = out.read_text()
    assert '<script src="../plotly.min.js"></script>' in page
    assert "Plotly" not in page.split("</head>")[0].replace("plotly.min.js", "")
    assert shared.stat().st_size > 1_000_000  # written, since it was missing
    shared.write_text("// the user's copy")  # an existing copy is kept, not rewritten
    assert main(args) == 0
    assert shared.read_text() == "// the user's copy"
    assert len(page) < 2_000_000


def test_a_bad_plotly_js_path_is_one_message(report_run, tmp_path, capsys):
    assert main(["report", str(report_run.path), "--plotly-js", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    missing = tmp_path / "nowhere" / "plotly.js"
    assert main(["report", str(report_run.path), "--plotly-js", str(missing)]) == 2
    assert "no folder" in capsys.readouterr().err


# --- received runs: the page shows what is in the run folder, and runs nothing ---------


def _received(report_run, tmp_path):
    """A copy of the run to change as a hostile sender would."""
    run_dir = tmp_path / "received"
    shutil.copytree(report_run.path, run_dir)
    (run_dir / "report.html").unlink(missing_ok=True)
    return run_dir


def test_a_report_embeds_no_file_from_outside_its_run_folder(report_run, tmp_path):
    import base64

    import pandas as pd

    run_dir = _received(report_run, tmp_path)
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"SECRET-BYTES-" * 10)
    files = pd.read_parquet(run_dir / "files.parquet")
    picture = files[files["kind"] == "png"].iloc[0]
    folder = run_dir / picture["path"].rsplit("/", 1)[0]
    (folder / "link.png").symlink_to(secret)
    hostile = [
        str(secret),  # absolute
        "../secret.png",  # climbs out
        f"{folder.relative_to(run_dir)}/link.png",  # a link inside that points out
    ]
    rows = [{**picture.to_dict(), "name": f"x{i}.png", "path": p} for i, p in enumerate(hostile)]
    pd.concat([files, pd.DataFrame(rows)]).to_parquet(run_dir / "files.parquet", index=False)
    out = tmp_path / "page.html"
    assert main(["report", str(run_dir), "-o", str(out)]) == 0
    page = out.read_text()
    assert base64.b64encode(secret.read_bytes())[:40].decode() not in page
    assert str(secret) not in page and "secret.png" not in page
    body = page.split("</head>", 1)[1]
    assert body.count('src="data:image/png;base64,') == 2  # the run's own pictures still
    assert "3 pictures listed in files.parquet lie outside the run folder" in page


def test_picture_names_cannot_break_out_of_their_attributes(report_run, tmp_path, monkeypatch):
    import pandas as pd

    run_dir = _received(report_run, tmp_path)
    files = pd.read_parquet(run_dir / "files.parquet")
    picture = files[files["kind"] == "png"].iloc[0]
    name = 'x" onerror="alert(1)" y=".png'
    path = picture["path"].rsplit("/", 1)[0] + "/" + name
    shutil.copy(run_dir / picture["path"], run_dir / path)
    row = {**picture.to_dict(), "name": name, "path": path}
    pd.concat([files, pd.DataFrame([row])]).to_parquet(run_dir / "files.parquet", index=False)
    out = tmp_path / "page.html"
    # past the inlining budget pictures are linked by their path: src and href
    monkeypatch.setattr("bench.report.GALLERY_BUDGET", 0)
    assert main(["report", str(run_dir), "-o", str(out)]) == 0
    page = out.read_text()
    assert 'onerror="alert(1)"' not in page
    assert page.count("x&quot; onerror=&quot;alert(1)&quot;") >= 4  # href, src, alt, title


def test_markup_in_labels_and_errors_cannot_stop_the_page_script(report_run, tmp_path):
    """``<!--<script>`` inside a <script> puts the HTML parser in a state where the
    closing tag no longer ends the script: nothing after it ran."""
    import pandas as pd

    run_dir = _received(report_run, tmp_path)
    cells = pd.read_parquet(run_dir / "cells.parquet")
    cells["label"] = "<!--<script>"
    cells["error"] = cells["error"].where(cells["status"] == "ok", "bad </script><!--<script> &")
    cells.to_parquet(run_dir / "cells.parquet", index=False)
    out = tmp_path / "page.html"
    assert main(["report", str(run_dir), "-o", str(out)]) == 0
    page = out.read_text()
    data = page.split("\n<script>\nconst FIGURES=", 1)[1].split("\nconst ROW_LIMIT", 1)[0]
    assert not set("<>&") & set(data)
    assert "bad &lt;/script&gt;&lt;!--&lt;script&gt; &amp;" in page  # the header shows it
    tables = _embedded(page, "TABLES")
    assert any("bad </script><!--<script> &" in row for t in tables for row in t["rows"])


# --- in a real browser ------------------------------------------------------------


def _browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip(
            "no browser: install Debian's chromium and chromium-driver "
            "(apt-get install chromium chromium-driver) to check the report in one"
        )
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1300,900",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def test_the_page_works_in_headless_chromium(page, report_run):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser = _browser()
    try:
        browser.get((report_run.path / "report.html").as_uri())
        plots = browser.find_elements(By.CSS_SELECTOR, "div.plot")
        assert len(plots) >= 3
        # every figure draws on load, seen or not (printing leaves none blank), and
        # draws its data (points, lines or bars), not an empty frame
        WebDriverWait(browser, 30).until(
            lambda _: all(p.find_elements(By.CSS_SELECTOR, "g.trace") for p in plots)
        )

        browser.execute_script("document.querySelectorAll('details').forEach(d=>d.open=true)")
        table = browser.find_elements(By.CSS_SELECTOR, "div.table")[0]
        rows = lambda: len(table.find_elements(By.CSS_SELECTOR, "tbody tr"))  # noqa: E731
        before = rows()
        assert before == 13
        table.find_element(By.CSS_SELECTOR, "input.filter").send_keys("raised")
        WebDriverWait(browser, 5).until(lambda _: rows() == 1)
        assert "1 of 13" in table.find_element(By.CSS_SELECTOR, ".count").text

        images = browser.find_elements(By.CSS_SELECTOR, ".gallery img")
        assert len(images) == 2
        for image in images:
            browser.execute_script("arguments[0].scrollIntoView()", image)
            WebDriverWait(browser, 10).until(
                lambda _, i=image: browser.execute_script(
                    "return arguments[0].complete && arguments[0].naturalWidth > 0", i
                )
            )
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
    finally:
        browser.quit()


def test_a_page_with_linked_plotly_draws_in_chromium(report_run, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    (tmp_path / "runs").mkdir()
    out = tmp_path / "runs" / "report.html"
    args = ["report", str(report_run.path), "-o", str(out), "--plotly-js", str(tmp_path / "p.js")]
    assert main(args) == 0
    browser = _browser()
    try:
        browser.get(out.as_uri())
        plot = browser.find_elements(By.CSS_SELECTOR, "div.plot")[0]
        WebDriverWait(browser, 20).until(lambda _: plot.find_elements(By.CSS_SELECTOR, "g.trace"))
        assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    finally:
        browser.quit()


def test_a_tuned_configuration_without_test_cells_is_named_under_the_table():
    """A user audit: [bad.raises, relu] tuned; every validation cell of bad.raises
    failed, so it ran no test cell and vanished from the headline table, where relu
    stood alone, starred. The page names it under the table, with why."""
    from types import SimpleNamespace

    from bench.tuned import untested_configurations
    from bench.tuning import TuneRule, Tuning

    rule = TuneRule(grid={"lr": [0.1]}, select="psnr", better="higher", validation_seeds=[9])
    records = []
    for name, status in (("bad.raises", "error"), ("relu", "ok")):
        cells = [[SimpleNamespace(id=name, seed=9)]]
        tuning = Tuning(
            0,
            "fields.image_fit",
            {"encoding": name},
            rule,
            [{"lr": 0.1}],
            validation=cells,
            test=[[SimpleNamespace(id=name + "t", seed=0)]],
        )
        records.append(tuning.record({name: {"status": status, "metric.psnr": 30.0}}))
    text = untested_configurations({"tuning": records}, "fields.image_fit")
    assert text.startswith("not in this table, and so judged with none of it: 1 tuned")
    assert "encoding=bad.raises (no setting ended ok with a finite value" in text
    assert "relu" not in text
    assert untested_configurations({"tuning": records}, "other.task") == ""


def test_round_off_neither_stars_nor_puts_on_the_front():
    """rk4 and the 3/8 rule (identical in exact arithmetic) 1.3e-11 apart: the report
    starred the one ahead by 5.6e-16 alone, and put torchdiffeq.rk4 on the Pareto front
    beside the cheaper rk38 for an error 6e-11 lower (a user audit). Within round-off
    they are one score: both starred, the slower one off the front."""
    from types import SimpleNamespace

    import pandas as pd

    from bench.report import configuration_summary, pareto_front

    err = 8.3325038110e-6
    rows = [("rk38", s, err, 13.4e-3) for s in range(3)]
    rows += [("torchdiffeq.rk4", s, 8.3325038105e-6, 17.7e-3) for s in range(3)]
    rows += [("euler", s, 0.6, 3.1e-3) for s in range(3)]
    cells = pd.DataFrame(rows, columns=["config", "seed", "metric.final_rel_error", "time.s"])
    cells["status"] = "ok"
    task = SimpleNamespace(configs=["rk38", "torchdiffeq.rk4", "euler"], cells=cells,
                           quality=["metric.final_rel_error"], problem=[],
                           better={"metric.final_rel_error": "lower"}, cost="time.s")  # fmt: skip
    summary = configuration_summary(task).set_index("config")
    assert list(summary["best"]) == [True, True, False]
    assert list(summary["front"]) == [True, False, True]
    # a real lead is still a lead; equal cost and tied score: both on the front
    front = pareto_front(pd.Series([1.0, 1.0, 2.0]), pd.Series([1.0, 1.0 + 1e-12, 0.5]))
    assert list(front) == [True, True, True]
    assert list(pareto_front(pd.Series([1.0, 2.0]), pd.Series([1.0, 0.99]))) == [True, True]


def test_an_error_swept_over_a_step_reads_as_its_observed_order():
    """A work-precision run showed no convergence order anywhere (a user audit): the
    page gives the log-log slope of the error against a swept positive parameter, per
    otherwise alike configurations (rk4 4, euler 1), and none for a quality where
    higher is better."""
    from types import SimpleNamespace

    import pandas as pd

    from bench import columns as C
    from bench.report import configuration_summary, sweep_slopes

    rows = []
    for solver, order in (("rk4", 4), ("euler", 1)):
        for h in (0.1, 0.05, 0.025, 0.0125):
            for seed in (0, 1):
                rows.append({"cell_id": f"{solver}{h}{seed}", "seed": seed, "status": "ok",
                             "task": "t", "solver": solver, "param.solver.step_size": h,
                             "metric.error": 3.0 * h**order, "time.s": 1 / h})  # fmt: skip
    cells = pd.DataFrame(rows)
    cells["config"] = C.configuration_labels(cells)
    cells["problem"] = ""
    configs = list(dict.fromkeys(cells["config"]))
    task = SimpleNamespace(configs=configs, cells=cells, quality=["metric.error"], problem=[],
                           better={"metric.error": "lower"}, cost="time.s")  # fmt: skip
    summary = configuration_summary(task)
    assert sweep_slopes(task, summary) == [
        "solver.step_size: solver=rk4 4, solver=euler 1 (error, 4 values each)"
    ]
    task.better = {"metric.error": "higher"}  # a PSNR's power law is no order
    assert sweep_slopes(task, configuration_summary(task)) == []


def test_ties_chained_within_round_off_keep_the_star_on_the_front():
    """A (cost 1, 1.0), B (2, 1 - 0.9e-9), C (3, 1 - 1.8e-9): B ties both, A and C do
    not tie. Pairwise ties starred B and C and put only A on the front (a review).
    As runs of ties anchored at the smallest: B and C are one score, B (cheaper) on
    the front beside A, C off it."""
    from types import SimpleNamespace

    import pandas as pd

    from bench.report import configuration_summary

    rows = [(c, s, v, cost) for c, v, cost in (("A", 1.0, 1.0), ("B", 1 - 0.9e-9, 2.0),
                                               ("C", 1 - 1.8e-9, 3.0)) for s in (0, 1)]  # fmt: skip
    cells = pd.DataFrame(rows, columns=["config", "seed", "metric.err", "time.s"])
    cells["status"] = "ok"
    task = SimpleNamespace(configs=["A", "B", "C"], cells=cells, quality=["metric.err"],
                           better={"metric.err": "lower"}, cost="time.s", problem=[])  # fmt: skip
    summary = configuration_summary(task).set_index("config")
    assert list(summary["best"]) == [False, True, True]
    assert list(summary["front"]) == [True, True, False]


def test_a_budget_line_names_what_records_no_budget():
    """A configuration that records no budget metric (a user's method that counts its
    steps its own way) is named, not left out of the comparison in silence."""
    from types import SimpleNamespace

    import pandas as pd

    from bench import Headline
    from bench.report import budget_differences

    cells = pd.DataFrame({"config": ["a", "b", "c"], "status": ["ok", "ok", "ok"],
                          "metric.loss_evaluations": [5.0, float("nan"), 5.0]})  # fmt: skip
    t = SimpleNamespace(headline=Headline(quality={"e": "lower"}, budget="loss_evaluations"),
                        cells=cells)  # fmt: skip
    summary = pd.DataFrame({"problem": ["", "", ""], "config": ["a", "b", "c"]})
    assert budget_differences(t, summary) == (
        "the configurations' budgets differ (loss_evaluations, mean over seeds): a 5, c 5; "
        "not recorded by b"
    )
    same = summary[summary["config"] != "b"]
    assert budget_differences(t, same) == ""  # the same budget: nothing to say
    # a configuration that only failed recorded nothing to read: not blamed (a review)
    cells.loc[1, "status"] = "error"
    assert budget_differences(t, summary) == ""
    # none records it: said, not silent
    cells["metric.loss_evaluations"] = float("nan")
    cells["status"] = "ok"
    assert budget_differences(t, summary) == (
        "no configuration records loss_evaluations, the budget the task names, so whether "
        "their budgets differ is not shown (its configurations)"
    )
