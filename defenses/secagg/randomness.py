"""Where the protocol's random bytes come from: the OS, or a seeded generator in tests."""

from __future__ import annotations

import secrets

import numpy as np


def random_bytes(rng: np.random.Generator | None, length: int) -> bytes:
    """Return ``length`` random bytes: from ``secrets`` when ``rng`` is None, else from
    ``rng`` (reproducible, for tests and benchmarks only: a seeded generator is not secret)."""
    return secrets.token_bytes(length) if rng is None else rng.bytes(length)
