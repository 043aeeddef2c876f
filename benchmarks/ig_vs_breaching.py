"""Inverting Gradients, fedleak vs breaching: same images, model weights, gradient and labels.

    .venv/bin/python benchmarks/ig_vs_breaching.py [--models convnet64,resnet18]
        [--batch-sizes 1,4] [--images 4] [--iterations 200] [--attack ig-fast] [--seed 0]

For each batch of held-out CIFAR-10 test images (indices drawn by the seed from 1000–9999;
tuning used indices 0–9), breaching's reference `invertinggradients` runs for --iterations steps
in its own venv (benchmarks/breaching_env.sh makes it). fedleak's attack then runs twice under
a time budget: breaching's wall time (equal time) and a quarter of it. Labels are given to both.
Prints a table, writes results JSON, and ends with one JSON line of the headline figures.
Goal: at equal time, median PSNR ≥ breaching's + 3 dB; at a quarter of its time, breaching's
PSNR reached on every batch.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from apps.scoring import Scores, score
from attacks import GradientInversion, Reconstruction, get_preset
from fedsim.data import load_dataset
from fedsim.fedsgd import fedsgd_observation
from fedsim.models import ModelSpec, build_model
from fedsim.observation import Observation
from fedsim.provenance import provenance, seed_everything

HERE = Path(__file__).resolve().parent
BREACHING_PYTHON = HERE / ".venv-breaching" / "bin" / "python"


def held_out_indices(count: int, seed: int) -> list[int]:
    """CIFAR-10 test indices never used for tuning (tuning used 0–9)."""
    return random.Random(seed).sample(range(1000, 10_000), count)


def run_breaching(observation: Observation, iterations: int, seed: int) -> Reconstruction:
    """Run breaching's IG in its venv on this observation; return its reconstruction as pixels."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        params = {n: observation.global_state[n] for n in observation.parameter_names()}
        save_file(
            {k: v.contiguous() for k, v in observation.global_state.items()},
            str(folder / "model.safetensors"),
        )
        save_file(
            {k: v.contiguous() for k, v in observation.gradient().items()},
            str(folder / "gradient.safetensors"),
        )
        assert set(params) == set(observation.client_update)
        request = {
            "model_file": str(folder / "model.safetensors"),
            "model_name": observation.model.name,
            "num_classes": observation.model.num_classes,
            "image_shape": list(observation.model.image_shape),
            "train_mode": observation.train_mode,
            "gradient_file": str(folder / "gradient.safetensors"),
            "labels": observation.labels.tolist(),
            "mean": list(observation.mean),
            "std": list(observation.std),
            "iterations": iterations,
            "seed": seed,
            "restarts": 1,
            "out": str(folder / "out"),
        }
        (folder / "request.json").write_text(json.dumps(request))
        subprocess.run(
            [
                str(BREACHING_PYTHON),
                str(HERE / "breaching_runner.py"),
                str(folder / "request.json"),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stats = json.loads((folder / "out" / "stats.json").read_text())
        tensors = load_file(str(folder / "out" / "reconstruction.safetensors"))
    mean = torch.tensor(observation.mean).view(-1, 1, 1)
    std = torch.tensor(observation.std).view(-1, 1, 1)
    return Reconstruction(
        images=(tensors["images"] * std + mean).clamp(0, 1),
        labels=tensors["labels"],
        gradient_distance=float("nan"),
        restart_distances=(),
        history=(),
        iterations=stats["iterations_done"],
        wall_s=stats["wall_s"],
    )


def row(name: str, reconstruction: Reconstruction, scores: Scores) -> dict:
    """One result line: medians over the batch plus time and steps."""
    summary = scores.summary()
    return {
        "attack": name,
        "psnr": summary["psnr"],
        "ssim": summary["ssim"],
        "lpips": summary["lpips"],
        "st_lpips": summary["st_lpips"],
        "wall_s": reconstruction.wall_s,
        "iterations": reconstruction.iterations,
    }


def benchmark_batch(
    model_name: str,
    images: torch.Tensor,
    labels: torch.Tensor,
    args: argparse.Namespace,
    spec_of_data,
) -> list[dict]:
    """breaching, then fedleak at equal and at a quarter of breaching's wall time."""
    seed_everything(args.seed)
    model_spec = ModelSpec(model_name, spec_of_data.num_classes, spec_of_data.image_shape)
    observation, truth = fedsgd_observation(
        build_model(model_spec), model_spec, spec_of_data, images, labels, grant_labels=True
    )
    breaching = run_breaching(observation, args.iterations, args.seed)
    rows = [row("breaching-ig", breaching, score(breaching, truth))]
    for share, label in ((1.0, "equal time"), (0.25, "quarter time")):
        config = get_preset(
            args.attack,
            label_strategy="given",
            iterations=10**9,
            time_budget_s=breaching.wall_s * share,
        )
        ours = GradientInversion(config, seed=args.seed)(observation)
        rows.append(row(f"fedleak-{args.attack} ({label})", ours, score(ours, truth)))
    return rows


def main() -> None:
    """Parse the grid, run every batch, print the table and the headline JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="convnet64,resnet18")
    parser.add_argument("--batch-sizes", default="1,4")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--attack", default="ig-fast")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "ig_vs_breaching.json")
    args = parser.parse_args()
    subprocess.run(["bash", str(HERE / "breaching_env.sh")], check=True, stdout=sys.stderr)

    data = load_dataset("cifar10", "test")
    indices = held_out_indices(args.images, args.seed)
    results = []
    for model_name in args.models.split(","):
        for batch_size in (int(b) for b in args.batch_sizes.split(",")):
            for start in range(0, len(indices) - batch_size + 1, batch_size):
                batch = indices[start : start + batch_size]
                images, labels = data.images(batch)
                for result in benchmark_batch(model_name, images, labels, args, data.spec):
                    result |= {"model": model_name, "batch_size": batch_size, "indices": batch}
                    results.append(result)
                    print(
                        f"{model_name:9s} B={batch_size} {str(batch):24s} {result['attack']:30s} "
                        f"PSNR {result['psnr']:6.2f} dB  SSIM {result['ssim']:.3f}  "
                        f"ST-LPIPS {result['st_lpips']:.3f}  {result['wall_s']:6.1f} s  "
                        f"{result['iterations']:5d} it",
                        flush=True,
                    )
    headline = summarize(results, args.attack)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "results": results,
                "summary": headline,
                "args": vars(args) | {"out": str(args.out)},
                **provenance(args.seed, torch.device("cpu")),
            },
            indent=2,
        )
    )
    print(json.dumps(headline))


def summarize(results: list[dict], attack: str) -> dict:
    """Per model and batch size: median PSNR of each, the equal-time gain, quarter-time wins."""
    headline = {}
    for key in sorted({(r["model"], r["batch_size"]) for r in results}):
        group = [r for r in results if (r["model"], r["batch_size"]) == key]
        by = {
            name: [r for r in group if r["attack"].startswith(name)]
            for name in ("breaching-ig", f"fedleak-{attack} (equal", f"fedleak-{attack} (quarter")
        }
        base, equal, quarter = by.values()
        med = {name: statistics.median(r["psnr"] for r in rows) for name, rows in by.items()}
        headline[f"{key[0]}/B{key[1]}"] = {
            "breaching_psnr": med["breaching-ig"],
            "fedleak_equal_time_psnr": med[f"fedleak-{attack} (equal"],
            "fedleak_quarter_time_psnr": med[f"fedleak-{attack} (quarter"],
            "equal_time_gain_db": med[f"fedleak-{attack} (equal"] - med["breaching-ig"],
            "quarter_time_reaches_breaching": all(
                q["psnr"] >= b["psnr"] for q, b in zip(quarter, base, strict=True)
            ),
            "breaching_s_per_it": statistics.median(r["wall_s"] / r["iterations"] for r in base),
            "fedleak_s_per_it": statistics.median(r["wall_s"] / r["iterations"] for r in equal),
        }
    return headline


if __name__ == "__main__":
    main()
