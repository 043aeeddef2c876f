"""The ``camouflage`` cell kind through ``fedleak bench``: a tiny suite (32² renders, a detector
trained 3 steps, an identity DTN) runs into a store, ``bench report`` judges its rows, the viewer
shows its camouflage section; bad camouflage values fail in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from apps.bench.store import ResultStore, store_path
from apps.bench.suite import load_suite
from fedsim.errors import UserInputError

TINY = """
[[grid]]
kind = "camouflage"
measure = "detection"
texture = ["normal", "random", "{pattern}"]
detector = ["{detector}"]
views = 2
spp = 1
seed = [3]
dtn = "{dtn}"

[[grid]]
kind = "camouflage"
measure = "dtn"
texture = ["flat", "patterns"]
views = 1
spp = 1
seed = [3]
dtn = "{dtn}"

[report]
rows = ["measure", "detector", "car"]
columns = "texture"
metrics = ["ap50", "ssim"]

[[report.goals]]
name = "pattern ≤ ½ random"
expression = "ap50['{pattern}'] <= 0.5 * ap50[random]"
where = {{ measure = ["detection"] }}
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 32² ssdlite trained 3 steps, an identity DTN and a pattern file with its attack time."""
    from apps.cli import main
    from attacks.camouflage.dtn import DTN, DTNRecord, save_dtn
    from attacks.camouflage.pattern_file import save_pattern

    root = tmp_path_factory.mktemp("camouflage")
    paths = {"detector": root / "det.safetensors", "dtn": root / "dtn.safetensors"}
    tiny = ["--size", "32", "--spp", "1"]
    main(["dta", "render-detection-dataset", "--out", str(root / "det"), "--views", "4", *tiny])
    main(
        ["dta", "train-detector", "--data", str(root / "det"), "--out", str(paths["detector"])]
        + ["--steps", "3", "--batch-size", "2", "--device", "cpu"]
    )
    record = DTNRecord(
        width=8, size=32, car="sedan", data_seed=0, steps=0, seed=0, command="t", train_loss=0.0
    )
    save_dtn(paths["dtn"], DTN(width=8), record)
    made = {"view_seed": 0, "car": "sedan", "tile_m": 1.0, "projection": "surface", "wall_s": 7.5}
    paths["pattern"] = save_pattern(root / "pattern", torch.rand(3, 16, 16), made)
    return paths


def _suite(tmp_path: Path, world: dict[str, Path], text: str = TINY) -> Path:
    path = tmp_path / "camouflage-tiny.toml"
    path.write_text(text.format(**{name: str(value) for name, value in world.items()}))
    return path


def test_a_camouflage_suite_runs_reports_and_shows(
    tmp_path: Path, world: dict[str, Path], run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "campaign"

    code, stdout, err = run_cli(
        ["bench", "--suite", str(_suite(tmp_path, world)), "--out", str(out)]
    )

    assert code == 0, err
    with ResultStore.open(store_path(out)) as store:
        rows = {json.loads(row["config_json"])["texture"]: row for row in store.rows()}
    assert {row["status"] for row in rows.values()} == {"done"} and len(rows) == 5
    pattern = json.loads(rows[str(world["pattern"])]["metrics_json"])
    assert 0 <= pattern["ap50"] <= 1 and 0 <= pattern["ap50_through_dtn"] <= 1
    assert pattern["attack_wall_s"] == 7.5 and pattern["renders_per_s"] > 0
    assert json.loads(rows["normal"]["metrics_json"])["attack_wall_s"] is None
    flat = json.loads(rows["flat"]["metrics_json"])
    assert flat["pairs"] == 4 and 0 < flat["ssim"] <= 1 and flat["dtn_per_s"] > 0
    assert rows["flat"]["ssim"] == flat["ssim"] and rows["flat"]["model"] == "dtn"
    for row in rows.values():
        assert (out / row["cell_dir"] / "examples.safetensors").is_file()

    code, stdout, err = run_cli(["bench", "report", str(out), "--format", "json", "--no-plots"])
    assert code == 0, err
    (report,) = json.loads(stdout)["suites"]
    verdicts = {r["keys"]["measure"]: r["verdicts"]["pattern ≤ ½ random"] for r in report["rows"]}
    assert verdicts["detection"] in ("met", "missed") and verdicts["dtn"] == "–"

    from apps.viewer import app as viewer_app

    monkeypatch.setattr("sys.argv", [viewer_app.__file__, "--root", str(out)])
    page = AppTest.from_file(viewer_app.__file__, default_timeout=60)
    page.query_params["run"] = "."
    page.run()
    assert not page.exception
    assert page.title[0].value == "Camouflage"
    assert [header.value for header in page.subheader] == [
        "Textures in the renderer",
        "DTN against the renderer",
    ]
    ap = next(frame.value for frame in page.dataframe if frame.value.columns[0] == "detector")
    assert list(ap.columns) == ["detector", "car", "normal", "random", str(world["pattern"])]
    captions = [caption for image in page.get("image") for caption in image.captions]
    assert any("AP@0.5" in str(caption) for caption in captions)
    assert any("PSNR" in str(caption) for caption in captions)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('"normal", "random"', '"plaid", "random"'), "unknown detection texture 'plaid'; valid:"),
        (('"flat", "patterns"', '"flat", "noise"'), "unknown dtn texture 'noise'; valid: flat"),
        (("views = 2", "views = 0"), "views 0: Input should be greater than or equal to 1"),
        (("seed = [3]\\ndtn", "seed = [0]\\ndtn"), "seed 0 drew the training scenes"),
    ],
)
def test_a_bad_camouflage_value_is_one_line(
    tmp_path: Path, world: dict[str, Path], edit: tuple[str, str], message: str
) -> None:
    text = TINY.replace(edit[0].replace("\\n", "\n"), edit[1].replace("\\n", "\n"), 1)

    with pytest.raises(UserInputError) as raised:
        load_suite(_suite(tmp_path, world, text))

    assert "\n" not in str(raised.value) and message in str(raised.value)
