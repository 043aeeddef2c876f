"""GIFD vs latent-only search vs Inverting Gradients at equal wall time, in and out of
distribution (Fang et al., ICCV 2023).

    .venv/bin/python benchmarks/gifd.py [--batch-sizes 1,4] [--images 8] [--time-budget 60]
        [--settings in,ood,ood-mnist] [--model resnet18] [--workers 2]
        [--results benchmarks/results/gifd.jsonl]

``in``: the shipped CIFAR-10 generator against CIFAR-10 test images of every class. ``ood``:
the shipped generator trained on classes 0–4 only, against test images of classes 5–9.
``ood-mnist``: the shipped CIFAR-10 generator against MNIST test digits as 3×32×32 images (the
``mnist-rgb32`` view), the paper's out-of-distribution setting across datasets. Each
cell is one batch of held-out test images (a seeded draw) and a fresh model (seeded by the
cell), attacked as a FedSGD gradient by ``ig-fast``, ``gan-latent`` and ``gifd`` under the
same ``--time-budget`` seconds each; labels are inferred. Finished cells are appended to
``--results``, so a killed run resumes. Prints the medians per (setting, batch size) — PSNR,
SSIM, LPIPS (null offline, with the reason), ST-LPIPS — a JSON line per row and one last.
Goal per row: GIFD best on median PSNR and on median LPIPS (ST-LPIPS where LPIPS is offline).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from cells import RESULTS_DIR, image_indices, medians, psnr_cell, run_cells, scores_of

ATTACKS = {"ig": "ig-fast", "gan-latent": "gan-latent", "gifd": "gifd"}
GENERATORS = {
    "in": "cifar10.safetensors",
    "ood": "cifar10-classes-0-4.safetensors",
    "ood-mnist": "cifar10.safetensors",
}
DATASETS = {"in": "cifar10", "ood": "cifar10", "ood-mnist": "mnist-rgb32"}
TARGET_CLASSES = {"in": None, "ood": {5, 6, 7, 8, 9}, "ood-mnist": None}


def attack_cell(cell: dict) -> dict:
    """Attack one batch's gradient with each attack under the same time budget."""
    torch.set_num_threads(1)  # one core per worker: the cells run side by side
    from attacks import GradientInversion, get_preset
    from attacks.generators import SHIPPED_DIR, load_generator
    from fedsim.data import load_dataset
    from fedsim.fedsgd import fedsgd_observation
    from fedsim.models import ModelSpec, build_model

    data = load_dataset(DATASETS[cell["setting"]], "test")
    images, labels = data.images(cell["indices"])
    torch.manual_seed(cell["indices"][0])
    spec = ModelSpec(cell["model"], data.spec.num_classes, data.spec.image_shape)
    observation, truth = fedsgd_observation(build_model(spec), spec, data.spec, images, labels)
    generator, _ = load_generator(SHIPPED_DIR / GENERATORS[cell["setting"]])
    results = {}
    for name, preset in ATTACKS.items():
        config = get_preset(preset, iterations=10**6, time_budget_s=cell["time_budget_s"])
        attack = GradientInversion(config, seed=cell["indices"][0], generator=generator)
        results[name] = scores_of(attack(observation), truth)
    return {**cell, "attacks": results}


def cell_key(cell: dict) -> tuple:
    # The setting names the dataset and generator: rows of in / ood from before ood-mnist
    # keep their keys.
    return (cell["setting"], cell["model"], tuple(cell["indices"]), cell["time_budget_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", default="in,ood,ood-mnist")
    parser.add_argument("--batch-sizes", default="1,4")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--time-budget", type=float, default=60.0)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=RESULTS_DIR / "gifd.jsonl")
    args = parser.parse_args()

    cells = []
    for setting in args.settings.split(","):
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            draw = image_indices(DATASETS[setting], args.images, args.seed, TARGET_CLASSES[setting])
            for start in range(0, len(draw) - batch + 1, batch):
                cells.append(
                    {
                        "setting": setting,
                        "model": args.model,
                        "indices": draw[start : start + batch],
                        "time_budget_s": args.time_budget,
                    }
                )
    done = run_cells(cells, attack_cell, cell_key, args.results, args.workers)

    table = []
    for setting in args.settings.split(","):
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            rows = [
                done[cell_key(c)]
                for c in cells
                if c["setting"] == setting and len(c["indices"]) == batch
            ]
            row: dict = {"setting": setting, "batch": batch, "cells": len(rows)}
            row["lpips_unavailable"] = rows[0]["attacks"]["gifd"]["lpips_unavailable"]
            for attack in ATTACKS:
                row[attack] = medians([r["attacks"][attack] for r in rows])
            perceptual = "st_lpips" if row["gifd"]["lpips"] is None else "lpips"
            psnr = {a: row[a]["psnr"] or float("inf") for a in ATTACKS}  # null: exact
            row["goal_met"] = all(
                psnr["gifd"] >= psnr[a] and row["gifd"][perceptual] <= row[a][perceptual]
                for a in ("ig", "gan-latent")
            )
            table.append(row)
            print(json.dumps(row, allow_nan=False))
    print("setting   batch | median PSNR dB: IG  latent  GIFD | ST-LPIPS: IG  latent  GIFD | goal")
    for row in table:
        psnr = " ".join(psnr_cell(row[a]["psnr"]) for a in ATTACKS)
        st = " ".join(f"{row[a]['st_lpips']:.3f}" for a in ATTACKS)
        goal = "met" if row["goal_met"] else "MISSED"
        print(f"{row['setting']:9} {row['batch']:5} | {psnr} | {st} | {goal}")
    print(json.dumps({"rows": table, "time_budget_s": args.time_budget}, allow_nan=False))


if __name__ == "__main__":
    main()
