"""``fedleak dta render-detection-dataset / train-detector / attack / evaluate`` end to end on
tiny renders, and their one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from attacks.camouflage.dtn import DTN, DTNRecord, save_dtn
from attacks.camouflage.pattern_file import load_pattern

TINY = ["--size", "32", "--spp", "2"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 6-scene detection dataset, an ssdlite trained 3 steps on it, an identity DTN."""
    from apps.cli import main

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("dta")
    paths = {"data": root / "det", "detector": root / "det.safetensors", "dtn": root / "dtn.st"}
    main(["dta", "render-detection-dataset", "--out", str(paths["data"]), "--views", "6", *TINY])
    main(
        ["dta", "train-detector", "--data", str(paths["data"]), "--out", str(paths["detector"])]
        + ["--steps", "3", "--batch-size", "2", "--device", "cpu"]
    )
    record = DTNRecord(
        width=8, size=32, car="sedan", data_seed=0, steps=0, seed=0, command="t", train_loss=0.0
    )
    save_dtn(paths["dtn"], DTN(width=8), record)
    return paths


def _last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_attack_then_evaluate(world: dict[str, Path], tmp_path: Path, run_cli) -> None:
    models = ["--detector", str(world["detector"]), "--dtn", str(world["dtn"])]
    code, stdout, _ = run_cli(
        ["dta", "attack", "--out", str(tmp_path / "a"), "--steps", "2", "--views", "2"]
        + ["--batch-size", "2", "--spp", "2", "--seed", "3", "--side", "24", *models, "--json"]
    )
    attack = _last_json(stdout)

    assert code == 0
    assert {"texture", "loss", "steps", "wall_s"} <= attack.keys() and attack["steps"] == 2
    assert 0 < attack["render_s"] < attack["wall_s"]
    assert load_pattern(Path(attack["texture"])).shape == (3, 24, 24) and attack["side"] == 24
    for name in ("pattern.png", "loss.json", "loss.png", "renders.png", "attack.json"):
        assert (tmp_path / "a" / name).is_file()
    assert len(json.loads((tmp_path / "a" / "loss.json").read_text())["losses"]) == 2

    for texture in ("normal", "random", attack["texture"]):
        code, stdout, _ = run_cli(
            ["dta", "evaluate", "--texture", texture, "--views", "2", "--seed", "4", "--spp", "2"]
            + [*models, "--json"]
        )
        scores = _last_json(stdout)
        assert code == 0, texture
        assert scores["views"] == 2 and 0 <= scores["ap50"] <= 1
        assert 0 <= scores["ap50_through_dtn"] <= 1
        assert {"mean_confidence", "success_rate"} <= scores.keys()

    code, stdout, _ = run_cli(  # the attack's own views, whatever --views and --seed say
        ["dta", "evaluate", "--texture", attack["texture"], "--training-views", "--views", "5"]
        + ["--spp", "2", *models, "--json"]
    )
    scores = _last_json(stdout)
    assert code == 0
    assert (scores["views"], scores["seed"], scores["held_out"]) == (2, 3, False)

    code, stdout, _ = run_cli(
        ["dta", "evaluate", "--texture", "normal", "--views", "1", "--car", "van", "--seed", "0"]
        + ["--spp", "2", *models, "--json"]
    )
    assert code == 0 and _last_json(stdout)["car"] == "van"


def test_attack_refines_the_dtn_on_its_renders(
    world: dict[str, Path], tmp_path: Path, run_cli
) -> None:
    from attacks.camouflage.dtn import load_dtn

    models = ["--detector", str(world["detector"]), "--dtn", str(world["dtn"])]
    code, stdout, _ = run_cli(
        ["dta", "attack", "--out", str(tmp_path / "a"), "--steps", "2", "--views", "2"]
        + ["--batch-size", "2", "--spp", "2", "--refine-every", "1", "--refine-views", "1"]
        + ["--refine-steps", "1", *models, "--json"]
    )
    attack = _last_json(stdout)

    assert code == 0 and len(attack["refine_errors"]) == 2
    refined, record = load_dtn(Path(attack["dtn_refined"]))
    assert "--refine-every 1" in record.command and record.width == 8
    shipped, _ = load_dtn(world["dtn"])
    assert any(
        not torch.equal(a, b)
        for a, b in zip(refined.state_dict().values(), shipped.state_dict().values(), strict=True)
    )
    code, stdout, _ = run_cli(
        ["dta", "evaluate", "--texture", attack["texture"], "--training-views", "--spp", "2"]
        + ["--detector", str(world["detector"]), "--dtn", attack["dtn_refined"], "--json"]
    )
    assert code == 0 and 0 <= _last_json(stdout)["ap50_through_dtn"] <= 1


def test_coco_weights_are_wrapped_without_training(
    world: dict[str, Path], tmp_path: Path, run_cli
) -> None:
    from attacks.camouflage.detector import COCO_CLASSES, build_detector

    torch.save(build_detector("ssdlite", 32, COCO_CLASSES).state_dict(), tmp_path / "coco.pth")
    code, stdout, _ = run_cli(
        ["dta", "train-detector", "--data", str(world["data"]), "--out", str(tmp_path / "c.st")]
        + ["--steps", "0", "--weights", str(tmp_path / "coco.pth"), "--json"]
    )
    assert code == 0 and _last_json(stdout)["steps"] == 0
    code, stdout, _ = run_cli(
        ["dta", "evaluate", "--views", "1", "--spp", "2", "--detector", str(tmp_path / "c.st")]
        + ["--dtn", str(world["dtn"]), "--json"]
    )
    assert code == 0 and _last_json(stdout)["arch"] == "ssdlite"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["evaluate", "--texture", "plaid"], "unknown texture 'plaid'; valid: normal, random, dta"),
        (["evaluate", "--texture", "{tmp}/wide.safetensors"], "a pattern must be (3, n, n)"),
        (["evaluate", "--views", "0"], "views must be positive, got 0"),
        (["evaluate", "--seed", "0"], "drew this detector's training scenes"),
        (["evaluate", "--training-views"], "'normal' records no training views"),
        (["evaluate", "--detector", "{tmp}/none.st"], "no detector checkpoint at"),
        (["attack", "--out", "{tmp}/a", "--dtn", "{tmp}/none.st"], "no DTN checkpoint at"),
        (["attack", "--out", "{tmp}/a", "--side", "513"], "--side must be in 2..512 texels"),
        (["attack", "--out", "{tmp}/a", "--tile-m", "0"], "--tile-m must be positive metres"),
        (["attack", "--out", "{tmp}/a", "--views", "0"], "--views"),
        (["attack", "--out", "{tmp}/a", "--refine-every", "-1"], "--refine-every"),
        (
            ["attack", "--out", "{tmp}/a", "--refine-every", "5", "--refine-lr", "0"],
            "refinement lr must be positive, got 0.0",
        ),
        (["train-detector", "--data", "{tmp}/none"], "holds no detection scenes"),
        (["train-detector", "--data", "{data}", "--arch", "yolo"], "unknown detector architecture"),
        (["train-detector", "--data", "{data}", "--steps", "0"], "--steps 0 keeps the weights"),
        (
            ["render-detection-dataset", "--out", "{tmp}/d", "--views", "0"],
            "views must be positive",
        ),
    ],
)
def test_bad_input_fails_in_one_line(
    args: list[str], message: str, world: dict[str, Path], tmp_path: Path, run_cli
) -> None:
    from fedsim.storage import save_tensors

    save_tensors(tmp_path / "wide.safetensors", {"pattern": torch.zeros(3, 16, 32)}, {})
    filled = [a.format(tmp=tmp_path, data=world["data"]) for a in args]
    if filled[0] == "evaluate" and "--detector" not in filled:
        filled += ["--detector", str(world["detector"])]

    code, _, stderr = run_cli(["dta", *filled])

    assert code == 2
    assert message in stderr and len(stderr.strip().splitlines()) == 1
