"""The results store of a campaign: one SQLite file, ``DIR/results.sqlite``, one row per cell.

Table ``cells`` holds exactly :data:`COLUMNS` (the viewer reads them); table ``meta`` holds the
schema version and the JSON of each suite run into the store (``suite:<name>``). WAL mode and
a busy timeout let several processes write at once without "database is locked"; each row is
its own transaction, so a killed writer loses at most the row it was writing and never
corrupts the file.

Values: ``status`` is ``done`` or ``failed``; PSNR in dB (null where the reconstruction is
exact, as in ``metrics.json``); LPIPS null where its AlexNet weights cannot be loaded;
``epsilon`` the DP ε (dp-sgd) of the cell's Flower run after its last round where the suite
has ``[settings.federated]``, else of the observed update, null without dp-sgd; ``accuracy``
the final test accuracy of the cell's Flower run (null without ``[settings.federated]``);
``wall_s`` is the attack's own time for a done cell, the time until the error for a failed
one; ``started_at`` / ``finished_at`` are ISO 8601 UTC; ``cell_dir`` is the cell's attack
folder relative to DIR; ``*_json`` columns hold JSON text.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal

from fedsim.errors import UserInputError

if TYPE_CHECKING:
    import pyarrow as pa

STORE_FILE = "results.sqlite"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 60.0
SUITE_KEY_PREFIX = "suite:"
"""``meta`` keys of the suites run into a store (value: the suite's JSON)."""

COLUMNS: dict[str, str] = {
    "cell_id": "TEXT PRIMARY KEY",
    "suite": "TEXT",
    "status": "TEXT NOT NULL CHECK (status IN ('done', 'failed'))",
    "dataset": "TEXT",
    "model": "TEXT",
    "attack": "TEXT",
    "defense": "TEXT",
    "batch_size": "INTEGER",
    "images": "INTEGER",
    "seed": "INTEGER",
    "psnr": "REAL",
    "ssim": "REAL",
    "lpips": "REAL",
    "st_lpips": "REAL",
    "label_accuracy": "REAL",
    "accuracy": "REAL",
    "epsilon": "REAL",
    "wall_s": "REAL",
    "error": "TEXT",
    "config_json": "TEXT",
    "metrics_json": "TEXT",
    "versions_json": "TEXT",
    "started_at": "TEXT",
    "finished_at": "TEXT",
    "cell_dir": "TEXT",
}

_CREATE = (
    f"CREATE TABLE IF NOT EXISTS cells ({', '.join(f'{k} {v}' for k, v in COLUMNS.items())})",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    f"INSERT OR IGNORE INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}')",
)
_INSERT = (
    f"INSERT OR REPLACE INTO cells ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in COLUMNS)})"
)


def store_path(out_dir: Path) -> Path:
    """Where a campaign folder keeps its results store."""
    return Path(out_dir) / STORE_FILE


class ResultStore:
    """One connection to a results store; use :meth:`open` and close it (or use ``with``)."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._connection = connection

    @classmethod
    def open(cls, path: Path, *, create: bool = False) -> ResultStore:
        """Open the store at ``path`` (creating it if ``create``); a missing, corrupted or
        foreign file raises one line naming it."""
        path = Path(path)
        if not create and not path.is_file():
            raise UserInputError(
                f"no results store {str(path)!r}; run `fedleak bench --suite NAME --out DIR` "
                "to make one"
            )
        connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        connection.row_factory = sqlite3.Row
        try:
            connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            _use_wal(connection)
            if create:
                with _transaction(connection):
                    for statement in _CREATE:
                        connection.execute(statement)
            _check_schema(connection, path)
        except sqlite3.DatabaseError as error:
            connection.close()
            raise UserInputError(f"cannot read results store {str(path)!r}: {error}") from None
        except UserInputError:
            connection.close()
            raise
        return cls(path, connection)

    def statuses(self) -> dict[str, str]:
        """``cell_id`` → ``status`` of every recorded cell."""
        rows = self._connection.execute("SELECT cell_id, status FROM cells")
        return {row["cell_id"]: row["status"] for row in rows}

    def record(self, row: dict[str, object]) -> None:
        """Insert or replace one cell's row, in its own transaction."""
        if set(row) != set(COLUMNS):
            missing, extra = set(COLUMNS) - set(row), set(row) - set(COLUMNS)
            raise ValueError(f"a cells row needs exactly COLUMNS; missing {missing}, extra {extra}")
        with _transaction(self._connection):
            self._connection.execute(_INSERT, [row[column] for column in COLUMNS])

    def record_suite(self, name: str, suite_json: str) -> None:
        """Keep the JSON of a suite run into this store (its report reads it), in ``meta``."""
        with _transaction(self._connection):
            self._connection.execute(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)", (SUITE_KEY_PREFIX + name, suite_json)
            )

    def suites(self) -> dict[str, str]:
        """Name → JSON of every suite recorded with :meth:`record_suite`."""
        found = self._connection.execute(
            "SELECT key, value FROM meta WHERE key LIKE ?", (SUITE_KEY_PREFIX + "%",)
        )
        return {row["key"].removeprefix(SUITE_KEY_PREFIX): row["value"] for row in found}

    def rows(self) -> list[dict[str, object]]:
        """Every row, in the order they were first recorded."""
        try:
            found = self._connection.execute(
                f"SELECT {', '.join(COLUMNS)} FROM cells ORDER BY rowid"
            )
            return [dict(row) for row in found]
        except sqlite3.DatabaseError as error:
            raise UserInputError(f"cannot read results store {str(self.path)!r}: {error}") from None

    def close(self) -> None:
        """Close the connection (the last one to close folds the WAL into the file)."""
        self._connection.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


ExportFormat = Literal["csv", "parquet"]


def export_results(out_dir: Path, fmt: ExportFormat, path: Path | None = None) -> tuple[Path, int]:
    """Write the store's rows as CSV or Parquet (default ``DIR/results.FORMAT``); return the
    file and the row count. Column types follow the store (TEXT, INTEGER, REAL; nulls kept)."""
    import pyarrow as pa
    import pyarrow.csv
    import pyarrow.parquet

    with ResultStore.open(store_path(out_dir)) as store:
        rows = store.rows()
    table = pa.Table.from_pylist(rows, schema=arrow_schema())
    path = Path(path) if path is not None else Path(out_dir) / f"results.{fmt}"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if fmt == "csv":
        pyarrow.csv.write_csv(table, tmp)
    elif fmt == "parquet":
        pyarrow.parquet.write_table(table, tmp)
    else:
        raise UserInputError(f"unknown export format {fmt!r}; valid: csv, parquet")
    tmp.replace(path)
    return path, len(rows)


def arrow_schema() -> pa.Schema:
    """The Arrow schema of the ``cells`` table: TEXT → string, INTEGER → int64, REAL → float64."""
    import pyarrow as pa

    types = {"TEXT": pa.string(), "INTEGER": pa.int64(), "REAL": pa.float64()}
    return pa.schema([(name, types[sql.split()[0]]) for name, sql in COLUMNS.items()])


@contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error): takes the write lock up front, so a busy
    store waits for it (busy_timeout) instead of failing half way."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _use_wal(connection: sqlite3.Connection) -> None:
    """Switch to WAL (a no-op once the file is in WAL). The switch takes an exclusive lock and
    SQLite answers "locked" at once rather than waiting for it, so wait here."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            mode = None
        if mode == "wal" or time.monotonic() > deadline:
            return
        time.sleep(0.02)


def _check_schema(connection: sqlite3.Connection, path: Path) -> None:
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    if not {"cells", "meta"} <= tables:
        raise UserInputError(
            f"{str(path)!r} is an SQLite file but not a fedleak results store "
            f"(tables: {', '.join(sorted(tables)) or 'none'})"
        )
    version = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if version is None or version[0] != str(SCHEMA_VERSION):
        found = None if version is None else version[0]
        raise UserInputError(
            f"results store {str(path)!r} has schema version {found}; this fedleak reads "
            f"version {SCHEMA_VERSION}"
        )
    columns = [row[1] for row in connection.execute("PRAGMA table_info(cells)")]
    if columns != list(COLUMNS):
        raise UserInputError(f"results store {str(path)!r} has other columns than fedleak's")
