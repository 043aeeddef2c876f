"""What a cell kind is: a grid of its own axes that expands into cells, and cells that run in
the campaign's fresh worker and return the metrics the store records.

A kind other than the gradient-inversion attacks (:mod:`apps.bench.suite`'s ``Grid`` and
``Cell``) subclasses :class:`KindGrid` and :class:`KindCell` and is listed in
:data:`apps.bench.kinds.KINDS`. A suite's ``[[grid]]`` table names it with ``kind = "NAME"``;
the runner, the store, ``bench report`` and the viewer then handle its cells like any other.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


class KindCell(BaseModel, ABC):
    """One job of a kind; its canonical JSON (``kind`` included) names it, so its ids never
    meet an attack cell's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str

    federated: ClassVar[None] = None
    """Kind cells have no Flower utility run (the runner asks every cell)."""
    attacks_aggregate: ClassVar[bool] = False

    def config_json(self) -> str:
        """The canonical JSON of this cell: sorted keys, no spaces."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    @property
    def cell_id(self) -> str:
        """16 hex digits of the SHA-256 of :meth:`config_json`."""
        return hashlib.sha256(self.config_json().encode()).hexdigest()[:16]

    @abstractmethod
    def label(self) -> str:
        """A short human name for progress lines and errors."""

    @abstractmethod
    def store_fields(self) -> dict[str, object]:
        """The store's descriptive columns: dataset, model, attack, defense, batch_size,
        images, seed (None where a column does not apply)."""

    @abstractmethod
    def run(self, folder: Path, cache: Path | None) -> dict[str, Any]:
        """Run in the worker: write the cell's files (``metrics.json`` at least) into
        ``folder`` and return its metrics; ``cache`` is a folder the campaign's cells share
        (None: nothing is shared, e.g. on Ray)."""


class KindGrid(BaseModel, ABC):
    """The axes of one ``[[grid]]`` table of a kind; ``kind`` picks the subclass."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str

    @abstractmethod
    def cells(self) -> list[KindCell]:
        """Every cell of the grid (a value named twice gives one cell)."""

    def overriding(self, **values: object) -> KindGrid:
        """This grid with those of ``values`` it has as fields (e.g. ``device``) set."""
        known = {k: v for k, v in values.items() if k in type(self).model_fields}
        return self.model_validate(self.model_dump() | known) if known else self


Plots = Callable[[Iterable[Mapping[str, object]], Path], list[Path]]
"""(a store's rows, a folder) → the PNG files written there from the kind's rows."""


@dataclass(frozen=True)
class CellKind:
    """A registered kind: its grid model (which makes its cells), the cell fields a report may
    group by, the metrics its cells return that a report may take medians of, and optionally
    its own figures, which ``fedleak bench report`` writes beside the generic ones."""

    name: str
    grid: type[KindGrid]
    key_fields: tuple[str, ...]
    metrics: tuple[str, ...]
    plots: Plots | None = None
