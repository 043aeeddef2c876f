"""The black-box renderer of DTA: Mitsuba 3 scenes of a procedural car (sedan for training,
van held out) under a random sun, with an occluder, seen from DTA's camera poses."""

from attacks.camouflage.renderer.cars import CARS, car_names, car_parts
from attacks.camouflage.renderer.render import (
    REFERENCE_PAINT,
    TILE_SIZE_M,
    Render,
    Surface,
    periods_per_width,
    render_image,
    render_mask,
    render_surface,
    render_view,
)
from attacks.camouflage.renderer.views import (
    DISTANCES_M,
    PITCH_RANGE_DEG,
    Distractor,
    View,
    sample_scene_views,
    sample_views,
)

__all__ = [
    "CARS",
    "DISTANCES_M",
    "PITCH_RANGE_DEG",
    "REFERENCE_PAINT",
    "TILE_SIZE_M",
    "Render",
    "Distractor",
    "Surface",
    "View",
    "car_names",
    "car_parts",
    "periods_per_width",
    "render_image",
    "render_mask",
    "render_surface",
    "render_view",
    "sample_scene_views",
    "sample_views",
]
