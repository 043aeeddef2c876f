"""The Mitsuba renderer: seeded and reproducible, masks that cover the car and nothing else,
textures that tile on the car's paint only, and one-line errors for bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from attacks.camouflage.renderer import (
    View,
    car_names,
    car_parts,
    render_image,
    render_mask,
    render_surface,
    render_view,
    sample_views,
)
from attacks.camouflage.renderer.render import _scene_dict
from attacks.camouflage.texture import sample_texture
from fedsim.errors import UserInputError

SIZE, SPP = 32, 4


@pytest.fixture(scope="module")
def view() -> View:
    """A sedan seen from close by, filling a good part of the frame."""
    return dataclasses.replace(sample_views(1, seed=3)[0], distance_m=5.0)


def test_views_are_seeded_and_round_trip_through_json() -> None:
    first, again, other = sample_views(4, seed=7), sample_views(4, seed=7), sample_views(4, seed=8)

    assert first == again
    assert first != other
    assert [View.from_json(v.to_json()) for v in first] == first
    assert {v.distance_m for v in sample_views(60, seed=0)} == {5.0, 10.0, 15.0}
    assert all(0 <= v.pitch_deg <= 30 and 0 <= v.yaw_deg < 360 for v in first)


def test_a_render_is_reproducible_and_its_seed_sets_the_noise(view: View) -> None:
    first = render_view(view, size=SIZE, spp=SPP)
    again = render_view(view, size=SIZE, spp=SPP)
    reseeded = render_image(dataclasses.replace(view, seed=view.seed + 1), size=SIZE, spp=SPP)

    assert first.image.shape == (SIZE, SIZE, 3) and first.mask.shape == (SIZE, SIZE)
    np.testing.assert_array_equal(first.image, again.image)
    np.testing.assert_array_equal(first.mask, again.mask)
    assert not np.array_equal(first.image, reseeded)
    assert first.image.min() >= 0.0 and first.image.max() <= 1.0


def test_the_mask_covers_the_car_and_nothing_else(view: View) -> None:
    mask = render_mask(view, size=SIZE)
    black = render_image(view, texture=(0.0, 0.0, 0.0), size=SIZE, spp=SPP)
    white = render_image(view, texture=(1.0, 1.0, 1.0), size=SIZE, spp=SPP)
    changed = np.abs(white - black).max(axis=2)

    assert 0.05 < mask.mean() < 0.6
    # The paint changes the pixels the car covers; outside them only light bounced off the car
    # onto the ground moves, a little on average (a few single 4-spp paths reach 0.2).
    assert changed[mask == 0].mean() < 0.01
    assert changed[mask == 1].mean() > 20 * changed[mask == 0].mean()
    # Every pixel the paint changes strongly lies on the car.
    assert np.all(mask[changed > 0.2] > 0)


def test_the_mask_follows_the_car_not_the_frame(view: View) -> None:
    near, far = view, dataclasses.replace(view, distance_m=15.0)

    assert render_mask(far, size=SIZE).sum() < render_mask(near, size=SIZE).sum() / 4


def test_the_surface_pass_traces_only_around_the_car_and_misses_none_of_it() -> None:
    """render_surface traces the pixels the car's mesh projects to; a full-frame pass of the
    same scene sees the car nowhere else and the same shape at every pixel."""
    import mitsuba as mi

    views = [
        dataclasses.replace(view, distance_m=distance)
        for car in car_names()
        for view in sample_views(3, seed=11, car=car)
        for distance in (5.0, 15.0)
    ]
    for view in views:
        surface = render_surface(view, size=96)
        scene = _scene_dict(view, {"type": "rgb", "value": [0.5] * 3}, 96, 1)
        scene["integrator"] = {"type": "aov", "aovs": "index:shape_index"}
        scene["sensor"]["sampler"] = {"type": "stratified", "sample_count": 1, "jitter": False}
        loaded = mi.load_dict(scene)
        index = np.rint(np.asarray(mi.render(loaded))[..., 0]).astype(int)
        ids = [i + 1 for i, shape in enumerate(loaded.shapes()) if shape.id().startswith("car_")]

        np.testing.assert_array_equal(surface.car, np.isin(index, ids))
    # Some views put the car over much of the frame, up to its edges.
    assert max(render_surface(v, size=SIZE).car.mean() for v in views) > 0.3


def test_the_aov_renders_give_the_threads_back_and_match_one_thread(view: View) -> None:
    import drjit

    before = drjit.thread_count()
    drjit.set_thread_count(2)
    try:
        two = render_mask(view, size=SIZE), render_surface(view, size=SIZE).uv
        assert drjit.thread_count() == 2
        drjit.set_thread_count(1)
        one = render_mask(view, size=SIZE), render_surface(view, size=SIZE).uv
    finally:
        drjit.set_thread_count(before)

    assert all(np.array_equal(a, b) for a, b in zip(two, one, strict=True))


def test_a_uniform_pattern_renders_as_its_flat_colour(view: View) -> None:
    colour = (0.8, 0.2, 0.1)
    pattern = np.broadcast_to(np.array(colour, dtype=np.float32), (16, 16, 3))

    flat = render_image(view, texture=colour, size=SIZE, spp=SPP)
    tiled = render_image(view, texture=pattern, size=SIZE, spp=SPP)
    as_tensor = render_image(
        view, texture=torch.tensor(pattern).permute(2, 0, 1), size=SIZE, spp=SPP
    )

    np.testing.assert_allclose(tiled, flat, atol=1e-5)
    np.testing.assert_allclose(as_tensor, flat, atol=1e-5)


def test_a_pattern_changes_the_car_only(view: View) -> None:
    mask = render_mask(view, size=SIZE)
    stripes = np.zeros((16, 16, 3), dtype=np.float32)
    stripes[:, ::2] = 1.0
    flat = render_image(view, texture=(0.5, 0.5, 0.5), size=SIZE, spp=SPP)
    striped = render_image(view, texture=stripes, size=SIZE, spp=SPP)

    changed = np.abs(striped - flat).max(axis=2)
    assert changed[mask == 1].mean() > 0.05
    assert changed[mask == 0].mean() < 0.01


def test_box_projected_uvs_follow_the_surface() -> None:
    for name in car_names():
        parts = {part.material: part for part in car_parts(name)}
        paint = parts["paint"]
        triangles = paint.vertices.reshape(-1, 3, 3)
        normals = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
        # A triangle facing up (z) takes (x, y) as its texture coordinates.
        up = np.abs(normals[:, 2]) > np.abs(normals[:, :2]).max(axis=1)
        uvs = paint.uvs.reshape(-1, 3, 2)
        np.testing.assert_allclose(uvs[up], triangles[up][..., :2], atol=1e-6)
        assert set(parts) == {"paint", "glass", "tyre"}


def test_the_held_out_car_is_a_different_shape() -> None:
    sedan, van = (np.concatenate([p.vertices for p in car_parts(n)]) for n in ("sedan", "van"))

    assert van[:, 2].max() > sedan[:, 2].max() + 0.3  # the van is taller
    views = [dataclasses.replace(v, distance_m=5.0) for v in sample_views(1, 3, car="van")]
    assert views[0].car == "van" and render_mask(views[0], size=SIZE).mean() > 0.05


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sample_views(0, seed=0), "views must be positive"),
        (lambda: sample_views(2, seed=0, car="truck"), "unknown car 'truck'; valid: sedan, van"),
        (
            lambda: render_image(sample_views(1, 0)[0], texture=np.zeros((4, 4)), size=SIZE),
            "texture must be",
        ),
        (
            lambda: render_image(sample_views(1, 0)[0], texture=(2.0, 0.0, 0.0), size=SIZE),
            "texture values must be sRGB in [0, 1]",
        ),
        (lambda: render_image(sample_views(1, 0)[0], size=4), "size must be at least 8"),
    ],
)
def test_bad_input_fails_in_one_line(call, message: str) -> None:  # noqa: ANN001
    with pytest.raises(
        UserInputError, match=message.replace("[", r"\[").replace("]", r"\]")
    ) as error:
        call()
    assert "\n" not in str(error.value)


def test_the_surface_aov_says_which_texel_each_pixel_shows(view: View) -> None:
    # A checker of 30 cm squares, coarse enough to resolve at 64 px from 5 m.
    rows, cols = np.arange(16)[:, None] // 8, np.arange(16)[None] // 4
    checker = np.zeros((16, 16, 3), dtype=np.float32)
    checker[(rows + cols) % 2 == 1] = 1.0
    surface = render_surface(view, size=64)
    brighter = (
        render_image(view, texture=checker, size=64, spp=8)
        - render_image(view, texture=(0.5, 0.5, 0.5), size=64, spp=8)
    )[..., 0]
    sure = (surface.paint == 1) & (np.abs(brighter) > 0.05)

    def agreement(pattern: np.ndarray) -> float:
        eta = sample_texture(
            torch.tensor(pattern.copy()).permute(2, 0, 1), torch.tensor(surface.uv)
        )
        return float((np.sign(eta[0].numpy() - 0.5) == np.sign(brighter))[sure].mean())

    assert sure.sum() > 300
    # Pixels whose footprint straddles a square's edge may disagree with their centre's texel.
    assert agreement(checker) > 0.75
    assert agreement(checker) > agreement(checker.transpose(1, 0, 2)) + 0.2
    assert np.all(surface.uv[surface.paint == 0] == 0)
    assert np.all(render_mask(view, size=64)[surface.paint == 1] > 0)
    # The car is its paint and more (glass, wheels); coverage is the share of each 2×2 block.
    assert np.all(surface.car[surface.paint == 1] == 1) and surface.car.sum() > surface.paint.sum()
    coverage = surface.coverage(2)
    assert coverage.shape == (32, 32) and coverage.sum() == surface.car.sum() / 4
    assert set(np.unique(coverage)) <= {0.0, 0.25, 0.5, 0.75, 1.0}
