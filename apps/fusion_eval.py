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

from apps.bench.images import image_indices
from attacks import metrics
from attacks.evasion import Perturbation, perturb
from fedsim.data import get_dataset_spec, load_dataset, normalize
from fedsim.errors import UnknownNameError, UserInputError
from fedsim.models.fusion import HEADS, ContextualFusion, HeadClassifier, load_fusion

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


def evaluate(
    request: EvaluationRequest,
    device: torch.device,
    progress: Progress | None = None,
) -> dict[str, object]:
    """Per head clean / perturbed accuracy in [0, 1] (and per class), plus the perturbation's
    median PSNR (dB), SSIM, ST-LPIPS and LPIPS over the images; JSON-ready."""
    if request.crafted_on not in HEADS:
        raise UnknownNameError("head", request.crafted_on, HEADS)
    if request.images < 1:
        raise UserInputError(f"--images must be at least 1; got {request.images}")
    spec = get_dataset_spec(DATASET)
    model = load_fusion(request.checkpoint_dir, heads_file=request.heads_file).to(device)
    indices = image_indices(DATASET, request.images, request.seed)
    data = load_dataset(DATASET, "test")
    crafted_on = HeadClassifier(model, request.crafted_on).eval()
    torch.manual_seed(request.seed)  # PGD's random start
    started = time.perf_counter()
    correct = {(head, state): [] for head in HEADS for state in ("clean", "perturbed")}
    visibility = _Visibility()
    all_labels = []
    for start in range(0, len(indices), request.batch_size):
        clean, labels = data.images(indices[start : start + request.batch_size])
        clean, labels = clean.to(device), labels.to(device)
        perturbed = perturb(request.perturbation, clean, labels, crafted_on, spec.mean, spec.std)
        for state, images in (("clean", clean), ("perturbed", perturbed)):
            for head, hits in _hits(model, normalize(images, spec)).items():
                correct[head, state].append((hits == labels).cpu())
        all_labels.append(labels.cpu())
        visibility.add(perturbed.cpu(), clean.cpu())
        if progress is not None:
            progress(min(start + request.batch_size, len(indices)), len(indices))
    wall_s = time.perf_counter() - started
    labels = torch.cat(all_labels)
    heads = {
        head: _head_summary(
            torch.cat(correct[head, "clean"]), torch.cat(correct[head, "perturbed"]), labels
        )
        for head in HEADS
    }
    return {
        "perturbation": str(request.perturbation),
        "crafted_on": request.crafted_on if request.perturbation.needs_gradients else None,
        "heads_file": request.heads_file,
        **heads,
        **visibility.summary(),
        "images": len(indices),
        "seed": request.seed,
        "wall_s": round(wall_s, 2),
        "images_per_s": round(len(indices) / wall_s, 2),
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


@torch.no_grad()
def _hits(model: ContextualFusion, images: torch.Tensor) -> dict[str, torch.Tensor]:
    logits = model.head_logits(*model.features(images))
    return {head: logits[head].argmax(1) for head in HEADS}


def _head_summary(
    clean: torch.Tensor, perturbed: torch.Tensor, labels: torch.Tensor
) -> dict[str, object]:
    per_class = [
        float(perturbed[labels == c].float().mean()) if (labels == c).any() else None
        for c in range(int(labels.max()) + 1)
    ]
    return {
        "clean_accuracy": float(clean.float().mean()),
        "accuracy": float(perturbed.float().mean()),
        "per_class_accuracy": per_class,
    }


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    value = statistics.median(values)
    return value if math.isfinite(value) else None
