"""The ``bench`` command: run, list, show, compare.

Exit codes: 0 success; 1 a ``compare`` gate was crossed or a run was aborted;
2 bad input (suite file, plugin, results folder, arguments); 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import re
import statistics
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from bench import columns as C
from bench import tuned
from bench.base import BASES, KINDS, Plugin
from bench.display import (
    STATUS_STYLE,
    comparison_tables,
    errors_table,
    files_table,
    grouped_tables,
    make_console,
    task_tables,
    tuning_table,
)
from bench.results import ResultsWarning

EXIT_GATE = 1
EXIT_BAD_INPUT = 2
EXIT_CELLS_NOT_OK = 3  # `bench run --strict`: the run finished, some cells are not ok
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """Bad input: printed as one message, exit code 2."""


def main(argv: list[str] | None = None) -> int:
    import sys

    parser = _parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv  # stored in run.json as the command
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    err = make_console(stderr=True)
    try:
        with warnings.catch_warnings():
            _print_results_warnings(err)
            return args.func(args)
    except CliError as exc:
        err.print(Text.assemble(("error:", "bold red"), f" {exc}"), soft_wrap=True)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        err.print("interrupted")
        return EXIT_INTERRUPTED


def _print_results_warnings(err: Any) -> None:
    """A damaged run file read around (``ResultsWarning``) is one ``warning:`` line on
    stderr, once, not Python's warning with its source line; others print as usual."""
    show = warnings.showwarning

    def print_warning(message, category, filename, lineno, file=None, line=None):
        if not issubclass(category, ResultsWarning):
            show(message, category, filename, lineno, file, line)
            return
        err.print(Text.assemble(("warning:", "bold yellow"), f" {message}"), soft_wrap=True)

    warnings.simplefilter("default", ResultsWarning)
    warnings.showwarning = print_warning


def _parser() -> argparse.ArgumentParser:
    from bench import __version__

    p = argparse.ArgumentParser(
        prog="bench", description="dynbench: run, list, show, compare and report benchmarks"
    )
    p.add_argument("--version", action="version", version=f"dynbench {__version__}")
    sub = p.add_subparsers(dest="command")

    _run_parser(sub)
    _list_parser(sub)
    _new_parser(sub)
    _show_parser(sub)
    _report_parser(sub)
    _plot_parser(sub)
    _compare_parser(sub)
    _stats_parser(sub)
    _reach_parser(sub)
    _site_parser(sub)
    _headlines_parser(sub)
    return p


def _run_parser(sub: Any) -> None:
    run = sub.add_parser("run", help="run a suite file")
    run.add_argument("suite", help="path to a suite YAML file")
    run.add_argument("--dry-run", action="store_true", help="print the cells and stop")
    run.add_argument("--output", default="results", help="results root (default: ./results)")
    run.add_argument("--resume", metavar="RUN_DIR", help="finish the cells missing from a run")
    run.add_argument(
        "--in-process",
        action="store_true",
        help="run cells in this process (debugging; no timeout, a crash ends the run)",
    )
    run.add_argument(
        "--slurm",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="run each cell as a cluster job through submitit, with this parameter "
        "(repeat: slurm_partition=gpu, gpus_per_node=1, timeout_min=60; cluster=local "
        "for local processes)",
    )
    run.add_argument(
        "--gpus",
        metavar="0,1,...",
        help="one worker per listed GPU, each pinned to it (CUDA_VISIBLE_DEVICES); cells "
        "on cuda or auto run on whichever GPU is free",
    )
    run.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="N worker processes at once (on CPU they share the cores: times suffer)",
    )
    run.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar, per-cell lines or tables; only where the results went",
    )
    run.add_argument(
        "--retry-failed",
        action="store_true",
        help="with --resume: also run again the cells that ended error, timeout or oom",
    )
    run.add_argument(
        "--strict",
        action="store_true",
        help=f"exit {EXIT_CELLS_NOT_OK} when the run finished but some cells are not ok, or "
        "a tuned configuration chose no setting (for scripts and CI)",
    )
    run.set_defaults(func=cmd_run)


def _list_parser(sub: Any) -> None:
    ls = sub.add_parser("list", help="list registered plugins")
    ls.add_argument(
        "kind", nargs="?", help=f"only this kind ({', '.join(KINDS)}, or one a plugin adds)"
    )
    ls.add_argument("--plugins", nargs="*", default=[], help="extra plugin modules or .py files")
    ls.set_defaults(func=cmd_list)


def _new_parser(sub: Any) -> None:
    new = sub.add_parser(
        "new", help="write a plugin file and a suite that runs it beside built-ins"
    )
    new.add_argument("kind", help="the kind of plugin (an unknown kind lists the templates)")
    new.add_argument("name", nargs="?", help="its name, e.g. my_lab.ralston")
    new.add_argument("-o", "--output", default=".", help="folder to write into (default: .)")
    new.add_argument("--plugins", nargs="*", default=[], help="modules or .py files to load")
    new.set_defaults(func=cmd_new)


def _show_parser(sub: Any) -> None:
    show = sub.add_parser("show", help="print a run's results")
    show.add_argument("run", help="a run folder, or a suite folder (its newest run)")
    show.add_argument(
        "--filter", action="append", default=[], metavar="COL=VALUE", help="keep matching cells"
    )
    show.add_argument(
        "--group-by",
        action="append",
        default=[],
        metavar="COL",
        help="one row per value of COL (repeat for several), seeds and cells aggregated; "
        "one table per task; the configuration columns not asked for are added (a row "
        "never pools two configurations)",
    )
    show.add_argument(
        "--columns",
        help="comma-separated columns to show, by name or short name "
        "(time.solve.median or solve, metric.psnr or psnr)",
    )
    show.add_argument(
        "--all",
        action="store_true",
        dest="all_columns",
        help="every measure, not only the task's headline (quality metrics and cost); "
        "tables that do not fit the terminal continue below",
    )
    show.add_argument(
        "--baseline",
        metavar="COL=VALUE",
        help="add speedup.<timer> against the cell with COL=VALUE and otherwise the same "
        "configuration and seed (e.g. backend=warp.eager,svf_exp.eager: one per task)",
    )
    show.add_argument(
        "--validation",
        action="store_true",
        help="a tuned run: show its validation cells (and any superseded test cells) "
        "too, told apart by a role column; by default the tables hold what is reported",
    )
    show.add_argument("--curves", action="store_true", help="also list the recorded curves")
    show.add_argument(
        "--files",
        action="store_true",
        help="list the result files the cells kept (pictures, volumes, figures)",
    )
    show.add_argument(
        "--errors",
        action="store_true",
        help="print each cell that is not ok with its message and full traceback",
    )
    show.set_defaults(func=cmd_show)


def _report_parser(sub: Any) -> None:
    rep = sub.add_parser(
        "report", help="write one self-contained HTML page for a run, or two runs compared"
    )
    rep.add_argument("run", help="a run folder, or a suite folder (its newest run)")
    rep.add_argument("run_b", nargs="?", help="a second run: the page compares B against RUN")
    rep.add_argument(
        "-o",
        "--output",
        help="HTML file (default: RUN/report.html, or RUN_B/compare-<RUN>.html for two runs)",
    )
    rep.add_argument(
        "--baseline",
        metavar="COL=VALUE",
        help="speedups against the cell with COL=VALUE, as in bench show",
    )
    rep.add_argument("--alpha", type=_alpha, default=0.05, help="significance level (0.05)")
    rep.add_argument("--across", **ACROSS_FLAG)
    rep.add_argument(
        "--problem",
        action="append",
        default=[],
        metavar="KEY",
        help="a task parameter that poses another problem (truth, image): the best and the "
        "Pareto front are judged within each of its values, as for those a task's headline "
        "declares; repeatable",
    )
    rep.add_argument(
        "--plotly-js",
        metavar="PATH",
        help="link plotly.js at PATH (written there if missing) instead of inlining it: "
        "many reports kept together share one copy (results/published/ does this)",
    )
    rep.set_defaults(func=cmd_report)


def _plot_parser(sub: Any) -> None:
    plot = sub.add_parser(
        "plot",
        help="plot a run: with no --x/--y each task's headline (its cost against its "
        "primary quality metric), a line per configuration",
    )
    plot.add_argument("run", help="a run folder, or a suite folder (its newest run)")
    plot.add_argument(
        "--x", help="column for the x axis (default: each task's cost, e.g. time.solve.median)"
    )
    plot.add_argument(
        "--y",
        help="column for the y axis (default: each task's primary quality metric, e.g. "
        "metric.final_rel_error)",
    )
    plot.add_argument(
        "--by",
        help="column whose values are lines (default: one line per configuration, along "
        "the swept parameter)",
    )
    plot.add_argument(
        "--facet",
        default="task",
        help="column whose values are panels (task; with --x and --y)",
    )
    plot.add_argument(
        "--filter", action="append", default=[], metavar="COL=VALUE", help="keep matching cells"
    )
    plot.add_argument(
        "--linear-x",
        action="store_true",
        help="linear x axis (default: log with --x and --y, else log where values span decades)",
    )
    plot.add_argument("--linear-y", action="store_true", help="linear y axis (as --linear-x)")
    plot.add_argument(
        "-o",
        "--output",
        help="PNG path, or a folder to write it into (default: RUN/<y>-vs-<x>.png, "
        "RUN/headline.png for several tasks)",
    )
    plot.set_defaults(func=cmd_plot)


#: ``--across KEY`` of bench compare and bench report (two runs)
ACROSS_FLAG: dict[str, Any] = {
    "action": "append",
    "default": [],
    "metavar": "KEY",
    "help": "compare configurations across a change of KEY between the runs (a column or a "
    "parameter's short name: method.lr, device): it is left out of the alignment, and rows "
    "say each run's value; repeatable",
}


def _compare_parser(sub: Any) -> None:
    cmp = sub.add_parser("compare", help="compare two runs: ratios, significance, gates")
    cmp.add_argument("run_a", help="baseline run folder")
    cmp.add_argument("run_b", help="candidate run folder")
    cmp.add_argument(
        "--fail-on",
        action="append",
        default=[],
        metavar="GATE",
        help="time:+10%%, time.NAME:+10%%, metric.NAME:+5%%, metric.NAME:-0.01, status, or "
        "headline:+5%% (each task's headline quality metrics, worse by more than 5%% in their "
        "declared direction); untestable time comparisons (too few samples) never fail a gate",
    )
    cmp.add_argument("--alpha", type=_alpha, default=0.05, help="significance level (0.05)")
    cmp.add_argument("--across", **ACROSS_FLAG)
    cmp.add_argument(
        "--allow-missing",
        action="store_true",
        help="configurations of A that B does not have are listed, not 'gates not held' "
        "(B measured a subset on purpose)",
    )
    cmp.set_defaults(func=cmd_compare)


def _stats_parser(sub: Any) -> None:
    stats = sub.add_parser(
        "stats",
        help="paired Wilcoxon signed-rank tests of one configuration against each other "
        "(cells matched on seed and every other parameter), Benjamini-Hochberg adjusted",
    )
    stats.add_argument("run", help="run folder")
    stats.add_argument(
        "--metric", required=True, help="the metric compared (dice, or a column: metric.dice)"
    )
    stats.add_argument(
        "--reference",
        required=True,
        metavar="KEY=VALUE",
        help="the configuration every other is compared with: 'method=svf', or several keys "
        "'method=svf,method.symmetric=true' (a column or a parameter's short name)",
    )
    stats.add_argument(
        "--by",
        action="append",
        default=[],
        metavar="COLUMN",
        help="compare within each value of this column too (repeat for several): --by truth",
    )
    stats.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="COL=VALUE",
        help="keep only the cells with this column value (repeat for several)",
    )
    stats.add_argument(
        "--better",
        choices=["higher", "lower"],
        help="the metric's direction (default: the task's headline, where it names the metric)",
    )
    stats.add_argument("--alpha", type=_alpha, default=0.05, help="level for the q-values (0.05)")
    stats.set_defaults(func=cmd_stats)


def _reach_parser(sub: Any) -> None:
    reach = sub.add_parser(
        "reach",
        help="time to the same quality: per pair of cells, when each configuration's curve "
        "first reached the reference's final value, against the reference's time",
    )
    reach.add_argument(
        "run",
        nargs="+",
        help="run folder; several: rounds of one suite (its cells run again, interleaved), "
        "each pair read within its round, the ratios' spread over every round",
    )
    reach.add_argument("--metric", required=True, help="the final value reached (dice)")
    reach.add_argument(
        "--reference",
        required=True,
        metavar="KEY=VALUE",
        help="whose final value is the target: 'method=syn' (as bench stats)",
    )
    reach.add_argument(
        "--cost",
        default=None,
        help="the reference's timer (register, or time.register.median; default: the "
        "task's headline cost)",
    )
    reach.add_argument(
        "--curve", default=None, help="the curve read (default: the metric's short name)"
    )
    reach.add_argument("--by", action="append", default=[], metavar="COLUMN")
    reach.add_argument("--filter", action="append", default=[], metavar="COL=VALUE")
    reach.add_argument("--better", choices=["higher", "lower"])
    reach.set_defaults(func=cmd_reach)


def _site_parser(sub: Any) -> None:
    site = sub.add_parser(
        "site",
        help="one static site of many runs: an index per family with each task's headline "
        "table across runs, linking each run's report and README",
    )
    site.add_argument(
        "results",
        nargs="+",
        help="run folders, or folders of runs and suite folders (results/published, your own)",
    )
    site.add_argument("-o", "--output", required=True, help="the site's folder (DIR/index.html)")
    site.add_argument(
        "--rebuild-reports",
        action="store_true",
        help="write every run's report from its tables instead of copying its report.html",
    )
    site.add_argument(
        "--problem",
        action="append",
        default=[],
        metavar="KEY",
        help="a task parameter that poses another problem (truth), for runs recorded before "
        "tasks declared theirs: the best is judged within each of its values; repeatable",
    )
    site.set_defaults(func=cmd_site)


def _headlines_parser(sub: Any) -> None:
    hl = sub.add_parser(
        "headlines",
        help="a run made before tasks declared headlines: the headlines its tasks declare now, "
        "recorded in its run.json with --record (so its pages show a best and a front)",
    )
    hl.add_argument("run", nargs="+", help="run folders, or suite folders (their newest run)")
    hl.add_argument(
        "--record",
        action="store_true",
        help="write them into each run.json, with the commit and date they were taken at "
        "(default: only say what would be recorded)",
    )
    hl.add_argument("--plugins", nargs="*", default=[], help="extra plugin modules or .py files")
    hl.set_defaults(func=cmd_headlines)


def _alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value < 1.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r}: a significance level is in (0, 1)")
    return value


# --- run --------------------------------------------------------------------


def _load_suite(path: str, probe: bool = True, read: Any = None):
    from bench.plugins import PluginLoadError
    from bench.registry import RegistryError
    from bench.suite import SuiteError, load_suite

    try:
        return load_suite(path, probe=probe, read=read)
    except SuiteError as exc:
        raise CliError(str(exc)) from None
    except (PluginLoadError, RegistryError) as exc:
        raise CliError(f"{path}: {exc}") from None


def cmd_run(args: argparse.Namespace) -> int:
    with _termination_as_interrupt():
        return _run(args)


@contextlib.contextmanager
def _termination_as_interrupt() -> Iterator[None]:
    """SIGTERM (``timeout``, ``scancel``, ``docker stop``) and SIGHUP (a closed terminal
    or ssh session) end ``bench run`` as Ctrl-C does, from its first line: a run
    finishes as ``interrupted`` (exit 130, how to resume), validation with one line."""
    import signal

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    wanted = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    previous = {signum: signal.signal(signum, interrupt) for signum in wanted}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run(args: argparse.Namespace) -> int:
    from bench.results import load_run

    out = make_console()
    # Every executor made here is closed by this one stack, on every way out (an
    # interrupt kills its worker first: nothing waits for imports or cells).
    with contextlib.ExitStack() as owned:
        early, read = _prestarted_worker(args)
        if early is not None:
            owned.enter_context(early)
        probed = _plugins_probed(early, args.suite)
        suite = _load_suite(args.suite, probe=not probed, read=read)
        for note in dict.fromkeys(t.rule.note for t in suite.tunings if t.rule.note):
            make_console(stderr=True).print(f"note: {note}", highlight=False, markup=False)
        if args.dry_run:
            _print_dry_run(out, suite, _done_in(args, suite) if args.resume else None)
            return 0
        run_dir = _run_dir(args, suite.name)
        executor = _executor(args, suite, run_dir, early)
        owned.enter_context(executor)
        display = _RunDisplay(out, suite, run_dir, args.quiet)
        if not args.quiet:  # where the executor runs one cell at a time: its progress
            executor.on_progress = display.on_progress
        interrupted = _run_cells(args, suite, run_dir, executor, display)
        if interrupted:
            return EXIT_INTERRUPTED
    run = load_run(run_dir)
    counts = display.summary(run)
    unchosen = [c for c in tuned.choices(run.meta) if c.chosen is None]
    if args.strict and (set(counts) - {"ok"} or unchosen):
        return EXIT_CELLS_NOT_OK
    return 0


def _done_in(args: argparse.Namespace, suite: Any) -> set[str]:
    """``--resume RUN --dry-run``: the ids of the cells RUN holds that a resume would
    not run again, the folder and the suite checked as a real resume checks them (a
    resume that would be refused is refused here, with its message); nothing written."""
    from bench.cell import SUPERSEDED
    from bench.plugins import plugin_sources
    from bench.results import ResultsError, RunWriter
    from bench.resume import ResumeRefused, check
    from bench.runner import _previous_meta

    run_dir = _run_dir(args, suite.name)
    try:
        rows = RunWriter(run_dir, resume=True, retry_failed=args.retry_failed).rows
        sources = plugin_sources(suite.plugins, suite.base_dir)
        for note in check(suite, rows, _previous_meta(run_dir), sources):
            make_console(stderr=True).print(f"note: {note}", highlight=False, markup=False)
    except (ResultsError, ResumeRefused) as exc:
        raise CliError(f"cannot resume: {exc}") from None
    return {str(i) for i, row in rows.items() if row.get("role") != SUPERSEDED}


def _print_dry_run(out: Any, suite: Any, done: set[str] | None = None) -> None:
    """Nothing; prints the cells ``--dry-run`` lists (and the tuned entries' test cells);
    with ``done`` (``--resume``), those a resume would run."""
    todo = {c.id for c in suite.cells if done is None or c.id not in done}
    if done is None:
        out.print(f"{suite.name}: {len(suite.cells)} cells")
    else:
        out.print(f"{suite.name}: {len(todo)} of {len(suite.cells)} cells to run (the rest done)")
    for i, cell in enumerate(suite.cells):
        if cell.id in todo:
            out.print(f"  {i:>4}  {cell.id}  {cell.describe()}", markup=False, soft_wrap=True)
    if suite.tunings:
        tests = suite.planned - len(suite.cells)
        if done:  # those of a choice already made and run
            ran = {c.id for t in suite.tunings for cells in t.test for c in cells} & done
            tests = max(tests - len(ran), 0)
        out.print(f"then {tests} test cells: the setting each of {len(suite.tunings)} "
                  "tuned configurations chose on validation")  # fmt: skip


def _executor(args: argparse.Namespace, suite: Any, run_dir: Path, early: Any) -> Any:
    """The executor the options ask for (the prestarted worker's where it fits), not entered."""
    from bench.runner import ExecutorChoiceError, build_executor

    try:
        return build_executor(
            suite,
            run_dir,
            slurm=_slurm_parameters(args.slurm) if args.slurm else None,
            gpus=args.gpus,
            workers=args.workers,
            in_process=args.in_process,
            prestarted=early if early and early.plugin_specs == suite.plugins else None,
        )
    except ExecutorChoiceError as exc:
        raise CliError(str(exc)) from None


def _run_cells(
    args: argparse.Namespace, suite: Any, run_dir: Path, executor: Any, display: _RunDisplay
) -> bool:
    """Whether the run was interrupted (after saying how to resume; False once the suite's
    cells have run); a failure to run them is a CliError."""
    from bench.executors import WorkerStartError
    from bench.results import ResultsError
    from bench.resume import ResumeRefused
    from bench.runner import run_suite

    try:
        with display.progress:
            run_suite(
                suite,
                run_dir,
                executor=executor,
                resume=bool(args.resume),
                on_start=display.on_start,
                on_cell_start=display.on_cell_start,
                on_cell_done=display.on_cell_done,
                command=_command_line(args.argv),
                retry_failed=args.retry_failed,
                on_note=lambda text: display.out.print(
                    f"note: {text}", highlight=False, markup=False
                ),
            )
    except ResumeRefused as exc:  # nothing in the folder changed
        raise CliError(f"--resume {run_dir}: {exc}") from None
    except WorkerStartError as exc:
        raise CliError(f"{exc}; results so far are in {run_dir}") from None
    except ResultsError as exc:  # the lock held or unusable, a damaged log
        raise CliError(str(exc)) from None
    except OSError as exc:  # a full disk, a read-only or vanished results folder
        raise CliError(_cannot_write(exc, run_dir, args.suite)) from None
    except KeyboardInterrupt:
        display.out.print(f"interrupted; finish with: bench run {args.suite} --resume {run_dir}")
        return True
    return False


def _plugins_probed(early: Any, suite: str) -> bool:
    """Whether the prestarted worker imported the suite's plugins (it imports them
    first: one that ends the process while importing ends the worker, not this process,
    and is reported here)."""
    from bench.executors import WorkerStartError

    if early is None or not early.plugin_specs:
        return False

    def slow() -> None:
        make_console(stderr=True).print(
            f"note: still importing the plugins {', '.join(early.plugin_specs)} (15 s so "
            "far); a plugin that hangs while importing holds the run here (Ctrl-C stops it)",
            highlight=False,
        )

    try:
        early.wait_ready(slow)
    except WorkerStartError as exc:
        raise CliError(f"{suite}: plugins: {exc}") from None
    return True


def _cannot_write(exc: OSError, run_dir: Path, suite: str) -> str:
    """One line for a run that could not write its results folder."""
    where = f"{exc.filename}: " if exc.filename else ""
    what = exc.strerror or str(exc)
    if not (run_dir / "run.json").exists():
        return f"cannot write the results: {where}{what}"
    return (
        f"cannot write the results: {where}{what}; the cells recorded so far are kept "
        f"(finish with: bench run {suite} --resume {run_dir})"
    )


def _command_line(argv: list[str]) -> str:
    import shlex

    return shlex.join(["bench", *argv])


def _run_dir(args: argparse.Namespace, suite_name: str) -> Path:
    """The run folder: ``--resume``'s (checked readable; ``bench.resume`` checks its
    cells against the suite), or a new one under ``--output``."""
    from bench.results import ResultsError, load_run
    from bench.runner import new_run_id

    if args.retry_failed and not args.resume:
        raise CliError(
            "--retry-failed needs --resume RUN_DIR (the run whose failed cells to rerun)"
        )
    if args.resume:
        run_dir = Path(args.resume)
        if not run_dir.is_dir():
            raise CliError(f"--resume {run_dir}: no such run folder")
        _check_run_of(run_dir, suite_name)
        if (run_dir / "cells.parquet").exists() or (run_dir / "cells.log.jsonl").exists():
            try:
                load_run(run_dir)
            except ResultsError as exc:
                raise CliError(f"cannot resume: {exc}") from None
        return run_dir
    output = Path(args.output)
    try:
        blocked = output.exists() and not output.is_dir()
    except OSError as exc:  # a name past 255 characters
        raise CliError(f"--output: {exc.strerror}") from None
    if blocked:
        raise CliError(f"--output {output}: is a file; give the folder results go under")
    return output / suite_name / new_run_id()


def _check_run_of(run_dir: Path, suite_name: str) -> None:
    """``--resume``'s folder must be a run of this suite (its ``run.json`` says so): a
    suite folder, an unrelated folder or another suite's run got cells written into it."""
    import json

    from bench.results import RUN_JSON

    meta_path = run_dir / RUN_JSON
    if not meta_path.is_file():
        runs = sorted(p for p in run_dir.iterdir() if p.is_dir() and (p / RUN_JSON).is_file())
        if runs:
            raise CliError(
                f"--resume {run_dir}: a suite folder, not a run; resume one of its runs, "
                f"e.g. {runs[-1]}"
            )
        raise CliError(f"--resume {run_dir}: not a run folder (no {RUN_JSON})")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot resume: {meta_path}: corrupt JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise CliError(
            f"cannot resume: {meta_path}: not a run record (a JSON {type(meta).__name__}, "
            "not an object)"
        )
    suite = meta.get("suite")
    if suite != suite_name:
        raise CliError(f"--resume {run_dir}: a run of suite {suite!r}, not of {suite_name!r}")


#: without a terminal (a log file), a running cell's progress is a line this often
LOG_EVERY_S = 30.0


class _RunDisplay:
    """The progress bar and per-cell lines of ``bench run`` (nothing but the bar's
    absence with ``--quiet``), as the callbacks ``run_suite`` takes."""

    def __init__(self, out: Any, suite: Any, run_dir: Path, quiet: bool) -> None:
        self.out, self.suite, self.run_dir, self.quiet = out, suite, run_dir, quiet
        self.progress = Progress(
            TextColumn("{task.description}", style="bold", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=out,
            disable=quiet,
            transient=False,
        )
        self.bar: Any = None
        #: a running cell's start and last progress line (without a terminal), by cell id
        self._said: dict[str, tuple[float, float]] = {}

    def on_start(self, todo: list[Any], done: int) -> None:
        if self.bar is not None:  # a tuned entry's test cells, once validation chose
            if not self.quiet:
                self.out.print(f"{len(todo)} test cells with the settings chosen on validation")
            done_so_far = self.progress.tasks[0].completed
            self.progress.update(self.bar, total=done_so_far + len(todo))
            return
        note = f" ({done} already done)" if done else ""
        if not self.quiet:
            self.out.print(f"{self.suite.name}: {len(todo)} cells to run{note} -> {self.run_dir}")
            unset = [c for c in todo if c.threads is None and c.device in ("cpu", "auto")]
            if unset and not _has_cuda():
                self.out.print(
                    f"note: {len(unset)} CPU cells have no `threads:`; they use torch's "
                    "default (all cores), and their times swing with the machine's load. "
                    "Set `threads:` in the suite for steady CPU timings.",
                    style="yellow",
                    highlight=False,
                )
        # a tuned suite's test cells come once validation chose: counted from the start,
        # so that the bar's eta is not that of the validation cells alone; on a resume,
        # less the cells already done (the bar ended at 4/10 with every cell run)
        total = len(todo)
        if self.suite.tunings:
            total = max(self.suite.planned - done, total)
        self.bar = self.progress.add_task(self.suite.name, total=total)

    def on_cell_start(self, cell: Any) -> None:
        self.progress.update(self.bar, description=f"{cell.task} {_short(cell)}")
        self._said[cell.id] = (time.monotonic(),) * 2  # its start, its last progress line

    def on_progress(self, cell: Any, point: tuple[Any, ...]) -> None:
        """A long cell's last curve point on the bar: ``loss 0.0123 at step 1200``; where
        the output is no terminal (a log file: no bar), a line every 30 s of a cell."""
        name, step, _, value = point
        text = f"{cell.task} {_short(cell)} · {name} {value:.4g} at step {step}"
        self.progress.update(self.bar, description=text)
        if self.quiet or self.out.is_terminal:
            return
        now = time.monotonic()
        started, last = self._said.setdefault(cell.id, (now, now))
        if now - last >= LOG_EVERY_S:
            self._said[cell.id] = (started, now)
            self.out.print(f"  ... {text} ({now - started:.0f} s in)", highlight=False)

    def on_cell_done(self, cell: Any, row: dict[str, Any]) -> None:
        self._said.pop(cell.id, None)
        status = row["status"]
        if not self.quiet:
            line = Text.assemble(
                "  ",
                (f"{status:>8}", STATUS_STYLE.get(status, "")),
                f"  {cell.describe()}",
                (f"  ({row['wall']:.1f} s)", "dim"),
                (f" {row['error'][:160]}" if row["error"] else "", "dim"),
            )
            self.progress.console.print(line, highlight=False, soft_wrap=True)
        self.progress.advance(self.bar)

    def summary(self, run: Any) -> dict[str, int]:
        """The closing tables (or one line with ``--quiet``); the counts by status."""
        counts = run.cells["status"].value_counts().to_dict()
        line = "  ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
        if self.quiet:
            self.out.print(f"{self.suite.name}: {line}   results: {self.run_dir}", highlight=False)
            return counts
        shown = _reported_or_asked(self.out, run, run.cells, asked=False)
        if not shown.empty:
            for table in task_tables(shown, title=run.name, meta=run.meta, width=self.out.width):
                self.out.print(table)
        bad = errors_table(run.cells)
        if bad is not None:
            self.out.print(bad)
        self.out.print(f"{line}   results: {self.run_dir}")
        self.out.print(f"report: bench report {self.run_dir}", highlight=False)
        return counts


def _prestarted_worker(args: argparse.Namespace) -> tuple[Any, Any]:
    """A ProcessExecutor whose worker is already starting, for the plain local run, and
    the suite file as read (so that it is parsed once); None for the worker where
    another executor is asked for or the suite's plugin list cannot be read."""
    from bench.executors import ProcessExecutor
    from bench.suite import SuiteError, plugin_specs, read_suite_file

    if args.dry_run or args.slurm or args.gpus or args.workers is not None or args.in_process:
        return None, None
    try:
        read = read_suite_file(args.suite)
        plugins = plugin_specs(read[1], args.suite)
    except SuiteError:
        return None, None  # validation says why, in full
    executor = ProcessExecutor(plugins, Path(args.suite).resolve().parent)
    executor.prestart()
    return executor, read


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def _short(cell) -> str:
    return " ".join(f"{n}" for n in cell.components.values())


# --- list -------------------------------------------------------------------


def cmd_new(args: argparse.Namespace) -> int:
    from bench.plugins import PluginLoadError, get_plugin_manager
    from bench.registry import Registry, RegistryError
    from bench.scaffold import ScaffoldError, templates, write

    try:
        pm = get_plugin_manager(args.plugins, base_dir=Path.cwd())
        found = templates(pm)
        registry = Registry(pm)
    except (PluginLoadError, RegistryError) as exc:
        raise CliError(str(exc)) from None
    listing = "; ".join(f"{k}: {t.doc}" for k, t in sorted(found.items()))
    if args.kind not in found:
        raise CliError(f"no template for kind {args.kind!r} (templates: {listing or 'none'})")
    if not args.name:
        raise CliError(f"bench new {args.kind} needs a NAME for the plugin, e.g. my_lab.mine")
    if registry.has(args.kind, args.name):  # its suite would refuse the duplicate
        (entry,) = [e for e in registry.entries(args.kind) if e.cls.name == args.name]
        where = registry.where(entry.provider)
        last = args.name.rsplit(".", 1)[-1]
        free = next(n for n in (f"my_lab.{last}", f"{args.name}_2", f"{args.name}_3",
                                f"{args.name}_mine") if not registry.has(args.kind, n))  # fmt: skip
        raise CliError(
            f"a {args.kind} named {args.name!r} is registered already ({where}): give "
            f"yours a name of its own, e.g. {free}"
        )
    try:
        plugin, suite = write(found[args.kind], args.name, Path(args.output))
    except (ScaffoldError, OSError) as exc:
        raise CliError(str(exc)) from None
    out = make_console()
    out.print(f"wrote {plugin} and {suite}; run it with: bench run {suite}", soft_wrap=True)
    return 0


def _plugins_registry(plugins: list[str]) -> Any:
    """The registry of the built-ins and ``--plugins`` (modules or files, from here)."""
    from bench.plugins import PluginLoadError, get_plugin_manager, probe_plugins
    from bench.registry import Registry, RegistryError

    try:
        probe_plugins(plugins, base_dir=Path.cwd())
        return Registry(get_plugin_manager(plugins, base_dir=Path.cwd()))
    except (PluginLoadError, RegistryError) as exc:
        raise CliError(str(exc)) from None


def cmd_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    registry = _plugins_registry(args.plugins)
    out = make_console()
    if args.kind and args.kind not in registry.kinds:
        raise CliError(f"unknown plugin kind {args.kind!r}; kinds are {', '.join(registry.kinds)}")
    kinds = [args.kind] if args.kind else registry.kinds
    for kind in kinds:
        entries = registry.entries(kind)
        if not entries:
            continue
        table = Table(title=f"{kind}s ({len(entries)})", header_style="bold", title_justify="left")
        table.add_column("name", style="bold")
        table.add_column("provider", style="dim")
        table.add_column("description", overflow="fold")
        table.add_column("parameters", overflow="fold")
        for entry in entries:
            cls = entry.cls
            params = "\n".join(f"{k}: {p.describe()}" for k, p in cls.params.items())
            if kind == "task" and cls.components:
                slots = ", ".join(f"{s} ({spec.describe()})" for s, spec in cls.slots().items())
                params = f"components: {slots}" + ("\n" + params if params else "")
            desc = Text(cls.summary())
            family = family_bases(cls)
            if family:
                desc.append(f"\nis a: {', '.join(family)}", style="dim")
            missing = cls.missing_requirement()
            if missing:
                desc.append(f"\nunavailable: {missing}", style="yellow")
            table.add_row(cls.name, _provider(registry, entry.provider), desc, params)
        out.print(table)
    for module, why in registry.unavailable.items():
        out.print(Text(f"unavailable: {module}: {why}", style="yellow"), soft_wrap=True)
    return 0


def family_bases(cls: type) -> list[str]:
    """The public classes between a plugin and its kind's base (``RegistrationMethod``
    for ``svf``): what a slot may ask for, shown by ``bench list``."""
    kind_base = BASES.get(cls.kind, Plugin)
    return [
        b.__name__
        for b in cls.__mro__[1:]
        if isinstance(b, type) and issubclass(b, kind_base) and b is not kind_base
        and not b.__name__.startswith("_")
    ]  # fmt: skip


def _provider(registry: Any, name: str) -> str:
    """A plugin file's path rather than the module name it was imported under."""
    return registry.where(name)


def _slurm_parameters(specs: list[str]) -> dict[str, Any]:
    """``--slurm KEY=VALUE`` options as submitit parameters (values read as YAML)."""
    import yaml

    from bench.compare import split_assignment

    params: dict[str, Any] = {}
    for spec in specs:
        try:
            key, value = split_assignment(spec, "--slurm", "KEY=VALUE, e.g. slurm_partition=gpu")
        except ValueError as exc:
            raise CliError(str(exc)) from None
        params[key] = yaml.safe_load(value)
    return params


# --- show -------------------------------------------------------------------


def _load(path: str):
    from bench.results import ResultsError, load_run

    try:
        return load_run(path)
    except ResultsError as exc:
        raise CliError(str(exc)) from None


def _filtered(run, filters: list[str]):
    cells = run.cells
    from bench.compare import split_assignment

    for expr in filters:
        try:
            col, value = split_assignment(expr, "--filter")
        except ValueError as exc:
            raise CliError(str(exc)) from None
        try:  # a parameter by the name its table heads it with (truth, not param.truth)
            col = C.resolve(cells.columns, col, prefer=C.PARAM)
        except KeyError as exc:
            raise CliError(f"--filter {expr!r}: {exc.args[0]} in {run.path}") from None
        cells = cells[_matches(cells[col], value)]
    return cells


def _matches(values: Any, text: str) -> Any:
    """Which ``values`` a ``--filter`` value picks: as text, or as a number where the
    column holds numbers (``value=1`` picks 1.0)."""
    import pandas as pd

    same = values.astype(str) == text
    if pd.api.types.is_numeric_dtype(values.dtype):
        try:
            number = float(text)
        except ValueError:
            return same
        return same | (values == number)
    return same


def cmd_show(args: argparse.Namespace) -> int:
    run = _load(args.run)
    cells = _filtered(run, args.filter)
    out = make_console()
    if cells.empty:
        out.print(
            f"no cells match {' and '.join(args.filter)} in {run.path} ({len(run.cells)} cells)",
            highlight=False,
        )
        return 0
    meta = run.meta
    dev = ", ".join(d.get("name", "?") for d in meta.get("devices", []))
    out.print(
        f"{run.name}  [{run.status}]  {meta.get('start', '')}  on {dev}",
        highlight=False,
    )
    from bench.sysinfo import load_note, run_environment, run_load

    env = run_environment(meta)
    if env:
        out.print(f"environment: {env}", highlight=False, markup=False)
    if run_load(meta)[1]:  # a quiet start goes unsaid here (the report says it)
        out.print(f"load average: {load_note(meta)}", highlight=False, markup=False)
    shown = _reported_or_asked(out, run, cells, args.validation or _asks_role(args.filter))
    if args.baseline and not shown.empty:
        from bench.compare import speedups_against

        try:
            shown = speedups_against(shown, args.baseline)
        except ValueError as exc:
            raise CliError(str(exc)) from None
    # the tables hold what is reported; what failed (a validation cell too) is listed
    _print_cell_tables(out, shown, meta, args, failures=cells)
    if args.curves and not run.curves.empty:
        summary = run.curves.groupby(["cell_id", "curve"]).agg(
            points=("step", "count"), last=("value", "last")
        )
        out.print(summary.to_string())
    if args.files:
        out.print(files_table(run, cells))
    if args.errors:
        _print_failures(out, cells)
    return 0


def _asks_role(filters: list[str]) -> bool:
    """Whether a ``--filter`` names the ``role`` column (then it picks the cells)."""
    return any(f.partition("=")[0].strip() == "role" for f in filters)


def _reported_or_asked(out: Any, run: Any, cells: Any, asked: bool) -> Any:
    """A tuned run's choices (a table), and its cells less the validation and superseded
    ones unless ``asked`` for (``--validation``, a ``--filter`` on ``role``)."""
    found = tuned.choices(run.meta, tasks=set(cells["task"].astype(str)))
    if found:
        out.print(tuning_table(found))
        edges = tuned.grid_edges(found)
        if edges:
            out.print(edges, highlight=False, markup=False)
    hidden = tuned.not_reported(cells)
    if hidden.empty or asked:
        return cells
    hint = " (bench show --validation lists them)"
    out.print(tuned.summary(found, hidden) + hint, highlight=False)
    return tuned.reported(cells)


def _print_cell_tables(
    out: Any, cells: Any, meta: dict[str, Any], args: Any, failures: Any = None
) -> None:
    """Nothing; prints the cells' tables (grouped, or per task with the table of the
    ``failures`` cells not ok: ``cells`` by default)."""
    failures = cells if failures is None else failures
    shape = {"meta": meta, "width": out.width, "everything": args.all_columns}
    try:
        if args.group_by and not cells.empty:
            for table in grouped_tables(cells, args.group_by, **shape):
                out.print(table)
        elif not args.group_by:
            columns = [c.strip() for c in args.columns.split(",")] if args.columns else None
            if not cells.empty:
                for table in task_tables(cells, columns=columns, **shape):
                    out.print(table)
            bad = errors_table(failures)
            if bad is not None:
                out.print(bad)
    except KeyError as exc:
        raise CliError(str(exc.args[0])) from None


def _print_failures(out: Any, cells: Any) -> None:
    """Nothing; prints each cell that is not ok, its error and its traceback (``--errors``)."""
    bad = cells[cells["status"] != "ok"]
    if bad.empty:
        out.print("every cell shown is ok")
    labels = C.cell_labels(cells)
    for index, row in bad.iterrows():
        out.print(
            Text.assemble(
                (f"{row['status']:>8}", STATUS_STYLE.get(row["status"], "")),
                f"  {labels[index]}  seed={row['seed']}  {row['cell_id']}\n",
                f"  {row['error']}",
            ),
            soft_wrap=True,
        )
        trace = row.get("traceback")
        if isinstance(trace, str) and trace:
            out.print(Text(trace.rstrip()), style="dim", soft_wrap=True)


# --- report -------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    from bench.report import ReportError, write_report

    run = _load(args.run)
    run_b = _load(args.run_b) if args.run_b else None
    if args.across and run_b is None:
        raise CliError("--across compares two runs: give a second run (bench report A B)")
    try:
        path = write_report(
            run,
            run_b,
            output=Path(args.output) if args.output else None,
            baseline=args.baseline,
            alpha=args.alpha,
            plotly_js=Path(args.plotly_js) if args.plotly_js else None,
            across=args.across,
            problem=args.problem,
        )
    except ReportError as exc:
        raise CliError(str(exc)) from None
    make_console().print(f"wrote {path}", highlight=False)
    return 0


# --- headlines --------------------------------------------------------------


def cmd_headlines(args: argparse.Namespace) -> int:
    from bench.results import ResultsError, add_headlines, headline_source

    registry = _plugins_registry(args.plugins)
    out = make_console()
    failed = False
    source = headline_source()  # before any run.json is written (that dirties the tree)
    for folder in dict.fromkeys(args.run):
        run = _load(folder)
        try:
            lines = add_headlines(run, registry, record=args.record, source=source)
        except ResultsError as exc:
            out.print(Text(f"{run.path}: {exc}", style="red"), soft_wrap=True)
            failed = True
            continue
        for line in lines:
            out.print(f"{run.path}: {line}", highlight=False, soft_wrap=True)
    return 1 if failed else 0


# --- plot -------------------------------------------------------------------


def cmd_plot(args: argparse.Namespace) -> int:
    from bench.plot import PlotError, headline_panels, plot_headline, plot_run

    run = _load(args.run)
    cells = _filtered(run, args.filter)
    hidden = tuned.not_reported(cells)
    if len(hidden) and not _asks_role(args.filter):
        cells = tuned.reported(cells)  # --filter role=validation plots those
        found = tuned.choices(run.meta, tasks=set(hidden["task"].astype(str)))
        make_console().print(tuned.summary(found, hidden, "the figure"), highlight=False)
        if cells.empty:
            raise CliError(f"{run.path}: no reported cells yet, only tuning's validation "
                           "cells (--filter role=validation plots those)")  # fmt: skip
    for key in ("x", "y", "by", "facet"):  # short names, as the tables head the columns
        value = getattr(args, key, None)
        if value:
            with contextlib.suppress(KeyError):  # unknown: the plot says so, listing them
                prefer = C.PARAM if key in ("by", "facet") else ""
                setattr(args, key, C.resolve(cells.columns, value, prefer))
    explicit = bool(args.x and args.y)
    if explicit:
        name = f"{args.y}-vs-{args.x}.png"
    else:  # each task's headline: name the file by its axes when one pair serves all
        panels, _ = headline_panels(cells, run.meta, x=args.x, y=args.y)
        pairs = {(p.y, p.x) for p in panels}
        name = "{}-vs-{}.png".format(*pairs.pop()) if len(pairs) == 1 else "headline.png"
    output = Path(args.output) if args.output else run.path / name
    if output.is_dir():  # -o names a folder: the figure goes into it
        output = output / name
    elif not output.suffix:  # matplotlib would add .png: say the file it writes
        output = output.with_name(output.name + ".png")
    try:
        if explicit:
            facet = args.facet
            if facet not in cells.columns or cells[facet].nunique() < 2:
                facet = None
            path = plot_run(
                cells,
                x=args.x,
                y=args.y,
                by=args.by,
                facet=facet,
                output=output,
                title=run.name,
                logx=not args.linear_x,
                logy=not args.linear_y,
            )
        else:
            path = plot_headline(
                cells,
                run.meta,
                output=output,
                x=args.x,
                y=args.y,
                by=args.by,
                title=run.name,
                logx=False if args.linear_x else None,
                logy=False if args.linear_y else None,
            )
    except PlotError as exc:
        raise CliError(str(exc)) from None
    if args.by and args.by in cells.columns:
        from bench.plot import mixed_in_lines

        mixed = mixed_in_lines(cells[cells["status"] == "ok"], args.by, args.facet)
        if mixed:
            shown = ", ".join(c.removeprefix("param.") for c in mixed)
            apart = (
                f"--facet {mixed[0]} or --filter keeps them apart"
                if explicit
                else f"--filter {mixed[0]}=VALUE keeps them apart"
            )
            make_console().print(
                f"note: each --by {args.by} line joins cells that differ in {shown} too: {apart}",
                highlight=False,
            )
    make_console().print(f"wrote {path}", highlight=False)
    return 0


# --- compare ----------------------------------------------------------------


def cmd_compare(args: argparse.Namespace) -> int:
    from bench.compare import (
        AcrossError,
        Gate,
        GateError,
        check_gate_targets,
        check_gates,
        compare_runs,
        gate_table,
        nothing_shared,
        pairable_notes,
        untestable_notes,
        untestable_under,
    )

    try:
        gates = [Gate.parse(g) for g in args.fail_on]
    except GateError as exc:
        raise CliError(str(exc)) from None
    run_a, run_b = _load(args.run_a), _load(args.run_b)
    try:
        check_gate_targets(gates, run_a, run_b)
    except GateError as exc:
        raise CliError(str(exc)) from None
    try:
        cmp = compare_runs(run_a, run_b, alpha=args.alpha, across=args.across)
    except AcrossError as exc:
        raise CliError(str(exc)) from None
    out = make_console()
    out.print(f"A = {cmp.run_a}\nB = {cmp.run_b}", highlight=False)
    if cmp.machines[0] != cmp.machines[1]:
        out.print(
            f"warning: the runs come from different machines ({cmp.machines[0]} vs "
            f"{cmp.machines[1]}): time ratios compare the machines too",
            style="yellow",
            highlight=False,
        )
    for change in cmp.code:
        out.print(f"note: the runs ran different code: {change}", highlight=False, markup=False)
    for change in cmp.measured:
        out.print(f"note: {change}", highlight=False, markup=False)
    if cmp.only_a or cmp.only_b:
        out.print(f"unmatched configurations: {cmp.only_a} only in A, {cmp.only_b} only in B")
        for line in pairable_notes(cmp):
            out.print(line, highlight=False, markup=False)
    unfinished = [
        f"run {name} is {status}, not complete: cells it has not finished are not compared"
        for name, run in (("A", run_a), ("B", run_b))
        if (status := str(run.meta.get("status", "complete"))) != "complete"
    ]
    for line in unfinished:
        out.print(f"warning: {line}", style="yellow", highlight=False)
    if nothing_shared(cmp):
        raise CliError(nothing_shared(cmp))
    for table in comparison_tables(cmp):
        out.print(table)
    # What a gate cannot hold for (a user audit: a configuration B no longer ran, and a
    # run still going or interrupted, each left every gate "held")
    unjudged = []
    if gates and cmp.only_a and not args.allow_missing:
        unjudged.append(
            f"{cmp.only_a} configuration{'s' if cmp.only_a != 1 else ''} of A not in B: "
            "nothing to hold the gates against (--across KEY pairs configurations whose "
            "parameter changed; --allow-missing where B measured a subset on purpose)"
        )
    if gates:
        unjudged += unfinished
    violations = check_gates(cmp, gates, alpha=args.alpha)
    untestable = untestable_under(cmp, gates)
    if violations or untestable:
        title = "gates crossed" if violations else "gates: comparisons not judged (not failed)"
        out.print(gate_table(violations + untestable, title=title))
    for note in untestable_notes(cmp, gates):
        out.print(note, highlight=False)
    if any(g.target.startswith("time") for g in gates) and cmp.times:
        # (a user audit: identical code crossed time:+10% in 2 of 8 comparisons of runs
        # made apart, one on a busy machine)
        out.print(
            "note: a time gate compares two runs made apart: its p-values take each run's "
            "timed calls as independent, which a load shared by a whole run is not. For a "
            "ratio the load cannot move, run both versions in one suite (two plugin names), "
            "interleaved seed by seed, and read bench stats on the time column",
            highlight=False,
        )
    for line in unjudged:
        out.print(f"gates not held: {line}", style="red", highlight=False)
    if violations or unjudged:
        return EXIT_GATE
    if gates:
        out.print(f"gates held: {', '.join(str(g) for g in gates)}")
    return 0


# --- stats ------------------------------------------------------------------


def _run_cells_filtered(args: argparse.Namespace) -> tuple[Any, Any]:
    """The run of ``args.run`` and its cells kept by ``args.filter``; CliError when none."""
    run = _load(args.run)
    cells = _filtered(run, args.filter)
    if cells.empty:
        raise CliError(f"no cells match {' and '.join(args.filter)} in {run.path}")
    return run, cells


def cmd_stats(args: argparse.Namespace) -> int:
    from rich.table import Table

    from bench.stats import StatsError, paired_comparisons, resolve_metric, split_seeds

    run, cells = _run_cells_filtered(args)
    keys = tuned.tuned_keys(run.meta)
    try:
        column = resolve_metric(cells, args.metric)
        better = args.better or _direction(run, cells, column)
        table = paired_comparisons(
            cells, column, args.reference, by=args.by, better=better, alpha=args.alpha,
            tuned=keys,
        )  # fmt: skip
    except StatsError as exc:
        raise CliError(str(exc)) from None
    out = make_console()
    chosen = " but the settings each tuned configuration chose" if keys else ""
    direction = f"{better} is better" if better else "direction unknown: give --better"
    split = split_seeds(run.meta, cells) if column.startswith(("time.", "mem.")) else []
    if split:
        out.print(
            f"note: this run was resumed, and the cells of seed{'s' if len(split) > 1 else ''} "
            f"{', '.join(map(str, split))} finished in different invocations: their pairs "
            "were not timed under one load (not interleaved)",
            style="yellow",
            highlight=False,
        )
    out.print(
        f"{run.path}: {table.metric} ({direction}), {table.reference} against each other "
        f"configuration, paired on seed and every other parameter{chosen}; Wilcoxon signed-rank "
        f"(two-sided), Benjamini-Hochberg q over the {len(table.rows)} comparisons",
        highlight=False,
    )
    grid = Table(show_edge=False)
    if table.by:
        grid.add_column(" ".join(c.removeprefix("param.") for c in table.by))
    for name in (
        "other",
        "reference mean",
        "other mean",
        "paired diff (ref - other)",
        "n",
        "p",
        "q",
    ):
        grid.add_column(name, justify="left" if name == "other" else "right")
    grid.add_column("verdict")
    for row in table.rows:
        cells_ = [row.group] if table.by else []
        cells_ += [
            row.other,
            f"{row.reference_mean:.4g}",
            f"{row.other_mean:.4g}",
            f"{row.difference:+.4g}",
            str(row.n),
            "-" if math.isnan(row.p) else f"{row.p:.3g}",  # no test: a deterministic pair
            "-" if math.isnan(row.q) else f"{row.q:.3g}",
            row.verdict,
        ]
        grid.add_row(*cells_)
    out.print(grid)
    for note in table.left_out:
        out.print(f"left out: {note}", highlight=False, markup=False)
    return 0


def _direction(run: Any, cells: Any, column: str) -> str | None:
    """The metric's direction as the cells' tasks' headlines say it (None: unknown); a
    time or a memory peak is lower-is-better whatever the task (a user audit had to give
    --better for time.solve.median)."""
    from bench.columns import MEM, TIME, headline

    if column.startswith((TIME, MEM)):
        return "lower"
    if not column.startswith("metric."):
        return None
    name = column[len("metric.") :]
    directions = {
        h.ranked[name]
        for task in cells["task"].dropna().unique()
        if (h := headline(run.meta, str(task))) is not None and name in h.ranked
    }
    return directions.pop() if len(directions) == 1 else None


def cmd_reach(args: argparse.Namespace) -> int:
    from bench.stats import StatsError

    loaded = [
        _run_cells_filtered(argparse.Namespace(run=folder, filter=args.filter))
        for folder in dict.fromkeys(args.run)
    ]
    run = loaded[0][0]
    # every joined run's tuned keys (rounds of one suite)
    keys = list(dict.fromkeys(k for r, _ in loaded for k in tuned.tuned_keys(r.meta)))
    cells, curves = _rounds_joined(loaded)
    try:
        column, better, cost, rows = _reach_rows(args, run, cells, curves, keys)
    except StatsError as exc:
        raise CliError(str(exc)) from None
    out = make_console()
    where = str(run.path) if len(loaded) == 1 else f"{len(loaded)} runs (rounds)"
    out.print(
        f"{where}: when each configuration's {args.curve or column.removeprefix('metric.')} "
        "curve first reached "
        f"{args.reference}'s final {column} ({better} is better) in the same problem, against "
        f"{args.reference}'s {cost}; a curve's first sample at the target (no interpolation)",
        highlight=False,
    )
    suites = {(r.meta.get("suite"), r.meta.get("suite_text")) for r, _ in loaded}
    if len(suites) > 1:  # rounds of several suites: a configuration counts where it ran
        out.print(
            "note: the runs are of different suites (or suite texts): each configuration "
            "is read over the runs that ran it, and says how many",
            highlight=False,
        )
    names = {str(k + 1): r.path.name for k, (r, _) in enumerate(loaded)}
    named = [_round_of(row, names) for row in rows]
    out.print(_reach_grid(named, bool(args.by)))
    _print_reach_summary(out, named, len(loaded))
    return 0


_ROUND = "round"  # the column that keeps several runs' cells apart in bench reach


def _rounds_joined(loaded: list) -> tuple[Any, Any]:
    """One run's cells and curves; several runs' joined, each cell marked with its round
    (1, 2, ...: a column pairs match on, so a pair never spans two runs) and its id
    prefixed with it (a rerun's cells keep their ids), so that one pairing names every
    configuration alike across the rounds."""
    import pandas as pd

    if len(loaded) == 1:
        return loaded[0][1], loaded[0][0].curves
    cells, curves = [], []
    for k, (run, mine) in enumerate(loaded, start=1):
        if _ROUND in mine.columns:
            raise CliError(f"{run.path}: its cells have a {_ROUND!r} column of their own")
        cells.append(mine.assign(**{_ROUND: str(k), "cell_id": f"{k}:" + mine["cell_id"]}))
        if not run.curves.empty:
            curves.append(run.curves.assign(cell_id=f"{k}:" + run.curves["cell_id"]))
    joined = pd.concat(cells, ignore_index=True)
    return joined, (pd.concat(curves, ignore_index=True) if curves else loaded[0][0].curves)


def _round_of(row: Any, names: dict[str, str]) -> tuple[str, Any]:
    """(the run's folder name, the row with ``round=K`` left out of its pair's name);
    ("", row) for one run."""
    found = re.search(rf"(?:^| ){_ROUND}=(\d+)(?= |$)", row.pair)
    if len(names) == 1 or not found:
        return "", row
    pair = (row.pair[: found.start()] + row.pair[found.end() :]).strip()
    return names[found.group(1)], dataclasses.replace(row, pair=pair)


def _reach_rows(
    args: argparse.Namespace, run: Any, cells: Any, curves: Any, keys: list[str]
) -> tuple:
    """(metric column, direction, cost timer, ``Reach`` rows) for ``bench reach``,
    ``keys`` the joined runs' tuned parameters; StatsError where the cells cannot say
    one of them."""
    from bench.stats import StatsError, resolve_metric, time_to_reach

    column = resolve_metric(cells, args.metric)
    better = args.better or _direction(run, cells, column)
    if better is None:
        raise StatsError(f"{column}: direction unknown; give --better higher|lower")
    cost = args.cost if args.cost is not None else _headline_cost(run, cells)
    rows = time_to_reach(cells, curves, column, args.reference, cost, args.by, better,
                         args.curve, tuned=keys)  # fmt: skip
    return column, better, cost, rows


def _headline_cost(run: Any, cells: Any) -> str:
    """The one cost timer the cells' tasks' headlines name; StatsError where not one."""
    from bench.columns import headline
    from bench.stats import StatsError

    found = {h.cost for t in cells["task"].dropna().unique()
             if (h := headline(run.meta, str(t))) is not None}  # fmt: skip
    if len(found) != 1:
        raise StatsError("no single headline cost in the run: give --cost TIMER")
    cost = found.pop()
    if not cost.startswith("time."):
        raise StatsError(f"the headline's cost {cost!r} is not a timer: give --cost TIMER")
    return cost


def _reach_grid(rows: list, by: bool) -> Any:
    """The table of ``bench reach``: one row a pair (its run first where several, then
    its group where ``--by``); ``rows`` are (run name or "", ``Reach``)."""
    from rich.table import Table

    grid = Table(show_edge=False)
    rounds = any(name for name, _ in rows)
    names = (["run"] if rounds else []) + (["group"] if by else [])
    names += ["other", "pair", "target", "ref. time", "reached at", "ratio", "final", "time"]
    for name in names:
        left = name in ("run", "group", "other", "pair")
        grid.add_column(name, justify="left" if left else "right")
    for name, r in rows:
        reached = r.note if r.time != r.time else f"{r.time:.4g} s"
        ratio = "" if r.ratio != r.ratio else f"{r.ratio:.3f}"
        values = ([name] if rounds else []) + ([r.group] if by else [])
        values += [r.other, r.pair, f"{r.target:.4g}", f"{r.reference_cost:.4g} s", reached,
                   ratio, f"{r.final:.4g}", f"{r.cost:.4g} s"]  # fmt: skip
        grid.add_row(*values)
    return grid


def _print_reach_summary(out: Any, rows: list, rounds: int = 1) -> None:
    """Nothing; prints one line per other configuration: pairs reached, ratios' spread;
    over several runs (``rounds``: how many were read), each pair's median ratio and
    range over its rounds as well."""
    ran_in: dict[tuple[str, str], set[str]] = {}
    for name, r in rows:
        ran_in.setdefault((r.group, r.other), set()).add(name)
    for (group, other), mine in _by_other(rows).items():
        reached = sum(r.time == r.time for r in mine)
        ratios = sorted(r.ratio for r in mine if r.ratio == r.ratio)
        head = f"{group}: " if group else ""
        if ratios:
            spread = _spread(ratios)
            if len(ratios) < reached:
                spread += f" (over {len(ratios)}: the others' reference time is 0 or missing)"
        else:
            spread = "no ratio"
        ran = len(ran_in[(group, other)])  # the runs this configuration ran in
        runs = f" ({ran} runs)" if ran == rounds else f" ({ran} of {rounds} runs)"
        runs = runs if rounds > 1 else ""
        out.print(
            f"{head}{other}: reached the target in {reached} of {len(mine)} pairs{runs}; "
            f"time / reference time {spread}",
            highlight=False,
        )
        if rounds > 1:
            for pair, (values, runs) in _per_pair(mine).items():
                text = (
                    f"{_spread(values)} over {len(values)} of {runs} runs"
                    if values
                    else (f"no ratio in {runs} runs")
                )
                out.print(f"  {pair or 'the pair'}: {text}", highlight=False)


def _spread(values: list[float]) -> str:
    values = sorted(values)
    middle = statistics.median(values)
    return f"median {middle:.3f}, range {values[0]:.3f} to {values[-1]:.3f}"


def _per_pair(rows: list) -> dict[str, tuple[list[float], int]]:
    """Each pair's ratios over the runs it appears in (the reached ones with a reference
    time), and the number of those runs."""
    out: dict[str, tuple[list[float], int]] = {}
    for r in rows:
        ratios, runs = out.get(r.pair, ([], 0))
        out[r.pair] = (ratios + ([r.ratio] if r.ratio == r.ratio else []), runs + 1)
    return out


def _by_other(rows: list) -> dict[tuple[str, str], list]:
    out: dict[tuple[str, str], list] = {}
    for _, r in rows:
        out.setdefault((r.group, r.other), []).append(r)
    return out


# --- site -------------------------------------------------------------------


def cmd_site(args: argparse.Namespace) -> int:
    import time

    from bench.site import SiteError, build_site

    out = make_console()
    start = time.perf_counter()
    try:
        site = build_site(
            [Path(p) for p in args.results],
            Path(args.output),
            rebuild_reports=args.rebuild_reports,
            progress=lambda name: out.print(f"  {name}", highlight=False, style="dim"),
            problem=args.problem,
        )
    except SiteError as exc:
        raise CliError(str(exc)) from None
    for why in site.skipped:
        out.print(f"skipped {why}", style="yellow", highlight=False)
    for note in site.notes:
        out.print(f"note: {note}", style="yellow", highlight=False)
    out.print(
        f"wrote {site.index} ({len(site.runs)} runs, {len(site.pages)} pages) in "
        f"{time.perf_counter() - start:.1f} s",
        highlight=False,
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
