"""``fedleak bench``: run a suite of attack cells into a results store; ``fedleak bench report``
prints its tables and writes its plots, ``fedleak bench score`` scores cells run with
``--no-score``, ``fedleak bench export`` writes the store as CSV or Parquet.

``bench`` is a command group whose own options run a campaign when no subcommand follows, so
both ``fedleak bench --suite quick --out DIR`` and ``fedleak bench export DIR`` read as typed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.table import Table
from rich.text import Text

from apps.cli.app import JsonFlag, app, fmt, stderr, stdout
from fedsim.errors import FedleakError

if TYPE_CHECKING:
    from apps.bench.runner import CellOutcome
    from apps.bench.suite import Cell

bench_app = typer.Typer(
    name="bench",
    help=(
        "Run a benchmark suite of attacks into a results store; `bench report` tabulates it, "
        "`bench score` scores --no-score cells, `bench export` writes it out."
    ),
    invoke_without_command=True,
    no_args_is_help=False,
    add_completion=False,
)
app.add_typer(bench_app, name="bench")


@bench_app.callback(invoke_without_command=True)
def bench(
    context: typer.Context,
    suite: Annotated[
        str | None,
        typer.Option(
            help="A built-in suite (quick, demo, dia, gifd, ...: a wrong name lists all) or a file."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Campaign folder: results.sqlite and cells/<cell_id>/.")
    ] = None,
    workers: Annotated[
        int, typer.Option(help="Local worker processes; 1 runs the cells in this process.")
    ] = 1,
    ray_address: Annotated[
        str | None,
        typer.Option(help="Run the cells as Ray tasks on this cluster ('local' starts one)."),
    ] = None,
    device: Annotated[
        Literal["auto", "cpu", "cuda"] | None,
        typer.Option(help="Attack on this device, over the suite's setting (part of each cell)."),
    ] = None,
    time_budget: Annotated[
        float | None,
        typer.Option(
            help="Seconds per attack, over the suite's time_budget_s (part of each cell)."
        ),
    ] = None,
    iterations: Annotated[
        int | None,
        typer.Option(help="Steps per attack, over the suite's iterations (part of each cell)."),
    ] = None,
    restarts: Annotated[
        int | None,
        typer.Option(
            help="Restarts per attack (searched as one batch), over the suite's restarts "
            "(part of each cell)."
        ),
    ] = None,
    score: Annotated[
        bool,
        typer.Option(
            "--score/--no-score",
            help="Score each cell now, and any left unscored; --no-score keeps truth and "
            "reconstruction to score later (`fedleak bench score DIR`).",
        ),
    ] = True,
    only: Annotated[
        list[str] | None,
        typer.Option(
            help="Run only the cells whose field KEY equals VALUE (repeatable, all must hold): "
            "e.g. --only defense=gaussian:std=0.01 --only batch_size=1."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Run a suite's cells not yet done (a rerun resumes) and record each in DIR/results.sqlite."""
    campaign_options = (suite, out, ray_address, device, time_budget, iterations, restarts, only)
    if context.invoked_subcommand is not None:
        if any(v is not None for v in campaign_options) or workers != 1 or not score:
            raise FedleakError(
                "--suite, --out, --workers, --ray-address, --device, --time-budget, "
                f"--iterations, --restarts, --only and --no-score belong to `fedleak bench`, not "
                f"`fedleak bench {context.invoked_subcommand}`"
            )
        return
    if suite is None or out is None:
        raise FedleakError(
            "fedleak bench needs --suite NAME|FILE and --out DIR (or: fedleak bench "
            "report|score|export DIR)"
        )
    from apps.bench.runner import run_campaign
    from apps.bench.suite import load_suite

    chosen = load_suite(suite).overriding(
        device=device, time_budget_s=time_budget, iterations=iterations, restarts=restarts
    )
    with _cell_progress(chosen.name) as progress:
        summary = run_campaign(
            chosen,
            out,
            workers=workers,
            ray_address=ray_address,
            score=score,
            only=only or (),
            on_start=progress.start,
            on_result=progress.advance,
            on_notice=progress.notice,
        )
    table = Table(title=f"bench {chosen.name} → {out}", show_header=False)
    rows = {
        "cells": summary.cells,
        "already done": summary.skipped,
        "ran": summary.ran,
        "done": summary.done,
        "failed": summary.failed,
        "store": str(summary.store),
        "wall_s": summary.wall_s,
    }
    for key, value in rows.items():
        table.add_row(key, fmt(value))
    (stderr if as_json else stdout).print(table)
    if as_json:
        print(json.dumps(summary.to_json(), allow_nan=False))


@bench_app.command("report")
def report(
    folder: Annotated[Path, typer.Argument(help="A `fedleak bench` campaign folder.")],
    format_: Annotated[str, typer.Option("--format", help="markdown or json.")] = "markdown",
    plots: Annotated[
        bool, typer.Option("--plots/--no-plots", help="Write PNG plots into DIR/report/.")
    ] = True,
    as_json: JsonFlag = False,
) -> None:
    """Print a campaign's tables (medians per row and column, goal verdicts); write its plots."""
    from apps.bench.kind_plots import write_kind_plots
    from apps.bench.report import REPORT_DIR, load_report, report_json, to_markdown, write_plots

    if format_ not in ("markdown", "json"):
        raise FedleakError(f"invalid --format {format_!r}; valid: markdown, json")
    reports = load_report(folder)
    written = []
    if plots:
        written = write_plots(reports, folder / REPORT_DIR)
        written += write_kind_plots(folder, folder / REPORT_DIR)
    if as_json or format_ == "json":
        print(report_json(reports, written))
        return
    print(to_markdown(reports), end="")
    for path in written:
        stderr.print(f"plot → {path}", soft_wrap=True, markup=False)


@bench_app.command("score")
def score_cells(
    folder: Annotated[Path, typer.Argument(help="A `fedleak bench` campaign folder.")],
    as_json: JsonFlag = False,
) -> None:
    """Score the cells a `fedleak bench --no-score` campaign left unscored, and update the store."""
    from apps.bench.runner import score_campaign
    from apps.bench.store import store_path

    count = score_campaign(folder)
    stderr.print(f"scored {count} cells in {store_path(folder)}", soft_wrap=True, markup=False)
    if as_json:
        print(json.dumps({"scored": count, "store": str(store_path(folder))}))


@bench_app.command("export")
def export(
    folder: Annotated[Path, typer.Argument(help="A `fedleak bench` campaign folder.")],
    format_: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    output: Annotated[
        Path | None, typer.Option(help="File to write (default DIR/results.FORMAT).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Write a campaign's results store as one CSV or Parquet table (the store's columns)."""
    from apps.bench.store import export_results

    if format_ not in ("csv", "parquet"):
        raise FedleakError(f"invalid --format {format_!r}; valid: csv, parquet")
    path, count = export_results(folder, format_, output)
    stderr.print(f"{count} rows → {path}", soft_wrap=True, markup=False)
    if as_json:
        print(json.dumps({"rows": count, "file": str(path)}))


class _CellBar:
    """One bar over the cells to run; a failed cell prints its error above it."""

    def __init__(self, suite: str) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.suite = suite
        self.bar = Progress(
            TextColumn(f"[bold]bench {suite}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("failed {task.fields[failed]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=stderr,
        )
        self.task = None
        self.failed = 0
        self.notices: set[str] = set()

    def start(self, cells: int, to_run: int) -> None:
        if cells > to_run:
            stderr.print(f"{cells} cells, {cells - to_run} already done", markup=False)
        if to_run:
            self.bar.start()
            self.task = self.bar.add_task("bench", total=to_run, failed=0)

    def notice(self, line: str) -> None:
        self.bar.console.print(line, soft_wrap=True, markup=False)

    def advance(self, cell: Cell, outcome: CellOutcome) -> None:
        for notice in set(outcome.notices) - self.notices:
            self.bar.console.print(notice, soft_wrap=True, markup=False)
            self.notices.add(notice)
        if outcome.status == "failed":
            self.failed += 1
            line = Text(f"failed {cell.cell_id} {cell.label()}: {outcome.error}")
            self.bar.console.print(line, soft_wrap=True)
        self.bar.update(self.task, advance=1, failed=self.failed)

    def stop(self) -> None:
        self.bar.stop()


@contextmanager
def _cell_progress(suite: str) -> Iterator[_CellBar]:
    progress = _CellBar(suite)
    try:
        yield progress
    finally:
        progress.stop()
