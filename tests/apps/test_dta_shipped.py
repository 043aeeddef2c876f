"""The shipped DTA checkpoints: ``evaluate`` and ``attack`` find them with no options (tiny runs
on the shipped 128² models), and each file records the command and seed that made it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from attacks.camouflage.detector import load_detector
from attacks.camouflage.dtn import load_dtn
from attacks.camouflage.shipped import SHIPPED_DETECTORS, SHIPPED_DTN, SHIPPED_PATTERNS
from fedsim.storage import load_metadata

SMALL = ["--views", "1", "--spp", "1", "--json"]


@pytest.fixture(autouse=True)
def one_torch_thread() -> None:
    torch.set_num_threads(1)


def _last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "path", [SHIPPED_DTN, *SHIPPED_DETECTORS.values(), *SHIPPED_PATTERNS.values()]
)
def test_each_shipped_file_is_small_and_says_how_it_was_made(path: Path) -> None:
    made = load_metadata(path)

    assert path.stat().st_size < 4_000_000
    assert made["command"].startswith("fedleak dta ") and "--seed" in made["command"]


def test_the_shipped_models_load_with_their_records() -> None:
    _, dtn = load_dtn(SHIPPED_DTN)
    archs = {name: load_detector(path)[1].arch for name, path in SHIPPED_DETECTORS.items()}

    assert dtn.size == 128 and all(name == arch for name, arch in archs.items())
    assert set(archs) == {"ssdlite", "fcos", "fcos-cifar", "retinanet-cifar"}


@pytest.mark.parametrize("texture", ["normal", "dta-cifar"])
def test_evaluate_finds_the_shipped_checkpoints(run_cli, texture: str) -> None:
    code, stdout, err = run_cli(["dta", "evaluate", "--texture", texture, *SMALL])

    assert code == 0, err
    scores = _last_json(stdout)
    assert scores["arch"] == "fcos-cifar" and scores["dtn"] == str(SHIPPED_DTN)
    assert scores["views"] == 1 and 0 <= scores["ap50"] <= 1


@pytest.mark.parametrize(
    ("detector", "texture"), [("fcos", "normal"), ("retinanet-cifar", "dta-cifar")]
)
def test_evaluate_takes_a_shipped_detector_and_pattern_by_name(
    run_cli, detector: str, texture: str
) -> None:
    code, stdout, err = run_cli(
        ["dta", "evaluate", "--detector", detector, "--texture", texture, "--car", "van", *SMALL]
    )

    assert code == 0, err
    assert _last_json(stdout)["arch"] == detector


def test_attack_finds_the_shipped_checkpoints(run_cli, tmp_path: Path) -> None:
    code, stdout, err = run_cli(
        ["dta", "attack", "--out", str(tmp_path), "--steps", "1", "--batch-size", "1", *SMALL]
    )

    assert code == 0, err
    summary = _last_json(stdout)
    assert summary["detector"] == "fcos-cifar" and summary["dtn"] == str(SHIPPED_DTN)
    assert Path(summary["texture"]).is_file()
