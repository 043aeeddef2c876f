"""``fedleak models``, ``attacks``, ``datasets``, ``defenses``: what the registries hold."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from apps.cli.app import JsonFlag, app, fmt, stdout
from fedsim.errors import UserInputError

if TYPE_CHECKING:
    from fedsim.models import ModelSpec


@app.command()
def models(
    dataset: Annotated[str, typer.Option(help="Dataset whose image shape to use.")] = "cifar10",
    as_json: JsonFlag = False,
) -> None:
    """List the registered models with their parameter counts on a dataset."""
    from fedsim.data import get_dataset_spec
    from fedsim.models import ModelSpec, model_names

    spec = get_dataset_spec(dataset)
    counts = {
        name: _parameters(ModelSpec(name, spec.num_classes, spec.image_shape))
        for name in model_names()
    }
    columns = (
        ("parameters", "unavailable") if any("unavailable" in c for c in counts.values()) else ()
    )
    _listing(f"models on {dataset} {spec.image_shape}", counts, as_json, columns=columns)


def _parameters(spec: ModelSpec) -> dict[str, int | str]:
    """The trainable parameter count, or why the model does not fit the dataset (fusion's
    CIFAR-10 trunks on MNIST)."""
    from fedsim.models import build_model, count_parameters

    try:
        return {"parameters": count_parameters(build_model(spec))}
    except UserInputError as error:
        return {"unavailable": str(error)}


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
            "view_of": spec.view_of,
        }
    _listing("datasets", rows, as_json)


@app.command(name="defenses")
def list_defenses(as_json: JsonFlag = False) -> None:
    """List the defenses `--defense` takes, with their parameters."""
    from defenses.specs import defense_description, defense_names, parameter_help

    rows = {
        name: {"usage": parameter_help(name), "description": defense_description(name)}
        for name in defense_names()
    }
    _listing("defenses", rows, as_json)


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
        table.add_row(name, *(fmt(row.get(c, "")) for c in columns))
    stdout.print(table)
