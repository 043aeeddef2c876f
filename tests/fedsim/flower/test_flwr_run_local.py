"""``flwr run .`` with no federation named: Flower's own local SuperLink runs the same apps.

Flower starts that SuperLink in the background and leaves it running; the test stops the one
that keeps its state under the test's own ``FLWR_HOME``, and nothing else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil

from fedsim.data import DATA_DIR_ENV
from fedsim.flower.run_dir import CONFIG_FILE, ground_truth_path, observation_files

REPO_ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
RUN_TIMEOUT_S = 240


def test_flwr_run_on_the_local_superlink_writes_the_run_folder(tmp_path: Path, data_dir) -> None:
    flwr_home, run_dir = tmp_path / "flwr-home", tmp_path / "run"
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "FLWR_HOME": str(flwr_home),
        "FLWR_TELEMETRY_ENABLED": "0",
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
        DATA_DIR_ENV: str(Path(data_dir).resolve()),
    }
    run_config = f"dataset='mnist' num-rounds=1 test-images=100 out-dir='{run_dir}'"
    try:
        completed = subprocess.run(
            [str(BIN / "flwr"), "run", ".", "--run-config", run_config, "--stream"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
        )
    finally:
        _stop_processes_using(flwr_home)

    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    config = json.loads((run_dir / CONFIG_FILE).read_text())
    clients = config["config"]["clients"]  # the local federation's SuperNodes
    assert clients >= 1 and config["run_config"]["dataset"] == "mnist"
    assert len(observation_files(run_dir)) == clients
    assert all(ground_truth_path(run_dir, 1, c).is_file() for c in range(clients))


def _stop_processes_using(flwr_home: Path) -> None:
    """Terminate the processes whose command line names ``flwr_home``, and their children."""
    ours = [
        process
        for process in psutil.process_iter(["cmdline"])
        if str(flwr_home) in " ".join(process.info["cmdline"] or [])
    ]
    family = ours + [child for process in ours for child in process.children(recursive=True)]
    for process in family:
        process.terminate()
    _, alive = psutil.wait_procs(family, timeout=10)
    for process in alive:
        process.kill()
