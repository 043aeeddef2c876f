"""``fedleak dta``: DTA physical camouflage — render the DTN's training triplets."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import Annotated

import typer

from apps.cli.app import JsonFlag, app, stderr, stdout

dta_app = typer.Typer(
    name="dta",
    help="DTA physical camouflage: the Mitsuba renderer's datasets and the DTN.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(dta_app, name="dta")


@dta_app.command("render-dataset")
def render_dataset_command(
    out: Annotated[
        Path, typer.Option(help="Dataset folder: dataset.json and views/*.safetensors.")
    ],
    views: Annotated[
        int, typer.Option(help="Camera / sun / occluder views, drawn from --seed.")
    ] = 64,
    colours: Annotated[int, typer.Option(help="Random flat paint colours rendered per view.")] = 8,
    size: Annotated[int, typer.Option(help="Image side in pixels.")] = 128,
    spp: Annotated[int, typer.Option(help="Samples per pixel.")] = 16,
    seed: Annotated[int, typer.Option(help="Seed of the views and colours.")] = 0,
    car: Annotated[
        str, typer.Option(help="Car shape: sedan (training) or van (held out).")
    ] = "sedan",
    workers: Annotated[int, typer.Option(min=1, help="Render processes (2 uses both cores).")] = 1,
    as_json: JsonFlag = False,
) -> None:
    """Render (x_ref, mask, flat colour, render) triplets; a rerun resumes the views not done."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from attacks.camouflage.dataset import DatasetConfig, open_dataset, render_views

    config = DatasetConfig(views=views, colours=colours, size=size, spp=spp, seed=seed, car=car)
    command = shlex.join(
        ["fedleak", "dta", "render-dataset", "--out", str(out), "--views", str(views)]
        + ["--colours", str(colours), "--size", str(size), "--spp", str(spp), "--seed", str(seed)]
        + ["--car", car, "--workers", str(workers)]
    )
    columns = (
        TextColumn("[bold]render-dataset"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("views"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    pending = open_dataset(out, config, command)
    skipped = views - len(pending)
    started = time.perf_counter()
    with Progress(*columns, console=stderr) as bar:
        task = bar.add_task("render", total=views, completed=skipped)
        render_views(out, config, pending, workers=workers, on_view=lambda _: bar.advance(task))
    wall_s = time.perf_counter() - started
    rendered = len(pending)
    renders = rendered * (colours + 1)
    summary = {
        "out": str(out),
        "views": views,
        "rendered_views": rendered,
        "resumed_views": skipped,
        "renders": renders,
        "wall_s": round(wall_s, 3),
        "renders_per_s": round(renders / wall_s, 3) if rendered else None,
    }
    stdout.print(
        f"{rendered} views rendered ({renders} images + masks), {skipped} already there → {out}"
    )
    if as_json:
        print(json.dumps(summary))
