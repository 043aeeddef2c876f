"""Seeded scene parameters of one rendered view: camera, sun, occluder, ground, distractors,
noise seed."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

import numpy as np

from attacks.camouflage.renderer.cars import CARS
from fedsim.errors import UnknownNameError, UserInputError

# DTA's camera distances (m-equivalent) and pitch range; yaw covers the full circle.
DISTANCES_M = (5.0, 10.0, 15.0)
PITCH_RANGE_DEG = (0.0, 30.0)
DISTRACTOR_SHAPES = ("cube", "sphere", "cylinder")


@dataclass(frozen=True)
class Distractor:
    """A background object that is not a car: a Mitsuba ``shape`` standing on the ground at
    (x, y) metres, ``size_m`` (length, width, height), turned by ``yaw_deg``, sRGB ``colour``."""

    shape: str
    x_m: float
    y_m: float
    size_m: tuple[float, float, float]
    yaw_deg: float
    colour: tuple[float, float, float]

    def __post_init__(self) -> None:
        if self.shape not in DISTRACTOR_SHAPES:
            raise UnknownNameError("distractor shape", self.shape, DISTRACTOR_SHAPES)
        object.__setattr__(self, "size_m", tuple(self.size_m))
        object.__setattr__(self, "colour", tuple(self.colour))


@dataclass(frozen=True)
class View:
    """Everything but the texture that fixes a render; angles in degrees, lengths in metres."""

    car: str
    distance_m: float
    pitch_deg: float
    yaw_deg: float
    sun_azimuth_deg: float
    sun_elevation_deg: float
    occluder_along_m: float  # towards the sun from the car's centre, so its shadow falls on it
    occluder_across_m: float  # sideways from that line
    occluder_size_m: tuple[float, float, float]  # (width, depth, height)
    ground_albedo: float  # sRGB grey level of the ground, in [0, 1]
    seed: int  # the sampler's seed: the render's Monte Carlo noise
    distractors: tuple[Distractor, ...] = ()

    def __post_init__(self) -> None:
        if self.car not in CARS:
            raise UnknownNameError("car", self.car, CARS)
        object.__setattr__(self, "occluder_size_m", tuple(self.occluder_size_m))
        object.__setattr__(
            self,
            "distractors",
            tuple(d if isinstance(d, Distractor) else Distractor(**d) for d in self.distractors),
        )

    def to_json(self) -> str:
        """The view as one JSON object."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> View:
        """The view a ``to_json`` string describes."""
        return cls(**json.loads(text))


def sample_views(count: int, seed: int, car: str = "sedan") -> list[View]:
    """``count`` views drawn from ``seed``: distance in DISTANCES_M, pitch 0–30°, yaw 0–360°,
    sun azimuth 0–360° and elevation 20–70°, a box occluder between car and sun."""
    if count <= 0:
        raise UserInputError(f"views must be positive, got {count}")
    if car not in CARS:
        raise UnknownNameError("car", car, CARS)
    rng = np.random.default_rng(seed)
    return [_sample_view(rng, car) for _ in range(count)]


def _sample_view(rng: np.random.Generator, car: str) -> View:
    """One view; the occluder is redrawn until it stands ≥ 45° off the camera's line of sight,
    so that it may hide part of the car but never all of it."""
    distance = float(rng.choice(DISTANCES_M))
    pitch = float(rng.uniform(*PITCH_RANGE_DEG))
    yaw = float(rng.uniform(0.0, 360.0))
    while True:
        azimuth = float(rng.uniform(0.0, 360.0))
        along, across = float(rng.uniform(3.0, 5.0)), float(rng.uniform(-2.0, 2.0))
        bearing = azimuth + np.degrees(np.arctan2(across, along))
        if abs((bearing - yaw + 180.0) % 360.0 - 180.0) >= 45.0:
            break
    return View(
        car=car,
        distance_m=distance,
        pitch_deg=pitch,
        yaw_deg=yaw,
        sun_azimuth_deg=azimuth,
        sun_elevation_deg=float(rng.uniform(20.0, 70.0)),
        occluder_along_m=along,
        occluder_across_m=across,
        occluder_size_m=(
            float(rng.uniform(0.5, 3.0)),
            float(rng.uniform(0.3, 1.0)),
            float(rng.uniform(2.0, 4.0)),
        ),
        ground_albedo=float(rng.uniform(0.2, 0.5)),
        seed=int(rng.integers(0, 2**31 - 1)),
    )


def sample_scene_views(
    count: int, seed: int, car: str = "sedan", distractors: int = 3
) -> list[View]:
    """:func:`sample_views` with up to ``distractors`` background objects added to each view (the
    number uniform in 0..distractors), drawn from a stream of ``seed`` of their own."""
    if distractors < 0:
        raise UserInputError(f"distractors must be ≥ 0, got {distractors}")
    rng = np.random.default_rng([seed, 1])
    return [
        replace(view, distractors=tuple(_sample_distractor(rng, view) for _ in range(n)))
        for view, n in zip(
            sample_views(count, seed, car), rng.integers(0, distractors + 1, count), strict=True
        )
    ]


def _sample_distractor(rng: np.random.Generator, view: View) -> Distractor:
    """An object 3.5–9 m from the car, within 60° of the line behind it as the camera sees it,
    so that it stands in the background; car-sized boxes and car colours included."""
    bearing = np.radians(view.yaw_deg + 180.0 + rng.uniform(-60.0, 60.0))
    radius = rng.uniform(3.5, 9.0)
    return Distractor(
        shape=str(rng.choice(DISTRACTOR_SHAPES)),
        x_m=float(radius * np.cos(bearing)),
        y_m=float(radius * np.sin(bearing)),
        size_m=(
            float(rng.uniform(0.5, 4.5)),
            float(rng.uniform(0.5, 2.0)),
            float(rng.uniform(0.5, 2.5)),
        ),
        yaw_deg=float(rng.uniform(0.0, 360.0)),
        colour=tuple(float(c) for c in rng.random(3)),
    )
