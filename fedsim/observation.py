"""What the attacker sees: one client's update in one round, under a stated threat model.

Saved as safetensors with the scalar fields as JSON metadata, so any later stage can be rerun
from the file alone. The client's secret batch lives apart, in :mod:`fedsim.ground_truth`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Literal

import torch

from fedsim.models import ModelSpec
from fedsim.storage import load_tensors, save_tensors

UpdateKind = Literal["gradient", "weights"]
ClientOptimizer = Literal["sgd", "adam"]


@dataclass(frozen=True)
class Observation:
    """One client's update in one round, as an honest-but-curious server receives it.

    ``global_state`` holds the parameters and buffers the server sent; ``client_update`` is
    either the parameter gradient (FedSGD, ``update_kind="gradient"``) or the parameters the
    client returned (``"weights"``). ``labels`` is set only when the threat model grants them.
    ``mean``/``std`` are the model's input normalisation, which the server knows; ``lr``,
    ``optimizer`` (torch's SGD or Adam with default betas), ``momentum`` and ``weight_decay``
    are the client optimiser settings the server chose. ``client_buffers`` are the buffers a
    FedAvg client returned beside its parameters (BatchNorm ``running_mean``, ``running_var``,
    ``num_batches_tracked``); a FedSGD gradient carries none, so it is empty there.
    """

    model: ModelSpec
    dataset: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    global_state: dict[str, torch.Tensor]
    client_update: dict[str, torch.Tensor]
    update_kind: UpdateKind
    lr: float
    local_steps: int
    batch_size: int
    num_examples: int
    train_mode: bool
    labels: torch.Tensor | None = None
    momentum: float = 0.0
    weight_decay: float = 0.0
    optimizer: ClientOptimizer = "sgd"
    defenses: tuple[str, ...] = ()
    context: dict[str, int | float | str] = field(default_factory=dict)
    client_buffers: dict[str, torch.Tensor] = field(default_factory=dict)

    def parameter_names(self) -> list[str]:
        """Names of the trainable parameters, in the order the update lists them."""
        return list(self.client_update)

    def buffer_names(self) -> list[str]:
        """Names of the buffers the client returned (empty: none leaked, e.g. FedSGD)."""
        return list(self.client_buffers)

    @property
    def examples_seen(self) -> int:
        """Images behind the update: ``batch_size`` fresh images per local step."""
        return self.local_steps * self.batch_size

    def gradient(self) -> dict[str, torch.Tensor]:
        """The gradient as sent, or (global − returned)/lr: the sum of the local SGD steps'
        directions; for Adam clients, the sum of its normalised steps (≈ signs after one step)."""
        if self.update_kind == "gradient":
            return self.client_update
        return {
            name: (self.global_state[name] - returned) / self.lr
            for name, returned in self.client_update.items()
        }

    def save(self, path: Path) -> None:
        """Write this observation as one safetensors file."""
        tensors = {f"global/{k}": v for k, v in self.global_state.items()}
        tensors |= {f"update/{k}": v for k, v in self.client_update.items()}
        tensors |= {f"buffers/{k}": v for k, v in self.client_buffers.items()}
        if self.labels is not None:
            tensors["labels"] = self.labels
        meta = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _TENSOR_FIELDS}
        meta["model"] = asdict(self.model)
        meta["update_order"] = list(self.client_update)
        save_tensors(path, tensors, meta)

    @classmethod
    def load(cls, path: Path) -> Observation:
        """Read an observation written by :meth:`save`."""
        tensors, meta = load_tensors(path)
        order = meta.pop("update_order")
        meta["model"] = ModelSpec(
            **{**meta["model"], "image_shape": tuple(meta["model"]["image_shape"])}
        )
        for key in ("mean", "std", "defenses"):
            meta[key] = tuple(meta[key])
        return cls(
            global_state=_strip(tensors, "global/"),
            client_update={k: tensors[f"update/{k}"] for k in order},
            client_buffers=_strip(tensors, "buffers/"),
            labels=tensors.get("labels"),
            **meta,
        )


_TENSOR_FIELDS = {"global_state", "client_update", "client_buffers", "labels"}


def _strip(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
