"""The Flower runs of a federated suite: a cell's utility (cached per campaign folder) and the
secure aggregate that ``secagg`` cells attack.

Utility depends on the dataset, model, dropout, defense, ``[settings.federated]`` and seed, not
on the attack or the image draw, so cells that share those share one run: the campaign process
runs each once, one at a time, before the cells' attacks (which may run in parallel workers);
its summary lands in
``DIR/federated/<utility_id>.json`` (written atomically, read before running) and every such
cell copies the run's ``config.json``, ``accuracy.json`` and ``privacy.json`` into its own
``federated/`` folder. The run folder itself (every client's images as ground truth) is
temporary.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from apps.bench.suite import Cell, Federated

if TYPE_CHECKING:
    from fedsim.flower.simulation import RunSummary, SimulationConfig

FEDERATED_DIR = "federated"
KEPT_FILES = ("config.json", "accuracy.json", "privacy.json")
AGGREGATE_TEST_IMAGES = 100  # the aggregate's run is attacked, not scored for accuracy


@dataclass(frozen=True)
class Utility:
    """One Flower run's outcome: accuracy per round (0–1), the last round's largest client ε
    (None without dp-sgd) and its wall time."""

    utility_id: str
    accuracy: tuple[float, ...]
    epsilon: float | None
    wall_s: float


def utility_key(cell: Cell) -> dict[str, object]:
    """What a cell's utility depends on."""
    _federated(cell)
    return {
        "dataset": cell.dataset,
        "model": cell.model,
        "dropout": cell.dropout,
        "defense": cell.defense,
        "seed": cell.seed,
        "federated": cell.federated.model_dump(mode="json"),
    }


def utility_id(cell: Cell) -> str:
    """16 hex digits of the SHA-256 of the canonical JSON of :func:`utility_key`."""
    text = json.dumps(utility_key(cell), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def prepare_utility(cell: Cell, cache_dir: Path) -> bool:
    """Run the cell's Flower run into ``cache_dir`` unless it is cached there; whether it ran.

    The campaign process calls this, one run at a time, before the cells that read it."""
    name = utility_id(cell)
    cache = Path(cache_dir) / f"{name}.json"
    if _read_cache(cache, utility_key(cell)) is not None:
        return False
    record = _run_utility(cell, _federated(cell), name)
    _write_atomically(cache, json.dumps(record, allow_nan=False))
    return True


def measure_utility(cell: Cell, cache_dir: Path, keep_dir: Path) -> Utility:
    """The cell's utility as :func:`prepare_utility` cached it; its run's small files are
    copied into ``keep_dir``. A utility not cached yet raises (no Flower run starts here)."""
    name = utility_id(cell)
    record = _read_cache(Path(cache_dir) / f"{name}.json", utility_key(cell))
    if record is None:
        raise ValueError(f"cell {cell.cell_id}: utility {name} was not measured before its attack")
    shutil.rmtree(keep_dir, ignore_errors=True)
    keep_dir.mkdir(parents=True)
    for file_name, text in record["files"].items():
        (keep_dir / file_name).write_text(text)
    return Utility(
        utility_id=name,
        accuracy=tuple(record["accuracy"]),
        epsilon=record["epsilon"],
        wall_s=record["wall_s"],
    )


def attack_secure_aggregate(cell: Cell, out: Path, score: bool = True) -> dict:
    """Attack round 1's secure aggregate of a small Flower run (the federated settings'
    clients, the cell's batch size, one local step) and score it against every survivor (or,
    without ``score``, keep it to score later)."""
    from apps.attack_run import CaptureAttackRequest, run_capture_attack

    federated = _federated(cell)
    run_dir = Path(tempfile.mkdtemp(prefix="fedleak-aggregate-"))
    try:
        config = _simulation_config(
            cell,
            federated,
            run_dir,
            rounds=1,
            batch_size=cell.batch_size,
            train_mode=cell.train_mode,
            test_images=min(AGGREGATE_TEST_IMAGES, federated.test_images),
        )
        simulate(config)
        request = CaptureAttackRequest(
            run=run_dir / "run",
            round=1,
            client=None,
            out=out,
            score=score,
            **cell.attack_settings(),
        )
        metrics = run_capture_attack(request)
        (out / "aggregate_run").mkdir(exist_ok=True)
        shutil.copyfile(run_dir / "run" / "config.json", out / "aggregate_run" / "config.json")
        return metrics
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _run_utility(cell: Cell, federated: Federated, name: str) -> dict[str, object]:
    run_dir = Path(tempfile.mkdtemp(prefix="fedleak-utility-"))
    try:
        config = _simulation_config(
            cell,
            federated,
            run_dir,
            rounds=federated.rounds,
            local_epochs=federated.local_epochs,
            batch_size=federated.batch_size,
            test_images=federated.test_images,
        )
        summary = simulate(config)
        files = {
            file_name: (run_dir / "run" / file_name).read_text()
            for file_name in KEPT_FILES
            if (run_dir / "run" / file_name).is_file()
        }
        privacy = files.get("privacy.json")
        epsilon = json.loads(privacy)["epsilon"][-1] if privacy is not None else None
        return {
            "utility_id": name,
            "key": utility_key(cell),
            "accuracy": list(summary.accuracy),
            "epsilon": None if epsilon is None else float(epsilon),
            "wall_s": summary.wall_s,
            "files": files,
        }
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _federated(cell: Cell) -> Federated:
    if cell.federated is None:
        raise ValueError(f"cell {cell.cell_id} has no federated settings")
    return cell.federated


def _simulation_config(
    cell: Cell, federated: Federated, run_dir: Path, **settings: object
) -> SimulationConfig:
    """The Flower run of a cell under its defense, in ``run_dir``/run; ``settings`` add the
    rounds, batches and evaluation that differ between the utility and the aggregate run."""
    from fedsim.flower.simulation import SimulationConfig

    return SimulationConfig(
        dataset=cell.dataset,
        model=cell.model,
        clients=federated.clients,
        lr=federated.lr,
        partition=federated.partition,
        dropout=cell.dropout,
        seed=cell.seed,
        defenses=cell.defenses(),
        out_dir=run_dir / "run",
        **settings,
    )


def simulate(config: SimulationConfig) -> RunSummary:
    """Run a bench Flower run under its defenses, Flower's per-round logs silenced."""
    from defenses.flower_run import defend_run
    from fedsim.flower.simulation import run_simulation

    # A bad defense combination fails here; run_simulation checks the rest before Ray starts.
    defend_run(config)
    # Flower logs every round at INFO; the campaign's bar counts cells instead.
    logging.getLogger("flwr").setLevel(logging.ERROR)
    return run_simulation(config, defend=defend_run)


def _read_cache(path: Path, key: dict[str, object]) -> dict | None:
    """The cached record, or None when there is none (or it is not this key's)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("key") == key else None


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
