"""A PyTorch ``Dataset`` over a synthetic dataset folder (``synth.dataset.write_dataset``).

Tensors follow the project's convention: images ``(C, H, W)`` float32, colour in linear
RGB unless the key says ``_srgb``; SH ``(9, 3)``; landmarks ``(478, 3)`` pixels.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from hifialbedo.mesh.topology import uv_regions
from hifialbedo.ops.colour import srgb_uint8_to_linear
from hifialbedo.synth.dataset import load_identity, load_render, read_metadata

SPLITS = ("train", "val")


def _chw(array: np.ndarray) -> torch.Tensor:
    if array.ndim == 2:
        array = array[..., None]
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1), dtype=np.float32))


def _resize_uv(uv_map: np.ndarray, size: int) -> np.ndarray:
    if uv_map.shape[0] == size:
        return uv_map
    interpolation = cv2.INTER_AREA if size < uv_map.shape[0] else cv2.INTER_LINEAR
    return cv2.resize(uv_map, (size, size), interpolation=interpolation)


class SyntheticFaces(Dataset):
    """Synthetic faces with exact ground truth.

    ``split``: "train", "val" or None (all identities); the split is by identity, fixed when
    the folder was written (``dataset.json``). ``uv_size``: resample the UV maps to this side
    (area averaging down, bilinear up); None keeps the stored size. ``group_size``: None for
    one render per item; n for items holding n renders of one identity, for multi-photo
    training: renders ``[g n, (g + 1) n)`` of it (leftover renders are not used), or with
    ``cyclic_groups`` one item per render k holding renders ``k, k + 1, .. k + n - 1`` modulo
    the renders per identity (every render used, in n different groups).

    A single-render item (a dict):

    - ``photo`` (3, R, R): the photo, linear RGB in [0, 1] (decoded from its 8-bit sRGB);
      ``photo_srgb`` (3, R, R): the same, sRGB-encoded in [0, 1]
    - ``albedo_view`` (3, R, R) linear RGB, 0 off the mask; ``mask`` (1, R, R) in {0, 1}
    - ``normals`` (3, R, R) unit, camera frame (x right, y up, z to the camera), 0 off the mask
    - ``specular`` (3, R, R) linear RGB (0 when the dataset has no specular)
    - ``landmarks`` (478, 3) pixels (x right, y down, z); ``sh`` (9, 3) linear-RGB radiance
    - ``albedo_uv`` (3, S, S) linear RGB; ``uv_mask`` (1, S, S) the face region of the layout
    - ``identity``, ``render``, ``skin_type`` (0..5 = I..VI): int; ``ita``: float (degrees)

    In a grouped item the per-render keys gain a leading axis of n (``render`` is a list);
    ``albedo_uv``, ``uv_mask``, ``identity``, ``skin_type`` and ``ita`` appear once.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        split: str | None = None,
        uv_size: int | None = None,
        group_size: int | None = None,
        cyclic_groups: bool = False,
    ) -> None:
        self.root = Path(root)
        self.meta = read_metadata(self.root)
        if split is not None and split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
        if uv_size is not None and uv_size < 16:
            raise ValueError(f"uv_size must be >= 16, got {uv_size}")
        per_identity = int(self.meta["counts"]["renders_per_identity"])
        if group_size is not None and not 1 <= group_size <= per_identity:
            raise ValueError(f"group_size must be in [1, {per_identity}] (renders per identity), got {group_size}")
        self.identities = [d for d in self.meta["identities"] if split is None or d["split"] == split]
        self.uv_size = uv_size
        self.group_size = group_size
        if group_size is None:
            self._items = [(d, [k]) for d in self.identities for k in range(per_identity)]
        elif cyclic_groups:
            self._items = [(d, [(k + j) % per_identity for j in range(group_size)]) for d in self.identities for k in range(per_identity)]
        else:
            groups = per_identity // group_size
            self._items = [(d, list(range(g * group_size, (g + 1) * group_size))) for d in self.identities for g in range(groups)]

    def __len__(self) -> int:
        return len(self._items)

    def _render(self, identity: int, k: int) -> dict[str, torch.Tensor]:
        r = load_render(self.root, identity, k)
        return {
            "photo": _chw(srgb_uint8_to_linear(r["photo"])),
            "photo_srgb": _chw(r["photo"].astype(np.float32) / 255.0),
            "albedo_view": _chw(r["albedo_view"]),
            "mask": _chw(r["mask"].astype(np.float32)),
            "normals": _chw(r["normals"]),
            "specular": _chw(r["specular"]),
            "landmarks": torch.from_numpy(r["landmarks"].astype(np.float32)),
            "sh": torch.from_numpy(r["sh"]),
        }

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(index)
        summary, renders = self._items[index]
        identity = int(summary["id"])
        albedo = load_identity(self.root, identity)["albedo"]
        size = albedo.shape[0] if self.uv_size is None else self.uv_size
        albedo = _resize_uv(albedo, size)
        item: dict = {
            "albedo_uv": _chw(albedo),
            "uv_mask": _chw(uv_regions(size)["face"].astype(np.float32)),
            "identity": identity,
            "skin_type": int(summary["skin_type"]),
            "ita": float(summary["ita"]),
        }
        per_render = [self._render(identity, k) for k in renders]
        if self.group_size is None:
            item.update(per_render[0])
            item["render"] = renders[0]
        else:
            for key in per_render[0]:
                item[key] = torch.stack([r[key] for r in per_render])
            item["render"] = renders
        return item
