"""Procedural car-like meshes (body, cabin with glass, wheels) as triangle soups with
box-projected UVs, in metres: x forward, y left, z up, the car centred over the origin."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from fedsim.errors import UnknownNameError

# Materials a part may have; the renderer maps each to a BSDF ("paint" takes the texture).
MATERIALS = ("paint", "glass", "tyre")


@dataclass(frozen=True)
class MeshPart:
    """One material's triangles: ``vertices`` (T·3, 3) in metres, ``uvs`` (T·3, 2) in metres of
    the box projection (divide by the tile size for texture coordinates)."""

    name: str
    material: str
    vertices: np.ndarray
    uvs: np.ndarray


@dataclass(frozen=True)
class CarShape:
    """The side profiles and wheels a car is extruded from (metres)."""

    body: tuple[tuple[float, float], ...]  # convex (x, z) profile, counter-clockwise
    body_half_width: float
    cabin: tuple[tuple[float, float], ...]  # convex (x, z): bottom-front, bottom-rear, top...
    cabin_half_width: float
    wheel_x: tuple[float, ...]
    wheel_radius: float
    wheel_width: float


CARS: dict[str, CarShape] = {
    # The training car: a sedan with a sloped bonnet and boot.
    "sedan": CarShape(
        body=(
            (-2.3, 0.3),
            (2.3, 0.3),
            (2.36, 0.55),
            (2.25, 0.8),
            (1.0, 0.95),
            (-1.5, 0.98),
            (-2.25, 0.92),
            (-2.36, 0.6),
        ),
        body_half_width=0.9,
        cabin=((1.05, 0.95), (-1.55, 0.97), (-0.95, 1.45), (0.25, 1.47)),
        cabin_half_width=0.78,
        wheel_x=(1.45, -1.45),
        wheel_radius=0.34,
        wheel_width=0.24,
    ),
    # Held out for evaluation: a taller, boxier van.
    "van": CarShape(
        body=((-2.4, 0.35), (2.4, 0.35), (2.46, 0.7), (2.2, 1.05), (1.55, 1.12), (-2.4, 1.12)),
        body_half_width=0.95,
        cabin=((1.55, 1.12), (-2.4, 1.12), (-2.4, 1.98), (0.75, 1.98)),
        cabin_half_width=0.9,
        wheel_x=(1.6, -1.55),
        wheel_radius=0.38,
        wheel_width=0.26,
    ),
}


def car_names() -> list[str]:
    """Names of the procedural cars: ``sedan`` (training) and ``van`` (held out)."""
    return sorted(CARS)


@cache
def car_parts(name: str) -> tuple[MeshPart, ...]:
    """The named car's parts, one per material, with outward-facing triangles (built once per
    car; every render asks for them)."""
    if name not in CARS:
        raise UnknownNameError("car", name, CARS)
    shape = CARS[name]
    body = _extrude(shape.body, shape.body_half_width)
    cabin_sides, cabin_walls = _extrude_split(shape.cabin, shape.cabin_half_width)
    # The cabin's roof (its top wall) is painted; its sloped walls and sides are glass.
    walls = list(zip(shape.cabin, shape.cabin[1:] + shape.cabin[:1], strict=True))
    roof = [tri for tri, edge in zip(cabin_walls, _pairs(walls), strict=True) if _is_roof(edge)]
    glass = cabin_sides + [
        tri
        for tri, edge in zip(cabin_walls, _pairs(walls), strict=True)
        if not _is_roof(edge) and not _is_floor(edge)
    ]
    tyres: list[np.ndarray] = []
    for x in shape.wheel_x:
        for side in (1.0, -1.0):
            y = side * (shape.body_half_width - shape.wheel_width / 2 + 0.04)
            tyres += _cylinder((x, y, shape.wheel_radius), shape.wheel_radius, shape.wheel_width)
    return (
        _part("car_paint", "paint", body + roof),
        _part("car_glass", "glass", glass),
        _part("car_tyres", "tyre", tyres),
    )


def _pairs(walls: list) -> list:
    """Each wall's edge, twice: an extruded wall is two triangles."""
    return [edge for edge in walls for _ in range(2)]


def _is_roof(edge: tuple[tuple[float, float], tuple[float, float]]) -> bool:
    (x0, z0), (x1, z1) = edge
    return abs(z1 - z0) < 0.1 * abs(x1 - x0) and x1 > x0


def _is_floor(edge: tuple[tuple[float, float], tuple[float, float]]) -> bool:
    (x0, z0), (x1, z1) = edge
    return abs(z1 - z0) < 0.1 * abs(x1 - x0) and x1 < x0


def _extrude(profile: tuple[tuple[float, float], ...], half_width: float) -> list[np.ndarray]:
    """All triangles of a convex (x, z) profile extruded over y in [-half_width, half_width]."""
    sides, walls = _extrude_split(profile, half_width)
    return sides + walls


def _extrude_split(
    profile: tuple[tuple[float, float], ...], half_width: float
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(side caps, walls) of an extruded convex profile; walls come two per profile edge."""
    points = np.asarray(profile, dtype=np.float64)
    centre = points.mean(axis=0)
    sides = []
    for y in (half_width, -half_width):
        for a, b in zip(points, np.roll(points, -1, axis=0), strict=True):
            sides.append(np.array([[*centre[:1], y, centre[1]], [a[0], y, a[1]], [b[0], y, b[1]]]))
    walls = []
    for a, b in zip(points, np.roll(points, -1, axis=0), strict=True):
        quad = [
            [a[0], half_width, a[1]],
            [b[0], half_width, b[1]],
            [b[0], -half_width, b[1]],
            [a[0], -half_width, a[1]],
        ]
        walls += [np.array([quad[0], quad[1], quad[2]]), np.array([quad[0], quad[2], quad[3]])]
    centroid = np.array([centre[0], 0.0, centre[1]])
    return [_outward(t, centroid) for t in sides], [_outward(t, centroid) for t in walls]


def _cylinder(
    centre: tuple[float, float, float], radius: float, width: float, segments: int = 18
) -> list[np.ndarray]:
    """Triangles of a closed cylinder whose axis is y."""
    cx, cy, cz = centre
    angles = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    ring = np.stack([cx + radius * np.cos(angles), cz + radius * np.sin(angles)], axis=1)
    y0, y1 = cy - width / 2, cy + width / 2
    triangles = []
    for (xa, za), (xb, zb) in zip(ring, np.roll(ring, -1, axis=0), strict=True):
        a0, b0, a1, b1 = [xa, y0, za], [xb, y0, zb], [xa, y1, za], [xb, y1, zb]
        triangles += [np.array([a0, b0, b1]), np.array([a0, b1, a1])]
        triangles += [np.array([[cx, y0, cz], b0, a0]), np.array([[cx, y1, cz], a1, b1])]
    return [_outward(t, np.array(centre)) for t in triangles]


def _outward(triangle: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """The triangle wound so that its normal points away from a point inside its solid."""
    normal = np.cross(triangle[1] - triangle[0], triangle[2] - triangle[0])
    return triangle if normal @ (triangle.mean(axis=0) - inside) >= 0 else triangle[[0, 2, 1]]


def _part(name: str, material: str, triangles: list[np.ndarray]) -> MeshPart:
    vertices = np.concatenate(triangles).astype(np.float32)
    uvs = _box_uvs(vertices)
    for array in (vertices, uvs):  # shared by every caller of the cached car_parts
        array.setflags(write=False)
    return MeshPart(name, material, vertices, uvs)


def _box_uvs(vertices: np.ndarray) -> np.ndarray:
    """Box projection: each triangle takes the two coordinates across its dominant normal axis."""
    triangles = vertices.reshape(-1, 3, 3)
    normals = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
    axis = np.abs(normals).argmax(axis=1)
    keep = np.array([[1, 2], [0, 2], [0, 1]])[axis]  # (T, 2) coordinate indices
    uvs = np.take_along_axis(triangles, np.repeat(keep[:, None, :], 3, axis=1), axis=2)
    return uvs.reshape(-1, 2).astype(np.float32)
