"""Evasion perturbations: FGSM / PGD (foolbox) inside the ε ball and the pixel box, blur's
monotone visibility, and the spec parser's one-line refusals."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attacks.evasion import Perturbation, parse_perturbation, perturb
from attacks.metrics import psnr
from fedsim.errors import UserInputError

MEAN, STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)


@pytest.fixture
def batch() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten())
    model.append(nn.Linear(8 * 16 * 16, 10))
    images = torch.rand(6, 3, 16, 16)
    images[0] = 0.0  # pixels on the box's edges: the perturbation must not leave [0, 1]
    images[1] = 1.0
    return model.eval(), images, model(_normalize(images)).argmax(1)


def _normalize(images: torch.Tensor) -> torch.Tensor:
    return (images - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]


@pytest.mark.parametrize("spec", ["fgsm:eps=0.0157", "pgd:eps=0.0314,steps=10"])
def test_gradient_attacks_stay_in_the_ball_and_box(batch, spec: str) -> None:
    model, images, labels = batch
    perturbation = parse_perturbation(spec)

    perturbed = perturb(perturbation, images, labels, model, MEAN, STD)

    assert (perturbed - images).abs().max() <= perturbation.eps + 1e-6
    assert (perturbed - images).abs().max() > perturbation.eps / 2
    assert perturbed.min() >= 0 and perturbed.max() <= 1


def test_pgd_lowers_accuracy_on_the_model_it_is_crafted_on(batch) -> None:
    model, images, labels = batch

    perturbed = perturb(parse_perturbation("pgd:eps=0.1"), images, labels, model, MEAN, STD)
    assert (model(_normalize(perturbed)).argmax(1) == labels).float().mean() < 1.0


def test_blur_is_monotone_in_sigma() -> None:
    torch.manual_seed(1)
    images = torch.rand(4, 3, 32, 32)
    values = [
        psnr(perturb(Perturbation("blur", sigma=sigma), images, torch.zeros(4)), images).mean()
        for sigma in (0.5, 1.0, 1.5, 2.0)
    ]

    assert values == sorted(values, reverse=True)
    assert values[0] > values[-1] + 1


def test_none_returns_the_clean_images() -> None:
    images = torch.rand(2, 3, 8, 8)

    torch.testing.assert_close(perturb(parse_perturbation("none"), images, torch.zeros(2)), images)


def test_parse_defaults_and_round_trip() -> None:
    assert parse_perturbation("pgd:eps=0.0314") == Perturbation("pgd", eps=0.0314, steps=10)
    assert str(parse_perturbation("blur:sigma=1.5")) == "blur:sigma=1.5"
    assert str(parse_perturbation("pgd:eps=0.5,steps=3")) == "pgd:eps=0.5,steps=3"
    assert parse_perturbation("fgsm:eps=4/255").eps == 4 / 255
    assert parse_perturbation(str(parse_perturbation("fgsm:eps=4/255"))).eps == pytest.approx(
        4 / 255, rel=1e-9
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("cw:eps=0.1", "unknown perturbation 'cw'; valid: none, fgsm:eps=E"),
        ("fgsm", "fgsm needs eps"),
        ("fgsm:eps=1.5", "eps=1.5 out of range; valid: 0 <= eps <= 1"),
        ("fgsm:eps=-0.1", "out of range"),
        ("fgsm:eps=abc", "is not a float"),
        ("pgd:eps=0.1,steps=0", "steps=0 out of range"),
        ("pgd:eps=0.1,stride=2", "bad parameter 'stride=2'; valid: eps=, steps="),
        ("blur:sigma=0", "sigma=0 out of range"),
    ],
)
def test_bad_specs_fail_with_the_valid_forms(spec: str, message: str) -> None:
    with pytest.raises(UserInputError, match=message.replace("(", r"\(")):
        parse_perturbation(spec)
