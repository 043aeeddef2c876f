"""``fedleak generator-ceiling``: the best GIFD could ever do with a generator, stage by stage."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Annotated

import typer

from apps.cli.app import JsonFlag, app, stderr
from apps.cli.train_generator import parse_classes
from fedsim.errors import FedleakError


@app.command("generator-ceiling")
def generator_ceiling_command(
    dataset: Annotated[str, typer.Option(help="Dataset whose test images are fitted.")] = "cifar10",
    generator: Annotated[
        Path | None,
        typer.Option(help="Generator checkpoint or BigGAN folder (default: the shipped one)."),
    ] = None,
    images: Annotated[int, typer.Option(min=1, help="Held-out test images fitted.")] = 8,
    classes: Annotated[
        str | None, typer.Option(help="Only test images of these classes: 5-9 or 0,2,5.")
    ] = None,
    steps: Annotated[int, typer.Option(min=1, help="Adam steps per stage.")] = 500,
    radius: Annotated[
        float, typer.Option(help="l1 radius of later stages, relative to their start map (> 0).")
    ] = 0.5,
    restarts: Annotated[int, typer.Option(min=1, help="Random starts per image.")] = 4,
    seed: Annotated[int, typer.Option(help="Seed of the image draw and the starts.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Fit each stage's input to held-out images by pixel loss (an oracle) and print the PSNR
    per stage: no gradient inversion can beat what its stage can express."""
    from rich.progress import TextColumn

    from apps.bench.images import image_indices
    from apps.progress import job_bar
    from attacks.generators import generator_for, shipped_generator_path
    from attacks.generators.ceiling import fit_stages
    from fedsim.data import load_dataset

    if radius <= 0:
        raise FedleakError(f"invalid --radius {radius}; valid: a number > 0")
    data = load_dataset(dataset, "test")
    chosen = parse_classes(classes)
    unknown = sorted(set(chosen) - set(range(data.spec.num_classes)))
    if unknown:
        raise FedleakError(
            f"--classes {unknown} not in {dataset}; valid: 0..{data.spec.num_classes - 1}"
        )
    model, _ = generator_for(dataset, data.spec.image_shape, generator)
    indices = image_indices(dataset, images, seed, classes=chosen or None)
    targets, labels = data.images(indices)
    started = time.perf_counter()
    with job_bar("ceiling", TextColumn("{task.percentage:>3.0f}%"), console=stderr) as bar:
        task = bar.add_task("ceiling", total=1.0)
        fits = fit_stages(
            model,
            targets,
            labels,
            steps=steps,
            radius=radius,
            restarts=restarts,
            seed=seed,
            progress=lambda done: bar.update(task, completed=done),
        )
    stages = [
        {"stage": fit.stage, "median_psnr": statistics.median(fit.psnr), "psnr": list(fit.psnr)}
        for fit in fits
    ]
    for row in stages:
        stderr.print(f"stage {row['stage']}: median PSNR {row['median_psnr']:.1f} dB")
    summary = {
        "generator": str(generator or shipped_generator_path(dataset)),
        "conditional": bool(getattr(model, "conditional", False)),
        "dataset": dataset,
        "images": indices,
        "labels": labels.tolist(),
        "steps": steps,
        "radius": radius,
        "restarts": restarts,
        "stages": stages,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    if as_json:
        print(json.dumps(summary))
