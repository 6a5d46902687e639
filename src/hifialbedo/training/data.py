"""Dataset readers for real-photo training data, and the engine's deterministic batch sampler.

Every reader returns dicts of float32 tensors; images are ``(3, S, S)`` **sRGB-encoded** in
[0, 1] (8-bit files divided by 255, no linearisation), ``S`` a power of two. Files are listed
once, sorted, so an index always names the same file.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def list_images(root: str | Path) -> list[Path]:
    """All images under ``root`` (recursive, suffixes in ``IMAGE_SUFFIXES``, any case), sorted.

    ValueError naming the folder when it does not exist or holds no images.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: folder does not exist")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ValueError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) found")
    return files


def read_image(path: str | Path, size: int, *, crop: bool = True) -> torch.Tensor:
    """One file as ``(3, size, size)`` float32 sRGB in [0, 1].

    ``crop``: centre-crop to a square first (else resize the whole image, e.g. a UV map).
    Area averaging when shrinking, bilinear when enlarging. ValueError naming the file when
    OpenCV cannot decode it.
    """
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)  # honours EXIF orientation; grey/alpha -> 3 channels
    if img is None:
        raise ValueError(f"{path}: cannot read image (missing, truncated or not an image)")
    if crop:
        h, w = img.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        img = img[top : top + side, left : left + side]
    if img.shape[:2] != (size, size):
        shrink = img.shape[0] > size and img.shape[1] > size
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float().div_(255.0)


def check_sources(sources: Sequence[tuple[str, str | Path]], kinds: Sequence[str], *, stage: int) -> list[tuple[str, Path]]:
    """A stage's ``(kind, folder)`` data sources with folders as Paths, each kind one of ``kinds``
    and each folder existing; ValueError naming the kind or the folder otherwise.

    >>> check_sources([("synth", ".")], ("synth", "photos"), stage=3)
    [('synth', PosixPath('.'))]
    >>> check_sources([("images", ".")], ("synth", "photos"), stage=3)
    Traceback (most recent call last):
    ...
    ValueError: images:.: unknown data kind 'images' for stage 3; choose from ['synth', 'photos']
    """
    checked = []
    for kind, root in sources:
        root = Path(root)
        if kind not in kinds:
            raise ValueError(f"{kind}:{root}: unknown data kind {kind!r} for stage {stage}; choose from {list(kinds)}")
        if not root.is_dir():
            raise ValueError(f"{root}: folder does not exist")
        checked.append((kind, root))
    return checked


def derive_seed(*keys: int) -> int:
    """A 63-bit seed mixed from integers, e.g. ``derive_seed(seed, epoch)`` (NumPy ``SeedSequence``)."""
    return int(np.random.SeedSequence(list(keys)).generate_state(2, np.uint64)[0] >> np.uint64(1))


def _check_size(size: int) -> int:
    if size < 4 or size & (size - 1):
        raise ValueError(f"size must be a power of two >= 4, got {size}")
    return size


class _ImageFiles(Dataset):
    """Every image under ``root`` read at ``size``; subclasses set the item key and the cropping."""

    key = "image"
    crop = True

    def __init__(self, root: str | Path, size: int) -> None:
        self.root = Path(root)
        self.size = _check_size(size)
        self.files = list_images(self.root)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {self.key: read_image(self.files[index], self.size, crop=self.crop)}


class ImageFolder(_ImageFiles):
    """Every image under ``root`` (FFHQ / WebFace style), centre-cropped square, resized to ``size``.

    Item: ``{"image": (3, size, size)}`` float32 sRGB in [0, 1].
    """


class UVTextureFolder(_ImageFiles):
    """Every UV texture map under ``root`` (FFHQ-UV style), resized (not cropped) to ``size``.

    Item: ``{"texture": (3, size, size)}`` float32 sRGB in [0, 1], in the folder's own UV layout.
    """

    key = "texture"
    crop = False


class IdentityFolders(Dataset):
    """Groups of photos of one person from a VGGFace2-style tree ``root/<person>/<images>``.

    Each person's images (recursive within the person's folder) are shuffled with a generator
    seeded by ``(seed, person)`` and cut into groups of ``group_size``; leftovers are unused.
    Persons with fewer than ``min_images`` (default ``group_size``) images are skipped with one
    warning. ``identity`` numbers the kept persons 0.. in sorted folder order (``persons``).

    Item: ``{"images": (group_size, 3, size, size)`` float32 sRGB in [0, 1], ``"identity": int}``.
    """

    def __init__(self, root: str | Path, size: int, group_size: int, min_images: int | None = None, *, seed: int = 0) -> None:
        self.root = Path(root)
        self.size = _check_size(size)
        if group_size < 1:
            raise ValueError(f"group_size must be >= 1, got {group_size}")
        min_images = group_size if min_images is None else min_images
        if min_images < group_size:
            raise ValueError(f"min_images ({min_images}) must be >= group_size ({group_size})")
        if not self.root.is_dir():
            raise ValueError(f"{self.root}: folder does not exist")
        self.persons: list[str] = []
        self.groups: list[tuple[int, list[Path]]] = []
        skipped = []
        for person_dir in sorted(p for p in self.root.iterdir() if p.is_dir()):
            files = sorted(p for p in person_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if len(files) < min_images:
                skipped.append(person_dir.name)
                continue
            order = np.random.default_rng([seed, len(self.persons)]).permutation(len(files))
            identity = len(self.persons)
            self.persons.append(person_dir.name)
            for g in range(len(files) // group_size):
                self.groups.append((identity, [files[i] for i in order[g * group_size : (g + 1) * group_size]]))
        if skipped:
            shown = ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else "")
            warnings.warn(
                f"{self.root}: skipped {len(skipped)} person folder(s) with < {min_images} images ({shown})", stacklevel=2
            )
        if not self.groups:
            raise ValueError(f"{self.root}: no person folder with >= {min_images} images")

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        identity, files = self.groups[index]
        return {"images": torch.stack([read_image(f, self.size) for f in files]), "identity": identity}


class StepBatchSampler(Sampler[list[int]]):
    """This rank's micro-batches of dataset indices, step by step, from ``start_step`` to ``max_steps``.

    Epoch ``e`` is a permutation of the dataset drawn from a generator seeded with
    ``(seed, e)`` only; it is cut into global batches of ``batch_size x world_size x grad_accum``
    (an incomplete tail is dropped). Global batch ``k`` is split into ``grad_accum`` micro-steps,
    each into ``world_size`` slices of ``batch_size``: micro-step ``a`` of rank ``r`` is slice
    ``a world_size + r``. So the samples of a step do not depend on how they are spread over
    devices and accumulation, and resuming at any step is exact. Yields ``grad_accum`` lists per step.
    """

    def __init__(
        self,
        num_samples: int,
        *,
        batch_size: int,
        grad_accum: int,
        world_size: int,
        rank: int,
        seed: int,
        start_step: int = 0,
        max_steps: int,
    ) -> None:
        self.num_samples, self.batch_size, self.grad_accum = num_samples, batch_size, grad_accum
        self.world_size, self.rank, self.seed = world_size, rank, seed
        self.start_step, self.max_steps = start_step, max_steps
        self.global_batch = batch_size * world_size * grad_accum
        self.steps_per_epoch = num_samples // self.global_batch
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"the dataset has {num_samples} items, fewer than one global batch "
                f"({batch_size} x {world_size} devices x {grad_accum} accumulation = {self.global_batch})"
            )

    def position(self, step: int) -> dict[str, int]:
        """``{"epoch", "batches_consumed"}`` after ``step`` optimiser steps."""
        epoch, consumed = divmod(step, self.steps_per_epoch)
        return {"epoch": epoch, "batches_consumed": consumed}

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """The permutation of the dataset used in ``epoch`` (a function of ``(seed, epoch)`` only)."""
        generator = torch.Generator().manual_seed(derive_seed(self.seed, epoch))
        return torch.randperm(self.num_samples, generator=generator)

    def __iter__(self) -> Iterator[list[int]]:
        order, order_epoch = None, -1
        for step in range(self.start_step, self.max_steps):
            epoch, k = divmod(step, self.steps_per_epoch)
            if epoch != order_epoch:
                order, order_epoch = self.epoch_order(epoch), epoch
            batch = order[k * self.global_batch : (k + 1) * self.global_batch]
            for a in range(self.grad_accum):
                s = (a * self.world_size + self.rank) * self.batch_size
                yield batch[s : s + self.batch_size].tolist()

    def __len__(self) -> int:
        return (self.max_steps - self.start_step) * self.grad_accum
