"""Dropout Inversion Attack vs Inverting Gradients vs the well-informed oracle (Scheliga et al.).

    .venv/bin/python benchmarks/dia.py [--datasets cifar10,mnist] [--models mlp,vit-small]
        [--rates 0.1,0.25,0.5] [--images 8] [--iterations 1000] [--workers 2]
        [--results benchmarks/results/dia.jsonl]

Each cell is one held-out test image (a seeded draw from the test split), batch 1, attacked as
the FedSGD gradient of a fresh model whose dropout layers are active on the client. Three
attacks share one recipe (the authors' config: cosine distance, TV 1e-5, signed Adam lr 0.1,
lr /10 on plateau, early stop) and differ only in the masks: IG leaves dropout out of the
attacker's model, DIA searches the masks with the image, WIIG is given the client's true masks
(an oracle). Per-image results are appended to ``--results`` as they finish, so a killed run
resumes where it stopped. Prints one row per (dataset, model, rate) with median PSNR, SSIM,
LPIPS (null offline, with the reason), ST-LPIPS and MSE on normalised tensors, a JSON line per
row, and one JSON line last. Goal per row: DIA ≥ IG + 10 dB median PSNR, and DIA within 3 dB
of WIIG or above 40 dB.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
from cells import RESULTS_DIR, image_indices, medians, psnr_cell, run_cells, scores_of

ATTACKS = ("ig", "dia", "wiig")


def attack_cell(cell: dict) -> dict:
    """Run IG, DIA and WIIG on one image's dropout gradient; return their scores."""
    torch.set_num_threads(1)  # one core per worker: the cells run side by side
    from attacks import GradientInversion, get_preset
    from fedsim.data import load_dataset, normalize
    from fedsim.fedsgd import fedsgd_observation
    from fedsim.models import ModelSpec, build_model

    data = load_dataset(cell["dataset"], "test")
    images, labels = data.images([cell["index"]])
    torch.manual_seed(cell["index"])
    spec = ModelSpec(cell["model"], data.spec.num_classes, data.spec.image_shape, cell["rate"])
    observation, truth = fedsgd_observation(build_model(spec), spec, data.spec, images, labels)
    configs = {
        "ig": get_preset("dia", name="ig", dropout_masks="off"),
        "dia": get_preset("dia"),
        "wiig": get_preset("wiig"),
    }
    results = {}
    for name, config in configs.items():
        config = config.model_copy(update={"iterations": cell["iterations"]})
        oracle = truth.dropout_masks if config.dropout_masks == "oracle" else None
        reconstruction = GradientInversion(config, seed=cell["index"])(
            observation, oracle_masks=oracle
        )
        error = normalize(reconstruction.images, data.spec) - normalize(truth.images, data.spec)
        results[name] = {**scores_of(reconstruction, truth), "mse": float(error.pow(2).mean())}
    return {**cell, "attacks": results}


def cell_key(cell: dict) -> tuple:
    return (cell["dataset"], cell["model"], cell["rate"], cell["index"], cell["iterations"])


def summarise(rows: list[dict]) -> dict:
    """Medians per attack over one (dataset, model, rate) row, and the row's goal check."""
    reason = rows[0]["attacks"]["ig"]["lpips_unavailable"]
    summary: dict = {"images": len(rows), "lpips_unavailable": reason}
    for attack in ATTACKS:
        per_image = [row["attacks"][attack] for row in rows]
        mse = statistics.median(r["mse"] for r in per_image)
        summary[attack] = {**medians(per_image), "mse": mse}
    ig, dia, wiig = (summary[a]["psnr"] or float("inf") for a in ATTACKS)
    summary["goal_met"] = dia - ig >= 10 and (wiig - dia <= 3 or dia > 40)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="cifar10,mnist")
    parser.add_argument("--models", default="mlp,vit-small")
    parser.add_argument("--rates", default="0.1,0.25,0.5")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=RESULTS_DIR / "dia.jsonl")
    args = parser.parse_args()

    cells = [
        {"dataset": d, "model": m, "rate": float(r), "index": i, "iterations": args.iterations}
        for d in args.datasets.split(",")
        for m in args.models.split(",")
        for r in args.rates.split(",")
        for i in image_indices(d, args.images, args.seed)
    ]
    done = run_cells(cells, attack_cell, cell_key, args.results, args.workers)

    table = []
    for dataset, model, rate in sorted({cell_key(c)[:3] for c in cells}):
        rows = [done[cell_key(c)] for c in cells if cell_key(c)[:3] == (dataset, model, rate)]
        row = {"dataset": dataset, "model": model, "rate": rate, **summarise(rows)}
        table.append(row)
        print(json.dumps(row, allow_nan=False))
    print("dataset  model      p     | median PSNR dB: IG   DIA   WIIG | MSE: IG  DIA  WIIG | goal")
    for row in table:
        psnr = " ".join(psnr_cell(row[a]["psnr"]) for a in ATTACKS)
        mse = " ".join(f"{row[a]['mse']:.3g}" for a in ATTACKS)
        print(
            f"{row['dataset']:8} {row['model']:10} {row['rate']:<5} | {psnr} | {mse} | "
            f"{'met' if row['goal_met'] else 'MISSED'}"
        )
    print(json.dumps({"rows": table, "iterations": args.iterations}, allow_nan=False))


if __name__ == "__main__":
    main()
