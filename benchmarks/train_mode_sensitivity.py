"""Why train-mode BatchNorm clients resist gradient inversion: how fast the matching objective
grows away from the true batch, in train mode and in eval mode.

    .venv/bin/python benchmarks/train_mode_sensitivity.py [--models resnet18 convnet64]
        [--batch-size 4] [--seed 0]

For a fresh model (seed ``--seed``) and the first ``--batch-size`` CIFAR-10 test images, the
FedSGD gradient is computed in each mode; then IG's cosine gradient distance (labels given,
no prior) is evaluated at the true batch plus Gaussian noise of standard deviation σ in the
normalised input space (the images span about 4 units there). A search can only close a gap
that shrinks smoothly as it nears the truth. Prints one JSON line per model and mode.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

import torch

from attacks import get_preset
from attacks.matching import gradient_matching_objective
from fedsim.data import load_dataset, normalize
from fedsim.fedsgd import fedsgd_observation
from fedsim.models import ModelSpec, build_model

SIGMAS = (0.0, 0.001, 0.01, 0.03, 0.1, 0.3)


def gaps_near_the_truth(model: str, batch_size: int, seed: int, train_mode: bool) -> dict:
    """IG's cosine distance at the true batch plus noise of each σ in :data:`SIGMAS`."""
    data = load_dataset("cifar10", "test")
    images, labels = data.images(list(range(batch_size)))
    spec = ModelSpec(model, data.spec.num_classes, data.spec.image_shape)
    torch.manual_seed(seed)
    observation, _ = fedsgd_observation(
        build_model(spec), spec, data.spec, images, labels, train_mode=train_mode
    )
    config = get_preset("ig-fast", tv_weight=0.0, label_strategy="given")
    objective = gradient_matching_objective(replace(observation, labels=labels), config, "cpu")
    inputs = normalize(images, data.spec)
    one_hot = torch.nn.functional.one_hot(labels, data.spec.num_classes).float()
    noise = torch.randn(inputs.shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        gaps = {s: float(objective(inputs + s * noise, one_hot, {})[1]) for s in SIGMAS}
    return {"model": model, "train_mode": train_mode, "batch_size": batch_size, "gaps": gaps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet18", "convnet64"])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for model in args.models:
        for train_mode in (True, False):
            print(json.dumps(gaps_near_the_truth(model, args.batch_size, args.seed, train_mode)))


if __name__ == "__main__":
    main()
