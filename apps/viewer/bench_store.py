"""Read a bench store (``results.sqlite``, tables ``cells`` and ``meta``) read-only: typed cells
and the suites' JSON that their report reads."""

from __future__ import annotations

import math
import sqlite3
from contextlib import closing
from dataclasses import fields
from pathlib import Path
from urllib.parse import quote

from apps.bench.store import COLUMNS, STORE_FILE, SUITE_KEY_PREFIX
from apps.viewer.paths import resolve_inside
from apps.viewer.records import BenchCell, RunReadError

_INTEGER_FIELDS = {name for name, sql in COLUMNS.items() if sql.startswith("INTEGER")}
_REAL_FIELDS = {name for name, sql in COLUMNS.items() if sql.startswith("REAL")}


def read_cells(root: Path, bench_path: str) -> tuple[BenchCell, ...]:
    """Every row of ``<bench_path>/results.sqlite``'s ``cells`` table, opened read-only.

    A missing file, a file that is not SQLite, or a store without ``cells`` raises
    :class:`RunReadError` naming the store and the reason.
    """
    rows = _select(root, bench_path, "SELECT * FROM cells", ())
    cells = (_cell(dict(zip(row.keys(), tuple(row), strict=True))) for row in rows)
    return tuple(sorted(cells, key=lambda cell: cell.cell_id))


def read_suites(root: Path, bench_path: str) -> dict[str, str]:
    """Name → JSON of the suites the store records (none in a store without ``meta``)."""
    query = "SELECT key, value FROM meta WHERE key LIKE ?"
    try:
        rows = _select(root, bench_path, query, (SUITE_KEY_PREFIX + "%",))
    except RunReadError:
        return {}
    return {str(row[0]).removeprefix(SUITE_KEY_PREFIX): str(row[1]) for row in rows}


def _select(root: Path, bench_path: str, query: str, values: tuple) -> list[sqlite3.Row]:
    shown = STORE_FILE if bench_path in ("", ".") else f"{bench_path}/{STORE_FILE}"
    store = resolve_inside(root, shown)
    if not store.is_file():
        raise RunReadError(f"no bench store at {shown}")
    try:
        with closing(sqlite3.connect(f"file:{quote(str(store))}?mode=ro", uri=True)) as db:
            db.row_factory = sqlite3.Row
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            if "cells" not in tables:
                raise RunReadError(f"{shown} has no 'cells' table; is it a fedleak bench store?")
            return db.execute(query, values).fetchall()
    except sqlite3.Error as error:
        raise RunReadError(f"{shown} is not a readable bench store: {error}") from error


def _cell(row: dict[str, object]) -> BenchCell:
    values = {}
    for name in (f.name for f in fields(BenchCell)):
        value = row.get(name)
        if name in _REAL_FIELDS:
            value = _real(value)
        elif name in _INTEGER_FIELDS:
            value = value if isinstance(value, int) else None
        elif value is not None:
            value = str(value)
        values[name] = value
    values["cell_id"] = values["cell_id"] or ""
    return BenchCell(**values)


def _real(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None
