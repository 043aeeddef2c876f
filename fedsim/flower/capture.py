"""The honest-but-curious server's record: one Observation per client update it receives."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from fedsim.data import DatasetSpec
from fedsim.flower.config import SimulationConfig
from fedsim.flower.run_dir import aggregate_path, observation_path
from fedsim.models import ModelSpec, build_model
from fedsim.observation import ClientOptimizer, Observation


@dataclass(frozen=True)
class ObservationRecorder:
    """Turns what the server sent and got back into an Observation file per round and client.

    ``parameter_names`` are the model's trainable parameters, in ``named_parameters()`` order:
    the update keeps those; the model's ``buffer_names`` a client returns (BatchNorm running
    statistics and batch counts) are its ``client_buffers``. The global buffers the server
    sent are part of ``global_state``. A secure aggregate keeps no buffers: its averaged
    running variances are not the variance of the joint batch, so they would state a leak
    that is not there. With ``save`` off (a run with ``capture`` off) nothing is written.
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
    defenses: tuple[str, ...] = ()
    buffer_names: tuple[str, ...] = ()
    save: bool = True

    @classmethod
    def for_run(
        cls, run: SimulationConfig, parameter_names: tuple[str, ...]
    ) -> ObservationRecorder:
        """The recorder of a run: its folder, model, data and the clients' SGD settings."""
        buffers = tuple(name for name, _ in build_model(run.model_spec()).named_buffers())
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
            defenses=run.defenses,
            buffer_names=buffers,
            save=run.capture,
        )

    def record_aggregate(
        self,
        server_round: int,
        global_state: dict[str, torch.Tensor],
        averaged_state: dict[str, torch.Tensor],
        examples: dict[int, int],
    ) -> Observation:
        """Save the one observation of a securely aggregated round: the averaged update.

        One local step per client on equal batches makes the average the FedSGD gradient of
        all clients' images together, so the Observation states a batch of every survivor's
        images (``context["aggregate_of"]`` lists the survivors, e.g. ``"0,1,3"``).
        """
        survivors = ",".join(map(str, sorted(examples)))
        observation = self._observation(
            global_state,
            averaged_state,
            local_steps=min(examples.values()) // self.batch_size,
            batch_size=self.batch_size * len(examples),
            num_examples=sum(examples.values()),
            context={"round": server_round, "aggregate_of": survivors},
        )
        if self.save:
            observation.save(aggregate_path(self.run_dir, server_round))
        return observation

    def record(
        self,
        server_round: int,
        client: int,
        global_state: dict[str, torch.Tensor],
        returned_state: dict[str, torch.Tensor],
        num_examples: int,
        metrics: dict[str, float] | None = None,
    ) -> Observation:
        """Build the Observation of one reply and save it under the run folder.

        ``metrics`` are what the client reported besides its example count (e.g. its DP-SGD
        ε); they go into the Observation's context.
        """
        observation = self._observation(
            global_state,
            returned_state,
            # Full batches per step, so the reply's example count tells the steps (also when
            # clients run epochs over partitions of different sizes).
            local_steps=num_examples // self.batch_size,
            batch_size=self.batch_size,
            num_examples=num_examples,
            context={"round": server_round, "client": client, **(metrics or {})},
            client_buffers={
                name: returned_state[name] for name in self.buffer_names if name in returned_state
            },
        )
        if self.save:
            observation.save(observation_path(self.run_dir, server_round, client))
        return observation

    def _observation(
        self,
        global_state: dict[str, torch.Tensor],
        returned_state: dict[str, torch.Tensor],
        *,
        local_steps: int,
        batch_size: int,
        num_examples: int,
        context: dict[str, int | float | str],
        client_buffers: dict[str, torch.Tensor] | None = None,
    ) -> Observation:
        return Observation(
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
            local_steps=local_steps,
            batch_size=batch_size,
            num_examples=num_examples,
            train_mode=self.train_mode,
            defenses=self.defenses,
            context=context,
            client_buffers=client_buffers or {},
        )
