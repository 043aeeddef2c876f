"""What the attacker sees (Observation) and what only scoring may read (GroundTruth).

Both are frozen dataclasses saved as safetensors with their scalar fields as JSON metadata,
so any later stage can be rerun from the files alone.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import torch
from safetensors.torch import load_file, safe_open, save_file

from fedsim.errors import UserInputError
from fedsim.models import ModelSpec

UpdateKind = Literal["gradient", "weights"]


@dataclass(frozen=True)
class Observation:
    """One client's update in one round, as an honest-but-curious server receives it.

    ``global_state`` holds the parameters and buffers the server sent; ``client_update`` is
    either the parameter gradient (FedSGD, ``update_kind="gradient"``) or the parameters the
    client returned (``"weights"``). ``labels`` is set only when the threat model grants them.
    ``mean``/``std`` are the model's input normalisation, which the server knows.
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
    defenses: tuple[str, ...] = ()
    context: dict[str, int | float | str] = field(default_factory=dict)

    def parameter_names(self) -> list[str]:
        """Names of the trainable parameters, in the order the update lists them."""
        return list(self.client_update)

    def gradient(self) -> dict[str, torch.Tensor]:
        """The parameter gradient: as sent, or (global − returned)/lr for one-step weights."""
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
        if self.labels is not None:
            tensors["labels"] = self.labels
        meta = {k: v for k, v in asdict(self).items() if k not in _TENSOR_FIELDS}
        meta["update_order"] = list(self.client_update)
        _save(path, tensors, meta)

    @classmethod
    def load(cls, path: Path) -> Observation:
        """Read an observation written by :meth:`save`."""
        tensors, meta = _load(path)
        order = meta.pop("update_order")
        meta["model"] = ModelSpec(
            **{**meta["model"], "image_shape": tuple(meta["model"]["image_shape"])}
        )
        for key in ("mean", "std", "defenses"):
            meta[key] = tuple(meta[key])
        return cls(
            global_state=_strip(tensors, "global/"),
            client_update={k: tensors[f"update/{k}"] for k in order},
            labels=tensors.get("labels"),
            **meta,
        )


@dataclass(frozen=True)
class GroundTruth:
    """The client's secret batch: pixels in [0, 1] (N, C, H, W), labels, and dataset indices."""

    images: torch.Tensor
    labels: torch.Tensor
    indices: tuple[int, ...] = ()

    def save(self, path: Path) -> None:
        """Write this ground truth as one safetensors file, apart from any observation."""
        _save(path, {"images": self.images, "labels": self.labels}, {"indices": list(self.indices)})

    @classmethod
    def load(cls, path: Path) -> GroundTruth:
        """Read a ground truth written by :meth:`save`."""
        tensors, meta = _load(path)
        return cls(tensors["images"], tensors["labels"], tuple(meta["indices"]))


_TENSOR_FIELDS = {"global_state", "client_update", "labels"}


def _save(path: Path, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    contiguous = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(contiguous, str(tmp), metadata={"fedleak": json.dumps(meta)})
    tmp.replace(path)


def _load(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    if not path.is_file():
        raise UserInputError(f"no such file {str(path)!r}")
    with safe_open(str(path), framework="pt") as handle:
        meta = json.loads((handle.metadata() or {})["fedleak"])
    return load_file(str(path)), meta


def _strip(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
