"""Writers of small run folders in fedleak's layouts: attack runs, simulations, bench stores."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
from pathlib import Path

import torch
from PIL import Image, ImageFilter
from torchvision.transforms.functional import pil_to_tensor

from apps.grids import comparison_grid

CELL_SCHEMA = """CREATE TABLE cells (
    cell_id TEXT PRIMARY KEY, suite TEXT, status TEXT, dataset TEXT, model TEXT, attack TEXT,
    defense TEXT, batch_size INTEGER, images INTEGER, seed INTEGER, psnr REAL, ssim REAL,
    lpips REAL, st_lpips REAL, label_accuracy REAL, accuracy REAL, epsilon REAL, wall_s REAL,
    error TEXT, config_json TEXT, metrics_json TEXT, versions_json TEXT, started_at TEXT,
    finished_at TEXT, cell_dir TEXT)"""


def sample_images(count: int) -> list[Image.Image]:
    """Real CIFAR-10 test images: the samples the ``foolbox`` package ships (a dependency)."""
    spec = importlib.util.find_spec("foolbox")
    assert spec is not None and spec.submodule_search_locations, "foolbox is not installed"
    folder = Path(spec.submodule_search_locations[0]) / "data"
    paths = sorted(folder.glob("cifar10_*.png"))[:count]
    return [Image.open(path).convert("RGB") for path in paths]


def write_grid(path: Path, psnr: list[float], seed: int = 0) -> None:
    """A real grid.png made by the project's own grid writer: originals, noisy blurred copies."""
    originals, guesses = [], []
    for original in sample_images(seed + len(psnr))[seed:]:
        noise = Image.effect_noise(original.size, 80).convert("RGB")
        guess = Image.blend(original.filter(ImageFilter.GaussianBlur(1)), noise, 0.35)
        originals.append(pil_to_tensor(original))
        guesses.append(pil_to_tensor(guess))
    grid = comparison_grid(torch.stack(originals) / 255, torch.stack(guesses) / 255, psnr)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)


def write_attack_run(
    folder: Path,
    *,
    psnr: float = 21.5,
    attack: str = "ig",
    capture: tuple[int, int] | None = None,
) -> Path:
    """An attack run folder in ``fedleak attack``'s layout (metrics as it writes them)."""
    folder.mkdir(parents=True, exist_ok=True)
    per_image_psnr = [psnr - 1.5, psnr + 1.5]
    write_grid(folder / "grid.png", per_image_psnr, seed=int(psnr) % 8)
    metrics = {
        "psnr": psnr,
        "ssim": 0.61,
        "lpips": None,
        "lpips_unavailable": "AlexNet weights not cached",
        "st_lpips": 0.125,
        "label_accuracy": 1.0,
        "per_image": {
            "psnr": per_image_psnr,
            "ssim": [0.55, 0.67],
            "lpips": None,
            "st_lpips": [0.1, 0.15],
            "pairing": [1, 0],
        },
        "true_labels": [9, 3],
        "recovered_labels": [3, 9],
        "gradient_distance": 0.0125,
        "restart_distances": [0.0125],
        "wall_s": 3.25,
        "iterations": 4,
        "history": [0.2, 0.1, 0.05, 0.0125],
    }
    request: dict[str, object] = {"attack": attack, "seed": 0}
    if capture is not None:
        request |= {"run": "sim", "round": capture[0], "client": capture[1]}
    config = {"request": request, "attack": {"name": attack, "iterations": 4}, "seed": 0}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def write_simulation_run(folder: Path, *, privacy: bool = False) -> Path:
    """A two-client, two-round simulation folder with one attack on round 1, client 1."""
    config = {"config": {"dataset": "mnist", "model": "lenet", "clients": 2, "rounds": 2}}
    accuracy = {"test_images": 100, "initial": 0.1, "rounds": [1, 2], "accuracy": [0.42, 0.64]}
    partitions = {
        "partition": "dirichlet:0.5",
        "clients": [
            {"client": 0, "size": 3, "label_counts": [2, 1, 0]},
            {"client": 1, "size": 4, "label_counts": [0, 1, 3]},
        ],
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "accuracy.json").write_text(json.dumps(accuracy))
    (folder / "partitions.json").write_text(json.dumps(partitions))
    if privacy:
        epsilon = {"rounds": [1, 2], "epsilon": [1.5, 2.25], "delta": 1e-5}
        (folder / "privacy.json").write_text(json.dumps(epsilon))
    for round_ in (1, 2):
        for client in (0, 1):
            for kind in ("observations", "ground_truth"):
                capture = folder / kind / f"round-{round_:03d}" / f"client-{client:03d}.safetensors"
                capture.parent.mkdir(parents=True, exist_ok=True)
                capture.write_bytes(b"")
    write_attack_run(folder / "attacks" / "round-001-client-001-ig", psnr=30.25, capture=(1, 1))
    return folder


BENCH_CELLS = [
    {
        "cell_id": "cifar10-lenet-ig-none-b1-s0",
        "suite": "smoke",
        "status": "done",
        "dataset": "cifar10",
        "model": "lenet",
        "attack": "ig",
        "defense": "none",
        "batch_size": 1,
        "images": 2,
        "seed": 0,
        "psnr": 24.75,
        "ssim": 0.8,
        "lpips": None,
        "st_lpips": 0.05,
        "label_accuracy": 1.0,
        "accuracy": 0.31,
        "wall_s": 12.0,
        "cell_dir": "cells/none",
    },
    {
        "cell_id": "cifar10-lenet-ig-gaussian-b1-s0",
        "suite": "smoke",
        "status": "done",
        "dataset": "cifar10",
        "model": "lenet",
        "attack": "ig",
        "defense": "gaussian:std=0.01",
        "batch_size": 1,
        "images": 2,
        "seed": 0,
        "psnr": 11.6,
        "ssim": 0.2,
        "lpips": None,
        "st_lpips": 0.4,
        "label_accuracy": 0.5,
        "accuracy": 0.27,
        "epsilon": 8.0,
        "wall_s": 13.0,
        "cell_dir": "cells/gaussian",
    },
    {
        "cell_id": "cifar10-lenet-dia-none-b1-s0",
        "suite": "smoke",
        "status": "failed",
        "dataset": "cifar10",
        "model": "lenet",
        "attack": "dia",
        "defense": "none",
        "batch_size": 1,
        "images": 2,
        "seed": 0,
        "error": "lenet has no dropout layer for dia",
    },
]


def write_bench_store(folder: Path, cells: list[dict] | None = None) -> Path:
    """A bench folder: results.sqlite with the cells (two done, one failed) and their folders."""
    cells = BENCH_CELLS if cells is None else cells
    folder.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(folder / "results.sqlite") as db:
        db.execute(CELL_SCHEMA)
        for cell in cells:
            names = ", ".join(cell)
            marks = ", ".join("?" for _ in cell)
            db.execute(f"INSERT INTO cells ({names}) VALUES ({marks})", tuple(cell.values()))
    db.close()
    for cell in cells:
        if cell.get("attack") and cell["status"] == "done":
            write_attack_run(folder / cell["cell_dir"], psnr=cell["psnr"], attack=cell["attack"])
    return folder
