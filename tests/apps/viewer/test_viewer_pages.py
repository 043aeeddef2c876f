"""The viewer's pages under Streamlit's AppTest: what each page shows for small fixture runs."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest
from viewer_runs import write_attack_run, write_bench_store


def metrics(page: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in page.metric}


def test_the_landing_page_lists_every_run_with_headline_metrics(
    runs_root: Path, open_viewer
) -> None:
    page = open_viewer(runs_root)

    assert not page.exception and not page.error
    assert page.title[0].value == "fedleak runs"
    table = page.dataframe[0].value.set_index("path")
    assert list(table.index) == ["attack", "bench", "sim", "sim/attacks/round-001-client-001-ig"]
    assert list(table["kind"]) == ["attack", "bench", "simulation", "attack"]
    assert table.loc["attack", "psnr"] == 21.5
    assert table.loc["bench", "psnr"] == (24.75 + 11.6) / 2  # median of the done cells
    assert table.loc["sim", "accuracy"] == 0.64
    assert table.loc["bench", "detail"].startswith("bench: 3 cells (2 done, 1 failed)")


def test_the_landing_page_filters_by_kind(runs_root: Path, open_viewer) -> None:
    page = open_viewer(runs_root)

    page.multiselect(key="landing-kind").select("attack").run()

    assert list(page.dataframe[0].value["path"]) == [
        "attack",
        "sim/attacks/round-001-client-001-ig",
    ]


def test_an_unreadable_run_is_listed_with_its_reason(runs_root: Path, open_viewer) -> None:
    (runs_root / "attack" / "metrics.json").write_text("{ broken")

    table = open_viewer(runs_root).dataframe[0].value.set_index("path")

    assert table.loc["attack", "detail"].startswith("unreadable: attack/metrics.json is not valid")


def test_an_empty_folder_says_how_to_make_a_run(tmp_path: Path, open_viewer) -> None:
    page = open_viewer(tmp_path)

    assert "No run here yet" in page.info[0].value


def test_the_sidebar_picker_opens_a_run(runs_root: Path, open_viewer) -> None:
    page = open_viewer(runs_root)

    page.sidebar.selectbox[0].select("attack").run()

    assert page.query_params["run"] == "attack"
    assert page.title[0].value == "Attack · ig"


def test_an_attack_page_shows_metrics_grid_and_per_image_rows(runs_root: Path, open_viewer) -> None:
    page = open_viewer(runs_root, run="attack")

    assert not page.exception and not page.error
    shown = metrics(page)
    assert shown["PSNR"] == "21.50 dB" and shown["SSIM"] == "0.610"
    assert shown["LPIPS"] == "n/a" and shown["ST-LPIPS"] == "0.125"
    assert shown["labels"] == "100.0 %"
    assert page.caption[1].value == (
        "4 iterations · 3.2 s · gradient distance 0.0125 · "
        "LPIPS unavailable: AlexNet weights not cached"
    )
    assert len(page.image) == 1
    per_image = page.dataframe[0].value
    assert list(per_image["psnr"]) == [20.0, 23.0]
    assert list(per_image["true_label"]) == [9, 3]


def test_a_simulation_page_shows_accuracy_privacy_and_the_attack_on_a_capture(
    runs_root: Path, open_viewer
) -> None:
    page = open_viewer(runs_root, run="sim")

    assert not page.exception and not page.error
    shown = metrics(page)
    assert shown["final accuracy"] == "64.0 %"
    assert shown["captures"] == "4" and shown["attacks"] == "1"
    assert shown["ε spent"] == "2.25"
    assert [tab.label for tab in page.tabs] == [
        "Attacks",
        "Accuracy",
        "Partitions",
        "Privacy",
        "Config",
    ]
    attacks = page.dataframe[0].value
    assert (attacks.loc[0, "round"], attacks.loc[0, "client"], attacks.loc[0, "psnr"]) == (
        1,
        1,
        30.25,
    )
    assert shown["PSNR"] == "30.25 dB"  # the capture shown first is the attacked one
    assert len(page.image) == 1
    partitions = page.dataframe[-1].value
    assert list(partitions["label 2"]) == [0, 3]


def test_a_capture_without_an_attack_says_how_to_attack_it(runs_root: Path, open_viewer) -> None:
    page = open_viewer(runs_root, run="sim")

    page.selectbox(key="sim-round").select(2).run()

    assert "No attack on client 1's round-2 update yet" in page.info[0].value
    assert "--round 2 --client 1" in page.info[0].value


def test_a_bench_page_shows_medians_cells_and_leakage_by_defense(
    runs_root: Path, open_viewer
) -> None:
    page = open_viewer(runs_root, run="bench")

    assert not page.exception
    shown = metrics(page)
    assert (shown["cells"], shown["done"], shown["failed"]) == ("3", "2", "1")
    assert shown["median PSNR"] == f"{(24.75 + 11.6) / 2:.2f} dB"
    cells = page.dataframe[0].value
    assert len(cells) == 3
    assert set(cells["status"]) == {"done", "failed"}
    by_defense = page.dataframe[1].value.set_index("defense")
    assert list(by_defense.index) == ["none", "gaussian:std=0.01"]
    assert by_defense.loc["gaussian:std=0.01", "median PSNR"] == 11.6
    # the first done cell opens below, with its own grid and metrics
    assert shown["PSNR"] == "11.60 dB" and len(page.image) == 1


def test_a_bench_page_shows_the_report_tables(runs_root: Path, open_viewer) -> None:
    page = open_viewer(runs_root, run="bench")

    # apps.bench.report's default table: one row per defense, a column per attack.
    report = page.dataframe[2].value.set_index("defense")
    assert list(report.index) == ["gaussian:std=0.01", "none"]
    assert report.loc["none", "psnr dia / ig"] == "– / 24.8"
    assert report.loc["gaussian:std=0.01", "cells"] == "1"
    assert report.loc["none", "cells"] == "1 (1 failed)"


def test_bench_filters_narrow_the_table_and_the_failed_cell_shows_its_error(
    runs_root: Path, open_viewer
) -> None:
    page = open_viewer(runs_root, run="bench")

    page.multiselect(key="bench-cells-attack").select("dia").run()

    assert list(page.dataframe[0].value["cell_id"]) == ["cifar10-lenet-dia-none-b1-s0"]
    assert page.error[0].value == (
        "cell cifar10-lenet-dia-none-b1-s0 failed: lenet has no dropout layer for dia"
    )


def test_a_corrupted_store_shows_a_clear_message(tmp_path: Path, open_viewer) -> None:
    write_bench_store(tmp_path / "bench")
    (tmp_path / "bench" / "results.sqlite").write_bytes(b"garbage" * 200)

    page = open_viewer(tmp_path, run="bench")

    assert not page.exception
    assert page.error[0].value.startswith(
        "bench/results.sqlite is not a readable bench store: file is not a database"
    )


def test_a_cell_folder_outside_the_root_is_refused(tmp_path: Path, open_viewer) -> None:
    write_attack_run(tmp_path / "secret")
    cell = {"cell_id": "c", "status": "done", "psnr": 20.0, "cell_dir": "../secret"}
    write_bench_store(tmp_path / "root" / "bench", [cell])

    page = open_viewer(tmp_path / "root", run="bench")

    assert "climbs out with '..'" in page.warning[0].value
    assert len(page.image) == 0


def test_paths_from_the_url_outside_the_root_are_refused(
    runs_root: Path, tmp_path: Path, open_viewer
) -> None:
    write_attack_run(tmp_path / "secret")
    (runs_root / "escape").symlink_to(tmp_path / "secret")

    for run, reason in [
        ("../secret", "climbs out with '..'"),
        (str(tmp_path / "secret"), "is absolute"),
        ("escape", "leads outside the folder"),
    ]:
        page = open_viewer(runs_root, run=run)
        assert reason in page.error[0].value
        assert not page.metric and not page.image


def test_without_a_root_the_page_says_how_to_start(tmp_path: Path, open_viewer) -> None:
    page = open_viewer(tmp_path / "missing")

    assert "start the viewer with `fedleak view DIR`" in page.error[0].value


def test_a_folder_naming_its_start_run_opens_on_it_once(runs_root: Path, open_viewer) -> None:
    (runs_root / "view.json").write_text('{"start": "attack"}')

    page = open_viewer(runs_root)

    assert page.query_params["run"] == "attack"
    assert page.title[0].value == "Attack · ig"
    page.sidebar.selectbox[0].select("(all runs)").run()
    assert page.title[0].value == "fedleak runs"


def test_a_start_run_that_is_no_run_leaves_the_landing_page(runs_root: Path, open_viewer) -> None:
    (runs_root / "view.json").write_text('{"start": "../elsewhere"}')

    page = open_viewer(runs_root)

    assert not page.exception and page.title[0].value == "fedleak runs"
