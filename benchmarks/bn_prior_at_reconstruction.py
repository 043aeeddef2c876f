"""Does an ``ig-bn`` reconstruction satisfy the BatchNorm prior but not the gradient? Both terms
of the attack's objective at the true batch, at the reconstruction, and at a N(0, 1) start.

    .venv/bin/python benchmarks/bn_prior_at_reconstruction.py runs/bn-budget/cells/ID [ID ...]

Each argument is a bench cell folder of an attack on a train-mode capture (it holds the
observation, the reconstruction and, for scoring, the ground truth). Per cell, one JSON line:
the gradient distance (the preset's objective, labels as recovered or true) and the BatchNorm
prior's distance to the statistics the client's buffers leaked, summed over layers.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from per_cell import print_per_cell

from attacks import get_preset
from attacks.batch_statistics import batch_norm_layers, prior_targets, recorded_statistics
from attacks.matching import attacker_model, gradient_matching_objective
from attacks.priors import batch_statistics_distance
from attacks.search_spaces import PixelBox
from fedsim.observation import Observation
from fedsim.storage import load_tensors


def objective_terms(cell: Path) -> dict:
    """The two terms at the truth, the reconstruction and a N(0, 1) start of one cell."""
    observation = Observation.load(cell / "observation.safetensors")
    config = json.loads((cell / "config.json").read_text())["attack"]
    objective = gradient_matching_objective(
        observation, get_preset(config["name"], label_strategy="given"), torch.device("cpu")
    )
    targets = prior_targets(observation, "leaked").layers
    model = attacker_model(observation)
    layers = batch_norm_layers(model)
    box = PixelBox(observation.mean, observation.std, torch.device("cpu"))
    truth, _ = load_tensors(cell / "ground_truth.safetensors")
    found, _ = load_tensors(cell / "reconstruction.safetensors")
    start = torch.randn(truth["images"].shape, generator=torch.Generator().manual_seed(0))
    batches = {
        "truth": (box.from_pixels(truth["images"]), truth["labels"]),
        "reconstruction": (box.from_pixels(found["images"]), found["labels"]),
        "start": (start, found["labels"]),
    }
    result: dict[str, object] = {"cell": str(cell), "attack": config["name"]}
    for name, (images, labels) in batches.items():
        one_hot = torch.nn.functional.one_hot(labels, observation.model.num_classes).float()
        with torch.no_grad(), recorded_statistics(layers) as statistics:
            gap = float(objective(images, one_hot, {})[1])
            model(images)
            prior = float(batch_statistics_distance([statistics], targets))
        result[name] = {"gradient_distance": round(gap, 4) + 0.0, "bn_prior": round(prior, 6) + 0.0}
    return result


if __name__ == "__main__":
    print_per_cell(__doc__.splitlines()[0], objective_terms)
