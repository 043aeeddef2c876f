"""The ``fedleak`` command line: commands named by the user's verb, one-line errors, ``--json``."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import click
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from fedsim.errors import FedleakError

if TYPE_CHECKING:
    from fedsim.flower.simulation import SimulationConfig

app = typer.Typer(
    name="fedleak",
    help="What can a server reconstruct of a client's data from federated learning updates?",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
stdout = Console()
stderr = Console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON line last, for machines.")]


def _default_out(kind: str) -> Path:
    return Path("runs") / f"{kind}-{datetime.now():%Y%m%d-%H%M%S}"


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
    image_folder: Annotated[
        Path | None, typer.Option(help="Image folder <root>/<class>/<file>, tried last.")
    ] = None,
    run: Annotated[Path | None, typer.Option(help="A `fedleak simulate` run folder.")] = None,
    round_: Annotated[int | None, typer.Option("--round", help="Round of --run.")] = None,
    client: Annotated[int | None, typer.Option(help="Client of --run.")] = None,
    assume_fedsgd: Annotated[
        bool, typer.Option(help="Treat a multi-step update as one gradient (naive view).")
    ] = False,
    attack_name: Annotated[str, typer.Option("--attack", help="Attack preset.")] = "ig-fast",
    iterations: Annotated[int | None, typer.Option(help="Optimisation steps.")] = None,
    time_budget: Annotated[float | None, typer.Option(help="Stop after SECONDS.")] = None,
    restarts: Annotated[int | None, typer.Option(help="Restarts, run as one batch.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for model weights and the attack.")] = 0,
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
        "device": device,
    }
    dataset_options = {
        "dataset": dataset,
        "split": split,
        "index": index,
        "model": model,
        "dropout": dropout,
        "train_mode": train_mode,
        "image_folder": image_folder,
    }
    if run is not None:
        given = [f"--{k.replace('_', '-')}" for k, v in dataset_options.items() if v is not None]
        if given:
            verb = "does" if len(given) == 1 else "do"
            raise FedleakError(
                f"{', '.join(given)} {verb} not apply with --run (the capture sets it)"
            )
        if round_ is None or client is None:
            raise FedleakError("--run needs --round R and --client C")
        out = out or run / "attacks" / f"round-{round_:03d}-client-{client:03d}-{attack_name}"
        request = CaptureAttackRequest(run=run, round=round_, client=client, out=out, **settings)
    else:
        if round_ is not None or client is not None:
            raise FedleakError("--round and --client apply only with --run DIR")
        chosen = {
            k: v if v is not None else _DATASET_MODE_DEFAULTS[k] for k, v in dataset_options.items()
        }
        request = AttackRequest(
            indices=_parse_indices(chosen.pop("index")),
            out=out or _default_out("attack"),
            **chosen,
            **settings,
        )
    _run_and_report(request, as_json)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Demo folder.")] = Path("runs/demo"),
    as_json: JsonFlag = False,
) -> None:
    """The main job end to end: a short Flower run, an attack on a captured update, a report."""
    from apps.attack_run import CaptureAttackRequest
    from fedsim.flower.simulation import SimulationConfig

    config = SimulationConfig(
        dataset="cifar10",
        model="resnet18",
        clients=4,
        rounds=2,
        local_steps=1,
        batch_size=2,
        lr=0.1,
        # Eval-mode clients: BatchNorm on running statistics. Train-mode BatchNorm (batch
        # statistics) currently defeats the attack; see README, "Known limits".
        train_mode=False,
        allow_embedded=True,
        out_dir=out / "simulation",
    )
    source = config.train_data().source
    if source.startswith("embedded"):
        _notice(f"no cifar10 data found locally or online; using {source}")
    _simulate(config, as_json=True)
    request = CaptureAttackRequest(
        run=config.out_dir, round=1, client=0, attack="ig-fast", out=out / "attack"
    )
    _run_and_report(request, as_json)


def _notice(message: str) -> None:
    stderr.print(message, soft_wrap=True, markup=False)


def _run_and_report(request: object, as_json: bool) -> None:
    from apps.attack_run import CaptureAttackRequest, run_attack, run_capture_attack
    from apps.progress import attack_progress

    with attack_progress(stderr) as progress:
        if isinstance(request, CaptureAttackRequest):
            metrics = run_capture_attack(request, progress=progress)
        else:
            metrics = run_attack(request, progress=progress, notice=_notice)
    summary = {
        key: metrics[key]
        for key in ("psnr", "ssim", "lpips", "st_lpips", "label_accuracy", "wall_s", "iterations")
    }
    summary["lpips_unavailable"] = metrics["lpips_unavailable"]
    summary["out"] = str(request.out)
    table = Table(title=f"reconstruction → {request.out}", show_header=False)
    for key, value in summary.items():
        table.add_row(key, _fmt(value))
    (stderr if as_json else stdout).print(table)
    if as_json:
        print(json.dumps(summary, allow_nan=False))


@app.command()
def simulate(
    dataset: Annotated[str, typer.Option(help="Dataset (see `fedleak datasets`).")] = "cifar10",
    model: Annotated[str, typer.Option(help="Model name (see `fedleak models`).")] = "lenet",
    clients: Annotated[int, typer.Option(help="Simulated clients, one partition each.")] = 8,
    rounds: Annotated[int, typer.Option(help="FedAvg rounds.")] = 3,
    local_steps: Annotated[int, typer.Option(help="SGD steps per client and round.")] = 1,
    batch_size: Annotated[int, typer.Option(help="Images per local step.")] = 4,
    lr: Annotated[float, typer.Option(help="Client learning rate (plain SGD).")] = 0.1,
    partition: Annotated[
        str, typer.Option(help="iid, dirichlet:ALPHA (e.g. dirichlet:0.5) or shards:K.")
    ] = "iid",
    dropout: Annotated[float, typer.Option(help="Dropout rate on models with dropout.")] = 0.0,
    train_mode: Annotated[bool, typer.Option(help="Clients train in train mode.")] = True,
    test_images: Annotated[int, typer.Option(help="Test images for global accuracy.")] = 500,
    seed: Annotated[int, typer.Option(help="Seed for weights, partitions and batches.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Run folder (default runs/simulate-…).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Train on Flower's simulation engine and capture every client update and its batch."""
    from fedsim.flower.simulation import SimulationConfig

    config = SimulationConfig(
        dataset=dataset,
        model=model,
        clients=clients,
        rounds=rounds,
        local_steps=local_steps,
        batch_size=batch_size,
        lr=lr,
        partition=partition,
        dropout=dropout,
        train_mode=train_mode,
        test_images=test_images,
        seed=seed,
        out_dir=out or _default_out("simulate"),
    )
    result = _simulate(config, as_json)
    if as_json:
        print(json.dumps(result, allow_nan=False))


def _simulate(config: SimulationConfig, as_json: bool) -> dict:
    """Run the simulation with a round bar, print its summary, return the JSON summary."""
    import logging

    from fedsim.flower.simulation import check_partitions, run_simulation

    check_partitions(config)  # a batch larger than a partition fails here, before Ray starts
    # Flower logs every round at INFO and warns that run_simulation is deprecated; the bar
    # below says the same in one line.
    logging.getLogger("flwr").setLevel(logging.ERROR)
    with _round_progress(config.rounds) as on_round:
        summary = run_simulation(config, on_round=on_round)
    result = {key: summary.to_json()[key] for key in _SIMULATE_KEYS}
    table = Table(title=f"simulation → {summary.run_dir}", show_header=False)
    for key, value in {**result, "wall_s": summary.wall_s}.items():
        table.add_row(key, _fmt(value))
    (stderr if as_json else stdout).print(table)
    return result


_SIMULATE_KEYS = ("run_dir", "rounds", "clients", "observations", "accuracy")


@contextmanager
def _round_progress(rounds: int) -> Iterator[Callable[[int, float], None]]:
    """A bar over the rounds; the callback runs in Flower's server thread after each round."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("[bold]simulate"),
        BarColumn(),
        TextColumn("{task.fields[phase]}"),
        TextColumn("accuracy {task.fields[accuracy]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=stderr) as bar:
        # Ray's start-up and the first round show as one phase: no event marks their border.
        task = bar.add_task("simulate", total=rounds, phase="starting, round 1", accuracy="–")

        def advance(server_round: int, accuracy: float) -> None:
            phase = f"round {server_round}/{rounds}"
            bar.update(task, completed=server_round, phase=phase, accuracy=f"{accuracy:.3f}")

        yield advance


@app.command()
def models(
    dataset: Annotated[str, typer.Option(help="Dataset whose image shape to use.")] = "cifar10",
    as_json: JsonFlag = False,
) -> None:
    """List the registered models with their parameter counts on a dataset."""
    from fedsim.data import get_dataset_spec
    from fedsim.models import ModelSpec, build_model, count_parameters, model_names

    spec = get_dataset_spec(dataset)
    counts = {
        name: {
            "parameters": count_parameters(
                build_model(ModelSpec(name, spec.num_classes, spec.image_shape))
            )
        }
        for name in model_names()
    }
    _listing(f"models on {dataset} {spec.image_shape}", counts, as_json)


@app.command(name="attacks")
def list_attacks(as_json: JsonFlag = False) -> None:
    """List the attack presets."""
    from attacks import ATTACK_DESCRIPTIONS, PRESETS

    rows = {
        name: {"description": ATTACK_DESCRIPTIONS[name], **cfg.model_dump(exclude={"name"})}
        for name, cfg in PRESETS.items()
    }
    shown = ("description", "objective", "optimizer", "iterations", "label_strategy")
    _listing("attacks", rows, as_json, columns=shown)


@app.command()
def datasets(as_json: JsonFlag = False) -> None:
    """List the named datasets and where each is resolved from."""
    from fedsim.data import dataset_names, get_dataset_spec

    rows = {}
    for name in dataset_names():
        spec = get_dataset_spec(name)
        rows[name] = {
            "hf_id": spec.hf_id,
            "image_shape": list(spec.image_shape),
            "num_classes": spec.num_classes,
            "mean": list(spec.mean),
            "std": list(spec.std),
        }
    _listing("datasets", rows, as_json)


def _listing(
    title: str, rows: dict[str, dict], as_json: bool, columns: tuple[str, ...] = ()
) -> None:
    if as_json:
        print(json.dumps(rows))
        return
    columns = columns or tuple(next(iter(rows.values())))
    table = Table(title=title)
    table.add_column("name")
    for column in columns:
        table.add_column(column)
    for name, row in rows.items():
        table.add_row(name, *(_fmt(row[c]) for c in columns))
    stdout.print(table)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app and turn user mistakes into one line and exit code 2."""
    try:
        app(args=argv, prog_name="fedleak", standalone_mode=False)
    except click.exceptions.Abort:
        stderr.print("aborted")
        sys.exit(130)
    except click.ClickException as error:
        _fail(error.format_message())
    except FedleakError as error:
        _fail(str(error))
    except ValidationError as error:
        _fail(_validation_line(error))


def _validation_line(error: ValidationError) -> str:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "value"
    return f"invalid {field} {first.get('input')!r}: {first['msg']}"


def _fail(message: str) -> None:
    print(f"fedleak: error: {message}", file=sys.stderr)
    sys.exit(2)
