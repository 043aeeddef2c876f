"""A federated run's folder: observations and ground truth apart, config, partitions, accuracy.

```
<run>/config.json                                    run config, seed, versions, commit
<run>/partitions.json                                each client's partition size and labels
<run>/accuracy.json                                  global test accuracy per round
<run>/privacy.json                                   DP-SGD ε per round (runs with dp-sgd)
<run>/final_weights.safetensors                      the global model after the last round
<run>/observations/round-001/client-000.safetensors  what the server received (Observation)
<run>/observations/round-001/aggregate.safetensors   under secure aggregation, all the server gets
<run>/ground_truth/round-001/client-000.safetensors  the client's batch (GroundTruth), for scoring
```
"""

from __future__ import annotations

from pathlib import Path

CONFIG_FILE = "config.json"
PARTITIONS_FILE = "partitions.json"
ACCURACY_FILE = "accuracy.json"
PRIVACY_FILE = "privacy.json"
FINAL_WEIGHTS_FILE = "final_weights.safetensors"
OBSERVATIONS_DIR = "observations"
GROUND_TRUTH_DIR = "ground_truth"


def _capture_path(run_dir: Path, kind: str, server_round: int, client: int) -> Path:
    return Path(run_dir) / kind / f"round-{server_round:03d}" / f"client-{client:03d}.safetensors"


def observation_path(run_dir: Path, server_round: int, client: int) -> Path:
    """Where the server's Observation of ``client``'s update in ``server_round`` is saved."""
    return _capture_path(run_dir, OBSERVATIONS_DIR, server_round, client)


def aggregate_path(run_dir: Path, server_round: int) -> Path:
    """Where the server keeps the one thing it learns in a securely aggregated round: the sum."""
    return Path(run_dir) / OBSERVATIONS_DIR / f"round-{server_round:03d}" / "aggregate.safetensors"


def ground_truth_path(run_dir: Path, server_round: int, client: int) -> Path:
    """Where ``client`` saves its own batch of ``server_round`` (never sent to the server)."""
    return _capture_path(run_dir, GROUND_TRUTH_DIR, server_round, client)


def observation_files(run_dir: Path) -> list[Path]:
    """Every saved observation of the run, sorted by round then client."""
    return sorted((Path(run_dir) / OBSERVATIONS_DIR).glob("round-*/client-*.safetensors"))
