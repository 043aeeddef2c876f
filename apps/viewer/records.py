"""Typed records of what the viewer reads: attack runs, simulations and bench stores."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from fedsim.errors import FedleakError

RunKind = Literal["attack", "simulation", "bench"]


class RunReadError(FedleakError):
    """A run folder or store that cannot be read; the message names the file and why."""


@dataclass(frozen=True)
class RunLocation:
    """A run folder found under the root: its kind and its POSIX path relative to the root."""

    kind: RunKind
    path: str


@dataclass(frozen=True)
class AttackRun:
    """One attack run folder (``fedleak attack --out``): batch medians, per image, history.

    PSNR in dB (pixels in [0, 1]); SSIM in [0, 1]; LPIPS and ST-LPIPS lower is closer; label
    accuracy in [0, 1]. ``grid`` is the path of ``grid.png`` relative to the root, if present.
    """

    path: str
    attack: str | None
    psnr: float | None
    ssim: float | None
    lpips: float | None
    lpips_unavailable: str | None
    st_lpips: float | None
    label_accuracy: float | None
    iterations: int | None
    wall_s: float | None
    gradient_distance: float | None
    true_labels: tuple[int, ...]
    recovered_labels: tuple[int, ...]
    per_image: tuple[Mapping[str, object], ...]
    history: tuple[Mapping[str, float], ...]
    round: int | None
    client: int | None
    grid: str | None
    config: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ClientPartition:
    """One simulated client's share of the training set: its size and images per label."""

    client: int
    size: int
    label_counts: tuple[int, ...]


@dataclass(frozen=True)
class PrivacyCurve:
    """Differential-privacy budget spent after each round (``privacy.json``)."""

    rounds: tuple[int, ...]
    epsilon: tuple[float, ...]
    delta: float | None


@dataclass(frozen=True)
class Capture:
    """One client update the server saved: ``observations/round-RRR/client-CCC.safetensors``."""

    round: int
    client: int


@dataclass(frozen=True)
class SimulationRun:
    """One simulation folder (``fedleak simulate --out``) and the attacks made on its captures.

    Accuracy is the global model's test accuracy in [0, 1] after each round; ``initial`` is
    before the first round. ``problems`` names attack folders that could not be read.
    """

    path: str
    dataset: str | None
    model: str | None
    clients: int | None
    rounds: int | None
    partition: str | None
    accuracy_rounds: tuple[int, ...]
    accuracy: tuple[float | None, ...]
    initial_accuracy: float | None
    partitions: tuple[ClientPartition, ...]
    privacy: PrivacyCurve | None
    captures: tuple[Capture, ...]
    attacks: tuple[AttackRun, ...]
    problems: tuple[str, ...]
    config: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class BenchCell:
    """One row of a bench store's ``cells`` table (``status`` is ``done`` or ``failed``).

    ``cell_dir`` is the cell's attack run folder relative to the bench folder.
    """

    cell_id: str
    suite: str | None = None
    status: str | None = None
    dataset: str | None = None
    model: str | None = None
    attack: str | None = None
    defense: str | None = None
    batch_size: int | None = None
    images: int | None = None
    seed: int | None = None
    psnr: float | None = None
    ssim: float | None = None
    lpips: float | None = None
    st_lpips: float | None = None
    label_accuracy: float | None = None
    accuracy: float | None = None
    epsilon: float | None = None
    wall_s: float | None = None
    error: str | None = None
    config_json: str | None = None
    metrics_json: str | None = None
    versions_json: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    cell_dir: str | None = None


@dataclass(frozen=True)
class BenchRun:
    """One bench folder (``fedleak bench --out``): its store's cells, in ``cell_id`` order, and
    the JSON of the suites run into it, by name."""

    path: str
    store: str
    cells: tuple[BenchCell, ...]
    suites: Mapping[str, str] = field(default_factory=dict)


Run = AttackRun | SimulationRun | BenchRun
