"""The face mesh rasterized in its photo, in a window around the face, and windows pasted back."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hifialbedo.mesh.geometry import FaceGeometry
from hifialbedo.mesh.topology import load_face_topology
from hifialbedo.render.raster import Fragments, rasterize


@dataclass(frozen=True)
class ImageRaster:
    """The face mesh rasterized in a photo, in a window around the face (saves memory)."""

    fragments: Fragments  # over the window
    x0: int  # window's offset in the photo, pixels
    y0: int
    height: int  # the photo's size
    width: int


def rasterize_in_image(geometry: FaceGeometry, height: int, width: int) -> ImageRaster:
    """Z-buffered rasterization of the face mesh in its photo (back faces culled)."""
    xy = geometry.pixel_xy
    x0 = int(np.clip(np.floor(xy[:, 0].min()) - 1, 0, width))
    y0 = int(np.clip(np.floor(xy[:, 1].min()) - 1, 0, height))
    x1 = int(np.clip(np.ceil(xy[:, 0].max()) + 1, 0, width))
    y1 = int(np.clip(np.ceil(xy[:, 1].max()) + 1, 0, height))
    frags = rasterize(
        xy - np.array([x0, y0]),
        load_face_topology().faces,
        max(y1 - y0, 1),
        max(x1 - x0, 1),
        geometry.depth,
        cull_backfaces=True,
    )
    return ImageRaster(frags, x0, y0, height, width)


def paste_window(raster: ImageRaster, window: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """A window-sized map ``(h, w, C)`` -> full photo size ``(H, W, C)``."""
    out = np.full((raster.height, raster.width) + window.shape[2:], fill, dtype=window.dtype)
    h, w = window.shape[:2]
    out[raster.y0 : raster.y0 + h, raster.x0 : raster.x0 + w] = window
    return out
