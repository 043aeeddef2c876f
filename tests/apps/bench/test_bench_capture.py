"""Suites with [settings.capture]: cells attack client updates captured in a real Flower run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apps.bench.captures import CAPTURES_DIR
from apps.bench.report import load_report
from apps.bench.runner import run_campaign
from apps.bench.suite import load_suite
from fedsim.errors import UserInputError

SUITE = """
description = "tiny capture suite"
[settings]
iterations = 1
device = "cpu"
train_mode = true
[settings.capture]
local_steps = 1
[[grid]]
dataset = ["mnist"]
model = ["convnet64"]
attack = ["ig-bn", "ig-bn-running"]
batch_size = [2]
images = [4]
[report]
rows = ["model", "batch_size", "local_steps"]
columns = "attack+train_mode"
metrics = ["psnr"]
[[report.goals]]
name = "leaked beats running"
expression = "psnr['ig-bn:True'] >= psnr['ig-bn-running:True']"
"""


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    folder = tmp_path_factory.mktemp("capture-suite")
    (folder / "capture.toml").write_text(SUITE)
    summary = run_campaign(load_suite(folder / "capture.toml"), folder / "out")
    assert summary.done == 4 and summary.failed == 0
    return folder / "out"


def test_capture_cells_share_one_flower_run_and_attack_one_client_each(campaign: Path) -> None:
    runs = list((campaign / "federated" / CAPTURES_DIR).iterdir())
    configs = [json.loads(p.read_text()) for p in campaign.glob("cells/*/config.json")]

    assert len(runs) == 1 and (runs[0] / "run" / "observations").is_dir()
    clients = sorted(c["request"]["client"] for c in configs)
    assert clients == [0, 0, 1, 1]
    priors = {c["attack"]["name"]: c["threat_model"]["batch_norm_prior"] for c in configs}
    assert priors["ig-bn"]["source"] == "leaked" and priors["ig-bn-running"]["source"] == "running"


def test_report_columns_join_the_attack_and_the_clients_mode(campaign: Path) -> None:
    [report] = load_report(campaign)

    assert report.columns == ("ig-bn:True", "ig-bn-running:True")
    [row] = report.rows
    assert row.keys == {"model": "convnet64", "batch_size": 2, "local_steps": 1}
    assert row.images == 4 and row.verdicts["leaked beats running"] in ("met", "missed")


def test_capture_and_federated_settings_are_refused_together(tmp_path: Path) -> None:
    text = SUITE.replace("[settings.capture]", "[settings.federated]\n[settings.capture]")
    (tmp_path / "both.toml").write_text(text)

    with pytest.raises(UserInputError, match="capture and settings.federated both set"):
        load_suite(tmp_path / "both.toml")
