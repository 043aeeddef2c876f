"""Run a federated training on Flower's Simulation Engine (Ray) in this process, in one call."""

from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from fedsim.errors import UserInputError
from fedsim.flower.client_app import build_client_app
from fedsim.flower.config import SimulationConfig
from fedsim.flower.defense_hooks import Defend, undefended
from fedsim.flower.run_dir import ACCURACY_FILE, observation_files
from fedsim.flower.server_app import RoundCallback, build_server_app
from fedsim.models import build_model
from fedsim.models.trained_weights import load_trained_weights

__all__ = ["RunSummary", "SimulationConfig", "check_run", "run_simulation"]

# Each simulated client gets one CPU and no GPU; Ray runs as many at once as CPUs allow.
_CLIENT_RESOURCES = {"num_cpus": 1, "num_gpus": 0.0}


@dataclass(frozen=True)
class RunSummary:
    """What a finished run wrote: its folder, size, observation count and accuracy per round."""

    run_dir: Path
    rounds: int
    clients: int
    observations: int
    accuracy: tuple[float, ...]
    wall_s: float

    def to_json(self) -> dict[str, object]:
        """The summary as JSON-ready values (``run_dir`` as a string)."""
        return {**asdict(self), "run_dir": str(self.run_dir), "accuracy": list(self.accuracy)}


def check_partitions(config: SimulationConfig) -> list[int]:
    """Partition the train split as the clients will; fail if a batch exceeds a partition."""
    sizes = [len(rows) for rows in config.partitions()]
    smallest = min(sizes)
    if config.batch_size > smallest:
        raise UserInputError(
            f"batch size {config.batch_size} is larger than the smallest partition "
            f"({smallest} images, client {sizes.index(smallest)} of {config.clients} with "
            f"{config.partition}); use --batch-size ≤ {smallest} or fewer clients"
        )
    return sizes


def check_run(config: SimulationConfig) -> None:
    """Fail in one line before Ray starts: a batch larger than a partition, or initial weights
    that do not fit the run's model."""
    check_partitions(config)
    if config.initial_weights is not None:
        load_trained_weights(build_model(config.model_spec()), config.model, config.initial_weights)


def run_simulation(
    config: SimulationConfig,
    *,
    on_round: RoundCallback | None = None,
    defend: Defend = undefended,
) -> RunSummary:
    """Train ``config.clients`` clients for ``config.rounds`` rounds and capture every update.

    Validates the partitions and the initial weights first, then starts Ray, runs the ServerApp
    in a thread of this process and the ClientApps in Ray actors, and returns once Ray has shut
    down.
    """
    from flwr.simulation import run_simulation as flower_run_simulation

    started = time.perf_counter()
    config = config.model_copy(update={"out_dir": config.out_dir.resolve()})
    check_run(config)
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    # Flower's Ray backend rewrites this process's PYTHONPATH to its sys.path; undo that after.
    pythonpath = os.environ.get("PYTHONPATH")
    try:
        with warnings.catch_warnings():
            # Ray announces a future default for GPU env vars on every start; clients use none.
            warnings.filterwarnings("ignore", message="Tip: In future versions of Ray")
            flower_run_simulation(
                server_app=build_server_app(config, on_round, defend),
                client_app=build_client_app(config, defend),
                num_supernodes=config.clients,
                backend_config={"client_resources": dict(_CLIENT_RESOURCES)},
            )
    finally:
        if pythonpath is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = pythonpath
    accuracy = json.loads((config.out_dir / ACCURACY_FILE).read_text())["accuracy"]
    return RunSummary(
        run_dir=config.out_dir,
        rounds=config.rounds,
        clients=config.clients,
        observations=len(observation_files(config.out_dir)),
        accuracy=tuple(accuracy),
        wall_s=time.perf_counter() - started,
    )
