"""bench.stats and `bench stats`: paired Wilcoxon signed-rank tests of one configuration
against each other, Benjamini-Hochberg adjusted, checked against scipy called directly
on hand-made pairs and a hand-written BH."""

from __future__ import annotations

import math
import re
import textwrap

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wilcoxon

from bench.cli import main
from bench.stats import StatsError, paired_comparisons

pytestmark = pytest.mark.usefixtures("frozen_heap")

SEEDS = range(8)
TRUTHS = ["x", "y"]


def _value(method: str, truth: str, seed: int) -> float:
    """a is the reference; b is below it by a different amount in every pair (no tied
    differences, so scipy's p is the exact one); c is a's value with a sign-alternating
    perturbation (no consistent difference)."""
    base = 0.7 + 0.01 * seed + (0.05 if truth == "y" else 0.0)
    if method == "a":
        return base
    if method == "b":
        return base - 0.02 - 0.003 * seed - (0.0011 if truth == "y" else 0.0)
    return base + (0.001 * (seed + 1)) * (-1) ** seed


def _table() -> pd.DataFrame:
    rows = []
    for method, k in (("a", 1), ("b", 2), ("c", 3)):
        for truth in TRUTHS:
            for seed in SEEDS:
                # a tuned method's chosen setting (param.method.k) differs by truth: it
                # belongs to the method and must not stop the pairing
                setting = k + (10 if truth == "y" else 0)
                rows.append(_row(method, truth, seed, setting, "test", _value(method, truth, seed)))
            # validation cells: never compared (their values would move every mean)
            rows.append(_row(method, truth, 100, setting, "validation", 99.0))
    rows.append({**_row("b", "x", 50, 2, "test", 1.0), "status": "error"})  # not ok: out
    return pd.DataFrame(rows)


def _row(method, truth, seed, setting, role, value) -> dict:
    return {
        "cell_id": f"{method}{truth}{seed}{role}",
        "bench": "entry-a" if method == "a" else "entry-b",  # the entry's name: not matched
        "task": "toy",
        "method": method,
        "param.method.k": setting,
        "param.truth": truth,
        "param.noise": 0.1,
        "seed": seed,
        "role": role,
        "status": "ok",
        "metric.dice": value,
    }


def _pairs(other: str, truths=TRUTHS) -> tuple[np.ndarray, np.ndarray]:
    ref = [_value("a", t, s) for t in truths for s in SEEDS]
    oth = [_value(other, t, s) for t in truths for s in SEEDS]
    return np.array(ref), np.array(oth)


def _bh(ps: list[float]) -> list[float]:
    """Benjamini-Hochberg by its definition: q_(i) = min over j >= i of m p_(j) / j."""
    m = len(ps)
    order = sorted(range(m), key=lambda i: ps[i])
    q = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, ps[i] * m / rank)
        q[i] = running
    return q


def test_pooled_comparisons_agree_with_scipy_on_the_hand_made_pairs():
    table = paired_comparisons(_table(), "dice", "method=a", better="higher")
    rows = {r.other: r for r in table.rows}
    assert set(rows) == {"method=b", "method=c"}
    ps = []
    for other in ("b", "c"):
        ref, oth = _pairs(other)
        row = rows[f"method={other}"]
        assert row.n == 16  # 2 truths x 8 seeds; validation and the error cell left out
        # the same floats summed in the same order: equal to rounding (1e-12)
        assert row.reference_mean == pytest.approx(ref.mean(), abs=1e-12)
        assert row.other_mean == pytest.approx(oth.mean(), abs=1e-12)
        assert row.difference == pytest.approx((ref - oth).mean(), abs=1e-12)
        expected = wilcoxon(ref, oth, alternative="two-sided").pvalue
        assert row.p == pytest.approx(expected, rel=1e-12)
        ps.append(expected)
    # b is below a in every pair: the exact two-sided p of 16 same-sign pairs, 2 / 2^16
    assert rows["method=b"].p == pytest.approx(2 / 2**16, rel=1e-9)
    for other, q in zip(("b", "c"), _bh(ps)):
        assert rows[f"method={other}"].q == pytest.approx(q, rel=1e-12)
    assert rows["method=b"].verdict == "method=a better"
    assert rows["method=c"].verdict == "n.s."  # c alternates around a: no consistent difference


def test_by_compares_within_each_value_and_adjusts_across_all():
    table = paired_comparisons(_table(), "dice", "method=a", by=["truth"], better="higher")
    assert [(r.group, r.other) for r in table.rows] == [
        ("truth=x", "method=b"),
        ("truth=x", "method=c"),
        ("truth=y", "method=b"),
        ("truth=y", "method=c"),
    ]
    ps = []
    for row in table.rows:
        ref, oth = _pairs(row.other[-1], truths=[row.group[-1]])
        assert row.n == 8
        ps.append(wilcoxon(ref, oth).pvalue)
        assert row.p == pytest.approx(ps[-1], rel=1e-12)
    assert [r.q for r in table.rows] == pytest.approx(_bh(ps), rel=1e-12)


def test_two_tasks_sharing_a_metric_name_are_compared_task_by_task():
    """classify.toy's and classify.digits' accuracies are two measures: the comparisons
    keep them apart as --by task would (before, each configuration's pairs of both tasks
    went into one test and one mean)."""
    table = _table()
    other = table.assign(task="other", cell_id=table["cell_id"] + "-other")
    other["metric.dice"] = other["metric.dice"] - 0.5  # another scale altogether
    both = paired_comparisons(pd.concat([table, other]), "dice", "method=a", better="higher")
    assert [(r.group, r.other, r.n) for r in both.rows] == [
        ("task=other", "method=b", 16), ("task=other", "method=c", 16),
        ("task=toy", "method=b", 16), ("task=toy", "method=c", 16),
    ]  # fmt: skip
    one = {r.other: r for r in paired_comparisons(_table(), "dice", "method=a").rows}
    for row in both.rows:
        if row.group == "task=toy":  # the same as that task alone (p; q is over 4 tests)
            assert row.p == one[row.other].p and row.difference == one[row.other].difference


def test_the_verdict_follows_the_ranks_the_test_ranks_not_a_mean_led_by_one_seed():
    """b scores 0.85 on 12 seeds, a 0.9 on 11 and 0 on one: a's mean is lower, yet it is
    higher on 11 of 12 pairs and the signed-rank test says so (the verdict named b from
    the mean difference)."""
    rows = [{**_row(m, "x", seed, 1, "test", v), "cell_id": f"{m}{seed}"}
            for seed in range(12)
            for m, v in (("a", 0.0 if seed == 11 else 0.9), ("b", 0.85))]  # fmt: skip
    (row,) = paired_comparisons(pd.DataFrame(rows), "dice", "method=b", better="higher").rows
    assert row.difference > 0 and row.rank_sum < 0 and row.q < 0.05
    assert row.verdict == "method=a better"


def test_lower_is_better_flips_the_verdict_and_no_direction_says_higher():
    lower = paired_comparisons(_table(), "dice", "method=a", better="lower")
    unknown = paired_comparisons(_table(), "dice", "method=a")
    assert {r.other: r.verdict for r in lower.rows}["method=b"] == "method=b better"
    assert {r.other: r.verdict for r in unknown.rows}["method=b"] == "method=a higher"


def test_equal_pairs_give_p_one():
    cells = _table()
    cells.loc[cells["method"] == "c", "metric.dice"] = cells.loc[
        cells["method"] == "a", "metric.dice"
    ].to_numpy()
    row = {r.other: r for r in paired_comparisons(cells, "dice", "method=a").rows}["method=c"]
    assert row.p == 1.0 and row.difference == 0.0 and row.verdict == "n.s."


def test_configurations_without_pairs_are_named_with_why(capsys, tmp_path):
    """A method whose every cell failed, and one that ran with another noise than the
    reference, pair with nothing: they were left out of the table without a word."""
    cells = _table()
    failed = cells[cells["method"] == "b"].assign(method="d", status="error")
    other = cells[cells["method"] == "b"].assign(method="e", **{"param.noise": 0.2})
    cells = pd.concat([cells, failed, other], ignore_index=True)
    table = paired_comparisons(cells, "dice", "method=a", better="higher")
    assert {r.other for r in table.rows} == {"method=b", "method=c"}
    assert table.left_out == [
        "method=d: no cell ok with a finite metric.dice",
        "method=e: no cell ran as a reference cell did (it differs in noise)",
    ]
    run = tmp_path / "run"
    run.mkdir()
    cells.assign(label="t", suite="t", error="", bench=0).to_parquet(run / "cells.parquet")
    (run / "run.json").write_text('{"suite": "t"}')
    assert main(["stats", str(run), "--metric", "dice", "--reference", "method=a",
                 "--better", "higher"]) == 0  # fmt: skip
    assert "left out: method=e: no cell ran as a reference cell did" in capsys.readouterr().out
    # a reference key the others lack: they are paired, and not listed as left out
    only = _table().assign(**{"param.method.only": None})
    only.loc[only["method"] == "a", "param.method.only"] = 1
    table = paired_comparisons(only, "dice", "method=a,method.only=1", better="higher")
    assert {r.other for r in table.rows} == {"method=b", "method=c"} and table.left_out == []


def test_too_few_pairs_for_any_p_to_reach_alpha_read_untestable_not_ns():
    """b is below a on every one of 3 seeds: the exact two-sided p can be no smaller
    than 2 / 2^3 = 0.25, so no evidence was possible; 'n.s.' would read as evidence of
    no difference. With 7 pairs (smallest p 0.016; 0.031 adjusted for the two
    comparisons) the test can decide."""
    cells = _table()
    few = cells[cells["seed"].isin([0, 1, 2, 100]) & (cells["param.truth"] == "x")]
    rows = {r.other: r for r in paired_comparisons(few, "dice", "method=a", better="higher").rows}
    assert rows["method=b"].n == 3 and rows["method=b"].p == pytest.approx(0.25)
    assert rows["method=b"].verdict == "untestable (n=3: p >= 0.25)"  # before: n.s.
    seven = cells[cells["seed"].isin(range(7)) & (cells["param.truth"] == "x")]
    rows = {r.other: r for r in paired_comparisons(seven, "dice", "method=a", better="higher").rows}
    assert rows["method=b"].verdict == "method=a better"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"metric": "dise"}, "--metric 'dise': no such metric in the run's cells; did you mean"),
        ({"reference": "method=zz"}, "--reference 'method=zz' matches no cell of the run"),
        ({"reference": "methd=a"}, "--reference key 'methd': no such column"),
        ({"reference": "method"}, "expected KEY=VALUE"),
        ({"by": ["truht"]}, "--by 'truht': no such column"),
        ({"by": ["method"]}, "--by method: that is the compared configuration itself"),
    ],
)
def test_bad_input_is_one_clear_message(kwargs, message):
    args = {"metric": "dice", "reference": "method=a", **kwargs}
    with pytest.raises(StatsError, match=re.escape(message)):
        paired_comparisons(_table(), args.pop("metric"), args.pop("reference"), **args)


def test_a_reference_naming_two_pairing_cells_asks_for_another_key():
    cells = _table()
    twin = cells[cells["method"] == "a"].assign(**{"param.method.k": 7, "cell_id": "twin"})
    with pytest.raises(StatsError, match=r"matches 2 cells .* differ in param.method.k"):
        paired_comparisons(pd.concat([cells, twin]), "dice", "method=a")


def test_no_pairs_is_refused():
    cells = _table()
    cells.loc[cells["method"] != "a", "param.noise"] = 0.2  # nothing else ran like a
    with pytest.raises(StatsError, match="no cell pairs"):
        paired_comparisons(cells, "dice", "method=a")


PLUGIN = textwrap.dedent(
    '''
    from bench import Headline, Param, Solver, Task, hookimpl


    class A(Solver):
        name = "st.a"
        params = {"step_size": Param(0.1)}

        def odeint(self, func, y0, t, **options):
            return y0


    class B(A):
        name = "st.b"


    class Score(Task):
        """score: st.a higher than st.b by 0.1 + 0.01 seed on every seed."""

        name = "st.score"
        components = {"solver": Solver}
        headline = Headline(quality={"score": "higher"})

        def run(self, ctx):
            gap = 0.1 + 0.01 * ctx.seed
            ctx.metric("score", ctx.seed + (gap if ctx.components["solver"].name == "st.a" else 0))


    @hookimpl
    def bench_plugins():
        return [A, B, Score]
    '''
)


@pytest.fixture
def toy_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "st_plugins.py").write_text(PLUGIN)
    (tmp_path / "st.yaml").write_text(
        "suite: st\ndevice: cpu\nrepeats: 1\nseeds: [0, 1, 2, 3, 4, 5]\n"
        "plugins: [./st_plugins.py]\nbenchmarks:\n"
        "  - task: st.score\n    matrix: {solver: [st.a, st.b]}\n"
    )
    assert main(["run", "st.yaml", "--output", "out", "--in-process", "--quiet"]) == 0
    return str(next((tmp_path / "out" / "st").iterdir()))


def test_the_command_prints_the_table_with_the_headline_direction(toy_run, capsys):
    assert main(["stats", toy_run, "--metric", "score", "--reference", "solver=st.a"]) == 0
    out = capsys.readouterr().out
    assert "higher is better" in out
    # 6 pairs, a above b in all: exact two-sided p = 2 / 2^6 = 0.03125; one comparison: q = p
    row = next(line for line in out.splitlines() if "solver=st.b" in line)
    assert "0.0312" in row and "solver=st.a better" in row
    assert wilcoxon(np.arange(6) + 0.1 + 0.01 * np.arange(6), np.arange(6)).pvalue == 0.03125
    # a timer is lower-is-better without --better (a user audit had to give it)
    from bench.cli import _direction

    assert _direction(None, None, "time.solve.median") == "lower"
    assert _direction(None, None, "mem.train") == "lower"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--metric", "scor", "--reference", "solver=st.a"], "did you mean score"),
        (["--metric", "score", "--reference", "solver=st.z"], "matches no cell of the run"),
    ],
)
def test_the_command_refuses_bad_input_with_exit_2(toy_run, capsys, argv, message):
    assert main(["stats", toy_run, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("error:") == 1 and "Traceback" not in err


# --- time to reach the reference's result (bench reach) ------------------------------


def _race(tmp_path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """a (the reference) ends at its _value after 10 s on every pair; c's curve rises
    linearly from 0.5 to its final value over 8 s, sampled every second, so it first
    stands at or past a's value at the first whole second after the exact crossing; b
    ends below a and never reaches it."""
    cells = _table()
    cells["time.register.median"] = np.where(cells["method"] == "a", 10.0, 8.0)
    rows = []
    for _, cell in cells.iterrows():
        final = float(cell["metric.dice"])
        for t in range(9):
            rows.append({"cell_id": cell["cell_id"], "curve": "dice", "step": 10 * t,
                         "time": float(t), "value": 0.5 + (final - 0.5) * t / 8})  # fmt: skip
    return cells, pd.DataFrame(rows)


def test_time_to_reach_is_the_first_sample_at_the_target():
    from bench.stats import time_to_reach

    cells, curves = _race(None)
    rows = time_to_reach(cells, curves, "dice", "method=a", "register", better="higher")
    assert len(rows) == 2 * len(TRUTHS) * len(SEEDS)  # b and c on every test pair
    for r in rows:
        truth, seed = re.fullmatch(r"seed=(\d+) truth=(\w)", r.pair).group(2, 1)
        target = _value("a", truth, int(seed))
        assert r.target == target and r.reference_cost == 10.0 and r.cost == 8.0
        final = _value(r.other.removeprefix("method="), truth, int(seed))
        if final < target:  # b always; c on odd seeds
            assert math.isnan(r.time) and math.isnan(r.ratio)
            continue
        exact = 8 * (target - 0.5) / (final - 0.5)  # where the line crosses the target
        assert r.time == math.ceil(exact - 1e-12), (r, exact)
        assert r.ratio == pytest.approx(r.time / 10.0)
    # lower is better: every curve starts at 0.5, below every target, so time 0
    low = time_to_reach(cells, curves, "dice", "method=a", "register", better="lower")
    assert {r.time for r in low} == {0.0}


def test_time_to_reach_refuses_a_missing_curve_or_timer():
    from bench.stats import time_to_reach

    cells, curves = _race(None)
    with pytest.raises(StatsError, match="no such curve.*curves: dice"):
        time_to_reach(cells, curves, "dice", "method=a", "register", curve="error")
    with pytest.raises(StatsError, match="--cost 'regster'.*timers: register"):
        time_to_reach(cells, curves, "dice", "method=a", "regster")


def test_the_reach_command_prints_each_pair_and_the_ratios_spread(tmp_path, capsys):
    cells, curves = _race(None)
    cells = cells.assign(suite="race", label="race", error="", device="cpu", wall=1.0)
    cells["bench"] = np.where(cells["method"] == "a", 0, 1)  # the entry, as a run stores it
    run = tmp_path / "race"
    run.mkdir()
    cells.to_parquet(run / "cells.parquet")
    curves.to_parquet(run / "curves.parquet")
    (run / "run.json").write_text('{"suite": "race"}')
    argv = ["reach", str(run), "--metric", "dice", "--reference", "method=a"]
    assert main([*argv, "--cost", "register"]) == 2  # no headline: the direction is asked for
    assert "give --better" in capsys.readouterr().err
    assert main([*argv, "--cost", "register", "--better", "higher"]) == 0
    out = capsys.readouterr().out
    # c reaches a's value on the even seeds (its perturbation is +) of both truths: 8 of 16
    assert "method=c: reached the target in 8 of 16 pairs" in out, out
    assert "method=b: reached the target in 0 of 16 pairs; time / reference time no ratio" in out
    assert main([*argv, "--better", "higher"]) == 2  # no headline cost: the timer is asked for
    assert "give --cost" in capsys.readouterr().err


def test_reach_over_rounds_reads_each_pair_within_its_round(tmp_path, capsys):
    """Three rounds of one race (the reference twice as slow in the second): each pair's
    ratio is read in its own round, the spread is over every round and, per pair, over
    its rounds; a round that cannot be read is named."""
    cells, curves = _race(None)
    cells = cells.assign(suite="race", label="race", error="", device="cpu", wall=1.0)
    cells["bench"] = np.where(cells["method"] == "a", 0, 1)
    folders = []
    for k, slower in enumerate([1.0, 2.0, 1.0]):
        run = tmp_path / f"round{k}"
        run.mkdir()
        mine = cells.copy()
        mine.loc[mine["method"] == "a", "time.register.median"] *= slower
        mine.to_parquet(run / "cells.parquet")
        curves.to_parquet(run / "curves.parquet")
        (run / "run.json").write_text('{"suite": "race"}')
        folders.append(str(run))
    argv = ["--metric", "dice", "--reference", "method=a", "--cost", "register",
            "--better", "higher"]  # fmt: skip
    assert main(["reach", folders[0], *argv]) == 0
    one = capsys.readouterr().out
    assert main(["reach", *folders, *argv]) == 0
    out = capsys.readouterr().out
    assert "3 runs (rounds)" in out and "round1" in out
    assert "method=c: reached the target in 24 of 48 pairs (3 runs)" in out, out
    first = re.search(r"method=c: .*range ([0-9.]+) to ([0-9.]+)", one)
    lo, hi = float(first.group(1)), float(first.group(2))
    # the slower reference halves the second round's ratios: the range widens below
    assert f"range {lo / 2:.3f} to {hi:.3f}" in out, out
    pair = re.search(r"\n  (seed=\S+ truth=\S+): median ([0-9.]+), range ([0-9.]+) to ([0-9.]+) "
                     r"over 3 of 3 runs", out)  # fmt: skip
    assert pair, out
    assert float(pair.group(3)) == pytest.approx(float(pair.group(4)) / 2, abs=1e-3)
    # runs of different suites: said, and a configuration only one of them ran counts
    # its own runs (it read "(3 runs)" for every configuration)
    (tmp_path / "round1" / "run.json").write_text('{"suite": "other"}')
    only = pd.read_parquet(tmp_path / "round1" / "cells.parquet")
    only.loc[only["method"] == "c", "method"] = "d"
    only.to_parquet(tmp_path / "round1" / "cells.parquet")
    assert main(["reach", *folders, *argv]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "note: the runs are of different suites" in out
    assert "method=d: reached the target in 8 of 16 pairs (1 of 3 runs)" in out, out
    assert "method=c: reached the target in 16 of 32 pairs (2 of 3 runs)" in out, out
    (tmp_path / "round2" / "cells.parquet").write_bytes(b"not parquet")
    assert main(["reach", *folders, *argv]) == 2
    assert "round2" in capsys.readouterr().err


def test_reach_names_a_configuration_alike_in_every_round(tmp_path, capsys):
    """Round 1 runs c twice (method.s 1 and 2), round 2 only s=2: on its own, round
    2 would name it plain ``method=c``; joined, both rounds name it ``method=c method.s=2``, so
    its pairs count over both rounds."""
    cells, curves = _race(None)
    cells = cells.assign(suite="race", label="race", error="", device="cpu", wall=1.0)
    cells["bench"] = np.where(cells["method"] == "a", 0, 1)
    twin = cells[cells["method"] == "c"].assign(cell_id=lambda f: f["cell_id"] + "-2")
    both = pd.concat(
        [cells.assign(**{"param.method.s": "1"}), twin.assign(**{"param.method.s": "2"})]
    )
    both["param.method.s"] = both["param.method.s"].where(both["method"] == "c", None)
    twin_curves = curves[curves["cell_id"].isin(set(twin["cell_id"].str[:-2]))]
    all_curves = pd.concat([curves, twin_curves.assign(cell_id=lambda f: f["cell_id"] + "-2")])
    alone = pd.concat([cells[cells["method"] != "c"], twin.assign(**{"param.method.s": "2"})])
    rounds = {"r1": (both, all_curves), "r2": (alone, all_curves)}
    for name, (mine, mine_curves) in rounds.items():
        (tmp_path / name).mkdir()
        mine.to_parquet(tmp_path / name / "cells.parquet")
        mine_curves.to_parquet(tmp_path / name / "curves.parquet")
        (tmp_path / name / "run.json").write_text('{"suite": "race"}')
    argv = ["reach", str(tmp_path / "r1"), str(tmp_path / "r2"), "--metric", "dice",
            "--reference", "method=a", "--cost", "register", "--better", "higher"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "method=c method.s=2: reached the target in 16 of 32 pairs (2 runs)" in out, out
    # s=1 ran in round 1 only: its count says so (it read "(2 runs)")
    assert "method=c method.s=1: reached the target in 8 of 16 pairs (1 of 2 runs)" in out, out


def test_two_settings_of_one_method_are_named_apart():
    """svf plain and symmetric against SyN: both are ``method=svf``; the setting that
    tells them apart joins their names, and a tuned choice (one cell a pairing) does not."""
    cells = _table()
    cells = cells[cells["method"] != "c"]
    twin = cells[cells["method"] == "b"].assign(cell_id=lambda f: f["cell_id"] + "-sym")
    twin["metric.dice"] = twin["metric.dice"] + 0.5  # above a: its own verdict
    cells = pd.concat([cells.assign(**{"param.method.sym": "false"}),
                       twin.assign(**{"param.method.sym": "true"})], ignore_index=True)  # fmt: skip
    cells["param.method.sym"] = cells["param.method.sym"].where(cells["method"] != "a", None)
    table = paired_comparisons(cells, "dice", "method=a", better="higher")
    names = sorted(r.other for r in table.rows)
    assert names == ["method=b method.sym=false", "method=b method.sym=true"], names
    assert all(r.n == len(TRUTHS) * len(SEEDS) for r in table.rows)  # pooled over truths
    verdicts = {r.other: r.verdict for r in table.rows}
    assert verdicts["method=b method.sym=true"] == "method=b method.sym=true better"
    assert verdicts["method=b method.sym=false"] == "method=a better"


def test_reach_says_why_a_time_is_missing():
    """A cell with no samples of the curve reads "no curve", samples without seconds
    "no time", samples that never reach the target "never" (the review's cases)."""
    from bench.stats import time_to_reach

    cells, curves = _race(None)
    c_cells = set(cells.loc[cells["method"] == "c", "cell_id"])
    dropped = curves[~curves["cell_id"].isin(c_cells)]
    rows = time_to_reach(cells, dropped, "dice", "method=a", "register")
    assert {r.note for r in rows if r.other == "method=c"} == {"no curve"}
    assert {r.note for r in rows if r.other == "method=b"} == {"never"}
    untimed = curves.assign(time=np.nan)
    assert {r.note for r in time_to_reach(cells, untimed, "dice", "method=a", "register")} == {
        "no time"
    }


def test_reach_counts_a_reach_whose_reference_time_is_zero(tmp_path, capsys):
    cells, curves = _race(None)
    cells.loc[cells["method"] == "a", "time.register.median"] = 0.0
    cells = cells.assign(suite="race", label="race", error="", device="cpu", wall=1.0)
    cells["bench"] = np.where(cells["method"] == "a", 0, 1)
    run = tmp_path / "race"
    run.mkdir()
    cells.to_parquet(run / "cells.parquet")
    curves.to_parquet(run / "curves.parquet")
    (run / "run.json").write_text('{"suite": "race"}')
    argv = ["reach", str(run), "--metric", "dice", "--reference", "method=a", "--cost",
            "register", "--better", "higher"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "method=c: reached the target in 8 of 16 pairs; time / reference time no ratio" in out


def test_a_tuned_choice_does_not_split_a_configuration_named_apart():
    """svf plain and symmetric against SyN, each choosing lr per pairing from {0.1, 0.01}:
    symmetric (fixed per configuration) names them apart, never lr (the review's case)."""
    rows = []
    for seed in range(6):
        rows.append(_row("syn", "x", seed, 0, "test", 0.8))
        for sym, lr in (("false", [0.1, 0.01, 0.1, 0.01, 0.1, 0.01][seed]),
                        ("true", [0.1, 0.1, 0.01, 0.01, 0.1, 0.1][seed])):  # fmt: skip
            row = _row(
                "svf", "x", seed, 0, "test", 0.7 + 0.01 * seed + (0.1 if sym == "true" else 0)
            )
            row.update({"cell_id": f"svf{sym}{seed}", "param.method.symmetric": sym,
                        "param.method.lr": lr})  # fmt: skip
            rows.append(row)
    cells = pd.DataFrame(rows)
    table = paired_comparisons(cells, "dice", "method=syn", better="higher")
    assert sorted((r.other, r.n) for r in table.rows) == [
        ("method=svf method.symmetric=false", 6),
        ("method=svf method.symmetric=true", 6),
    ]


def test_a_whole_float_reads_as_its_integer_in_names_and_references():
    """An integer parameter read back as floats (a blank elsewhere in its column) printed
    method.n_data=100.0 and matched no --reference n_data=100."""
    table = _table()
    table["param.method.n_data"] = np.where(table["method"] == "a", 100.0, 200.0)
    table.loc[table.index[-1], "param.method.n_data"] = np.nan
    rows = paired_comparisons(table, "dice", "method=a,method.n_data=100").rows
    assert {r.other for r in rows} == {"method=b method.n_data=200", "method=c method.n_data=200"}
    for typed in ("100.0", "1e2"):  # as a suite writes it: the same number
        again = paired_comparisons(table, "dice", f"method=a,method.n_data={typed}").rows
        assert [r.p for r in again] == [r.p for r in rows]


def test_a_deterministic_difference_is_said_not_tested():
    """Every seed scores the same (the seed changes nothing): 8 copies of one difference
    gave p = 2 / 2^8 and 'better', a test over copies. Said as what it is."""
    rows = [{**_row(m, "x", seed, 1, "test", v), "cell_id": f"{m}{seed}"}
            for seed in range(8) for m, v in (("a", 0.9), ("b", 0.8))]  # fmt: skip
    (row,) = paired_comparisons(pd.DataFrame(rows), "dice", "method=a", better="higher").rows
    assert row.constant and row.verdict == "method=a better on every seed (deterministic: no test)"
    lower = paired_comparisons(pd.DataFrame(rows), "dice", "method=a", better="lower").rows[0]
    assert lower.verdict == "method=b better on every seed (deterministic: no test)"


def test_a_tuned_runs_configurations_pair_though_their_chosen_settings_differ():
    """A tuned run: siren chose lr 1e-3 on validation, bacon 1e-2. Pairing on every other
    parameter left bacon out ("it differs in lr"), though each method at the setting its
    validation chose is the comparison. The run's tuning records name the chosen keys."""
    from bench.tuned import tuned_keys

    rows = [{"cell_id": f"{enc}{s}", "task": "t", "status": "ok", "seed": s, "role": "test",
             "encoding": enc, "param.lr": lr, "metric.psnr": base + s}
            for enc, lr, base in (("siren", 1e-3, 50.0), ("bacon", 1e-2, 39.0))
            for s in range(3)]  # fmt: skip
    cells = pd.DataFrame(rows)
    with pytest.raises(StatsError, match="it differs in lr"):
        paired_comparisons(cells, "psnr", "encoding=siren", better="higher")
    meta = {"tuning": [{"settings": [{"lr": 1e-3}, {"lr": 1e-2}]}, {"settings": "x"}]}
    assert tuned_keys(meta) == ["lr"] and tuned_keys({}) == []
    table = paired_comparisons(cells, "psnr", "encoding=siren", better="higher",
                               tuned=tuned_keys(meta))  # fmt: skip
    (row,) = table.rows
    assert row.other == "encoding=bacon" and row.n == 3 and row.difference == 11.0
    # an untuned entry's lr sweep (role "") still pairs like with like (a review: the
    # tuned keys were relaxed for every cell, and an untuned lr matrix was refused)
    untuned = [{"cell_id": f"u{enc}{lr}{s}", "task": "u", "status": "ok", "seed": s, "role": "",
                "encoding": enc, "param.lr": lr, "metric.psnr": base + lr * 100 + s}
               for enc, base in (("siren", 30.0), ("bacon", 20.0)) for lr in (1e-3, 1e-2)
               for s in range(3)]  # fmt: skip
    both = pd.concat([cells, pd.DataFrame(untuned)], ignore_index=True)
    table = paired_comparisons(both, "psnr", "encoding=siren", better="higher",
                               tuned=["lr"], by=["task"])  # fmt: skip
    assert sorted((r.group, r.n) for r in table.rows) == [("task=t", 3), ("task=u", 6)]


def test_a_deterministic_pair_prints_no_p_and_a_round_off_gap_is_the_same():
    """rk4 and the 3/8 rule on a linear problem, 6 seeds alike, 1.3e-11 apart: bench
    stats printed p = q = 0.0312 beside 'deterministic: no test' (a user audit), and
    its verdict named a winner by round-off. No p, no q (nor in another row's false
    discovery correction), and the same."""
    scores = {"a": lambda s: 4.3e-5, "b": lambda s: 4.3e-5 * (1 + 1.3e-11),
              "c": lambda s: 5e-5 + s * 1e-6}  # fmt: skip
    rows = [{**_row(m, "x", seed, 1, "test", f(seed)), "cell_id": f"{m}{seed}"}
            for seed in range(6) for m, f in scores.items()]  # fmt: skip
    table = paired_comparisons(pd.DataFrame(rows), "dice", "method=a", better="lower")
    rows_ = {r.other: r for r in table.rows}
    same, varied = rows_["method=b"], rows_["method=c"]
    assert math.isnan(same.p) and math.isnan(same.q)
    assert same.verdict == "the same on every seed (deterministic; apart by round-off at most)"
    assert varied.q == pytest.approx(varied.p)  # one test corrected, not two
    assert varied.verdict == "method=a better"


def test_seeds_whose_cells_ran_in_different_invocations_are_named():
    """A resume ran one seed's second cell 20 s after its partner, in another worker
    (a user audit: that pair read x0.82 among x1.04-x1.36): bench stats names such seeds
    for a time column."""
    from bench.stats import split_seeds

    cells = pd.DataFrame({
        "seed": [0, 0, 1, 1, 2, 2],
        "finished_at": ["2026-12-07T20:51:00+00:00", "2026-12-07T20:51:01+00:00",
                        "2026-12-07T20:51:20+00:00", "2026-12-07T20:51:21+00:00",
                        "2026-12-07T20:51:38+00:00", "2026-12-07T20:51:58+00:00"],
    })  # fmt: skip
    meta = {"resumed": ["2026-12-07T20:51:50+00:00"]}
    assert split_seeds(meta, cells) == [2]
    # by task, reported cells only, a missing time left out (a review: validation
    # seeds and another task's cells were named)
    cells["task"] = ["a", "a", "a", "b", "a", "a"]
    cells.loc[3, "finished_at"] = "2026-12-07T20:52:00+00:00"  # task b alone at seed 1
    cells["role"] = ["", "", "", "", "", "validation"]
    assert split_seeds(meta, cells) == []
    cells.loc[5, "role"] = ""
    cells.loc[4, "finished_at"] = None
    assert split_seeds(meta, cells) == []
    assert split_seeds({}, cells) == [] and split_seeds({"resumed": []}, cells) == []
