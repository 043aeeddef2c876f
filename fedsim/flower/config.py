"""The validated configuration of one federated run, and its form as Flower run-config keys."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fedsim.data import DatasetSpec, ImageDataset, get_dataset_spec
from fedsim.errors import UnknownNameError, UserInputError
from fedsim.flower.partitions import client_partitions, parse_partition, train_split
from fedsim.models import ModelSpec, has_dropout, model_names
from fedsim.models.trained_weights import weights_file
from fedsim.observation import ClientOptimizer

# SimulationConfig field → key in pyproject's [tool.flwr.app.config] and `flwr run -c`.
RUN_CONFIG_KEYS = {
    "dataset": "dataset",
    "model": "model",
    "rounds": "num-rounds",
    "local_steps": "local-steps",
    "local_epochs": "local-epochs",
    "batch_size": "batch-size",
    "lr": "lr",
    "optimizer": "optimizer",
    "momentum": "momentum",
    "weight_decay": "weight-decay",
    "partition": "partition",
    "dropout": "dropout",
    "train_mode": "train-mode",
    "test_images": "test-images",
    "allow_embedded": "allow-embedded",
    "seed": "seed",
    "out_dir": "out-dir",
    "defenses": "defenses",
    "dp_compatible": "dp-compatible",
    "capture": "capture",
    "initial_weights": "initial-weights",
}
DEFENSE_SEPARATOR = ";"
"""Joins the defenses of a run into the one string a Flower run-config value can be."""


class SimulationConfig(BaseModel):
    """One federated run: data, model, partitioning, local training, evaluation, run folder.

    Every client runs ``local_steps`` steps, or ``local_epochs`` passes over its partition
    when that is above 0 (mean cross-entropy; torch's SGD with ``momentum`` and
    ``weight_decay``, or Adam with ``weight_decay``, fresh each round) at learning rate ``lr``
    on batches of ``batch_size`` images of its partition, in train mode unless ``train_mode``
    is False.
    Global accuracy uses the first ``test_images`` test images. With ``capture`` off the
    server saves no Observation and the clients no ground truth (a run that only trains).
    ``initial_weights`` (another run's ``final_weights.safetensors``, or its folder) is the
    global model of round 1 instead of a fresh one seeded by ``seed``: the rounds that follow
    are those of a model already trained.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str = "cifar10"
    model: str = "lenet"
    clients: int = Field(8, ge=1)
    rounds: int = Field(3, ge=1)
    local_steps: int = Field(1, ge=1)
    local_epochs: int = Field(0, ge=0)
    batch_size: int = Field(4, ge=1)
    lr: float = Field(0.1, gt=0, allow_inf_nan=False)
    optimizer: ClientOptimizer = "sgd"
    momentum: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0, allow_inf_nan=False)
    partition: str = "iid"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    train_mode: bool = True
    test_images: int = Field(500, ge=1)
    allow_embedded: bool = False  # offline fallback: foolbox's 20 sample images, both splits
    seed: int = 0
    out_dir: Path = Path("runs/simulate")
    defenses: tuple[str, ...] = ()  # `name:k=v,...` specs, set up by the defenses package
    dp_compatible: bool = False  # BatchNorm → GroupNorm for DP-SGD (ModelSpec.dp_compatible)
    capture: bool = True
    initial_weights: Path | None = None

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, name: str) -> str:
        get_dataset_spec(name)  # raises UnknownNameError with the valid names
        return name

    @field_validator("model")
    @classmethod
    def _known_model(cls, name: str) -> str:
        if name not in model_names():
            raise UnknownNameError("model", name, model_names())
        return name

    @field_validator("partition")
    @classmethod
    def _known_partition(cls, text: str) -> str:
        return str(parse_partition(text))

    @field_validator("initial_weights")
    @classmethod
    def _weights_exist(cls, path: Path | None) -> Path | None:
        return None if path is None else weights_file(path)

    @model_validator(mode="after")
    def _steps_or_epochs(self) -> SimulationConfig:
        problem = steps_or_epochs_problem(self.local_steps, self.local_epochs)
        if problem:
            raise UserInputError(problem)
        return self

    @model_validator(mode="after")
    def _momentum_is_sgds(self) -> SimulationConfig:
        if self.optimizer == "adam" and self.momentum:
            raise UserInputError(
                f"momentum={self.momentum} applies to optimizer 'sgd'; 'adam' uses its default "
                "betas (0.9, 0.999)"
            )
        return self

    @model_validator(mode="after")
    def _dropout_applies(self) -> SimulationConfig:
        if self.dropout > 0 and not has_dropout(self.model):
            with_dropout = ", ".join(name for name in model_names() if has_dropout(name))
            raise UserInputError(
                f"model {self.model!r} has no dropout layers, so dropout={self.dropout} "
                f"cannot apply; models with dropout: {with_dropout}"
            )
        return self

    def dataset_spec(self) -> DatasetSpec:
        """The registry entry of ``dataset``."""
        return get_dataset_spec(self.dataset)

    def model_spec(self) -> ModelSpec:
        """The registry model every client and the server build."""
        spec = self.dataset_spec()
        return ModelSpec(
            self.model, spec.num_classes, spec.image_shape, self.dropout, self.dp_compatible
        )

    def train_data(self) -> ImageDataset:
        """The train split the clients draw their partitions from (loaded once per process)."""
        return train_split(self.dataset, self.allow_embedded)

    def partitions(self) -> tuple[np.ndarray, ...]:
        """Train-split row indices of every client's partition."""
        return client_partitions(
            self.dataset, self.partition, self.clients, self.seed, self.allow_embedded
        )

    def to_run_config(self) -> dict[str, int | float | str | bool]:
        """The run as Flower run-config keys (``num-rounds``, ``batch-size``, ...)."""
        values = self.model_dump(mode="json")
        values["defenses"] = DEFENSE_SEPARATOR.join(self.defenses)
        values["initial_weights"] = values["initial_weights"] or ""  # run configs hold no None
        return {key: values[field] for field, key in RUN_CONFIG_KEYS.items()}

    @classmethod
    def from_run_config(cls, run_config: Mapping[str, object], clients: int) -> SimulationConfig:
        """Read a Flower run config; keys it lacks keep their defaults, unknown keys are ignored."""
        values = {
            field: run_config[key] for field, key in RUN_CONFIG_KEYS.items() if key in run_config
        }
        if "defenses" in values:
            text = str(values["defenses"])
            values["defenses"] = tuple(
                p.strip() for p in text.split(DEFENSE_SEPARATOR) if p.strip()
            )
        if values.get("initial_weights") == "":
            values["initial_weights"] = None
        return cls(clients=clients, **values)


def steps_or_epochs_problem(local_steps: int, local_epochs: int) -> str | None:
    """Why a client's ``local_steps`` and ``local_epochs`` cannot both be set, or None."""
    if local_epochs and local_steps != 1:
        return (
            f"local_steps={local_steps} and local_epochs={local_epochs} both set; "
            "give one: steps per round, or passes over the partition per round"
        )
    return None
