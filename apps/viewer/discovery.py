"""Find the runs under the viewer's root and read attack and simulation folders into records."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path

from apps.viewer.bench_store import STORE_FILE, read_cells, read_suites
from apps.viewer.paths import UnsafePathError, relative_name, resolve_inside
from apps.viewer.records import (
    AttackRun,
    BenchRun,
    Capture,
    ClientPartition,
    PrivacyCurve,
    Run,
    RunKind,
    RunLocation,
    RunReadError,
    SimulationRun,
)

MAX_DEPTH = 6  # folders below the root searched for runs; `fedleak view /` must not crawl a disk
_SKIPPED = {"observations", "ground_truth", "__pycache__", "node_modules"}
_CAPTURE = re.compile(r"client-(\d+)\.safetensors$")
_ROUND = re.compile(r"round-(\d+)$")
_ROUND_CLIENT = re.compile(r"round-(\d+)-client-(\d+)")
_REQUIRED = object()
START_FILE = "view.json"
"""A folder's ``{"start": "PATH"}``: the run the viewer opens first (``fedleak demo`` writes it)."""


def run_kind(folder: Path) -> RunKind | None:
    """What kind of run ``folder`` holds, judged by the files ``fedleak`` writes; None if none."""
    if (folder / STORE_FILE).is_file():
        return "bench"
    if (folder / "accuracy.json").is_file() or (folder / "observations").is_dir():
        return "simulation"
    if (folder / "metrics.json").is_file():
        return "attack"
    return None


def discover_runs(root: Path) -> tuple[RunLocation, ...]:
    """Every run folder under ``root`` (the root included), sorted by path.

    Symlinked folders are not followed; bench cells are left to their bench's page, while the
    attacks under a simulation's ``attacks/`` are listed too.
    """
    base = root.resolve()
    found: list[RunLocation] = []
    for folder, subfolders, _ in os.walk(base):
        here = Path(folder)
        depth = len(here.relative_to(base).parts)
        kind = run_kind(here)
        if kind is not None:
            found.append(RunLocation(kind, relative_name(base, here)))
        keep = [] if kind in ("bench", "attack") or depth >= MAX_DEPTH else sorted(subfolders)
        if kind == "simulation":
            keep = [name for name in keep if name == "attacks"]
        subfolders[:] = [name for name in keep if not name.startswith(".") and name not in _SKIPPED]
    return tuple(sorted(found, key=lambda location: location.path))


def start_run(root: Path, locations: tuple[RunLocation, ...]) -> str | None:
    """The run ``root/view.json`` names to open first, if it names one of ``locations``.

    An unreadable ``view.json`` names none: the landing page lists the runs as usual.
    """
    try:
        document = _read_json(root, START_FILE, missing={})
    except (RunReadError, UnsafePathError):
        return None
    start = document.get("start") if isinstance(document, Mapping) else None
    return start if start in {location.path for location in locations} else None


def load_run(root: Path, path: str) -> Run:
    """Read the run folder at ``path`` (relative to ``root``) into its record."""
    folder = resolve_inside(root, path)
    kind = run_kind(folder) if folder.is_dir() else None
    if kind is None:
        raise RunReadError(f"{path} is not a run folder (no metrics.json, accuracy.json or store)")
    path = relative_name(root, folder)
    if kind == "bench":
        store = STORE_FILE if path == "." else f"{path}/{STORE_FILE}"
        cells, suites = read_cells(root, path), read_suites(root, path)
        return BenchRun(path=path, store=store, cells=cells, suites=suites)
    if kind == "simulation":
        return read_simulation_run(root, path)
    return read_attack_run(root, path)


def read_attack_run(root: Path, path: str) -> AttackRun:
    """Read ``metrics.json`` and ``config.json`` of the attack run folder at ``path``."""
    metrics = _read_json(root, _join(path, "metrics.json"))
    if not isinstance(metrics, Mapping):
        raise RunReadError(f"{_join(path, 'metrics.json')} is not a JSON object")
    config = _read_json(root, _join(path, "config.json"), missing={})
    config = config if isinstance(config, Mapping) else {}
    request = _mapping(config.get("request"))
    attack = _mapping(config.get("attack")).get("name") or request.get("attack")
    round_, client = _capture_of(path, config)
    grid = _join(path, "grid.png")
    return AttackRun(
        path=path,
        attack=str(attack) if attack else None,
        psnr=_real(metrics.get("psnr")),
        ssim=_real(metrics.get("ssim")),
        lpips=_real(metrics.get("lpips")),
        lpips_unavailable=_text(metrics.get("lpips_unavailable")),
        st_lpips=_real(metrics.get("st_lpips")),
        label_accuracy=_real(metrics.get("label_accuracy")),
        iterations=_integer(metrics.get("iterations")),
        wall_s=_real(metrics.get("wall_s")),
        gradient_distance=_real(metrics.get("gradient_distance")),
        true_labels=_integers(metrics.get("true_labels")),
        recovered_labels=_integers(metrics.get("recovered_labels")),
        per_image=_per_image(metrics.get("per_image"), _integers(metrics.get("true_labels"))),
        history=_history(metrics.get("history")),
        round=round_,
        client=client,
        grid=grid if _is_file_inside(root, grid) else None,
        config=config,
    )


def read_simulation_run(root: Path, path: str) -> SimulationRun:
    """Read a simulation folder: config, accuracy, partitions, privacy, captures, attacks."""
    document = _mapping(_read_json(root, _join(path, "config.json"), missing={}))
    config = _mapping(document.get("config")) or document
    accuracy = _mapping(_read_json(root, _join(path, "accuracy.json"), missing={}))
    partitions = _mapping(_read_json(root, _join(path, "partitions.json"), missing={}))
    privacy = _read_json(root, _join(path, "privacy.json"), missing=None)
    attacks, problems = [], []
    attacks_folder = resolve_inside(root, _join(path, "attacks"))
    if attacks_folder.is_dir():
        for folder in sorted(attacks_folder.iterdir()):
            if folder.is_symlink() or run_kind(folder) != "attack":
                continue
            try:
                attacks.append(read_attack_run(root, _join(path, f"attacks/{folder.name}")))
            except (RunReadError, UnsafePathError) as error:
                problems.append(str(error))
    return SimulationRun(
        path=path,
        dataset=_text(config.get("dataset")),
        model=_text(config.get("model")),
        clients=_integer(config.get("clients")),
        rounds=_integer(config.get("rounds")),
        partition=_text(config.get("partition") or partitions.get("partition")),
        accuracy_rounds=_integers(accuracy.get("rounds")),
        accuracy=tuple(_real(v) for v in _sequence(accuracy.get("accuracy"))),
        initial_accuracy=_real(accuracy.get("initial")),
        partitions=tuple(_partition(entry) for entry in _sequence(partitions.get("clients"))),
        privacy=_privacy(privacy),
        captures=_captures(resolve_inside(root, _join(path, "observations"))),
        attacks=tuple(sorted(attacks, key=lambda a: (a.round or 0, a.client or 0, a.path))),
        problems=tuple(problems),
        config=config,
    )


def _join(path: str, name: str) -> str:
    return name if path in ("", ".") else f"{path}/{name}"


def _read_json(root: Path, path: str, missing: object = _REQUIRED) -> object:
    """The JSON at ``path``; a missing file gives ``missing`` unless the file is required."""
    file = resolve_inside(root, path)
    if not file.is_file():
        if missing is _REQUIRED:
            raise RunReadError(f"{path} is missing")
        return missing
    try:
        return json.loads(file.read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise RunReadError(f"{path} cannot be read: {error}") from error
    except json.JSONDecodeError as error:
        reason = f"line {error.lineno}: {error.msg}"
        raise RunReadError(f"{path} is not valid JSON ({reason})") from error


def _is_file_inside(root: Path, path: str) -> bool:
    try:
        return resolve_inside(root, path).is_file()
    except UnsafePathError:
        return False


def _capture_of(path: str, config: Mapping[str, object]) -> tuple[int | None, int | None]:
    """The (round, client) a capture attack targeted: from its request, else its folder name."""
    request = _mapping(config.get("request"))
    round_, client = _integer(request.get("round")), _integer(request.get("client"))
    if round_ is not None and client is not None:
        return round_, client
    match = _ROUND_CLIENT.search(path.rsplit("/", 1)[-1])
    return (int(match[1]), int(match[2])) if match else (None, None)


def _per_image(value: object, true_labels: tuple[int, ...]) -> tuple[dict[str, object], ...]:
    """One row per original image, from ``{metric: [values]}`` or a list of row objects."""
    if isinstance(value, list):
        return tuple({"image": i, **_mapping(row)} for i, row in enumerate(value))
    columns = {
        name: list(values)
        for name, values in _mapping(value).items()
        if isinstance(values, list) and name != "pairing"
    }
    count = max((len(values) for values in columns.values()), default=0)
    pairing = _sequence(_mapping(value).get("pairing"))
    rows = []
    for index in range(count):
        row: dict[str, object] = {"image": index}
        if index < len(true_labels):
            row["true_label"] = true_labels[index]
        for name, values in columns.items():
            row[name] = _real(values[index]) if index < len(values) else None
        if index < len(pairing):
            row["reconstruction"] = pairing[index]
        rows.append(row)
    return tuple(rows)


def _history(value: object) -> tuple[dict[str, float], ...]:
    """Per-iteration records; a bare number is that iteration's gradient distance."""
    rows = []
    for index, entry in enumerate(_sequence(value), start=1):
        if isinstance(entry, Mapping):
            row = {str(k): v for k, v in entry.items() if _real(v) is not None}
            rows.append({"iteration": index, **row})
        elif _real(entry) is not None:
            rows.append({"iteration": index, "gradient_distance": _real(entry)})
    return tuple(rows)


def _partition(entry: object) -> ClientPartition:
    entry = _mapping(entry)
    return ClientPartition(
        client=_integer(entry.get("client")) or 0,
        size=_integer(entry.get("size")) or 0,
        label_counts=_integers(entry.get("label_counts")),
    )


def _privacy(value: object) -> PrivacyCurve | None:
    if not isinstance(value, Mapping):
        return None
    epsilon = tuple(_real(v) for v in _sequence(value.get("epsilon")))
    rounds = _integers(value.get("rounds")) or tuple(range(1, len(epsilon) + 1))
    if not epsilon or any(v is None for v in epsilon):
        return None
    return PrivacyCurve(rounds=rounds, epsilon=epsilon, delta=_real(value.get("delta")))


def _captures(observations: Path) -> tuple[Capture, ...]:
    if not observations.is_dir():
        return ()
    captures = []
    for round_folder in observations.iterdir():
        round_match = _ROUND.match(round_folder.name)
        if round_match is None or not round_folder.is_dir():
            continue
        for file in round_folder.iterdir():
            client_match = _CAPTURE.match(file.name)
            if client_match:
                captures.append(Capture(int(round_match[1]), int(client_match[1])))
    return tuple(sorted(captures, key=lambda c: (c.round, c.client)))


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _sequence(value: object) -> list:
    return value if isinstance(value, list) else []


def _real(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _integer(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _integers(value: object) -> tuple[int, ...]:
    return tuple(v for v in _sequence(value) if _integer(v) is not None)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
