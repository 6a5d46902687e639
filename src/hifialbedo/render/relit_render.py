"""Relighting renders: the reconstructed head-frame mesh posed in a camera, its UV albedo lit
by an SH light (Lambert, ``ops.sh``) plus an optional Blinn-Phong lobe (``ops.brdf``).

Built from the pipeline's own parts: the pose gives a ``FaceGeometry``,
``render.image_raster.rasterize_in_image`` rasterizes it and ``render.view_shading.shade_view`` does
albedo x shading exactly as the pipeline's ``views/*/render_view.png``.

Conventions: vertices ``(468, 3)`` in the head frame (x: subject's left = image right of a
frontal view, y up, z out of the face); cameras are orthographic with x right, y up, z
toward the camera, pixel units; lights are in the rendered view's camera frame; UV maps
``(S, S, C)`` (v down), colours linear RGB; images ``(H, W, 3)`` linear RGB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hifialbedo.mesh.geometry import FaceGeometry, fit_face_geometry
from hifialbedo.ops.brdf import blinn_phong
from hifialbedo.render.image_raster import paste_window, rasterize_in_image
from hifialbedo.render.view_shading import sample_uv_map, shade_view, view_maps

FIT_FRACTION = 0.9  # a turntable view's mesh spans this fraction of the image (height or turning width)


def posed_geometry(
    vertices: np.ndarray, rotation: np.ndarray, centre: np.ndarray, scale: float, image_size: tuple[int, int]
) -> FaceGeometry:
    """The face mesh ``(468, 3)`` (head frame) placed in a camera: p_cam = scale * p @ rotation + centre.

    ``image_size`` is (height, width) in pixels.
    """
    cam = scale * np.asarray(vertices, dtype=np.float64) @ np.asarray(rotation, dtype=np.float64) + np.asarray(
        centre, dtype=np.float64
    )
    # fit_face_geometry takes landmarks (x right, y down, z = MediaPipe depth) and flips y, z back.
    return fit_face_geometry(np.stack([cam[:, 0], -cam[:, 1], -cam[:, 2]], axis=1), image_size)


def yaw_rotation(yaw: float) -> np.ndarray:
    """``(3, 3)`` rotation about the vertical (y) axis by ``yaw`` radians, for column vectors;
    positive turns the face (+z) toward +x (image right), as ``render.views``."""
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def turntable_geometry(vertices: np.ndarray, yaw: float, size: int) -> FaceGeometry:
    """The head-frame mesh turned by ``yaw`` radians about its vertical axis through the
    centroid, seen frontally (head frame = camera frame at yaw 0) in a ``size x size`` image.

    The scale does not depend on ``yaw``: the mesh's turning radius and half-height fit in
    ``FIT_FRACTION`` of the image, so the frames of a turntable line up.
    """
    v = np.asarray(vertices, dtype=np.float64)
    centre = v.mean(axis=0)
    p = v - centre
    radius = max(float(np.sqrt(p[:, 0] ** 2 + p[:, 2] ** 2).max()), float(np.abs(p[:, 1]).max()), 1e-9)
    scale = FIT_FRACTION * size / 2.0 / radius
    rotation = yaw_rotation(yaw).T  # p @ R(yaw).T rotates row vectors
    return posed_geometry(p, rotation, np.array([size / 2.0, -size / 2.0, 0.0]), scale, (size, size))


@dataclass(frozen=True)
class Specular:
    """A Blinn-Phong lobe: the distant light's unit ``direction (3,)`` and linear-RGB
    ``colour (3,)`` (view camera frame), the surface's ``intensity`` and ``shininess``
    (scalars, or UV maps ``(S, S)`` sampled per pixel)."""

    direction: np.ndarray
    colour: np.ndarray
    intensity: float | np.ndarray
    shininess: float | np.ndarray


@dataclass(frozen=True)
class RelitView:
    """A relit render at full image size: ``diffuse`` albedo x shading and ``specular``
    ``(H, W, 3)`` linear RGB (0 off the face), ``mask (H, W)`` bool."""

    diffuse: np.ndarray
    specular: np.ndarray
    mask: np.ndarray

    @property
    def image(self) -> np.ndarray:
        return self.diffuse + self.specular


def render_relit(geometry: FaceGeometry, albedo_map: np.ndarray, sh: np.ndarray, specular: Specular | None = None) -> RelitView:
    """Render the UV albedo ``(S, S, 3)`` on the posed mesh under SH light ``(9, 3)`` plus an
    optional Blinn-Phong lobe, in the geometry's image (back faces culled, z-buffered)."""
    h, w = geometry.image_size
    raster = rasterize_in_image(geometry, h, w)
    view = shade_view(geometry, raster, albedo_map, np.asarray(sh))
    spec = np.zeros_like(view.albedo)
    if specular is not None:
        maps = view_maps(geometry, raster)

        def per_pixel(value: float | np.ndarray) -> float | np.ndarray:
            if np.ndim(value) == 0:
                return float(value)
            return sample_uv_map(np.asarray(value, dtype=np.float32), maps.uv)

        lobe = blinn_phong(
            maps.normals, specular.direction, shininess=per_pixel(specular.shininess), intensity=per_pixel(specular.intensity)
        )
        spec = (lobe[..., None] * np.asarray(specular.colour, dtype=np.float32) * view.mask[..., None]).astype(np.float32)
    return RelitView(paste_window(raster, view.image), paste_window(raster, spec), paste_window(raster, view.mask))
