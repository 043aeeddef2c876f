"""``fedleak`` with GIFD's further settings: the ``mnist-rgb32`` view attacked with the CIFAR-10
generator (out of distribution), and BigGAN folders passed as ``--generator``."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from attacks.generators import SHIPPED_DIR

CIFAR_GENERATOR = SHIPPED_DIR / "cifar10.safetensors"


def test_datasets_lists_the_view_and_models_take_its_shape(run_cli) -> None:
    code, out, _ = run_cli(["datasets", "--json"])

    rows = json.loads(out)
    assert code == 0
    assert rows["mnist-rgb32"]["view_of"] == "mnist" and rows["mnist"]["view_of"] is None
    assert rows["mnist-rgb32"]["image_shape"] == [3, 32, 32]
    assert rows["mnist-rgb32"]["mean"] == rows["cifar10"]["mean"]

    code, out, _ = run_cli(["models", "--dataset", "mnist-rgb32", "--json"])

    assert code == 0
    assert json.loads(out)["convnet64"] == {"parameters": 2_904_970}  # as on cifar10


def test_gifd_on_the_view_needs_a_generator_named(tmp_path: Path, data_dir, run_cli) -> None:
    args = ["attack", "--dataset", "mnist-rgb32", "--model", "lenet", "--attack", "gifd"]

    code, _, stderr = run_cli([*args, "--out", str(tmp_path / "out")])

    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1, stderr
    assert "no shipped generator for dataset 'mnist-rgb32'; pass --generator PATH" in lines[0]
    assert str(CIFAR_GENERATOR) in lines[0]  # a shipped generator of the same image shape


def test_the_cifar10_generator_attacks_mnist_digits_as_rgb32(
    tmp_path: Path, data_dir, run_cli
) -> None:
    out = tmp_path / "ood"
    args = ["attack", "--dataset", "mnist-rgb32", "--index", "3", "--model", "lenet"]
    args += ["--attack", "gifd", "--iterations", "4", "--restarts", "1"]
    args += ["--generator", str(CIFAR_GENERATOR), "--out", str(out), "--json"]

    code, stdout, stderr = run_cli(args)

    assert code == 0, stderr
    assert json.loads(stdout.strip().splitlines()[-1])["iterations"] == 4
    config = json.loads((out / "config.json").read_text())
    assert config["generator"]["dataset"] == "cifar10"
    assert config["request"]["dataset"] == "mnist-rgb32"
    assert "mnist/test.parquet" in config["threat_model"]["data_source"]


def test_a_biggan_folder_is_a_generator(tmp_path: Path, tiny_biggan, data_dir, run_cli) -> None:
    folder = tiny_biggan(tmp_path / "biggan", side=64)
    out = tmp_path / "gifd"
    args = ["attack", "--dataset", "cifar10", "--index", "3", "--model", "lenet"]
    args += ["--attack", "gifd", "--iterations", "8", "--restarts", "1", "--labels", "idlg"]
    args += ["--generator", str(folder), "--out", str(out), "--json"]

    code, stdout, stderr = run_cli(args)

    assert code == 0, stderr
    assert json.loads(stdout.strip().splitlines()[-1])["iterations"] == 8  # one step per stage
    generator = json.loads((out / "config.json").read_text())["generator"]
    assert generator["folder"] == str(folder.resolve())
    assert generator["native_shape"] == [3, 64, 64] and generator["image_shape"] == [3, 32, 32]


def test_train_generator_writes_a_loadable_checkpoint_with_its_record(
    tmp_path: Path, data_dir, run_cli
) -> None:
    from attacks.generators import load_generator

    out = tmp_path / "g.safetensors"
    args = ["train-generator", "--dataset", "mnist", "--classes", "0-1", "--epochs", "1"]
    args += ["--batch-size", "512", "--width", "32", "--device", "cpu"]
    args += ["--out", str(out), "--json"]

    code, stdout, stderr = run_cli(args)

    assert code == 0, stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["classes"] == [0, 1] and Path(summary["samples"]).is_file()
    generator, record = load_generator(out)
    assert record.classes == (0, 1) and record.epochs == 1 and record.dataset == "mnist"
    assert record.width == generator.width == 32
    assert "--device cpu" in record.command
    assert generator(torch.randn(2, generator.latent_dim)).shape == (2, 1, 28, 28)


def test_train_generator_conditional_records_its_classes_and_drops_its_state(
    tmp_path: Path, data_dir, run_cli
) -> None:
    from attacks.generators import load_generator

    out = tmp_path / "g.safetensors"
    args = ["train-generator", "--dataset", "mnist", "--classes", "0-1", "--epochs", "1"]
    args += ["--batch-size", "512", "--width", "16", "--conditional", "--device", "cpu"]

    code, stdout, stderr = run_cli([*args, "--out", str(out), "--json"])

    assert code == 0, stderr
    assert json.loads(stdout.strip().splitlines()[-1])["conditional"] is True
    generator, record = load_generator(out)
    assert generator.conditional and record.num_classes == 10  # conditioned on dataset labels
    assert "--conditional" in record.command
    assert not (tmp_path / "g.safetensors.state").exists()  # the finished run's state is gone
    generator.condition(torch.tensor([0, 1]))
    assert generator(torch.randn(2, generator.latent_dim)).shape == (2, 1, 28, 28)


def test_train_generator_refuses_an_unknown_device(tmp_path: Path, data_dir, run_cli) -> None:
    args = ["train-generator", "--dataset", "mnist", "--device", "tpu"]

    code, _, stderr = run_cli([*args, "--out", str(tmp_path / "g.safetensors")])

    assert (
        code == 2
        and stderr.strip() == "fedleak: error: unknown device 'tpu'; valid: auto, cpu, cuda"
    )


def test_generator_ceiling_prints_a_psnr_per_stage(data_dir, run_cli) -> None:
    args = ["generator-ceiling", "--dataset", "mnist", "--images", "2", "--steps", "5"]

    code, stdout, stderr = run_cli([*args, "--restarts", "1", "--json"])

    assert code == 0, stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["generator"].endswith("mnist.safetensors") and len(summary["images"]) == 2
    assert [row["stage"] for row in summary["stages"]] == [0, 1, 2]
    assert all(len(row["psnr"]) == 2 and row["median_psnr"] > 0 for row in summary["stages"])


def test_generator_ceiling_refuses_a_class_the_dataset_lacks(run_cli) -> None:
    code, _, stderr = run_cli(["generator-ceiling", "--dataset", "mnist", "--classes", "8-11"])

    assert (
        code == 2
        and stderr.strip() == "fedleak: error: --classes [10, 11] not in mnist; valid: 0..9"
    )
