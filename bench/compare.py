"""Comparing two runs: align cells, aggregate seeds, ratios, significance, gates.

Cells are aligned on what they measured (task, components, parameters); the
seeds of a configuration are pooled. For each timer, the ratio is
``median(B) / median(A)`` over the pooled samples, with a two-sided
Mann-Whitney U test on those samples (scipy): a ratio is called significant
when p < alpha. Metrics are compared as the difference of their means over seeds.

Gates (``--fail-on``) make ``bench compare`` usable in CI:

- ``time:+10%``: fail when any timer is more than 10 % slower and the
  difference is significant. Where the samples are too few for the test ever to
  reach ``alpha`` (3 against 3: the smallest two-sided p is 2/C(6,3) = 0.1), the
  ratio alone decides: a gate that could never fire would be no gate.
- ``time.solve:+10%``: the same for one timer.
- ``metric.rel_l2_error:+5%`` / ``metric.accuracy:-0.01``: fail when a metric
  rises (``+``) or falls (``-``) by more than that, relative (``%``) or absolute,
  or when a configuration that had it in A has no finite value of it in B (its
  cells diverged, failed, or stopped reporting it).
- ``status``: fail when a cell that was ``ok`` in A is not ``ok`` in B.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bench.results import Run, is_missing, key_columns

_GATE_RE = re.compile(  # fullmatch: "$" would take a trailing "\n"
    r"(?P<target>time|time\.[\w.\-]+|metric\.[\w.\-]+):(?P<sign>[+-])"
    r"(?P<amount>\d+(\.\d*)?([eE][+-]?\d+)?)(?P<pct>%?)"
)


class GateError(ValueError):
    """A ``--fail-on`` expression that cannot be parsed."""


@dataclass(frozen=True)
class Gate:
    target: str  # "time", "time.<name>", "metric.<name>" or "status"
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
                "metric.NAME:+5% or metric.NAME:-0.01, or status"
            )
        target = m["target"]
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
        return self.median_b / self.median_a if self.median_a > 0 else math.inf

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

    @property
    def significant(self) -> bool:
        """A difference the data can vouch for: p (corrected for the number of
        comparisons) below alpha where the test can reach it; where it cannot
        (too few samples), samples that do not overlap."""
        if not self.testable:
            return self.separated
        p = self.p_adjusted if not math.isnan(self.p_adjusted) else self.p_value
        return p < self.alpha

    @property
    def why(self) -> str:
        if self.testable:
            p = self.p_adjusted if not math.isnan(self.p_adjusted) else self.p_value
            return f"p={p:.2g} (adjusted)"
        overlap = "no overlap" if self.separated else "ranges overlap"
        return f"untestable: n={self.n_a}/{self.n_b} cannot reach p<{self.alpha:g}; {overlap}"


@dataclass
class MetricRow:
    key: dict[str, Any]
    metric: str
    a: float
    b: float  # NaN: B has no value (its cells are not ok, or lack the metric)
    status_b: str = "ok"

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


def _key_str(row: pd.Series, cols: list[str]) -> str:
    return json.dumps([_plain(row.get(c)) for c in cols], default=str)


def _plain(value: Any) -> Any:
    if is_missing(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def compare_runs(a: Run, b: Run, alpha: float = 0.05) -> Comparison:
    """Align ``a`` and ``b`` and compute timer ratios, p-values and metric deltas."""
    from scipy.stats import mannwhitneyu

    cols = [c for c in key_columns(a.cells) if c in set(key_columns(b.cells))]
    # the same configuration on another device or thread count is another measurement
    cols += [c for c in ("device", "threads") if c in a.cells.columns and c in b.cells.columns]
    result = Comparison(a.name, b.name, cols)
    result.machines = _machines(a), _machines(b)
    groups_a = _groups(a.cells, cols)
    groups_b = _groups(b.cells, cols)
    result.only_a = len(set(groups_a) - set(groups_b))
    result.only_b = len(set(groups_b) - set(groups_a))
    for k in [k for k in groups_a if k in groups_b]:
        cells_a, cells_b = groups_a[k], groups_b[k]
        key = {c: _plain(cells_a.iloc[0].get(c)) for c in cols}
        status_a = _status(cells_a)
        status_b = _status(cells_b)
        if status_a != status_b:
            result.status_changes.append((key, status_a, status_b))
        ok_a = cells_a[cells_a["status"] == "ok"]
        ok_b = cells_b[cells_b["status"] == "ok"]
        if ok_a.empty:
            continue
        for col in sorted(c for c in ok_a.columns if c.startswith("metric.")):
            va = pd.to_numeric(ok_a[col], errors="coerce").dropna()
            if not len(va) or not math.isfinite(va.mean()):
                continue
            # a metric gone from B, or NaN there, is a row too: the gate on it fails
            vb = pd.to_numeric(ok_b.get(col, pd.Series(dtype=float)), errors="coerce").dropna()
            b_value = float(vb.mean()) if len(vb) else math.nan
            result.metrics.append(MetricRow(key, col, float(va.mean()), b_value, status_b))
        if ok_b.empty:
            continue
        samples_a = a.samples[a.samples["cell_id"].isin(ok_a["cell_id"])]
        samples_b = b.samples[b.samples["cell_id"].isin(ok_b["cell_id"])]
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
            )
            row.range_a = (float(xa.min()), float(xa.max()))
            row.range_b = (float(xb.min()), float(xb.max()))
            if row.testable:
                # method="auto": exact for small samples, the normal approximation for
                # large ones (the exact distribution overflows past ~500 a side)
                row.p_value = float(
                    mannwhitneyu(xa, xb, alternative="two-sided", method="auto").pvalue
                )
            result.times.append(row)
    _adjust(result.times)
    return result


def _adjust(rows: list[TimeRow]) -> None:
    """Benjamini-Hochberg over every testable row: with many timers compared, some
    p-values fall below alpha by chance alone."""
    from scipy.stats import false_discovery_control

    tested = [r for r in rows if r.testable and not math.isnan(r.p_value)]
    if tested:
        adjusted = false_discovery_control([r.p_value for r in tested], method="bh")
        for row, p in zip(tested, adjusted):
            row.p_adjusted = float(p)


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
    gate: Gate
    key: dict[str, Any]
    what: str
    detail: str


def check_gates(cmp: Comparison, gates: list[Gate], alpha: float = 0.05) -> list[Violation]:
    """Every gate crossing, with what crossed it."""
    out: list[Violation] = []
    for gate in gates:
        if gate.target == "status":
            for key, sa, sb in cmp.status_changes:
                if sa == "ok" and sb != "ok":
                    out.append(Violation(gate, key, "status", f"ok -> {sb}"))
            continue
        if gate.target.startswith("time"):
            wanted = gate.target[len("time.") :] if gate.target != "time" else None
            for row in cmp.times:
                if wanted is not None and row.timer != wanted:
                    continue
                change = row.ratio - 1.0
                crossed = change * gate.sign > gate.amount
                if crossed and row.significant:
                    out.append(
                        Violation(
                            gate, row.key, f"time.{row.timer}", f"x{row.ratio:.3f} ({row.why})"
                        )
                    )
            continue
        for row in cmp.metrics:
            if row.metric != gate.target:
                continue
            if not math.isfinite(row.b):
                b_value = "none" if math.isnan(row.b) else f"{row.b:.4g}"
                why = "" if row.status_b == "ok" else f" (B: {row.status_b})"
                out.append(Violation(gate, row.key, row.metric, f"{row.a:.4g} -> {b_value}{why}"))
                continue
            change = row.relative if gate.relative else row.delta
            if change * gate.sign > gate.amount:
                out.append(Violation(gate, row.key, row.metric, f"{row.a:.4g} -> {row.b:.4g}"))
    return out


def check_gate_targets(gates: list[Gate], a: Run, b: Run) -> None:
    """Raise ``GateError`` for a gate on a timer or metric that neither run has: a
    misspelt name matched nothing, and the gate held without having looked."""
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
        kind, _, name = gate.target.partition(".")
        known = {"time": timers, "metric": metrics}.get(kind, set())
        if name and name not in known:
            have = ", ".join(sorted(known)) or "none"
            raise GateError(
                f"--fail-on {gate}: no {'timer' if kind == 'time' else kind} {name!r} in "
                f"either run (their {'timer' if kind == 'time' else kind}s: {have})"
            )


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
