"""The DTN: its composition formula reproduces a real render from hand-set maps; shapes."""

from __future__ import annotations

import dataclasses

import torch

from attacks.camouflage.dtn import DTN, compose, paste
from attacks.camouflage.renderer import render_view, sample_views


def _render(colour: tuple[float, float, float]) -> tuple[torch.Tensor, torch.Tensor]:
    view = dataclasses.replace(sample_views(1, seed=3)[0], distance_m=5.0)
    rendered = render_view(view, texture=colour, size=32, spp=4)
    return torch.tensor(rendered.image).permute(2, 0, 1)[None], torch.tensor(rendered.mask)[None]


def test_identity_maps_give_back_the_expected_texture() -> None:
    image, _ = _render((0.3, 0.6, 0.9))
    zeros, ones = torch.zeros_like(image), torch.ones_like(image)

    identity = torch.cat([zeros, zeros, ones, zeros], dim=1)
    torch.testing.assert_close(compose(image, identity), image, rtol=0, atol=0)


def test_hand_set_shading_maps_reproduce_a_real_render() -> None:
    colour = (0.8, 0.5, 0.2)
    image, mask = _render(colour)
    eta = torch.tensor(colour)[None, :, None, None] * mask[:, None]
    zeros = torch.zeros_like(image)
    # TF3 carries the light the car received; TF4 whatever the paint does not reflect.
    shading = torch.where(eta > 0, image / eta.clamp_min(1e-6), zeros)
    residual = torch.where(eta > 0, zeros, image)
    rendered = compose(eta, torch.cat([zeros, zeros, shading, residual], dim=1))

    torch.testing.assert_close(rendered, image, rtol=1e-6, atol=1e-6)


def test_a_fresh_dtn_predicts_the_expected_texture_inside_the_mask_only() -> None:
    model = DTN(width=8)
    x_ref, mask = torch.rand(2, 3, 24, 40), (torch.rand(2, 24, 40) > 0.5).float()
    eta = torch.rand(2, 3, 24, 40)

    assert model.transforms(x_ref, mask, eta).shape == (2, 12, 24, 40)
    torch.testing.assert_close(model(x_ref, mask, eta), eta * mask[:, None])


def test_paste_keeps_the_background_outside_the_mask() -> None:
    car, background = torch.ones(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    mask = torch.zeros(1, 4, 4)
    mask[0, 1:3, 1:3] = 1.0

    pasted = paste(car, background, mask)
    assert pasted.sum() == 3 * 4 and pasted[0, :, 0, 0].sum() == 0
