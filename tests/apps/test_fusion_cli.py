"""``fedleak fusion``: bad input fails in one line naming the valid values, with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from defenses.fusion.heads import save_heads
from defenses.fusion.trunks import save_trunk
from fedsim.models.fusion import HEADS, ContextualFusion, cifar_trunk


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--perturbation", "cw:eps=0.1"], "unknown perturbation 'cw'; valid: none, fgsm:eps=E"),
        (["--perturbation", "fgsm:eps=2"], "eps=2 out of range; valid: 0 <= eps <= 1"),
        (["--perturbation", "pgd:eps=0.03,steps=x"], "steps='x' is not a int"),
        (["--crafted-on", "scene"], "unknown head 'scene'; valid: context, fused, object"),
    ],
)
def test_evaluate_bad_input_is_one_line(run_cli, args: list[str], message: str) -> None:
    code, out, err = run_cli(["fusion", "evaluate", *args, "--images", "4"])

    assert code == 2
    assert err.strip().count("\n") == 0
    assert message in err


def test_train_unknown_stream_is_one_line(run_cli, tmp_path) -> None:
    code, _, err = run_cli(["fusion", "train", "--stream", "scene", "--out", str(tmp_path)])

    assert code == 2
    assert "unknown stream 'scene'; valid: context, heads, object" in err.strip()


def test_evaluate_missing_checkpoint_is_one_line(run_cli, tmp_path) -> None:
    code, _, err = run_cli(["fusion", "evaluate", "--checkpoint", str(tmp_path), "--images", "4"])

    assert code == 2
    assert "no trunk checkpoint at" in err and err.strip().count("\n") == 0


@pytest.fixture
def tiny_checkpoint(tmp_path: Path) -> Path:
    """Random width-4 trunks and fresh heads, saved the way `fusion train` saves them."""
    torch.manual_seed(0)
    for stream in ("object", "context"):
        save_trunk(tmp_path / f"{stream}.safetensors", cifar_trunk(4).eval(), {"width": "4"})
    model = ContextualFusion(cifar_trunk(4), cifar_trunk(4), 32)
    save_heads(tmp_path / "heads.safetensors", model.state_dict(), {"seed": "0"})
    return tmp_path


@pytest.mark.parametrize(
    ("perturbation", "crafted_on"),
    [("none", "object"), ("pgd:eps=0.0314,steps=3", "fused"), ("blur:sigma=1", "object")],
)
def test_evaluate_json_line(
    run_cli, data_dir, tiny_checkpoint: Path, perturbation: str, crafted_on: str
) -> None:
    args = ["fusion", "evaluate", "--checkpoint", str(tiny_checkpoint), "--images", "6"]
    args += ["--perturbation", perturbation, "--crafted-on", crafted_on, "--device", "cpu"]
    args += ["--batch-size", "4", "--json"]

    code, out, err = run_cli(args)

    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["images"] == 6 and result["wall_s"] > 0
    for head in ("object", "context", "fused"):
        assert 0 <= result[head]["clean_accuracy"] <= 1 and 0 <= result[head]["accuracy"] <= 1
    if perturbation == "none":
        assert result["psnr"] is None and result["ssim"] == pytest.approx(1.0)
        assert result["st_lpips"] == pytest.approx(0.0, abs=1e-6)
        assert all(result[h]["accuracy"] == result[h]["clean_accuracy"] for h in HEADS)
        assert result["crafted_on"] is None
    else:
        assert 15 < result["psnr"] < 60 and result["st_lpips"] > 0
    assert result["lpips"] is not None or result["lpips_unavailable"]


def test_evaluate_reads_heads_from_a_file_or_a_run_folder(
    run_cli, data_dir, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "final_weights.safetensors").write_bytes(
        (tiny_checkpoint / "heads.safetensors").read_bytes()
    )
    args = ["fusion", "evaluate", "--checkpoint", str(tiny_checkpoint), "--images", "4"]
    args += ["--device", "cpu", "--json"]
    results = []
    for heads in (run, tiny_checkpoint / "heads.safetensors"):
        code, out, err = run_cli([*args, "--heads", str(heads)])
        assert code == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))

    assert results[0]["heads_file"].endswith("final_weights.safetensors")
    assert results[0]["fused"] == results[1]["fused"]


@pytest.mark.parametrize(
    ("heads", "message"),
    [("nowhere", "no heads at"), ("object.safetensors", "holds no fusion heads")],
)
def test_evaluate_bad_heads_is_one_line(
    run_cli, tiny_checkpoint: Path, heads: str, message: str
) -> None:
    args = ["fusion", "evaluate", "--checkpoint", str(tiny_checkpoint), "--images", "4"]

    code, _, err = run_cli([*args, "--heads", str(tiny_checkpoint / heads)])

    assert code == 2 and err.strip().count("\n") == 0
    assert message in err and "simulate --model fusion` run folder" in err


def test_shipped_metadata_records_numbers() -> None:
    from fedsim.models.fusion import SHIPPED_CHECKPOINTS

    for path in SHIPPED_CHECKPOINTS.glob("*.json"):
        record = json.loads(path.read_text())
        numbers = [v for k, v in record.items() if k.endswith("accuracy") or k == "seed"]
        assert numbers and all(isinstance(v, int | float) for v in numbers), path.name


@pytest.fixture
def torchvision_trunks(tmp_path: Path) -> tuple[Path, Path]:
    """Random-weight ResNet-18s saved as torchvision's ImageNet file and the Places365 file."""
    from torchvision.models import resnet18

    torch.manual_seed(0)
    imagenet, places = tmp_path / "resnet18-imagenet.pth", tmp_path / "resnet18_places365.pth.tar"
    torch.save(resnet18(num_classes=1000).state_dict(), imagenet)
    state = {f"module.{k}": v for k, v in resnet18(num_classes=365).state_dict().items()}
    torch.save({"epoch": 90, "arch": "resnet18", "state_dict": state}, places)
    return imagenet, places


def test_heads_train_and_evaluate_on_imagenet_and_places365_trunks(
    run_cli, data_dir, tmp_path: Path, torchvision_trunks: tuple[Path, Path]
) -> None:
    from defenses.fusion.heads import heads_file, train_heads
    from fedsim.data import load_dataset
    from fedsim.models.fusion import TrunkPaths

    torch.set_num_threads(1)
    paths = TrunkPaths(*torchvision_trunks)
    train, test = (
        load_dataset("cifar10", "train").first(8),
        load_dataset("cifar10", "test").first(4),
    )
    (result,) = train_heads(tmp_path, train, test, epochs=1, trunks=paths).values()
    assert result.heads["heads.fused.weight"].shape == (10, 1024)
    save_heads(tmp_path / heads_file(0.0), result.heads, {"seed": "0"})
    args = ["fusion", "evaluate", "--checkpoint", str(tmp_path), "--images", "3", "--json"]
    args += ["--imagenet", str(paths.imagenet), "--places365", str(paths.places365)]
    args += ["--perturbation", "fgsm:eps=4/255", "--device", "cpu"]

    code, out, err = run_cli(args)

    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["trunks"] == "imagenet+places365" and summary["images"] == 3


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--imagenet", "a.pth"], "--imagenet and --places365 go together"),
        (["--imagenet", "a.pth", "--places365", "b.pth"], "no trunk checkpoint at 'a.pth'"),
    ],
)
def test_bad_trunk_paths_are_one_line(run_cli, extra: list[str], message: str) -> None:
    code, _, err = run_cli(["fusion", "evaluate", "--images", "2", *extra])

    assert code == 2 and err.strip().count("\n") == 0 and message in err


def test_cifar_heads_on_imagenet_trunks_are_one_line(
    run_cli, data_dir, torchvision_trunks: tuple[Path, Path]
) -> None:
    imagenet, places = torchvision_trunks
    args = ["fusion", "evaluate", "--images", "2", "--imagenet", str(imagenet)]

    code, _, err = run_cli([*args, "--places365", str(places)])

    assert code == 2 and err.strip().count("\n") == 0
    assert "do not fit the ImageNet / Places365 trunks (512-d features)" in err
