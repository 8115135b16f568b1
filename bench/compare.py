"""Comparing two runs: align cells, aggregate seeds, ratios, significance, gates.

Cells are aligned on what they measured (task, components, parameters); the
seeds of a configuration are pooled. A tuned entry compares its test cells only (never
its validation cells), and as *tuned*: the parameters its grid sets are not part of
the key, so a choice that moved between the runs is one configuration compared, its row
saying what each run chose. For each timer, the ratio is
``median(B) / median(A)`` over the pooled samples, with a two-sided
Mann-Whitney U test on those samples (scipy): a ratio is called significant
when p < alpha. Metrics are compared as the difference of their means over seeds.

Gates (``--fail-on``) make ``bench compare`` usable in CI:

- ``time:+10%``: fail when any timer is more than 10 % slower and the
  difference is significant. Where the samples are too few for the test ever to
  reach ``alpha`` (1 against 1, or 3 against 3: the smallest two-sided p is
  2/C(6,3) = 0.1) the comparison is *untestable*: it never fails a gate by itself,
  and the gate table says so (``untestable (n=1 a side)``) with the ratio it saw.
  More repeats make it testable (4 a side reach p < 0.05).
- ``time.solve:+10%``: the same for one timer.
- ``metric.rel_l2_error:+5%`` / ``metric.accuracy:-0.01``: fail when a metric
  rises (``+``) or falls (``-``) by more than that, relative (``%``) or absolute,
  or when a configuration that had it in A has no finite value of it in B (its
  cells diverged, failed, or stopped reporting it).
- ``headline:+5%`` (or ``headline:+0.01``): every task's headline quality metrics
  (``Task.headline``, as the runs recorded it) in their declared direction: fail
  when one is *worse* by more than that (a ``lower`` metric that rises, a
  ``higher`` one that falls), or is gone or not finite in B. Runs that record no
  headline (made before tasks declared one) cannot be gated so: exit 2.
- ``status``: fail when a cell that was ``ok`` in A is not ``ok`` in B.

No gate is applied unless ``--fail-on`` names it. Rows are labelled by what
differs between configurations (``bench.columns.configuration_labels`` over both
runs' cells, plus the device or thread count where those differ), never by the
defaults.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from bench.cell import TEST
from bench.columns import configuration_labels, varying
from bench.columns import headline as recorded_headline
from bench.headline import Headline
from bench.results import Run, is_missing, key_columns, reported

_GATE_RE = re.compile(  # fullmatch: "$" would take a trailing "\n"
    r"(?P<target>time|time\.[\w.\-]+|metric\.[\w.\-]+|headline):(?P<sign>[+-])"
    r"(?P<amount>\d+(\.\d*)?([eE][+-]?\d+)?)(?P<pct>%?)"
)


class GateError(ValueError):
    """A ``--fail-on`` expression that cannot be parsed."""


class AcrossError(ValueError):
    """An ``--across`` key that cannot pair the runs' configurations."""


@dataclass(frozen=True)
class Gate:
    target: str  # "time", "time.<name>", "metric.<name>", "headline" or "status"
    sign: int = 1  # +1: fail on increase; -1: fail on decrease
    amount: float = 0.0
    relative: bool = True

    @classmethod
    def parse(cls, text: str) -> Gate:
        text = text.strip(" ")  # spaces around it are harmless; a newline is a mistake
        if text == "status":
            return cls("status")
        m = _GATE_RE.fullmatch(text)
        if not m:
            raise GateError(
                f"cannot read --fail-on {text!r}: expected time:+10%, time.NAME:+10%, "
                "metric.NAME:+5% or metric.NAME:-0.01, headline:+5%, or status"
            )
        target = m["target"]
        if target == "headline" and m["sign"] == "-":
            raise GateError(
                f"--fail-on {text!r}: a headline gate fails when a quality metric gets worse "
                "(in its own direction) by more than the amount; write e.g. headline:+5%"
            )
        relative = bool(m["pct"])
        amount = float(m["amount"]) / (100.0 if relative else 1.0)
        if target.startswith("time") and not relative:
            raise GateError(f"--fail-on {text!r}: time gates are relative; write e.g. time:+10%")
        return cls(target, 1 if m["sign"] == "+" else -1, amount, relative)

    def __str__(self) -> str:
        if self.target == "status":
            return "status"
        sign = "+" if self.sign > 0 else "-"
        amount = f"{self.amount * 100:g}%" if self.relative else f"{self.amount:g}"
        return f"{self.target}:{sign}{amount}"


@dataclass
class TimeRow:
    key: dict[str, Any]
    timer: str
    median_a: float
    median_b: float
    n_a: int
    n_b: int
    p_value: float

    @property
    def ratio(self) -> float:
        """median B / median A; inf from a zero A, NaN where both are 0 (no ratio)."""
        if self.median_a > 0:
            return self.median_b / self.median_a
        return math.nan if self.median_b == 0 else math.inf

    alpha: float = 0.05

    range_a: tuple[float, float] = (math.nan, math.nan)  # (min, max) of A's samples
    range_b: tuple[float, float] = (math.nan, math.nan)
    p_adjusted: float = math.nan  # Benjamini-Hochberg over every testable timer row

    @property
    def testable(self) -> bool:
        """Can the two-sided Mann-Whitney U test reach ``alpha`` with these counts?
        Its smallest p, at complete separation, is 2 / C(n_a + n_b, n_a) (compared in
        logs: C(2000, 1000) is past any float)."""
        if min(self.n_a, self.n_b) < 1:
            return False
        n, k = self.n_a + self.n_b, self.n_a
        log_comb = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
        return math.log(2.0) - log_comb < math.log(self.alpha)

    @property
    def separated(self) -> bool:
        """The two runs' samples do not overlap at all (every B above every A, or below)."""
        return self.range_b[0] > self.range_a[1] or self.range_b[1] < self.range_a[0]

    label: str = ""  # what differs between configurations (see Comparison.label)

    @property
    def significant(self) -> bool:
        """A difference the data can vouch for: p (corrected for the number of
        comparisons) below alpha. An untestable comparison (too few samples for the
        test to reach alpha) is never significant, however far apart its samples."""
        if not self.testable:
            return False
        p = self.p_adjusted if not math.isnan(self.p_adjusted) else self.p_value
        return p < self.alpha

    @property
    def untestable(self) -> str:
        """``untestable (n=1 a side)`` (``n=1/3`` for unequal counts); "" when testable."""
        if self.testable:
            return ""
        n = f"{self.n_a} a side" if self.n_a == self.n_b else f"{self.n_a}/{self.n_b}"
        return f"untestable (n={n})"

    @property
    def why(self) -> str:
        if self.testable:
            p = self.p_adjusted if not math.isnan(self.p_adjusted) else self.p_value
            return f"p={p:.2g} (adjusted)"
        return self.untestable


def samples_needed(alpha: float) -> int:
    """The fewest samples a side with which the two-sided Mann-Whitney U test can reach
    ``alpha`` (4 at 0.05)."""
    k = 1
    while 2.0 / math.comb(2 * k, k) >= alpha and k < 10_000:
        k += 1
    return k


@dataclass
class MetricRow:
    key: dict[str, Any]
    metric: str
    a: float
    b: float  # NaN: B has no value (its cells are not ok, or lack the metric)
    status_b: str = "ok"
    label: str = ""
    #: the seeds the means are over: ``6``; ``4 of 6`` where the others are ok in one run
    #: only (the means are over the seeds ok in both); ``unpaired`` where none is shared
    seeds: str = ""

    @property
    def delta(self) -> float:
        return self.b - self.a

    @property
    def relative(self) -> float:
        return self.delta / abs(self.a) if self.a != 0 else (0.0 if self.delta == 0 else math.inf)


@dataclass
class Comparison:
    run_a: str
    run_b: str
    key_columns: list[str]
    times: list[TimeRow] = field(default_factory=list)
    metrics: list[MetricRow] = field(default_factory=list)
    status_changes: list[tuple[dict[str, Any], str, str]] = field(default_factory=list)
    only_a: int = 0
    only_b: int = 0
    machines: tuple[str, str] = ("", "")
    #: what code differed (``code_differences``): a change a comparison measures too
    code: list[str] = field(default_factory=list)
    #: how the cells ran, where it differed (``measurement_differences``)
    measured: list[str] = field(default_factory=list)
    #: configuration key (as ``_key_json``) -> what differs between configurations
    labels: dict[str, str] = field(default_factory=dict)
    #: task -> its headline, as run B (else A) recorded it
    headlines: dict[str, Headline] = field(default_factory=dict)
    #: configuration key (as ``_key_json``) -> what each run chose, where a tuned
    #: configuration's choice moved between them, and what an ``across`` key was in each
    moved: dict[str, str] = field(default_factory=dict)
    #: the columns compared across (``compare_runs(across=...)``)
    across: list[str] = field(default_factory=list)
    #: the columns that alone keep an unmatched configuration of A from one of B: each
    #: would pair them as ``--across`` (a parameter changed between the runs)
    pairable: list[str] = field(default_factory=list)

    def label(self, key: dict[str, Any]) -> str:
        """A configuration as what differs from the others of its task:
        ``solver=dopri5 solver.adjoint=True`` (the task is not repeated)."""
        return self.labels.get(_key_json(key, self.key_columns), "default")

    def choice_moved(self, key: dict[str, Any]) -> str:
        """``chose method.lr=0.2 in A, method.lr=0.05 in B`` for a tuned configuration
        whose choice moved between the runs; "" otherwise."""
        return self.moved.get(_key_json(key, self.key_columns), "")


def _key_str(row: pd.Series, cols: list[str]) -> str:
    return json.dumps([_plain(row.get(c)) for c in cols], default=str)


def _key_json(key: dict[str, Any], cols: list[str]) -> str:
    return json.dumps([key.get(c) for c in cols], default=str)


def _labels(a: Run, b: Run, cols: list[str]) -> dict[str, str]:
    """Configuration key -> label, over both runs' cells together: the components and
    the parameters that vary within the task (``bench.columns.configuration_labels``),
    and the device and thread count where those vary too."""
    both = pd.concat([a.cells, b.cells], ignore_index=True)
    if not len(both) or "task" not in both.columns:
        return {}
    labels = configuration_labels(both)
    # keys as _groups makes them, from each run's own rows (concat may change dtypes)
    keys = [_key_str(r, cols) for frame in (a.cells, b.cells) for _, r in frame.iterrows()]
    where = [c for c in ("device", "threads") if c in cols]
    out: dict[str, str] = {}
    for _, group in both.groupby("task", sort=False, dropna=False):
        extra = varying(group, where, empty=False)  # a run's own setting, set or not
        for idx, row in group.iterrows():
            parts = [f"{c}={_plain(row[c])}" for c in extra if not is_missing(row[c])]
            out.setdefault(keys[idx], " ".join([labels[idx], *parts]))
    return out


def run_headlines(a: Run, b: Run) -> dict[str, Headline]:
    """task -> headline, as B recorded it (else A), keeping the quality metrics the
    cells have (``bench.columns.headline``); tasks without one are left out."""
    out: dict[str, Headline] = {}
    both = pd.concat([a.cells, b.cells], ignore_index=True)
    if "task" not in both.columns:
        return out
    for task, cells in both.groupby("task", sort=False):
        found = recorded_headline(b.meta, str(task), cells) or recorded_headline(
            a.meta, str(task), cells
        )
        if found is not None:
            out[str(task)] = found
    return out


def _plain(value: Any) -> Any:
    if is_missing(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def compare_runs(a: Run, b: Run, alpha: float = 0.05, across: Sequence[str] = ()) -> Comparison:
    """Align ``a`` and ``b`` and compute timer ratios, p-values and metric deltas, over
    each run's reported cells (``bench.results.reported``: a tuned entry's test cells,
    never pooled with its validation cells).

    ``across``: keys (a column, or a parameter's short name) left out of the alignment,
    so that a configuration whose value of them changed between the runs (a learning
    rate, the device) is compared with itself; each run must hold one value of each in
    a configuration, and a row whose values differ says both (``method.lr=0.01 in A,
    0.02 in B``). ``AcrossError`` where a key is unknown or cannot pair."""
    # each tuning record marks its own configuration's test cells: a parameter one run
    # tuned and the other fixed keeps the two apart
    marked_a, chose_a = _as_tuned(reported(a.cells), a.meta)
    marked_b, chose_b = _as_tuned(reported(b.cells), b.meta)
    a, b = replace(a, cells=marked_a), replace(b, cells=marked_b)
    cols = _shared_key_columns(a, b)
    names = _across_columns(a.cells, b.cells, cols, across)
    values_a = {c: a.cells[c].map(_norm) for c in names}
    values_b = {c: b.cells[c].map(_norm) for c in names}
    if names:
        marked_a, marked_b = _mark_across(marked_a, names), _mark_across(marked_b, names)
        a, b = replace(a, cells=marked_a), replace(b, cells=marked_b)
    result = Comparison(a.name, b.name, cols, across=names)
    result.machines = _machines(a), _machines(b)
    result.code = code_differences(a.meta, b.meta)
    result.measured = measurement_differences(a.meta, b.meta)
    result.labels = _labels(a, b, cols)
    chosen_a = {_key_str(marked_a.loc[i], cols): text for i, text in chose_a.items()}
    chosen_b = {_key_str(marked_b.loc[i], cols): text for i, text in chose_b.items()}
    for key in chosen_a.keys() & chosen_b.keys():  # a choice that moved is said
        if chosen_a[key] != chosen_b[key]:
            result.moved[key] = f"chose {chosen_a[key]} in A, {chosen_b[key]} in B"
            result.labels[key] = f"{result.labels.get(key, 'default')} ({result.moved[key]})"
    result.headlines = run_headlines(a, b)
    groups_a = _groups(a.cells, cols)
    groups_b = _groups(b.cells, cols)
    result.only_a = len(set(groups_a) - set(groups_b))
    result.only_b = len(set(groups_b) - set(groups_a))
    result.pairable = _pairable(set(groups_a) - set(groups_b), set(groups_b) - set(groups_a), cols)
    for k in [k for k in groups_a if k in groups_b]:
        said = [
            _across_text(name, values_a[name][groups_a[k].index], values_b[name][groups_b[k].index],
                         result.labels.get(k, "default"))
            for name in names
        ]  # fmt: skip
        said = [text for text in said if text]
        if said:
            result.moved[k] = "; ".join([*filter(None, [result.moved.get(k)]), *said])
            result.labels[k] = f"{result.labels.get(k, 'default')} ({'; '.join(said)})"
        cells_a, cells_b = groups_a[k], groups_b[k]
        key = {c: _plain(cells_a.iloc[0].get(c)) for c in cols}
        label = result.labels.get(k, "default")
        status_a = _status(cells_a)
        status_b = _status(cells_b)
        if status_a != status_b:
            result.status_changes.append((key, status_a, status_b))
        ok_a = cells_a[cells_a["status"] == "ok"]
        ok_b = cells_b[cells_b["status"] == "ok"]
        if ok_a.empty:
            continue
        # metrics and timers over the seeds ok in both: a seed failed in B is no better
        ok_a, ok_b, seeds = _paired(ok_a, ok_b)
        result.metrics.extend(_metric_rows(key, label, ok_a, ok_b, status_b, seeds))
        if ok_b.empty:
            continue
        samples_a = a.samples[a.samples["cell_id"].isin(ok_a["cell_id"])]
        samples_b = b.samples[b.samples["cell_id"].isin(ok_b["cell_id"])]
        result.times.extend(_time_rows(key, label, samples_a, samples_b, alpha))
    _adjust(result.times)
    return result


#: what a tuned test cell's chosen parameters read as in its configuration's key
TUNED = "tuned"
#: what an ``across`` key's value reads as in a configuration's key
ACROSS = "(across)"


def _across_columns(
    cells_a: pd.DataFrame, cells_b: pd.DataFrame, cols: list[str], keys: Sequence[str]
) -> list[str]:
    """The key columns named by ``keys`` (a column, or ``param.<key>``)."""
    out: list[str] = []
    for key in keys:
        if key == "task":
            raise AcrossError(
                "--across task: another task is another measure, not a changed setting; "
                "compare a parameter, a component or the device"
            )
        found = [c for c in (key, f"param.{key}") if c in cols]
        if not found:
            either = [c for c in (key, f"param.{key}")
                      if c in cells_a.columns or c in cells_b.columns]  # fmt: skip
            if either:
                where = "A" if either[0] in cells_a.columns else "B"
                raise AcrossError(
                    f"--across {key}: {either[0]} is not a configuration column of both runs "
                    f"(only of {where}'s cells, or a measurement): configurations are "
                    "aligned without it already"
                )
            names = [c.removeprefix("param.") for c in cols]
            close = difflib.get_close_matches(key, names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise AcrossError(f"--across {key}: no such column in the runs' cells{hint}")
        if found[0] not in out:
            out.append(found[0])
    return out


def _mark_across(cells: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """``cells`` with the ``names`` columns reading ``ACROSS`` where they hold a value."""
    cells = cells.copy()
    for name in names:
        held = cells[name].map(lambda v: not is_missing(v))
        cells[name] = cells[name].astype(object).where(~held, ACROSS)
    return cells


def _across_text(name: str, values_a: pd.Series, values_b: pd.Series, label: str) -> str:
    """``method.lr=0.01 in A, 0.02 in B`` where one configuration's value of an
    ``across`` column changed; "" where it did not. ``AcrossError`` where a run holds
    several values of it in the configuration (pooling them would mix settings)."""
    short = name.removeprefix("param.")
    seen = []
    for run, values in (("A", values_a), ("B", values_b)):
        distinct = sorted(set(values))
        if len(distinct) > 1:
            raise AcrossError(
                f"--across {short}: run {run} holds {short} = {', '.join(distinct)} in one "
                f"configuration ({label}); --across pairs one value in A with one in B "
                "(leave the others out of the runs, or compare without --across)"
            )
        seen.append(distinct[0] if distinct else "")
    return "" if seen[0] == seen[1] else f"{short}={seen[0]} in A, {seen[1]} in B"


def pairable_notes(cmp: Comparison) -> list[str]:
    """What would pair the unmatched configurations: ``they differ only in method.lr
    ... --across method.lr``."""
    if not cmp.pairable:
        return []
    shown = [c.removeprefix("param.") for c in cmp.pairable]
    flags = " ".join(f"--across {c}" for c in shown)
    return [
        f"some differ only in {', '.join(shown)} (a change between the runs): {flags} compares them"
    ]


def _pairable(only_a: set[str], only_b: set[str], cols: list[str]) -> list[str]:
    """The key columns (never the task) that alone tell an unmatched configuration of A
    from one of B (keys as ``_key_str`` makes them), in column order: for each column,
    the keys with it left out meet in both runs (linear in the configurations)."""
    parsed_a = [json.loads(k) for k in only_a]
    parsed_b = [json.loads(k) for k in only_b]
    found = []
    for i, column in enumerate(cols):
        if column == "task":
            continue

        def without(values: list[Any], i: int = i) -> str:
            return json.dumps(values[:i] + values[i + 1 :], default=str)

        if {without(v) for v in parsed_a} & {without(v) for v in parsed_b}:
            found.append(column)
    return found


def _as_tuned(cells: pd.DataFrame, meta: dict[str, Any]) -> tuple[pd.DataFrame, dict[Any, str]]:
    """``cells`` with each tuned configuration's test cells reading ``tuned`` in the
    columns its own grid sets (``run.json``'s records), so that two runs of a tuned suite
    compare a configuration as tuned whatever each chose; and, by the index of one of
    those cells, what the configuration chose (``method.lr=0.2 method.weight=2``). A run
    without records (killed before any choice was made, or written before records
    were) is left as it is."""
    records = meta.get("tuning") if isinstance(meta, dict) else None
    if not isinstance(records, list) or "role" not in cells.columns or not len(cells):
        return cells, {}
    cells = cells.copy()
    chose: dict[Any, str] = {}
    test = cells["role"] == TEST
    for record in records:
        if not isinstance(record, dict) or not isinstance(record.get("chosen"), dict):
            continue
        mine = test & (cells["task"] == record.get("task"))
        mine &= cells["bench"].astype(str) == str(record.get("entry"))
        given = record.get("configuration")
        for key, value in given.items() if isinstance(given, dict) else ():
            column = _column(cells, key)
            if column is None:
                mine &= False
                break
            mine &= cells[column].map(_norm) == _norm(value)
        if not mine.any():
            continue
        for key in record["chosen"]:
            column = _column(cells, key)
            if column is not None:
                cells[column] = cells[column].astype(object).where(~mine, TUNED)
        chose[cells.index[mine][0]] = " ".join(
            f"{k}={_norm(v)}" for k, v in record["chosen"].items()
        )
    return cells, chose


def _column(cells: pd.DataFrame, key: str) -> str | None:
    """The cells' column of a configuration key: a component slot, or ``param.<key>``."""
    if key in cells.columns and not key.startswith("param."):
        return key
    return f"param.{key}" if f"param.{key}" in cells.columns else None


def _norm(value: Any) -> str:
    """One text for a value however it was stored (a list read back as an array, an int
    column read back as floats)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_norm(v) for v in value) + "]"
    value = _plain(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{float(value):.12g}"
    return str(value)


def _shared_key_columns(a: Run, b: Run) -> list[str]:
    """The columns that tell configurations apart in both runs, with the device and the
    thread count where both runs have them."""
    cols = [c for c in key_columns(a.cells) if c in set(key_columns(b.cells))]
    # the same configuration on another device or thread count is another measurement
    cols += [c for c in ("device", "threads") if c in a.cells.columns and c in b.cells.columns]
    return cols


def _metric_rows(
    key: dict[str, Any],
    label: str,
    ok_a: pd.DataFrame,
    ok_b: pd.DataFrame,
    status_b: str,
    seeds: str,
) -> list[MetricRow]:
    """A row per metric with a finite mean over one configuration's ok cells in A (as
    ``_paired`` gave them, ``seeds`` its text): its mean there and in B (NaN where B has
    no value of it)."""
    rows = []
    for col in sorted(c for c in ok_a.columns if c.startswith("metric.")):
        va = pd.to_numeric(ok_a[col], errors="coerce").dropna()
        if not len(va) or not math.isfinite(va.mean()):
            continue
        # a metric gone from B, or NaN there, is a row too: the gate on it fails
        vb = pd.to_numeric(ok_b.get(col, pd.Series(dtype=float)), errors="coerce").dropna()
        b_value = float(vb.mean()) if len(vb) else math.nan
        rows.append(MetricRow(key, col, float(va.mean()), b_value, status_b, label, seeds))
    return rows


def _paired(ok_a: pd.DataFrame, ok_b: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Both runs' ok cells of one configuration on the seeds ok in both (a seed that
    failed in B is not averaged away on one side only: a method failing on the hard
    cases would read better), and what the means are over: ``6``; ``4 of 6``; each run's
    own cells where they share no seed (runs of different seeds), ``unpaired``."""
    seeds_a, seeds_b = set(ok_a["seed"]), set(ok_b["seed"])
    both = seeds_a & seeds_b
    if not both:
        return ok_a, ok_b, f"unpaired ({len(seeds_a)} in A, {len(seeds_b)} in B)" if seeds_b else ""
    every = len(seeds_a | seeds_b)
    seeds = str(len(both)) if len(both) == every else f"{len(both)} of {every}"
    return ok_a[ok_a["seed"].isin(both)], ok_b[ok_b["seed"].isin(both)], seeds


def _time_rows(
    key: dict[str, Any],
    label: str,
    samples_a: pd.DataFrame,
    samples_b: pd.DataFrame,
    alpha: float,
) -> list[TimeRow]:
    """A row per timer both runs sampled for one configuration: the medians, the ranges
    and, where the samples are enough to reach ``alpha``, the Mann-Whitney U p-value
    (not yet adjusted)."""
    from scipy.stats import mannwhitneyu

    rows = []
    for timer in sorted(set(samples_a["timer"]) & set(samples_b["timer"])):
        xa = samples_a.loc[samples_a["timer"] == timer, "seconds"].to_numpy(float)
        xb = samples_b.loc[samples_b["timer"] == timer, "seconds"].to_numpy(float)
        row = TimeRow(
            key,
            timer,
            float(np.median(xa)),
            float(np.median(xb)),
            len(xa),
            len(xb),
            math.nan,
            alpha,
            label=label,
        )
        row.range_a = (float(xa.min()), float(xa.max()))
        row.range_b = (float(xb.min()), float(xb.max()))
        if row.testable:
            # method="auto": exact for small samples, the normal approximation for
            # large ones (the exact distribution overflows past ~500 a side)
            row.p_value = float(mannwhitneyu(xa, xb, alternative="two-sided", method="auto").pvalue)
        rows.append(row)
    return rows


def _adjust(rows: list[TimeRow]) -> None:
    """Benjamini-Hochberg over every testable row: with many timers compared, some
    p-values fall below alpha by chance alone."""
    from scipy.stats import false_discovery_control

    tested = [r for r in rows if r.testable and not math.isnan(r.p_value)]
    if tested:
        adjusted = false_discovery_control([r.p_value for r in tested], method="bh")
        for row, p in zip(tested, adjusted):
            row.p_adjusted = float(p)


def code_differences(meta_a: dict[str, Any], meta_b: dict[str, Any]) -> list[str]:
    """What code differed between two runs, as run.json recorded it: bench's commit (and
    a dirty tree), and each suite plugin file whose source hash differs or that only one
    run had: ``plugin ./lab.py: d0c34ede9bc3 in A, b0f33e5bf35c in B``."""
    out = []
    git_a = meta_a.get("git") if isinstance(meta_a.get("git"), dict) else {}
    git_b = meta_b.get("git") if isinstance(meta_b.get("git"), dict) else {}

    def commit(git: dict[str, Any]) -> str:
        text = str(git.get("commit") or "?")[:12]
        return text + (" (dirty)" if git.get("dirty") else "")

    if git_a and git_b and commit(git_a) != commit(git_b):
        out.append(f"bench commit {commit(git_a)} in A, {commit(git_b)} in B")
    elif git_a.get("dirty") and git_b.get("dirty"):
        out.append(f"both at bench commit {commit(git_a)}, each with uncommitted changes")

    def plugins(meta: dict[str, Any]) -> dict[str, str]:
        files = meta.get("plugin_files")
        return {
            str(e.get("spec")): str(e.get("sha256", "?"))[:12]
            for e in (files if isinstance(files, list) else [])
            if isinstance(e, dict)
        }

    for meta, run in ((meta_a, "A"), (meta_b, "B")):
        changes = meta.get("plugin_changes")
        for change in changes if isinstance(changes, list) else []:
            if isinstance(change, dict):
                out.append(f"plugin {change.get('spec')} was edited during run {run} "
                           f"(resumed at {change.get('at', '?')})")  # fmt: skip
    files_a, files_b = plugins(meta_a), plugins(meta_b)
    for spec in dict.fromkeys([*files_a, *files_b]):
        ha, hb = files_a.get(spec, "none"), files_b.get(spec, "none")
        if ha != hb:
            out.append(f"plugin {spec}: {ha} in A, {hb} in B")
    return out


def measurement_differences(meta_a: dict[str, Any], meta_b: dict[str, Any]) -> list[str]:
    """How the runs ran their cells, where it differs (``run.json``'s ``concurrent``:
    cells side by side share the machine, so their times are not one cell's alone),
    where one run ran them otherwise on a resume (``earlier_runs``), and where an entry
    both runs hold timed with other ``repeats`` or ``warmup``."""

    def at_once(meta: dict[str, Any]) -> list[Any]:
        earlier = meta.get("earlier_runs")
        seen = [e.get("concurrent") for e in earlier if isinstance(e, dict)] if isinstance(
            earlier, list) else []  # fmt: skip
        return [c for c in [*seen, meta.get("concurrent")] if c is not None]

    def said(n: Any) -> str:
        return "as the scheduler ran them" if n == 0 else f"{n} at a time"

    out = []
    a, b = at_once(meta_a), at_once(meta_b)
    if a and b and set(a) != set(b):
        out.append(
            f"cells ran {', '.join(map(said, dict.fromkeys(a)))} in A, "
            f"{', '.join(map(said, dict.fromkeys(b)))} in B: cells side by side share the "
            "machine, so the time ratios measure that too"
        )
    for run, seen in (("A", a), ("B", b)):
        if len(set(seen)) > 1:
            out.append(f"run {run} was resumed with another number of cells at a time "
                       f"({', '.join(map(said, seen))})")  # fmt: skip
    from bench.sysinfo import environment_note, run_load

    env_a, env_b = meta_a.get("environment"), meta_b.get("environment")
    if isinstance(env_a, dict) and isinstance(env_b, dict) and env_a != env_b:
        out.append(f"the environment differs: {environment_note(env_a) or 'none set'} in A, "
                   f"{environment_note(env_b) or 'none set'} in B")  # fmt: skip
    elif isinstance(env_a, dict) != isinstance(env_b, dict) and (env_a or env_b):
        said = environment_note(env_a if isinstance(env_a, dict) else env_b)
        out.append(f"run {'A' if isinstance(env_a, dict) else 'B'} ran with {said}; the other "
                   "recorded no environment (a run from before bench recorded it)")  # fmt: skip
    loads = {run: run_load(meta) for run, meta in (("A", meta_a), ("B", meta_b))}
    busy = [run for run, (_, was_busy) in loads.items() if was_busy]
    if busy:
        out.append("the machine was busy as run " + " and ".join(
            f"{run} started (load average {loads[run][0]})" for run in busy
        ) + ": its times may include other work")  # fmt: skip
    timing_a, timing_b = _timing(meta_a), _timing(meta_b)
    whys = {"repeats": "a median over another number of timed calls",
            "warmup": "first-call costs (compilation, caches) timed or not"}  # fmt: skip
    for key, why in whys.items():
        apart = [(label, a[key], timing_b[entry][1][key])
                 for entry, (label, a) in timing_a.items()
                 if entry in timing_b and a[key] != timing_b[entry][1][key]]  # fmt: skip
        # a task both runs sweep in entries written otherwise: the values its entries used
        said = {label for label, _, _ in apart}
        tasks_a, tasks_b = _by_task(timing_a, key), _by_task(timing_b, key)
        for task in tasks_a.keys() & tasks_b.keys():
            if task not in said and tasks_a[task] != tasks_b[task]:
                apart.append((task, "/".join(tasks_a[task]), "/".join(tasks_b[task])))
        if apart:
            each = "; ".join(f"{label}: {x} in A, {y} in B" for label, x, y in apart[:4])
            more = f"; and {len(apart) - 4} more entries" if len(apart) > 4 else ""
            out.append(f"{key} differ ({each}{more}): the time ratios measure that too ({why})")
    return out


def _by_task(timing: dict[str, tuple[str, dict[str, Any]]], key: str) -> dict[str, list[str]]:
    """Each task's values of ``key`` over its entries (``_timing``'s), sorted."""
    out: dict[str, set[str]] = {}
    for _, values in timing.values():
        out.setdefault(values["task"], set()).add(str(values[key]))
    return {task: sorted(v) for task, v in out.items()}


def _timing(meta: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each entry of the run's suite, as its recorded text wrote it (its ``name``, else
    its task and given values), with the ``repeats`` and ``warmup`` it ran with (its own,
    else the suite's, else the default) and a label for messages; nothing where the
    text cannot be read (a received file: never raised on)."""
    import yaml

    from bench.settings import SETTINGS

    try:
        data = yaml.safe_load(meta.get("suite_text") or "")
    except yaml.YAMLError:
        return {}
    entries = data.get("benchmarks") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return {}
    top = {k: data.get(k, SETTINGS[k].default) for k in ("repeats", "warmup")}
    out = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        given = {k: entry.get(k) for k in ("task", "params", "matrix")}
        key = str(entry.get("name") or json.dumps(given, sort_keys=True, default=str))
        label = str(entry.get("name") or entry.get("task", "?"))
        values = {k: entry.get(k, v) for k, v in top.items()}
        out[key] = (label, {**values, "task": str(entry.get("task", "?"))})
    return out


def _machines(run: Run) -> str:
    meta = run.meta
    devices = ", ".join(str(d.get("name", "?")) for d in meta.get("devices", []))
    return f"{meta.get('host', '?')} ({devices})"


def _groups(cells: pd.DataFrame, cols: list[str]) -> dict[str, pd.DataFrame]:
    """Cells by configuration, grouped in one pass (not one filter per configuration)."""
    if not len(cells):
        return {}
    keys = [_key_str(r, cols) for _, r in cells.iterrows()]
    return {k: group for k, group in cells.groupby(pd.Series(keys, index=cells.index), sort=False)}


def _status(cells: pd.DataFrame) -> str:
    statuses = sorted(set(cells["status"]))
    return statuses[0] if len(statuses) == 1 else "/".join(statuses)


@dataclass
class Violation:
    """A gate crossed (``verdict="crossed"``), or a comparison the gate could not
    judge (``verdict`` ``untestable (n=1 a side)``: listed, never failing)."""

    gate: Gate
    key: dict[str, Any]
    what: str
    detail: str
    label: str = ""
    verdict: str = "crossed"


def check_gates(cmp: Comparison, gates: list[Gate], alpha: float = 0.05) -> list[Violation]:
    """Every gate crossing, with what crossed it. Untestable time comparisons never
    cross a gate (see ``untestable_under``)."""
    out: list[Violation] = []
    for gate in gates:
        if gate.target == "status":
            for key, sa, sb in cmp.status_changes:
                if sa == "ok" and sb != "ok":
                    out.append(Violation(gate, key, "status", f"ok -> {sb}", cmp.label(key)))
        elif gate.target.startswith("time"):
            for row in _gated_times(cmp, gate):
                if _crosses(gate, row.ratio - 1.0) and row.significant:
                    detail = f"x{row.ratio:.3f} ({row.why})"
                    out.append(Violation(gate, row.key, f"time.{row.timer}", detail, row.label))
        elif gate.target == "headline":
            for row in cmp.metrics:
                better = _headline_direction(cmp, row)
                if better is not None and not _across_problem(cmp, row):
                    out += _metric_violation(gate, row, 1 if better == "lower" else -1, better)
        else:
            for row in cmp.metrics:
                if row.metric == gate.target and not _across_problem(cmp, row):
                    out += _metric_violation(gate, row, gate.sign)
    return out


def problems_across(cmp: Comparison, h: Headline | None) -> list[str]:
    """The ``--across`` columns that are problems of the task (``Headline.problem``): a
    quality that changed across one changed with the problem, not for better or worse
    (a user audit read B-spline pairs, easier, as every method 13 % better)."""
    return [c for c in cmp.across if h is not None and c in h.problem_columns]


def _across_problem(cmp: Comparison, row: MetricRow) -> list[str]:
    """The problem columns a metric row was compared across (its gate does not judge
    it: every measure of a problem changes with it), else []. A value B lost or that
    is not finite is judged all the same: it crosses its gate whatever the problem."""
    found = cmp.headlines.get(str(row.key.get("task")))
    if found is None or not math.isfinite(row.b):
        return []
    return problems_across(cmp, found)


def untestable_under(cmp: Comparison, gates: list[Gate]) -> list[Violation]:
    """The time comparisons a gate looked at and could not judge (too few samples for
    the test to reach alpha) whose ratio is past the gate's amount: listed with
    ``verdict`` ``untestable (n=1 a side)``; they do not fail the gate."""
    out = []
    for gate in gates:
        if not gate.target.startswith("time"):
            for row in cmp.metrics:  # a quality across a problem: listed, not judged
                crossed = _across_problem(cmp, row)
                named = gate.target in ("headline", row.metric)
                if crossed and named and _metric_violation(gate, row, _sign(cmp, gate, row)):
                    names = ", ".join(c.removeprefix("param.") for c in crossed)
                    detail = f"{row.a:.4g} -> {row.b:.4g}"
                    why = f"not judged: the problem changed ({names})"
                    out.append(Violation(gate, row.key, row.metric, detail, row.label, why))
            continue
        for row in _gated_times(cmp, gate):
            if not row.testable and _crosses(gate, row.ratio - 1.0):
                detail = f"x{row.ratio:.3f}"
                what = f"time.{row.timer}"
                out.append(Violation(gate, row.key, what, detail, row.label, row.untestable))
    return out


def untestable_notes(cmp: Comparison, gates: list[Gate]) -> list[str]:
    """Per time gate, how many of the comparisons it looked at were untestable, in one
    line: ``time:+10%: 4 of 6 timer comparisons untestable (n=1 a side) ...``."""
    out = []
    for gate in gates:
        if not gate.target.startswith("time"):
            continue
        rows = _gated_times(cmp, gate)
        blind = [r for r in rows if not r.testable]
        if not blind:
            continue
        kinds = ", ".join(dict.fromkeys(r.untestable for r in blind))
        past = sum(_crosses(gate, r.ratio - 1.0) for r in blind)
        alpha = blind[0].alpha
        tail = f" ({past} past it, listed above)" if past else ""
        out.append(
            f"{gate}: {len(blind)} of {len(rows)} timer comparisons {kinds}: too few samples "
            f"for p<{alpha:g} ({samples_needed(alpha)} a side are needed), so they cannot "
            f"fail the gate{tail}"
        )
    return out


def _gated_times(cmp: Comparison, gate: Gate) -> list[TimeRow]:
    wanted = gate.target[len("time.") :] if gate.target != "time" else None
    return [r for r in cmp.times if wanted is None or r.timer == wanted]


def _crosses(gate: Gate, change: float, sign: int | None = None) -> bool:
    return change * (gate.sign if sign is None else sign) > gate.amount


def _sign(cmp: Comparison, gate: Gate, row: MetricRow) -> int:
    """Which way is worse for the row under ``gate``: the headline's, for its gate."""
    if gate.target != "headline":
        return gate.sign
    return 1 if _headline_direction(cmp, row) == "lower" else -1


def _headline_direction(cmp: Comparison, row: MetricRow) -> str | None:
    found = cmp.headlines.get(str(row.key.get("task")))
    return found.better(row.metric) if found is not None else None


def _metric_violation(gate: Gate, row: MetricRow, sign: int, better: str = "") -> list[Violation]:
    """The metric row as a crossing of ``gate`` (worse when it moves by ``sign``), if it is
    one: a value gone or not finite in B always is."""
    why = f" ({better} is better)" if better else ""
    if not math.isfinite(row.b):
        b_value = "none" if math.isnan(row.b) else f"{row.b:.4g}"
        status = "" if row.status_b == "ok" else f" (B: {row.status_b})"
        return [
            Violation(gate, row.key, row.metric, f"{row.a:.4g} -> {b_value}{status}", row.label)
        ]
    change = row.relative if gate.relative else row.delta
    if _crosses(gate, change, sign):
        return [Violation(gate, row.key, row.metric, f"{row.a:.4g} -> {row.b:.4g}{why}", row.label)]
    return []


def check_gate_targets(gates: list[Gate], a: Run, b: Run) -> None:
    """Raise ``GateError`` for a gate on a timer or metric that neither run has: a
    misspelt name matched nothing, and the gate held without having looked. The same
    for a headline gate on runs where no task recorded a headline."""
    timers: set[str] = set()
    metrics: set[str] = set()
    for run in (a, b):
        if "timer" in run.samples.columns:
            timers |= {str(t) for t in run.samples["timer"].unique()}
        for col in run.cells.columns:
            if col.startswith("time.") and col.endswith(".median"):
                timers.add(col[len("time.") : -len(".median")])
            elif col.startswith("metric."):
                metrics.add(col[len("metric.") :])
    for gate in gates:
        if gate.target == "headline":
            if not run_headlines(a, b):
                raise GateError(
                    f"--fail-on {gate}: neither run records a headline for any of its tasks "
                    "(runs made before tasks declared one have none, or its quality metrics "
                    "are not in the cells); gate on metric.NAME instead"
                )
            continue
        kind, _, name = gate.target.partition(".")
        known = {"time": timers, "metric": metrics}.get(kind, set())
        if name and name not in known:
            have = ", ".join(sorted(known)) or "none"
            raise GateError(
                f"--fail-on {gate}: no {'timer' if kind == 'time' else kind} {name!r} in "
                f"either run (their {'timer' if kind == 'time' else kind}s: {have})"
            )


def gate_table(results: list[Violation], title: str = "gates") -> Any:
    """A rich table of gate results: gate, task, configuration (what differs), what,
    change, verdict (``crossed``, or ``untestable (n=1 a side)``: not failed)."""
    from rich.table import Table

    crossed = any(r.verdict == "crossed" for r in results)
    table = Table(title=title, header_style="bold red" if crossed else "bold")
    # the labels fold onto more lines (never cut: two configurations would read alike);
    # the numbers never wrap
    for name in ("gate", "task", "configuration", "what", "change", "verdict"):
        table.add_column(name, overflow="fold", no_wrap=name == "change")
    for r in results:
        table.add_row(
            str(r.gate),
            str(r.key.get("task", "")),
            r.label,
            r.what,
            r.detail,
            r.verdict if r.verdict == "crossed" else f"{r.verdict}: not failed",
            style="red" if r.verdict == "crossed" else "dim",
        )
    return table


def _as_text(value: Any) -> str:
    if is_missing(value):
        return ""
    return str(value)


def split_assignment(text: str, flag: str, example: str = "COL=VALUE") -> tuple[str, str]:
    """``COL=VALUE`` (``--filter``, ``--baseline``, ``--slurm``) split once, for all."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"{flag} {text!r}: expected {example}")
    return key, value


def speedups_against(cells: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """``with_speedups`` for a ``--baseline COL=VALUE[,VALUE...]`` argument; ValueError
    naming the argument when it cannot be used."""
    col, value = split_assignment(baseline, "--baseline")
    try:
        return with_speedups(cells, col, value.split(","))
    except KeyError as exc:
        raise ValueError(f"--baseline {baseline!r}: {exc.args[0]}") from None


def with_speedups(cells: pd.DataFrame, column: str, value: str | list[str]) -> pd.DataFrame:
    """Within one run: each cell's speed against a baseline cell, as ``speedup.<timer>``.

    The baseline of a cell is the ``ok`` cell that has ``column == value`` (compared as
    text; with several values, whichever matches: ``warp.eager`` for the warp cells,
    ``svf_exp.eager`` for the others) and the same task, seed, suite entry (``bench``),
    device, threads and every other key column,
    leaving out the
    parameters of the varied component (``param.<column>.*``: ``warp.compile`` has a
    ``mode`` that ``warp.eager`` lacks). ``speedup.<timer>`` is the baseline's median
    time over the cell's: 6.0 means six times faster than the baseline, which shows
    1.0. Cells without an ``ok`` baseline, or not ``ok`` themselves, get NaN.

    Raises ``KeyError`` naming the column or the value when the run has neither, or the
    two values when both are baselines of one configuration.
    """
    if column not in cells.columns:
        raise KeyError(f"no column {column!r}; columns are: {', '.join(cells.columns)}")
    text = cells[column].map(_as_text)
    wanted = [value] if isinstance(value, str) else list(value)
    for one in wanted:
        if not (text == one).any():
            values = ", ".join(sorted(text.unique()))
            raise KeyError(f"no cell has {column}={one} (its values: {values})")
    match = [c for c in key_columns(cells) if c != column and not c.startswith(f"param.{column}.")]
    # Where and how it ran is part of the configuration too (a CPU bench and a CUDA
    # bench of one suite are not each other's baseline).
    match += [c for c in ("bench", "device", "threads", "seed") if c in cells.columns]
    keys = pd.Series(
        ["\x1f".join(_as_text(v) for v in row) for row in cells[match].itertuples(index=False)],
        index=cells.index,
    )
    ok = cells["status"] == "ok"
    baselines = cells[text.isin(wanted) & ok]
    base_of: dict[str, Any] = {}
    for idx in baselines.index:
        other = base_of.setdefault(keys[idx], idx)
        if other != idx:
            raise KeyError(
                f"{column}={text[other]} and {column}={text[idx]} are both baselines of "
                f"one configuration ({cells.at[idx, 'task']}); name one per configuration"
            )
    out = cells.copy()
    timers = [c for c in cells.columns if c.startswith("time.") and c.endswith(".median")]
    for timer in timers:
        speedup = []
        for idx in cells.index:
            base = base_of.get(keys[idx])
            if base is None or not ok[idx]:
                speedup.append(math.nan)
            else:
                mine = float(cells.at[idx, timer])
                speedup.append(float(cells.at[base, timer]) / mine if mine > 0 else math.nan)
        out["speedup." + timer[len("time.") : -len(".median")]] = speedup
    return out


def nothing_shared(cmp: Comparison) -> str:
    """Why two runs cannot be compared, where they share no cell with results in both;
    "" where they do. ``bench compare`` and ``bench report A B`` refuse alike."""
    if cmp.times or cmp.metrics or cmp.status_changes:
        return ""
    return (
        f"{cmp.run_a} and {cmp.run_b} share no cell with results in both (same task, "
        "components and parameters): nothing to compare (--across KEY pairs configurations "
        "across a parameter changed between the runs)"
    )
