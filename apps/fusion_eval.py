"""Evaluate the three fusion heads on held-out CIFAR-10 images, clean and perturbed, and score
how visible the perturbation is (PSNR, SSIM, ST-LPIPS, LPIPS-alex of perturbed vs clean)."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from apps.bench.images import image_indices
from attacks import metrics
from attacks.evasion import Perturbation, perturb
from fedsim.data import get_dataset_spec, load_dataset, normalize
from fedsim.errors import UnknownNameError, UserInputError
from fedsim.models.fusion import HEADS, ContextualFusion, HeadClassifier, TrunkPaths, load_fusion

DATASET = "cifar10"
Progress = Callable[[int, int], None]
"""Called with (images done, images in all)."""


@dataclass(frozen=True)
class EvaluationRequest:
    """What to evaluate: checkpoints, heads file, perturbation, the head it is crafted on."""

    checkpoint_dir: Path
    heads_file: str
    perturbation: Perturbation
    crafted_on: str
    images: int
    seed: int = 0
    batch_size: int = 250
    trunks: TrunkPaths | None = None


def evaluate(
    request: EvaluationRequest,
    device: torch.device,
    progress: Progress | None = None,
) -> dict[str, object]:
    """Per head clean / perturbed accuracy in [0, 1] (and per class), plus the perturbation's
    median PSNR (dB), SSIM, ST-LPIPS and LPIPS over the images; JSON-ready."""
    if request.crafted_on not in HEADS:
        raise UnknownNameError("head", request.crafted_on, HEADS)
    model = load_fusion(
        request.checkpoint_dir, heads_file=request.heads_file, trunks=request.trunks
    ).to(device)
    clean, labels = held_out_images(request.images, request.seed)
    crafted_on = HeadClassifier(model, request.crafted_on).eval()
    started = time.perf_counter()
    perturbed = craft(
        request.perturbation,
        clean,
        labels,
        crafted_on,
        device,
        request.batch_size,
        request.seed,
        progress,
    )
    clean_hits = {
        head: hits == labels
        for head, hits in predictions(model, clean, device, request.batch_size).items()
    }
    hits = predictions(model, perturbed, device, request.batch_size)
    heads = {head: _head_summary(clean_hits[head], hits[head] == labels, labels) for head in HEADS}
    medians, _ = visibility(perturbed, clean, request.batch_size)
    wall_s = time.perf_counter() - started
    return {
        "perturbation": str(request.perturbation),
        "crafted_on": request.crafted_on if request.perturbation.needs_gradients else None,
        "heads_file": request.heads_file,
        "trunks": "cifar10" if request.trunks is None else "imagenet+places365",
        **heads,
        **medians,
        "images": len(labels),
        "seed": request.seed,
        "wall_s": round(wall_s, 2),
        "images_per_s": round(len(labels) / wall_s, 2),
    }


class _Visibility:
    """Per-image PSNR, SSIM, ST-LPIPS and LPIPS-alex of perturbed vs clean, batch by batch."""

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = {"psnr": [], "ssim": [], "st_lpips": [], "lpips": []}
        self.lpips_unavailable: str | None = None

    def add(self, perturbed: torch.Tensor, clean: torch.Tensor) -> None:
        """Score one batch of [0, 1] images."""
        self.values["psnr"] += metrics.psnr(perturbed, clean).tolist()
        self.values["ssim"] += metrics.ssim(perturbed, clean).tolist()
        self.values["st_lpips"] += metrics.st_lpips(perturbed, clean).tolist()
        lpips = metrics.lpips_alex(perturbed, clean)
        self.lpips_unavailable = lpips.reason
        if lpips.values is not None:
            self.values["lpips"] += lpips.values.tolist()

    def summary(self) -> dict[str, float | str | None]:
        """Medians (PSNR in dB, null for identical images; LPIPS null with the reason offline)."""
        medians = {key: _median(values) for key, values in self.values.items()}
        return {**medians, "lpips_unavailable": self.lpips_unavailable}


def _head_summary(
    clean: torch.Tensor, perturbed: torch.Tensor, labels: torch.Tensor
) -> dict[str, object]:
    return {
        "clean_accuracy": float(clean.float().mean()),
        "accuracy": float(perturbed.float().mean()),
        "per_class_accuracy": per_class(perturbed, labels, int(labels.max()) + 1),
    }


FLOWER_HEADS_FILE = "heads-flower.safetensors"
"""The heads a ``fedleak simulate --model fusion`` run ended with (its fused head trained)."""
MODEL_FORMS = "object, context, fused, fused-alpha-A (A > 0), fused-flower"


def model_heads(name: str) -> tuple[str, str]:
    """A benchmarked model's heads file and head: ``object`` / ``context`` / ``fused`` (the
    α = 0 heads), ``fused-alpha-A`` (the fused head trained with α = A), ``fused-flower``."""
    from defenses.fusion.heads import heads_file

    if name in HEADS:
        return heads_file(0.0), name
    if name == "fused-flower":
        return FLOWER_HEADS_FILE, "fused"
    prefix, _, alpha = name.partition("fused-alpha-")
    try:
        value = float(alpha)
    except ValueError:
        value = -1.0
    if prefix or not value > 0 or not math.isfinite(value):
        raise UserInputError(f"unknown fusion model {name!r}; valid: {MODEL_FORMS}")
    return heads_file(value), "fused"


def heads_path(path: Path) -> Path:
    """A heads checkpoint: the file itself, or the final weights of a ``fedleak simulate
    --model fusion`` run folder; anything else raises one line naming it."""
    from safetensors import SafetensorError, safe_open

    from fedsim.flower.run_dir import FINAL_WEIGHTS_FILE

    path = Path(path)
    file = path / FINAL_WEIGHTS_FILE if path.is_dir() else path
    usage = "a `fusion train --stream heads` file or a `simulate --model fusion` run folder"
    if not file.is_file():
        raise UserInputError(f"no heads at {str(path)!r}; valid: {usage}")
    try:
        with safe_open(str(file), "pt") as handle:
            keys = set(handle.keys())
    except (SafetensorError, OSError) as error:
        raise UserInputError(f"cannot read heads {str(file)!r} ({error}); valid: {usage}") from None
    expected = {f"heads.{head}.{part}" for head in HEADS for part in ("weight", "bias")}
    if keys != expected:
        raise UserInputError(f"{str(file)!r} holds no fusion heads; valid: {usage}")
    return file


def held_out_images(images: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``images`` of seed ``seed``'s permutation of the test split: [N, 3, 32, 32]
    pixels in [0, 1] and labels [N]."""
    if images < 1:
        raise UserInputError(f"images must be at least 1; got {images}")
    return load_dataset(DATASET, "test").images(image_indices(DATASET, images, seed))


def craft(
    perturbation: Perturbation,
    clean: torch.Tensor,
    labels: torch.Tensor,
    crafted_on: nn.Module | None,
    device: torch.device,
    batch_size: int,
    seed: int,
    progress: Progress | None = None,
) -> torch.Tensor:
    """The perturbed images [N, 3, 32, 32] in [0, 1] on the CPU, crafted batch by batch after
    seeding torch with ``seed`` (PGD's random starts); ``crafted_on`` reads normalised images
    (None for ``none`` and blur)."""
    spec = get_dataset_spec(DATASET)
    torch.manual_seed(seed)
    parts = []
    for start in range(0, len(labels), batch_size):
        rows = slice(start, start + batch_size)
        batch = perturb(
            perturbation,
            clean[rows].to(device),
            labels[rows].to(device),
            crafted_on,
            spec.mean,
            spec.std,
        )
        parts.append(batch.cpu())
        if progress is not None:
            progress(min(start + batch_size, len(labels)), len(labels))
    return torch.cat(parts)


@torch.no_grad()
def predictions(
    model: ContextualFusion, images: torch.Tensor, device: torch.device, batch_size: int
) -> dict[str, torch.Tensor]:
    """Each head's predicted classes [N] (on the CPU) for [0, 1] images [N, 3, 32, 32]."""
    spec = get_dataset_spec(DATASET)
    parts: dict[str, list[torch.Tensor]] = {head: [] for head in HEADS}
    for start in range(0, len(images), batch_size):
        batch = normalize(images[start : start + batch_size].to(device), spec)
        for head, logits in model.head_logits(*model.features(batch)).items():
            parts[head].append(logits.argmax(1).cpu())
    return {head: torch.cat(found) for head, found in parts.items()}


def visibility(
    perturbed: torch.Tensor, clean: torch.Tensor, batch_size: int
) -> tuple[dict[str, float | str | None], dict[str, list[float]]]:
    """Medians of PSNR (dB), SSIM, ST-LPIPS and LPIPS-alex of perturbed vs clean, and the
    per-image values."""
    scores = _Visibility()
    for start in range(0, len(clean), batch_size):
        rows = slice(start, start + batch_size)
        scores.add(perturbed[rows], clean[rows])
    return scores.summary(), scores.values


def per_class(hits: torch.Tensor, labels: torch.Tensor, classes: int) -> list[float | None]:
    """Accuracy in [0, 1] per class (None for a class with no image)."""
    return [
        float(hits[labels == c].float().mean()) if (labels == c).any() else None
        for c in range(classes)
    ]


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    value = statistics.median(values)
    return value if math.isfinite(value) else None
