"""``fedleak dta``: DTA physical camouflage — render the DTN's triplets, train and score it."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.progress import MofNCompleteColumn, Progress, TextColumn

from apps.cli.app import JsonFlag, app, stderr, stdout
from apps.progress import job_bar
from attacks.camouflage.shipped import CIFAR_DETECTOR, SHIPPED_DTN, detector_path
from fedsim.errors import UnknownNameError, UserInputError

dta_app = typer.Typer(
    name="dta",
    help="DTA physical camouflage: renderer datasets, the DTN, detectors, the attack, evaluation.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(dta_app, name="dta")

# Where the training commands write by default; attack and evaluate default to the shipped
# checkpoints (attacks/camouflage/checkpoints/).
TRAINED_DTN = Path("runs/dtn.safetensors")
TRAINED_DETECTOR = Path("runs/detector.safetensors")
T = TypeVar("T")
DetectorOption = Annotated[
    str,
    typer.Option(
        help="A shipped detector (fcos-cifar: the one the default attack targets, retinanet-cifar: "
        "transfer, both on a frozen CIFAR-10 trunk; ssdlite and fcos: a pair learnt from scratch) "
        "or a checkpoint from `fedleak dta train-detector`."
    ),
]


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
    out: Annotated[Path, typer.Option(help="Checkpoint file (.safetensors).")] = TRAINED_DTN,
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
    model, loss, wall_s = _train_with_bar(
        "train-dtn",
        steps,
        lambda progress: train_dtn(
            triplets,
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            width=width,
            seed=seed,
            device=where,
            progress=progress,
        ),
    )
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
    summary = {"checkpoint": str(out), "steps": steps, "train_loss": loss}
    _report_trained(f"DTN (car-pixel MSE {loss:.3g})", summary, wall_s, where, as_json)


@dta_app.command("evaluate-dtn")
def evaluate_dtn_command(
    dtn: Annotated[
        Path, typer.Option(help="Checkpoint from `fedleak dta train-dtn` [the shipped DTN].")
    ] = SHIPPED_DTN,
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


def _train_with_bar(
    label: str, steps: int, train: Callable[[Callable[[int, float], None]], tuple[T, float]]
) -> tuple[T, float, float]:
    """Run ``train(progress)`` under a step bar showing the loss: (model, loss, wall seconds)."""
    started = time.perf_counter()
    with _bar(label, "loss {task.fields[loss]:.3g}") as bar:
        task = bar.add_task("train", total=steps, loss=float("nan"))
        model, loss = train(lambda step, value: bar.update(task, completed=step, loss=value))
    return model, loss, time.perf_counter() - started


def _report_trained(
    what: str, summary: dict[str, object], wall_s: float, where: object, as_json: bool
) -> None:
    """The closing line of a training command and, with --json, its JSON line."""
    steps, out = summary["steps"], summary["checkpoint"]
    stdout.print(f"{what} trained {steps} steps in {wall_s:.1f} s → {out}")
    if as_json:
        print(json.dumps({**summary, "wall_s": round(wall_s, 3), "device": str(where)}))


def _scores_line(scores: dict[str, float | int]) -> str:
    """ "mse 0.0012, psnr 29.3, ..." for a fidelity dict."""
    return ", ".join(f"{name} {value:.4g}" for name, value in scores.items())


def _bar(label: str, field: str) -> Progress:
    """A rich bar for a counted job (views, steps), with one live field."""
    return job_bar(label, MofNCompleteColumn(), TextColumn(field), console=stderr)


@dta_app.command("render-detection-dataset")
def render_detection_dataset_command(
    out: Annotated[
        Path, typer.Option(help="Dataset folder: dataset.json and views/*.safetensors.")
    ],
    views: Annotated[int, typer.Option(help="Scenes, drawn from --seed.")] = 600,
    size: Annotated[int, typer.Option(help="Image side in pixels.")] = 64,
    spp: Annotated[int, typer.Option(help="Samples per pixel.")] = 8,
    seed: Annotated[int, typer.Option(help="Seed of the scenes and paints.")] = 0,
    car: Annotated[
        str, typer.Option(help="Car shape: sedan (training) or van (held out).")
    ] = "sedan",
    distractors: Annotated[
        int, typer.Option(help="Most background objects per scene (0..N, uniform).")
    ] = 3,
    paints: Annotated[
        str,
        typer.Option(
            help="patterns (random blocks and noise), flat (random colours) or solid (car paints)."
        ),
    ] = "patterns",
    as_json: JsonFlag = False,
) -> None:
    """Render detection scenes (the car in random paints and patterns among distractors) with
    the car's box from its AOV mask; a rerun resumes the scenes not done."""
    from attacks.camouflage.detection_data import DetectionConfig, render_scenes

    config = DetectionConfig(
        views=views,
        size=size,
        spp=spp,
        seed=seed,
        car=car,
        distractors=distractors,
        paints=paints,
    )
    command = shlex.join(
        ["fedleak", "dta", "render-detection-dataset", "--out", str(out), "--views", str(views)]
        + ["--size", str(size), "--spp", str(spp), "--seed", str(seed), "--car", car]
        + ["--distractors", str(distractors), "--paints", paints]
    )
    started = time.perf_counter()
    with _bar("render-detection-dataset", "scenes") as bar:
        task = bar.add_task("render", total=views)
        skipped = render_scenes(out, config, command, on_view=lambda _: bar.advance(task))
        bar.update(task, completed=views)
    wall_s = time.perf_counter() - started
    rendered = views - skipped
    stdout.print(f"{rendered} scenes rendered, {skipped} already there → {out}")
    if as_json:
        print(
            json.dumps(
                {
                    "out": str(out),
                    "views": views,
                    "rendered_views": rendered,
                    "resumed_views": skipped,
                    "wall_s": round(wall_s, 3),
                    "renders_per_s": round(rendered / wall_s, 3) if rendered else None,
                }
            )
        )


@dta_app.command("train-detector")
def train_detector_command(
    data: Annotated[
        Path, typer.Option(help="A folder made by `fedleak dta render-detection-dataset`.")
    ],
    out: Annotated[Path, typer.Option(help="Checkpoint file (.safetensors).")] = TRAINED_DETECTOR,
    arch: Annotated[
        str,
        typer.Option(
            help="ssdlite, fcos (random initialisation), fcos-cifar, retinanet-cifar (on the "
            "frozen CIFAR-10 trunk) or fasterrcnn."
        ),
    ] = "ssdlite",
    steps: Annotated[
        int, typer.Option(min=0, help="Adam steps (cosine-decayed); 0 only wraps --weights.")
    ] = 1_500,
    batch_size: Annotated[int, typer.Option(min=1, help="Scenes per step.")] = 16,
    lr: Annotated[float, typer.Option(min=0.0, help="Adam's initial learning rate.")] = 1e-3,
    weights: Annotated[
        Path | None,
        typer.Option(help="Start from these torchvision COCO weights (.pth on disk; car = 3)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the weights and batches.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    as_json: JsonFlag = False,
) -> None:
    """Train a car detector from random initialisation (or from COCO weights on disk) and write
    it with the command and seed that made it."""
    from attacks.camouflage.detection_data import load_scenes
    from attacks.camouflage.detector import (
        CAR_LABEL,
        COCO_CAR_LABEL,
        COCO_CLASSES,
        DetectorRecord,
        build_detector,
        load_coco_weights,
        save_detector,
        train_detector,
    )
    from fedsim.device import resolve_device
    from fedsim.provenance import provenance

    where = resolve_device(device)
    scenes = load_scenes(data)
    num_classes, car_label = (COCO_CLASSES, COCO_CAR_LABEL) if weights else (2, CAR_LABEL)
    model = build_detector(arch, scenes.config.size, num_classes, seed)
    if weights:
        load_coco_weights(model, weights)
    elif steps == 0:
        raise UserInputError("--steps 0 keeps the weights as they start: give --weights")
    model, loss, wall_s = _train_with_bar(
        "train-detector",
        steps,
        lambda progress: train_detector(
            model,
            scenes,
            car_label=car_label,
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            device=where,
            progress=progress,
        ),
    )
    command = shlex.join(
        ["fedleak", "dta", "train-detector", "--data", str(data), "--out", str(out)]
        + ["--arch", arch, "--steps", str(steps), "--batch-size", str(batch_size)]
        + ["--lr", str(lr), "--seed", str(seed), "--device", device]
        + (["--weights", str(weights)] if weights else [])
    )
    record = DetectorRecord(
        arch=arch,
        size=scenes.config.size,
        num_classes=num_classes,
        car_label=car_label,
        weights=str(weights or ""),
        data_seed=scenes.config.seed,
        steps=steps,
        seed=seed,
        command=command,
        train_loss=loss,
    )
    save_detector(out, model, record, provenance(seed, where))
    summary = {"checkpoint": str(out), "arch": arch, "steps": steps}
    summary["train_loss"] = None if steps == 0 else loss
    _report_trained(f"{arch} (loss {loss:.3g})", summary, wall_s, where, as_json)


@dta_app.command("attack")
def attack_command(
    out: Annotated[Path, typer.Option(help="Folder for the pattern, loss curve and renders.")],
    steps: Annotated[int, typer.Option(min=1, help="Adam steps on the pattern.")] = 1500,
    dtn: Annotated[
        Path, typer.Option(help="Checkpoint from `fedleak dta train-dtn` [the shipped DTN].")
    ] = SHIPPED_DTN,
    detector: DetectorOption = CIFAR_DETECTOR,
    views: Annotated[int, typer.Option(min=1, help="Training views the loss averages.")] = 1536,
    batch_size: Annotated[int, typer.Option(min=1, help="Views (with fresh jitter) per step.")] = 8,
    lr: Annotated[float, typer.Option(min=0.0, help="Adam's learning rate on the logits.")] = 0.1,
    spp: Annotated[int, typer.Option(help="Samples per pixel of the training views.")] = 8,
    seed: Annotated[int, typer.Option(help="Seed of the views, jitter and start pattern.")] = 0,
    car: Annotated[str, typer.Option(help="Car of the training views.")] = "sedan",
    tile_m: Annotated[
        float,
        typer.Option(
            help="Metres of car surface one repeat of the pattern covers (the renderer tiles "
            "textures every 2 m)."
        ),
    ] = 4.5,
    projection: Annotated[
        str,
        typer.Option(
            help="surface (at the renderer's texture coordinates) or plane (DTA's jittered tiling)."
        ),
    ] = "surface",
    side: Annotated[
        int, typer.Option(help="Texels per side of the square pattern (DTA: 16), 2..512.")
    ] = 128,
    refine_every: Annotated[
        int,
        typer.Option(
            min=0,
            help="Every N steps render the pattern in Mitsuba and refine the DTN on it (0: off).",
        ),
    ] = 0,
    refine_views: Annotated[int, typer.Option(min=1, help="Views rendered per refresh.")] = 8,
    refine_steps: Annotated[int, typer.Option(min=1, help="DTN Adam steps per refresh.")] = 20,
    refine_lr: Annotated[float, typer.Option(help="The DTN's learning rate in refreshes.")] = 1e-4,
    workers: Annotated[
        int, typer.Option(min=1, help="Processes rendering the training views (2: both cores).")
    ] = 2,
    as_json: JsonFlag = False,
) -> None:
    """Optimise a square camouflage pattern through the DTN against the detector's car scores;
    with no options, the recipe of the shipped dta-cifar pattern (128×128 texels over 4.5 m of the
    car, 1,536 views, 1,500 steps, against fcos-cifar); with --refine-every, the DTN keeps
    learning the renderer's renders of the pattern as it changes (written beside it as
    dtn-refined.safetensors)."""
    import torch

    from attacks.camouflage.attack import PROJECTIONS, camouflage, render_attack_scenes
    from attacks.camouflage.detector import load_detector
    from attacks.camouflage.dtn import load_dtn, save_dtn
    from attacks.camouflage.dtn_refinement import DTNRefiner, Refinement
    from attacks.camouflage.figures import plot_curves, save_renders
    from attacks.camouflage.pattern_file import SIDES, save_pattern
    from attacks.camouflage.renderer import sample_scene_views
    from fedsim.provenance import provenance
    from fedsim.storage import write_json

    if projection not in PROJECTIONS:
        raise UnknownNameError("projection", projection, PROJECTIONS)
    if tile_m <= 0:
        raise UserInputError(f"--tile-m must be positive metres, got {tile_m}")
    if not SIDES[0] <= side <= SIDES[1]:
        raise UserInputError(f"--side must be in {SIDES[0]}..{SIDES[1]} texels, got {side}")
    # Checked before the training views are rendered: a bad setting fails at once.
    refinement = (
        Refinement(refine_every, refine_views, refine_steps, lr=refine_lr, spp=spp)
        if refine_every
        else None
    )
    dtn_model, dtn_record = load_dtn(dtn)
    detector_model, detector_record = load_detector(detector_path(detector))
    training_views = sample_scene_views(views, seed, car)
    started = time.perf_counter()
    with stderr.status(f"rendering {views} training views"):
        scenes = render_attack_scenes(training_views, dtn_record.size, spp, tile_m, workers)
    render_s = time.perf_counter() - started
    refiner = DTNRefiner(dtn_model, scenes, refinement, seed) if refinement else None
    with _bar("attack", "car score {task.fields[loss]:.3g}") as bar:
        task = bar.add_task("attack", total=steps, loss=float("nan"))
        result = camouflage(
            scenes,
            dtn_model,
            detector_model,
            car_label=detector_record.car_label,
            steps=steps,
            lr=lr,
            batch_size=batch_size,
            projection=projection,
            seed=seed,
            side=side,
            progress=lambda step, value: bar.update(task, completed=step, loss=value),
            refine=refiner,
        )
    wall_s = time.perf_counter() - started
    command = shlex.join(
        ["fedleak", "dta", "attack", "--out", str(out), "--steps", str(steps), "--dtn", str(dtn)]
        + ["--detector", str(detector), "--views", str(views), "--batch-size", str(batch_size)]
        + ["--lr", str(lr), "--spp", str(spp), "--seed", str(seed), "--car", car]
        + ["--tile-m", str(tile_m), "--projection", projection, "--side", str(side)]
        + (
            ["--refine-every", str(refine_every), "--refine-views", str(refine_views)]
            + ["--refine-steps", str(refine_steps), "--refine-lr", str(refine_lr)]
            if refiner
            else []
        )
    )
    last = max(1, steps // 10)
    summary = {
        "loss": sum(result.losses[-last:]) / last,
        "car_score": sum(result.scores[-last:]) / last,
        "initial_loss": result.losses[0],
        "initial_car_score": result.scores[0],
        "steps": steps,
        "wall_s": round(wall_s, 3),
        "render_s": round(render_s, 3),  # of wall_s, rendering the training views
        "view_seed": seed,
        "views": views,
        "car": car,
        "tile_m": tile_m,
        "projection": projection,
        "side": side,
        "dtn": str(dtn),
        "detector": str(detector),
        "command": command,
    }
    if refiner:
        refined = out / "dtn-refined.safetensors"
        record = replace(dtn_record, command=f"{dtn_record.command}, refined by: {command}")
        save_dtn(refined, dtn_model, record, provenance(seed, torch.device("cpu")))
        # The DTN's car-pixel MSE on each refresh's fresh renders before it learnt them.
        summary |= {"dtn_refined": str(refined), "refine_errors": refiner.errors}
    texture = save_pattern(out / "pattern", result.pattern, summary)
    write_json(out / "loss.json", {"losses": result.losses, "scores": result.scores, **summary})
    plot_curves(out / "loss.png", result.losses, result.scores)
    save_renders(out / "renders.png", result.pattern, scenes, dtn_model, spp, projection)
    write_json(
        out / "attack.json", {**summary, "provenance": provenance(seed, torch.device("cpu"))}
    )
    stdout.print(
        f"pattern after {steps} steps in {wall_s:.1f} s: mean highest car score "
        f"{summary['initial_car_score']:.3g} → {summary['car_score']:.3g} → {texture}"
    )
    if as_json:
        print(json.dumps({"texture": str(texture), **summary}))


@dta_app.command("evaluate")
def evaluate_command(
    texture: Annotated[
        str,
        typer.Option(
            help="normal (the reference paint), random, dta / dta-cifar (the patterns shipped "
            "against ssdlite / fcos-cifar) or a file."
        ),
    ] = "normal",
    views: Annotated[int, typer.Option(help="Held-out views rendered in Mitsuba.")] = 32,
    seed: Annotated[int, typer.Option(help="Seed of the held-out views (and random's noise).")] = 1,
    detector: DetectorOption = CIFAR_DETECTOR,
    dtn: Annotated[
        Path, typer.Option(help="DTN for ap50_through_dtn [the shipped DTN].")
    ] = SHIPPED_DTN,
    car: Annotated[str, typer.Option(help="sedan (training car) or van (held out).")] = "sedan",
    spp: Annotated[int, typer.Option(help="Samples per pixel.")] = 8,
    distractors: Annotated[int, typer.Option(help="Most background objects per view.")] = 3,
    tile_m: Annotated[
        float | None,
        typer.Option(
            help="Metres of car surface one pattern repeat covers [the pattern's, else renderer's]."
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="Processes rendering the pipeline's reference views.")
    ] = 2,
    training_views: Annotated[
        bool,
        typer.Option(
            "--training-views",
            help="Score a pattern file on its attack's own training views instead (not held "
            "out): how far the renderer follows the pipeline where the attack optimised.",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Render the texture in Mitsuba on held-out views and score the detector on it (AP@0.5,
    confidence, attack success), beside the same views through the DTN pipeline."""
    from attacks.camouflage.detector import load_detector
    from attacks.camouflage.dtn import load_dtn
    from attacks.camouflage.evaluation import evaluate_texture
    from attacks.camouflage.pattern_file import resolve_texture, texture_file
    from attacks.camouflage.renderer import TILE_SIZE_M, sample_scene_views
    from fedsim.storage import load_metadata

    if views <= 0:
        raise UserInputError(f"views must be positive, got {views}")
    pattern = resolve_texture(texture, seed)
    path = texture_file(texture)
    made = load_metadata(path) if path is not None and path.suffix == ".safetensors" else {}
    tile_m = tile_m or made.get("tile_m") or TILE_SIZE_M
    model, record = load_detector(detector_path(detector))
    if training_views:
        if "views" not in made:
            raise UserInputError(
                f"--training-views needs a pattern file written by `fedleak dta attack`; "
                f"{texture!r} records no training views"
            )
        views, seed, car = made["views"], made["view_seed"], made["car"]
    elif car == "sedan" and seed == record.data_seed:
        raise UserInputError(
            f"--seed {seed} drew this detector's training scenes; held-out views need another seed"
        )
    elif made.get("view_seed") == seed and made.get("car") == car:
        raise UserInputError(
            f"--seed {seed} drew this pattern's training views; held-out views need another"
        )
    kind = "training" if training_views else "held-out"
    dtn_model, _ = load_dtn(dtn)
    chosen = sample_scene_views(views, seed, car, distractors)
    with stderr.status(f"rendering and detecting {views} {kind} views"):
        judged = evaluate_texture(
            model,
            record.car_label,
            chosen,
            pattern,
            size=record.size,
            spp=spp,
            tile_m=tile_m,
            dtn=dtn_model,
            projection=made.get("projection", "surface"),
            workers=workers,
        )
    scores = {**judged.scores, "renders_per_s": round(views / judged.render_s, 3)}
    through = scores["ap50_through_dtn"]
    stdout.print(
        f"{texture} on {views} {kind} {car} views: AP@0.5 {scores['ap50']:.3f} in the renderer"
        + f", {through:.3f} through the DTN"
        + f"; mean confidence {scores['mean_confidence']:.3f}, success {scores['success_rate']:.2f}"
    )
    if as_json:
        print(
            json.dumps(
                {
                    **scores,
                    "texture": texture,
                    "detector": str(detector),
                    "arch": record.arch,
                    "car": car,
                    "seed": seed,
                    "held_out": not training_views,
                    "tile_m": tile_m,
                    "dtn": str(dtn),
                }
            )
        )
