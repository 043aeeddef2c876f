"""The cell kinds a suite's grids may hold besides gradient-inversion attacks (a ``[[grid]]``
without ``kind``); add a kind by subclassing :mod:`apps.bench.kinds.base` and listing it here."""

from apps.bench.kinds.base import CellKind, KindCell, KindGrid
from apps.bench.kinds.camouflage import CAMOUFLAGE
from apps.bench.kinds.fusion import FUSION

KINDS: dict[str, CellKind] = {kind.name: kind for kind in (FUSION, CAMOUFLAGE)}
"""Kind name (a grid's ``kind``) → the kind."""

__all__ = ["KINDS", "CellKind", "KindCell", "KindGrid"]
