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
from functools import partial
from pathlib import Path

import torch
from cells import RESULTS_DIR, image_indices, medians, psnr_cell, run_cells, scores_of

ATTACKS = ("ig", "dia", "wiig")


def attack_cell(cell: dict, images_dir: Path) -> dict:
    """Run IG, DIA and WIIG on one image's dropout gradient; keep their images, unscored.

    The truth and the three reconstructions go to ``images_dir`` (one safetensors file per
    cell) so that scoring can happen elsewhere: a GPU machine without the metric packages
    attacks, this one scores (:func:`score_row`).
    """
    torch.set_num_threads(1)  # one core per worker: the cells run side by side
    from attacks import GradientInversion, get_preset
    from fedsim.data import load_dataset
    from fedsim.fedsgd import fedsgd_observation
    from fedsim.models import ModelSpec, build_model
    from fedsim.storage import save_tensors

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
    tensors = {"truth": truth.images, "truth_labels": truth.labels}
    effort = {}
    for name, config in configs.items():
        update = {"iterations": cell["iterations"], "time_budget_s": cell["time_budget"]}
        config = config.model_copy(update=update)
        oracle = truth.dropout_masks if config.dropout_masks == "oracle" else None
        reconstruction = GradientInversion(config, seed=cell["index"], device=cell["device"])(
            observation, oracle_masks=oracle
        )
        tensors |= {name: reconstruction.images, f"{name}_labels": reconstruction.labels}
        effort[name] = {
            "iterations": reconstruction.iterations,
            "wall_s": reconstruction.wall_s,
            "gradient_distance": reconstruction.gradient_distance,
        }
    file = "-".join(str(part) for part in cell_key(cell)) + ".safetensors"
    save_tensors(images_dir / file, tensors, {"cell": cell})
    return {**cell, "images": file, "effort": effort}


def score_row(row: dict, images_dir: Path) -> dict:
    """Score an attacked cell's kept images: PSNR, SSIM, LPIPS, ST-LPIPS, MSE per attack."""
    from attacks.reconstruction import Reconstruction
    from fedsim.data import get_dataset_spec, normalize
    from fedsim.ground_truth import GroundTruth
    from fedsim.storage import load_tensors

    tensors, _ = load_tensors(images_dir / row["images"])
    truth = GroundTruth(tensors["truth"], tensors["truth_labels"])
    spec = get_dataset_spec(row["dataset"])
    results = {}
    for name, effort in row["effort"].items():
        reconstruction = Reconstruction(
            tensors[name],
            tensors[f"{name}_labels"],
            effort["gradient_distance"],
            (),
            (),
            effort["iterations"],
            effort["wall_s"],
        )
        error = normalize(reconstruction.images, spec) - normalize(truth.images, spec)
        results[name] = {**scores_of(reconstruction, truth), "mse": float(error.pow(2).mean())}
    return {**row, "attacks": results}


def cell_key(cell: dict) -> tuple:
    return (
        cell["dataset"],
        cell["model"],
        cell["rate"],
        cell["index"],
        cell["iterations"],
        cell.get("time_budget"),  # rows from before the option ran without one
    )


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
    parser.add_argument("--time-budget", type=float, default=None, help="seconds per attack")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (the attacks only)")
    parser.add_argument(
        "--no-score", action="store_true", help="attack and keep the images; score on a later run"
    )
    parser.add_argument("--results", type=Path, default=RESULTS_DIR / "dia.jsonl")
    args = parser.parse_args()

    cells = [
        {
            "dataset": d,
            "model": m,
            "rate": float(r),
            "index": i,
            "iterations": args.iterations,
            "time_budget": args.time_budget,
            "device": args.device,
        }
        for d in args.datasets.split(",")
        for m in args.models.split(",")
        for r in args.rates.split(",")
        for i in image_indices(d, args.images, args.seed)
    ]
    images_dir = args.results.with_name(args.results.stem + "-images")
    attack = partial(attack_cell, images_dir=images_dir)
    done = run_cells(cells, attack, cell_key, args.results, args.workers)
    if args.no_score:
        print(
            f"attacked {len(done)} cells; images in {images_dir}; a run without --no-score scores"
        )
        return
    for key, row in done.items():
        if "attacks" not in row:
            done[key] = score_row(row, images_dir)
            with args.results.open("a") as handle:
                handle.write(json.dumps(done[key], allow_nan=False) + "\n")

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
