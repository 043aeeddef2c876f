"""Render a View with Mitsuba 3 (``scalar_rgb``, CPU) as a black box: the image with a given
paint or tiled texture, and the car's visible-coverage mask from the ``aov`` integrator."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from attacks.camouflage.renderer.cars import car_parts
from attacks.camouflage.renderer.views import Distractor, View
from fedsim.errors import UserInputError

# The car's original paint (sRGB), x_ref's colour: a light silver-grey.
REFERENCE_PAINT = (0.7, 0.7, 0.72)
# One repeat of a texture covers this many metres of the car's surface.
TILE_SIZE_M = 2.0
# Samples per pixel side for the mask: coverage is measured on a 4×4 grid of rays per pixel.
_MASK_SUPERSAMPLE = 4
_CAMERA_TARGET = (0.0, 0.0, 0.75)
_FOV_DEG = 40.0

# None (the reference paint), an sRGB colour, or a pattern (h, w, 3) array / (3, h, w) tensor.
Texture = np.ndarray | torch.Tensor | tuple[float, float, float] | None


@dataclass(frozen=True)
class Render:
    """One view rendered: ``image`` (H, W, 3) sRGB in [0, 1], ``mask`` (H, W) the fraction of
    each pixel covered by the visible car, in [0, 1]."""

    image: np.ndarray
    mask: np.ndarray
    view: View


def render_view(view: View, texture: Texture = None, size: int = 128, spp: int = 16) -> Render:
    """Render ``view`` with ``texture`` on the car's paint: None for the reference paint, an sRGB
    colour (3,), or a pattern (h, w, 3) numpy / (3, h, w) torch in [0, 1], tiled with repeat."""
    return Render(
        image=render_image(view, texture, size=size, spp=spp),
        mask=render_mask(view, size=size),
        view=view,
    )


def render_image(
    view: View,
    texture: Texture = None,
    size: int = 128,
    spp: int = 16,
    tile_m: float = TILE_SIZE_M,
) -> np.ndarray:
    """The (H, W, 3) sRGB image in [0, 1] of ``view`` painted with ``texture`` (see render_view),
    one repeat of a pattern covering ``tile_m`` metres of the car's surface."""
    mi = _mitsuba()
    _check_size(size, spp)
    if tile_m <= 0:
        raise UserInputError(f"tile size must be positive, got {tile_m} m")
    scene = mi.load_dict(_scene_dict(view, _paint(texture), size, spp, tile_m))
    linear = np.asarray(mi.render(scene, seed=view.seed), dtype=np.float32)
    return np.clip(linear_to_srgb(linear), 0.0, 1.0)


def render_mask(view: View, size: int = 128, supersample: int = _MASK_SUPERSAMPLE) -> np.ndarray:
    """The (H, W) fraction of each pixel where the car is the first thing seen (0 or 1 inside),
    measured on a ``supersample``² grid of rays per pixel (1: the pixel centre's ray alone)."""
    _check_size(size, supersample)
    return render_surface(view, size * supersample).coverage(supersample)


@dataclass(frozen=True)
class Surface:
    """Where the paint shows in a view: ``uv`` (H, W, 2) the texture coordinates (in repeats of
    the texture, u across its columns, v down its rows) at each pixel centre, ``paint``
    (H, W) 1 where that centre sees the car's paint, else 0, and ``car`` (H, W) 1 where it sees
    any part of the car first."""

    uv: np.ndarray
    paint: np.ndarray
    car: np.ndarray

    def coverage(self, supersample: int) -> np.ndarray:
        """The car's coverage (H / s, W / s) of pixels ``supersample`` times coarser: the share
        of each one's s × s centres that see it (render_mask's values)."""
        rows, cols = (side // supersample for side in self.car.shape)
        return self.car.reshape(rows, supersample, cols, supersample).mean(axis=(1, 3))


def render_surface(view: View, size: int = 128, tile_m: float = TILE_SIZE_M) -> Surface:
    """The painted surface and the car seen through each pixel centre of ``view`` (one pass of
    Mitsuba's ``aov`` integrator, rays hitting nothing index 0), the paint's texture coordinates
    in repeats of ``tile_m`` metres, as render_image lays a pattern."""
    mi = _mitsuba()
    _check_size(size, 1)
    rows, cols = _car_window(view, size)
    scene_dict = _scene_dict(view, _paint(None), size, 1, tile_m)
    scene_dict["integrator"] = {"type": "aov", "aovs": "uv:uv,index:shape_index"}
    scene_dict["sensor"]["sampler"] = {"type": "stratified", "sample_count": 1, "jitter": False}
    # Only the pixels the car's mesh projects to are traced (a quarter of the frame on average):
    # outside them no centre can see the car, and inside the film crop traces the same rays.
    scene_dict["sensor"]["film"] |= {
        "crop_offset_x": cols.start,
        "crop_offset_y": rows.start,
        "crop_width": cols.stop - cols.start,
        "crop_height": rows.stop - rows.start,
    }
    scene = mi.load_dict(scene_dict)
    # shape_index counts scene.shapes() from 1; 0 is a ray that hit nothing.
    ids = [(i + 1, shape.id()) for i, shape in enumerate(scene.shapes())]
    aovs = np.zeros((size, size, 3), dtype=np.float32)
    with _one_thread():
        aovs[rows, cols] = np.asarray(mi.render(scene, seed=view.seed), dtype=np.float32)
    index = np.rint(aovs[..., 2]).astype(np.int64)
    on_paint = np.isin(index, [i for i, name in ids if name == "car_paint"]).astype(np.float32)
    car = np.isin(index, [i for i, name in ids if name.startswith("car_")]).astype(np.float32)
    return Surface(uv=aovs[..., :2] * on_paint[..., None], paint=on_paint, car=car)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """The sRGB transfer function (IEC 61966-2-1) applied to linear values ≥ 0."""
    linear = np.maximum(linear, 0.0)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def srgb_to_linear(srgb: np.ndarray) -> np.ndarray:
    """The inverse of linear_to_srgb for values in [0, 1]."""
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def _mitsuba():  # noqa: ANN202 - the module, loaded once with its CPU variant
    import mitsuba as mi

    if mi.variant() != "scalar_rgb":
        mi.set_variant("scalar_rgb")
    return mi


@contextmanager
def _one_thread() -> Iterator[None]:
    """Dr.Jit's render threads cut to one meanwhile. Mitsuba's ``aov`` integrator (scalar_rgb)
    runs ~2.5× slower on two threads than on one on these 2 cores (a 512² shape-index AOV:
    0.47 s against 0.18 s); the path tracer gains from both and keeps them. Renders are the same
    either way (each pixel's samples are seeded by the pixel)."""
    import drjit

    before = drjit.thread_count()
    drjit.set_thread_count(1)
    try:
        yield
    finally:
        drjit.set_thread_count(before)


def _check_size(size: int, spp: int) -> None:
    if size < 8:
        raise UserInputError(f"size must be at least 8 pixels, got {size}")
    if spp < 1:
        raise UserInputError(f"spp must be positive, got {spp}")


def _paint(texture: Texture) -> dict:
    """The paint's diffuse reflectance as a repeating bitmap of linear values."""
    if texture is None:
        texture = REFERENCE_PAINT
    if isinstance(texture, torch.Tensor):
        array = texture.detach().cpu().numpy()
        array = np.moveaxis(array, 0, -1) if array.ndim == 3 else array
    else:
        array = np.asarray(texture)
    array = array.astype(np.float32)
    if array.shape == (3,):
        array = array.reshape(1, 1, 3)
    if array.ndim != 3 or array.shape[-1] != 3 or min(array.shape[:2]) < 1:
        raise UserInputError(
            f"texture must be an RGB colour (3,), an (h, w, 3) array or a (3, h, w) tensor, "
            f"got shape {tuple(array.shape)}"
        )
    _check_range(array)
    mi = _mitsuba()
    # A flat colour is a 1×1 bitmap too, so that it renders exactly as a uniform pattern does.
    return {
        "type": "bitmap",
        "bitmap": mi.Bitmap(np.ascontiguousarray(srgb_to_linear(array), dtype=np.float32)),
        "wrap_mode": "repeat",
        "filter_type": "bilinear",
        "raw": True,
    }


def _check_range(array: np.ndarray) -> None:
    if not np.all(np.isfinite(array)) or array.min() < 0.0 or array.max() > 1.0:
        raise UserInputError("texture values must be sRGB in [0, 1]")


def _scene_dict(view: View, paint: dict, size: int, spp: int, tile_m: float = TILE_SIZE_M) -> dict:
    """The Mitsuba scene description of ``view`` with ``paint`` as the car's diffuse colour, one
    repeat of it per ``tile_m`` metres of surface."""
    mi = _mitsuba()
    transform = mi.ScalarTransform4f
    target, origin = np.array(_CAMERA_TARGET), _camera_origin(view)
    azimuth, elevation = np.radians(view.sun_azimuth_deg), np.radians(view.sun_elevation_deg)
    to_sun = np.array(
        [
            np.cos(elevation) * np.cos(azimuth),
            np.cos(elevation) * np.sin(azimuth),
            np.sin(elevation),
        ]
    )
    along = np.array([np.cos(azimuth), np.sin(azimuth)])
    across = np.array([-along[1], along[0]])
    occluder_xy = view.occluder_along_m * along + view.occluder_across_m * across
    width, depth, height = view.occluder_size_m
    ground = float(srgb_to_linear(np.float32(view.ground_albedo)))
    scene: dict = {
        "type": "scene",
        "integrator": {"type": "path", "max_depth": 4},
        "sensor": {
            "type": "perspective",
            "fov": _FOV_DEG,
            "to_world": transform().look_at(
                origin=origin.tolist(), target=target.tolist(), up=[0, 0, 1]
            ),
            "film": {
                "type": "hdrfilm",
                "width": size,
                "height": size,
                "pixel_format": "rgb",
                # A box filter keeps each pixel to its own footprint, the mask's coverage.
                "rfilter": {"type": "box"},
            },
            "sampler": {"type": "independent", "sample_count": spp},
        },
        "sun": {"type": "directional", "direction": (-to_sun).tolist(), "irradiance": 2.6},
        "sky": {"type": "constant", "radiance": {"type": "rgb", "value": [0.22, 0.27, 0.36]}},
        "ground": {
            "type": "rectangle",
            "to_world": transform().scale([60.0, 60.0, 1.0]),
            "bsdf": {"type": "diffuse", "reflectance": {"type": "rgb", "value": [ground] * 3}},
        },
        "occluder": {
            "type": "cube",
            "to_world": transform()
            .translate([*occluder_xy.tolist(), height / 2])
            .rotate([0, 0, 1], float(view.sun_azimuth_deg))
            .scale([depth / 2, width / 2, height / 2]),
            "bsdf": {"type": "diffuse", "reflectance": {"type": "rgb", "value": [0.35] * 3}},
        },
    }
    for index, distractor in enumerate(view.distractors):
        scene[f"distractor_{index}"] = _distractor_shape(mi, distractor)
    bsdfs = {
        "paint": {
            "type": "roughplastic",
            "distribution": "ggx",
            "alpha": 0.08,
            "int_ior": 1.5,
            "diffuse_reflectance": paint,
        },
        "glass": {"type": "plastic", "int_ior": 1.5, "diffuse_reflectance": 0.01},
        "tyre": {"type": "diffuse", "reflectance": 0.03},
    }
    for part in car_parts(view.car):
        bsdf = mi.load_dict(bsdfs[part.material])
        scene[part.name] = _mesh(mi, part.name, part.vertices, part.uvs / tile_m, bsdf)
    return scene


def _camera_origin(view: View) -> np.ndarray:
    """Where the camera of ``view`` stands, looking at _CAMERA_TARGET (metres)."""
    pitch, yaw = np.radians(view.pitch_deg), np.radians(view.yaw_deg)
    return np.array(_CAMERA_TARGET) + view.distance_m * np.array(
        [np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw), np.sin(pitch)]
    )


def _car_window(view: View, size: int) -> tuple[slice, slice]:
    """(rows, columns) of the ``size``² pixels whose centres may see the car in ``view``: the box
    around its mesh's vertices projected through the camera (as Mitsuba's ``look_at`` and
    perspective sensor lay them: x to the left, y up, z forward, ``fov`` across), a pixel wider
    each way; the whole frame if any vertex is not in front of the camera."""
    origin = _camera_origin(view)
    forward = np.array(_CAMERA_TARGET) - origin
    forward /= np.linalg.norm(forward)
    left = np.cross([0.0, 0.0, 1.0], forward)
    left /= np.linalg.norm(left)
    up = np.cross(forward, left)
    offsets = np.concatenate([part.vertices for part in car_parts(view.car)]) - origin
    depth = offsets @ forward
    if depth.min() <= 1e-3:
        return slice(0, size), slice(0, size)
    half = np.tan(np.radians(_FOV_DEG / 2))
    # Image coordinates in pixels (column right, row down), pixel centres at +0.5.
    columns = size * (0.5 - 0.5 * (offsets @ left) / (depth * half))
    rows = size * (0.5 - 0.5 * (offsets @ up) / (depth * half))

    def span(values: np.ndarray) -> slice:
        low = int(np.clip(np.floor(values.min() - 0.5) - 1, 0, size - 1))
        high = int(np.clip(np.ceil(values.max() - 0.5) + 2, low + 1, size))
        return slice(low, high)

    return span(rows), span(columns)


def _distractor_shape(mi, distractor: Distractor) -> dict:  # noqa: ANN001
    """The Mitsuba shape of a distractor: a unit primitive scaled to its size, on the ground.

    Mitsuba's sphere takes only a uniform scale (its radius: half the height) and its cylinder,
    from z = 0 to 1, a round one (its radius: half the width); the cube spans -1..1 on each axis.
    """
    length, width, height = distractor.size_m
    scale, lift = {
        "cube": ([length / 2, width / 2, height / 2], height / 2),
        "sphere": ([height / 2] * 3, height / 2),
        "cylinder": ([width / 2, width / 2, height], 0.0),
    }[distractor.shape]
    colour = [float(c) for c in srgb_to_linear(np.asarray(distractor.colour, dtype=np.float32))]
    return {
        "type": distractor.shape,
        "to_world": mi.ScalarTransform4f()
        .translate([distractor.x_m, distractor.y_m, lift])
        .rotate([0, 0, 1], distractor.yaw_deg)
        .scale(scale),
        "bsdf": {"type": "diffuse", "reflectance": {"type": "rgb", "value": colour}},
    }


def periods_per_width(view: View, tile_m: float = TILE_SIZE_M) -> float:
    """How many repeats of a texture, one per ``tile_m`` metres, span the image's width at the
    car's distance in ``view``."""
    return 2 * view.distance_m * float(np.tan(np.radians(_FOV_DEG / 2))) / tile_m


def _mesh(mi, name: str, vertices: np.ndarray, uvs: np.ndarray, bsdf):  # noqa: ANN001, ANN202
    """A Mitsuba triangle mesh of a triangle soup with per-vertex texture coordinates."""
    props = mi.Properties()
    props["bsdf"] = bsdf
    mesh = mi.Mesh(
        name,
        vertex_count=len(vertices),
        face_count=len(vertices) // 3,
        props=props,
        has_vertex_normals=False,
        has_vertex_texcoords=True,
    )
    params = mi.traverse(mesh)
    params["vertex_positions"] = vertices.ravel().tolist()
    params["faces"] = np.arange(len(vertices), dtype=np.uint32).tolist()
    params["vertex_texcoords"] = uvs.ravel().tolist()
    params.update()
    return mesh
