"""Detection scenes carry the car's mask box; a detector trains from random initialisation
(or on the frozen CIFAR-10 trunk), round-trips through its checkpoint, and loads COCO-shaped
weights from a path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from attacks.camouflage.detection_data import (
    DetectionConfig,
    DetectionSet,
    mask_box,
    scene_paint,
)
from attacks.camouflage.detector import (
    ARCHITECTURES,
    CAR_LABEL,
    CIFAR_TRUNK,
    COCO_CLASSES,
    PHOTO_PRETRAINED,
    DetectorRecord,
    build_detector,
    car_confidence,
    load_coco_weights,
    load_detector,
    save_detector,
    train_detector,
)
from attacks.camouflage.renderer import render_mask, sample_scene_views
from fedsim.errors import UnknownNameError, UserInputError
from fedsim.models.fusion import load_cifar_trunk
from fedsim.storage import load_tensors, save_tensors


def _record(arch: str, steps: int) -> DetectorRecord:
    """What a 32² test detector's checkpoint records."""
    return DetectorRecord(
        arch=arch, size=32, num_classes=2, car_label=CAR_LABEL, weights="", data_seed=0,
        steps=steps, seed=0, command="test", train_loss=1.0,
    )  # fmt: skip


def test_mask_box_bounds_the_mostly_covered_pixels() -> None:
    mask = torch.zeros(8, 10)
    mask[2:5, 3:7] = 1.0
    mask[6, 0] = 0.4  # under half covered: outside the box

    assert mask_box(mask).tolist() == [[3.0, 2.0, 7.0, 5.0]]
    assert mask_box(torch.zeros(4, 4)).shape == (0, 4)


def test_scenes_hold_distractors_and_one_car_box_each(scenes: DetectionSet) -> None:
    views = sample_scene_views(16, 0)

    assert any(view.distractors for view in views)
    assert [view.distractors for view in scenes.views] == [view.distractors for view in views]
    # Distractors are not car: the mask, and so the box, is the car's alone.
    busy = next(view for view in views if view.distractors)
    assert mask_box(render_mask(busy, 32)).tolist() == scenes.boxes[views.index(busy)].tolist()
    assert all(len(boxes) == 1 for boxes in scenes.boxes)
    assert scenes.images.shape == (16, 3, 32, 32)


def test_flat_scenes_never_show_a_pattern() -> None:
    flat = DetectionConfig(views=30, paints="flat")
    paints = [scene_paint(flat, index) for index in range(30)]
    patterned = [scene_paint(DetectionConfig(views=30), index) for index in range(30)]

    assert any(paint is None for paint in paints)
    assert all(paint is None or np.ptp(paint.reshape(-1, 3), axis=0).max() == 0 for paint in paints)
    assert any(
        paint is not None and np.ptp(paint.reshape(-1, 3), axis=0).max() > 0 for paint in patterned
    )
    with pytest.raises(UnknownNameError, match="unknown paints 'camo'"):
        DetectionConfig(views=1, paints="camo")


def test_trained_detector_follows_its_input_and_round_trips(
    scenes: DetectionSet, tiny_detector: nn.Module, tmp_path: Path
) -> None:
    confidence = car_confidence(tiny_detector, scenes.images[:4], CAR_LABEL).detach()
    record = _record("ssdlite", steps=40)
    save_detector(tmp_path / "d.safetensors", tiny_detector, record)
    loaded, loaded_record = load_detector(tmp_path / "d.safetensors")

    assert confidence.std() > 1e-3  # BatchNorm recalibrated: eval mode does not ignore images
    assert loaded_record == record
    torch.testing.assert_close(car_confidence(loaded, scenes.images[:4], CAR_LABEL), confidence)


def test_coco_weights_load_from_a_path(tmp_path: Path) -> None:
    coco = build_detector("ssdlite", 32, COCO_CLASSES, seed=1)
    torch.save(coco.state_dict(), tmp_path / "coco.pth")
    model = build_detector("ssdlite", 32, COCO_CLASSES)

    load_coco_weights(model, tmp_path / "coco.pth")

    for name, tensor in coco.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], tensor)
    with pytest.raises(UserInputError, match="does not fit this architecture"):
        load_coco_weights(build_detector("ssdlite", 32), tmp_path / "coco.pth")
    with pytest.raises(
        UnknownNameError, match="valid: fasterrcnn, fcos, fcos-cifar, retinanet-cifar, ssdlite"
    ):
        build_detector("yolo", 32)


@pytest.mark.parametrize("arch", sorted(set(ARCHITECTURES) - set(PHOTO_PRETRAINED)))
def test_every_randomly_initialised_architecture_trains_its_normalisation(arch: str) -> None:
    # FrozenBatchNorm2d suits pretrained backbones only: from random initialisation the
    # model's output would not depend on its input.
    model = build_detector(arch, 64)

    assert not any(isinstance(m, FrozenBatchNorm2d) for m in model.modules())
    assert all(p.requires_grad for p in model.backbone.parameters())


@pytest.mark.parametrize("arch", PHOTO_PRETRAINED)
def test_a_photo_pretrained_detector_trains_around_its_frozen_trunk(
    arch: str, scenes: DetectionSet, tmp_path: Path
) -> None:
    trunk = load_cifar_trunk(CIFAR_TRUNK)
    model = build_detector(arch, 32)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}

    trained, _ = train_detector(model, scenes, car_label=CAR_LABEL, steps=2, batch_size=4)

    after = trained.state_dict()
    # The trunk as fusion trained it (weights and BatchNorm statistics), through training and
    # the detector's BatchNorm recalibration; the pyramid and heads learnt.
    last = trunk.blocks[7].bn2
    torch.testing.assert_close(after["backbone.body.1.conv1.weight"], trunk.blocks[0].conv1.weight)
    torch.testing.assert_close(after["backbone.body.8.bn2.running_var"], last.running_var)
    body = [name for name in before if name.startswith("backbone.body.")]
    assert body and all(torch.equal(after[name], before[name]) for name in body)
    assert any(not torch.equal(after[name], before[name]) for name in before if name not in body)
    # Its checkpoint leaves the trunk out and reads it back from the shipped file.
    record = _record(arch, steps=2)
    save_detector(tmp_path / "d.safetensors", trained, record)
    loaded, _ = load_detector(tmp_path / "d.safetensors")
    assert not set(body) & set(load_tensors(tmp_path / "d.safetensors")[0])
    for name, tensor in loaded.state_dict().items():
        torch.testing.assert_close(tensor, after[name])
    tensors, meta = load_tensors(tmp_path / "d.safetensors")
    save_tensors(tmp_path / "other.safetensors", tensors, {**meta, "trunk_sha256": "0" * 64})
    with pytest.raises(UserInputError, match="trained on another trunk"):
        load_detector(tmp_path / "other.safetensors")
