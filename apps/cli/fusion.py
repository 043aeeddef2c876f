"""``fedleak fusion``: train the contextual-fusion trunks and heads, evaluate them under attack."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import Progress, ProgressColumn, TextColumn
from rich.table import Table

from apps.cli.app import JsonFlag, app, fmt, stderr, stdout
from apps.progress import job_bar
from fedsim.errors import FedleakError, UnknownNameError

if TYPE_CHECKING:
    from fedsim.models.fusion import TrunkPaths

fusion_app = typer.Typer(
    name="fusion",
    help="Contextual fusion: train the object / context trunks and heads, evaluate under attack.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(fusion_app, name="fusion")

TRAIN_STREAMS = ("object", "context", "heads")

ImagenetOption = Annotated[
    Path | None,
    typer.Option(help="torchvision's ImageNet ResNet-18 (.pth) as the object trunk (224 px)."),
]
PlacesOption = Annotated[
    Path | None,
    typer.Option(help="resnet18_places365.pth.tar as the context trunk (with --imagenet)."),
]


def _trunk_paths(imagenet: Path | None, places365: Path | None) -> TrunkPaths | None:
    """The user's ImageNet / Places365 trunks, both or neither (one line otherwise)."""
    from fedsim.models.fusion import TrunkPaths

    if imagenet is None and places365 is None:
        return None
    if imagenet is None or places365 is None:
        raise FedleakError(
            "--imagenet and --places365 go together (the object and the context trunk); "
            "give both, or neither for the CIFAR-10 trunks of --checkpoint / --out"
        )
    for path in (imagenet, places365):
        if not path.is_file():
            raise FedleakError(f"no trunk checkpoint at {str(path)!r}; give a ResNet-18 .pth file")
    return TrunkPaths(imagenet, places365)


@contextmanager
def _progress(label: str, *columns: ProgressColumn) -> Iterator[Callable[..., None]]:
    """Yield ``advance(completed, total, **fields)``; the bar appears on the first call, so
    set-up errors print alone, as one line."""
    with ExitStack() as stack:
        bar: Progress | None = None

        def advance(completed: float, total: float, **fields: float) -> None:
            nonlocal bar
            if bar is None:
                bar = stack.enter_context(job_bar(label, *columns, console=stderr))
                bar.add_task(label, total=total, **fields)
            bar.update(bar.task_ids[0], completed=completed, **fields)

        yield advance


_LOSS = TextColumn("{task.percentage:>3.0f}%  loss {task.fields[loss]:.3f}")


@fusion_app.command("train")
def train(
    stream: Annotated[str, typer.Option(help="object, context (a trunk) or heads.")],
    out: Annotated[Path, typer.Option(help="Checkpoint folder (trunks and heads files).")],
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the training split.")] = 10,
    alpha: Annotated[
        list[float] | None,
        typer.Option(help="Heads only: α of α‖W_obj‖² on the fused head; repeat for a sweep."),
    ] = None,
    width: Annotated[int, typer.Option(min=4, help="Trunks only: channels of stage 1.")] = 16,
    batch_size: Annotated[int, typer.Option(min=2, help="Trunks only: images per step.")] = 128,
    lr: Annotated[float, typer.Option(min=0.0, help="Trunks only: peak learning rate.")] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed for weights and batch order.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    imagenet: ImagenetOption = None,
    places365: PlacesOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Train one trunk on CIFAR-10 (whole image or context view), or the heads on frozen trunks
    (the folder's, or with --imagenet / --places365 the user's)."""
    if stream not in TRAIN_STREAMS:
        raise UnknownNameError("stream", stream, TRAIN_STREAMS)
    trunks = _trunk_paths(imagenet, places365)
    if trunks is not None and stream != "heads":
        raise FedleakError(
            f"--imagenet / --places365 are trained trunks: they go with --stream heads, not "
            f"--stream {stream}"
        )
    alphas = tuple(alpha or (0.0,))
    if min(alphas) < 0:
        raise FedleakError(f"--alpha {min(alphas):g} out of range; valid: alpha >= 0")
    from fedsim.data import load_dataset
    from fedsim.device import resolve_device

    where = resolve_device(device)
    trunk_args = []
    if trunks is not None:
        trunk_args = ["--imagenet", str(trunks.imagenet), "--places365", str(trunks.places365)]
    command = shlex.join(
        ["fedleak", "fusion", "train", "--stream", stream, "--out", str(out)]
        + ["--epochs", str(epochs), "--seed", str(seed), "--device", device]
        + (
            [part for a in alphas for part in ("--alpha", f"{a:g}")] + trunk_args
            if stream == "heads"
            else ["--width", str(width), "--batch-size", str(batch_size), "--lr", str(lr)]
        )
    )
    started = time.perf_counter()
    train_split, test_split = load_dataset("cifar10", "train"), load_dataset("cifar10", "test")
    if stream == "heads":
        from defenses.fusion.heads import heads_file, save_heads, train_heads

        with _progress("fusion heads", _LOSS) as advance:
            results = train_heads(
                out,
                train_split,
                test_split,
                alphas=alphas,
                epochs=epochs,
                seed=seed,
                device=where,
                progress=lambda done, loss: advance(done, 1.0, loss=loss),
                trunks=trunks,
            )
        wall_s = f"{time.perf_counter() - started:.0f}"
        heads_summaries = []
        for alpha, result in results.items():
            path = out / heads_file(alpha)
            row = {"alpha": alpha, **result.accuracy, "checkpoint": str(path)}
            metadata = {"command": command, "seed": str(seed), "epochs": str(epochs)}
            metadata |= {"wall_s": wall_s, **{k: str(v) for k, v in row.items()}}
            save_heads(path, result.heads, metadata)
            record = {**metadata, **row, "epochs": epochs, "seed": seed, "wall_s": float(wall_s)}
            path.with_suffix(".json").write_text(json.dumps(record, indent=2))
            heads_summaries.append(row)
        summary = {"stream": stream, "heads": heads_summaries}
    else:
        from defenses.fusion.trunks import save_trunk, train_trunk, trunk_accuracy

        with _progress(f"fusion {stream} trunk", _LOSS) as advance:
            trunk, classifier = train_trunk(
                stream,
                train_split,
                epochs=epochs,
                width=width,
                batch_size=batch_size,
                lr=lr,
                seed=seed,
                device=where,
                progress=lambda done, loss: advance(done, 1.0, loss=loss),
            )
        accuracy = trunk_accuracy(stream, trunk, classifier, test_split)
        path = out / f"{stream}.safetensors"
        summary = {"stream": stream, "test_accuracy": accuracy}
        metadata = {
            "command": command,
            "seed": str(seed),
            "epochs": str(epochs),
            "width": str(width),
            "test_accuracy": f"{accuracy:.4f}",
            "wall_s": f"{time.perf_counter() - started:.0f}",
        }
        save_trunk(path, trunk, metadata)
        summary |= {"checkpoint": str(path)}
        numbers = {"seed": seed, "epochs": epochs, "width": width, "test_accuracy": accuracy}
        numbers |= {"wall_s": float(metadata["wall_s"])}
        record = {**metadata, **summary, **numbers}
        path.with_suffix(".json").write_text(json.dumps(record, indent=2))
    summary |= {"wall_s": round(time.perf_counter() - started, 1)}
    stderr.print(f"fusion {stream} → {out}: {summary}", soft_wrap=True)
    if as_json:
        print(json.dumps(summary, allow_nan=False))


@fusion_app.command("evaluate")
def evaluate(
    perturbation: Annotated[
        str,
        typer.Option(help="none | fgsm:eps=E | pgd:eps=E,steps=S | blur:sigma=S (ε in [0, 1])."),
    ] = "none",
    crafted_on: Annotated[
        str, typer.Option(help="Head FGSM / PGD are crafted on: object, context or fused.")
    ] = "object",
    checkpoint: Annotated[
        Path | None, typer.Option(help="Folder of trunks and heads (default: the shipped ones).")
    ] = None,
    alpha: Annotated[
        float, typer.Option(min=0.0, help="Use the heads trained with this α (0: no regulariser).")
    ] = 0.0,
    heads: Annotated[
        Path | None,
        typer.Option(
            help="Heads file, or a `simulate --model fusion` run folder (its final weights), "
            "instead of --alpha's."
        ),
    ] = None,
    imagenet: ImagenetOption = None,
    places365: PlacesOption = None,
    images: Annotated[
        int, typer.Option(help="First N of a seeded permutation of the test split.")
    ] = 2_000,
    seed: Annotated[int, typer.Option(help="Seed of the image permutation.")] = 0,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per perturbed batch.")] = 250,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    as_json: JsonFlag = False,
) -> None:
    """Each head's clean and perturbed accuracy, and how visible the perturbation is."""
    from apps.fusion_eval import EvaluationRequest, heads_path
    from apps.fusion_eval import evaluate as run_evaluation
    from attacks.evasion import parse_perturbation
    from defenses.fusion.heads import heads_file
    from fedsim.device import resolve_device
    from fedsim.models.fusion import HEADS, SHIPPED_CHECKPOINTS

    parsed = parse_perturbation(perturbation)
    if crafted_on not in HEADS:
        raise UnknownNameError("head", crafted_on, HEADS)
    request = EvaluationRequest(
        checkpoint_dir=checkpoint or SHIPPED_CHECKPOINTS,
        heads_file=heads_file(alpha) if heads is None else str(heads_path(heads).resolve()),
        perturbation=parsed,
        crafted_on=crafted_on,
        images=images,
        seed=seed,
        batch_size=batch_size,
        trunks=_trunk_paths(imagenet, places365),
    )
    where = resolve_device(device)
    images_column = TextColumn("{task.completed}/{task.total} images")
    with _progress(f"fusion evaluate {parsed}", images_column) as advance:
        summary = run_evaluation(request, where, progress=advance)
    table = Table(title=f"fusion {parsed} crafted on {summary['crafted_on']}")
    for column in ("head", "clean_accuracy", "accuracy"):
        table.add_column(column)
    for head in HEADS:
        row = summary[head]
        table.add_row(head, fmt(row["clean_accuracy"]), fmt(row["accuracy"]))
    (stderr if as_json else stdout).print(table)
    visible = {
        key: summary[key] for key in ("psnr", "ssim", "st_lpips", "lpips", "images", "wall_s")
    }
    (stderr if as_json else stdout).print(visible)
    if as_json:
        print(json.dumps(summary, allow_nan=False))
