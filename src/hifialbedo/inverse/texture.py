"""A photo's face texture on the UV layout: the learned model's input.

The photo is unwrapped with its own fitted mesh (``render.unwrap``); texels the photo does
not show are filled from their mirror texel and then inpainted (``inverse.completion``), so
the texture is defined over the whole face. Lighting stays in it: the learned model
removes it. Colour: linear RGB in and out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hifialbedo.inverse.completion import complete_uv
from hifialbedo.mesh.geometry import fit_face_geometry
from hifialbedo.render.image_raster import rasterize_in_image
from hifialbedo.render.unwrap import unwrap
from hifialbedo.render.uv_layout import uv_layout


@dataclass(frozen=True)
class PhotoTexture:
    """``texture (S, S, 3)`` linear RGB, completed; ``confidence (S, S)`` in [0, 1]: how
    directly each texel was seen (0 = filled in)."""

    texture: np.ndarray
    confidence: np.ndarray


def photo_texture(photo_linear: np.ndarray, landmarks: np.ndarray, uv_size: int) -> PhotoTexture:
    """Unwrap a linear-RGB photo ``(H, W, 3)`` with its ``(478, 3)`` pixel landmarks onto
    a ``uv_size`` UV map and complete it."""
    h, w = photo_linear.shape[:2]
    layout = uv_layout(uv_size)
    geometry = fit_face_geometry(landmarks, (h, w))
    unwrapped = unwrap(np.ascontiguousarray(photo_linear, dtype=np.float32), geometry, layout, rasterize_in_image(geometry, h, w))
    colour = layout.scatter(unwrapped.colour)
    confidence = layout.scatter(unwrapped.confidence)
    texture, combined = complete_uv(colour, confidence, layout.mask)
    return PhotoTexture(np.clip(texture, 0.0, None), combined)
