"""Cells that attack a client update captured in a real Flower run, not a FedSGD gradient.

A suite with ``[settings.capture]`` gives each seed one Flower run of one round: one client per
batch of the draw (``images // batch_size`` clients, iid partitions of the train split), each
taking ``local_steps`` SGD steps of ``batch_size`` images in the cell's train mode, and returning
its weights and BatchNorm buffers to the curious server. Cell ``#b`` attacks client ``b``'s
captured update and is scored against that client's batches (its ground truth), so the draw's
images are the clients' train images, not the suite's test split. With ``[settings.victim]`` the
round starts from the trained victim's final global weights (:mod:`apps.bench.victims`, run
first) instead of a fresh model: the update of a client of a model already trained.

Cells that share a run (the same dataset, model, dropout, mode, batch size, seed and capture
settings; e.g. every attack on the same clients) read one copy, kept under
``DIR/federated/captures/<capture_id>/run`` (written to a temporary folder and renamed when
complete, so a killed campaign never leaves half a run). The campaign process runs these Flower
runs one at a time before the attacks (a Flower run starts Ray and takes every core); the
attacks then run on the campaign's workers like any cell's.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from apps.bench.victims import victim_id, victim_weights

if TYPE_CHECKING:
    from apps.bench.suite import Capture, Cell
    from fedsim.flower.simulation import SimulationConfig

CAPTURES_DIR = "captures"
CAPTURE_TEST_IMAGES = 10  # the run is attacked, not scored for accuracy


def capture_key(cell: Cell) -> dict[str, object]:
    """What a cell's captured run depends on."""
    capture = _capture(cell)
    key: dict[str, object] = {
        "dataset": cell.dataset,
        "model": cell.model,
        "dropout": cell.dropout,
        "train_mode": cell.train_mode,
        "batch_size": cell.batch_size,
        "seed": cell.seed,
        "capture": capture.model_dump(mode="json"),
    }
    if cell.victim is not None:  # the round starts from the trained victim's weights
        key["victim"] = victim_id(cell)
    return key


def capture_id(cell: Cell) -> str:
    """16 hex digits of the SHA-256 of the canonical JSON of :func:`capture_key`."""
    text = json.dumps(capture_key(cell), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def prepare_capture(cell: Cell, cache_dir: Path) -> bool:
    """Run the cell's Flower run into ``cache_dir`` unless it is kept there; whether it ran.

    The campaign process calls this, one run at a time, before the cells that read it."""
    folder = Path(cache_dir) / CAPTURES_DIR / capture_id(cell)
    if (folder / "key.json").is_file():
        return False
    captured_run(cell, cache_dir)
    return True


def captured_run(cell: Cell, cache_dir: Path) -> Path:
    """The run folder of the cell's Flower run under ``cache_dir``, run first unless kept."""
    folder = Path(cache_dir) / CAPTURES_DIR / capture_id(cell)
    if (folder / "key.json").is_file():
        return folder / "run"
    from apps.bench.federated import simulate

    capture = _capture(cell)
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        simulate(_simulation_config(cell, capture, scratch / "run", cache_dir))
        (scratch / "key.json").write_text(json.dumps(capture_key(cell), indent=2) + "\n")
        shutil.rmtree(folder, ignore_errors=True)
        scratch.rename(folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return folder / "run"


def attack_capture(cell: Cell, out: Path, cache_dir: Path, score: bool = True) -> dict:
    """Attack client ``cell.batch``'s round-1 update of the cell's Flower run and score it
    against that client's ground truth (or, without ``score``, keep it to score later)."""
    from apps.attack_run import CaptureAttackRequest, run_capture_attack

    run = captured_run(cell, cache_dir)
    request = CaptureAttackRequest(
        run=run, round=1, client=cell.batch, out=out, score=score, **cell.attack_settings()
    )
    metrics = run_capture_attack(request)
    (out / "capture_run").mkdir(exist_ok=True)
    shutil.copyfile(run / "config.json", out / "capture_run" / "config.json")
    return metrics


def _capture(cell: Cell) -> Capture:
    if cell.capture is None:
        raise ValueError(f"cell {cell.cell_id} has no capture settings")
    return cell.capture


def _simulation_config(
    cell: Cell, capture: Capture, run_dir: Path, cache_dir: Path
) -> SimulationConfig:
    from fedsim.flower.simulation import SimulationConfig

    weights = None if cell.victim is None else victim_weights(cell, cache_dir)
    return SimulationConfig(
        dataset=cell.dataset,
        model=cell.model,
        clients=capture.clients,
        rounds=1,
        local_steps=capture.local_steps,
        batch_size=cell.batch_size,
        lr=capture.lr,
        partition=capture.partition,
        dropout=cell.dropout,
        train_mode=cell.train_mode,
        test_images=CAPTURE_TEST_IMAGES,
        seed=cell.seed,
        out_dir=run_dir,
        initial_weights=weights,
    )
