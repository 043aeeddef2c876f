"""The honest-but-curious server's record: one Observation per client update it receives."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from fedsim.data import DatasetSpec
from fedsim.flower.config import SimulationConfig
from fedsim.flower.run_dir import observation_path
from fedsim.models import ModelSpec
from fedsim.observation import ClientOptimizer, Observation


@dataclass(frozen=True)
class ObservationRecorder:
    """Turns what the server sent and got back into an Observation file per round and client.

    ``parameter_names`` are the model's trainable parameters, in ``named_parameters()`` order:
    the update keeps those. Buffers a client returns (BatchNorm running statistics) are left
    out of the Observation; FedAvg still averages them into the next global model, and the
    global buffers the server sent are part of ``global_state``.
    """

    run_dir: Path
    model: ModelSpec
    dataset: DatasetSpec
    parameter_names: tuple[str, ...]
    lr: float
    optimizer: ClientOptimizer
    batch_size: int
    train_mode: bool
    momentum: float = 0.0
    weight_decay: float = 0.0

    @classmethod
    def for_run(
        cls, run: SimulationConfig, parameter_names: tuple[str, ...]
    ) -> ObservationRecorder:
        """The recorder of a run: its folder, model, data and the clients' SGD settings."""
        return cls(
            run_dir=run.out_dir,
            model=run.model_spec(),
            dataset=run.dataset_spec(),
            parameter_names=parameter_names,
            lr=run.lr,
            optimizer=run.optimizer,
            batch_size=run.batch_size,
            train_mode=run.train_mode,
            momentum=run.momentum,
            weight_decay=run.weight_decay,
        )

    def record(
        self,
        server_round: int,
        client: int,
        global_state: dict[str, torch.Tensor],
        returned_state: dict[str, torch.Tensor],
        num_examples: int,
    ) -> Observation:
        """Build the Observation of one reply and save it under the run folder."""
        observation = Observation(
            model=self.model,
            dataset=self.dataset.name,
            mean=tuple(self.dataset.mean),
            std=tuple(self.dataset.std),
            global_state=global_state,
            client_update={name: returned_state[name] for name in self.parameter_names},
            update_kind="weights",
            lr=self.lr,
            optimizer=self.optimizer,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            # Full batches per step, so the reply's example count tells the steps (also when
            # clients run epochs over partitions of different sizes).
            local_steps=num_examples // self.batch_size,
            batch_size=self.batch_size,
            num_examples=num_examples,
            train_mode=self.train_mode,
            context={"round": server_round, "client": client},
        )
        observation.save(observation_path(self.run_dir, server_round, client))
        return observation
