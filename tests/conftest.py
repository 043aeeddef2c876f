"""Shared fixtures: the real offline datasets, found through FEDLEAK_DATA_DIR."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fedsim.data import DATA_DIR_ENV


@pytest.fixture
def data_dir() -> Path:
    """The folder of offline Parquet datasets; skips the test when FEDLEAK_DATA_DIR is unset."""
    root = os.environ.get(DATA_DIR_ENV)
    if not root:
        pytest.skip(f"{DATA_DIR_ENV} is not set; point it at the offline datasets (shared/data)")
    return Path(root)
