"""A rich progress bar for attacks, driven by the engine's progress callback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from attacks.engine import ProgressCallback


@contextmanager
def attack_progress(console: Console) -> Iterator[ProgressCallback]:
    """Yield a callback that advances one bar over the attack's budget (iterations or time)."""
    columns = (
        TextColumn("[bold]attack"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%  it {task.fields[iteration]}"),
        TextColumn("distance {task.fields[distance]:.3g}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("attack", total=1.0, iteration=0, distance=float("nan"))

        def advance(fraction: float, iteration: int, distance: float) -> None:
            bar.update(task, completed=fraction, iteration=iteration, distance=distance)

        yield advance
