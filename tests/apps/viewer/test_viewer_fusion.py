"""The viewer's fusion page under AppTest, on a tiny fusion store made by a real campaign."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from apps.bench.runner import run_campaign
from apps.bench.suite import load_suite

SUITE = """
[grid]
kind = "fusion"
model = ["object", "fused"]
perturbation = ["none", "fgsm:eps=8/255", "blur:sigma=1"]
threat = ["transfer", "white-box"]
images = [4]
batch_size = 4
device = "cpu"
"""


@pytest.fixture(scope="module")
def fusion_root(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A folder with one fusion store, ``fusion`` (8 cells of the shipped model, 4 images)."""
    root = tmp_path_factory.mktemp("runs")
    suite = root / "tiny-fusion.toml"
    suite.write_text(SUITE)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        summary = run_campaign(load_suite(suite), root / "fusion")
    finally:
        torch.set_num_threads(threads)
    assert summary.done == 8
    return root


def test_the_fusion_page_shows_curves_report_and_examples(fusion_root: Path, open_viewer) -> None:
    page = open_viewer(fusion_root, run="fusion")

    assert not page.exception and not page.error
    assert page.title[0].value == "Contextual fusion"
    assert {m.label: m.value for m in page.metric}["done"] == "8"
    captions = [c.value for c in page.caption]
    assert "fgsm, transfer: accuracy against ε (pixel scale)" in captions
    assert "fgsm, white-box: accuracy against ε (pixel scale)" in captions
    assert "clean (true class)" in captions
    assert any(c.startswith("object: prediction · PSNR") for c in captions)
    assert page.dataframe, "the report table"


def test_picking_a_perturbation_shows_each_models_answer(fusion_root: Path, open_viewer) -> None:
    page = open_viewer(fusion_root, run="fusion")

    page.selectbox(key="fusion-fusion-perturbation").select("fgsm 0.0313725 white-box").run()

    assert not page.exception
    models = [c.value.split(":")[0] for c in page.caption if ": prediction" in c.value]
    assert models == ["object", "fused"]
