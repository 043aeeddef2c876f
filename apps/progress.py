"""Rich progress bars: one layout for every counted job, and the attack's bar driven by the
engine's progress callback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

if TYPE_CHECKING:  # the CLI imports the bars before torch
    from attacks.engine import ProgressCallback


def job_bar(label: str, *columns: ProgressColumn, console: Console) -> Progress:
    """A bar for one job: its bold label, the bar, ``columns``, elapsed and remaining time."""
    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        *columns,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


@contextmanager
def attack_progress(console: Console) -> Iterator[ProgressCallback]:
    """Yield a callback that advances one bar over the attack's budget (iterations or time).

    The bar appears on the first step, so set-up errors print alone, as one line.
    """
    columns = (
        TextColumn("{task.percentage:>3.0f}%  it {task.fields[iteration]}"),
        TextColumn("distance {task.fields[distance]:.3g}"),
    )
    with ExitStack() as stack:
        bar: Progress | None = None

        def advance(fraction: float, iteration: int, distance: float) -> None:
            nonlocal bar
            if bar is None:
                bar = stack.enter_context(job_bar("attack", *columns, console=console))
                bar.add_task("attack", total=1.0, iteration=0, distance=distance)
            bar.update(bar.task_ids[0], completed=fraction, iteration=iteration, distance=distance)

        yield advance
