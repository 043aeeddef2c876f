"""One exception base for fedleak; subclasses mark user mistakes the CLI prints as one line."""

from __future__ import annotations

from collections.abc import Iterable


class FedleakError(Exception):
    """Base of every error fedleak raises on purpose."""


class UserInputError(FedleakError):
    """A value the user gave is not valid; the message names it and what would be."""


class UnknownNameError(UserInputError):
    """A name (dataset, model, attack, ...) that no registry holds."""

    def __init__(self, kind: str, name: str, valid: Iterable[str]) -> None:
        self.kind, self.name, self.valid = kind, name, sorted(valid)
        super().__init__(f"unknown {kind} {name!r}; valid: {', '.join(self.valid)}")


class DataUnavailableError(FedleakError):
    """No source could provide a dataset; the message lists every source tried."""
