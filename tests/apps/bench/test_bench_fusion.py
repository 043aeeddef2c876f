"""The ``fusion`` cell kind through ``fedleak bench``: a tiny suite of the shipped fusion model
runs into a store (sharing crafted sets), resumes, and ``bench report`` judges its rows; a bad
fusion value fails in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apps.bench.runner import CACHE_DIR
from apps.bench.store import ResultStore, store_path
from apps.bench.suite import load_suite
from fedsim.errors import UserInputError

# 3 models × (none, blur: 1 cell each; fgsm: transfer and white-box) = 12 cells on 6 images.
TINY = """
[grid]
kind = "fusion"
model = ["object", "context", "fused"]
perturbation = ["none", "fgsm:eps=8/255", "blur:sigma=1"]
threat = ["transfer", "white-box"]
images = [6]
batch_size = 4
device = "cpu"

[report]
rows = ["attack", "strength", "threat"]
columns = "model"
metrics = ["accuracy", "psnr"]

[[report.goals]]
name = "fused ≥ object"
expression = "accuracy[fused] >= accuracy[object]"
where = { threat = ["transfer"] }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fusion-tiny.toml"
    path.write_text(text)
    return path


def test_a_fusion_suite_runs_into_the_store_and_reports(
    tmp_path: Path, data_dir: Path, run_cli
) -> None:
    suite, out = write(tmp_path, TINY), tmp_path / "campaign"
    args = ["bench", "--suite", str(suite), "--out", str(out), "--json"]

    code, stdout, err = run_cli(args)

    assert code == 0, err
    assert json.loads(stdout.strip().splitlines()[-1])["done"] == 12
    with ResultStore.open(store_path(out)) as store:
        rows = store.rows()
    assert {row["status"] for row in rows} == {"done"} and len(rows) == 12
    for row in rows:
        metrics, config = json.loads(row["metrics_json"]), json.loads(row["config_json"])
        assert config["kind"] == "fusion" and row["images"] == 6 and row["dataset"] == "cifar10"
        assert 0 <= row["accuracy"] <= 1 and 0 <= metrics["clean_accuracy"] <= 1
        assert (out / row["cell_dir"] / "examples.safetensors").is_file()
        if config["attack"] == "none":
            assert row["accuracy"] == metrics["clean_accuracy"] and row["psnr"] is None
        else:
            assert row["psnr"] > 20
    # none, blur, fgsm on object (transfer and object white-box share it), on context, on fused
    assert len(list((out / CACHE_DIR / "fusion" / "perturbed").glob("*.safetensors"))) == 5

    code, stdout, err = run_cli(args)
    assert code == 0 and "12 cells, 12 already done" in err

    code, stdout, err = run_cli(["bench", "report", str(out), "--format", "json", "--no-plots"])
    assert code == 0, err
    (report,) = json.loads(stdout)["suites"]
    assert report["columns"] == ["object", "context", "fused"]
    # rows follow the suite's order of perturbations, not the text of their fields
    assert [r["keys"]["attack"] for r in report["rows"]] == ["none", "fgsm", "fgsm", "blur"]
    verdicts = {(r["keys"]["attack"], r["keys"]["threat"]): r["verdicts"] for r in report["rows"]}
    assert set(verdicts) == {("none", "none"), ("fgsm", "transfer"), ("fgsm", "white-box")} | {
        ("blur", "none")
    }
    assert verdicts["fgsm", "transfer"]["fused ≥ object"] in ("met", "missed")
    assert verdicts["fgsm", "white-box"]["fused ≥ object"] == "–"
    code, stdout, err = run_cli(["bench", "report", str(out)])
    assert "| fgsm | 0.0313725 | transfer | 6 | 3 |" in stdout
    figures = out / "report"
    assert (figures / "fusion-accuracy-vs-visibility.png").is_file()
    (gain,) = json.loads((figures / "fusion-per-class-gain.json").read_text())
    assert gain["perturbations"] == 2 and len(gain["per_class_gain"]) == 10  # fgsm and blur
    assert "fusion-per-class-gain.png" in err


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('"fused"]', '"fused-beta"]'), "grid.model: unknown fusion model 'fused-beta'; valid:"),
        (('"fgsm:eps=8/255"', '"fgsm:eps=2"'), "eps=2 out of range; valid: 0 <= eps <= 1"),
        (('"white-box"]', '"grey-box"]'), "invalid grid.threat[1] 'grey-box'"),
        (("images = [6]", "images = [0]"), "invalid images 0; valid: 1 to 10000"),
        (("images = [6]", "image = [6]"), "unknown key 'grid.image'; valid: kind, model"),
        (('kind = "fusion"', 'kind = "camo"'), "grid: unknown kind 'camo'; valid: attack, fusion"),
        (("where = { threat", "where = { model"), "where 'model' is not a report row"),
    ],
)
def test_a_bad_fusion_value_is_one_line(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    with pytest.raises(UserInputError) as raised:
        load_suite(write(tmp_path, TINY.replace(*edit)))

    assert "\n" not in str(raised.value) and message in str(raised.value)


def test_cli_prints_a_bad_fusion_suite_in_one_line(tmp_path: Path, run_cli) -> None:
    suite = write(tmp_path, TINY.replace('"fused"]', '"fused-beta"]'))

    code, _, err = run_cli(["bench", "--suite", str(suite), "--out", str(tmp_path / "o")])

    assert code == 2 and err.strip().count("\n") == 0 and "fused-beta" in err
