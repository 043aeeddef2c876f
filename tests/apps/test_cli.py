"""The fedleak command line: listings, an attack end to end, and one-line errors for mistakes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedsim.ground_truth import GroundTruth
from fedsim.observation import Observation


def test_models_json_lists_parameter_counts(run_cli) -> None:
    code, out, _ = run_cli(["models", "--dataset", "cifar10", "--json"])

    counts = json.loads(out.strip().splitlines()[-1])
    assert code == 0
    assert counts["convnet64"] == {"parameters": 2_904_970}
    assert counts["resnet18"] == {"parameters": 11_173_962}
    assert counts["fusion"] == {"parameters": 2 * 128 * 10 + 10}  # the fused head only
    assert set(counts) == {"lenet", "convnet64", "resnet18", "mlp", "vit-small", "fusion"}


def test_models_listing_says_why_fusion_does_not_fit_mnist(run_cli) -> None:
    code, out, _ = run_cli(["models", "--dataset", "mnist", "--json"])

    counts = json.loads(out.strip().splitlines()[-1])
    assert code == 0
    assert "CIFAR-10 trunks" in counts["fusion"]["unavailable"]
    assert counts["lenet"]["parameters"] > 0


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (
            "attacks",
            {"dlg", "idlg", "ig", "ig-fast", "ig-bn", "ig-bn-running", "dia", "dia-no-masks"}
            | {"wiig", "gifd", "gan-latent", "gifd-pixels"},
        )
    ],
)
def test_listings(command: str, expected: set[str], run_cli) -> None:
    code, out, _ = run_cli([command, "--json"])

    assert code == 0
    assert set(json.loads(out)) == expected


def test_datasets_listing(run_cli) -> None:
    code, out, _ = run_cli(["datasets", "--json"])

    assert code == 0
    assert json.loads(out)["cifar10"]["image_shape"] == [3, 32, 32]


def test_attack_end_to_end_writes_its_run_folder(data_dir, tmp_path: Path, run_cli) -> None:
    out = tmp_path / "run"
    args = ["attack", "--dataset", "mnist", "--index", "3", "--model", "lenet", "--attack", "ig"]
    args += ["--iterations", "300", "--labels", "idlg", "--out", str(out), "--json"]

    code, stdout, _ = run_cli(args)

    result = json.loads(stdout.strip().splitlines()[-1])
    assert code == 0
    assert set(result) >= {"psnr", "ssim", "lpips", "st_lpips", "label_accuracy", "wall_s"}
    assert result["iterations"] == 300 and result["out"] == str(out)
    assert result["label_accuracy"] == 1.0
    assert result["psnr"] > 9  # a uniform random guess scores about 6 dB
    assert result["lpips"] is None or result["lpips"] >= 0
    for name in ("grid.png", "metrics.json", "config.json", "reconstruction.safetensors"):
        assert (out / name).is_file()
    config = json.loads((out / "config.json").read_text())
    assert config["seed"] == 0 and config["versions"]["torch"]
    assert config["threat_model"]["labels_granted"] is False
    observation = Observation.load(out / "observation.safetensors")
    assert observation.labels is None
    truth = GroundTruth.load(out / "ground_truth.safetensors")
    assert truth.indices == (3,)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--dataset", "imagenet42"], "imagenet42"),
        (["--model", "alexnet"], "alexnet"),
        (["--attack", "magic"], "magic"),
        (["--index", "10000"], "10000"),
        (["--index", "3,x"], "3,x"),
        (["--iterations", "-5"], "-5"),
        (["--labels", "psychic"], "psychic"),
        (["--dropout", "0.5"], "dropout"),
        (["--device", "tpu"], "tpu"),
    ],
)
def test_user_mistakes_get_one_line_and_exit_2(
    args: list[str], named: str, data_dir, tmp_path: Path, run_cli
) -> None:
    base = ["attack", "--dataset", "mnist", "--model", "lenet", "--iterations", "1"]
    code, stdout, stderr = run_cli([*base, "--out", str(tmp_path / "run"), *args])

    lines = stderr.strip().splitlines()
    assert code == 2
    assert len(lines) == 1 and named in lines[0]
    assert "Traceback" not in stderr and stdout == ""
