"""What a batch run works on: the items under INPUT_DIR and the output folder of each.

Two layouts (as ``hifialbedo prepare``'s):

- ``photos``: every image anywhere under INPUT_DIR is one item, reconstructed alone, written
  to ``OUT_DIR/<its relative path without the extension>/``. Where that name is not unique in
  its folder (``a.jpg`` beside ``a.png``, beside a sub-folder ``a/``, names that differ only
  in case, or a reserved name of the batch folder) the item keeps its extension (``a.jpg/``,
  ``a.png/``); a name still taken gets ``_2``, ``_3``... in sorted order. So the names
  depend only on the folder's listing.
- ``identities``: every top-level folder of INPUT_DIR is one person (VGGFace2 style
  ``INPUT_DIR/<person>/...``, images found recursively inside it): one fused reconstruction of
  all of them, written to ``OUT_DIR/<person>/``. Images directly in INPUT_DIR belong to no
  person and a person folder without images has nothing to reconstruct: both are listed as
  skipped.

Hidden files and folders (a leading ``.``) and symbolic links to folders are not followed.
Everything is sorted, so an item's key (its output folder relative to OUT_DIR, with ``/``)
always names the same input.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hifialbedo.training.data import IMAGE_SUFFIXES

Layout = Literal["photos", "identities"]
LAYOUTS: tuple[str, ...] = ("photos", "identities")


@dataclass(frozen=True)
class Item:
    """One unit of work: the photos of one reconstruction and where it goes."""

    key: str
    """The output folder relative to OUT_DIR, ``/``-separated (unique; the manifest's key)."""
    source: str
    """The input relative to INPUT_DIR, ``/``-separated: the photo (photos) or the person folder (identities)."""
    photos: tuple[str, ...]
    """The photos, relative to INPUT_DIR, sorted."""


@dataclass(frozen=True)
class Skipped:
    """An input with nothing to reconstruct (the manifest's ``skipped`` rows)."""

    key: str
    source: str
    reason: str


def _is_image(name: str) -> bool:
    return not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES


def _walk(root: Path) -> Iterable[tuple[Path, list[str], list[str]]]:
    """``os.walk`` without hidden entries or symlinked folders, folders and files sorted."""
    for top, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        yield Path(top), dirs, sorted(f for f in files if _is_image(f) and os.path.isfile(os.path.join(top, f)))


def unique_names(files: list[str], taken: Iterable[str] = ()) -> dict[str, str]:
    """Output folder name of each image file name of one folder (``files``), unique within it.

    ``taken``: names already used there (sub-folders, reserved names), compared without case.

    >>> unique_names(["a.jpg", "a.png", "b.jpg", "c.jpg"], taken=["c"])
    {'a.jpg': 'a.jpg', 'a.png': 'a.png', 'b.jpg': 'b', 'c.jpg': 'c.jpg'}
    >>> unique_names(["A.jpg", "a.jpg"])
    {'A.jpg': 'A.jpg', 'a.jpg': 'a.jpg_2'}
    >>> unique_names(["x.jpg", "X.JPG"])
    {'X.JPG': 'X.JPG', 'x.jpg': 'x.jpg_2'}
    """
    taken_cf = {t.casefold() for t in taken}
    stems: dict[str, int] = {}
    for f in files:
        stems[Path(f).stem.casefold()] = stems.get(Path(f).stem.casefold(), 0) + 1
    used = set(taken_cf)
    names: dict[str, str] = {}
    for f in sorted(files):
        stem = Path(f).stem
        base = stem if stems[stem.casefold()] == 1 and stem.casefold() not in taken_cf else f
        name, k = base, 2
        while name.casefold() in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name.casefold())
        names[f] = name
    return names


def discover(input_dir: str | Path, layout: Layout = "photos", *, reserved: Iterable[str] = ()) -> tuple[list[Item], list[Skipped]]:
    """The items (sorted by key) and the skipped inputs under ``input_dir``.

    ``reserved``: names a top-level output folder must not take (the batch folder's own files).
    ValueError naming the folder when it does not exist or holds no image at all.
    """
    root = Path(input_dir)
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {list(LAYOUTS)}, got {layout!r}")
    if not root.is_dir():
        raise ValueError(f"{root}: folder does not exist")
    reserved = tuple(reserved)
    items: list[Item] = []
    skipped: list[Skipped] = []
    if layout == "photos":
        # Output prefix of each folder: its relative path, but a top-level folder whose name is
        # reserved is renamed like a person folder.
        out_prefix: dict[str, str] = {"": ""}
        for top, dirs, files in _walk(root):
            rel_dir = top.relative_to(root).as_posix()
            src_prefix = "" if rel_dir == "." else rel_dir + "/"
            prefix = out_prefix[src_prefix]
            if not src_prefix:
                renamed = _unique_folder_names(dirs, reserved)
            else:
                renamed = dirs
            for d, name in zip(dirs, renamed):
                out_prefix[src_prefix + d + "/"] = prefix + name + "/"
            taken = list(renamed) + (list(reserved) if not src_prefix else [])
            for f, name in unique_names(files, taken).items():
                items.append(Item(prefix + name, src_prefix + f, (src_prefix + f,)))
    else:
        top_files = [f for f in sorted(os.listdir(root)) if _is_image(f) and (root / f).is_file()]
        skipped += [Skipped(f, f, "not in a person folder (--layout identities)") for f in top_files]
        persons = sorted(d for d in os.listdir(root) if not d.startswith(".") and (root / d).is_dir() and not (root / d).is_symlink())
        names = dict(zip(persons, _unique_folder_names(persons, reserved)))
        for person in persons:
            photos = tuple(
                (top / f).relative_to(root).as_posix() for top, _, files in _walk(root / person) for f in files
            )
            if photos:
                items.append(Item(names[person], person, tuple(sorted(photos))))
            else:
                skipped.append(Skipped(names[person], person, "empty person folder: no images"))
    if not items and not skipped:
        raise ValueError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) found")
    items.sort(key=lambda it: it.key)
    return items, skipped


def _unique_folder_names(folders: list[str], reserved: tuple[str, ...]) -> list[str]:
    used = {r.casefold() for r in reserved}
    out = []
    for f in folders:
        name, k = f, 2
        while name.casefold() in used:
            name, k = f"{f}_{k}", k + 1
        used.add(name.casefold())
        out.append(name)
    return out
