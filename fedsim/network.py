"""A quick reachability probe, so offline runs fail in seconds instead of retrying for minutes."""

from __future__ import annotations

import socket


def why_unreachable(host: str, port: int = 443, timeout_s: float = 3.0) -> str | None:
    """None when a TCP connection to ``host:port`` opens within ``timeout_s`` seconds, else why."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except OSError as error:
        return f"{host}:{port} unreachable: {error}"
