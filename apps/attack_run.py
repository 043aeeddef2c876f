"""One attack end to end: data → FedSGD observation → reconstruction → scores → run folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from apps.report import write_attack_report
from apps.scoring import score
from attacks import GradientInversion, get_preset
from attacks.engine import ProgressCallback
from fedsim.data import load_dataset
from fedsim.device import resolve_device
from fedsim.errors import UserInputError
from fedsim.fedsgd import fedsgd_observation
from fedsim.models import ModelSpec, build_model
from fedsim.provenance import provenance, seed_everything


class AttackRequest(BaseModel):
    """A validated ``fedleak attack`` on a batch of dataset images (FedSGD, one client)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str = "cifar10"
    split: Literal["train", "test"] = "test"
    indices: tuple[int, ...] = (0,)
    model: str = "convnet64"
    dropout: float = 0.0
    attack: str = "ig-fast"
    iterations: int | None = Field(None, ge=0)
    time_budget_s: float | None = Field(None, gt=0)
    restarts: int | None = Field(None, ge=1)
    seed: int = 0
    labels: Literal["given", "idlg", "estimate"] | None = None
    train_mode: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    image_folder: Path | None = None
    allow_embedded: bool = False
    out: Path

    @field_validator("indices")
    @classmethod
    def _some_indices(cls, indices: tuple[int, ...]) -> tuple[int, ...]:
        if not indices:
            raise ValueError("at least one image index is needed")
        return indices

    def attack_overrides(self) -> dict[str, object]:
        """The preset fields this request sets."""
        overrides = {
            "iterations": self.iterations,
            "time_budget_s": self.time_budget_s,
            "restarts": self.restarts,
            "label_strategy": self.labels,
        }
        return {k: v for k, v in overrides.items() if v is not None}


def run_attack(
    request: AttackRequest,
    *,
    progress: ProgressCallback | None = None,
    notice: Callable[[str], None] = print,
) -> dict:
    """Run the request, write its folder under ``request.out``, and return its metrics."""
    attack_config = get_preset(request.attack, **request.attack_overrides())
    device = resolve_device(request.device)
    seed_everything(request.seed)
    data = load_dataset(
        request.dataset,
        request.split,
        image_folder=request.image_folder,
        allow_embedded=request.allow_embedded,
    )
    if data.source.startswith("embedded"):
        notice(f"no {request.dataset} data found locally or online; using {data.source}")
    images, labels = data.images(request.indices)
    model_spec = ModelSpec(
        request.model, data.spec.num_classes, data.spec.image_shape, request.dropout
    )
    observation, truth = fedsgd_observation(
        build_model(model_spec),
        model_spec,
        data.spec,
        images,
        labels,
        train_mode=request.train_mode,
        grant_labels=request.labels == "given",
        indices=request.indices,
    )
    if attack_config.label_strategy == "idlg" and len(labels) != 1:
        raise UserInputError(
            f"attack {request.attack!r} with idlg labels needs one image, got {len(labels)}; "
            "use --labels estimate or --labels given"
        )
    attack = GradientInversion(attack_config, device=device, seed=request.seed, progress=progress)
    reconstruction = attack(observation)
    config = {
        "request": request.model_dump(mode="json"),
        "attack": attack_config.model_dump(),
        "data_source": data.source,
        "threat_model": {
            "update": "FedSGD gradient of one batch (mean cross-entropy)",
            "labels_granted": observation.labels is not None,
            "train_mode": request.train_mode,
        },
        **provenance(request.seed, device),
    }
    return write_attack_report(
        request.out,
        config=config,
        observation=observation,
        truth=truth,
        reconstruction=reconstruction,
        scores=score(reconstruction, truth),
    )
