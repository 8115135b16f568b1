"""Whether a run folder can be resumed with a suite as it is now.

A resume runs the suite as it is now beside the cells the folder recorded, so every
recorded cell must be a cell of that suite, measured the way it would measure it:

- each recorded cell id is one the suite plans (its cells, and every setting's test
  cells of a tuned entry); a cell a suite no longer has would be reported beside the
  new ones, and in a tuned entry a test cell of a setting no longer in the grid would
  still read as chosen;
- the settings that are not in a cell's id (device, repeats, warmup, timeout, the
  files limit, fresh workers) are those the run started with, entry by entry (read
  from ``run.json``'s ``suite_text``);
- a tuned configuration selects by the same metric in the same direction.

A suite that only grew (more seeds, another configuration, a longer grid) extends the
run. What is refused raises ``ResumeRefused`` before anything in the folder changes;
what is allowed but worth saying comes back as notes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import yaml

from bench.cell import Cell
from bench.columns import cell_labels
from bench.settings import DEFAULTS, read_settings
from bench.suite import Suite

#: the settings a cell's id leaves out (seeds and threads are in it)
MEASURED = ("device", "repeats", "warmup", "timeout", "files_limit_mb", "fresh_worker")


class ResumeRefused(ValueError):
    """The folder's cells are not cells of the suite as it is now, or were measured
    otherwise; the message says which and what to do."""


def check(
    suite: Suite,
    rows: Mapping[str, dict[str, Any]],
    previous: dict[str, Any],
    sources: list[dict[str, str]],
) -> list[str]:
    """The notes a resume of a run (``rows``: its recorded rows by cell id; ``previous``:
    its ``run.json``; ``sources``: the suite's ``plugin_sources`` now) with ``suite``
    should print; raises ``ResumeRefused`` where it must not go on."""
    before = previous.get("suite_text")
    changed = isinstance(before, str) and before != suite.text
    if rows:
        planned = _planned(suite)
        _same_cells(planned, rows, suite.source, changed, isinstance(before, str))
        _same_settings(planned, rows, previous)
        _same_rules(suite, previous)
    notes = []
    if rows:
        notes.extend(_resolved_otherwise(_planned(suite), rows))
    for spec, old, new in plugins_changed(previous, sources):
        notes.append(
            f"plugin {spec} changed since this run started (sha256 {old[:12]} then, "
            f"{new[:12]} now): the cells recorded so far ran the earlier code (run.json "
            "records it under plugin_changes)"
        )
    if changed:
        notes.append(
            f"{suite.source} changed since this run started; the cells recorded are cells of "
            "it as it is now, measured alike, so the run goes on with any new ones (run.json "
            "keeps the earlier text under suite_history)"
        )
    return notes


def _resolved_otherwise(planned: dict[str, Cell], rows: Mapping[str, dict[str, Any]]) -> list[str]:
    """A note where recorded cells ran other parameter values than their cells resolve
    to now: a value the suite did not give, so a plugin's (or the task's) default that
    changed since (a cell's id holds only what the suite gave). Not refused: the
    values are compared as JSON, and a resume is how a fixed crash goes on."""
    differ: dict[str, tuple[Any, Any]] = {}
    count = 0
    for cell_id, row in rows.items():
        cell = planned.get(cell_id)
        if cell is None:
            continue
        moved = {
            column: (row[column], value)
            for column, value in cell.param_columns().items()
            if column in row and _json(row[column]) != _json(value)
        }
        if moved:
            count += 1
            for column, pair in moved.items():
                differ.setdefault(column, pair)
    if not differ:
        return []
    shown = "; ".join(f"{c.removeprefix('param.')} {a!r} then, {b!r} now"
                      for c, (a, b) in list(differ.items())[:3])  # fmt: skip
    return [
        f"{count} recorded cells ran other values than their cells resolve to now ({shown}): "
        "a default changed since (a plugin's or the task's); the run mixes both, a new "
        "run measures every cell alike"
    ]


def _json(value: Any) -> str:
    """One text for a value however the results tables gave it back: a list Parquet held
    as its JSON text or an array, an integer column read back as floats (a blank
    elsewhere in it), NaN for None."""
    return json.dumps(_canon(value), sort_keys=True, default=str)


def _canon(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str) and value[:1] in "[{":
        try:
            value = json.loads(value)
        except ValueError:
            return value
    if isinstance(value, (list, tuple)):
        return [_canon(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canon(v) for k, v in value.items()}
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(f"{float(value):.12g}")
    return value


def plugins_changed(
    previous: dict[str, Any], now: list[dict[str, str]]
) -> list[tuple[str, str, str]]:
    """``(spec, sha256 before, sha256 now)`` for each plugin file whose source differs
    from what ``previous`` (an earlier ``run.json``) recorded; ``now``: the suite's
    ``plugin_sources``. A plugin it did not record, or hashed over other files (its
    ``path``: a module's own file then, its package's folder now), is not compared."""
    recorded = previous.get("plugin_files")
    if not isinstance(recorded, list):
        return []
    before = {
        e.get("spec"): e for e in recorded if isinstance(e, dict) and isinstance(e.get("spec"), str)
    }
    changed = []
    for e in now:
        old = before.get(e["spec"], {})
        if "sha256" not in e or old.get("sha256") in (None, e["sha256"]):
            continue
        if old.get("path") not in (None, e.get("path")):
            continue  # another basis: the hashes say nothing of an edit
        changed.append((e["spec"], str(old["sha256"]), e["sha256"]))
    return changed


def _planned(suite: Suite) -> dict[str, Cell]:
    """Every cell the suite may run, by id: its cells and each tuned configuration's
    test cells of every setting (which of them run depends on the choice)."""
    cells = {c.id: c for c in suite.cells}
    cells.update({c.id: c for t in suite.tunings for cs in t.test for c in cs})
    return cells


def _same_cells(
    planned: dict[str, Cell],
    rows: Mapping[str, dict[str, Any]],
    source: str,
    changed: bool,
    known: bool,
) -> None:
    stray = [cell_id for cell_id in rows if cell_id not in planned]
    if not stray:
        return
    labels = _labels(rows)
    examples = "; ".join(labels[cell_id] for cell_id in stray[:2])
    if changed:
        why = (
            "the suite changed since the run started. Resume with the suite it was started "
            "with (run.json's suite_text), or start a new run"
        )
    elif known:
        why = (
            "the suite file is the same, so the plugins or bench changed how it expands "
            "(a parameter, a declared grid). Start a new run"
        )
    else:
        why = "run.json does not say which suite text the run started with. Start a new run"
    raise ResumeRefused(
        f"{len(stray)} of its {len(rows)} recorded cells are not cells of {source} as "
        f"it is now (e.g. {examples}): {why}"
    )


def _same_settings(
    cells: dict[str, Cell], rows: Mapping[str, dict[str, Any]], previous: dict[str, Any]
) -> None:
    """Each recorded cell's entry measured as the same entry of the suite now does: a
    row is read against the suite text in force when it finished (``suite_history``
    keeps the texts a resume replaced, each with the time it was replaced), since its
    ``bench`` index is that text's."""
    texts = _texts(previous)
    if not texts:
        return
    settings: dict[int, dict[int, dict[str, Any]]] = {}  # by text, entry
    for cell_id, row in rows.items():
        cell, entry = cells[cell_id], row.get("bench")
        if not isinstance(entry, (int, float)) or entry != entry:
            continue
        which = _in_force(texts, row.get("finished_at"))
        if which is None:
            continue
        if which not in settings:
            try:
                settings[which] = _entry_settings(yaml.safe_load(texts[which][1]))
            except yaml.YAMLError:  # bench wrote it; a hand-damaged text stops nothing
                settings[which] = {}
        then = settings[which].get(int(entry))
        if then is None:
            continue
        differ = [k for k in MEASURED if k in then and then[k] != getattr(cell, k)]
        if differ:
            what = ", ".join(f"{k} {then[k]!r} then, {getattr(cell, k)!r} now" for k in differ)
            labels = _labels(rows)
            raise ResumeRefused(
                f"benchmarks[{cell.bench}] measures otherwise than when the run started "
                f"({what}; e.g. {labels[cell_id]}): its recorded cells and new ones would not "
                "compare. Resume with the suite it was started with (run.json's suite_text), "
                "or start a new run"
            )


def _texts(previous: dict[str, Any]) -> list[tuple[str, str]]:
    """``(until, text)``: each suite text the run was resumed away from, in order, then
    the last one (until ``""``: still in force)."""
    out = []
    history = previous.get("suite_history")
    for item in history if isinstance(history, list) else []:
        if isinstance(item, dict) and isinstance(item.get("suite_text"), str):
            out.append((str(item.get("until", "")), item["suite_text"]))
    if isinstance(previous.get("suite_text"), str):
        out.append(("", previous["suite_text"]))
    return out


def _in_force(texts: list[tuple[str, str]], finished_at: Any) -> int | None:
    """The index in ``texts`` of the text a row that finished at ``finished_at`` (an
    ISO time to the second, as ``until``) was measured under: the first replaced after
    it. None where that cannot be told: no time, or the second a text was replaced."""
    if not isinstance(finished_at, str) or not finished_at:
        return None
    for i, (until, _) in enumerate(texts):
        if not until or finished_at < until:
            return i
        if finished_at == until:
            return None
    return None


def _entry_settings(data: Any) -> dict[int, dict[str, Any]]:
    """Each entry's settings (the suite's, then its own) from a suite's parsed YAML."""
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        return {}
    errors: list[str] = []
    top = read_settings(data, "", DEFAULTS, errors)
    return {
        i: read_settings(entry, "", top, errors)
        for i, entry in enumerate(data["benchmarks"])
        if isinstance(entry, dict)
    }


def _same_rules(suite: Suite, previous: dict[str, Any]) -> None:
    """Each tuned configuration selects as it did (its metric and direction)."""
    records = previous.get("tuning")
    if not isinstance(records, list):
        return
    then: dict[tuple[Any, str], set[tuple[Any, Any]]] = {}  # two entries may look alike
    for r in records:
        if isinstance(r, dict):
            key = (r.get("task"), repr(r.get("configuration")))
            then.setdefault(key, set()).add((r.get("select"), r.get("better")))
    for tuning in suite.tunings:
        key = (tuning.task, repr(tuning.configuration))
        now = (tuning.rule.select, tuning.rule.better)
        if key in then and now not in then[key]:
            old = sorted(then[key], key=repr)[0]
            raise ResumeRefused(
                f"benchmarks[{tuning.entry}].tune selects by {now[0]} ({now[1]}), the run "
                f"started selecting by {old[0]} ({old[1]}): its choices would be made by "
                "two rules. Resume with the suite it was started with, or start a new run"
            )


def _labels(rows: Mapping[str, dict[str, Any]]) -> dict[str, str]:
    """Each recorded cell named as the tables name it among the run's cells, with its
    seed: ``ode.harmonic solver=heun solver.step_size=0.1 (validation) seed=100``."""
    frame = pd.DataFrame(list(rows.values()))
    labels = cell_labels(frame)
    return {
        str(frame.at[i, "cell_id"]): f"{labels[i]} seed={frame.at[i, 'seed']}" for i in frame.index
    }
