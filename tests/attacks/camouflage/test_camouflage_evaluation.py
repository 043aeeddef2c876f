"""AP@0.5 through torchmetrics matches a hand-counted case; textures resolve or fail in one line;
a texture is scored on real renders and through the DTN."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from attacks.camouflage.detector import CAR_LABEL
from attacks.camouflage.dtn import DTN
from attacks.camouflage.evaluation import detection_scores, evaluate_texture
from attacks.camouflage.pattern_file import load_pattern, resolve_texture, save_pattern
from attacks.camouflage.renderer import sample_scene_views
from fedsim.errors import UserInputError


def _found(*detections: tuple[list[float], float]) -> dict[str, torch.Tensor]:
    return {
        "boxes": torch.tensor([box for box, _ in detections]).reshape(-1, 4),
        "scores": torch.tensor([score for _, score in detections]),
    }


def test_scores_match_a_hand_counted_case() -> None:
    car_a, car_b = [10.0, 10.0, 30.0, 20.0], [0.0, 0.0, 16.0, 16.0]
    found = [
        _found((car_a, 0.9)),  # found, sure
        _found(([40.0, 40.0, 60.0, 60.0], 0.8), ([1.0, 1.0, 16.0, 16.0], 0.3)),  # FP, then faint
        _found(),  # nothing
    ]
    targets = [torch.tensor([car_a]), torch.tensor([car_b]), torch.tensor([car_a])]

    scores = detection_scores(found, targets)

    # Ranked by score: TP (0.9), FP (0.8), TP (0.3) against 3 cars → recall 1/3, 1/3, 2/3 at
    # precision 1, 1/2, 2/3. COCO's 101 recall points: 0..0.33 (34 points) interpolate to 1,
    # 0.34..0.66 (33 points) to 2/3, 0.67..1 (34 points) to 0.
    assert scores["ap50"] == pytest.approx((34 * 1 + 33 * 2 / 3) / 101, abs=1e-6)
    assert scores["mean_confidence"] == pytest.approx((0.9 + 0.8 + 0.0) / 3)
    assert scores["success_rate"] == pytest.approx(2 / 3)  # the car in image 1 is found
    assert scores["views"] == 3


def test_textures_resolve_and_bad_ones_fail(tmp_path: Path) -> None:
    pattern = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0))
    path = save_pattern(tmp_path / "p", pattern, {"view_seed": 0})
    Image.fromarray(np.zeros((8, 16, 3), dtype=np.uint8)).save(tmp_path / "short.png")

    assert resolve_texture("normal", 0) is None
    torch.testing.assert_close(resolve_texture("random", 4), resolve_texture("random", 4))
    assert not torch.equal(resolve_texture("random", 4), resolve_texture("random", 5))
    torch.testing.assert_close(resolve_texture(str(path), 0), pattern)
    torch.testing.assert_close(load_pattern(tmp_path / "p.png"), pattern, atol=0.5 / 255, rtol=0)
    with pytest.raises(UserInputError, match="unknown texture 'plaid'; valid: normal, random, dta"):
        resolve_texture("plaid", 0)
    with pytest.raises(UserInputError, match=r"must be \(3, n, n\).*2\.\.512, got \(3, 8, 16\)"):
        resolve_texture(str(tmp_path / "short.png"), 0)
    big = save_pattern(tmp_path / "big", torch.rand(3, 64, 64), {})
    assert resolve_texture(str(big), 0).shape == (3, 64, 64)


def test_a_texture_is_scored_in_the_renderer_and_through_the_dtn(
    tiny_detector: nn.Module,
) -> None:
    views = sample_scene_views(3, 11)

    dtn, texture = DTN(width=8), resolve_texture("random", 0)
    judged = evaluate_texture(tiny_detector, CAR_LABEL, views, texture, size=32, spp=2, dtn=dtn)
    spread = evaluate_texture(
        tiny_detector, CAR_LABEL, views, texture, size=32, spp=2, dtn=dtn, workers=2
    )
    without = evaluate_texture(tiny_detector, CAR_LABEL, views, None, size=32, spp=2)
    scores = judged.scores

    assert scores["views"] == 3 and 0 <= scores["ap50"] <= 1
    assert 0 <= scores["ap50_through_dtn"] <= 1
    assert 0 <= scores["mean_confidence"] <= 1 and 0 <= scores["success_rate"] <= 1
    assert 0 < scores["dtn_ssim"] <= 1 and judged.piped.shape == judged.rendered.shape == (
        3,
        3,
        32,
        32,
    )
    assert len(judged.found) == len(judged.targets) == 3 and judged.render_s > 0
    assert without.scores["ap50_through_dtn"] is None and without.piped is None
    # The pipeline's views rendered in two processes are the ones one process renders.
    assert torch.equal(spread.piped, judged.piped)
    assert spread.scores == scores
