"""Shared fixtures: the real offline datasets, found through FEDLEAK_DATA_DIR."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from fedsim.data import DATA_DIR_ENV, get_dataset_spec, normalize
from fedsim.fedsgd import client_gradient, fedsgd_observation
from fedsim.ground_truth import GroundTruth
from fedsim.models import ModelSpec, build_model
from fedsim.observation import Observation


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder of offline Parquet datasets named by FEDLEAK_DATA_DIR (``make test`` sets it).

    Without it the tests that need real images fail with this reason rather than pass unseen.
    """
    root = os.environ.get(DATA_DIR_ENV)
    if not root or not Path(root).is_dir():
        pytest.fail(
            f"{DATA_DIR_ENV}={root!r} is not a folder; point it at the offline datasets "
            "(shared/data), or run `make test`, which uses ../shared/data"
        )
    return Path(root)


def _synthetic_observation(
    model_name: str,
    labels: list[int],
    *,
    dataset: str = "cifar10",
    grant_labels: bool = False,
    train_mode: bool = False,
    seed: int = 0,
) -> tuple[Observation, GroundTruth]:
    """A FedSGD observation of random [0, 1] images with the given labels on a fresh model."""
    spec = get_dataset_spec(dataset)
    torch.manual_seed(seed)
    model_spec = ModelSpec(model_name, spec.num_classes, spec.image_shape)
    images = torch.rand(len(labels), *spec.image_shape)
    return fedsgd_observation(
        build_model(model_spec),
        model_spec,
        spec,
        images,
        torch.tensor(labels),
        train_mode=train_mode,
        grant_labels=grant_labels,
    )


@pytest.fixture
def synthetic_observation() -> Callable[..., tuple[Observation, GroundTruth]]:
    """Factory: ``synthetic_observation(model_name, labels, dataset=, grant_labels=, ...)``."""
    return _synthetic_observation


def _defended_observation(
    model_name: str, labels: list[int], defenses: list[str], *, seed: int = 0
) -> tuple[Observation, GroundTruth]:
    """A synthetic FedSGD observation (``_synthetic_observation``) sent under ``defenses``."""
    from defenses.fedsgd import defend_gradient
    from defenses.specs import parse_defenses

    observation, truth = _synthetic_observation(model_name, labels)
    model = build_model(observation.model)
    model.load_state_dict(observation.global_state)
    model.eval()
    inputs = normalize(truth.images, get_dataset_spec("cifar10"))
    specs = parse_defenses(defenses, "attack")
    defended = defend_gradient(observation, model, inputs, truth.labels, {}, specs, seed=seed)
    return defended, truth


@pytest.fixture
def defended_observation() -> Callable[..., tuple[Observation, GroundTruth]]:
    """Factory: ``defended_observation(model_name, labels, defenses)``, CIFAR-10-shaped."""
    return _defended_observation


def _recomputed_gradient(observation: Observation, truth: GroundTruth) -> dict[str, torch.Tensor]:
    """The client's own gradient on its ground-truth batch, from the global weights it got."""
    model = build_model(observation.model)
    model.load_state_dict(observation.global_state)
    inputs = normalize(truth.images, get_dataset_spec(observation.dataset))
    return client_gradient(model, inputs, truth.labels, train_mode=observation.train_mode)


@pytest.fixture
def recomputed_gradient() -> Callable[[Observation, GroundTruth], dict[str, torch.Tensor]]:
    """Factory: ``recomputed_gradient(observation, truth)``, the client's true gradient."""
    return _recomputed_gradient


@pytest.fixture(scope="session")
def simulated_run(
    tmp_path_factory: pytest.TempPathFactory, data_dir: Path
) -> Callable[[str, list[str]], Path]:
    """Factory: ``simulated_run(name, args)`` runs ``fedleak simulate ARGS`` into a fresh
    folder (MNIST, 100 test images) and returns it; a failed run fails the test."""
    from apps.cli import main

    def run(name: str, args: list[str]) -> Path:
        run_dir = tmp_path_factory.mktemp(name) / "run"
        try:
            main(
                [
                    "simulate",
                    "--dataset",
                    "mnist",
                    "--test-images",
                    "100",
                    *args,
                    "--out",
                    str(run_dir),
                ]
            )
        except SystemExit as exit_:
            assert not exit_.code
        return run_dir

    return run


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[[list[str]], tuple[int, str, str]]:
    """Run ``fedleak ARGS`` in-process; return (exit code, stdout, stderr)."""
    from apps.cli import main

    def run(args: list[str]) -> tuple[int, str, str]:
        try:
            main(args)
            code = 0
        except SystemExit as exit_:
            code = exit_.code or 0
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def _tiny_biggan(folder: Path, *, side: int = 32, num_classes: int = 10, seed: int = 0) -> Path:
    """Write a randomly initialised, tiny BigGAN-deep making ``side``-pixel images (32 or 64)
    as a pytorch-pretrained-biggan folder (config.json + pytorch_model.bin)."""
    try:
        from pytorch_pretrained_biggan import BigGAN, BigGANConfig
    except ImportError:
        pytest.fail("pytorch-pretrained-biggan is missing; install the dev extra: .[dev]")
    # (upsample?, input and output channels in units of channel_width): 4 px doubled per True.
    layers = [(False, 16, 16), (True, 16, 8), (True, 8, 4), (False, 4, 2), (True, 2, 1)]
    if side == 64:
        layers = [(True, 16, 16), *layers]
    config = BigGANConfig(
        output_dim=side,
        z_dim=16,
        class_embed_dim=16,
        channel_width=4,
        num_classes=num_classes,
        layers=layers,
        attention_layer_position=3,
    )
    torch.manual_seed(seed)
    model = BigGAN(config)
    with torch.no_grad():
        # The output batch norm's affine parameters are left uninitialised by the package.
        model.generator.bn.weight.uniform_(0.5, 1.5)
        model.generator.bn.bias.normal_(0, 0.1)
        for name, value in model.named_parameters():
            if name.endswith("gamma"):  # self-attention starts switched off
                value.fill_(0.5)
        for name, value in model.named_buffers():
            if name.endswith("running_means"):
                value.normal_(0, 0.1)
            elif name.endswith("running_vars"):
                value.uniform_(0.5, 1.5)
        # Power iterations, so that each spectral norm's stored vectors fit its weight.
        model.train()
        for _ in range(30):
            model(torch.randn(2, config.z_dim), torch.eye(num_classes)[:2], 1.0)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(config.to_json_string())
    torch.save(model.eval().state_dict(), folder / "pytorch_model.bin")
    return folder


@pytest.fixture
def tiny_biggan() -> Callable[..., Path]:
    """Factory: ``tiny_biggan(folder, side=32, num_classes=10, seed=0)`` writes a random tiny
    BigGAN folder (needs pytorch-pretrained-biggan, a dev dependency) and returns it."""
    return _tiny_biggan
