"""``bench report``: one self-contained HTML page for a run, or for two runs compared.

The page opens offline: its styles, its script, the plotting library and the
pictures are inside it. The page is a template with its stylesheet and script as
real files (``bench/report_assets/``), inlined when the page is written. Plots use
plotly.js, inlined from the ``plotly`` Python package (zoom and hover for free).

What the page holds, built around each task's headline (``bench.headline``: its
quality metrics and which way is better, its cost, its curves; for a run made
before tasks declared one: the first metric, the first timer or the wall time):

- the run: suite, command, commit, machine, devices, versions, dates; cells by
  status and each failed cell with its message (and traceback when kept);
- per task, configurations first (a configuration is what the suite varied:
  ``bench.columns.configuration_labels``; one colour each, the same wherever it
  appears on the page): a table of the headline columns (quality mean ± standard
  deviation over seeds, cost, the best configuration marked by the headline's
  direction, the Pareto front; ``best_margin``: whether its seeds tell the best from
  the runner-up); one cost-against-quality figure with the Pareto
  front marked; the headline curves against step and against time (any other curve
  by a selector); every other measure against the cost by a selector; the speedups
  over a baseline when one is given; the gallery; the table of every cell, every
  column;
- with a second run, first: per configuration, A, B, B/A, p-value and verdict of
  each timer (untestable ones, too few samples a side, said to be), then metric
  changes and status changes.

Another module writes a run's page with :func:`write_report` (or gets its HTML with
:func:`build_report`).
"""

from __future__ import annotations

import base64
import colorsys
import difflib
import html
import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import columns as C
from bench import tuned
from bench.compare import (
    AcrossError,
    Comparison,
    MetricRow,
    TimeRow,
    compare_runs,
    nothing_shared,
    pairable_notes,
    problems_across,
    speedups_against,
)
from bench.headline import Headline
from bench.results import Run, headline_added, is_missing, key_columns
from bench.stats import signed_rank_sum, untestable
from bench.sysinfo import load_note, run_environment
from bench.tuning import TIE_ATOL, TIE_RTOL, tie_anchors

ROW_LIMIT = 500  # rows a table shows at once (filter and sort cover all)
MAX_TRACES = 40  # cells drawn per curve figure; the rest are named in the caption
MAX_POINTS = 400  # points per curve line (evenly thinned)
MAX_VARIANTS = 40  # measures offered by a figure's selector
GALLERY_BUDGET = 40 * 2**20  # bytes of pictures inlined; past it, pictures are linked
ASSETS = "report_assets"

#: one colour per configuration (Tableau 10, then its lighter and darker kin);
#: past these, hues a golden angle apart
PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
    "#1f3f77", "#a0522d", "#8c1c13", "#2a7f62", "#6b8e23",
    "#b8860b", "#6a3d9a", "#d3457a", "#5c4033", "#555555",
)  # fmt: skip


class ReportError(ValueError):
    """A report that cannot be made as asked."""


def _plain(value: Any) -> Any:
    """JSON-safe: NaN and infinities become None, numpy scalars Python ones."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


#: JSON escapes for a <script>'s text: with no ``<`` in it, neither ``</script>`` nor
#: ``<!--<script>`` (after which ``</script>`` no longer ends the script) can appear
_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def _json(data: Any) -> str:
    """JSON to put inside a <script>: ``<``, ``>`` and ``&`` as ``\\u003c`` and so on."""
    return json.dumps(_plain(data), separators=(",", ":")).translate(_SCRIPT_SAFE)


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _sentence(text: str, cls: str = "dim") -> str:
    """A line under a table as a paragraph, its first letter capitalised; "" for none."""
    return f"<p class={cls}>{_esc(text[0].upper() + text[1:])}</p>" if text else ""


# --- numbers as text ---------------------------------------------------------


def _kind(column: str) -> str:
    """How a column's numbers read: ``seconds``, ``bytes``, ``speedup`` or ``value``."""
    return {"s": "seconds", "B": "bytes", "x": "speedup"}.get(C.unit(column), "value")


def fmt(value: Any, kind: str = "value") -> str:
    """A number as the page shows it (the same rules as the page's script)."""
    if value is None or is_missing(value):
        return ""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if kind == "seconds":
        a = abs(value)
        if a >= 1 or a == 0:
            return f"{value:.4g} s"
        if a >= 1e-3:
            return f"{value * 1e3:.4g} ms"
        return f"{value * 1e6:.4g} µs"
    if kind == "bytes":
        units = ["B", "KiB", "MiB", "GiB", "TiB"]
        i = 0 if value == 0 else min(4, max(0, int(math.log(abs(value), 1024))))
        return f"{value / 1024**i:.4g} {units[i]}"
    if kind in ("speedup", "ratio"):
        return f"x{value:.3g}"
    if isinstance(value, int) or float(value).is_integer() and abs(value) < 1e6:
        return str(int(value))
    a = abs(value)
    if a >= 1e4 or a < 1e-3:  # as the script writes it: 1.333e-8
        mantissa, exponent = f"{value:.3e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    return C.four_digits(value)


# --- configurations and their colours ----------------------------------------


class Colours:
    """One colour per configuration label over a whole page, assigned in the order
    configurations appear: a label seen before keeps its colour unless another
    configuration of the same task already has it; two configurations of a task never
    share one (until the palette and its golden-angle hues run out, which they do not)."""

    def __init__(self) -> None:
        self.by_label: dict[str, str] = {}
        self.count = 0

    def _next(self) -> str:
        i = self.count
        self.count += 1
        if i < len(PALETTE):
            return PALETTE[i]
        r, g, b = colorsys.hls_to_rgb(((i - len(PALETTE)) * 0.381966) % 1.0, 0.42, 0.62)
        return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"

    def assign(self, labels: Iterable[str]) -> dict[str, str]:
        """Colours for one task's configurations (labels in order of appearance)."""
        out: dict[str, str] = {}
        for label in dict.fromkeys(labels):
            colour = self.by_label.get(label)
            if colour is None or colour in out.values():
                colour = self._next()
                while colour in out.values():
                    colour = self._next()
                self.by_label.setdefault(label, colour)
            out[label] = colour
        return out


@dataclass
class Task:
    """One task's cells, its headline, its configurations and their colours."""

    name: str
    cells: pd.DataFrame  # the task's cells, columns no cell filled dropped, + "config"
    headline: Headline | None  # as the run recorded it; None: the fallback below
    quality: list[str]  # metric columns, primary first
    better: dict[str, str]  # quality column -> "lower"/"higher" (absent: unknown)
    cost: str | None
    curves: list[str]  # the headline's curves present, the main one first
    configs: list[str] = field(default_factory=list)  # labels in order of appearance
    colours: dict[str, str] = field(default_factory=dict)
    #: the problem columns that vary (``cells["problem"]`` says each cell's): the best
    #: and the Pareto front are judged within one problem
    problem: list[str] = field(default_factory=list)
    #: where the headline was added after the run (``bench headlines --record``), else ""
    added: str = ""


def _numeric(cells: pd.DataFrame, col: str) -> pd.Series:
    return pd.to_numeric(cells[col], errors="coerce")


def _finite(cells: pd.DataFrame, col: str) -> pd.Series:
    values = _numeric(cells, col)
    return values.where(np.isfinite(values.astype(float)))


def _has_numbers(cells: pd.DataFrame, col: str) -> bool:
    return col in cells.columns and _finite(cells, col).notna().any()


def describe_task(
    run: Run,
    task: str,
    cells: pd.DataFrame,
    curves: pd.DataFrame,
    colours: Colours,
    problem: Sequence[str] = (),
) -> Task:
    """What the page shows of one task: its headline (or the fallback: the first
    metric with numbers, the first timer, else the wall time), its configurations and
    its problems (the headline's ``problem`` parameters and the columns in ``problem``
    that vary)."""
    cells = C.blanks_emptied(cells).dropna(axis=1, how="all")
    cells["config"] = C.configuration_labels(cells).to_numpy()
    ok = cells[cells["status"] == "ok"]
    found = C.headline(run.meta, task, ok if len(ok) else cells)
    named = [*(found.problem_columns if found else []), *problem_columns(cells, problem)]
    varied = C.varying(
        cells, [c for c in dict.fromkeys(named) if c in cells.columns], keys=("task",)
    )
    cells["problem"] = C.problems(cells, varied).to_numpy()
    names = set()
    if not curves.empty:
        names = set(curves.loc[curves["cell_id"].isin(set(cells["cell_id"])), "curve"])
    if found is not None:
        quality = [c for c in found.quality_columns if _has_numbers(ok, c)]
        better = {c: found.better(c) or "" for c in quality}
        cost = found.cost if _has_numbers(ok, found.cost) else None
        wanted = [c for c in found.curves if c in names]
    else:
        first = C.fallback_metric(ok)  # the site's rule too
        quality = [first] if first else []
        better = {}
        cost = None
        wanted = []
    if cost is None:
        cost = next((t for t in C.timers(cells.columns) if _has_numbers(ok, t)), None)
        if cost is None and _has_numbers(ok, "wall"):
            cost = "wall"
    if not wanted and names:
        wanted = [sorted(names)[0]]
    configs = list(dict.fromkeys(cells["config"]))
    return Task(
        name=task,
        cells=cells,
        headline=found,
        quality=quality,
        better={k: v for k, v in better.items() if v},
        cost=cost,
        curves=wanted,
        configs=configs,
        colours=colours.assign(configs),
        problem=varied,
        added=headline_added(run.meta, task) if found is not None else "",
    )


def problem_columns(cells: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    """``bench report --problem KEY``'s keys as the cells' columns (``param.<key>``, or
    the column itself); a key no cell of this task has is passed over (another task's)."""
    return [c for c in map(C.param_column, keys) if c in cells.columns]


# --- the headline table ------------------------------------------------------


def _mean_spread(values: pd.Series) -> tuple[float, float]:
    values = values.dropna()
    if values.empty:
        return math.nan, math.nan
    spread = float(values.std(ddof=1)) if len(values) > 1 else math.nan
    return float(values.mean()), spread


def configuration_summary(t: Task) -> pd.DataFrame:
    """One row per configuration: cells ok of all, each quality column's mean and
    standard deviation over the ok seeds, the cost's mean and deviation, whether it is
    on the Pareto front (cost against the quality its problem is judged by, when its
    direction is known), whether it is the best by that quality, and which it is
    (``judged_by``: the primary, or ``judged_by``'s fallback)."""
    rows = []
    for label in t.configs:
        group = t.cells[t.cells["config"] == label]
        ok = group[group["status"] == "ok"]
        row: dict[str, Any] = {"config": label, "ok": len(ok), "cells": len(group)}
        if len(ok) < len(group):
            bad = group.loc[group["status"] != "ok", "status"].value_counts()
            row["not_ok"] = ", ".join(f"{s} {n}" for s, n in bad.items())
        for col in [*t.quality, *([t.cost] if t.cost else [])]:
            mean, spread = _mean_spread(_finite(ok, col)) if col in ok else (math.nan, math.nan)
            row[col], row[col + "|sd"] = mean, spread
        where = group["problem"] if "problem" in group else pd.Series(dtype=object)
        row["problem"] = str(where.iloc[0]) if len(where) else ""
        rows.append(row)
    summary = pd.DataFrame(rows)
    summary["front"] = False
    summary["best"] = False
    summary["judged_by"] = None
    # within one problem (a truth generator, an image): an easier problem is no better
    # method; a problem with one configuration has nothing to judge
    for _, mine in summary.groupby("problem", sort=False):
        primary = judged_by(t, mine)
        if primary is None:
            continue
        summary.loc[mine.index, "judged_by"] = primary
        if len(mine) < 2 and len(summary) > 1:
            continue
        sign = 1.0 if t.better[primary] == "lower" else -1.0
        score = mine[primary] * sign
        # best among the configurations whose every cell ended ok: one that failed
        # on some seeds (the hard cases, say) has a mean over the easy ones only
        whole = score.where(mine["ok"] == mine["cells"])
        if whole.notna().any():  # means apart in their last bits are tied: both best
            anchors = pd.Series(tie_anchors(whole.tolist()), index=whole.index)
            summary.loc[mine.index, "best"] = anchors.notna() & (anchors == anchors.min())
        if t.cost:
            # the same configurations as the best: a mean over the seeds that
            # survived is no point on a front of whole ones
            summary.loc[mine.index, "front"] = pareto_front(mine[t.cost], whole)
    return summary


def floor_margins(t: Task, summary: pd.DataFrame) -> str:
    """How far each configuration's judged quality is past its floor, where the
    headline declares one (``Headline.floor``: what a configuration that learned
    nothing scores), mean over the ok seeds, in the better direction, per problem with
    the floor of the quality it is judged by. "" where none is declared."""
    floors = t.headline.floor if t.headline is not None else {}
    parts = []
    for problem, mine in summary.groupby("problem", sort=False):
        col = mine["judged_by"].dropna()
        if col.empty:
            continue
        col = str(col.iloc[0])
        name = floors.get(C.short_name(col))
        floor = f"metric.{name}"
        if not name or floor not in t.cells:
            continue
        sign = 1.0 if t.better.get(col) == "higher" else -1.0
        shown = []
        for label, mean in zip(mine["config"], mine[col]):  # the summary's mean of ok cells
            margin = sign * (mean - _config_mean(t, label, floor))
            if math.isfinite(margin):
                shown.append(f"{label} {margin:+.3g}" + (" (no better)" if margin <= 0 else ""))
        if shown:
            head = f"{problem}: " if problem else ""
            parts.append(f"{head}{C.short_name(col)} past {name}: " + ", ".join(shown))
    if not parts:
        return ""
    return "past the floor (what learning nothing scores), mean over seeds: " + "; ".join(parts)


def size_differences(t: Task, summary: pd.DataFrame) -> str:
    """Where the configurations of a problem differ in size (the headline's ``size``
    metric, ``parameters``), each one's, mean over its ok seeds: a best by quality at
    four times the parameters of the runner-up is another comparison than at the same
    (a user audit); "" where the task names no size or none differs."""
    name = t.headline.size if t.headline is not None else ""
    col = f"metric.{name}"
    if not name or col not in t.cells:
        return ""
    parts = []
    for problem, mine in summary.groupby("problem", sort=False):
        sizes = _finite_means(t, mine["config"], col)
        if len(set(sizes.values())) > 1:
            head = f"{problem}: " if problem else ""
            parts.append(head + _listed(sizes))
    if not parts:
        return ""
    return f"the configurations differ in size ({name}): " + "; ".join(parts)


def budget_differences(t: Task, summary: pd.DataFrame) -> str:
    """Where the configurations of a problem were given different budgets (the
    headline's ``budget`` metric, ``loss_evaluations``), each one's, mean over its ok
    seeds, and the configurations that record none: a best at ten times the steps of its
    runner-up, the steps named differently by each plugin, read as the better method (a
    user audit); "" where the task names no budget or all record the same."""
    name = t.headline.budget if t.headline is not None else ""
    if not name:
        return ""
    col = f"metric.{name}"
    finished = set(t.cells.loc[t.cells["status"] == "ok", "config"])
    parts, unknown = [], []
    for problem, mine in summary.groupby("problem", sort=False):
        # configurations with an ok cell: one that only failed recorded nothing to read
        labels = [label for label in mine["config"] if label in finished]
        given = _finite_means(t, labels, col)
        missing = [label for label in labels if label not in given]
        head = f"{problem}: " if problem else ""
        if not given:
            if len(missing) > 1:
                unknown.append(problem or "its configurations")
            continue
        if len(set(given.values())) <= 1 and not missing:
            continue  # one budget for all
        text = _listed(given)
        if missing:
            text += f"; not recorded by {', '.join(missing)}"
        parts.append(head + text)
    out = []
    if parts:
        out.append(f"the configurations' budgets differ ({name}, mean over seeds): "
                   + "; ".join(parts))  # fmt: skip
    if unknown:
        out.append(f"no configuration records {name}, the budget the task names, so whether "
                   f"their budgets differ is not shown ({', '.join(unknown)})")  # fmt: skip
    return ". ".join(out)


def _finite_means(t: Task, labels: Any, col: str) -> dict[str, float]:
    """Each configuration's mean of ``col`` (``_config_mean``), those that have one."""
    if col not in t.cells:
        return {}
    means = {label: _config_mean(t, label, col) for label in labels}
    return {label: value for label, value in means.items() if math.isfinite(value)}


def _listed(means: dict[str, float]) -> str:
    """``label 263169, label 1322``: sizes and budgets as whole numbers where they are."""
    return ", ".join(f"{k} {_size(v)}" for k, v in means.items())


def _config_mean(t: Task, label: str, col: str) -> float:
    """A configuration's mean of ``col`` over its ok cells (NaN where none has it), as
    ``configuration_summary`` takes its quality columns'."""
    ok = t.cells[(t.cells["config"] == label) & (t.cells["status"] == "ok")]
    return float(_finite(ok, col).mean())


def _size(value: float) -> str:
    """A size as a whole number where it is one (263169, never 2.632e+05)."""
    return str(int(value)) if float(value).is_integer() else C.value_text(value)


def judged_by(t: Task, mine: pd.DataFrame) -> str | None:
    """The quality column one problem's configurations are judged by (``mine``: its rows
    of the summary): the primary, or, where none of them has it, the first quality column
    they have (a task whose primary is recorded only under some of its parameters, a
    held-out PSNR with a held-out share, is judged by its next on the others). None where
    which way is better is not known."""
    for col in t.quality:
        if col not in t.better:
            return None
        if col in mine and mine[col].notna().any():
            return col
    return None


def judged_otherwise(t: Task, summary: pd.DataFrame) -> str:
    """Which problems are judged by a quality column other than the primary, because
    none of their configurations records it; "" where none is."""
    if not t.quality or "judged_by" not in summary:
        return ""
    primary = t.quality[0]
    named = summary.dropna(subset=["judged_by"]).drop_duplicates("problem")
    named = named[named["judged_by"] != primary]
    if named.empty:
        return ""
    each = "; ".join(
        f"{row['problem'] or 'its configurations'}: by {C.short_name(row['judged_by'])}"
        for _, row in named.iterrows()
    )
    return (
        f"Judged by another quality where no configuration of a problem records "
        f"{C.short_name(primary)}: {each}."
    )


def best_margins(t: Task, summary: pd.DataFrame, alpha: float = 0.05) -> list[str]:
    """``best_margin`` for each problem (``truth=svf: ...``), in the table's order."""
    out = []
    for problem, mine in summary.groupby("problem", sort=False):
        text = best_margin(t, mine, alpha)
        if text:
            out.append(f"{problem}: {text}" if problem else text)
    return out


def best_margin(t: Task, summary: pd.DataFrame, alpha: float = 0.05) -> str:
    """What separates the best configuration from the runner-up (the best of the others
    whose every cell ended ok), paired on seed: the two-sided Wilcoxon signed-rank test
    of their primary quality, as ``bench stats`` runs it. "" where there is no best or
    no runner-up. The star is by mean; this says whether the seeds can tell them apart.
    ``summary``: one problem's rows of ``configuration_summary``."""
    from scipy.stats import wilcoxon

    if not summary["best"].any() or not summary["judged_by"].notna().any():
        return ""
    primary = str(summary["judged_by"].dropna().iloc[0])
    sign = 1.0 if t.better[primary] == "lower" else -1.0
    whole = summary[(summary["ok"] == summary["cells"]) & summary[primary].notna()]
    best = whole[whole["best"]]
    rest = whole[~whole["best"]]
    name = C.short_name(primary)
    ties = f" ({len(best)} tied)" if len(best) > 1 else ""
    if rest.empty:
        return ""
    first = str(best.iloc[0]["config"])
    second = str(rest.loc[(rest[primary] * sign).idxmin(), "config"])
    by_seed = []
    for label in (first, second):
        cells = t.cells[(t.cells["config"] == label) & (t.cells["status"] == "ok")]
        if "seed" not in cells or cells["seed"].duplicated().any():
            return f"{first}{ties} is best by mean {name}; its cells do not pair on seed"
        by_seed.append(_finite(cells, primary).set_axis(cells["seed"]).dropna())
    a, b = by_seed[0].align(by_seed[1], join="inner")
    d = (a - b).to_numpy(float)
    if not len(d):
        return (
            f"{first}{ties} is best by mean {name}; it shares no seed with the runner-up {second}"
        )
    lead = (
        f"{first}{ties} is best by mean {name}; against the runner-up {second}, paired on "
        f"{len(d)} seed{'s' if len(d) != 1 else ''}: "
    )
    nonzero = int(np.count_nonzero(d))
    if not nonzero:
        return lead + "no difference on any seed"
    if len(d) > 1 and a.nunique() == 1 and b.nunique() == 1:
        # the seed changes nothing either scores (a deterministic problem): repeating it
        # is no evidence, and a test over the copies would call any difference significant
        return lead + f"the same on every seed (a deterministic result): ahead by {abs(d[0]):.3g}"
    never = untestable(nonzero, alpha)
    if never:
        return lead + f"{never}, the seeds cannot tell them apart at this count"
    p = float(wilcoxon(a.to_numpy(float), b.to_numpy(float)).pvalue)
    if not p < alpha:
        verdict = "not significantly better"
    elif signed_rank_sum(-sign * d) > 0:  # the ranks favour the best, as its mean does
        verdict = "better"
    else:  # a mean led by one seed's outlier; the ranks say otherwise
        verdict = "yet the seeds' ranks favour the runner-up"
    return lead + f"Wilcoxon p = {p:.3g} ({verdict} at alpha {alpha:g})"


def pareto_front(cost: pd.Series, score: pd.Series) -> pd.Series:
    """Points no other point beats on both (lower cost, lower score), one at least
    strictly; points missing either are off the front. Scores within round-off are one
    (``tuning.tie_anchors``: each as the smallest of its run of ties): a configuration
    as good to the last digits but slower is off the front, not on it by a 1e-11 lead."""
    x = cost.to_numpy(float)
    y = np.asarray(tie_anchors(score.to_numpy(float).tolist()), dtype=float)
    have = np.isfinite(x) & np.isfinite(y)
    front = np.zeros(len(x), dtype=bool)
    for i in np.flatnonzero(have):
        dominated = have & (x <= x[i]) & (y <= y[i]) & ((x < x[i]) | (y < y[i]))
        front[i] = not dominated.any()
    return pd.Series(front, index=cost.index)


def _swatch(colour: str) -> str:
    return f'<span class="swatch" style="background:{_esc(colour)}"></span>'


def _column_title(col: str, better: str | None = None) -> str:
    unit = C.unit(col)
    text = C.short_name(col) + (f" ({unit})" if unit and unit != "x" else "")
    if better:
        text += " ↓" if better == "lower" else " ↑"
    return text


_BEST = (
    ' <span class="best" title="best by the headline, among the configurations whose '
    'every cell ended ok">★ best</span>'
)


def _order(t: Task, row: pd.Series) -> float:
    """A summary row's place in its problem: its mean of what the problem is judged by,
    best first."""
    col = row.get("judged_by")
    if not isinstance(col, str) or col not in t.better:
        return math.nan
    return float(row[col]) * (1.0 if t.better[col] == "lower" else -1.0)


def headline_table_html(t: Task, summary: pd.DataFrame) -> str:
    """The task's configurations, headline columns first; sortable by a click."""
    directional = bool(t.quality) and t.quality[0] in t.better
    head = ["configuration"]
    tips = ["what the suite varied (never the defaults)"]
    for col in t.quality:
        head.append(_column_title(col, t.better.get(col)))
        way = t.better.get(col)
        tips.append(
            f"mean ± standard deviation over seeds; {way} is better"
            if way
            else "mean ± standard deviation over seeds"
        )
    if t.cost:
        head.append("cost: " + _column_title(t.cost))
        tips.append("mean ± standard deviation over seeds (lower is cheaper)")
    if directional and t.cost:
        head.append("Pareto")
        tips.append("on the Pareto front: no configuration is both cheaper and better")
    head.append("cells ok")
    tips.append("cells ok of the configuration's cells (seeds)")
    ths = "".join(
        f'<th title="{_esc(tip)}">{_esc(h)}</th>' for h, tip in zip(head, tips, strict=True)
    )
    if directional:
        # each problem's configurations together, in the run's order of problems (two
        # judged by different qualities do not compare), each best first
        first = {p: i for i, p in enumerate(dict.fromkeys(summary["problem"]))}
        summary = summary.assign(_order=[_order(t, row) for _, row in summary.iterrows()])
        summary = summary.sort_values("_order", na_position="last", kind="stable")
        if t.problem:
            summary = summary.sort_values("problem", key=lambda s: s.map(first), kind="stable")
    body = []
    for _, row in summary.iterrows():
        label = row["config"]
        mark = _BEST if row["best"] else ""
        cells = [
            f'<td class="config" data-v="{_esc(label)}">{_swatch(t.colours[label])}'
            f"{_esc(label)}{mark}</td>"
        ]
        for col in t.quality:
            mean, spread = row.get(col), row.get(col + "|sd")
            text = fmt(mean)
            if not is_missing(spread):
                text += f" ± {fmt(spread)}"
            cells.append(f'<td class="num" data-v="{_esc(_plain(mean))}">{_esc(text)}</td>')
        if t.cost:  # its spread too: the caption says mean ± deviation (a user audit)
            mean, spread = row.get(t.cost), row.get(t.cost + "|sd")
            text = fmt(mean, _kind(t.cost))
            if not is_missing(spread):
                text += f" ± {fmt(spread, _kind(t.cost))}"
            cells.append(f'<td class="num" data-v="{_esc(_plain(mean))}">{_esc(text)}</td>')
        if directional and t.cost:
            on = bool(row["front"])
            cells.append(f'<td data-v="{int(on)}">{"●" if on else ""}</td>')
        ok_text = f"{row['ok']}/{row['cells']}"
        if isinstance(row.get("not_ok"), str):
            ok_text += f" ({row['not_ok']})"
        cls = " class=warn" if row["ok"] < row["cells"] else ""
        cells.append(f'<td data-v="{row["ok"]}"{cls}>{_esc(ok_text)}</td>')
        body.append(f"<tr{' class=bestrow' if row['best'] else ''}>{''.join(cells)}</tr>")
    return (
        '<div class="hltable"><table class="headline sortable"><thead><tr>'
        f"{ths}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def _headline_note(t: Task) -> str:
    if t.headline is None:
        parts = ["no headline recorded for this task (a run made before tasks declared one):"]
        parts.append(
            f"shown: the first metric that varies (0/1 flags passed over), "
            f"{C.short_name(t.quality[0])},"
            if t.quality
            else "no metric;"
        )
        parts.append(f"and {_column_title(t.cost)} as the cost;" if t.cost else "and no cost;")
        parts.append("which way is better is not known, so no best and no Pareto front.")
        return f"<p class=dim>{_esc(' '.join(parts))}</p>"
    quality = (
        ", ".join(f"{C.short_name(c)} ({t.better.get(c, '?')} is better)" for c in t.quality)
        or "none with numbers"
    )
    cost = _column_title(t.cost) if t.cost else "none"
    curves = ", ".join(t.curves) or "none"
    within = ""
    if t.problem:
        names = ", ".join(C.short_name(c) for c in t.problem)
        within = (
            f" The best and the Pareto front are judged within each {names} (another "
            "problem, not another method), never across."
        )
    added = f" (the run recorded none: {t.added})" if t.added else ""
    return (
        f"<p class=dim>headline{_esc(added)}: quality {_esc(quality)}; cost {_esc(cost)}; "
        f"curves {_esc(curves)}. Mean ± standard deviation over seeds.{_esc(within)}</p>"
    )


# --- figures -----------------------------------------------------------------


def _log_axis(values: Iterable[Any]) -> bool:
    """Log scale where all values are positive and span more than a factor of 20."""
    data = np.asarray(
        [v for v in values if v is not None and not is_missing(v) and math.isfinite(v)],
        dtype=float,
    )
    return bool(data.size >= 2 and (data > 0).all() and data.max() / data.min() > 20)


def axis(column: str, values: Iterable[Any], title: str | None = None) -> dict[str, Any]:
    """A plotly axis for a column: log where the range calls for it; seconds and bytes
    with SI prefixes and their unit (``10ms``), dimensionless numbers never (no
    ``10n`` for 1e-8: exponents)."""
    log = _log_axis(values)
    unit = C.unit(column)
    out: dict[str, Any] = {
        "title": {"text": title or _column_title(column)},
        "type": "log" if log else "linear",
        "automargin": True,
    }
    if unit in ("s", "B"):
        out.update(exponentformat="SI", ticksuffix=unit)
    else:
        out.update(exponentformat="power" if log else "e")
    return out


def _hover(label: str, extra: str = "") -> str:
    return _esc(label) + (f"<br>{_esc(extra)}" if extra else "")


def cost_quality_figure(t: Task, summary: pd.DataFrame, y: str | None = None) -> dict | None:
    """The task's cost against its primary quality: one marker per configuration at its
    mean (standard deviations as error bars), each seed's cell faint behind it, the
    Pareto front dashed (when which way is better is known), and a grey line through
    configurations that differ only in one numeric parameter (a sweep: step sizes,
    tolerances, widths), as in a work-precision diagram. Problems judged by another
    quality column (``judged_by``: they lack the primary) get a variant of their own."""
    if y is None:
        judged = summary["judged_by"].dropna() if "judged_by" in summary else ()
        ys = list(dict.fromkeys([*(t.quality[:1]), *judged]))
    else:
        ys = [y]
    if not ys or t.cost is None:
        return None
    variants = [v for v in (_cost_quality_variant(t, summary, col) for col in ys) if v]
    if not variants:
        return None
    name = variants[0]["name"] if len(variants) == 1 else "quality"
    return {
        "title": f"{name} against {_column_title(t.cost)}",
        "variants": variants,
        "caption": variants[0]["caption"],
        "select": "quality",
    }


def _cost_quality_variant(t: Task, summary: pd.DataFrame, y: str) -> dict | None:
    ok = t.cells[t.cells["status"] == "ok"]
    if y not in ok:
        return None
    x_all, y_all = _finite(ok, t.cost), _finite(ok, y)
    if not (x_all.notna() & y_all.notna()).any():
        return None
    data, means = _configuration_markers(t, ok, y)
    if len(means) < 2:  # one configuration: its numbers are in the table
        return None
    data = _sweep_lines(t, means) + data
    caption = "a marker per configuration at its mean over seeds (bars: standard deviation)"
    if len(ok) > len(means):
        caption += "; faint: each seed"
    if y in t.better:
        fronts = _pareto_front_lines(t, summary, y)
        if fronts:
            data.extend(fronts)
            caption += (
                "; dashed, ringed: the Pareto front (no configuration is both cheaper "
                f"and better; {t.better[y]} {C.short_name(y)} is better)"
            )
            if t.problem:
                caption += f", one per {', '.join(C.short_name(c) for c in t.problem)}"
                if "judged_by" in summary and (summary["judged_by"].dropna() != y).any():
                    caption += f" judged by {C.short_name(y)}"
    return {
        "name": C.short_name(y),
        "data": data,
        "layout": {
            "xaxis": axis(t.cost, x_all.tolist(), "cost: " + _column_title(t.cost)),
            "yaxis": axis(y, y_all.tolist(), _column_title(y, t.better.get(y))),
        },
        "caption": caption,
    }


def _configuration_markers(
    t: Task, ok: pd.DataFrame, y: str
) -> tuple[list[dict[str, Any]], dict[str, tuple[float, float]]]:
    """The traces of each configuration with finite cost and ``y`` (its seeds, faint, where
    more than one, then its mean), and each one's mean (cost, ``y``) by label."""
    data: list[dict[str, Any]] = []
    means: dict[str, tuple[float, float]] = {}
    for label in t.configs:
        group = ok[ok["config"] == label]
        xs, ys = _finite(group, t.cost), _finite(group, y)
        keep = xs.notna() & ys.notna()
        if not keep.any():
            continue
        colour = t.colours[label]
        mx, sx = _mean_spread(xs[keep])
        my, sy = _mean_spread(ys[keep])
        means[label] = (mx, my)
        if keep.sum() > 1:
            seeds = group.loc[keep, "seed"]
            data.append(_seed_markers(label, colour, xs[keep], ys[keep], seeds))
        data.append(_mean_marker(label, colour, (mx, sx), (my, sy), int(keep.sum())))
    return data, means


def _seed_markers(
    label: str, colour: str, xs: pd.Series, ys: pd.Series, seeds: pd.Series
) -> dict[str, Any]:
    """A faint marker per seed of one configuration, in the legend group of its mean."""
    return {
        "type": "scatter", "mode": "markers", "x": xs.tolist(),
        "y": ys.tolist(), "legendgroup": label, "name": label,
        "showlegend": False, "hoverinfo": "text",
        "text": [_hover(label, f"seed {s}") for s in seeds],
        "marker": {"color": colour, "opacity": 0.35, "size": 6},
    }  # fmt: skip


def _mean_marker(
    label: str, colour: str, x: tuple[float, float], y: tuple[float, float], n: int
) -> dict[str, Any]:
    """One configuration's marker at its mean (``x`` and ``y`` as mean and standard
    deviation over its ``n`` seeds), with error bars where the deviation is known."""
    (mx, sx), (my, sy) = x, y
    trace: dict[str, Any] = {
        "type": "scatter", "mode": "markers", "x": [mx], "y": [my], "name": label,
        "legendgroup": label, "hoverinfo": "text",
        "text": [_hover(label, f"mean of {n}")],
        "marker": {"color": colour, "size": 11, "line": {"color": "white", "width": 1}},
    }  # fmt: skip
    if not math.isnan(sy):
        trace["error_y"] = {"type": "data", "array": [sy], "color": colour, "thickness": 1}
    if not math.isnan(sx):
        trace["error_x"] = {"type": "data", "array": [sx], "color": colour, "thickness": 1}
    return trace


def _pareto_front_lines(t: Task, summary: pd.DataFrame, y: str) -> list[dict[str, Any]]:
    """The dashed, ringed line through the summary's Pareto front by cost, one per
    problem; none where the summary marks no configuration on it."""
    lines = []
    for problem, mine in summary.groupby("problem", sort=False):
        if "judged_by" in mine and not (mine["judged_by"] == y).any():
            continue  # judged by another quality column: its front is in that variant
        front = mine[mine["front"]].sort_values(t.cost)
        if not len(front):
            continue
        name = f"Pareto front {problem}" if problem else "Pareto front"
        lines.append({
            "type": "scatter", "mode": "lines+markers", "x": front[t.cost].tolist(),
            "y": front[y].tolist(), "name": name, "legendgroup": "__front",
            "hoverinfo": "skip", "showlegend": False,
            "line": {"color": "#333", "dash": "dash", "width": 1.2, "shape": "hv"},
            "marker": {"symbol": "circle-open", "size": 17, "color": "#333"},
        })  # fmt: skip
    return lines


def _sweeps(t: Task, cols: list[str]) -> Iterator[tuple[str, pd.Series, list[list[Any]]]]:
    """Each numeric parameter among ``cols`` (configuration columns) that three or more
    configurations set, with each configuration's value of it and the groups of
    configurations that differ in it alone (their labels)."""
    first = t.cells.drop_duplicates("config").set_index("config")
    for col in cols:
        values = _numeric(first, col)
        if not col.startswith(C.PARAM) or values.notna().sum() < 3:
            continue
        others = [c for c in cols if c != col]
        keys = first[others].map(repr).agg("|".join, axis=1) if others else first[col] * 0
        groups = [list(labels) for labels in first.groupby(keys, sort=False).groups.values()]
        yield col, values, groups


def _sweep_lines(t: Task, means: dict[str, tuple[float, float]]) -> list[dict[str, Any]]:
    """Grey lines through configurations that differ in one numeric parameter only."""
    cols = [c for c in C.configuration_columns(t.cells.drop(columns="config")) if c in t.cells]
    out = []
    for col, values, groups in _sweeps(t, cols):
        for labels in groups:
            pts = sorted(
                (values[lab], *means[lab])
                for lab in labels
                if lab in means and values[lab] == values[lab]
            )
            if len(pts) >= 2:
                out.append(
                    {
                        "type": "scatter", "mode": "lines", "x": [p[1] for p in pts],
                        "y": [p[2] for p in pts], "hoverinfo": "skip", "showlegend": False,
                        "name": f"{C.short_name(col)} sweep", "legendgroup": "__sweep",
                        "line": {"color": "#bbb", "width": 1},
                    }
                )  # fmt: skip
    return out


def sweep_slopes(t: Task, summary: pd.DataFrame) -> list[str]:
    """For each numeric parameter swept over 3 or more positive values among otherwise
    alike configurations, the slope of log(quality) against log(parameter) by least
    squares, where the quality is the one their problem is judged by and lower is
    better (an error): its power law, the observed order where the parameter is a step
    (``solver.step_size: rk4 4.01, heun 2.02 (final_rel_error, 4 values each)``)."""
    if "judged_by" not in summary:
        return []
    cols = [c for c in C.configuration_columns(t.cells.drop(columns=["config", "problem"],
                                                            errors="ignore"))
            if c in t.cells]  # fmt: skip
    judged = summary.set_index("config")
    out = []
    for col, values, groups in _sweeps(t, cols):
        found, metrics, sizes = [], set(), set()
        for labels in groups:
            quality = judged.loc[labels[0], "judged_by"] if labels[0] in judged.index else None
            if not isinstance(quality, str) or t.better.get(quality) != "lower":
                continue
            pts = [(values[lab], judged.loc[lab, quality]) for lab in labels
                   if lab in judged.index and judged.loc[lab, "judged_by"] == quality]  # fmt: skip
            pts = [(x, y) for x, y in pts if x > 0 and np.isfinite(y) and y > 0]
            if len({x for x, _ in pts}) < 3:
                continue
            slope = float(
                np.polyfit(np.log([x for x, _ in pts]), np.log([y for _, y in pts]), 1)[0]
            )
            name = " ".join(w for w in str(labels[0]).split() if not w.startswith(
                f"{C.short_name(col)}="))  # fmt: skip
            found.append(f"{name or 'default'} {slope:.3g}")
            metrics.add(C.short_name(quality))
            sizes.add(len(pts))
        if found:
            each = f"{min(sizes)}" if len(sizes) == 1 else f"{min(sizes)}-{max(sizes)}"
            out.append(f"{C.short_name(col)}: {', '.join(found)} ({', '.join(sorted(metrics))}, "
                       f"{each} values each)")  # fmt: skip
    return out


def _thin(frame: pd.DataFrame, limit: int = MAX_POINTS) -> pd.DataFrame:
    if len(frame) <= limit:
        return frame
    index = np.unique(np.linspace(0, len(frame) - 1, limit).round().astype(int))
    return frame.iloc[index]


def curve_figures(t: Task, curves: pd.DataFrame) -> list[dict[str, Any]]:
    """The main curve against step and against time, a line per cell in its
    configuration's colour; the task's other curves by the figure's selector."""
    if curves.empty or not t.curves:
        return []
    mine = curves[curves["cell_id"].isin(set(t.cells["cell_id"]))]
    names = [*t.curves, *sorted(set(mine["curve"]) - set(t.curves))][:MAX_VARIANTS]
    by_cell = t.cells.set_index("cell_id")
    seeds = t.cells["seed"].nunique() > 1
    figures = []
    for axis_name in ("step", "time"):
        variants = []
        for name in names:
            group = mine[mine["curve"] == name]
            variant = _curve_variant(t, group, name, axis_name, by_cell, seeds)
            if variant is not None:
                variants.append(variant)
        if variants:
            figures.append(
                {
                    "title": f"{variants[0]['name']} against {axis_name}",
                    "variants": variants,
                    "caption": variants[0]["caption"],
                    "select": "curve",
                }
            )
    return figures


def _curve_variant(
    t: Task,
    group: pd.DataFrame,
    name: str,
    axis_name: str,
    by_cell: pd.DataFrame,
    seeds: bool,
) -> dict[str, Any] | None:
    """The figure's variant for one curve against ``axis_name`` (``step`` or ``time``):
    a line per cell, the first ``MAX_TRACES`` cells; None when no cell has that axis."""
    ids = list(dict.fromkeys(group["cell_id"]))
    data = _curve_lines(t, group, ids[:MAX_TRACES], name, axis_name, by_cell, seeds)
    if not data:
        return None
    caption = f"{len(ids)} cells" + (
        f"; the first {MAX_TRACES} drawn" if len(ids) > MAX_TRACES else ""
    )
    values = pd.to_numeric(group["value"], errors="coerce").tolist()
    xtitle = "step" if axis_name == "step" else "time (s)"
    return {
        "name": str(name),
        "caption": caption,
        "data": data,
        "layout": {
            "xaxis": {"title": {"text": xtitle}, "automargin": True,
                      **({"ticksuffix": "s", "exponentformat": "SI"}
                         if axis_name == "time" else {})},
            "yaxis": axis("curve", values, str(name)),
        },
    }  # fmt: skip


def _curve_lines(
    t: Task,
    group: pd.DataFrame,
    shown: list[Any],
    name: str,
    axis_name: str,
    by_cell: pd.DataFrame,
    seeds: bool,
) -> list[dict[str, Any]]:
    """A line per cell in ``shown`` of one curve against ``axis_name``, in its
    configuration's colour (one legend entry per configuration; the seed in the hover
    when there are several); cells without that axis are left out."""
    data, seen = [], set()
    for cell_id in shown:
        points = _thin(group[group["cell_id"] == cell_id].sort_values("step"))
        x = pd.to_numeric(points[axis_name], errors="coerce")
        if x.isna().all():
            continue
        label = str(by_cell.at[cell_id, "config"]) if cell_id in by_cell.index else "?"
        seed = by_cell.at[cell_id, "seed"] if cell_id in by_cell.index else ""
        data.append(
            {
                "type": "scatter", "mode": "lines", "x": x.tolist(),
                "y": pd.to_numeric(points["value"], errors="coerce").tolist(),
                "name": label, "legendgroup": label, "showlegend": label not in seen,
                "line": {"color": t.colours.get(label, "#777"), "width": 1.6},
                "hovertemplate": f"{_esc(label)}{f' seed {seed}' if seeds else ''}"
                f"<br>{axis_name} %{{x}}<br>{_esc(name)} %{{y}}<extra></extra>",
            }
        )  # fmt: skip
        seen.add(label)
    return data


def other_measures_figure(t: Task) -> dict[str, Any] | None:
    """Every other measure with numbers (metrics, timers, memory) against the cost:
    one figure, the measure picked by its selector."""
    if t.cost is None:
        return None
    ok = t.cells[t.cells["status"] == "ok"]
    cols = [
        c
        for c in [*C.metrics(ok.columns), *C.timers(ok.columns), *C.memory(ok.columns)]
        if c != t.cost and c != (t.quality[0] if t.quality else None) and _has_numbers(ok, c)
    ][:MAX_VARIANTS]
    variants = []
    for col in cols:
        fig = cost_quality_figure(
            Task(t.name, t.cells, t.headline, [col], {}, t.cost, [], t.configs, t.colours),
            pd.DataFrame({"front": []}),
            col,
        )
        if fig is not None:
            variants.append({**fig["variants"][0], "name": _column_title(col)})
    if not variants:
        return None
    return {
        "title": f"any measure against {_column_title(t.cost)}",
        "variants": variants,
        "caption": "pick the measure; a marker per configuration at its mean over seeds",
        "select": "measure",
    }


def speedup_figures(t: Task) -> list[dict[str, Any]]:
    """Bars of each ``speedup.<timer>``'s median per configuration, every seed's value
    as a dot."""
    figures = []
    for col in C.speedups(t.cells.columns):
        values = _numeric(t.cells, col)
        have = t.cells[values.notna()]
        if have.empty:
            continue
        data = []
        for label in t.configs:
            mine = values[(t.cells["config"] == label) & values.notna()]
            if mine.empty:
                continue
            colour = t.colours[label]
            data.append(
                {
                    "type": "bar", "x": [label], "y": [float(mine.median())], "name": label,
                    "legendgroup": label, "marker": {"color": colour, "opacity": 0.8},
                    "hovertemplate": f"{_esc(label)}<br>x%{{y:.3g}}<extra></extra>",
                }
            )  # fmt: skip
            data.append(
                {
                    "type": "scatter", "mode": "markers", "x": [label] * len(mine),
                    "y": mine.tolist(), "name": label, "legendgroup": label,
                    "showlegend": False, "marker": {"color": "#222", "size": 5},
                    "hoverinfo": "skip",
                }
            )  # fmt: skip
        figures.append(
            {
                "title": f"{col}: baseline time / this time (higher is faster)",
                "variants": [
                    {
                        "name": col,
                        "data": data,
                        "layout": {
                            "xaxis": {"showticklabels": False, "title": {"text": "configuration"}},
                            "yaxis": {"title": {"text": "speedup (x)"}, "automargin": True},
                        },
                    }
                ],
                "caption": "bars: median over seeds; dots: every seed",
            }
        )
    return figures


# --- tables ------------------------------------------------------------------


def table_data(cells: pd.DataFrame, colours: dict[str, str] | None = None) -> dict[str, Any]:
    """Every cell and every column of a task (numbers kept as numbers: the page formats
    them and sorts numerically); the configuration first, in its colour."""
    keys = key_columns(cells)
    comps = [c for c in keys if c != "task" and not c.startswith(C.PARAM)]
    params = C.varying(cells, C.params(keys))
    seed = ["seed"] if cells["seed"].nunique() > 1 else []
    measured = [
        *C.timers(cells.columns),
        *C.speedups(cells.columns),
        *C.memory(cells.columns),
        *C.metrics(cells.columns),
    ]
    cols = ["config" if "config" in cells else "label", *comps, *params, *seed, "status"]
    cols += [*measured, "wall"]
    if "error" in cells.columns and (cells["status"] != "ok").any():
        cols.append("error")
    cols = [c for c in dict.fromkeys(cols) if c in cells.columns]
    kinds = ["value" if c == "config" else _kind(c) for c in cols]
    rows = [[_plain(r.get(c)) for c in cols] for _, r in cells.iterrows()]
    out: dict[str, Any] = {
        "columns": ["configuration" if c == "config" else _column_title(c) for c in cols],
        "kinds": kinds,
        "rows": rows,
    }
    if colours and "config" in cells:
        out["colours"] = [colours.get(str(v), "#999") for v in cells["config"]]
    return out


# --- gallery -----------------------------------------------------------------

_MIME = {"png": "image/png", "svg": "image/svg+xml"}


class _Gallery:
    """Pictures for the page: inlined as data URIs until the budget is spent, then
    linked by their path relative to the page (correct when the page sits in the run
    folder, where ``bench report`` writes it by default)."""

    def __init__(self, run: Run, output: Path, budget: int | None = None) -> None:
        self.run = run
        self.output = output
        self.budget = GALLERY_BUDGET if budget is None else budget
        self.used = 0
        self.linked = 0

    def local(self, rel_path: Any) -> Path | None:
        """The file a ``files.parquet`` path names, links followed, if it lies inside the
        run folder; None otherwise. A received run's table could name any file (an
        absolute path, ``../..``, a link), and the page inlined it."""
        if not isinstance(rel_path, str) or not rel_path:
            return None
        root = self.run.path.resolve()
        path = (root / rel_path).resolve()
        return path if path.is_relative_to(root) else None

    def source(self, path: Path, kind: str) -> str:
        """A picture's ``src``: a data URI, or a link once the budget is spent."""
        size = path.stat().st_size
        if self.used + size <= self.budget:
            self.used += size
            data = base64.b64encode(path.read_bytes()).decode()
            return f"data:{_MIME[kind]};base64,{data}"
        self.linked += 1
        try:
            # "./": a folder named "javascript:..." does not make the link a script
            return "./" + path.relative_to(self.output.parent.resolve()).as_posix()
        except ValueError:
            return path.as_uri()

    def html(self, t: Task) -> str:
        """The task's pictures, by configuration; a click opens one full size."""
        cells = t.cells
        files = self.run.files
        if files.empty:
            return ""
        mine = files[files["cell_id"].isin(set(cells["cell_id"]))]
        pictures = mine[mine["kind"] == "png"]
        # an SVG twin of a PNG adds nothing to a gallery; SVG-only pictures are shown
        svg = mine[mine["kind"] == "svg"]
        stems = {(r.cell_id, r.name.rsplit(".", 1)[0]) for r in pictures.itertuples()}
        svg = svg[[(r.cell_id, r.name.rsplit(".", 1)[0]) not in stems for r in svg.itertuples()]]
        pictures = pd.concat([pictures, svg])
        if pictures.empty:
            return ""
        seeds = cells["seed"].nunique() > 1
        local = [self.local(p) for p in pictures["path"]]
        outside = sum(p is None for p in local)
        present = [p is not None and p.is_file() for p in local]
        missing = len(pictures) - sum(present) - outside
        pictures = pictures.assign(local=local)[present]
        note = (
            f"<p class=dim>{missing} pictures listed in files.parquet are not in this copy "
            "of the run (a published run keeps a few; the full run folder has them all).</p>"
            if missing
            else ""
        )
        if outside:
            note += (
                f"<p class=warn>{outside} pictures listed in files.parquet lie outside the "
                "run folder: not shown.</p>"
            )
        if pictures.empty:
            return note
        parts = [note, '<div class="gallery">']
        for _, cell in cells.iterrows():
            shown = pictures[pictures["cell_id"] == cell["cell_id"]]
            if shown.empty:
                continue
            label = str(cell["config"])
            title = label + (f" seed={cell['seed']}" if seeds else "")
            parts.append(
                f'<figure class="cell" data-text="{_esc(title.lower())}"><figcaption>'
                f"{_swatch(t.colours.get(label, '#999'))}<b>{_esc(title)}</b> "
                f"<span class=dim>{_esc(cell['status'])} · {_esc(cell['cell_id'])}</span>"
                "</figcaption>"
            )
            for row in shown.itertuples():
                src = self.source(row.local, row.kind)
                # a click opens the picture full size on the page (the script); a
                # linked picture's link opens the file where scripts do not run
                href = f' href="{_esc(src)}"' if not src.startswith("data:") else ""
                parts.append(
                    f'<a class="zoom"{href} role="button" tabindex="0">'
                    f'<img loading="lazy" alt="{_esc(row.name)}" title="{_esc(row.name)}" '
                    f'src="{_esc(src)}"></a>'
                )
            parts.append("</figure>")
        parts.append("</div>")
        return "\n".join(parts)


# --- comparison --------------------------------------------------------------


def comparison_labels(cmp: Comparison) -> dict[str, str]:
    """A label per compared configuration (its key as JSON -> label): only what
    differs between the task's configurations, as ``configuration_labels`` reads it."""
    keys = [r.key for r in cmp.times] + [r.key for r in cmp.metrics]
    keys += [k for k, _, _ in cmp.status_changes]
    unique = {json.dumps(_plain(k), sort_keys=True, default=str): k for k in keys}
    if not unique:
        return {}
    frame = pd.DataFrame(list(unique.values()))
    if "task" not in frame:
        frame["task"] = ""
    labels = C.configuration_labels(frame)
    moved = [cmp.choice_moved(k) for k in unique.values()]  # a tuned choice that moved
    labels = [f"{label} ({m})" if m else label for label, m in zip(labels, moved, strict=True)]
    return dict(zip(unique, labels, strict=True))


def _key(key: dict[str, Any]) -> str:
    return json.dumps(_plain(key), sort_keys=True, default=str)


def time_verdict(row: TimeRow) -> str:
    """``slower``, ``faster``, ``same``, or ``untestable (n=1/1)`` where the sample
    counts cannot reach alpha (with ``, no overlap: slower`` where the ranges are apart)."""
    if row.testable:
        if row.significant:
            return "slower" if row.ratio > 1 else "faster"
        return "same"
    text = f"untestable (n={row.n_a}/{row.n_b})"
    if row.separated and row.n_a > 1 and row.n_b > 1:
        text += f"; no overlap: {'slower' if row.ratio > 1 else 'faster'}"
    return text


_COMPARE_COLUMNS = {
    "times": ["configuration", "timer", "A (median)", "B (median)", "B/A", "p (adj.)", "verdict"],
    "metrics": ["configuration", "metric", "A (mean)", "B (mean)", "B−A", "relative", "verdict"],
    "status": ["configuration", "status A", "status B"],
}
_COMPARE_KINDS = {
    "times": ["value", "value", "seconds", "seconds", "ratio", "p", "verdict"],
    "metrics": ["value", "value", "value", "value", "value", "percent", "verdict"],
    "status": ["value", "value", "value"],
}


def comparison_data(
    cmp: Comparison,
    colours: Colours | None = None,
    headlines: dict[str, Headline | None] | None = None,
) -> dict[str, Any]:
    """``bench compare``'s rows, task by task: each timer of each configuration (the
    headline's timer first) with A, B, B/A, p and verdict; the headline's quality
    metrics (better or worse by its direction; without a headline, the metrics that
    changed) as ``metrics``, every other metric as ``other_metrics``; status changes."""
    colours = colours or Colours()
    headlines = headlines or {}
    labels = comparison_labels(cmp)
    tasks = _comparison_tasks(cmp, labels, colours)
    for row in cmp.times:
        task = str(row.key.get("task"))
        label = labels[_key(row.key)]
        tasks[task]["times"].append(_time_item(row, label, headlines.get(task)))
    for row in cmp.metrics:
        task = str(row.key.get("task"))
        label = labels[_key(row.key)]
        crossed = problems_across(cmp, headlines.get(task))
        part, item = _metric_item(row, label, headlines.get(task), crossed)
        tasks[task][part].append(item)
    for key, a, b in cmp.status_changes:
        label = labels[_key(key)]
        tasks[str(key.get("task"))]["status"].append((False, label, "", [label, a, b]))
    out: dict[str, Any] = {"tasks": [], "only_a": cmp.only_a, "only_b": cmp.only_b}
    for name, entry in tasks.items():
        out["tasks"].append({"task": name, **_comparison_tables(entry)})
    return out


def _comparison_tasks(
    cmp: Comparison, labels: dict[str, str], colours: Colours
) -> dict[str, dict[str, Any]]:
    """Task -> its empty row lists (``times``, ``metrics``, ``other_metrics``,
    ``status``), its configurations' ``labels`` in order of appearance and their
    ``colours``, for every task the comparison has a row of."""
    tasks: dict[str, dict[str, Any]] = {}
    keys = [r.key for r in cmp.times] + [r.key for r in cmp.metrics]
    keys += [key for key, _, _ in cmp.status_changes]
    for key in keys:
        name = str(key.get("task"))
        if name not in tasks:
            tasks[name] = {"times": [], "metrics": [], "other_metrics": [], "status": [],
                           "labels": []}  # fmt: skip
        tasks[name]["labels"].append(labels[_key(key)])
    for entry in tasks.values():
        entry["colours"] = colours.assign(entry["labels"])
    return tasks


def _time_item(row: TimeRow, label: str, h: Headline | None) -> tuple[bool, str, str, list]:
    """A timer's row, keyed for sorting: the headline's timer first, then by label and
    timer; p is the adjusted p-value (the raw one where that is missing), None where
    the samples are too few to test."""
    first = h is not None and h.cost == f"time.{row.timer}.median"
    p = row.p_adjusted if row.testable and not math.isnan(row.p_adjusted) else None
    if row.testable and p is None:
        p = row.p_value
    return (not first, label, row.timer, [label, row.timer, row.median_a, row.median_b,
                                          row.ratio, p, time_verdict(row)])  # fmt: skip


def _metric_item(
    row: MetricRow, label: str, h: Headline | None, crossed: Sequence[str] = ()
) -> tuple[str, tuple[bool, str, str, list]]:
    """Which table a metric's row goes to (``metrics`` or ``other_metrics``), and the
    row, keyed for sorting: the headline's primary metric first, then by label and
    metric. ``crossed``: problem columns compared across (``problems_across``): no
    better or worse, the problem changed."""
    way = h.better(row.metric) if h is not None else None
    verdict = _metric_verdict(row, way)
    if crossed and verdict.split(" (")[0] in ("better", "worse"):
        names = ", ".join(C.short_name(c) for c in crossed)
        verdict = f"changed with the problem ({names})" + verdict[len(verdict.split(" (")[0]) :]
    primary = h is not None and h.primary == row.metric
    # up front: the headline's quality metrics (without a headline: those that
    # changed); the rest one click away
    lead = way is not None if h is not None else verdict.split(" (")[0] != "same"
    item = (not primary, label, row.metric, [label, C.short_name(row.metric), row.a, row.b,
                                             row.delta, row.relative, verdict])  # fmt: skip
    return ("metrics" if lead else "other_metrics"), item


def _metric_verdict(row: MetricRow, way: str | None) -> str:
    """``missing in B``, ``same``, ``better`` or ``worse`` (where which way is better
    is known: ``lower`` or ``higher``), else ``changed``."""
    if not math.isfinite(row.b):
        return "missing in B"
    if row.delta == 0:
        verdict = "same"
    elif way:
        verdict = "better" if (row.delta < 0) == (way == "lower") else "worse"
    else:
        verdict = "changed"
    if row.seeds and not row.seeds.isdigit():  # not every seed ok in both runs
        verdict += f" (seeds: {row.seeds})"
    return verdict


def _comparison_tables(entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A task's four tables (``times``, ``metrics``, ``other_metrics``, ``status``) as
    columns, kinds, rows and colours, each sorted by its key (lead rows first, then the
    configurations in order of appearance)."""
    order = {label: i for i, label in enumerate(dict.fromkeys(entry["labels"]))}
    specs = {}
    for part in ("times", "metrics", "other_metrics", "status"):
        items = sorted(entry[part], key=lambda r, o=order: (r[0], o[r[1]], r[2]))
        kind = "metrics" if part == "other_metrics" else part
        specs[part] = {
            "columns": _COMPARE_COLUMNS[kind],
            "kinds": _COMPARE_KINDS[kind],
            "rows": [r[3] for r in items],
            "colours": [entry["colours"][r[1]] for r in items],
        }
    return specs


# --- the page ----------------------------------------------------------------


class _Page:
    """Collects the page's figures and tables as it is assembled."""

    def __init__(self) -> None:
        self.figures: list[dict[str, Any]] = []
        self.tables: list[dict[str, Any]] = []

    def table(self, spec: dict[str, Any], placeholder: str = "filter rows") -> str:
        self.tables.append(spec)
        return (
            f'<div class="table" data-table="{len(self.tables) - 1}"><input class=filter '
            f'placeholder="{_esc(placeholder)}: words that must all appear"> '
            '<span class=count></span><table class="cells"><thead></thead><tbody></tbody>'
            "</table></div>"
        )

    def figure(self, fig: dict[str, Any], wide: bool = False) -> str:
        self.figures.append(fig)
        index = len(self.figures) - 1
        select = ""
        if len(fig["variants"]) > 1:
            options = "".join(
                f'<option value="{i}">{_esc(v["name"])}</option>'
                for i, v in enumerate(fig["variants"])
            )
            select = (
                f"<label class=pick>{_esc(fig.get('select', 'show'))}: "
                f'<select class="variant" data-fig="{index}">{options}</select></label>'
            )
        return (
            f'<div class="figure{" wide" if wide else ""}"><h4>{_esc(fig["title"])}</h4>'
            f'{select}<div class="plot" id="fig{index}"></div>'
            f"<p class=caption>{_esc(fig.get('caption', ''))}</p></div>"
        )


def _run_header(run: Run, title: str, open_: bool = True) -> str:
    meta = run.meta
    git = meta.get("git") or {}
    commit = git.get("commit") or "unknown"
    if git.get("dirty"):
        commit += " (with uncommitted changes)"
    devices = ", ".join(
        f"{d.get('device', '?')}: {d.get('name', '?')}" for d in meta.get("devices", [])
    )
    packages = ", ".join(f"{k} {v}" for k, v in (meta.get("packages") or {}).items() if v)
    counts = run.cells["status"].value_counts()
    status = " · ".join(
        f'<span class="st st-{_esc(s)}">{_esc(s)} {int(n)}</span>' for s, n in counts.items()
    )
    command = meta.get("command") or f"bench run {meta.get('suite_file', '?')}"
    rows = [
        ("suite", meta.get("suite", "?")),
        ("command", command),
        ("commit", commit),
        ("host", meta.get("host", "?")),
        ("devices", devices),
        ("versions", packages),
        *([("environment", env)] if (env := run_environment(meta)) else []),
        *([("load average", load)] if (load := load_note(meta)) else []),
        *([("plugin files", _plugin_files(meta))] if meta.get("plugin_files") else []),
        ("started", meta.get("start", "?")),
        ("ended", f"{meta.get('end', '?')} ({run.status})"),
    ]
    body = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in rows)
    failed = run.cells[run.cells["status"] != "ok"]
    fails = ""
    if not failed.empty:
        items = []
        labels = C.cell_labels(run.cells)
        for index, r in failed.iterrows():
            trace = r.get("traceback")
            trace_html = (
                f"<details><summary>traceback</summary><pre>{_esc(trace)}</pre></details>"
                if isinstance(trace, str) and trace
                else ""
            )
            items.append(
                f"<li><b>{_esc(labels[index])}</b> seed {_esc(r['seed'])} "
                f"<span class='st st-{_esc(r['status'])}'>"
                f"{_esc(r['status'])}</span> <code>{_esc(r['cell_id'])}</code>: "
                f"{_esc(r.get('error', ''))}{trace_html}</li>"
            )
        fails = (
            f"<details{' open' if len(failed) <= 10 else ''}><summary>cells not ok "
            f"({len(failed)})</summary>"
            f"<ul>{''.join(items)}</ul></details>"
        )
    return (
        f"<section class=run><details{' open' if open_ else ''}><summary><h2>{_esc(title)}: "
        f"{_esc(run.name)}</h2></summary><table class=meta>{body}</table></details>"
        f"<p>{len(run.cells)} cells: {status}</p>{fails}</section>"
    )


def _plugin_files(meta: dict[str, Any]) -> str:
    """The suite's plugin files with their source's SHA-256 (12 digits), and each change
    a resume met: ``./lab.py d0c34ede9bc3 (changed at 2026-12-07T05:20: cells recorded
    before ran 8a1f...)``."""
    changes: dict[str, list[str]] = {}
    for change in meta.get("plugin_changes") or []:
        if isinstance(change, dict):
            changes.setdefault(str(change.get("spec")), []).append(
                f"changed at {change.get('at', '?')}: cells recorded before ran "
                f"{str(change.get('sha256_before', '?'))[:12]}"
            )
    parts = []
    for entry in meta["plugin_files"] if isinstance(meta["plugin_files"], list) else []:
        if not isinstance(entry, dict):
            continue
        spec = str(entry.get("spec", "?"))
        text = f"{spec} " + (
            str(entry["sha256"])[:12] if "sha256" in entry else str(entry.get("error", "?"))
        )
        if spec in changes:
            text += f" ({'; '.join(changes[spec])})"
        parts.append(text)
    return ", ".join(parts)


def _comparison_section(
    page: _Page, run: Run, run_b: Run, alpha: float, colours: Colours, across: Sequence[str]
) -> str:
    try:
        cmp = compare_runs(run, run_b, alpha, across=across)
    except AcrossError as exc:
        raise ReportError(str(exc)) from None
    if nothing_shared(cmp):  # a page titled A vs B holding A alone (a user audit)
        raise ReportError(nothing_shared(cmp))
    tasks = {str(t) for t in run.cells["task"].unique()}
    heads = {t: C.headline(run.meta, t) for t in tasks}
    data = comparison_data(cmp, colours, heads)
    parts = [
        f"<section class=compare><h2>comparison: B against A (alpha {alpha:g})</h2>",
        f"<p class=runs><b>A</b> {_esc(run.name)} · <b>B</b> {_esc(run_b.name)}</p>",
        *(f"<p class=dim>the runs ran different code: {_esc(c)}</p>" for c in cmp.code),
        *(f"<p class=dim>{_esc(c)}</p>" for c in cmp.measured),
    ]
    if not data["tasks"]:
        parts.append(
            "<p class=warn>no aligned cells: the runs share no task, components and parameters</p>"
        )
    parts.append(
        f"<p class=dim>{data['only_a']} configurations only in A, {data['only_b']} only "
        "in B. Times: B/A of the medians; two-sided Mann-Whitney U on the raw samples, p "
        "adjusted for the number of comparisons (Benjamini-Hochberg). <i>untestable</i>: "
        "too few samples a side for the test ever to reach alpha (one a side, say); such "
        "a row says nothing either way.</p>"
    )
    if cmp.across:
        shown = ", ".join(c.removeprefix("param.") for c in cmp.across)
        parts.append(
            f"<p class=dim>compared across {_esc(shown)}: configurations are paired whatever "
            "their value of it, and a row says each run's where it changed.</p>"
        )
        crossed = list(dict.fromkeys(c for h in heads.values() for c in problems_across(cmp, h)))
        if crossed:
            names = ", ".join(C.short_name(c) for c in crossed)
            parts.append(
                f"<p class=warn>{_esc(names)} poses another problem (its task judges each "
                "value apart): a quality that changed across it changed with the problem, so "
                "no row reads better or worse.</p>"
            )
    parts.extend(f"<p class=dim>{_esc(line)}</p>" for line in pairable_notes(cmp))
    for entry in data["tasks"]:
        parts.append(f"<h3>{_esc(entry['task'])}</h3>")
        for key, title in (("times", "times"), ("metrics", "metrics"), ("status", "status")):
            if entry[key]["rows"]:
                parts.append(f"<h4>{title}</h4>{page.table(entry[key], 'filter ' + title)}")
            if key == "metrics" and entry["other_metrics"]["rows"]:
                rows = entry["other_metrics"]["rows"]
                changed = sum(r[-1] != "same" for r in rows)
                parts.append(
                    f"<details class=othermetrics><summary>other metrics ({len(rows)} rows, "
                    f"{changed} changed)</summary>"
                    f"{page.table(entry['other_metrics'], 'filter metrics')}</details>"
                )
    parts.append("</section>")
    return "".join(parts)


def _task_section(page: _Page, run: Run, t: Task, gallery: _Gallery, index: int) -> str:
    summary = configuration_summary(t)
    parts = [
        f'<section class=task id="task-{index}"><h2>{_esc(t.name)}</h2>',
        _headline_note(t),
        headline_table_html(t, summary),
    ]
    cells = t.cells.drop(columns=["config", "problem"], errors="ignore")  # as recorded
    own = C.own_settings(cells)
    if own:
        parts.append(
            f"<p class=dim>{_esc('set by each plugin, not in the labels: ' + '; '.join(own))}</p>"
        )
    parts.append(_sentence(C.untuned_beside_tuned(cells), "warn"))
    parts.append(_sentence(C.none_tuned(cells) if t.better else ""))  # a best to qualify
    slopes = sweep_slopes(t, summary)
    if slopes:
        parts.append(
            "<p class=dim>"
            + _esc("error against a swept parameter as a power law (the slope of "
                   "log-log least squares; the observed order where it is a step): "
                   + "; ".join(slopes))
            + "</p>"
        )  # fmt: skip
    parts.append(_sentence(size_differences(t, summary)))
    parts.append(_sentence(budget_differences(t, summary), "warn"))
    parts.append(_sentence(floor_margins(t, summary)))
    margins = best_margins(t, summary)
    others = judged_otherwise(t, summary)
    if others:
        parts.append(f"<p class=dim>{_esc(others)}</p>")
    if margins:
        parts.append(
            "<ul class=margins>" + "".join(f"<li>★ {_esc(m)}</li>" for m in margins) + "</ul>"
        )
    untested = tuned.untested_configurations(run.meta, t.name)
    if untested:
        parts.append(f"<p class=warn>{_esc(untested)}</p>")
    figures = []
    main = cost_quality_figure(t, summary)
    if main is not None:
        figures.append(page.figure(main))
    figures += [page.figure(f) for f in curve_figures(t, run.curves)]
    figures += [page.figure(f) for f in speedup_figures(t)]
    other = other_measures_figure(t)
    if other is not None:
        figures.append(page.figure(other))
    if figures:
        key = "".join(
            f'<li data-config="{_esc(label)}" title="click: hide or show in this task\'s '
            f'figures">{_swatch(t.colours[label])}{_esc(label)}</li>'
            for label in t.configs
        )
        parts.append(f'<ul class="key">{key}</ul>')
        parts.append(f'<div class="figures">{"".join(figures)}</div>')
    pictures = gallery.html(t)
    if pictures:
        parts.append(
            f"<h3>pictures</h3><input class=gfilter placeholder='filter pictures'>{pictures}"
        )
    parts.append(
        f"<details class=allcells><summary>every cell, every column ({len(t.cells)})"
        f"</summary>{page.table(table_data(t.cells, t.colours))}</details></section>"
    )
    return "".join(parts)


def _power(value: float) -> str:
    """``1e-9``, not Python's ``1e-09``."""
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _tuning_section(page: _Page, found: list[tuned.Choice], hidden: pd.DataFrame) -> str:
    """What a tuned run chose, before its results: per configuration the setting its
    validation seeds chose, its score and the next best; every setting's score; the
    validation (and any superseded) cells, folded away. The tasks' tables and figures
    below hold the reported cells only."""
    tasks = len({c.task for c in found}) > 1
    columns, rows = tuned.rows(found)
    choice = {"columns": columns, "kinds": ["value"] * len(columns), "rows": rows}
    every = {
        "columns": [*(["task"] if tasks else []), "configuration", "setting", "validation score",
                    "chosen"],
        "kinds": ["value"] * (5 if tasks else 4),
        "rows": [
            [*([c.task] if tasks else []), c.configuration, label,
             "out" if score is None else score, "yes" if i == c.chosen else ""]
            for c in found for i, (label, score) in enumerate(c.settings)
        ],
    }  # fmt: skip
    parts = ["<section class=tuning><h2>tuning</h2>"]
    if not found:
        parts.append(f"<p>{_esc(tuned.summary(found, hidden))}: run.json records no choice "
                     "(the run ended before its close)</p>")  # fmt: skip
    else:
        parts.append(
            f"<p>{_esc(tuned.summary(found, hidden))}. Each configuration's setting "
            "is the best validation mean in the metric's direction (a setting with a "
            "failed or non-finite validation cell is out; ties, means within a "
            f"relative {_power(TIE_RTOL)} or an absolute {_power(TIE_ATOL)}, go to the first "
            "in grid order).</p>"
        )
        parts.append(page.table(choice, "filter choices"))
        parts.append(_sentence(tuned.grid_edges(found), "warn"))
        parts.append(
            f"<details><summary>every setting's validation score ({len(every['rows'])})"
            f"</summary>{page.table(every, 'filter settings')}</details>"
        )
    kinds = {
        tuned.VALIDATION: "validation cells",
        tuned.SUPERSEDED: "superseded test cells (settings no longer chosen)",
    }
    for role, what in kinds.items():
        part = hidden[tuned.roles(hidden) == role]
        if len(part):
            part = C.blanks_emptied(part).dropna(axis=1, how="all").copy()
            part["config"] = C.configuration_labels(part).to_numpy()
            parts.append(
                f"<details class=allcells><summary>{what} ({len(part)}), not in the tables "
                f"below</summary>{page.table(table_data(part))}</details>"
            )
    parts.append("</section>")
    return "".join(parts)


def build_report(
    run: Run,
    run_b: Run | None = None,
    *,
    output: Path,
    baseline: str | None = None,
    alpha: float = 0.05,
    plotly_js: Path | None = None,
    across: Sequence[str] = (),
    problem: Sequence[str] = (),
) -> str:
    """The page's HTML. ``baseline`` is ``COL=VALUE[,VALUE...]`` as in ``bench show``.

    ``plotly_js``: link this copy of plotly.js (by a path relative to ``output``)
    instead of inlining it; many pages kept together then share one 4.6 MB file.
    """
    for key in problem:  # a misspelt key would judge across problems without a word
        if not problem_columns(run.cells, [key]):
            names = [c.removeprefix("param.") for c in C.params(run.cells.columns)]
            close = difflib.get_close_matches(key, names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ReportError(f"--problem {key}: no task parameter of the run has it{hint}")
    # tables, figures and "best" judge the reported cells (a tuned entry's test cells),
    # and a speedup's baseline is one of them
    hidden = tuned.not_reported(run.cells)
    cells = tuned.reported(run.cells)
    if baseline:
        try:
            cells = speedups_against(cells, baseline)
        except ValueError as exc:
            raise ReportError(str(exc)) from None
    gallery = _Gallery(run, output)
    colours = Colours()
    page = _Page()
    sections = []
    if run_b is not None:
        sections.append(_comparison_section(page, run, run_b, alpha, colours, across))
        sections.append(_run_header(run, "run A (baseline)", open_=False))
        sections.append(_run_header(run_b, "run B", open_=False))
    else:
        sections.append(_run_header(run, "run"))
    found = tuned.choices(run.meta)
    if found or len(hidden):
        sections.append(_tuning_section(page, found, hidden))
    tasks = [
        describe_task(run, str(task), group, run.curves, colours, problem)
        for task, group in cells.groupby("task", sort=False)
    ]
    if len(tasks) > 1:
        links = "".join(
            f'<li><a href="#task-{i}">{_esc(t.name)}</a> <span class=dim>'
            f"({len(t.configs)} configurations)</span></li>"
            for i, t in enumerate(tasks)
        )
        title = "tasks" if run_b is None else "tasks of run A"
        sections.append(f"<nav class=toc><b>{title}</b><ul>{links}</ul></nav>")
    for i, t in enumerate(tasks):
        sections.append(_task_section(page, run, t, gallery, i))
    waiting = [str(t) for t in dict.fromkeys(hidden["task"]) if str(t) not in set(cells["task"])]
    for task in waiting:  # validation only so far (interrupted), or no setting qualified
        sections.append(
            f"<section class=task><h2>{_esc(task)}</h2><p class=warn>no reported cells: only "
            "tuning's validation cells (above), no test cell has run</p></section>"
        )
    note = ""
    if gallery.linked:
        note = (
            f"<p class=warn>{gallery.linked} pictures are linked, not inlined (past "
            f"{GALLERY_BUDGET / 2**20:.0f} MiB): keep this page beside the run folder.</p>"
        )
    title = run.name if run_b is None else f"{run.name} vs {run_b.name}"
    return render_page(
        title=_esc(title),
        plotly=_plotly_tag(output, plotly_js),
        body=note + "\n".join(sections),
        figures=_json(page.figures),
        tables=_json(page.tables),
        row_limit=str(ROW_LIMIT),
    )


def asset(name: str) -> str:
    """One of the page's files (``report.html``, ``report.css``, ``report.js``)."""
    return resources.files("bench").joinpath(ASSETS, name).read_text(encoding="utf-8")


_SLOT = re.compile(r"\{\{(\w+)\}\}")


def render_page(**values: str) -> str:
    """The template with its stylesheet, script and ``values`` in place, in one pass
    (a value holding ``{{name}}`` is left as it is)."""
    values = {"style": asset("report.css"), "script": asset("report.js"), **values}
    template = asset("report.html")
    missing = set(_SLOT.findall(template)) - set(values)
    if missing:
        raise ReportError(f"report template: no value for {sorted(missing)}")
    return _SLOT.sub(lambda m: values[m.group(1)], template)


def _plotly_tag(output: Path, plotly_js: Path | None) -> str:
    """plotly.js inlined, or a ``<script src>`` to a shared copy (written if missing)."""
    from plotly.offline import get_plotlyjs

    if plotly_js is None:
        return f"<script>{get_plotlyjs()}</script>"
    plotly_js = Path(plotly_js)
    if plotly_js.is_dir():
        raise ReportError(
            f"--plotly-js {plotly_js}: is a folder; give a file such as plotly.min.js"
        )
    if not plotly_js.parent.is_dir():
        raise ReportError(f"--plotly-js {plotly_js}: no folder {plotly_js.parent}")
    if not plotly_js.exists():
        plotly_js.write_text(get_plotlyjs(), encoding="utf-8")
    src = os.path.relpath(plotly_js.resolve(), output.resolve().parent)
    return f'<script src="{html.escape(Path(src).as_posix(), quote=True)}"></script>'


def write_report(
    run: Run,
    run_b: Run | None = None,
    *,
    output: Path | None = None,
    baseline: str | None = None,
    alpha: float = 0.05,
    plotly_js: Path | None = None,
    across: Sequence[str] = (),
    problem: Sequence[str] = (),
) -> Path:
    """Write the page (default ``RUN/report.html``, or ``RUN_B/compare-<A>.html``) and
    return its path. The public entry point: ``write_report(load_run(path),
    output=site / "x.html", plotly_js=site / "plotly.min.js")``.

    With ``plotly_js`` the page links that file (written there if missing) instead
    of inlining plotly.js: self-contained no more, but a folder of reports (say
    ``results/published/``) holds one copy of the library rather than one per page.
    """
    if output is None:
        output = (
            run.path / "report.html"
            if run_b is None
            else run_b.path / f"compare-{run.path.name}.html"
        )
    output = Path(output)
    try:
        if output.exists() and output.is_dir():
            raise ReportError(f"{output}: is a folder; give a file name such as report.html")
        if not output.parent.is_dir():
            raise ReportError(f"{output.parent}: no such folder")
        page = build_report(
            run,
            run_b,
            output=output,
            baseline=baseline,
            alpha=alpha,
            plotly_js=plotly_js,
            across=across,
            problem=problem,
        )
        output.write_text(page, encoding="utf-8")
    except OSError as exc:  # a read-only folder, a name past 255 characters, a full disk
        raise ReportError(
            f"{_short(exc.filename or output)}: cannot write ({exc.strerror})"
        ) from None
    return output


def _short(path: object, limit: int = 120) -> str:
    """A path to quote in a message: one past ``limit`` characters is cut in the middle."""
    text = str(path)
    return text if len(text) <= limit else f"{text[:60]}...{text[-40:]} ({len(text)} characters)"
