"""The report as a reader sees it: small runs of the real families (an ODE run like
the quickstart's; registration and fields pairs like their quick suites'), their pages
and a compare page opened in headless Chromium at 1400 px, checked there and
screenshotted.

Set ``DYNBENCH_SCREENSHOTS=tests/bench/screenshots`` to write the screenshots where
they are kept (otherwise they go to the test's temporary folder)::

    DYNBENCH_SCREENSHOTS=tests/bench/screenshots pytest tests/bench/test_report_screens.py -m ''
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main
from bench.results import load_run

from .test_report import _browser

WIDTH = 1400
MAX_HEIGHT = 7000  # px of a screenshot (a page longer than that is cut)

ODE_SUITE = """
suite: ode-screens
description: the quickstart's kinds of cells, fewer and smaller
device: cpu
seeds: [0, 1]
repeats: 6
warmup: 1
timeout: 120
threads: 1
benchmarks:
  - task: ode.harmonic
    params: {solver.step_size: [0.1, 0.02]}
    matrix:
      solver: [euler, rk4]
  - task: ode.neural_ode_fit
    params: {steps: 8, solver.step_size: 0.05}  # the data spacing: rk4 steps to it
    seeds: [0]
    repeats: 1
    matrix:
      solver: [rk4, euler]
"""

FAMILIES_SUITE = """
suite: families-screens
description: registration-quick's and fields-quick's tasks, two configurations each
device: cpu
seeds: [0]
repeats: 1
warmup: 0
timeout: 300
threads: 1
benchmarks:
  - task: registration.pairwise
    params: {downsample: 3, amplitude: 3.0, similarity: ncc, backend: warp.eager,
             method.iterations: 40}
    matrix:
      method: [displacement, svf]
  - task: fields.image_fit
    params: {image: camera, size: 32, steps: 40, eval_every: 10, target_psnr: 20.0,
             backend: sine_mlp.eager, encoding.width: 32, lr: 1.0e-3}
    matrix:
      encoding: [relu, positional]
"""

#: what these tasks declare as their headline; written into a run that recorded none
#: (a run made before the tasks declared theirs), so the pages show the headline path
HEADLINES = {
    "ode.harmonic": {"quality": {"final_rel_error": "lower"}, "cost": "time.solve.median"},
    "ode.neural_ode_fit": {
        "quality": {"final_loss": "lower"},
        "cost": "time.train.median",
        "curves": ["batch_loss"],
    },
    "registration.pairwise": {
        "quality": {"dice": "higher", "error_mm": "lower"},
        "cost": "time.register.median",
        "curves": ["loss"],
    },
    "fields.image_fit": {
        "quality": {"psnr": "higher"},
        "cost": "time.fit.median",
        "curves": ["psnr"],
    },
}


def _run(tmp: Path, text: str, name: str) -> Path:
    suite = tmp / f"{name}.yaml"
    suite.write_text(text)
    assert main(["run", str(suite), "--output", str(tmp / "out"), "--quiet"]) == 0
    run_dir = load_run(tmp / "out" / name).path
    meta = json.loads((run_dir / "run.json").read_text())
    recorded = meta.setdefault("headlines", {})
    for task in set(pd.read_parquet(run_dir / "cells.parquet")["task"]):
        recorded.setdefault(task, HEADLINES[task])
    (run_dir / "run.json").write_text(json.dumps(meta))
    return run_dir


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    where = os.environ.get("DYNBENCH_SCREENSHOTS")
    out = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="module")
def browser():
    driver = _browser()
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def ode_run(tmp_path_factory) -> Path:
    return _run(tmp_path_factory.mktemp("ode"), ODE_SUITE, "ode-screens")


def _slower_copy(run_dir: Path, dest: Path) -> Path:
    """Run B: run A with the Euler cells' timings 1.6 times as long (a regression the
    compare page must show), everything else as measured."""
    shutil.copytree(run_dir, dest)
    cells = pd.read_parquet(dest / "cells.parquet")
    slow = set(cells.loc[cells["solver"] == "euler", "cell_id"])
    samples = pd.read_parquet(dest / "samples.parquet")
    samples.loc[samples["cell_id"].isin(slow), "seconds"] *= 1.6
    samples.to_parquet(dest / "samples.parquet", index=False)
    for col in [c for c in cells.columns if c.startswith("time.") and not c.endswith(".n")]:
        cells.loc[cells["cell_id"].isin(slow), col] *= 1.6
    cells.to_parquet(dest / "cells.parquet", index=False)
    return dest


# --- in the browser ------------------------------------------------------------------

_PAGE_FACTS = """
const rect = e => { const r = e.getBoundingClientRect();
  return [r.left, r.top + scrollY, r.right, r.bottom + scrollY]; };
return [...document.querySelectorAll("section.task")].map(s => {
  const key = s.querySelector("ul.key");
  const plots = [...s.querySelectorAll("div.plot")].map(p => ({
    id: p.id,
    drawn: !!p.querySelector("svg.main-svg g.trace"),
    legend: !!(p._fullLayout && p._fullLayout.showlegend),
    groups: [...new Set((p.data || []).map(t => t.legendgroup)
                          .filter(g => g && !g.startsWith("__")))],
    shown: (p.data || []).filter(t => t.showlegend !== false && t.legendgroup
                                   && !t.legendgroup.startsWith("__")).length,
    area: p.querySelector(".nsewdrag") ? rect(p.querySelector(".nsewdrag")) : null,
    yticks: [...p.querySelectorAll("g.ytick text")].map(t => t.textContent),
    ytitle: (p.querySelector("g.g-ytitle text") || {}).textContent || "",
  }));
  return {
    task: s.querySelector("h2").textContent,
    rows: s.querySelectorAll("table.headline tbody tr").length,
    key: key ? [...key.querySelectorAll("li")].map(li => li.dataset.config) : [],
    keyRect: key ? rect(key) : null,
    plots,
  };
});
"""


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _open(browser, page: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    browser.set_window_size(WIDTH, 900)
    browser.get(page.as_uri())
    # every figure draws on load, unseen ones too (a printed page has them all)
    WebDriverWait(browser, 60).until(
        lambda b: b.execute_script(
            "return [...document.querySelectorAll('div.plot')]"
            ".every(p => p.querySelector('svg.main-svg g.trace'))"
        )
    )


def _screenshot(browser, path: Path) -> None:
    """The whole page (up to MAX_HEIGHT px), its colours reduced to keep the file small."""
    from PIL import Image

    height = browser.execute_script("scrollTo(0, 0); return document.documentElement.scrollHeight")
    browser.set_window_size(WIDTH, min(height + 120, MAX_HEIGHT))
    image = Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB")
    # an octree palette keeps each configuration's colour (a median cut merges them)
    image.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(path, optimize=True)
    browser.set_window_size(WIDTH, 900)


def _errors(browser) -> list:
    return [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def _check_report(browser, page: Path) -> list[dict]:
    """Figures drawn, one key entry per configuration, no legend over a plot, no SI
    prefix on a dimensionless axis; returns the facts for more checks."""
    _open(browser, page)
    facts = browser.execute_script(_PAGE_FACTS)
    assert facts, "no task section"
    for section in facts:
        task = section["task"]
        assert section["rows"] >= 1, task
        if not section["plots"]:
            continue
        # the key: one entry per configuration, as many as the headline table's rows
        assert len(section["key"]) == section["rows"] == len(set(section["key"])), task
        for plot in section["plots"]:
            assert plot["drawn"], (task, plot["id"])
            assert not plot["legend"], (task, plot["id"])  # the key is the legend
            assert set(plot["groups"]) <= set(section["key"]), (task, plot["id"])
            assert plot["shown"] == len(plot["groups"]), (task, plot["id"])  # one each
            area = plot["area"]
            assert area and area[3] - area[1] > 250, (task, plot["id"])  # keeps its height
            assert not _overlap(section["keyRect"], area), (task, plot["id"])
            if not plot["ytitle"].endswith(("(s)", "(B)")):  # dimensionless: no 10n, 200p
                assert not [t for t in plot["yticks"] if t[-1:] in "munpfµkMG"], plot
        # the cost-against-quality figure: a marker for each configuration
        first = section["plots"][0]
        assert len(first["groups"]) == len(section["key"]), task
    return facts


def _check_gallery_click(browser) -> None:
    """A picture opens full size on the page, without a jump to the top."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    image = browser.find_elements(By.CSS_SELECTOR, ".gallery img")[0]
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", image)
    before = browser.execute_script("return [scrollY, location.hash]")
    image.click()
    lightbox = browser.find_element(By.ID, "lightbox")
    assert lightbox.is_displayed()
    assert browser.execute_script("return [scrollY, location.hash]") == before
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    assert not lightbox.is_displayed()


def test_an_ode_report_in_chromium(ode_run, browser, shots):
    page = ode_run / "report.html"
    assert main(["report", str(ode_run), "-o", str(page)]) == 0
    facts = _check_report(browser, page)
    harmonic = next(s for s in facts if s["task"] == "ode.harmonic")
    assert len(harmonic["key"]) == 4  # 2 solvers x 2 step sizes; seeds pooled
    assert any("step_size=0.1" in k for k in harmonic["key"])
    _check_gallery_click(browser)
    assert _errors(browser) == []
    _screenshot(browser, shots / "report-ode.png")


def test_a_compare_page_in_chromium_shows_its_verdicts_at_1400px(ode_run, browser, shots):
    run_b = _slower_copy(ode_run, ode_run.parent / "slower")
    page = run_b / "compare.html"
    assert main(["report", str(ode_run), str(run_b), "-o", str(page)]) == 0
    _open(browser, page)
    found = browser.execute_script(
        """
        const tables = [...document.querySelectorAll("section.compare div.table")];
        return tables.map(t => {
          const heads = [...t.querySelectorAll("thead th")];
          const verdict = heads.find(h => h.textContent === "verdict");
          return {
            right: verdict.getBoundingClientRect().right,
            columns: heads.map(h => h.textContent),
            verdicts: [...t.querySelectorAll("td.verdict")].map(d => d.textContent),
            labels: [...t.querySelectorAll("tbody td:first-child")].map(d => d.textContent),
          };
        });
        """
    )
    width = browser.execute_script("return innerWidth")
    assert found and all(t["right"] <= width for t in found)
    assert browser.execute_script("return document.documentElement.scrollWidth") <= width
    times = [t for t in found if t["columns"][:2] == ["configuration", "timer"]]
    verdicts = [v for t in times for v in t["verdicts"]]
    labels = [x for t in times for x in t["labels"]]
    assert "slower" in verdicts and "same" in verdicts  # Euler's timings, 1.6 times
    assert any(v.startswith("untestable (n=1/1)") for v in verdicts)  # one train each
    assert all("steps=" not in x and "t1=" not in x for x in labels)  # only what differs
    assert _errors(browser) == []
    _screenshot(browser, shots / "compare-ode.png")


@pytest.mark.slow
def test_registration_and_fields_reports_in_chromium(tmp_path, browser, shots):
    run_dir = _run(tmp_path, FAMILIES_SUITE, "families-screens")
    page = run_dir / "report.html"
    assert main(["report", str(run_dir), "-o", str(page)]) == 0
    facts = _check_report(browser, page)
    assert {s["task"] for s in facts} == {"registration.pairwise", "fields.image_fit"}
    for section in facts:
        assert len(section["key"]) == 2
        titles = len(section["plots"])
        assert titles >= 3  # cost-quality, the curve by step and by time, any measure
    _check_gallery_click(browser)
    assert _errors(browser) == []
    _screenshot(browser, shots / "report-registration-fields.png")


SUITES = Path(__file__).resolve().parents[2] / "suites"


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory) -> dict[str, Path]:
    """The shipped quick suites as a new user runs them (about 10 minutes of CPU), and
    a second quickstart run of the same commit for the compare page."""
    out = tmp_path_factory.mktemp("quick")
    runs = {}
    for name, suite in [("quickstart", "quickstart"), ("quickstart-b", "quickstart"),
                        ("fields-quick", "fields-quick"),
                        ("registration-quick", "registration-quick")]:  # fmt: skip
        root = out / name
        assert main(["run", str(SUITES / f"{suite}.yaml"), "--output", str(root), "--quiet"]) == 0
        runs[name] = load_run(next(next(root.iterdir()).iterdir())).path
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("name", ["quickstart", "fields-quick", "registration-quick"])
def test_the_quick_suites_reports_in_chromium(quick_runs, browser, shots, name):
    run_dir = quick_runs[name]
    page = run_dir / "report.html"
    assert main(["report", str(run_dir), "-o", str(page)]) == 0
    facts = _check_report(browser, page)
    tasks = set(pd.read_parquet(run_dir / "cells.parquet")["task"])
    assert {s["task"] for s in facts} == tasks
    assert _errors(browser) == []
    _screenshot(browser, shots / f"report-{name}.png")


@pytest.mark.slow
def test_two_quickstart_runs_compare_page_in_chromium(quick_runs, browser, shots):
    """Two runs of one commit: verdicts in view at 1400 px, and no timer with one
    sample a side fails the time gate for lack of samples."""
    a, b = quick_runs["quickstart"], quick_runs["quickstart-b"]
    page = b / "compare.html"
    assert main(["report", str(a), str(b), "-o", str(page)]) == 0
    _open(browser, page)
    right = browser.execute_script(
        "return Math.max(...[...document.querySelectorAll('section.compare thead th')]"
        ".filter(h => h.textContent === 'verdict').map(h => h.getBoundingClientRect().right))"
    )
    assert right <= browser.execute_script("return innerWidth")
    assert browser.execute_script("return document.documentElement.scrollWidth") <= WIDTH
    assert _errors(browser) == []
    _screenshot(browser, shots / "compare-quickstart.png")
    from bench.compare import Gate, check_gates, compare_runs, untestable_under

    cmp = compare_runs(load_run(a), load_run(b))
    gate = [Gate.parse("time:+10%")]
    # one-sample timers (the neural ODE's train) past +10% are listed, never failed;
    # what fails the gate (load on a shared machine can) had samples enough to test
    for v in untestable_under(cmp, gate):
        assert v.verdict.startswith("untestable")
    for v in check_gates(cmp, gate):
        (row,) = [r for r in cmp.times if r.key == v.key and f"time.{r.timer}" == v.what]
        assert row.testable, v
