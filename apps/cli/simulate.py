"""``fedleak simulate``: a Flower simulation with a round bar."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from apps.cli.app import JsonFlag, app, default_out, fmt, stderr, stdout

if TYPE_CHECKING:
    from fedsim.flower.simulation import SimulationConfig


@app.command()
def simulate(
    dataset: Annotated[str, typer.Option(help="Dataset (see `fedleak datasets`).")] = "cifar10",
    model: Annotated[str, typer.Option(help="Model name (see `fedleak models`).")] = "lenet",
    clients: Annotated[int, typer.Option(help="Simulated clients, one partition each.")] = 8,
    rounds: Annotated[int, typer.Option(help="FedAvg rounds.")] = 3,
    local_steps: Annotated[int, typer.Option(help="SGD steps per client and round.")] = 1,
    local_epochs: Annotated[
        int, typer.Option(help="Passes over the partition per round, instead of steps.")
    ] = 0,
    batch_size: Annotated[int, typer.Option(help="Images per local step.")] = 4,
    lr: Annotated[float, typer.Option(help="Client learning rate.")] = 0.1,
    optimizer: Annotated[str, typer.Option(help="Client optimiser: sgd or adam.")] = "sgd",
    momentum: Annotated[float, typer.Option(help="Client SGD momentum.")] = 0.0,
    weight_decay: Annotated[float, typer.Option(help="Client weight decay (L2).")] = 0.0,
    partition: Annotated[
        str, typer.Option(help="iid, dirichlet:ALPHA (e.g. dirichlet:0.5) or shards:K.")
    ] = "iid",
    dropout: Annotated[float, typer.Option(help="Dropout rate on models with dropout.")] = 0.0,
    train_mode: Annotated[bool, typer.Option(help="Clients train in train mode.")] = True,
    test_images: Annotated[int, typer.Option(help="Test images for global accuracy.")] = 500,
    seed: Annotated[int, typer.Option(help="Seed for weights, partitions and batches.")] = 0,
    defense: Annotated[
        list[str] | None,
        typer.Option(help="NAME[:k=v,...], repeatable, in order (see `fedleak defenses`)."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (default runs/simulate-…).")] = None,
    initial_weights: Annotated[
        Path | None,
        typer.Option(
            help="Start from a trained global model: another run's final_weights.safetensors "
            "or its folder (default: a fresh model seeded by --seed)."
        ),
    ] = None,
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
        local_epochs=local_epochs,
        batch_size=batch_size,
        lr=lr,
        optimizer=optimizer,
        momentum=momentum,
        weight_decay=weight_decay,
        partition=partition,
        dropout=dropout,
        train_mode=train_mode,
        test_images=test_images,
        seed=seed,
        defenses=tuple(defense or ()),
        out_dir=out or default_out("simulate"),
        initial_weights=initial_weights,
    )
    result = simulate_with_bar(config, as_json)
    if as_json:
        print(json.dumps(result, allow_nan=False))


def simulate_with_bar(config: SimulationConfig, as_json: bool) -> dict:
    """Run the simulation with a round bar, print its summary, return the JSON summary."""
    import logging

    from defenses.flower_run import defend_run
    from fedsim.flower.simulation import check_run, run_simulation

    # Bad defenses, a batch larger than a partition and unfit initial weights fail here,
    # before Ray starts.
    defended, _ = defend_run(config)
    if defended.dp_compatible and not config.dp_compatible:
        (stderr if as_json else stdout).print(
            f"{config.model}: BatchNorm replaced by GroupNorm (Opacus ModuleValidator.fix) for "
            "the DP defenses, in the clients', the server's and attacks' models",
            soft_wrap=True,
        )
    check_run(config)
    # Flower logs every round at INFO and warns that run_simulation is deprecated; the bar
    # below says the same in one line.
    logging.getLogger("flwr").setLevel(logging.ERROR)
    with _round_progress(config.rounds) as on_round:
        summary = run_simulation(config, on_round=on_round, defend=defend_run)
    result = {key: summary.to_json()[key] for key in _SIMULATE_KEYS}
    table = Table(title=f"simulation → {summary.run_dir}", show_header=False)
    for key, value in {**result, "wall_s": summary.wall_s}.items():
        table.add_row(key, fmt(value))
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
