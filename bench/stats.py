"""Paired statistics over a run's cells: one reference configuration against each other.

``bench stats RUN --metric dice --reference method=svf [--by truth]``:

- The cells compared are the ``ok`` reported ones (``bench.tuned``: neither a tuned
  entry's validation cells nor superseded test cells), with a finite value of the metric.
- The compared configuration is named by the reference's keys (``method=svf``, or
  several: ``method=svf,method.symmetric=true``): a key is a column of the cells
  (``method``, ``param.truth``) or a parameter's short name (``truth``). The
  configuration is the keys' columns with their sub-parameters (``param.method.*``:
  a tuned method's chosen setting belongs to the method).
- Two cells pair when everything else that makes a cell agrees: the task, the seed,
  the other components and the other parameters. Each other configuration (the values
  of the keys' columns: ``method=syn``) is compared with the reference over its pairs.
- Per comparison: the reference's and the other's means, the mean paired difference
  (reference - other), the number of pairs, the two-sided Wilcoxon signed-rank p-value
  (``scipy.stats.wilcoxon``, zero differences dropped as Wilcoxon did; 1 when every
  difference is 0; none, NaN, where every pair is alike on every seed: copies are no
  sample), and the Benjamini-Hochberg q-value across the comparisons of the table that
  were tested (``scipy.stats.false_discovery_control``). ``by`` repeats the comparisons within
  each value of those columns (the pairs never cross them); cells of several tasks are
  compared task by task, as if ``by`` named the task (a metric name two tasks share is
  two measures).
- Verdict: where q < alpha, which side is better in the metric's direction (the task's
  headline, or ``better``), else ``n.s.``; without a direction, which side is higher.
  Where the pairs (their nonzero differences) are too few for any p to reach alpha
  (the exact two-sided test's smallest p is 2 / 2^n: 0.0625 at 5 pairs), it reads
  ``untestable (n=5: p >= 0.0625)``, not ``n.s.``: no evidence was possible.

Nothing here knows a domain: the columns are whatever the run's cells have.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bench.cell import TEST
from bench.columns import METRIC, PARAM, components, param_column, params
from bench.tuned import reported
from bench.tuning import tied

#: columns of a cell that are not part of what it ran (results, bookkeeping)
NOT_CONFIGURATION = {"cell_id", "suite", "bench", "label", "role", "device", "threads"}


class StatsError(ValueError):
    """Bad input to ``paired_comparisons``: one message saying what and how to fix it."""


@dataclass
class Comparison:
    """The reference against one other configuration (within one ``by`` group)."""

    group: str  # the ``by`` values, "" when pooled
    other: str  # ``method=syn``
    reference_mean: float
    other_mean: float
    difference: float  # mean of reference - other over the pairs
    n: int
    p: float  # NaN when there is no pair, or no test (every pair alike on every seed)
    q: float = math.nan
    verdict: str = ""
    nonzero: int = 0  # the pairs whose difference is not 0 (what the test ranks)
    #: which side the test's ranks favour: the signed-rank sum of reference - other
    #: (> 0: the reference higher); a mean can lean the other way on one outlier
    rank_sum: float = 0.0
    #: both sides score the same on every pair (the seed changes nothing they measure)
    constant: bool = False


@dataclass
class StatsTable:
    metric: str  # the column compared
    reference: str  # ``method=svf``
    better: str | None  # "higher" | "lower" | None (unknown)
    alpha: float
    by: list[str] = field(default_factory=list)
    rows: list[Comparison] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # see ``Pairing.left_out``


def parse_reference(text: str) -> dict[str, str]:
    """``method=svf`` or ``method=svf,method.symmetric=true`` -> {key: value}."""
    out: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise StatsError(
                f"--reference {text!r}: expected KEY=VALUE[,KEY=VALUE...], e.g. 'method=svf'"
            )
        out[key.strip()] = value.strip()
    return out


def resolve_column(cells: pd.DataFrame, key: str, what: str) -> str:
    """``key`` as a column of ``cells``: itself, or ``param.<key>``."""
    for candidate in (key, f"{PARAM}{key}"):
        if candidate in cells.columns:
            return candidate
    names = components(cells) + [c[len(PARAM) :] for c in params(cells.columns)]
    close = difflib.get_close_matches(key, names, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f" (columns: {', '.join(names)})"
    raise StatsError(f"{what} {key!r}: no such column in the run's cells{hint}")


def resolve_metric(cells: pd.DataFrame, name: str) -> str:
    """``dice`` -> ``metric.dice``; a full column (``time.register.median``) as it is."""
    if name in cells.columns and name.startswith(("metric.", "time.", "mem.")):
        return name
    if f"{METRIC}{name}" in cells.columns:
        return f"{METRIC}{name}"
    known = [c[len(METRIC) :] for c in cells.columns if c.startswith(METRIC)]
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"did you mean {', '.join(close)}?" if close else f"metrics: {', '.join(known)}"
    raise StatsError(f"--metric {name!r}: no such metric in the run's cells; {hint}")


def _text(series: pd.Series) -> pd.Series:
    """Values as comparable text: ``True`` and ``true`` alike, missing as ''."""
    return series.map(_text_of)


def _text_of(value: Any) -> str:
    """One value as ``_text`` writes it: a whole float as its integer (an integer column
    that held a blank reads back as floats: ``100.0`` matched no ``n_data=100``)."""
    if _missing(value):
        return ""
    whole = isinstance(value, (float, np.floating)) and float(value).is_integer()
    if whole and abs(value) < 1e15:  # past it, an integer's digits would be noise: 1e+20
        return str(int(value))
    return str(value).lower()


def _given_text(value: str) -> str:
    """A value the user typed (``--reference method.lr=1.0``) as ``_text`` writes the
    cells' values: a number as the number it is, so ``1.0``, ``1`` and ``1e0`` match."""
    for kind in (int, float):
        try:
            return _text_of(kind(value))
        except ValueError:
            continue
    return value.lower()


def _missing(value: Any) -> bool:
    if isinstance(value, (list, tuple, np.ndarray)):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _configuration_columns(cells: pd.DataFrame, keys: list[str]) -> list[str]:
    """The keys' columns and their sub-parameters (``param.<slot>.*``, ``param.<p>.*``)."""
    out = list(keys)
    for key in keys:
        stem = key[len(PARAM) :] if key.startswith(PARAM) else key
        out += [c for c in params(cells.columns) if c.startswith(f"{PARAM}{stem}.")]
    return list(dict.fromkeys(out))


@dataclass
class Pair:
    """A reference cell and one other configuration's cell that ran everything else alike."""

    group: str  # the ``by`` values, "" when pooled
    other: str  # ``method=syn``
    reference: pd.Series  # the reference's cell (a row of cells.parquet)
    cell: pd.Series  # the other's


@dataclass
class Pairing:
    """What ``paired_cells`` found: the metric's column, the reference's label, the
    ``by`` columns and the columns two paired cells agree on, and the pairs."""

    column: str
    reference: str  # ``method=svf``
    by: list[str]
    match: list[str]
    pairs: list[Pair]
    #: each configuration of the reference's task(s) with no pair, and why
    left_out: list[str] = field(default_factory=list)


def paired_cells(
    cells: pd.DataFrame,
    metric: str,
    reference: str,
    by: list[str] | None = None,
    tuned: Sequence[str] = (),
) -> Pairing:
    """Every pair of cells (see the module docstring): ``ok`` reported cells (neither
    validation nor superseded) with a finite ``metric``. ``tuned``: the parameters a
    tuned run chose per configuration (its grid's keys, ``lr``): part of what is
    compared, never what two paired cells must share (each method at the setting its
    validation chose is the comparison)."""
    cells = cells.reset_index(drop=True)  # one label a row, whatever it was given
    column = resolve_metric(cells, metric)
    wanted = parse_reference(reference)
    keys = {resolve_column(cells, k, "--reference key"): v for k, v in wanted.items()}
    by_cols = [resolve_column(cells, b, "--by") for b in (by or [])]
    config = _configuration_columns(cells, list(keys))
    clash = sorted(set(by_cols) & set(config))
    if clash:
        raise StatsError(f"--by {', '.join(clash)}: that is the compared configuration itself")
    usable = _usable(cells, column)
    if "task" in usable and usable["task"].nunique() > 1 and "task" not in by_cols:
        # one metric name in two tasks is two measures: never one comparison across them
        by_cols = ["task", *by_cols]
    is_ref = _matching(cells, keys, reference).loc[usable.index]
    if not is_ref.any():
        raise StatsError(
            f"--reference {reference!r}: none of its cells is ok with a finite {column} "
            "among the reported ones (a tuned entry's validation cells are not)"
        )
    match = _match_columns(usable, config)
    named = list(dict.fromkeys([*keys, *config]))
    text = pd.DataFrame({c: _text(usable[c]) for c in match + named}, index=usable.index)
    if "role" in usable:  # a tuned configuration's test cells: at the setting it chose
        chosen = usable["role"].astype(str) == TEST
        for c in {param_column(k) for k in tuned} & set(match):
            text.loc[chosen, c] = ""
    groups = text[match].apply(tuple, axis=1)
    shown = _label_columns(text, groups, is_ref, list(keys), config)
    label = _names(text[shown])
    ref_label = " ".join(f"{_short(k)}={v.lower()}" for k, v in keys.items())
    pairs: list[Pair] = []
    for _, group in usable.groupby(groups, sort=False):
        mask = is_ref.loc[group.index]
        pairs += _group_pairs(group, mask, label, by_cols, config, reference)
    left_out = _left_out(cells, usable, is_ref, keys, match, {p.other for p in pairs}, column)
    if not pairs:
        why = "; ".join(left_out) or "no other configuration ran"
        raise StatsError(f"no cell pairs with {reference!r}: {why}")
    return Pairing(column, ref_label, by_cols, match, pairs, left_out)


def _names(text: pd.DataFrame) -> pd.Series:
    """Each row's configuration name from its columns' texts, ``method=syn lr=0.1``: the
    pairs' labels and the left-out configurations alike (a column a row has no value
    in is left out of its name)."""
    return text.apply(lambda row: " ".join(f"{_short(k)}={v}" for k, v in row.items() if v), axis=1)


def _left_out(
    cells: pd.DataFrame,
    usable: pd.DataFrame,
    is_ref: pd.Series,
    keys: dict[str, str],
    match: list[str],
    paired: set[str],
    column: str,
) -> list[str]:
    """Each other value of the reference's keys, in its task(s), that no pair holds, and
    why: no cell ok with a finite metric, or none that ran as a reference cell did (the
    columns whose values the two never share)."""
    tasks = set(usable.loc[is_ref[is_ref].index, "task"])
    mine = reported(cells)
    mine = mine[mine["task"].isin(tasks)]
    names = _names(pd.DataFrame({k: _text(mine[k]) for k in keys}, index=mine.index))
    ref_rows = usable.loc[is_ref[is_ref].index]
    out = []
    for name in dict.fromkeys(names):
        if any(p == name or p.startswith(name + " ") for p in paired):
            continue
        rows = mine[names == name]
        if rows.index.isin(ref_rows.index).any():
            continue  # the reference itself
        ok = rows.index.intersection(usable.index)
        if ok.empty:
            out.append(f"{name}: no cell ok with a finite {column}")
            continue
        apart = [
            _short(c) for c in match if not set(_text(usable.loc[ok, c])) & set(_text(ref_rows[c]))
        ]
        differ = f" (it differs in {', '.join(apart)})" if apart else ""
        out.append(f"{name}: no cell ran as a reference cell did{differ}")
    return out


def _label_columns(
    text: pd.DataFrame, groups: pd.Series, is_ref: pd.Series, keys: list[str], config: list[str]
) -> list[str]:
    """The columns that name the other configurations: the reference's keys, and as few of
    the configuration's other columns as tell apart two cells that would pair with one
    reference cell under one name (``method=svf`` plain and symmetric: ``method.symmetric``
    joins the name): each time the column that leaves the fewest such collisions, then
    makes the fewest names, so that a tuned choice that differs between pairings does
    not split one configuration when a fixed setting tells the cells apart."""
    others = text[~is_ref]
    shown = list(keys)

    def collide(cols: list[str]) -> pd.Series:
        per = others[cols].apply(tuple, axis=1)
        return per.groupby(groups.loc[others.index]).transform(lambda v: v.duplicated(keep=False))

    rest = sorted((c for c in config if c not in keys), key=lambda c: others[c].nunique())
    while rest and len(others) and collide(shown).any():
        clashing = others[collide(shown)]
        within = groups.loc[clashing.index]  # what differs inside one pairing, not across
        useful = [c for c in rest if (clashing[c].groupby(within).nunique() > 1).any()]
        if not useful:
            break  # nothing recorded tells them apart: _group_pairs says so

        def cost(c: str) -> tuple[int, int]:
            # the collisions it leaves, then the names it makes: a setting fixed per
            # configuration (symmetric) leaves none and makes few; a tuned choice that
            # differs between pairings (lr) leaves some where both chose alike
            return int(collide([*shown, c]).sum()), others[[*shown, c]].drop_duplicates().shape[0]

        best = min(useful, key=cost)
        shown.append(best)
        rest.remove(best)
    return shown


def _usable(cells: pd.DataFrame, column: str) -> pd.DataFrame:
    """The cells that can be compared: ``ok``, reported (``bench.tuned``: not validation,
    not superseded), with a finite ``column``."""
    usable = reported(cells)
    usable = usable[usable["status"] == "ok"]
    values = pd.to_numeric(usable[column], errors="coerce")
    return usable[np.isfinite(values.to_numpy(dtype=float))]


def _match_columns(usable: pd.DataFrame, config: list[str]) -> list[str]:
    """The columns two paired cells must agree on: all but the compared configuration's,
    the outcome's and the measurements'."""
    skip = NOT_CONFIGURATION | set(config) | {"status", "error", "traceback", "wall"}
    return [
        c
        for c in usable.columns
        if c not in skip
        and not c.startswith(("metric.", "time.", "mem.", "speedup."))
        and c != "finished_at"
    ]


def _group_pairs(
    group: pd.DataFrame,
    is_ref: pd.Series,
    label: pd.Series,
    by_cols: list[str],
    config: list[str],
    reference: str,
) -> list[Pair]:
    """The pairs among cells that ran alike (``is_ref`` marks the reference's): its cell
    with each other configuration's; none where the reference has no cell there."""
    ref = group[is_ref]
    if len(ref) > 1:
        differ = [c for c in config if _text(ref[c]).nunique() > 1]
        raise StatsError(
            f"--reference {reference!r} matches {len(ref)} cells that should pair with one "
            f"another (they differ in {', '.join(differ) or 'nothing recorded'}): add a key, "
            "e.g. --reference 'KEY=VALUE,SUBKEY=VALUE'"
        )
    if ref.empty:
        return []
    group_name = " ".join(
        f"{_short(b)}={_text(group[b]).iloc[0]}" for b in by_cols
    )  # the same within a pairing: by columns are matched on
    others = group[~is_ref]
    pairs = []
    for name, rows in others.groupby(label.loc[others.index], sort=False):
        if len(rows) > 1:
            raise StatsError(
                f"{len(rows)} cells of {name!r} pair with one reference cell: they differ in "
                "a column of the compared configuration's; name it in --reference"
            )
        pairs.append(Pair(group_name, str(name), ref.iloc[0], rows.iloc[0]))
    return pairs


def _matching(cells: pd.DataFrame, keys: dict[str, str], reference: str) -> pd.Series:
    """Which cells are the reference's (every key's value, case aside); StatsError when none."""
    is_ref = pd.Series(True, index=cells.index)
    for col, value in keys.items():
        is_ref &= _text(cells[col]) == _given_text(value)
    if not is_ref.any():
        key = next(iter(keys))
        seen = sorted(set(_text(cells[key])) - {""})
        raise StatsError(
            f"--reference {reference!r} matches no cell of the run ({key} has: {', '.join(seen)})"
        )
    return is_ref


def split_seeds(meta: Any, cells: pd.DataFrame) -> list[Any]:
    """The seeds whose cells finished in different invocations of a resumed run
    (``run.json``'s ``resumed`` times against each cell's ``finished_at``): their times
    were not taken under one load, so their pairs are not interleaved (a user audit: a
    pair split by an interrupt read x0.82 among x1.04 to x1.36). [] for a run never
    resumed."""
    resumed = meta.get("resumed") if isinstance(meta, dict) else None
    if not isinstance(resumed, list) or not resumed or "finished_at" not in cells:
        return []
    cells = reported(cells)  # the pairs compared: no validation or superseded cell
    cells = cells[cells["finished_at"].map(lambda t: isinstance(t, str) and bool(t))]
    marks = sorted(str(r) for r in resumed)
    invocation = cells["finished_at"].map(lambda t: sum(m <= t for m in marks))
    keys = [cells[k] for k in ("task", "seed") if k in cells]
    spans = invocation.groupby(keys).nunique()
    split = spans[spans > 1].index
    return sorted({key[-1] if isinstance(key, tuple) else key for key in split})


def paired_comparisons(
    cells: pd.DataFrame,
    metric: str,
    reference: str,
    by: list[str] | None = None,
    better: str | None = None,
    alpha: float = 0.05,
    tuned: Sequence[str] = (),
) -> StatsTable:
    """The reference configuration against every other, paired (see the module
    docstring). ``better`` is the metric's direction ("higher" | "lower" | None)."""
    from scipy.stats import false_discovery_control, wilcoxon

    found = paired_cells(cells, metric, reference, by, tuned)
    column, ref_label = found.column, found.reference
    pairs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for pair in found.pairs:
        values = (float(pair.reference[column]), float(pair.cell[column]))
        pairs.setdefault((pair.group, pair.other), []).append(values)
    table = StatsTable(column, ref_label, better, alpha, found.by, left_out=found.left_out)
    for (group_name, name), values_ in sorted(pairs.items()):
        a = np.array([x for x, _ in values_])
        b = np.array([y for _, y in values_])
        d = a - b
        constant = bool(len(d) > 1 and np.ptp(a) == 0 and np.ptp(b) == 0)
        if constant:  # the seed changes nothing: copies are no sample, no p to print
            p = math.nan
        else:  # every difference 0: no evidence either way (scipy refuses an empty sample)
            p = float(wilcoxon(a, b, alternative="two-sided").pvalue) if np.any(d != 0) else 1.0
        mean_a, mean_b = float(a.mean()), float(b.mean())
        row = Comparison(group_name, name, mean_a, mean_b, float(d.mean()), len(d), p)
        row.nonzero = int(np.count_nonzero(d))
        row.rank_sum = signed_rank_sum(d)
        row.constant = constant
        table.rows.append(row)
    tested = [r for r in table.rows if not math.isnan(r.p)]
    qs = false_discovery_control([r.p for r in tested], method="bh") if tested else []
    for row, q in zip(tested, qs):
        row.q = float(q)
    for row in table.rows:
        row.verdict = _verdict(row, better, alpha, ref_label)
    return table


def signed_rank_sum(d: Any) -> float:
    """The Wilcoxon statistic's side: the ranks of |d| (zeros dropped, ties averaged)
    summed with d's signs; > 0 where the pairs' ranks favour the first side."""
    from scipy.stats import rankdata

    d = np.asarray(d, dtype=float)
    d = d[d != 0]
    return float((np.sign(d) * rankdata(np.abs(d))).sum()) if d.size else 0.0


def _short(column: str) -> str:
    return column[len(PARAM) :] if column.startswith(PARAM) else column


def untestable(nonzero: int, alpha: float) -> str | None:
    """``untestable (n=3: p >= 0.25)`` where ``nonzero`` paired differences are too few
    for the exact two-sided signed-rank test ever to reach ``alpha`` (its smallest p,
    every difference one way, is 2 / 2^n); None where they can."""
    smallest = 2.0 / 2.0**nonzero
    return None if smallest < alpha else f"untestable (n={nonzero}: p >= {smallest:.3g})"


def _verdict(row: Comparison, better: str | None, alpha: float, ref: str) -> str:
    if row.constant and tied(row.reference_mean, row.other_mean):
        return "the same on every seed (deterministic; apart by round-off at most)"
    if row.constant:
        # every pair alike (the seed changes nothing): copies are no sample
        side = row.difference > 0
        who = (ref if side == (better == "higher") else row.other) if better else None
        return (
            f"{who} better on every seed (deterministic: no test)"
            if who
            else (f"{ref} {'higher' if side else 'lower'} on every seed (deterministic: no test)")
        )
    # (an older scipy's normal approximation can fall below the exact bound: its q decides)
    never = untestable(row.nonzero, alpha)
    if row.nonzero and never and not row.q < alpha:
        return never
    if not row.q < alpha or row.rank_sum == 0:
        return "n.s."
    # the side the test's ranks favour (the mean can lean the other way on one seed)
    higher = row.rank_sum > 0
    if better is None:
        return f"{ref} higher" if higher else f"{ref} lower"
    ref_wins = higher == (better == "higher")
    return f"{ref} better" if ref_wins else f"{row.other} better"


# --- time to reach the reference's result --------------------------------------------


@dataclass
class Reach:
    """When one configuration's curve first reached the reference's final value, in a pair
    of cells that ran the same problem."""

    group: str  # the ``by`` values, "" when pooled
    other: str  # ``method=svf``
    pair: str  # what tells the pairs apart: ``seed=0 truth=bspline``
    target: float  # the reference's final value of the metric
    reference_cost: float  # the reference's cost (its timer), seconds
    time: float  # the other's curve's first time at or past ``target``; NaN: never
    final: float  # the other's final value
    cost: float  # the other's whole cost, seconds
    note: str = ""  # why ``time`` is NaN: "never", "no curve", "no time"

    @property
    def ratio(self) -> float:
        """time / reference_cost (NaN where the target was never reached)."""
        return self.time / self.reference_cost if self.reference_cost > 0 else math.nan


def resolve_cost(cells: pd.DataFrame, name: str) -> str:
    """``register`` -> ``time.register.median``; a full column as it is."""
    for candidate in (name, f"time.{name}.median", f"time.{name}"):
        if candidate in cells.columns and candidate.startswith("time."):
            return candidate
    known = [c[5:].removesuffix(".median") for c in cells.columns if c.endswith(".median")]
    raise StatsError(
        f"--cost {name!r}: no such timer in the run's cells (timers: {', '.join(known)})"
    )


def time_to_reach(
    cells: pd.DataFrame,
    curves: pd.DataFrame,
    metric: str,
    reference: str,
    cost: str,
    by: list[str] | None = None,
    better: str = "higher",
    curve: str | None = None,
    tuned: Sequence[str] = (),
) -> list[Reach]:
    """Per pair of cells (``paired_cells``): the first time the other's ``curve`` (the
    metric's short name by default) is at or past the reference's final ``metric``, in
    the ``better`` direction, beside the reference's ``cost``. A curve is sampled every
    few steps: the time is that of the first sample that reached the target (an upper
    bound at the curve's resolution), never interpolated."""
    found = paired_cells(cells, metric, reference, by, tuned)
    column, pairs = found.column, found.pairs
    cost_col = resolve_cost(cells, cost)
    name = curve or column.removeprefix(METRIC)
    if curves.empty or name not in set(curves["curve"]):
        have = ", ".join(sorted(set(curves["curve"]))) if not curves.empty else "none"
        raise StatsError(f"--curve {name!r}: no such curve in the run (curves: {have})")
    mine = curves[curves["curve"] == name]
    refs = pd.DataFrame([p.reference for p in pairs])
    # what tells the pairs apart: the matched columns (the seed, the other components and
    # parameters) that vary between them, the seed first
    tell = sorted(
        (c for c in found.match if c not in found.by and c != "task"), key=lambda c: c != "seed"
    )
    tell = [c for c in tell if _text(refs[c]).nunique() > 1]
    out = []
    for p in pairs:
        target = float(p.reference[column])
        time, note = _first_reach(mine[mine["cell_id"] == p.cell["cell_id"]], target, better)
        out.append(
            Reach(
                group=p.group,
                other=p.other,
                pair=" ".join(f"{_short(c)}={_text_of(p.reference[c])}" for c in tell),
                target=target,
                reference_cost=float(p.reference[cost_col]),
                time=time,
                final=float(p.cell[column]),
                cost=float(p.cell[cost_col]),
                note=note,
            )
        )
    return out


def _first_reach(points: pd.DataFrame, target: float, better: str) -> tuple[float, str]:
    """The first time a cell's curve samples are at or past ``target``, and why there is
    none: NaN and "no curve" (the cell recorded no sample), "no time" (samples without
    their seconds), "never" (no sample reached it)."""
    if points.empty:
        return math.nan, "no curve"
    timed = points[np.isfinite(points["time"].to_numpy(dtype=float))].sort_values("time")
    if timed.empty:
        return math.nan, "no time"
    at = timed["value"] >= target if better == "higher" else timed["value"] <= target
    reached = timed.loc[at, "time"]
    return (float(reached.iloc[0]), "") if len(reached) else (math.nan, "never")
