"""The seams where defenses act on a Flower run: fedsim calls them, ``defenses`` fills them in.

fedsim never imports ``defenses``; whoever starts a run (the CLI, or the app module that
``flwr run .`` loads) passes a :data:`Defend` function that turns the run's configuration into
the configuration to run and the :class:`DefenseHooks` to apply.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from flwr.app import Context, Message, RecordDict
from flwr.clientapp.typing import Mod
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy
from torch import nn

from fedsim.data import DatasetSpec
from fedsim.flower.config import SimulationConfig
from fedsim.observation import ClientOptimizer


class LocalTrainer(Protocol):
    """Replaces a client's plain local steps (e.g. DP-SGD); returns metrics to send along.

    ``state`` is the client's own RecordDict, kept across rounds (Flower's ``Context.state``);
    ``partition_size`` is the number of images the client holds.
    """

    def __call__(
        self,
        model: nn.Module,
        batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
        dataset: DatasetSpec,
        *,
        lr: float,
        train_mode: bool,
        optimizer: ClientOptimizer,
        momentum: float,
        weight_decay: float,
        partition_size: int,
        state: RecordDict,
    ) -> dict[str, float]: ...


UpdateTransform = Callable[[dict[str, torch.Tensor], torch.Generator], dict[str, torch.Tensor]]
"""Changes a client's update (returned − received parameters) before it leaves the client."""

RepresentationDefense = Callable[[nn.Module, torch.Tensor], UpdateTransform]
"""Builds a client's update transform from the model it received (eval mode) and the round's
normalised inputs (Soteria prunes what that model's last layer reads of them)."""

StrategyWrapper = Callable[[Strategy, int], Strategy]
"""Wraps the server's strategy (e.g. Flower's central DP); gets the clients per round."""


class SecureAggregation(Protocol):
    """A secure-aggregation protocol over Flower messages: the server learns only the sum.

    Its extra rounds travel as ``query.secagg`` messages; a client's own secrets live in its
    ``Context.state`` between them. Client ids are partition ids, 0..n−1.
    """

    def client_step(self, msg: Message, context: Context, client: int) -> RecordDict:
        """Client: answer one of the protocol's query rounds."""
        ...

    def mask(self, vector: np.ndarray, msg: Message, context: Context, client: int) -> np.ndarray:
        """Client: its masked update (uint64) for the train message ``msg``."""
        ...

    def setup(
        self, grid: Grid, server_round: int, node_ids: list[int], vector_length: int
    ) -> dict[int, RecordDict]:
        """Server: run the rounds before training; return what each node's train message adds."""
        ...

    def unmask(
        self, grid: Grid, server_round: int, masked: dict[int, np.ndarray]
    ) -> tuple[np.ndarray, list[int]]:
        """Server: the float64 sum of the survivors' update vectors, and the survivors."""
        ...


@dataclass(frozen=True)
class DefenseHooks:
    """What the defenses of a run change: client training, the update sent, Flower mods, strategy.

    ``names`` are the defenses as canonical ``name:k=v`` strings; every Observation of the run
    records them.
    """

    names: tuple[str, ...] = ()
    train: LocalTrainer | None = None
    protect_representation: RepresentationDefense | None = None
    protect_update: UpdateTransform | None = None
    client_mods: tuple[Mod, ...] = ()
    wrap_strategy: StrategyWrapper | None = None
    secure_aggregation: SecureAggregation | None = None


NO_DEFENSES = DefenseHooks()

Defend = Callable[[SimulationConfig], tuple[SimulationConfig, DefenseHooks]]
"""Turns a run's configuration into the one to run and the hooks of its defenses."""


def undefended(config: SimulationConfig) -> tuple[SimulationConfig, DefenseHooks]:
    """The :data:`Defend` of a run without defenses; refuses a run that names some."""
    if config.defenses:
        from fedsim.errors import UserInputError

        raise UserInputError(
            f"defenses {list(config.defenses)} need the defenses package to set them up; "
            "start the run with `fedleak simulate --defense ...` or `flwr run .`"
        )
    return config, NO_DEFENSES
