"""``fedleak train-generator``: a staged DCGAN for GIFD and latent-space attacks."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Annotated

import typer

from apps.cli.app import JsonFlag, app, stderr
from fedsim.errors import FedleakError


def parse_classes(text: str | None) -> tuple[int, ...]:
    """'0-4' or '0,2,5' → class ids; None → all classes."""
    if not text:
        return ()
    try:
        if "-" in text:
            low, high = (int(part) for part in text.split("-"))
            return tuple(range(low, high + 1))
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise FedleakError(
            f"invalid --classes {text!r}; valid: a range 0-4 or a list 0,2,5"
        ) from None


@app.command("train-generator")
def train_generator_command(
    dataset: Annotated[str, typer.Option(help="Dataset (see `fedleak datasets`).")] = "cifar10",
    out: Annotated[Path, typer.Option(help="Checkpoint file (.safetensors).")] = Path(
        "runs/generator.safetensors"
    ),
    classes: Annotated[
        str | None, typer.Option(help="Train on these classes: 0-4 or 0,2,5.")
    ] = None,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the training images.")] = 10,
    batch_size: Annotated[int, typer.Option(min=2, help="Images per step.")] = 128,
    width: Annotated[
        int, typer.Option(min=8, help="Channels of the first feature map, halved per stage.")
    ] = 128,
    conditional: Annotated[
        bool,
        typer.Option(
            "--conditional",
            help="Class-conditional (hinge loss, projection critic, weight average); GIFD "
            "conditions it on the attack's labels.",
        ),
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed for weights, latents and batch order.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    as_json: JsonFlag = False,
) -> None:
    """Train a generator whose stages GIFD searches; write it and a sample grid beside it.

    The training state is kept beside OUT after every epoch: the same command, rerun after a
    crash or in a later session, resumes from it.
    """
    import torch
    from rich.progress import TextColumn
    from torchvision.utils import save_image

    from apps.progress import job_bar
    from attacks.generators import GeneratorRecord, save_generator
    from attacks.generators.training import train_generator
    from fedsim.data import load_dataset
    from fedsim.device import resolve_device

    chosen = parse_classes(classes)
    where = resolve_device(device)
    data = load_dataset(dataset, "train")
    unknown = sorted(set(chosen) - set(range(data.spec.num_classes)))
    if unknown:
        raise FedleakError(
            f"--classes {unknown} not in {dataset}; valid: 0..{data.spec.num_classes - 1}"
        )
    columns = (
        TextColumn("{task.percentage:>3.0f}%  critic {task.fields[critic]:.3f}"),
        TextColumn("generator {task.fields[generator]:.3f}"),
    )
    state = out.with_name(out.name + ".state")
    out.parent.mkdir(parents=True, exist_ok=True)
    with job_bar("train-generator", *columns, console=stderr) as bar:
        task = bar.add_task("train", total=1.0, critic=0.0, generator=0.0)
        generator = train_generator(
            data,
            classes=chosen or None,
            epochs=epochs,
            batch_size=batch_size,
            width=width,
            conditional=conditional,
            seed=seed,
            device=where,
            state_path=state,
            progress=lambda done, losses: bar.update(task, completed=done, **losses),
        )
    record = GeneratorRecord(
        dataset=dataset,
        image_shape=tuple(data.spec.image_shape),
        latent_dim=generator.latent_dim,
        classes=chosen or tuple(range(data.spec.num_classes)),
        epochs=epochs,
        seed=seed,
        width=width,
        num_classes=generator.num_classes,
        command=shlex.join(
            ["fedleak", "train-generator", "--dataset", dataset, "--out", str(out)]
            + (["--classes", classes] if classes else [])
            + ["--epochs", str(epochs), "--batch-size", str(batch_size), "--width", str(width)]
            + (["--conditional"] if conditional else [])
            + ["--seed", str(seed)]
            + ["--device", device]
        ),
    )
    save_generator(out, generator, record)
    state.unlink(missing_ok=True)
    if conditional:  # the sample grid's rows are the classes in order
        generator.condition(torch.tensor(record.classes).repeat_interleave(8))
    samples = generator(
        torch.randn(
            len(record.classes) * 8 if conditional else 64,
            generator.latent_dim,
            generator=torch.Generator().manual_seed(seed),
        )
    )
    grid = out.with_suffix(".png")
    save_image((samples + 1) / 2, grid, nrow=8)
    summary = {
        "checkpoint": str(out),
        "samples": str(grid),
        "epochs": epochs,
        "classes": list(record.classes),
        "conditional": conditional,
    }
    stderr.print(f"generator → {out} (samples {grid})", soft_wrap=True)
    if as_json:
        print(json.dumps(summary))
