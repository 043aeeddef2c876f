"""Seeded scene parameters of one rendered view: camera, sun, occluder, ground, noise seed."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from attacks.camouflage.renderer.cars import CARS
from fedsim.errors import UnknownNameError, UserInputError

# DTA's camera distances (m-equivalent) and pitch range; yaw covers the full circle.
DISTANCES_M = (5.0, 10.0, 15.0)
PITCH_RANGE_DEG = (0.0, 30.0)


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

    def __post_init__(self) -> None:
        if self.car not in CARS:
            raise UnknownNameError("car", self.car, CARS)
        object.__setattr__(self, "occluder_size_m", tuple(self.occluder_size_m))

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
