"""The learned model as the albedo step: photos -> their UV textures -> HiFiAlbedo's albedo.

Mesh, lighting and every other output come from the training-free steps (``pipeline.fuse``);
only the albedo map is the model's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np

from hifialbedo.inverse.texture import photo_texture
from hifialbedo.io.contract import PhotoResult
from hifialbedo.ops.colour import linear_to_srgb, srgb_to_linear, srgb_uint8_to_linear

if TYPE_CHECKING:
    from hifialbedo.models.albedo_model import HiFiAlbedo


def learned_albedo(results: Sequence[PhotoResult], model: HiFiAlbedo, uv_size: int) -> np.ndarray:
    """The HiFiAlbedo model's albedo ``(S, S, 3)`` linear RGB from all photos at once
    (:func:`learned_albedo_of_photos` on the photos' pixels and landmarks)."""
    return learned_albedo_of_photos([r.photo.pixels for r in results], [r.landmarks for r in results], model, uv_size)


def learned_albedo_of_photos(photos: Sequence[np.ndarray], landmarks: Sequence[np.ndarray], model: HiFiAlbedo, uv_size: int) -> np.ndarray:
    """The HiFiAlbedo model's albedo ``(S, S, 3)`` linear RGB from 8-bit sRGB photos and their
    ``(478, 3)`` pixel landmarks: each photo's completed UV texture (``inverse.texture.photo_texture``)
    at the model's size, fused by its cross-attention, decoded, and resampled to ``uv_size``."""
    import torch  # here, not at import: the training-free path needs no torch

    size = model.uv_size
    textures = []
    for pixels, marks in zip(photos, landmarks, strict=True):
        pt = photo_texture(srgb_uint8_to_linear(pixels), marks, size)
        textures.append(np.clip(linear_to_srgb(pt.texture), 0.0, 1.0).transpose(2, 0, 1))
    with torch.no_grad():
        out = model(torch.from_numpy(np.stack(textures)[None].astype(np.float32)))
    albedo_srgb = out.albedo[0].permute(1, 2, 0).numpy().astype(np.float32)
    if size != uv_size:
        albedo_srgb = cv2.resize(albedo_srgb, (uv_size, uv_size), interpolation=cv2.INTER_CUBIC)
    return srgb_to_linear(np.clip(albedo_srgb, 0.0, 1.0)).astype(np.float32)


__all__ = ["learned_albedo", "learned_albedo_of_photos"]
