"""A tiny detection world shared by the detector, attack and evaluation tests: 32² scenes, an
SSDLite trained a few dozen steps, and a few training views for the attack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn

from attacks.camouflage.attack import AttackScenes, render_attack_scenes
from attacks.camouflage.detection_data import DetectionConfig, DetectionSet, render_scene_set
from attacks.camouflage.detector import CAR_LABEL, build_detector, train_detector
from attacks.camouflage.renderer import sample_scene_views


@pytest.fixture(scope="session")
def one_torch_thread() -> Iterator[None]:
    """Small convolutions run several times faster on one thread of a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def scenes(one_torch_thread: None) -> DetectionSet:
    """16 detection scenes, 32² pixels at 2 spp."""
    return render_scene_set(DetectionConfig(views=16, size=32, spp=2, seed=0))


@pytest.fixture(scope="session")
def tiny_detector(scenes: DetectionSet) -> nn.Module:
    """An SSDLite trained 40 steps on ``scenes``: weak, but its car scores follow its input."""
    model, _ = train_detector(
        build_detector("ssdlite", 32), scenes, car_label=CAR_LABEL, steps=40, batch_size=8, lr=3e-3
    )
    return model


@pytest.fixture(scope="session")
def attack_scenes(one_torch_thread: None) -> AttackScenes:
    """Four training views of the attack (another seed than the detector's scenes), a repeat
    per 0.6 m so that a 32² view shows several texels of the pattern."""
    return render_attack_scenes(sample_scene_views(4, 7), size=32, spp=2, tile_m=0.6)
