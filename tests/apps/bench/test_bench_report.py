"""`fedleak bench report`: medians per row and column of a finished store, goal verdicts,
markdown and JSON, plots, one line for a bad folder or a bad `[report]` table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apps.bench.runner import CellOutcome, cell_row
from apps.bench.store import ResultStore, store_path
from apps.bench.suite import load_suite
from fedsim.errors import UserInputError

# 2 rates × 2 attacks × 3 images: 12 cells; the store gets them with chosen metrics, not runs.
SUITE = """
[settings]
iterations = 5
device = "cpu"

[grid]
dataset = "mnist"
model = "mlp"
dropout = [0.1, 0.5]
attack = ["ig", "dia"]
images = [3]

[report]
rows = ["dataset", "model", "dropout"]
metrics = ["psnr", "ssim"]
[[report.goals]]
name = "DIA ≥ IG + 10 dB"
expression = "psnr[dia] >= psnr[ig] + 10"
"""
# Per (rate, attack) the three images' PSNR (None: exact) and SSIM; the last ig cell at p = 0.5
# fails, so that row's ig median is over two cells.
PSNR = {
    (0.1, "ig"): [10.0, 14.0, 12.0],
    (0.1, "dia"): [None, 25.0, None],
    (0.5, "ig"): [20.0, 22.0, None],
    (0.5, "dia"): [25.0, 26.0, 27.0],
}
SSIM = {(0.1, "ig"): [0.1, 0.3, 0.2], (0.1, "dia"): [0.9, 0.8, 1.0]}


def write_store(tmp_path: Path, suite_text: str = SUITE, per_image: bool = False) -> Path:
    """A finished campaign folder: real cells of SUITE, rows through the store's API; with
    ``per_image``, each cell of PSNR p also scored its images p, p and p + 6."""
    path = tmp_path / "dia-mini.toml"
    path.write_text(suite_text)
    suite = load_suite(path)
    out = tmp_path / "campaign"
    out.mkdir()
    seen: dict[tuple[float, str], int] = {}
    with ResultStore.open(store_path(out), create=True) as store:
        store.record_suite(suite.name, suite.model_dump_json())
        for cell in suite.cells():
            key = (cell.dropout, cell.attack)
            number = seen[key] = seen.get(key, -1) + 1
            failed = key == (0.5, "ig") and number == 2
            metrics = {
                "psnr": PSNR[key][number],
                "ssim": SSIM.get(key, [0.5, 0.5, 0.5])[number],
                "st_lpips": 0.1,
                "wall_s": 1.0,
                "gradient_distance": 0.001 * (number + 1),
            }
            if per_image and metrics["psnr"] is not None:
                metrics["per_image"] = {"psnr": [metrics["psnr"]] * 2 + [metrics["psnr"] + 6]}
            outcome = CellOutcome(
                cell.cell_id,
                "failed" if failed else "done",
                None if failed else metrics,
                "RuntimeError: boom" if failed else None,
                1.0,
                "2026-12-01T00:00:00.000+00:00",
                "2026-12-01T00:00:01.000+00:00",
                {},
            )
            store.record(cell_row(suite.name, cell, outcome))
    return out


def test_markdown_report_prints_medians_counts_and_verdicts(
    tmp_path: Path, data_dir: Path, run_cli
) -> None:
    out = write_store(tmp_path)

    code, stdout, err = run_cli(["bench", "report", str(out), "--no-plots"])

    assert code == 0, err
    lines = stdout.splitlines()
    assert lines[0] == "### dia-mini"
    assert lines[2] == (
        "| dataset | model | dropout | images | cells | psnr ig / dia | ssim ig / dia "
        "| DIA ≥ IG + 10 dB |"
    )
    # p = 0.1: IG median 12, DIA's two exact images make its median ∞ → met.
    assert lines[4] == "| mnist | mlp | 0.1 | 3 | 6 | 12.0 / inf | 0.200 / 0.900 | met |"
    # p = 0.5: IG over its 2 done cells (20, 22) → 21; DIA 26 is +5 → missed.
    assert lines[5] == (
        "| mnist | mlp | 0.5 | 3 | 5 (1 failed) | 21.0 / 26.0 | 0.500 / 0.500 | missed |"
    )
    assert "DIA ≥ IG + 10 dB: `psnr[dia] >= psnr[ig] + 10`" in stdout
    assert not (out / "report").exists()


def test_json_report_and_plots(tmp_path: Path, data_dir: Path, run_cli) -> None:
    out = write_store(tmp_path)

    code, stdout, err = run_cli(["bench", "report", str(out), "--format", "json"])

    assert code == 0, err
    document = json.loads(stdout.strip().splitlines()[-1])
    [suite] = document["suites"]
    assert suite["columns"] == ["ig", "dia"] and suite["rows_by"] == ["dataset", "model", "dropout"]
    first, second = suite["rows"]
    assert first["keys"] == {"dataset": "mnist", "model": "mlp", "dropout": 0.1}
    assert first["medians"]["ig"] == {"psnr": 12.0, "ssim": 0.2}
    assert first["medians"]["dia"]["psnr"] is None  # ∞: exact, null as in the store
    assert (first["verdicts"], second["verdicts"]) == (
        {"DIA ≥ IG + 10 dB": "met"},
        {"DIA ≥ IG + 10 dB": "missed"},
    )
    assert (second["cells"], second["failed"], second["medians"]["ig"]["psnr"]) == (5, 1, 21.0)
    plots = {Path(p).name for p in document["plots"]}
    assert plots == {"dia-mini-psnr.png", "dia-mini-ssim.png"}
    assert (out / "report" / "dia-mini-psnr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_intervals_print_each_medians_bootstrap_interval(
    tmp_path: Path, data_dir: Path, run_cli
) -> None:
    with_intervals = SUITE.replace(
        'metrics = ["psnr", "ssim"]', 'metrics = ["psnr"]\nintervals = true'
    )
    out = write_store(tmp_path, with_intervals)

    code, stdout, err = run_cli(["bench", "report", str(out), "--no-plots"])
    _, json_out, _ = run_cli(["bench", "report", str(out), "--format", "json", "--no-plots"])

    assert code == 0, err
    # p = 0.1: IG's 10, 14, 12 → median 12, resampled medians span 10 … 14; DIA's two exact
    # images (∞) and 25 → the interval reaches ∞.
    assert "| mnist | mlp | 0.1 | 3 | 6 | 12.0 [10.0, 14.0] / inf [25.0, inf] | met |" in stdout
    first = json.loads(json_out.strip().splitlines()[-1])["suites"][0]["rows"][0]
    assert first["intervals"]["ig"] == {"psnr": [10.0, 14.0]}
    assert first["intervals"]["dia"] == {"psnr": [25.0, None]}  # ∞ is null, as medians


def test_per_image_medians_pool_every_scored_image(tmp_path: Path, data_dir: Path, run_cli) -> None:
    per_image = SUITE.replace(
        'metrics = ["psnr", "ssim"]',
        'metrics = ["psnr", "ssim", "gradient_distance"]\nper_image = true',
    )
    out = write_store(tmp_path, per_image, per_image=True)

    code, stdout, err = run_cli(["bench", "report", str(out), "--no-plots"])

    assert code == 0, err
    # p = 0.1, IG: images 10, 10, 16 / 14, 14, 20 / 12, 12, 18 → 14 (the cells' median: 12);
    # DIA: 25, 25, 31 and its two exact cells (no per-image scores: ∞ once each) → 31; SSIM,
    # with no per-image scores, stays over the cells, as does the gradient distance the cells'
    # answers reached (0.001, 0.002, 0.003 each; four digits).
    assert "| 0.1 | 3 | 6 | 14.0 / 31.0 | 0.200 / 0.900 | 0.0020 / 0.0020 | met |" in stdout


@pytest.mark.parametrize("kind", ["missing", "empty", "not-sqlite"])
def test_a_folder_that_is_not_a_store_is_one_line_exit_2(
    tmp_path: Path, run_cli, kind: str
) -> None:
    folder = tmp_path / "campaign"
    if kind != "missing":
        folder.mkdir()
    if kind == "not-sqlite":
        (folder / "results.sqlite").write_bytes(b"not a database" * 100)

    code, stdout, err = run_cli(["bench", "report", str(folder)])

    assert code == 2 and stdout == ""
    assert err.strip().count("\n") == 0 and str(folder) in err and "Traceback" not in err


def test_an_unknown_format_is_one_line(tmp_path: Path, data_dir: Path, run_cli) -> None:
    code, _, err = run_cli(["bench", "report", str(write_store(tmp_path)), "--format", "html"])

    assert code == 2 and "invalid --format 'html'; valid: markdown, json" in err


@pytest.mark.parametrize(
    ("goal", "expected"),
    [
        ("__import__('os').system('true') > 0", "is not allowed; use numbers"),
        ("psnr[dia] == psnr[ig]", "comparisons are >=, <=, >, <"),
        ("mse[dia] < 1", "unknown metric 'mse'; valid:"),
        ("psnr[gifd] > 1", "no grid has attack 'gifd'; valid: dia, ig"),
        ("psnr > 1", "'psnr' should be metric[column]"),
        ("psnr[dia] +", "is not an expression"),
    ],
)
def test_a_bad_goal_is_refused_in_one_line(
    tmp_path: Path, data_dir: Path, goal: str, expected: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(SUITE.replace("psnr[dia] >= psnr[ig] + 10", goal.replace('"', '\\"')))

    with pytest.raises(UserInputError) as raised:
        load_suite(path)

    assert "\n" not in str(raised.value) and expected in str(raised.value)


def test_a_bad_report_key_is_one_line(tmp_path: Path, data_dir: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(SUITE.replace('rows = ["dataset"', 'rows = ["colour"'))

    with pytest.raises(UserInputError, match="unknown report.rows 'colour'; valid: dataset"):
        load_suite(path)


# One column (columns = ""): a row per defense, leakage beside utility, judged against the
# random guess.
MAP = """
[settings]
iterations = 5

[grid]
dataset = "mnist"
model = "mlp"
attack = "ig"
defense = ["none", "gaussian:std=0.1"]
images = [2]

[report]
rows = ["defense"]
columns = ""
metrics = ["psnr", "accuracy", "random_psnr"]
[[report.goals]]
name = "stops IG"
expression = "psnr <= random_psnr + 2"
"""


def test_a_one_column_report_judges_each_row_and_plots_leakage_against_accuracy(
    tmp_path: Path, data_dir: Path, run_cli
) -> None:
    path = tmp_path / "map.toml"
    path.write_text(MAP)
    suite = load_suite(path)
    out = tmp_path / "campaign"
    out.mkdir()
    values = {"none": ([40.0, 50.0], 0.6), "gaussian:std=0.1": ([9.0, 11.0], 0.4)}
    with ResultStore.open(store_path(out), create=True) as store:
        store.record_suite(suite.name, suite.model_dump_json())
        for cell in suite.cells():
            psnrs, accuracy = values[cell.defense]
            metrics = {"psnr": psnrs[cell.batch], "accuracy": accuracy, "random_psnr": 8.0}
            stamp = "2026-12-01T00:00:00.000+00:00"
            outcome = CellOutcome(cell.cell_id, "done", metrics, None, 1.0, stamp, stamp, {})
            store.record(cell_row(suite.name, cell, outcome))

    code, stdout, err = run_cli(["bench", "report", str(out)])

    assert code == 0, err
    lines = stdout.splitlines()
    assert lines[2] == "| defense | images | cells | psnr | accuracy | random_psnr | stops IG |"
    assert lines[4] == "| none | 2 | 2 | 45.0 | 0.600 | 8.0 | missed |"
    assert lines[5] == "| gaussian:std=0.1 | 2 | 2 | 10.0 | 0.400 | 8.0 | met |"
    assert (out / "report" / "map-psnr-vs-accuracy.png").is_file()
