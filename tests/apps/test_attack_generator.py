"""``fedleak attack --attack gifd|gan-latent``: generators chosen, checked and recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from attacks.generators import GeneratorRecord, StagedGenerator, save_generator


@pytest.fixture
def cifar_generator(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "cifar-generator.safetensors"
    record = GeneratorRecord("cifar10", (3, 32, 32), 128, tuple(range(10)), 1, 0, "test")
    save_generator(path, StagedGenerator((3, 32, 32)).eval(), record)
    return path


def test_a_generator_search_runs_and_records_its_generator(
    cifar_generator: Path, tmp_path: Path, data_dir, run_cli
) -> None:
    out = tmp_path / "gifd"
    args = ["attack", "--dataset", "cifar10", "--index", "3", "--model", "lenet"]
    args += ["--attack", "gifd", "--iterations", "8", "--restarts", "1"]
    args += ["--generator", str(cifar_generator), "--out", str(out), "--json"]

    code, stdout, stderr = run_cli(args)

    assert code == 0, stderr
    assert json.loads(stdout.strip().splitlines()[-1])["iterations"] == 8
    config = json.loads((out / "config.json").read_text())
    assert config["generator"]["dataset"] == "cifar10" and config["attack"]["search"] == "generator"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--dataset", "mnist", "--attack", "gifd"], "makes (3, 32, 32) images"),
        (["--dataset", "cifar10", "--attack", "ig"], "--generator applies to gifd"),
    ],
)
def test_a_generator_that_does_not_fit_is_refused_in_one_line(
    args: list[str], named: str, cifar_generator: Path, tmp_path: Path, data_dir, run_cli
) -> None:
    command = ["attack", *args, "--model", "lenet", "--generator", str(cifar_generator)]

    code, stdout, stderr = run_cli([*command, "--out", str(tmp_path / "out")])

    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and named in lines[0], stderr
