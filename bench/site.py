"""``bench site RESULTS... -o DIR``: one static site of many runs.

Each input is a run folder, or a folder of run folders and suite folders (each a
folder of runs), such as ``results/published/``. The site is one self-contained
folder::

    DIR/index.html                 one section per family (ode, fields, ...)
    DIR/runs/<run>/report.html     each run's report: its own, copied, or generated
    DIR/runs/<run>/README.html     the run's README.md, rendered as escaped text

A family section lists its runs (report, README, the README's title and first line,
and any table of the README that sets the paper's numbers beside the run's) and, per
task, a headline table across runs: configuration, quality, cost, one row per
configuration of each run. The headline is the one the run recorded
(``bench.columns.headline``); for runs made before tasks declared one, the task's
first metric and first timer stand in, and the table says so.

Received runs are hostile input: every name and text is escaped, links are relative,
and nothing outside the inputs is read nor outside ``DIR`` written (links that point
out of an input are not followed). A copied ``report.html`` is the run's own page,
copied as it is: ``--rebuild-reports`` writes every page from the run's tables instead.
"""

from __future__ import annotations

import html
import math
import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.columns import (
    configuration_labels,
    fallback_metric,
    four_digits,
    none_tuned,
    param_column,
    problems,
    timers,
    varying,
)
from bench.columns import headline as recorded_headline
from bench.results import CELLS, LOG, RUN_JSON, ResultsError, Run, headline_added, load_run
from bench.tuned import reported, untested_configurations
from bench.tuning import tied

#: families: the part of a task's name before the dot; these prefixes share one
FAMILY_OF = {"classify": "architectures", "memory": "architectures", "synthesis": "architectures"}
FAMILY_TITLES = {
    "ode": "ODE solvers",
    "fields": "Neural fields",
    "registration": "Image registration",
    "physics": "Differentiable physics",
    "architectures": "Architectures (invertible networks)",
    "kernels": "GPU kernels",
}
ROW_LIMIT = 200  # configuration rows per task and run in the index
PICTURES = (".png", ".jpg", ".jpeg", ".gif", ".webp")  # README pictures copied (no SVG)
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: the local files a page loads or links: <script src>, <img src>, <a href>, <link href>
_REF = re.compile(r'<(?:script|img|a|link)\b[^>]*?\s(?:src|href)="([^"]*)"', re.IGNORECASE)


class SiteError(ValueError):
    """A site that cannot be built as asked."""


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _inside(path: Path, root: Path) -> bool:
    """``path``, links followed, lies in ``root`` (resolved)."""
    try:
        return path.resolve().is_relative_to(root)
    except (OSError, RuntimeError):
        return False


@dataclass
class SiteRun:
    """A run as the site shows it."""

    run: Run
    slug: str  # its folder under DIR/runs
    source: str  # where it came from, for the page (input name / relative path)
    report: str = ""  # relative link from index.html, "" when none could be made
    readme: str = ""  # relative link to README.html
    title: str = ""  # the README's first heading
    summary: str = ""  # the README's first line of prose
    paper_tables: list[list[list[str]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: task parameters that pose another problem, besides those its headlines recorded
    #: (``bench site --problem``: runs recorded before tasks declared them)
    problem: tuple[str, ...] = ()


@dataclass
class Site:
    index: Path
    runs: list[SiteRun]
    skipped: list[str]  # folders that could not be read, with why
    pages: list[Path]  # every HTML page written
    notes: list[str] = field(default_factory=list)  # what the caller should hear


# --- finding runs --------------------------------------------------------------------


def _is_run(path: Path) -> bool:
    return any((path / name).is_file() for name in (RUN_JSON, CELLS, LOG))


def find_runs(inputs: list[Path], output: Path) -> list[tuple[Path, Path, str]]:
    """(input root, run folder, source name) for every run in the inputs: an input that
    is a run, its subfolders that are runs, and the runs in its suite folders. Folders
    that are links out of their input, and the output folder, are left out."""
    out = []
    for given in inputs:
        root = given.resolve()
        if not root.is_dir():
            raise SiteError(f"{given}: no such folder")
        if _is_run(root):
            out.append((root, root, root.name))
            continue
        for sub in sorted(p for p in root.iterdir() if p.is_dir()):
            if not _inside(sub, root) or sub.resolve() == output:
                continue
            if _is_run(sub):
                out.append((root, sub, f"{root.name}/{sub.name}"))
                continue
            for run in sorted(p for p in sub.iterdir() if p.is_dir() and _is_run(p)):
                if _inside(run, root) and run.resolve() != output:
                    out.append((root, run, f"{root.name}/{sub.name}/{run.name}"))
    return out


def _slug(source: str, taken: set[str]) -> str:
    parts = source.split("/")
    base = _SAFE.sub("_", "-".join(parts[1:] or parts)).strip("._-") or "run"
    slug, n = base[:100], 2
    while slug.lower() in taken:
        slug, n = f"{base[:96]}-{n}", n + 1
    taken.add(slug.lower())
    return slug


# --- the headline table ---------------------------------------------------------------


@dataclass
class TaskTable:
    task: str
    quality: list[tuple[str, str | None]]  # (column, "lower"/"higher"/None)
    cost: str
    declared: bool  # the run recorded a headline (else first metric / first timer)
    rows: list[dict[str, Any]]  # label, values per column, ok/total, problem, best columns
    hidden: int = 0
    problem: list[str] = field(default_factory=list)  # the problem columns that vary


def task_table(run: Run, task: str, problem: Sequence[str] = ()) -> TaskTable | None:
    cells = reported(run.cells[run.cells["task"] == task])  # a tuned run: its test cells
    found = recorded_headline(run.meta, task, cells)
    if found is not None:
        quality = [(c, found.better(c)) for c in found.quality_columns]
        cost, declared = found.cost, True
    else:
        metric = fallback_metric(cells[cells["status"] == "ok"])
        quality = [(metric, None)] if metric else []
        # this task's own timers (the run's columns hold every task's)
        own = [c for c in timers(cells.columns) if cells[c].notna().any()]
        cost = next(iter(own), "wall")
        declared = False
    if cost not in cells.columns:
        cost = "wall" if "wall" in cells.columns else ""
    labels = configuration_labels(cells) if len(cells) else pd.Series(dtype=object)
    given = [param_column(k) for k in problem]  # --problem (old runs)
    named = [
        c
        for c in dict.fromkeys([*(found.problem_columns if found else []), *given])
        if c in cells.columns
    ]
    varied = varying(cells, named, keys=("task",))
    where = problems(cells, varied)
    rows = []
    for label, group in cells.groupby(labels, sort=False):
        ok = group[group["status"] == "ok"]
        values = {c: _mean(ok, c) for c, _ in quality}
        values[cost] = _median(ok, cost) if cost else math.nan
        rows.append({"label": str(label), "values": values, "ok": len(ok), "n": len(group),
                     "problem": str(where[group.index[0]])})  # fmt: skip
    for index, col in _best_cells(quality, rows):  # over every row, shown or not
        rows[index].setdefault("best", set()).add(col)
    hidden = max(0, len(rows) - ROW_LIMIT)
    return TaskTable(task, quality, cost, declared, rows[:ROW_LIMIT], hidden, varied)


def _mean(cells: pd.DataFrame, col: str) -> float:
    if col not in cells.columns:
        return math.nan
    values = pd.to_numeric(cells[col], errors="coerce").dropna()
    return float(values.mean()) if len(values) else math.nan


def _median(cells: pd.DataFrame, col: str) -> float:
    if col not in cells.columns:
        return math.nan
    values = pd.to_numeric(cells[col], errors="coerce").dropna()
    return float(values.median()) if len(values) else math.nan


def _fmt(value: float, column: str) -> str:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "–"
    if column == "wall" or (column.startswith("time.") and column.endswith(".median")):
        for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
            if abs(value) >= scale or unit == "µs":
                return f"{value / scale:.3g} {unit}"
    if column.startswith("mem."):
        for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
            if abs(value) >= scale:
                return f"{value / scale:.3g} {unit}"
        return f"{value:.0f} B"
    return four_digits(value)


def _column_name(column: str) -> str:
    if column == "wall":
        return "wall time"
    if column.startswith("time.") and column.endswith(".median"):
        return f"{column[5:-7]} time"
    return column.removeprefix("metric.").removeprefix("mem.")


# --- READMEs ----------------------------------------------------------------------


def _cells_of(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def read_readme(text: str) -> tuple[str, str, list[list[list[str]]]]:
    """(first heading, first line of prose, the tables that name the paper): a table
    whose header, or a row's first cell, says "paper". Numbers are the README's own."""
    title = summary = ""
    tables: list[list[list[str]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("|"):
            block = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                block.append(_cells_of(lines[i]))
                i += 1
            rows = [r for r in block if not all(re.fullmatch(r":?-{2,}:?", c) for c in r if c)]
            if any("paper" in c.lower() for c in rows[0]) or any(
                r and "paper" in r[0].lower() for r in rows[1:]
            ):
                tables.append(rows)
            continue
        if line.startswith("#") and not title:
            title = line.lstrip("#").strip()
        elif line and not summary and not line.startswith(("#", "!", "```", "<")):
            bullet = line.startswith(("- ", "* "))
            parts = [line.lstrip("-* ").strip()]
            while i + 1 < len(lines) and _continues(lines[i + 1], bullet):
                i += 1
                parts.append(lines[i].strip())
            summary = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", " ".join(parts))
            summary = summary if len(summary) <= 300 else summary[:299] + "…"
        i += 1
    return title, summary, tables


def _continues(line: str, bullet: bool) -> bool:
    """``line`` goes on the paragraph (or list item) before it."""
    if not line.strip():
        return False
    if bullet:
        return line.startswith(" ")
    return not line.lstrip().startswith(("- ", "* ", "#", "|", "!", "```", "<"))


def _inline(text: str) -> str:
    """Escaped text with `code` and **bold** (nothing else becomes markup)."""
    out = _esc(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)


def readme_html(text: str, name: str, pictures: set[str]) -> str:
    """The README as a page: headings, tables, code, lists and pictures; every piece of
    text escaped, links shown as their text, pictures only the copied ones."""
    body: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("```"):
            block = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                block.append(lines[i])
                i += 1
            body.append(f"<pre>{_esc(chr(10).join(block))}</pre>")
        elif stripped.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append(_cells_of(lines[i]))
                i += 1
            body.append(_table_html(rows, _inline))
            continue
        elif m := re.fullmatch(r"(#{1,6})\s+(.*)", stripped):
            level = min(len(m[1]) + 1, 6)
            body.append(f"<h{level}>{_inline(m[2])}</h{level}>")
        elif m := re.fullmatch(r"!\[([^\]]*)\]\(([^)\s]+)\)", stripped):
            if m[2] in pictures:
                body.append(
                    f'<figure><img src="./{_esc(m[2])}" alt="{_esc(m[1])}">'
                    f"<figcaption>{_esc(m[1])}</figcaption></figure>"
                )
            else:
                body.append(f"<p class=dim>[picture not in this copy: {_esc(m[2])}]</p>")
        elif stripped:
            text_line = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", line)
            body.append(f"<div class=line>{_inline(text_line)}</div>")
        else:
            body.append("<div class=gap></div>")
        i += 1
    return _page(f"README: {name}", "\n".join(body), back="../../index.html")


def _table_html(rows: list[list[str]], cell: Callable[[str], str] = _esc) -> str:
    rows = [r for r in rows if not all(re.fullmatch(r":?-{2,}:?", c) for c in r if c)]
    if not rows:
        return ""
    head = "".join(f"<th>{cell(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
    return f"<table class=md><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# --- copying a run's pages ---------------------------------------------------------


def _copy_inside(src: Path, root: Path, dest: Path, site: Path) -> bool:
    """Copy ``src`` (a regular file in ``root``, links followed) to ``dest`` (in
    ``site``); False, copying nothing, when either lies outside."""
    if not src.is_file() or not _inside(src, root):
        return False
    dest = Path(dest.parent.resolve()) / dest.name if dest.parent.exists() else dest
    if not _inside_path(dest, site):
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.exists():
        shutil.copyfile(src.resolve(), dest)
    return True


def _inside_path(path: Path, root: Path) -> bool:
    """``path`` (not resolved: it may not exist yet) normalised lies in ``root``."""
    return Path(os.path.normpath(path)).is_relative_to(root)


def copy_report(source: Path, root: Path, dest_dir: Path, site: Path) -> bool:
    """Copy a run's report.html with the local files it links (``../plotly.min.js``,
    linked pictures) to the same places relative to ``dest_dir``. False when the page
    links a file outside the input or the site (the caller generates the page
    instead, as for a missing file it links outside the input: a page copied with such
    a link would point out of the site); a missing file inside the input stays linked."""
    page = source.read_text(encoding="utf-8", errors="replace")
    for ref in dict.fromkeys(html.unescape(r) for r in _REF.findall(page)):
        if not ref or ref.startswith("#") or re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", ref):
            if ref.startswith("file:"):
                return False  # an absolute file link points outside any copy
            continue
        target = ref.split("#", 1)[0].split("?", 1)[0]
        if not target:
            continue
        if not (source.parent / target).exists():
            if not _inside(source.parent / target, root):
                return False
            continue
        if not _copy_inside(source.parent / target, root, dest_dir / target, site):
            return False
    dest_dir.mkdir(parents=True, exist_ok=True)
    (dest_dir / "report.html").write_text(page, encoding="utf-8")
    return True


def generate_report(run: Run, dest_dir: Path, site: Path, problem: Sequence[str] = ()) -> None:
    """Write the run's report with ``bench.report`` (plotly.js shared at DIR/runs/);
    pictures it links by ``file://`` (past its inlining budget) are copied beside it."""
    from bench.report import write_report

    dest_dir.mkdir(parents=True, exist_ok=True)
    keys = [k for k in problem if param_column(k) in run.cells.columns]
    out = write_report(
        run,
        output=dest_dir / "report.html",
        plotly_js=site / "runs" / "plotly.min.js",
        problem=keys,
    )
    page = out.read_text(encoding="utf-8")
    if "file:" not in page or run.files.empty:
        return
    root = run.path.resolve()
    for rel in run.files["path"].dropna().astype(str):
        path = (root / rel).resolve()
        escaped = _esc(path.as_uri())
        if escaped in page and _copy_inside(path, root, dest_dir / "files" / rel, site):
            page = page.replace(escaped, _esc("./files/" + Path(rel).as_posix()))
    out.write_text(page, encoding="utf-8")


# --- the site -----------------------------------------------------------------------


def build_site(
    inputs: list[Path],
    output: Path,
    *,
    rebuild_reports: bool = False,
    progress: Callable[[str], None] | None = None,
    problem: Sequence[str] = (),
) -> Site:
    output = Path(output)
    site = output.resolve()
    for given in inputs:
        root = Path(given).resolve()
        if site == root or root.is_relative_to(site):
            raise SiteError(f"-o {output}: would write over the input {given}")
    if site.exists() and not site.is_dir():
        raise SiteError(f"-o {output}: is a file, not a folder")
    found = find_runs([Path(p) for p in inputs], site)
    if not found:
        raise SiteError(f"{', '.join(map(str, inputs))}: no run folders found")
    roots = {root for root, _, _ in found}
    empty = [str(p) for p in inputs if Path(p).resolve() not in roots]
    if empty:  # a page saying "runs from a, b" that holds none of b's (a user audit)
        raise SiteError(
            f"{', '.join(empty)}: no run folders found (a run, runs in it, or runs in its "
            "suite folders: give the folder that holds the suite folders)"
        )
    (site / "runs").mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    runs: list[SiteRun] = []
    skipped: list[str] = []
    pages: list[Path] = []
    for root, run_dir, source in found:
        if progress:
            progress(source)
        try:
            run = load_run(run_dir)
        except (ResultsError, OSError, ValueError) as exc:
            skipped.append(f"{source}: {exc}")
            continue
        if "task" not in run.cells.columns:
            skipped.append(f"{source}: its cells have no task column")
            continue
        entry = SiteRun(run, _slug(source, taken), source, problem=tuple(problem))
        dest = site / "runs" / entry.slug
        dest.mkdir(parents=True, exist_ok=True)
        _add_readme(entry, run_dir, root, dest, site, pages)
        _add_report(entry, run_dir, root, dest, site, rebuild_reports)
        if entry.report:
            pages.append(dest / "report.html")
        runs.append(entry)
    notes = [  # a misspelt key would judge across problems without a word
        f"--problem {key}: no run's cells have {param_column(key)}"
        for key in problem
        if not any(param_column(key) in e.run.cells.columns for e in runs)
    ]
    index = site / "index.html"
    index.write_text(
        index_html(runs, skipped, [Path(p).resolve().name for p in inputs]), encoding="utf-8"
    )
    return Site(index, runs, skipped, [index, *pages], notes)


def _add_readme(
    entry: SiteRun, run_dir: Path, root: Path, dest: Path, site: Path, pages: list[Path]
) -> None:
    readme = run_dir / "README.md"
    if not readme.is_file() or not _inside(readme, root):
        return
    text = readme.read_text(encoding="utf-8", errors="replace")
    entry.title, entry.summary, entry.paper_tables = read_readme(text)
    pictures = set()
    for ref in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", text):
        plain = ref.lower().endswith(PICTURES) and "/" not in ref and not ref.startswith(".")
        if plain and _copy_inside(run_dir / ref, root, dest / ref, site):
            pictures.add(ref)
    (dest / "README.html").write_text(readme_html(text, entry.source, pictures), encoding="utf-8")
    entry.readme = f"runs/{entry.slug}/README.html"
    pages.append(dest / "README.html")


def _add_report(
    entry: SiteRun, run_dir: Path, root: Path, dest: Path, site: Path, rebuild: bool
) -> None:
    from bench.report import ReportError

    own = run_dir / "report.html"
    # a --problem this run has judges its best otherwise than its own page: written anew
    rejudged = any(param_column(k) in entry.run.cells for k in entry.problem)
    if not rebuild and not rejudged and own.is_file() and _inside(own, root):
        if copy_report(own, root, dest, site):
            entry.report = f"runs/{entry.slug}/report.html"
            return
        entry.notes.append("its report.html links files outside the run: page rebuilt")
    try:
        generate_report(entry.run, dest, site, entry.problem)
    except (ReportError, OSError, ValueError, KeyError, TypeError) as exc:
        entry.notes.append(f"no report: {exc}")
        return
    entry.report = f"runs/{entry.slug}/report.html"


def family(task: str) -> str:
    prefix = str(task).split(".", 1)[0]
    return FAMILY_OF.get(prefix, prefix)


def index_html(runs: list[SiteRun], skipped: list[str], inputs: list[str]) -> str:
    families: dict[str, list[tuple[SiteRun, str]]] = {}
    for entry in runs:
        for task in entry.run.cells["task"].dropna().astype(str).unique():
            families.setdefault(family(task), []).append((entry, task))
    order = [f for f in FAMILY_TITLES if f in families] + sorted(
        f for f in families if f not in FAMILY_TITLES
    )
    ids = {f: f"family-{i}" for i, f in enumerate(order)}
    nav = " · ".join(f'<a href="#{ids[f]}">{_esc(FAMILY_TITLES.get(f, f))}</a>' for f in order)
    parts = [
        f"<p class=dim>{len(runs)} runs from {_esc(', '.join(inputs))}. Each task's table: "
        "one row per configuration of each run (what the run varied), its quality (mean over "
        "seeds of the cells that finished) and cost (median); ▼ lower / ▲ higher is better."
        "</p>",
        f"<nav>{nav}</nav>",
    ]
    if skipped:
        items = "".join(f"<li>{_esc(s)}</li>" for s in skipped)
        parts.append(f"<details class=warn><summary>{len(skipped)} folders not read</summary>"
                     f"<ul>{items}</ul></details>")  # fmt: skip
    for fam in order:
        parts.append(_family_html(fam, ids[fam], families[fam]))
    return _page("dynbench results", "\n".join(parts))


def _family_html(fam: str, anchor: str, entries: list[tuple[SiteRun, str]]) -> str:
    out = [f'<section id="{anchor}"><h2>{_esc(FAMILY_TITLES.get(fam, fam))}</h2>']
    seen: list[SiteRun] = []
    for entry, _ in entries:
        if entry not in seen:
            seen.append(entry)
    out.append("<h3>Runs</h3><ul class=runs>")
    for entry in seen:
        out.append(_run_item(entry))
    out.append("</ul>")
    tasks: dict[str, list[SiteRun]] = {}
    for entry, task in entries:
        tasks.setdefault(task, []).append(entry)
    for task in sorted(tasks):
        out.append(_task_html(task, tasks[task]))
    out.append("</section>")
    return "\n".join(out)


def _run_item(entry: SiteRun) -> str:
    name = _esc(entry.source)
    link = f'<a href="{_esc(entry.report)}">{name}</a>' if entry.report else name
    bits = [f"<b>{link}</b>"]
    if entry.title:
        bits.append(f"— {_esc(entry.title)}")
    if entry.readme:
        bits.append(f'(<a href="{_esc(entry.readme)}">README</a>)')
    item = " ".join(bits)
    if entry.summary:
        item += f"<div class=dim>{_inline(entry.summary)}</div>"
    for note in entry.notes:
        item += f"<div class=warn>{_esc(note)}</div>"
    for table in entry.paper_tables:
        item += (
            "<details><summary>the paper's numbers beside this run's (from its README)"
            f"</summary>{_table_html(table)}</details>"
        )
    return f"<li>{item}</li>"


def _task_html(task: str, entries: list[SiteRun]) -> str:
    tables = [(e, task_table(e.run, task, e.problem)) for e in entries]
    tables = [(e, t) for e, t in tables if t is not None]
    out = [f"<h3>{_esc(task)}</h3>"]
    for entry, table in tables:
        quality = ", ".join(
            _column_name(c) + {"lower": " ▼", "higher": " ▲"}.get(d or "", "")
            for c, d in table.quality
        )
        added = headline_added(entry.run.meta, task) if table.declared else ""
        how = (
            (f"headline {added}" if added else "headline")
            if table.declared
            else "no headline recorded: first metric and timer"
        )
        cost = _column_name(table.cost) if table.cost else "none"
        run_link = (
            f'<a href="{_esc(entry.report)}">{_esc(entry.source)}</a>'
            if entry.report
            else _esc(entry.source)
        )
        within = " within each " + ", ".join(c.removeprefix("param.") for c in table.problem)
        bold = (
            f"; bold: the best{within if table.problem else ''}, among configurations whose "
            "every cell ended ok"
            if any(d for _, d in table.quality)
            else ""
        )
        out.append(
            f"<p class=caption>{run_link}: quality {_esc(quality or 'none')}; "
            f"cost {_esc(cost)}{_esc(bold)} <span class=dim>({_esc(how)})</span></p>"
        )
        out.append(_headline_table(table))
        if any(d for _, d in table.quality):  # a best to qualify
            cells = entry.run.cells
            untuned = none_tuned(reported(cells[cells["task"] == task]))
            if untuned:
                out.append(f"<p class=dim>{_esc(untuned[0].upper() + untuned[1:])}</p>")
        untested = untested_configurations(entry.run.meta, task)
        if untested:
            out.append(f"<p class=warn>{_esc(untested)}</p>")
    return "\n".join(out)


def _best_cells(
    quality: list[tuple[str, str | None]], rows: list[dict[str, Any]]
) -> set[tuple[int, str]]:
    """(row, column) of each quality column's best value, as the report judges it:
    within one problem, among the configurations whose every cell ended ok, values
    within ``bench.tuning.tied`` of it best too."""
    out: set[tuple[int, str]] = set()
    for col, better in quality:
        if not better:
            continue
        for problem in {r["problem"] for r in rows}:
            mine = [(i, r["values"][col]) for i, r in enumerate(rows) if r["problem"] == problem]
            whole = [(i, v) for i, v in mine
                     if rows[i]["ok"] == rows[i]["n"] and math.isfinite(v)]  # fmt: skip
            if len(mine) < 2 or not whole:
                continue
            sign = 1.0 if better == "lower" else -1.0
            top = min(sign * v for _, v in whole)
            out.update((i, col) for i, v in whole if tied(sign * v, top))
    return out


def _headline_table(table: TaskTable) -> str:
    cols = [c for c, _ in table.quality] + ([table.cost] if table.cost else [])
    head = "<th>configuration</th>" + "".join(f"<th>{_esc(_column_name(c))}</th>" for c in cols)
    rows = []
    for r in table.rows:
        tds = [f"<td class=cfg>{_esc(r['label'])}</td>"]
        for c in cols:
            v = r["values"].get(c, math.nan)
            cls = "num best" if c in r.get("best", ()) else "num"
            tds.append(f"<td class='{cls}'>{_esc(_fmt(v, c))}</td>")
        if r["ok"] < r["n"]:
            tds[0] = tds[0][:-5] + f" <span class=warn>({r['ok']}/{r['n']} ok)</span></td>"
        rows.append("<tr>" + "".join(tds) + "</tr>")
    more = (
        f"<p class=dim>{table.hidden} more configurations: see the run's report</p>"
        if table.hidden
        else ""
    )
    return (
        f"<div class=scroll><table class=headline><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>{more}"
    )


_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 2em 4em;color:#222;max-width:1300px}
h1{font-size:1.5em}h2{font-size:1.3em;border-bottom:1px solid #ddd;padding-top:1em}
h3{font-size:1.05em;margin:1.2em 0 .3em}nav{margin:.5em 0 1em}
.dim,.caption{color:#666;font-size:12.5px}.warn{color:#a60}.line{margin:.1em 0}.gap{height:.6em}
.scroll{overflow-x:auto;max-height:28em;overflow-y:auto}
table{border-collapse:collapse;font-size:12.5px;margin:.3em 0}
th,td{border:1px solid #e2e2e2;padding:2px 6px;text-align:left}th{background:#f3f3f3}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.best{font-weight:700}td.cfg{max-width:60em}
ul.runs li{margin:.3em 0}img{max-width:100%}pre{background:#f6f6f6;padding:.5em;overflow-x:auto}
code{background:#f3f3f3;padding:0 .2em}
"""


def _page(title: str, body: str, back: str = "") -> str:
    nav = f'<p><a href="{_esc(back)}">← all results</a></p>' if back else ""
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{_STYLE}</style></head><body>"
        f"{nav}<h1>{_esc(title)}</h1>\n{body}\n</body></html>\n"
    )
