"""``fedleak attack``: on dataset images (FedSGD) or on a captured update of a run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from apps.cli.app import JsonFlag, app, default_out, fmt, stderr, stdout
from fedsim.errors import FedleakError


def _parse_indices(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise FedleakError(
            f"invalid --index {text!r}; valid: comma-separated non-negative integers, e.g. 3,7"
        ) from None


_DATASET_MODE_DEFAULTS = {
    "dataset": "cifar10",
    "split": "test",
    "index": "0",
    "model": "convnet64",
    "dropout": 0.0,
    "train_mode": False,
    "weights": None,
    "image_folder": None,
}


@app.command()
def attack(
    dataset: Annotated[str | None, typer.Option(help="Dataset [cifar10].")] = None,
    split: Annotated[str | None, typer.Option(help="train or test [test].")] = None,
    index: Annotated[str | None, typer.Option(help="Comma-separated batch indices [0].")] = None,
    model: Annotated[str | None, typer.Option(help="Model (`fedleak models`) [convnet64].")] = None,
    dropout: Annotated[float | None, typer.Option(help="Dropout rate [0].")] = None,
    train_mode: Annotated[
        bool | None, typer.Option("--train-mode", help="Client computes in train mode.")
    ] = None,
    weights: Annotated[
        Path | None,
        typer.Option(help="Attack a trained model: a `fedleak simulate` run's final weights."),
    ] = None,
    image_folder: Annotated[
        Path | None, typer.Option(help="Image folder <root>/<class>/<file>, tried last.")
    ] = None,
    run: Annotated[Path | None, typer.Option(help="A `fedleak simulate` run folder.")] = None,
    round_: Annotated[int | None, typer.Option("--round", help="Round of --run.")] = None,
    client: Annotated[int | None, typer.Option(help="Client of --run.")] = None,
    aggregate: Annotated[
        bool, typer.Option("--aggregate", help="Attack --run's secure aggregate of --round.")
    ] = False,
    assume_fedsgd: Annotated[
        bool, typer.Option(help="Treat a multi-step update as one gradient (naive view).")
    ] = False,
    adaptive: Annotated[
        bool,
        typer.Option(
            "--adaptive",
            help="Replay the recorded defenses' known parts (clip, prune, ...); under recorded "
            "noise, GIFD stops descending stages at the noise floor.",
        ),
    ] = False,
    attack_name: Annotated[str, typer.Option("--attack", help="Attack preset.")] = "ig-fast",
    generator: Annotated[
        Path | None, typer.Option(help="Generator checkpoint for gifd, gifd-pixels, gan-latent.")
    ] = None,
    iterations: Annotated[int | None, typer.Option(help="Optimisation steps.")] = None,
    time_budget: Annotated[float | None, typer.Option(help="Stop after SECONDS.")] = None,
    restarts: Annotated[int | None, typer.Option(help="Restarts, run as one batch.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for model weights and the attack.")] = 0,
    defense: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME[:k=v,...] on the client's gradient, repeatable (`fedleak defenses`)."
        ),
    ] = None,
    labels: Annotated[
        str | None, typer.Option(help="given (threat model grants them), idlg or estimate.")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    out: Annotated[Path | None, typer.Option(help="Run folder (default runs/attack-TIME).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Attack a client's update: of dataset images (FedSGD), or captured in a --run."""
    from apps.attack_run import AttackRequest, CaptureAttackRequest

    settings = {
        "attack": attack_name,
        "iterations": iterations,
        "time_budget_s": time_budget,
        "restarts": restarts,
        "seed": seed,
        "labels": labels,
        "assume_fedsgd": assume_fedsgd,
        "adaptive": adaptive,
        "generator": generator,
        "defenses": tuple(defense or ()),
        "device": device,
    }
    dataset_options = {
        "dataset": dataset,
        "split": split,
        "index": index,
        "model": model,
        "dropout": dropout,
        "train_mode": train_mode,
        "weights": weights,
        "image_folder": image_folder,
    }
    if run is not None:
        given = [f"--{k.replace('_', '-')}" for k, v in dataset_options.items() if v is not None]
        if given:
            verb = "does" if len(given) == 1 else "do"
            raise FedleakError(
                f"{', '.join(given)} {verb} not apply with --run (the capture sets it)"
            )
        if round_ is None or (client is None) == (not aggregate):
            raise FedleakError("--run needs --round R and either --client C or --aggregate")
        target = "aggregate" if aggregate else f"client-{client:03d}"
        out = out or run / "attacks" / f"round-{round_:03d}-{target}-{attack_name}"
        request = CaptureAttackRequest(run=run, round=round_, client=client, out=out, **settings)
    else:
        if round_ is not None or client is not None or aggregate:
            raise FedleakError("--round, --client and --aggregate apply only with --run DIR")
        chosen = {
            k: v if v is not None else _DATASET_MODE_DEFAULTS[k] for k, v in dataset_options.items()
        }
        request = AttackRequest(
            indices=_parse_indices(chosen.pop("index")),
            out=out or default_out("attack"),
            **chosen,
            **settings,
        )
    run_and_report(request, as_json)


def notice(message: str) -> None:
    """One line to stderr, unwrapped."""
    stderr.print(message, soft_wrap=True, markup=False)


def run_and_report(request: object, as_json: bool) -> None:
    """Run an attack request with a progress bar; print its table and, with --json, a line."""
    from apps.attack_run import CaptureAttackRequest, run_attack, run_capture_attack
    from apps.progress import attack_progress

    with attack_progress(stderr) as progress:
        if isinstance(request, CaptureAttackRequest):
            metrics = run_capture_attack(request, progress=progress)
        else:
            metrics = run_attack(request, progress=progress, notice=notice)
    summary = {
        key: metrics[key]
        for key in ("psnr", "ssim", "lpips", "st_lpips", "label_accuracy", "wall_s", "iterations")
    }
    summary["lpips_unavailable"] = metrics["lpips_unavailable"]
    summary["out"] = str(request.out)
    table = Table(title=f"reconstruction → {request.out}", show_header=False)
    for key, value in summary.items():
        table.add_row(key, fmt(value))
    (stderr if as_json else stdout).print(table)
    if as_json:
        print(json.dumps(summary, allow_nan=False))
