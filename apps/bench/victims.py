"""Trained victims: cells whose attacked model is the global model of a Flower FedAvg run.

A suite with ``[settings.victim]`` (:class:`~apps.bench.suite.Victim`: the keys of
``[settings.federated]`` and ``local_steps``) first trains each cell's model with Flower — the
victim's training, capturing nothing (only its final weights serve), without the cell's
defense, which applies to the attacked gradient only, as in GIFD's configs — and then takes
the FedSGD gradient of the cell's held-out batch at the run's final global weights rather
than at a fresh initialisation.

The run depends on the dataset, model, dropout, seed and the victim settings, not on the attack,
defense or image draw, so cells that share those share one run: the campaign process runs each
once, one at a time, before the attacks, and keeps its final weights and accuracy under
``DIR/federated/victims/<victim_id>/`` (written to a temporary folder and renamed when complete,
so a killed campaign never leaves half a victim).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apps.bench.suite import Cell, Victim

VICTIMS_DIR = "victims"
WEIGHTS_FILE = "final_weights.safetensors"
RECORD_FILE = "victim.json"


def victim_key(cell: Cell) -> dict[str, object]:
    """What a cell's trained victim depends on."""
    return {
        "dataset": cell.dataset,
        "model": cell.model,
        "dropout": cell.dropout,
        "seed": cell.seed,
        "victim": _victim(cell).model_dump(mode="json"),
    }


def victim_id(cell: Cell) -> str:
    """16 hex digits of the SHA-256 of the canonical JSON of :func:`victim_key`."""
    text = json.dumps(victim_key(cell), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def prepare_victim(cell: Cell, cache_dir: Path) -> bool:
    """Train the cell's victim into ``cache_dir`` unless it is kept there; whether it ran."""
    from apps.bench.federated import simulate
    from fedsim.flower.run_dir import ACCURACY_FILE, CONFIG_FILE, FINAL_WEIGHTS_FILE
    from fedsim.flower.simulation import SimulationConfig

    folder = _folder(cell, cache_dir)
    if (folder / RECORD_FILE).is_file():
        return False
    victim = _victim(cell)
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        run = scratch / "run"
        summary = simulate(
            SimulationConfig(
                dataset=cell.dataset,
                model=cell.model,
                clients=victim.clients,
                rounds=victim.rounds,
                local_epochs=victim.local_epochs,
                local_steps=victim.local_steps,
                batch_size=victim.batch_size,
                lr=victim.lr,
                partition=victim.partition,
                dropout=cell.dropout,
                test_images=victim.test_images,
                seed=cell.seed,
                out_dir=run,
                capture=False,
            )
        )
        shutil.copyfile(run / FINAL_WEIGHTS_FILE, scratch / WEIGHTS_FILE)
        for name in (CONFIG_FILE, ACCURACY_FILE):
            shutil.copyfile(run / name, scratch / name)
        shutil.rmtree(run)
        record = {"key": victim_key(cell), "accuracy": list(summary.accuracy)}
        record["wall_s"] = summary.wall_s
        (scratch / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n")
        shutil.rmtree(folder, ignore_errors=True)
        scratch.rename(folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return True


def victim_weights(cell: Cell, cache_dir: Path) -> Path:
    """The final weights :func:`prepare_victim` kept for the cell (no Flower run starts here)."""
    folder = _folder(cell, cache_dir)
    if not (folder / RECORD_FILE).is_file():
        raise ValueError(f"cell {cell.cell_id}: victim {folder.name} was not trained before")
    return folder / WEIGHTS_FILE


def victim_accuracy(cell: Cell, cache_dir: Path) -> float:
    """The victim's final test accuracy (0–1), as its Flower run measured it."""
    folder = _folder(cell, cache_dir)
    return float(json.loads((folder / RECORD_FILE).read_text())["accuracy"][-1])


def _folder(cell: Cell, cache_dir: Path) -> Path:
    return Path(cache_dir) / VICTIMS_DIR / victim_id(cell)


def _victim(cell: Cell) -> Victim:
    if cell.victim is None:
        raise ValueError(f"cell {cell.cell_id} has no victim settings")
    return cell.victim
