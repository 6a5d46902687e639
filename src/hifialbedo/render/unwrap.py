"""Photo -> UV unwrap with per-texel visibility and confidence.

UV maps are ``(S, S, C)`` float32 arrays on the layout of ``mesh.topology`` (v down,
``render.uv_layout``); the colour ones hold linear RGB. Photos are ``(H, W, 3)`` float32
linear RGB. The way back (UV -> photo) is ``render.view_shading``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from hifialbedo.mesh.geometry import FaceGeometry
from hifialbedo.mesh.topology import load_face_topology
from hifialbedo.ops.vectors import normalize_rows
from hifialbedo.render.image_raster import ImageRaster
from hifialbedo.render.uv_layout import UVLayout


@dataclass(frozen=True)
class Unwrap:
    """One photo unwrapped onto the UV layout; per-texel arrays ``(N, ...)`` over ``layout``."""

    colour: np.ndarray  # (N, 3) linear RGB sampled from the photo (0 where not visible)
    normals: np.ndarray  # (N, 3) unit normals, camera frame
    visible: np.ndarray  # (N,) bool
    confidence: np.ndarray  # (N,) float32 in [0, 1]
    pixels_per_texel: float  # median linear sampling density over visible texels


def unwrap(image: np.ndarray, geometry: FaceGeometry, layout: UVLayout, raster: ImageRaster) -> Unwrap:
    """Sample a linear-RGB photo ``(H, W, 3)`` onto the UV layout.

    A texel is visible when it faces the camera and is not hidden by a nearer part of the
    mesh (its depth is within a tolerance of the z-buffer at its pixel). Confidence =
    visibility x view term (cosine between normal and view direction, ramped from 0.15 to
    0.6) x resolution term (local linear sampling density relative to the photo's median,
    capped at 1) x border term (the outline band, where hair and background bleed in).
    """
    topo = load_face_topology()
    xy = layout.interpolate(geometry.pixel_xy)  # (N, 2) continuous pixel coordinates
    depth = layout.interpolate(geometry.depth[:, None])[:, 0]
    normals = layout.interpolate(geometry.camera_normals)
    normals = normalize_rows(normals)

    frags = raster.fragments
    wh, ww = frags.face_index.shape
    col = np.floor(xy[:, 0]).astype(np.int64) - raster.x0
    row = np.floor(xy[:, 1]).astype(np.int64) - raster.y0
    inside = (col >= 0) & (col < ww) & (row >= 0) & (row < wh)
    # The farthest depth in each 3x3 neighbourhood: a texel on a steep slope reads the
    # z-buffer a pixel away from where it lands, so its own depth can exceed the centre
    # pixel's by a slope x pixel; a real occluder is nearer than the whole neighbourhood.
    zfar = cv2.dilate(np.where(frags.mask, frags.depth, np.float32(np.inf)), np.ones((3, 3), np.uint8))
    zbuf = np.full(len(xy), -np.inf, dtype=np.float32)
    zbuf[inside] = zfar[row[inside], col[inside]]
    tolerance = 0.02 * geometry.frame.scale
    visible = inside & (normals[:, 2] > 0.0) & (depth <= zbuf + tolerance)

    # cv2.remap wants pixel centres at integer coordinates; remap in tiles of rows to
    # stay within its 32767-column limit.
    map_xy = (xy - 0.5).astype(np.float32)
    n = len(map_xy)
    width = 1024
    pad = (-n) % width
    grid = np.concatenate([map_xy, np.full((pad, 2), -10.0, np.float32)]).reshape(-1, width, 2)
    rows = 16384  # and within its 32767-row limit: at most this many rows of the grid per call
    sampled = np.concatenate(
        [
            cv2.remap(image, tile[..., 0], tile[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).reshape(-1, image.shape[2])
            for tile in (grid[i : i + rows] for i in range(0, len(grid), rows))
        ]
    )
    colour = sampled.reshape(-1, 3)[:n].astype(np.float32, copy=False)
    colour[~visible] = 0.0

    # Sampling density: photo pixels per texel along a line, per triangle (sqrt of the area ratio).
    uv_px = topo.uv * layout.size
    img_px = geometry.pixel_xy
    f = topo.faces

    def areas(p: np.ndarray) -> np.ndarray:
        a, b, c = p[f[:, 0]], p[f[:, 1]], p[f[:, 2]]
        return np.abs((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))

    density_per_face = np.sqrt(areas(img_px) / np.maximum(areas(uv_px), 1e-12))
    density = density_per_face[layout.face_of_texel]
    median_density = float(np.median(density[visible])) if visible.any() else 0.0
    resolution = np.clip(density / max(median_density, 1e-8), 0.0, 1.0)
    view = np.clip((normals[:, 2] - 0.15) / 0.45, 0.0, 1.0)
    confidence = (visible * view * resolution * layout.border_weight).astype(np.float32)
    return Unwrap(colour, normals.astype(np.float32, copy=False), visible, confidence, median_density)
