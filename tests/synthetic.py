"""Test recipe: a face of known UV albedo rendered under known SH light on a fitted mesh."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hifialbedo.io.images import write_png
from hifialbedo.mesh.geometry import fit_face_geometry
from hifialbedo.mesh.topology import uv_regions
from hifialbedo.ops.colour import lab_to_linear, linear_to_srgb_uint8, skin_locus_lab, srgb_uint8_to_linear
from hifialbedo.render.image_raster import paste_window, rasterize_in_image
from hifialbedo.render.view_shading import shade_view

# Linear RGB of a light-to-medium skin tone on the skin locus (L* 59, ITA 31: type III),
# where the light-colour prior (skin locus + Planckian locus) has no off-locus error.
SKIN = lab_to_linear(skin_locus_lab(0.3))


def known_albedo(size: int, seed: int = 0) -> np.ndarray:
    """A UV albedo ``(S, S, 3)`` (linear RGB): skin with smooth blotches and fine texture, redder lips."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    blotch = 0.08 * np.sin(9 * xx + 2) * np.cos(7 * yy) + 0.04 * rng.normal(size=(size, size))
    albedo = SKIN[None, None] * (1 + blotch)[..., None]
    lips = uv_regions(size)["lips"]
    albedo[lips] = [0.45, 0.15, 0.13]
    return np.clip(albedo, 0, 1).astype(np.float32)


def render_known_face(
    photo_rgb8: np.ndarray,
    landmarks: np.ndarray,
    albedo_map: np.ndarray,
    sh: np.ndarray,
    *,
    highlight: tuple[float, float, float] | None = None,
    noise: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """The photo with its face replaced by albedo x SH shading (+ an optional specular
    highlight lobe toward direction ``highlight``, + Gaussian noise). Returns uint8 sRGB."""
    h, w = photo_rgb8.shape[:2]
    geometry = fit_face_geometry(landmarks, (h, w))
    raster = rasterize_in_image(geometry, h, w)
    view = shade_view(geometry, raster, albedo_map, sh)
    image = view.image
    if highlight is not None:
        from hifialbedo.render.view_shading import view_maps

        n = view_maps(geometry, raster).normals
        half = np.asarray(highlight, dtype=np.float64) + [0, 0, 1]
        half /= np.linalg.norm(half)
        image = image + 0.5 * (np.clip(n @ half, 0, 1) ** 60)[..., None] * view.mask[..., None]
    full = paste_window(raster, image)
    mask = paste_window(raster, view.mask.astype(np.float32))[..., None]
    linear = srgb_uint8_to_linear(photo_rgb8) * (1 - mask) + full * mask
    if noise:
        linear = linear + np.random.default_rng(seed).normal(0, noise, linear.shape)
    return linear_to_srgb_uint8(linear.astype(np.float32))


def write_case(tmp: Path, name: str, image: np.ndarray, landmarks: np.ndarray) -> tuple[Path, Path]:
    photo, lm = tmp / f"{name}.png", tmp / f"{name}.npy"
    write_png(photo, image)
    np.save(lm, landmarks)
    return photo, lm
