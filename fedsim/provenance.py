"""What every run records beside its results: seed, package versions, git commit, machine."""

from __future__ import annotations

import platform
import random
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

_PACKAGES = ("fedleak", "torch", "torchvision", "flwr", "opacus", "torchmetrics", "numpy")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so the same seed reproduces the same run on one machine."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages results depend on (None when absent)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit() -> str | None:
    """The fedleak checkout's commit, ``+dirty`` if files changed; None outside git."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = _git(root, "rev-parse", "HEAD")
        dirty = _git(root, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+dirty" if dirty else "")


def provenance(seed: int, device: torch.device) -> dict[str, object]:
    """Seed, versions, commit, device, threads and time of a run, as JSON-ready values."""
    return {
        "seed": seed,
        "versions": package_versions(),
        "git_commit": git_commit(),
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _git(root: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True, timeout=10
    )
    return result.stdout.strip()
