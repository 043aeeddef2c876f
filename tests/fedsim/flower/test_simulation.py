"""A real Flower simulation (Ray): what the server captured is exactly what the clients sent.

One small run (MNIST, LeNet, 3 clients × 2 rounds, one local step) through ``fedleak simulate``
serves all checks; bad configurations are refused before Ray starts.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from apps.cli import main
from fedsim.data import get_dataset_spec
from fedsim.flower.local_training import dropout_seed, train_steps
from fedsim.flower.run_dir import (
    ACCURACY_FILE,
    CONFIG_FILE,
    FINAL_WEIGHTS_FILE,
    PARTITIONS_FILE,
    ground_truth_path,
    observation_files,
    observation_path,
)
from fedsim.flower.simulation import SimulationConfig, run_simulation
from fedsim.ground_truth import GroundTruth
from fedsim.models import build_model
from fedsim.observation import Observation

CLIENTS, ROUNDS, BATCH, LR, SEED = 3, 2, 2, 0.1, 7


def run_cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(args)
        except SystemExit as exit_:
            code = exit_.code or 0
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> tuple[Path, dict]:
    run_dir = tmp_path_factory.mktemp("sim") / "run"
    args = ["simulate", "--dataset", "mnist", "--model", "lenet", "--clients", str(CLIENTS)]
    args += ["--rounds", str(ROUNDS), "--local-steps", "1", "--batch-size", str(BATCH)]
    args += ["--lr", str(LR), "--partition", "dirichlet:0.5", "--seed", str(SEED)]
    args += ["--test-images", "200", "--out", str(run_dir), "--json"]
    code, out, err = run_cli(args)
    assert code == 0, err
    return run_dir, json.loads(out.strip().splitlines()[-1])


def test_json_line_and_run_folder(run) -> None:
    run_dir, summary = run

    assert summary["run_dir"] == str(run_dir)
    assert (summary["rounds"], summary["clients"]) == (ROUNDS, CLIENTS)
    assert summary["observations"] == ROUNDS * CLIENTS == len(observation_files(run_dir))
    assert len(summary["accuracy"]) == ROUNDS and all(0 <= a <= 1 for a in summary["accuracy"])
    accuracy = json.loads((run_dir / ACCURACY_FILE).read_text())
    assert accuracy["accuracy"] == summary["accuracy"] and accuracy["test_images"] == 200
    config = json.loads((run_dir / CONFIG_FILE).read_text())
    assert config["seed"] == SEED and config["versions"]["flwr"]
    assert config["run_config"]["partition"] == "dirichlet:0.5"
    partitions = json.loads((run_dir / PARTITIONS_FILE).read_text())
    assert sum(c["size"] for c in partitions["clients"]) == 60_000
    for r in range(1, ROUNDS + 1):
        for c in range(CLIENTS):
            assert ground_truth_path(run_dir, r, c).is_file()


def _load(run_dir: Path, server_round: int, client: int) -> tuple[Observation, GroundTruth]:
    return (
        Observation.load(observation_path(run_dir, server_round, client)),
        GroundTruth.load(ground_truth_path(run_dir, server_round, client)),
    )


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Compute as the clients did: Ray gives each client one CPU, hence one torch thread.

    Conv backward sums in an order that depends on the thread count, so two threads can differ
    from one in the last bit.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize(("server_round", "client"), [(1, 0), (2, 2)])
def test_captured_update_is_the_clients_real_update(
    run, one_thread, server_round: int, client: int
) -> None:
    observation, truth = _load(run[0], server_round, client)
    model = build_model(observation.model)
    model.load_state_dict(observation.global_state)
    spec = get_dataset_spec(observation.dataset)
    batches = list(
        zip(
            truth.images.split(observation.batch_size),
            truth.labels.split(observation.batch_size),
            strict=True,
        )
    )

    torch.manual_seed(dropout_seed(SEED, server_round, client))
    train_steps(model, batches, spec, lr=observation.lr, train_mode=observation.train_mode)

    assert (observation.context["round"], observation.context["client"]) == (server_round, client)
    assert len(batches) == observation.local_steps == 1
    assert truth.images.shape == (BATCH, 1, 28, 28) and len(truth.indices) == BATCH
    recomputed = dict(model.named_parameters())
    assert list(observation.client_update) == list(recomputed)
    for name, returned in observation.client_update.items():
        assert torch.equal(returned, recomputed[name].detach()), name


def test_one_step_update_gives_the_clients_gradient(run, recomputed_gradient) -> None:
    observation, truth = _load(run[0], 1, 1)
    expected = recomputed_gradient(observation, truth)

    derived = observation.gradient()
    assert list(derived) == list(expected)
    for name, gradient in expected.items():
        torch.testing.assert_close(derived[name], gradient, rtol=1e-3, atol=1e-5)


def test_next_global_model_is_the_average_of_captured_updates(run) -> None:
    updates = [_load(run[0], 1, c)[0].client_update for c in range(CLIENTS)]
    next_global = _load(run[0], 2, 0)[0].global_state

    for name in updates[0]:
        average = torch.stack([u[name] for u in updates]).mean(dim=0)
        torch.testing.assert_close(next_global[name], average)


def test_observation_files_hold_no_ground_truth(run) -> None:
    run_dir = run[0]
    for path in observation_files(run_dir):
        server_round, client = int(path.parent.name[6:]), int(path.stem[7:])
        truth = GroundTruth.load(ground_truth_path(run_dir, server_round, client))
        with safe_open(str(path), framework="pt") as handle:
            keys = list(handle.keys())
            tensors = [handle.get_tensor(key) for key in keys]
            meta = json.loads(handle.metadata()["fedleak"])
        assert all(key.startswith(("global/", "update/")) for key in keys)
        assert not any(t.shape in (truth.images.shape, truth.labels.shape) for t in tensors)
        assert not {"labels", "indices", "images"} & set(meta)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--clients", "0"], "clients"),
        (["--partition", "zipf"], "zipf"),
        (["--rounds", "0"], "rounds"),
        (["--lr", "0"], "lr"),
        (["--model", "alexnet"], "alexnet"),
        (["--model", "lenet", "--dropout", "0.5"], "dropout"),
        (["--local-steps", "2", "--local-epochs", "1"], "local_epochs"),
        (["--optimizer", "rmsprop"], "rmsprop"),
        (["--optimizer", "adam", "--momentum", "0.9"], "momentum"),
        (["--initial-weights", "no-such-run"], "no weights at 'no-such-run'"),
    ],
)
def test_bad_configuration_fails_early_with_one_line(args: list[str], named: str, tmp_path) -> None:
    code, _, err = run_cli(["simulate", *args, "--out", str(tmp_path / "run")])

    assert code == 2
    assert len(err.strip().splitlines()) == 1 and named in err
    assert not (tmp_path / "run").exists()


def test_another_models_initial_weights_fail_before_ray_starts(data_dir, tmp_path) -> None:
    other = tmp_path / "final_weights.safetensors"
    save_file({"w": torch.zeros(1)}, str(other), metadata={"model": "mlp"})
    args = ["simulate", "--dataset", "mnist", "--model", "lenet", "--initial-weights", str(other)]

    code, _, err = run_cli([*args, "--out", str(tmp_path / "run")])

    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "are a 'mlp' model's; the model here is 'lenet'" in err
    assert not (tmp_path / "run").exists()


def test_batch_larger_than_a_partition_fails_before_ray_starts(data_dir, tmp_path) -> None:
    args = ["simulate", "--dataset", "mnist", "--clients", "1000", "--batch-size", "100"]

    code, _, err = run_cli([*args, "--out", str(tmp_path / "run")])

    assert code == 2
    assert err.strip() == (
        "fedleak: error: batch size 100 is larger than the smallest partition (60 images, "
        "client 0 of 1000 with iid); use --batch-size ≤ 60 or fewer clients"
    )
    assert not (tmp_path / "run").exists()


def test_epochs_train_on_the_whole_partition_and_the_server_counts_the_steps(
    data_dir, tmp_path, one_thread
) -> None:
    # Two clients of 30,000 digits, batches of 10,000: one epoch is three full steps.
    run_dir, batch = tmp_path / "run", 10_000
    args = ["simulate", "--dataset", "mnist", "--model", "lenet", "--clients", "2"]
    args += ["--rounds", "1", "--local-epochs", "1", "--batch-size", str(batch)]
    args += ["--lr", "0.01", "--test-images", "100", "--seed", str(SEED), "--out", str(run_dir)]

    code, _, err = run_cli(args)

    assert code == 0, err
    observation, truth = _load(run_dir, 1, 0)
    assert observation.local_steps == 3 and observation.num_examples == 3 * batch
    assert sorted(truth.indices) == sorted(set(truth.indices)) and len(truth.indices) == 3 * batch
    model = build_model(observation.model)
    model.load_state_dict(observation.global_state)
    batches = list(zip(truth.images.split(batch), truth.labels.split(batch), strict=True))
    torch.manual_seed(dropout_seed(SEED, 1, 0))
    train_steps(model, batches, get_dataset_spec("mnist"), lr=0.01, train_mode=True)
    for name, returned in observation.client_update.items():
        assert torch.equal(returned, dict(model.named_parameters())[name].detach()), name


def test_a_run_without_capture_trains_and_saves_no_update_or_image(data_dir, tmp_path) -> None:
    run_dir = tmp_path / "run"
    config = SimulationConfig(
        dataset="mnist", model="lenet", clients=2, rounds=2, batch_size=BATCH, lr=LR,
        test_images=100, seed=SEED, out_dir=run_dir, capture=False,
    )  # fmt: skip

    summary = run_simulation(config)

    assert summary.observations == 0 and len(summary.accuracy) == 2
    assert [p.name for p in run_dir.rglob("*.safetensors")] == [FINAL_WEIGHTS_FILE]
