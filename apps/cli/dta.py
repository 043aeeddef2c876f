"""``fedleak dta``: DTA physical camouflage — render the DTN's triplets, train and score it."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from apps.cli.app import JsonFlag, app, stderr, stdout
from fedsim.errors import UserInputError

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
    from attacks.camouflage.dataset import DatasetConfig, open_dataset, render_views

    config = DatasetConfig(views=views, colours=colours, size=size, spp=spp, seed=seed, car=car)
    command = shlex.join(
        ["fedleak", "dta", "render-dataset", "--out", str(out), "--views", str(views)]
        + ["--colours", str(colours), "--size", str(size), "--spp", str(spp), "--seed", str(seed)]
        + ["--car", car, "--workers", str(workers)]
    )
    pending = open_dataset(out, config, command)
    skipped = views - len(pending)
    started = time.perf_counter()
    with _bar("render-dataset", "views") as bar:
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


@dta_app.command("train-dtn")
def train_dtn_command(
    data: Annotated[Path, typer.Option(help="A folder made by `fedleak dta render-dataset`.")],
    out: Annotated[Path, typer.Option(help="Checkpoint file (.safetensors).")] = Path(
        "runs/dtn.safetensors"
    ),
    steps: Annotated[int, typer.Option(min=1, help="Adam steps (cosine-decayed).")] = 2_000,
    batch_size: Annotated[int, typer.Option(min=1, help="(view, colour) pairs per step.")] = 16,
    lr: Annotated[float, typer.Option(min=0.0, help="Adam's initial learning rate.")] = 1e-3,
    width: Annotated[
        int, typer.Option(min=8, help="Channels of the first level, doubled per level.")
    ] = 32,
    seed: Annotated[int, typer.Option(help="Seed of the weights and batches.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    as_json: JsonFlag = False,
) -> None:
    """Train the DTN on a triplet dataset and write it with the command and seed that made it."""
    from attacks.camouflage.dataset import load_triplets
    from attacks.camouflage.dtn import DTNRecord, save_dtn
    from attacks.camouflage.dtn_training import train_dtn
    from fedsim.device import resolve_device
    from fedsim.provenance import provenance

    where = resolve_device(device)
    triplets = load_triplets(data)
    if width % 8:
        raise UserInputError(f"width must be a multiple of 8 (group norm), got {width}")
    started = time.perf_counter()
    with _bar("train-dtn", "loss {task.fields[loss]:.3g}") as bar:
        task = bar.add_task("train", total=steps, loss=float("nan"))
        model, loss = train_dtn(
            triplets,
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            width=width,
            seed=seed,
            device=where,
            progress=lambda step, value: bar.update(task, completed=step, loss=value),
        )
    wall_s = time.perf_counter() - started
    command = shlex.join(
        ["fedleak", "dta", "train-dtn", "--data", str(data), "--out", str(out)]
        + ["--steps", str(steps), "--batch-size", str(batch_size), "--lr", str(lr)]
        + ["--width", str(width), "--seed", str(seed), "--device", device]
    )
    record = DTNRecord(
        width=width,
        size=triplets.config.size,
        car=triplets.config.car,
        data_seed=triplets.config.seed,
        steps=steps,
        seed=seed,
        command=command,
        train_loss=loss,
    )
    save_dtn(out, model, record, provenance(seed, where))
    stdout.print(f"DTN trained {steps} steps in {wall_s:.1f} s (car-pixel MSE {loss:.3g}) → {out}")
    if as_json:
        print(
            json.dumps(
                {
                    "checkpoint": str(out),
                    "steps": steps,
                    "train_loss": loss,
                    "wall_s": round(wall_s, 3),
                    "device": str(where),
                }
            )
        )


@dta_app.command("evaluate-dtn")
def evaluate_dtn_command(
    dtn: Annotated[Path, typer.Option(help="Checkpoint from `fedleak dta train-dtn`.")] = Path(
        "runs/dtn.safetensors"
    ),
    data: Annotated[
        Path | None, typer.Option(help="A held-out render-dataset folder; else render --views.")
    ] = None,
    views: Annotated[int, typer.Option(help="Held-out views to render when no --data.")] = 16,
    colours: Annotated[int, typer.Option(help="Flat colours per held-out view.")] = 4,
    spp: Annotated[int, typer.Option(help="Samples per pixel of the held-out renders.")] = 16,
    seed: Annotated[int, typer.Option(help="Seed of the held-out views and colours.")] = 1,
    car: Annotated[
        str | None, typer.Option(help="Car of the held-out renders (default: the DTN's).")
    ] = None,
    patterns: Annotated[
        int, typer.Option(min=0, help="Random textured patterns rendered per held-out view.")
    ] = 2,
    as_json: JsonFlag = False,
) -> None:
    """Score the DTN's predictions against real renders of held-out views and colours, and of
    textured patterns it never saw in training."""
    from attacks.camouflage.dataset import DatasetConfig, load_triplets, render_triplets
    from attacks.camouflage.dtn import load_dtn
    from attacks.camouflage.dtn_fidelity import flat_fidelity, pattern_fidelity
    from attacks.camouflage.pattern_renders import render_patterns

    model, record = load_dtn(dtn)
    if data is not None:
        triplets = load_triplets(data)
    elif seed == record.data_seed and (car or record.car) == record.car:
        raise UserInputError(
            f"--seed {seed} drew this DTN's training views; held-out views need another seed"
        )
    else:
        config = DatasetConfig(
            views=views,
            colours=colours,
            size=record.size,
            spp=spp,
            seed=seed,
            car=car or record.car,
        )
        with stderr.status(f"rendering {views} held-out views × {colours + 1} paints"):
            triplets = render_triplets(config)
    scores = flat_fidelity(model, triplets)
    stdout.print(f"DTN vs renderer, held-out flat colours: {_scores_line(scores)}")
    textured = None
    if patterns:
        size, spp = triplets.config.size, triplets.config.spp
        with stderr.status(f"rendering {patterns} patterns on each of {len(triplets.views)} views"):
            pattern_renders = render_patterns(triplets.views, patterns, size, spp, seed)
        textured = pattern_fidelity(model, pattern_renders)
        stdout.print(f"DTN vs renderer, textured patterns: {_scores_line(textured)}")
    if as_json:
        print(
            json.dumps(
                {
                    **scores,
                    "patterns": textured,
                    "dtn": str(dtn),
                    "data": str(data) if data else None,
                    "views": len(triplets.views),
                    "car": triplets.config.car,
                    "seed": None if data else seed,
                }
            )
        )


def _scores_line(scores: dict[str, float | int]) -> str:
    """ "mse 0.0012, psnr 29.3, ..." for a fidelity dict."""
    return ", ".join(f"{name} {value:.4g}" for name, value in scores.items())


def _bar(label: str, field: str) -> Progress:
    """A rich bar for a counted job (views, steps), with one live field."""
    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(field),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=stderr,
    )
