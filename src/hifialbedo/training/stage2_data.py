"""Stage 2's training data: synthetic sets, prepared real photos and real UV textures as one dataset."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import ConcatDataset, Dataset

from hifialbedo.training.data import UVTextureFolder, check_sources

DATA_KINDS = ("synth", "photos", "uv")


class PairedTextures(Dataset):
    """Items of ``base`` plus ``"texture"``: item ``i % len(textures)`` of a ``UVTextureFolder``."""

    def __init__(self, base: Dataset, textures: Dataset) -> None:
        if len(textures) == 0:  # type: ignore[arg-type]
            raise ValueError("no real UV textures to pair with")
        self.base, self.textures = base, textures

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = dict(self.base[index])
        item["texture"] = self.textures[index % len(self.textures)]["texture"]  # type: ignore[arg-type]
        return item


def stage2_dataset(sources: Sequence[tuple[str, str | Path]], uv_size: int) -> Dataset:
    """Stage 2's training set from ``(kind, folder)`` sources.

    "synth": a ``hifialbedo synth`` folder's training split as
    :class:`~hifialbedo.training.synth_data.SynthUVPhotos` (UV side ``uv_size``). "photos": a
    folder made by ``hifialbedo prepare`` (real face crops with landmarks, any layout) as
    :class:`~hifialbedo.training.photo_data.PhotoUVFolder`. At least one of these is needed.
    "uv": real UV textures on the project's layout (``UVTextureFolder`` at ``uv_size``), paired
    with the photos by index modulo and used as D_latent's real side instead of the synthetic albedos.

    Real photos have no true albedo, so with "photos" D_latent's real side must come from
    elsewhere: the "uv" folders, else the "synth" sets' albedos
    (:class:`~hifialbedo.training.synth_data.SynthAlbedoTextures`, paired the same way);
    "photos" alone is refused. When photo kinds are mixed, items keep only the keys they share
    (``photo_data.PHOTO_KEYS``) and the prepared crops are resized to the first synthetic set's
    photo size, so batches collate. ValueError naming the kind or folder.
    """
    from hifialbedo.training.photo_data import PHOTO_KEYS, PhotoUVFolder, SelectKeys
    from hifialbedo.training.synth_data import SynthAlbedoTextures, SynthUVPhotos

    checked = check_sources(sources, DATA_KINDS, stage=2)
    synth = [(root, SynthUVPhotos(root, split="train", uv_size=uv_size)) for kind, root in checked if kind == "synth"]
    for root, ds in synth:
        if len(ds) == 0:
            raise ValueError(f"{root}: synthetic set has no training identities")
    real = [root for kind, root in checked if kind == "photos"]
    if not synth and not real:
        raise ValueError(
            "stage 2 needs at least one synth:folder or photos:folder (photos with landmarks); uv:folder only adds textures"
        )
    textures: list[Dataset] = [UVTextureFolder(root, uv_size) for kind, root in checked if kind == "uv"]
    photos: list[Dataset] = [ds for _, ds in synth]
    if real:
        if not textures:
            if not synth:
                raise ValueError(
                    f"{real[0]}: stage 2 on real photos needs real UV textures for D_latent's real side (real photos "
                    "have no albedo): add uv:folder (textures on the project's UV layout) or synth:folder (its albedos)"
                )
            textures = [SynthAlbedoTextures(root, split="train", uv_size=uv_size) for root, _ in synth]
        # One photo size and one key set per batch: the crops follow the first synthetic set's photo size.
        size = int(synth[0][1].faces.meta["config"]["image_size"]) if synth else None
        folders = [PhotoUVFolder(root, uv_size=uv_size, image_size=size) for root in real]
        sizes = sorted({f.image_size for f in folders})
        if len(sizes) > 1:
            raise ValueError(f"photos folders {', '.join(map(str, real))} hold crops of different sizes {sizes}; prepare them with one --size")
        photos = [SelectKeys(ds, PHOTO_KEYS) for ds in photos] + folders
    dataset: Dataset = photos[0] if len(photos) == 1 else ConcatDataset(photos)
    if textures:
        dataset = PairedTextures(dataset, textures[0] if len(textures) == 1 else ConcatDataset(textures))
    return dataset


__all__ = ["DATA_KINDS", "PairedTextures", "stage2_dataset"]
