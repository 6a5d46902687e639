"""The synthetic engine as training data for stages 2 and 3: each photo also unwrapped
onto the UV layout (``inverse.texture.photo_texture``), the learned model's input.

Items are those of ``synth.torch_data.SyntheticFaces`` plus, per render (with a leading
axis of n in grouped items):

- ``photo_uv (3, S, S)``: the photo's completed UV texture, sRGB-encoded in [0, 1];
- ``photo_uv_confidence (1, S, S)`` in [0, 1]: 0 where the texel was filled in;

and once per item ``albedo_uv_srgb (3, S, S)``: the true albedo, sRGB-encoded in [0, 1].
Unwraps are cached in memory (about 12 ms each at S = 64).

:class:`SynthAlbedoTextures`: the true albedos alone, one item per identity, as real UV
textures (stage 2's D_latent real side when real photos are trained without ``uv:`` textures).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from hifialbedo.inverse.texture import photo_texture
from hifialbedo.ops.colour import linear_to_srgb
from hifialbedo.synth.dataset import load_identity
from hifialbedo.synth.torch_data import SyntheticFaces


class SynthUVPhotos(Dataset):
    """``SyntheticFaces(root, split=, uv_size=, group_size=, cyclic_groups=)`` with the photos' UV textures."""

    def __init__(
        self, root: str | Path, *, split: str | None = None, uv_size: int = 64, group_size: int | None = None, cyclic_groups: bool = False
    ) -> None:
        self.faces = SyntheticFaces(root, split=split, uv_size=uv_size, group_size=group_size, cyclic_groups=cyclic_groups)
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


class SynthAlbedoTextures(Dataset):
    """The true UV albedos of a synthetic set's identities (of ``split``), one item per identity.

    Item: ``{"texture": (3, S, S)}`` float32, sRGB-encoded in [0, 1] (as ``UVTextureFolder``),
    S = ``uv_size`` (area averaging down, bilinear up, as ``SyntheticFaces``).
    """

    def __init__(self, root: str | Path, *, split: str | None = None, uv_size: int = 64) -> None:
        self.faces = SyntheticFaces(root, split=split, uv_size=uv_size)
        self.uv_size = uv_size

    def __len__(self) -> int:
        return len(self.faces.identities)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        albedo = load_identity(self.faces.root, int(self.faces.identities[index]["id"]))["albedo"]
        if albedo.shape[0] != self.uv_size:
            shrink = self.uv_size < albedo.shape[0]
            albedo = cv2.resize(albedo, (self.uv_size, self.uv_size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        srgb = np.clip(linear_to_srgb(albedo), 0.0, 1.0).astype(np.float32)
        return {"texture": torch.from_numpy(np.ascontiguousarray(srgb.transpose(2, 0, 1)))}
