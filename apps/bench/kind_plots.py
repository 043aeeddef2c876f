"""The figures of cell kinds that draw their own (``CellKind.plots``), from a campaign's store."""

from __future__ import annotations

import json
from pathlib import Path

from apps.bench.kinds import KINDS


def write_kind_plots(out_dir: Path, folder: Path) -> list[Path]:
    """Each kind's own PNGs from the rows of its cells in ``out_dir``'s store, into ``folder``."""
    from apps.bench.store import ResultStore, store_path

    with ResultStore.open(store_path(out_dir)) as store:
        rows = store.rows()
    by_kind: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        kind = json.loads(str(row["config_json"] or "{}")).get("kind")
        if kind in KINDS:
            by_kind.setdefault(kind, []).append(row)
    written = []
    for name, members in by_kind.items():
        plots = KINDS[name].plots
        if plots is not None:
            written += plots(members, folder)
    return written
