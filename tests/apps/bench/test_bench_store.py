"""The results store: exact columns, concurrent writers, clear errors, CSV / Parquet export."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.csv
import pyarrow.parquet
import pytest

from apps.bench.store import COLUMNS, ResultStore, arrow_schema, export_results, store_path
from fedsim.errors import UserInputError

VIEWER_COLUMNS = [
    "cell_id", "suite", "status", "dataset", "model", "attack", "defense", "batch_size",
    "images", "seed", "psnr", "ssim", "lpips", "st_lpips", "label_accuracy", "accuracy",
    "epsilon", "wall_s", "error", "config_json", "metrics_json", "versions_json", "started_at",
    "finished_at", "cell_dir",
]  # fmt: skip


def row(cell_id: str, **values: object) -> dict[str, object]:
    base = dict.fromkeys(COLUMNS)
    base.update(cell_id=cell_id, suite="t", status="done", dataset="mnist", batch_size=2)
    base.update(psnr=12.5, lpips=None, wall_s=1.25, config_json="{}", cell_dir=f"cells/{cell_id}")
    return {**base, **values}


def test_the_cells_table_has_exactly_the_viewers_columns(tmp_path: Path) -> None:
    with ResultStore.open(store_path(tmp_path), create=True) as store:
        store.record(row("a"))

    connection = sqlite3.connect(store_path(tmp_path))
    columns = [r[1] for r in connection.execute("PRAGMA table_info(cells)")]
    mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
    version = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert columns == VIEWER_COLUMNS and mode == "wal" and version == ("1",)


def test_a_row_replaces_the_cells_earlier_row(tmp_path: Path) -> None:
    with ResultStore.open(store_path(tmp_path), create=True) as store:
        store.record(row("a", status="failed", error="ValueError: no"))
        store.record(row("b"))
        store.record(row("a", psnr=30.0))
    with ResultStore.open(store_path(tmp_path)) as store:
        rows = store.rows()
        statuses = store.statuses()

    assert statuses == {"a": "done", "b": "done"}
    assert [(r["cell_id"], r["psnr"], r["error"]) for r in rows] == [
        ("b", 12.5, None),
        ("a", 30.0, None),
    ]


def test_a_row_must_have_every_column(tmp_path: Path) -> None:
    with ResultStore.open(store_path(tmp_path), create=True) as store:
        with pytest.raises(ValueError, match="missing {'cell_dir'}"):
            store.record({k: v for k, v in row("a").items() if k != "cell_dir"})
        with pytest.raises(sqlite3.IntegrityError):
            store.record(row("a", status="maybe"))
        assert store.rows() == []


_WRITER = """
import sys
from pathlib import Path
from apps.bench.store import COLUMNS, ResultStore

path, name, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
Path(sys.argv[4]).touch()
while not all(Path(p).exists() for p in sys.argv[5:]):  # start together
    pass
with ResultStore.open(path, create=True) as store:
    for i in range(count):
        row = dict.fromkeys(COLUMNS)
        row.update(cell_id=f"{name}-{i}", status="done", metrics_json="x" * 2000)
        store.record(row)
"""


def test_two_writers_at_once_lose_no_rows(tmp_path: Path) -> None:
    path = store_path(tmp_path)
    ready = [str(tmp_path / f"ready-{n}") for n in ("a", "b")]
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(_WRITER), str(path), name, "150", flag] + ready,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, flag in zip(("a", "b"), ready, strict=True)
    ]
    errors = [writer.communicate(timeout=120)[1] for writer in writers]

    assert [w.returncode for w in writers] == [0, 0], errors
    with ResultStore.open(path) as store:
        ids = set(store.statuses())
    assert ids == {f"{n}-{i}" for n in ("a", "b") for i in range(150)}
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_missing_store_is_one_line_naming_it(tmp_path: Path) -> None:
    path = store_path(tmp_path)

    with pytest.raises(UserInputError, match=f"no results store '{path}'; run `fedleak bench"):
        ResultStore.open(path)
    assert not path.exists()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x00garbage\xff" * 200, "file is not a database"),
        (b"SQLite format 3\x00" + b"\x13" * 4000, "malformed|not a database"),
    ],
)
def test_a_corrupted_store_is_one_line_naming_it(
    tmp_path: Path, content: bytes, expected: str, run_cli
) -> None:
    store_path(tmp_path).write_bytes(content)

    with pytest.raises(UserInputError, match=f"cannot read results store '{store_path(tmp_path)}'"):
        ResultStore.open(store_path(tmp_path))
    code, _, err = run_cli(["bench", "export", str(tmp_path)])
    assert code == 2 and err.count("\n") == 1 and str(store_path(tmp_path)) in err
    assert store_path(tmp_path).read_bytes() == content  # left as it was


def test_another_sqlite_file_is_not_a_store(tmp_path: Path) -> None:
    connection = sqlite3.connect(store_path(tmp_path))
    connection.execute("CREATE TABLE songs (title TEXT)")
    connection.commit()

    with pytest.raises(UserInputError, match="not a fedleak results store \\(tables: songs\\)"):
        ResultStore.open(store_path(tmp_path))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_round_trips(tmp_path: Path, fmt: str, run_cli) -> None:
    rows = [
        row("a", error=None, metrics_json='{"psnr": 12.5, "note": "a, \\"quoted\\""}'),
        row("b", status="failed", psnr=None, error="UserInputError: bad, really", seed=3),
    ]
    with ResultStore.open(store_path(tmp_path), create=True) as store:
        for value in rows:
            store.record(value)

    code, out, _ = run_cli(["bench", "export", str(tmp_path), "--format", fmt, "--json"])

    path = tmp_path / f"results.{fmt}"
    assert code == 0 and f'"file": "{path}"' in out and '"rows": 2' in out
    if fmt == "csv":
        options = pyarrow.csv.ConvertOptions(column_types=arrow_schema(), strings_can_be_null=True)
        table = pyarrow.csv.read_csv(path, convert_options=options)
    else:
        table = pyarrow.parquet.read_table(path)
    assert table.schema == arrow_schema()
    assert table.to_pylist() == rows


def test_export_to_a_named_file(tmp_path: Path) -> None:
    with ResultStore.open(store_path(tmp_path), create=True) as store:
        store.record(row("a"))

    path, count = export_results(tmp_path, "parquet", tmp_path / "out" / "x.parquet")

    assert count == 1 and path == tmp_path / "out" / "x.parquet"
    assert pyarrow.parquet.read_table(path).num_rows == 1


def test_export_format_must_be_known(tmp_path: Path, run_cli) -> None:
    code, _, err = run_cli(["bench", "export", str(tmp_path), "--format", "xlsx"])

    assert code == 2 and "invalid --format 'xlsx'; valid: csv, parquet" in err
