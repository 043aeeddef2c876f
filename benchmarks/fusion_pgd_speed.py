"""Images per second of ``fedleak fusion evaluate`` under PGD-10 beside a bare PyTorch PGD-10.

    .venv/bin/python benchmarks/fusion_pgd_speed.py [--images 500] [--eps 0.0314]
        [--head fused] [--device cpu] [--checkpoint DIR]

Both run white-box on the same head of the shipped fusion model, on the same held-out images
(the first N of seed 0's permutation of the CIFAR-10 test split), with the same step size
(2.5 ε / 10) and a random start. The bare loop is the reference only: it decodes the images
once and does nothing but PGD and one accuracy pass; ``evaluate`` (foolbox, three heads clean
and perturbed, PSNR / SSIM / ST-LPIPS, per-batch decoding) is timed by its own ``wall_s``.
Prints one JSON line; the goal is ``slowdown`` ≤ 1.2.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch.nn import functional

from apps.bench.images import image_indices
from apps.fusion_eval import DATASET, EvaluationRequest, evaluate
from attacks.evasion import Perturbation
from attacks.evasion.perturbations import PGD_STEP_FACTOR
from fedsim.data import get_dataset_spec, load_dataset, normalize
from fedsim.models.fusion import SHIPPED_CHECKPOINTS, HeadClassifier, load_fusion

STEPS = 10


def bare_pgd(
    model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float
) -> torch.Tensor:
    """L∞ PGD, written out: random start, sign steps of 2.5 ε / steps, projection, [0, 1]."""
    spec = get_dataset_spec(DATASET)
    step = PGD_STEP_FACTOR * eps / STEPS
    adversarial = (images + torch.empty_like(images).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(STEPS):
        adversarial.requires_grad_(True)
        loss = functional.cross_entropy(model(normalize(adversarial, spec)), labels)
        (gradient,) = torch.autograd.grad(loss, adversarial)
        adversarial = adversarial.detach() + step * gradient.sign()
        adversarial = (images + (adversarial - images).clamp(-eps, eps)).clamp(0, 1)
    return adversarial


def main() -> None:
    """Time both on the same images and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--eps", type=float, default=8 / 255)
    parser.add_argument("--head", default="fused")
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--checkpoint", type=Path, default=SHIPPED_CHECKPOINTS)
    args = parser.parse_args()
    device = torch.device(args.device)
    spec = get_dataset_spec(DATASET)
    model = load_fusion(args.checkpoint).to(device)
    classifier = HeadClassifier(model, args.head).eval()
    indices = image_indices(DATASET, args.images, 0)
    images, labels = load_dataset(DATASET, "test").images(indices)
    images, labels = images.to(device), labels.to(device)
    torch.manual_seed(0)
    started, correct = time.perf_counter(), 0
    for start in range(0, len(indices), args.batch_size):
        batch = slice(start, start + args.batch_size)
        adversarial = bare_pgd(classifier, images[batch], labels[batch], args.eps)
        with torch.no_grad():
            predicted = classifier(normalize(adversarial, spec)).argmax(1)
        correct += int((predicted == labels[batch]).sum())
    bare_s = time.perf_counter() - started
    request = EvaluationRequest(
        checkpoint_dir=args.checkpoint,
        heads_file="heads.safetensors",
        perturbation=Perturbation("pgd", eps=args.eps, steps=STEPS),
        crafted_on=args.head,
        images=args.images,
        batch_size=args.batch_size,
    )
    summary = evaluate(request, device)
    bare_rate = len(indices) / bare_s
    print(
        json.dumps(
            {
                "images": len(indices),
                "eps": args.eps,
                "head": args.head,
                "device": str(device),
                "threads": torch.get_num_threads(),
                "bare_images_per_s": round(bare_rate, 2),
                "bare_accuracy": correct / len(indices),
                "evaluate_images_per_s": summary["images_per_s"],
                "evaluate_accuracy": summary[args.head]["accuracy"],
                "slowdown": round(bare_rate / summary["images_per_s"], 3),
            }
        )
    )


if __name__ == "__main__":
    main()
