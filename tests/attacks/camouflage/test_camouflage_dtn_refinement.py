"""The refiner teaches the DTN the renderer's answer on the attack's own pattern, when it is due."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attacks.camouflage.attack import AttackScenes, camouflage, initial_pattern
from attacks.camouflage.detector import CAR_LABEL
from attacks.camouflage.dtn import DTN
from attacks.camouflage.dtn_refinement import DTNRefiner, Refinement
from fedsim.errors import UserInputError


def test_refreshes_when_due_and_the_dtn_follows_the_renders(attack_scenes: AttackScenes) -> None:
    torch.manual_seed(0)
    refiner = DTNRefiner(
        DTN(width=8), attack_scenes, Refinement(every=2, views=4, steps=15, lr=3e-3, spp=2)
    )
    pattern = initial_pattern(5)
    for step in range(1, 7):
        refiner(step, pattern)

    # Steps 2, 4 and 6; each error is measured on fresh renders before training on them, and
    # the same pattern on the same four views renders the same images each time.
    assert len(refiner.errors) == 3
    assert refiner.errors[-1] < 0.5 * refiner.errors[0]
    assert not any(p.requires_grad for p in refiner.dtn.parameters())


def test_the_attack_calls_the_refiner_which_changes_the_dtn(
    tiny_detector: nn.Module, attack_scenes: AttackScenes
) -> None:
    dtn = DTN(width=8)
    before = {name: value.clone() for name, value in dtn.state_dict().items()}
    refiner = DTNRefiner(dtn, attack_scenes, Refinement(every=2, views=2, steps=2, spp=2))
    camouflage(attack_scenes, dtn, tiny_detector, car_label=CAR_LABEL, steps=4, refine=refiner)

    assert len(refiner.errors) == 2
    assert any(not torch.equal(before[name], value) for name, value in dtn.state_dict().items())


@pytest.mark.parametrize(
    ("option", "value"), [("every", 0), ("views", 0), ("steps", -1), ("lr", 0.0)]
)
def test_bad_refinement_fails_in_one_line(option: str, value: float) -> None:
    with pytest.raises(UserInputError, match=f"refinement {option} must be"):
        Refinement(**{"every": 1, option: value})
