"""A federated run's folder: observations and ground truth apart, config, partitions, accuracy.

```
<run>/config.json                                    run config, seed, versions, commit
<run>/partitions.json                                each client's partition size and labels
<run>/accuracy.json                                  global test accuracy per round
<run>/observations/round-001/client-000.safetensors  what the server received (Observation)
<run>/ground_truth/round-001/client-000.safetensors  the client's batch (GroundTruth), for scoring
```
"""

from __future__ import annotations

from pathlib import Path

CONFIG_FILE = "config.json"
PARTITIONS_FILE = "partitions.json"
ACCURACY_FILE = "accuracy.json"
OBSERVATIONS_DIR = "observations"
GROUND_TRUTH_DIR = "ground_truth"


def _capture_path(run_dir: Path, kind: str, server_round: int, client: int) -> Path:
    return Path(run_dir) / kind / f"round-{server_round:03d}" / f"client-{client:03d}.safetensors"


def observation_path(run_dir: Path, server_round: int, client: int) -> Path:
    """Where the server's Observation of ``client``'s update in ``server_round`` is saved."""
    return _capture_path(run_dir, OBSERVATIONS_DIR, server_round, client)


def ground_truth_path(run_dir: Path, server_round: int, client: int) -> Path:
    """Where ``client`` saves its own batch of ``server_round`` (never sent to the server)."""
    return _capture_path(run_dir, GROUND_TRUTH_DIR, server_round, client)


def observation_files(run_dir: Path) -> list[Path]:
    """Every saved observation of the run, sorted by round then client."""
    return sorted((Path(run_dir) / OBSERVATIONS_DIR).glob("round-*/client-*.safetensors"))
