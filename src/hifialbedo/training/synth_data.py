"""The synthetic engine as training data for stages 2 and 3: each photo also unwrapped
onto the UV layout (``inverse.texture.photo_texture``), the learned model's input.

Items are those of ``synth.torch_data.SyntheticFaces`` plus, per render (with a leading
axis of n in grouped items):

- ``photo_uv (3, S, S)``: the photo's completed UV texture, sRGB-encoded in [0, 1];
- ``photo_uv_confidence (1, S, S)`` in [0, 1]: 0 where the texel was filled in;

and once per item ``albedo_uv_srgb (3, S, S)``: the true albedo, sRGB-encoded in [0, 1].
Unwraps are cached in memory (about 12 ms each at S = 64).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from hifialbedo.inverse.texture import photo_texture
from hifialbedo.ops.colour import linear_to_srgb
from hifialbedo.synth.torch_data import SyntheticFaces


class SynthUVPhotos(Dataset):
    """``SyntheticFaces(root, split=, uv_size=, group_size=)`` with the photos' UV textures."""

    def __init__(self, root: str | Path, *, split: str | None = None, uv_size: int = 64, group_size: int | None = None) -> None:
        self.faces = SyntheticFaces(root, split=split, uv_size=uv_size, group_size=group_size)
        self.uv_size = uv_size
        self._cache: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self.faces)

    def _texture(self, identity: int, render: int, photo_linear: torch.Tensor, landmarks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key = (identity, render)
        if key not in self._cache:
            pt = photo_texture(photo_linear.permute(1, 2, 0).numpy(), landmarks.numpy().astype(np.float64), self.uv_size)
            texture = torch.from_numpy(np.clip(linear_to_srgb(pt.texture), 0.0, 1.0).transpose(2, 0, 1).astype(np.float32))
            self._cache[key] = (texture, torch.from_numpy(pt.confidence[None].astype(np.float32)))
        return self._cache[key]

    def __getitem__(self, index: int) -> dict:
        item = self.faces[index]
        identity = int(item["identity"])
        item["albedo_uv_srgb"] = torch.clamp(linear_to_srgb(item["albedo_uv"]), 0.0, 1.0)
        if isinstance(item["render"], list):
            pairs = [self._texture(identity, r, p, lm) for r, p, lm in zip(item["render"], item["photo"], item["landmarks"])]
            item["photo_uv"] = torch.stack([t for t, _ in pairs])
            item["photo_uv_confidence"] = torch.stack([c for _, c in pairs])
        else:
            item["photo_uv"], item["photo_uv_confidence"] = self._texture(identity, item["render"], item["photo"], item["landmarks"])
        return item
