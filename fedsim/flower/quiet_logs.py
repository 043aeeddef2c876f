"""Keep Flower's routine notices off the console; its real warnings and errors still show."""

from __future__ import annotations

import logging

ROUTINE_MESSAGES = ("Manually terminating",)
"""Starts of Flower log messages a user cannot act on (Ray actors ending after every run)."""


class _DropRoutine(logging.Filter):
    """Drop log records whose message starts with one of ROUTINE_MESSAGES."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(ROUTINE_MESSAGES)


def quiet_routine_logs() -> None:
    """Filter Flower's routine notices in this process (idempotent; Ray actors call it too)."""
    logger = logging.getLogger("flwr")
    if not any(isinstance(existing, _DropRoutine) for existing in logger.filters):
        logger.addFilter(_DropRoutine())
