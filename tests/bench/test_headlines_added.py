"""``bench headlines``: a run made before tasks declared headlines gets them afterwards,
recorded with where they came from, so its pages show a best and a Pareto front (the
published runs from before headlines are such runs)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from bench.cli import main
from bench.results import load_run
from bench.site import task_table

ROOT = Path(__file__).resolve().parents[2]
OLD = ROOT / "results" / "published" / "kernels-headline-h200"  # recorded no headline


def _old_run(tmp_path: Path) -> Path:
    run = tmp_path / "old"
    run.mkdir()
    for name in ("run.json", "cells.parquet", "samples.parquet", "curves.parquet"):
        shutil.copy(OLD / name, run / name)
    meta = json.loads((run / "run.json").read_text())
    meta.pop("headlines", None)  # as the published copy is, should it ever be amended
    meta.pop("headlines_added", None)
    (run / "run.json").write_text(json.dumps(meta))
    return run


def test_an_old_run_gets_the_headlines_its_tasks_declare_with_their_source(tmp_path, capsys):
    run = _old_run(tmp_path)
    before = (run / "run.json").read_bytes()
    assert main(["headlines", str(run)]) == 0
    said = capsys.readouterr().out
    assert "kernels.warp: would record quality output_error_max (lower is better)" in said
    assert (run / "run.json").read_bytes() == before  # without --record: nothing written
    report = tmp_path / "before.html"
    assert main(["report", str(run), "-o", str(report)]) == 0
    assert "no headline recorded for this task" in report.read_text()
    assert "<tr class=bestrow>" not in report.read_text()

    assert main(["headlines", str(run), "--record"]) == 0
    assert "kernels.sine_mlp: recorded quality" in capsys.readouterr().out
    meta = json.loads((run / "run.json").read_text())
    assert set(meta["headlines"]) == {"kernels.warp", "kernels.svf_exp", "kernels.sine_mlp"}
    assert meta["headlines"]["kernels.warp"]["cost"] == "time.forward.median"
    source = meta["headlines_added"]["kernels.warp"]
    assert set(source) == {"commit", "dirty", "date"} and source["date"].startswith("20")
    # everything else in the record is as it was
    old = json.loads(before)
    assert {k: v for k, v in meta.items() if k not in ("headlines", "headlines_added")} == old

    report = tmp_path / "after.html"
    assert main(["report", str(run), "-o", str(report)]) == 0
    page = report.read_text()
    assert "the run recorded none: added after the run, as the task declared it at" in page
    assert "<tr class=bestrow>" in page  # a best now: which way is better is known
    # backends compared, none tuned (the run predates tuning): the star says of what
    assert "None tuned: each backend ran at the values the suite gave" in page
    site = tmp_path / "site"
    assert main(["site", str(run), "-o", str(site)]) == 0
    index = "".join(p.read_text() for p in site.rglob("*.html") if p.name != "report.html")
    assert "headline added after the run, as the task declared it at commit" in index
    assert "None tuned: each backend ran at the values the suite gave" in index
    # the best warp configuration is the one with the lowest output error of its problem
    cells = load_run(run).cells
    warp = cells[cells["task"] == "kernels.warp"]
    table = task_table(load_run(run), "kernels.warp")
    assert table is not None and table.declared
    best = [r for r in table.rows if "metric.output_error_max" in r.get("best", set())]
    lowest = warp.groupby("param.size", sort=False)["metric.output_error_max"].min()
    assert sorted(r["values"]["metric.output_error_max"] for r in best) == sorted(lowest)

    # a second time: the recorded ones are left as they are
    assert main(["headlines", str(run), "--record"]) == 0
    assert capsys.readouterr().out.count("added before, as the task still declares it; left") == 3
    assert json.loads((run / "run.json").read_text())["headlines_added"] == meta["headlines_added"]


def test_tasks_it_cannot_give_a_headline_are_named_and_left(tmp_path, capsys):
    run = _old_run(tmp_path)
    cells = pd.read_parquet(run / "cells.parquet")
    cells.loc[cells["task"] == "kernels.svf_exp", "task"] = "mine.unknown_task"
    # the kernels' cells as if recorded under other metric names
    cells = cells.drop(
        columns=["metric.output_error_max", "metric.gbs_forward", "metric.tflops_forward"]
    )
    cells.to_parquet(run / "cells.parquet")
    assert main(["headlines", str(run), "--record"]) == 0
    said = capsys.readouterr().out
    assert "mine.unknown_task: no such task is registered here (unknown task" in said
    assert "kernels.warp: its cells record none of the quality metrics" in said
    assert "kernels.sine_mlp: its cells record none of the quality metrics" in said
    meta = json.loads((run / "run.json").read_text())
    assert "headlines" not in meta and "headlines_added" not in meta  # nothing to add


def test_a_run_being_written_or_without_its_record_is_refused(tmp_path, capsys):
    from bench.results import RunLock

    run = _old_run(tmp_path)
    lock = RunLock(run)
    lock.acquire()  # a bench run writing it (here: this process holds its lock)
    try:
        before = (run / "run.json").read_bytes()
        # the lock is flock'd on an open file: a second open in this process is refused
        assert main(["headlines", str(run), "--record"]) == 1
        said = capsys.readouterr().out
        assert "a bench run is writing it" in said or "another bench run (pid " in said
        assert (run / "run.json").read_bytes() == before
    finally:
        lock.release()
    assert main(["headlines", str(run), "--record"]) == 0  # released: recorded
    (run / "run.json").unlink()
    assert main(["headlines", str(run), "--record"]) == 1
    assert "run.json: missing; nothing to record the headlines in" in capsys.readouterr().out


def test_odd_records_are_read_as_the_pages_read_them(tmp_path, capsys):
    """ "headlines": null is none recorded (the readers' view, not a refusal); a recorded
    entry that is no headline is replaced, and said (a review)."""
    run = _old_run(tmp_path)
    meta = json.loads((run / "run.json").read_text())
    meta["headlines"] = None
    (run / "run.json").write_text(json.dumps(meta))
    assert main(["headlines", str(run)]) == 0
    assert "kernels.warp: would record quality" in capsys.readouterr().out
    meta["headlines"] = {"kernels.warp": "oops"}
    (run / "run.json").write_text(json.dumps(meta))
    assert main(["headlines", str(run), "--record"]) == 0
    said = capsys.readouterr().out
    assert "kernels.warp: recorded (in place of a malformed one) quality" in said
    assert json.loads((run / "run.json").read_text())["headlines"]["kernels.warp"]["quality"]


def test_runs_recorded_together_name_one_source(tmp_path, monkeypatch):
    """The source is taken once, before any run.json is written: writing one into a
    checked-in results folder makes the tree dirty, which the next would record (here
    each git_state call answers otherwise, so a second call would show)."""
    import bench.sysinfo

    calls = iter(range(100))
    monkeypatch.setattr(
        bench.sysinfo, "git_state", lambda: {"commit": f"c{next(calls)}", "dirty": False}
    )
    first = _old_run(tmp_path)
    second = tmp_path / "second"
    shutil.copytree(first, second)
    assert main(["headlines", str(first), str(second), "--record"]) == 0
    added = [json.loads((r / "run.json").read_text())["headlines_added"] for r in (first, second)]
    assert added[0] == added[1] and len({json.dumps(s) for s in added[0].values()}) == 1


def test_a_headline_added_before_is_taken_again_where_the_task_changed_it(tmp_path):
    """Headlines added before a task declared its size are refreshed by a second
    --record; ones the run recorded itself never are."""
    from types import SimpleNamespace

    from bench import Headline
    from bench.results import add_headlines, load_run

    run = _old_run(tmp_path)
    first = Headline(quality={"output_error_max": "lower"}, cost="time.forward.median")
    later = Headline(quality={"output_error_max": "lower"}, cost="time.forward.median",
                     size="params")  # fmt: skip
    current = {"h": first}

    class Tasks:
        def get(self, kind, name):
            return SimpleNamespace(headline=current["h"])

    source = {"commit": "c", "dirty": False, "date": "2026-12-07"}
    add_headlines(load_run(run), Tasks(), record=True, source=source)
    lines = add_headlines(load_run(run), Tasks(), record=True, source=source)
    assert all("added before, as the task still declares it; left" in line for line in lines)
    current["h"] = later
    lines = add_headlines(load_run(run), Tasks(), record=True, source=source)
    assert all("recorded (in place of the one added before)" in line for line in lines)
    meta = json.loads((run / "run.json").read_text())
    assert all(h.get("size") == "params" for h in meta["headlines"].values())
    # a quality since renamed: the cells hold the old name, so the old headline stays
    current["h"] = Headline(quality={"renamed_error": "lower"}, cost="time.forward.median")
    lines = add_headlines(load_run(run), Tasks(), record=True, source=source)
    assert all("now declares qualities these cells record fewer of" in line for line in lines)
    assert json.loads((run / "run.json").read_text())["headlines"] == meta["headlines"]
    # a headline the run recorded itself is left, whatever the task declares now
    del meta["headlines_added"]
    (run / "run.json").write_text(json.dumps(meta))
    current["h"] = first
    lines = add_headlines(load_run(run), Tasks(), record=True, source=source)
    assert all("the run recorded its headline; left as it is" in line for line in lines)
