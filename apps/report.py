"""Write an attack's run folder: grid PNG, metrics, config; ground truth kept in its own file."""

from __future__ import annotations

from pathlib import Path

from apps.grids import comparison_grid
from apps.scoring import Scores
from attacks.reconstruction import Reconstruction
from fedsim.ground_truth import GroundTruth
from fedsim.observation import Observation
from fedsim.storage import write_json

OBSERVATION_FILE = "observation.safetensors"
GROUND_TRUTH_FILE = "ground_truth.safetensors"
RECONSTRUCTION_FILE = "reconstruction.safetensors"
GRID_FILE = "grid.png"
METRICS_FILE = "metrics.json"
CONFIG_FILE = "config.json"


def save_stages(
    out: Path,
    *,
    config: dict,
    observation: Observation,
    truth: GroundTruth,
    reconstruction: Reconstruction,
) -> None:
    """Save an attack's config, observation, ground truth and reconstruction under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / CONFIG_FILE, config)
    observation.save(out / OBSERVATION_FILE)
    truth.save(out / GROUND_TRUTH_FILE)
    reconstruction.save(out / RECONSTRUCTION_FILE)


def write_attack_report(
    out: Path,
    *,
    config: dict,
    observation: Observation,
    truth: GroundTruth,
    reconstruction: Reconstruction,
    scores: Scores,
) -> dict:
    """Save every stage of one attack under ``out`` and return the metrics written."""
    save_stages(
        out, config=config, observation=observation, truth=truth, reconstruction=reconstruction
    )
    paired = reconstruction.images[list(scores.pairing)]
    comparison_grid(truth.images, paired, scores.psnr).save(out / GRID_FILE)
    metrics = {
        **scores.summary(),
        "per_image": scores.per_image(),
        "true_labels": truth.labels.tolist(),
        "recovered_labels": reconstruction.labels.tolist(),
        "gradient_distance": reconstruction.gradient_distance,
        "restart_distances": list(reconstruction.restart_distances),
        "stage_distances": reconstruction.config.get("stage_distances"),
        "stage_iterations": reconstruction.config.get("stage_iterations"),
        "noise_floor": reconstruction.config.get("noise_floor"),
        "wall_s": reconstruction.wall_s,
        "iterations": reconstruction.iterations,
        "history": list(reconstruction.history),
    }
    write_json(out / METRICS_FILE, metrics)
    return metrics
