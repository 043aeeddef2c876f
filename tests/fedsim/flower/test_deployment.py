"""Flower's Deployment Engine: a real SuperLink and two SuperNodes on 127.0.0.1, run by `flwr run`.

One module fixture starts ``flower-superlink`` (insecure, not in simulation mode) and two
``flower-supernode`` processes, one partition each, submits the repository's app with
``flwr run`` (MNIST, LeNet, 1 round, one local step of batch 2) and stops every process it
started, descendants included, however the test ends. Each node gets its own FLWR_HOME and
working folder, as on separate machines; only the absolute ``out-dir`` is shared, so the
server's observations and the clients' ground truth land in one run folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from fedsim.data import DATA_DIR_ENV
from fedsim.flower.partitions import client_partitions
from fedsim.flower.run_dir import (
    ACCURACY_FILE,
    CONFIG_FILE,
    PARTITIONS_FILE,
    ground_truth_path,
    observation_files,
    observation_path,
)
from fedsim.ground_truth import GroundTruth
from fedsim.observation import Observation

REPO_ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent  # flwr's console scripts sit beside this interpreter
CONNECTION = "fedleak-test"  # the SuperLink connection's name in $FLWR_HOME/config.toml
CLIENTS, BATCH, SEED, TEST_IMAGES = 2, 2, 0, 100
RUN_CONFIG = (
    f"dataset='mnist' model='lenet' num-rounds=1 batch-size={BATCH} local-steps=1 "
    f"num-clients={CLIENTS} test-images={TEST_IMAGES} seed={SEED}"
)
START_TIMEOUT_S = 30.0
RUN_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 10.0


@dataclass
class Deployment:
    """What the fixture started and where it wrote: processes, their logs, the run folder."""

    root: Path
    run_dir: Path
    env: dict[str, str]
    processes: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    flwr_run_output: str = ""

    def start(self, name: str, args: list[str], flwr_home: Path) -> subprocess.Popen:
        """Start one Flower process in its own session and folder, logging to ``<name>.log``."""
        workdir = self.root / name
        workdir.mkdir()
        env = {**self.env, "FLWR_HOME": str(flwr_home)}
        with open(self.root / f"{name}.log", "wb") as log:
            process = subprocess.Popen(
                args,
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append((name, process))
        return process

    def flwr(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        """Run the ``flwr`` CLI against this deployment's SuperLink connection."""
        return subprocess.run(
            [str(BIN / "flwr"), *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def logs(self) -> str:
        """The end of every process log and of `flwr run`'s output, for failure messages."""
        parts = [f"--- flwr run\n{self.flwr_run_output[-3000:]}"]
        for name, _ in self.processes:
            text = (self.root / f"{name}.log").read_text(errors="replace")
            parts.append(f"--- {name}\n{text[-3000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        """SIGTERM each process, SIGKILL its group after a timeout, then any descendant left."""
        descendants = _descendants([process.pid for _, process in self.processes])
        for _, process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for _, process in self.processes:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait()
        # The SuperLink starts its SuperExec detached (own session), outside the group above.
        # Flower's processes exit when their parent is gone; any still running get SIGTERM,
        # then SIGKILL after the timeout.
        _stop_pids(descendants)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _descendants(pids: list[int]) -> set[int]:
    """Every live descendant of ``pids`` (Linux /proc; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            ppid = int(stat.read_text().rpartition(")")[2].split()[1])
            children.setdefault(ppid, []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = list(pids)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _stop_pids(pids: set[int]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        live = {pid for pid in pids if _alive(pid)}
        if not live:
            return
        for pid in live:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline and any(_alive(pid) for pid in live):
            time.sleep(0.1)


def _wait_for_health(deployment: Deployment, process: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"flower-superlink exited with {process.returncode}\n{deployment.logs()}")
        url = f"http://127.0.0.1:{port}/health"
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as reply:
            if reply.status == 200:
                return
        time.sleep(0.1)
    pytest.fail(f"SuperLink not healthy within {START_TIMEOUT_S:.0f} s\n{deployment.logs()}")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("deploy")
    env = {
        **os.environ,
        # The SuperLink and SuperNodes start `flower-superexec` by name, found on PATH.
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "FLWR_HOME": str(root / "cli-flwr-home"),
        "FLWR_TELEMETRY_ENABLED": "0",
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
        # The apps run in folders of Flower's choosing, so a relative data root must not leak.
        DATA_DIR_ENV: str(data_dir.resolve()),
    }
    deployment = Deployment(root=root, run_dir=root / "run", env=env)
    link_port, *node_ports = _free_ports(1 + CLIENTS)
    (root / "cli-flwr-home").mkdir()
    (root / "cli-flwr-home" / "config.toml").write_text(
        f'[superlink]\ndefault = "{CONNECTION}"\n\n'
        f'[superlink.{CONNECTION}]\naddress = "127.0.0.1:{link_port}"\ninsecure = true\n'
    )
    try:
        superlink = deployment.start(
            "superlink",
            [
                str(BIN / "flower-superlink"),
                "--insecure",
                "--host=127.0.0.1",
                f"--port={link_port}",
                f"--database={root / 'superlink' / 'state.db'}",
                "--disable-runtime-dependency-installation",
            ],
            flwr_home=root / "superlink" / "flwr-home",
        )
        _wait_for_health(deployment, superlink, link_port)
        for partition_id, port in enumerate(node_ports):
            name = f"supernode-{partition_id}"
            deployment.start(
                name,
                [
                    str(BIN / "flower-supernode"),
                    "--insecure",
                    f"--superlink=127.0.0.1:{link_port}",
                    f"--node-config=partition-id={partition_id} num-partitions={CLIENTS}",
                    "--host=127.0.0.1",
                    f"--port={port}",
                ],
                flwr_home=root / name / "flwr-home",
            )
        # The ServerApp waits for num-clients SuperNodes, so `flwr run` may start right away.
        args = ["run", str(REPO_ROOT), CONNECTION, "--stream"]
        args += ["--run-config", f"{RUN_CONFIG} out-dir='{deployment.run_dir}'"]
        try:
            result = deployment.flwr(*args, timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired as timeout:
            # TimeoutExpired holds bytes even when the run was in text mode.
            deployment.flwr_run_output = b"".join(
                out if isinstance(out, bytes) else (out or "").encode()
                for out in (timeout.stdout, timeout.stderr)
            ).decode(errors="replace")
            pytest.fail(f"flwr run took over {RUN_TIMEOUT_S:.0f} s\n{deployment.logs()}")
        deployment.flwr_run_output = result.stdout + result.stderr
        assert result.returncode == 0, deployment.logs()
        yield deployment
    finally:
        deployment.stop()


def _load(run_dir: Path, client: int) -> tuple[Observation, GroundTruth]:
    return (
        Observation.load(observation_path(run_dir, 1, client)),
        GroundTruth.load(ground_truth_path(run_dir, 1, client)),
    )


def test_run_finished_on_the_superlink(deployment) -> None:
    started = re.search(r"Successfully started run (\d+)", deployment.flwr_run_output)
    assert started, deployment.logs()

    listed = deployment.flwr(
        "ls", CONNECTION, "--run-id", started[1], "--format", "json", timeout=60
    )

    assert listed.returncode == 0, listed.stdout + listed.stderr
    (run,) = json.loads(listed.stdout)["runs"]
    assert run["status"] == "finished:completed", deployment.logs()


def test_captures_for_both_clients(deployment) -> None:
    run_dir = deployment.run_dir

    assert observation_files(run_dir) == [observation_path(run_dir, 1, c) for c in range(CLIENTS)]
    for client in range(CLIENTS):
        assert ground_truth_path(run_dir, 1, client).is_file()
    accuracy = json.loads((run_dir / ACCURACY_FILE).read_text())
    assert accuracy["rounds"] == [1] and accuracy["test_images"] == TEST_IMAGES
    assert 0 <= accuracy["accuracy"][0] <= 1
    config = json.loads((run_dir / CONFIG_FILE).read_text())
    assert config["config"]["clients"] == CLIENTS and config["run_config"]["dataset"] == "mnist"
    partitions = json.loads((run_dir / PARTITIONS_FILE).read_text())
    assert [c["size"] for c in partitions["clients"]] == [30_000, 30_000]


def test_each_supernode_trained_on_its_own_partition(deployment) -> None:
    partitions = client_partitions("mnist", "iid", CLIENTS, SEED)

    for client in range(CLIENTS):
        observation, truth = _load(deployment.run_dir, client)
        assert observation.context == {"round": 1, "client": client}
        assert truth.images.shape == (BATCH, 1, 28, 28) and len(truth.indices) == BATCH
        assert set(truth.indices) <= set(partitions[client].tolist())


@pytest.mark.parametrize("client", range(CLIENTS))
def test_one_step_update_gives_the_clients_gradient(
    deployment, client: int, recomputed_gradient
) -> None:
    observation, truth = _load(deployment.run_dir, client)
    expected = recomputed_gradient(observation, truth)

    derived = observation.gradient()
    assert list(derived) == list(expected)
    for name, gradient in expected.items():
        torch.testing.assert_close(derived[name], gradient, rtol=1e-3, atol=1e-5)
