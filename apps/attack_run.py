"""One attack end to end: observation → reconstruction → scores → run folder.

The observation comes either from a FedSGD step on dataset images (``AttackRequest``) or from
a client update that the curious server captured in a Flower run (``CaptureAttackRequest``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from apps.report import (
    CONFIG_FILE,
    GROUND_TRUTH_FILE,
    OBSERVATION_FILE,
    RECONSTRUCTION_FILE,
    save_stages,
    write_attack_report,
)
from apps.scoring import score
from attacks import GradientInversion, get_preset
from attacks.defense_replay import replayed_defenses
from attacks.engine import ProgressCallback
from attacks.generators import generator_for
from attacks.matching import batch_norm_targets
from attacks.presets import PRESETS
from attacks.reconstruction import Reconstruction
from defenses.fedsgd import defend_gradient, defended_model_spec
from defenses.specs import parse_defenses
from fedsim.data import load_dataset, normalize
from fedsim.device import resolve_device
from fedsim.errors import UserInputError
from fedsim.fedsgd import fedsgd_observation
from fedsim.flower.run_dir import (
    aggregate_path,
    ground_truth_path,
    observation_files,
    observation_path,
)
from fedsim.ground_truth import GroundTruth
from fedsim.models import ModelSpec, build_model
from fedsim.models.trained_weights import load_trained_weights
from fedsim.observation import Observation
from fedsim.provenance import provenance, seed_everything
from fedsim.storage import write_json

UNSCORED_FILE = "unscored.json"
"""An attack folder written with ``score=False``: the search's effort, until it is scored."""

LabelChoice = Literal["given", "idlg", "estimate"]


class AttackSettings(BaseModel):
    """What every attack run sets: the preset, its budget, labels, seed, device, output."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attack: str = "ig-fast"
    iterations: int | None = Field(None, ge=0)
    time_budget_s: float | None = Field(None, gt=0)
    restarts: int | None = Field(None, ge=1)
    seed: int = 0
    labels: LabelChoice | None = None
    assume_fedsgd: bool = False
    adaptive: bool = False
    generator: Path | None = None
    defenses: tuple[str, ...] = ()
    device: Literal["auto", "cpu", "cuda"] = "auto"
    score: bool = True
    out: Path

    def attack_overrides(self) -> dict[str, object]:
        """The preset fields this request sets."""
        overrides = {
            "iterations": self.iterations,
            "time_budget_s": self.time_budget_s,
            "restarts": self.restarts,
            "label_strategy": self.labels,
            "assume_fedsgd": self.assume_fedsgd or None,
            "defense_aware": self.adaptive or None,
        }
        return {k: v for k, v in overrides.items() if v is not None}


class AttackRequest(AttackSettings):
    """Attack the FedSGD gradient one client would send for a batch of dataset images."""

    dataset: str = "cifar10"
    split: Literal["train", "test"] = "test"
    indices: tuple[int, ...] = (0,)
    model: str = "convnet64"
    dropout: float = 0.0
    train_mode: bool = False
    weights: Path | None = Field(
        None,
        description="the attacked model's weights (a `fedleak simulate` run's final global "
        "model); default: its seeded initialisation",
    )
    image_folder: Path | None = None
    allow_embedded: bool = False

    @field_validator("indices")
    @classmethod
    def _some_indices(cls, indices: tuple[int, ...]) -> tuple[int, ...]:
        if not indices:
            raise ValueError("at least one image index is needed")
        return indices


class CaptureAttackRequest(AttackSettings):
    """Attack one client's update in one round of a ``fedleak simulate`` run folder, or, with
    ``client`` None, the round's securely aggregated sum (scored against every survivor)."""

    run: Path
    round: int = Field(ge=1)
    client: int | None = Field(None, ge=0)


def run_attack(
    request: AttackRequest,
    *,
    progress: ProgressCallback | None = None,
    notice: Callable[[str], None] = print,
) -> dict:
    """Build the FedSGD observation of the request's images, attack it, write its folder."""
    get_preset(request.attack, **request.attack_overrides())  # fail on a bad name before data
    defenses = parse_defenses(request.defenses, "attack")
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
    model_spec = defended_model_spec(
        ModelSpec(request.model, data.spec.num_classes, data.spec.image_shape, request.dropout),
        defenses,
    )
    model = build_model(model_spec)
    victim = "seeded initialisation"
    if request.weights is not None:
        made = load_trained_weights(model, request.model, request.weights)
        victim = f"trained weights {request.weights} ({made.get('rounds', '?')} rounds)"
    observation, truth = fedsgd_observation(
        model,
        model_spec,
        data.spec,
        images,
        labels,
        train_mode=request.train_mode,
        grant_labels=request.labels == "given",
        indices=request.indices,
    )
    if defenses:
        inputs = normalize(images, data.spec)
        observation = defend_gradient(
            observation, model, inputs, labels, truth.dropout_masks, defenses, request.seed
        )
    source = {
        "data_source": data.source,
        "update": "FedSGD gradient of one batch",
        "victim_weights": victim,
    }
    return _attack_and_report(request, observation, truth, source, progress)


def run_capture_attack(
    request: CaptureAttackRequest, *, progress: ProgressCallback | None = None
) -> dict:
    """Attack a captured client update and score it against that client's ground truth."""
    get_preset(request.attack, **request.attack_overrides())
    if request.defenses:
        raise UserInputError(
            f"--defense {request.defenses[0]!r} does not apply to a capture: its run set the "
            "defenses (see its config.json); rerun `fedleak simulate --defense ...`"
        )
    seed_everything(request.seed)
    if request.client is None:
        observation, truth = load_aggregate(request.run, request.round)
        capture = aggregate_path(request.run, request.round)
        update = f"securely aggregated mean of clients {observation.context['aggregate_of']}"
    else:
        observation, truth = load_capture(request.run, request.round, request.client)
        capture = observation_path(request.run, request.round, request.client)
        update = "FedAvg weights"
    if request.labels == "given":
        observation = replace(observation, labels=truth.labels)
    steps = observation.local_steps
    source = {
        "capture": str(capture),
        "update": f"{update} after {steps} local step(s) of {observation.batch_size}",
        "attack_replays_local_steps": steps > 1 and not request.assume_fedsgd,
    }
    return _attack_and_report(request, observation, truth, source, progress)


def load_capture(run: Path, server_round: int, client: int) -> tuple[Observation, GroundTruth]:
    """The server's observation of one client update and that client's ground truth."""
    path = observation_path(run, server_round, client)
    if not path.is_file() and aggregate_path(run, server_round).is_file():
        raise UserInputError(
            f"round {server_round} of {str(run)!r} was securely aggregated (secagg): the server "
            f"never held client {client}'s update, only the sum; attack it with --aggregate"
        )
    if not path.is_file():
        captured = observation_files(run)
        if not captured:
            raise UserInputError(f"no captured updates in {str(run)!r}; run `fedleak simulate`")
        rounds = sorted({int(p.parent.name.removeprefix("round-")) for p in captured})
        clients = sorted({int(p.stem.removeprefix("client-")) for p in captured})
        raise UserInputError(
            f"no capture of round {server_round} client {client} in {str(run)!r}; "
            f"valid: rounds {rounds[0]}..{rounds[-1]}, clients {clients[0]}..{clients[-1]}"
        )
    observation = Observation.load(path)
    return observation, GroundTruth.load(ground_truth_path(run, server_round, client))


def load_aggregate(run: Path, server_round: int) -> tuple[Observation, GroundTruth]:
    """The securely aggregated update of a round and the survivors' ground truth, joined in
    client order (the images the aggregate stems from)."""
    path = aggregate_path(run, server_round)
    if not path.is_file():
        raise UserInputError(
            f"no secure aggregate of round {server_round} in {str(run)!r}; --aggregate needs a "
            "run with `--defense secagg` (attack a client's update with --client C)"
        )
    observation = Observation.load(path)
    clients = [int(c) for c in str(observation.context["aggregate_of"]).split(",")]
    truths = [GroundTruth.load(ground_truth_path(run, server_round, c)) for c in clients]
    truth = GroundTruth(
        images=torch.cat([t.images for t in truths]),
        labels=torch.cat([t.labels for t in truths]),
        indices=tuple(i for t in truths for i in t.indices),
    )
    return observation, truth


def _attack_and_report(
    settings: AttackSettings,
    observation: Observation,
    truth: GroundTruth,
    source: dict[str, object],
    progress: ProgressCallback | None,
) -> dict:
    attack_config = get_preset(settings.attack, **settings.attack_overrides())
    device = resolve_device(settings.device)
    generator, generator_record = None, None
    if attack_config.search == "generator":
        generator, generator_record = generator_for(
            observation.dataset, observation.model.image_shape, settings.generator
        )
    elif settings.generator is not None:
        searching = ", ".join(n for n, c in PRESETS.items() if c.search == "generator")
        raise UserInputError(f"--generator applies to {searching}, not {settings.attack}")
    attack = GradientInversion(
        attack_config, device=device, seed=settings.seed, progress=progress, generator=generator
    )
    oracle = attack_config.dropout_masks == "oracle"
    reconstruction = attack(observation, oracle_masks=truth.dropout_masks if oracle else None)
    bn_targets = batch_norm_targets(observation, attack_config)
    config = {
        "request": settings.model_dump(mode="json"),
        "attack": attack_config.model_dump(),
        "threat_model": {
            **source,
            "labels_granted": observation.labels is not None,
            "train_mode": observation.train_mode,
            "defenses": list(observation.defenses),
            "defenses_replayed": replayed_defenses(observation)
            if attack_config.defense_aware
            else [],
            "oracle": "client's true dropout masks (ground truth)" if oracle else None,
            "buffers_leaked": observation.buffer_names(),
            "batch_norm_prior": None if bn_targets is None else bn_targets.describe(),
        },
        "generator": None if generator_record is None else asdict(generator_record),
        **provenance(settings.seed, device),
    }
    if not settings.score:
        return _write_unscored(settings.out, config, observation, truth, reconstruction)
    return write_attack_report(
        settings.out,
        config=config,
        observation=observation,
        truth=truth,
        reconstruction=reconstruction,
        scores=score(reconstruction, truth),
    )


def score_attack_folder(out: Path) -> dict:
    """Score an attack folder written with ``score=False`` against its ground truth: the same
    ``metrics.json`` and ``grid.png`` as scoring at once; returns the metrics."""
    truth = GroundTruth.load(out / GROUND_TRUTH_FILE)
    reconstruction = Reconstruction.load(out / RECONSTRUCTION_FILE)
    metrics = write_attack_report(
        out,
        config=json.loads((out / CONFIG_FILE).read_text()),
        observation=Observation.load(out / OBSERVATION_FILE),
        truth=truth,
        reconstruction=reconstruction,
        scores=score(reconstruction, truth),
    )
    (out / UNSCORED_FILE).unlink(missing_ok=True)
    return metrics


def _write_unscored(
    out: Path,
    config: dict,
    observation: Observation,
    truth: GroundTruth,
    reconstruction: Reconstruction,
) -> dict:
    """Every stage of an attack but its scores; :func:`score_attack_folder` adds them."""
    save_stages(
        out, config=config, observation=observation, truth=truth, reconstruction=reconstruction
    )
    effort = {
        "scored": False,
        "gradient_distance": reconstruction.gradient_distance,
        "wall_s": reconstruction.wall_s,
        "iterations": reconstruction.iterations,
    }
    write_json(out / UNSCORED_FILE, effort)
    return effort
