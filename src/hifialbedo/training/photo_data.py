"""Real photos as training data for stages 2 and 3: face crops with their landmarks.

Stages 2 and 3 need each photo's 478 MediaPipe landmarks (to render on the photo's mesh)
and its UV texture (``inverse.texture.photo_texture``, the encoder's input). Detection is
too slow to repeat every epoch, so it runs once:

- :func:`prepare_photos` turns a folder of photos (``layout="images"``: any tree, one face per
  image, FFHQ / WebFace style; ``layout="identities"``: VGGFace2 style ``SRC/<person>/<images>``)
  into a *prepared folder*: square face crops (PNG, 8-bit sRGB), their landmarks in crop
  pixels and an index. This is ``hifialbedo prepare``.
- :class:`PhotoUVFolder` reads a prepared folder as a torch ``Dataset`` whose items have the
  keys, shapes and dtypes of :class:`~hifialbedo.training.synth_data.SynthUVPhotos` that the
  stages use (:data:`PHOTO_KEYS`), without ground truth (real photos have none).

A prepared folder::

    photos.json      the index: format, version, layout, size, face_fraction, source, persons,
                     photos (file, source, person, face_size, n_faces), skipped (source, reason), counts
    landmarks.npy    (N, 478, 3) float32: photo k's landmarks in pixels of its crop
                     (x right, y down, continuous coordinates; z MediaPipe's depth, scaled like x)
    images/NNNNNN.png  photo k's crop, size x size, 8-bit sRGB
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from hifialbedo.inverse.texture import photo_texture
from hifialbedo.io.errors import InputError
from hifialbedo.io.images import read_photo, write_png
from hifialbedo.io.output import atomic_output_dir, check_output_dir, write_json
from hifialbedo.mesh.landmarks import N_MESH, LandmarkDetector, NoFaceError
from hifialbedo.mesh.topology import uv_regions
from hifialbedo.ops.colour import linear_to_srgb, srgb_uint8_to_linear
from hifialbedo.training.data import IMAGE_SUFFIXES

Layout = Literal["images", "identities"]
LAYOUTS: tuple[str, ...] = ("images", "identities")
FORMAT = "hifialbedo-photos"
VERSION = 1
INDEX_NAME = "photos.json"
LANDMARKS_NAME = "landmarks.npy"
DEFAULT_FACE_FRACTION = 0.5  # the synthetic engine frames faces at 0.42-0.58 of the side (synth.config.face_fraction)

PHOTO_KEYS: tuple[str, ...] = ("photo", "photo_srgb", "landmarks", "photo_uv", "photo_uv_confidence", "uv_mask", "identity", "render")
"""The keys of a :class:`PhotoUVFolder` item, a subset of a ``SynthUVPhotos`` item's (same shapes and dtypes)."""


# --------------------------------------------------------------------------- preparing


def face_crop(image: np.ndarray, landmarks: np.ndarray, size: int, face_fraction: float = DEFAULT_FACE_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """A square crop centred on the face, resized to ``size``, and the landmarks moved into it.

    ``image`` ``(H, W, 3)`` uint8 sRGB; ``landmarks`` ``(478, 3)`` pixels of ``image``. The crop's
    side is the larger side of the 468 mesh landmarks' box divided by ``face_fraction``,
    rounded to whole pixels (so the crop is an exact pixel box and the resize an exact scale);
    parts outside the image are black (padding invents no face content). Area averaging
    when shrinking, bilinear when enlarging. Returns ``(size, size, 3)`` uint8 sRGB and
    ``(478, 3)`` float64 crop pixels (z scaled like x and y).
    """
    p = landmarks[:N_MESH, :2]
    (x0, y0), (x1, y1) = p.min(axis=0).tolist(), p.max(axis=0).tolist()
    side = max(round(max(x1 - x0, y1 - y0) / face_fraction), 1)
    left, top = round((x0 + x1 - side) / 2), round((y0 + y1 - side) / 2)
    h, w = image.shape[:2]
    region = image[max(top, 0) : min(top + side, h), max(left, 0) : min(left + side, w)]
    pad = (max(-top, 0), max(top + side - h, 0), max(-left, 0), max(left + side - w, 0))
    if any(pad):
        region = cv2.copyMakeBorder(region, *pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    crop = cv2.resize(np.ascontiguousarray(region), (size, size), interpolation=interpolation) if side != size else region
    scale = size / side
    marks = np.asarray(landmarks, dtype=np.float64).copy()
    # Continuous coordinates (pixel centres at +0.5) scale exactly under cv2.resize.
    marks[:, 0] = (marks[:, 0] - left) * scale
    marks[:, 1] = (marks[:, 1] - top) * scale
    marks[:, 2] *= scale
    return np.ascontiguousarray(crop), marks


def _listing(src: Path, layout: str) -> tuple[list[tuple[Path, str | None]], list[dict[str, str]]]:
    """``(images with their person (None for layout images), skipped)`` under ``src``, sorted."""
    files = sorted(p for p in src.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ValueError(f"{src}: no images ({', '.join(IMAGE_SUFFIXES)}) found")
    if layout == "images":
        return [(f, None) for f in files], []
    found, skipped = [], []
    for f in files:
        parts = f.relative_to(src).parts
        if len(parts) < 2:  # identities: a person is a folder
            skipped.append({"source": f.relative_to(src).as_posix(), "reason": "not in a person folder"})
        else:
            found.append((f, parts[0]))
    return found, skipped


def prepare_photos(
    src: str | Path,
    dst: str | Path,
    *,
    size: int = 256,
    layout: Layout = "images",
    overwrite: bool = False,
    face_fraction: float = DEFAULT_FACE_FRACTION,
    detector: LandmarkDetector | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Detect, crop and index the faces of every image under ``src`` into the prepared folder ``dst``.

    ``layout``: "images" (every image under ``src``, recursively, is one photo) or
    "identities" (``src/<person>/...``: each top-level folder is one person; images directly
    in ``src`` are skipped). The largest face of each image (``LandmarkDetector.detect``) is
    cropped square (:func:`face_crop`, face box = ``face_fraction`` of the side) at ``size``
    px. Unreadable images and images without a usable face are skipped, listed in the index
    and summarised in one ``UserWarning``. ``detector``: reuse a loaded one (else one is made
    and closed). ``progress(done, total)`` after each image.

    Written atomically (a temporary folder beside ``dst``, renamed into place); an existing
    ``dst`` is refused (``InputError``) unless ``overwrite``. ValueError naming ``src`` when it
    is missing, holds no images or no usable face, or when ``dst`` lies inside it (or it in ``dst``).
    Returns the index (``photos.json``'s content).
    """
    src, dst = Path(src), Path(dst)
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {list(LAYOUTS)}, got {layout!r}")
    if not 32 <= size <= 4096:
        raise ValueError(f"size must be between 32 and 4096, got {size}")
    if not 0.0 < face_fraction <= 1.0:
        raise ValueError(f"face_fraction must be in (0, 1], got {face_fraction}")
    if not src.is_dir():
        raise ValueError(f"{src}: folder does not exist")
    s, d = src.resolve(), dst.resolve()
    if d == s or s in d.parents or d in s.parents:
        raise ValueError(f"{dst}: the prepared folder must lie outside {src} (and not contain it)")
    check_output_dir(dst, overwrite=overwrite)  # before the slow part
    found, skipped = _listing(src, layout)
    total = len(found) + len(skipped)

    own_detector = detector is None
    detector = LandmarkDetector() if detector is None else detector
    photos: list[dict[str, Any]] = []
    marks: list[np.ndarray] = []
    try:
        with atomic_output_dir(dst, overwrite=overwrite) as tmp:
            (tmp / "images").mkdir()
            for i, (path, person) in enumerate(found):
                rel = path.relative_to(src).as_posix()
                try:
                    with warnings.catch_warnings():  # read_photo's downscale note: the crop is what counts
                        warnings.simplefilter("ignore", UserWarning)
                        pixels = read_photo(path).pixels
                    detection = detector.detect(pixels)
                except (InputError, NoFaceError) as exc:
                    reason = exc.problem if isinstance(exc, InputError) else str(exc)
                    skipped.append({"source": rel, "reason": reason})
                else:
                    crop, crop_marks = face_crop(pixels, detection.landmarks, size, face_fraction)
                    name = f"images/{len(photos):06d}.png"
                    write_png(tmp / name, crop)
                    x0, y0, x1, y1 = detection.bbox
                    entry: dict[str, Any] = {"file": name, "source": rel}
                    if person is not None:
                        entry["person"] = person
                    entry.update(face_size=round(max(x1 - x0, y1 - y0), 1), n_faces=detection.n_faces)
                    photos.append(entry)
                    marks.append(crop_marks.astype(np.float32))
                if progress is not None:
                    progress(i + 1, len(found))
            if not photos:
                example = f" (e.g. {skipped[0]['source']}: {skipped[0]['reason']})" if skipped else ""
                raise ValueError(f"{src}: no usable face in any of its {total} image(s){example}")
            skipped.sort(key=lambda e: e["source"])
            persons = sorted({p["person"] for p in photos}) if layout == "identities" else []
            index = {
                "format": FORMAT,
                "version": VERSION,
                "layout": layout,
                "size": size,
                "face_fraction": face_fraction,
                "source": str(src),
                "counts": {"images": total, "photos": len(photos), "skipped": len(skipped), "persons": len(persons)},
                "persons": persons,
                "photos": photos,
                "skipped": skipped,
            }
            np.save(tmp / LANDMARKS_NAME, np.stack(marks))
            write_json(tmp / INDEX_NAME, index)
    finally:
        if own_detector:
            detector.close()
    if skipped:
        shown = ", ".join(f"{e['source']} ({e['reason']})" for e in skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        warnings.warn(f"{src}: skipped {len(skipped)} of {total} image(s): {shown}; all listed in {dst / INDEX_NAME}", stacklevel=2)
    return index


def read_photo_index(root: str | Path) -> dict[str, Any]:
    """``photos.json`` of a prepared folder, checked; ValueError naming the folder when it is not one."""
    root = Path(root)
    path = root / INDEX_NAME
    if not path.is_file():
        raise ValueError(f"{root}: not a prepared photo folder (no {INDEX_NAME}); make one with: hifialbedo prepare PHOTOS -o {root}")
    try:
        index = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: unreadable index ({exc})") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} index")
    if index.get("version") != VERSION:
        raise ValueError(f"{path}: version {index.get('version')}, this reader knows {VERSION}")
    return index


# --------------------------------------------------------------------------- reading


def _chw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))


class PhotoUVFolder(Dataset):
    """A prepared folder (:func:`prepare_photos`) as stage-2 / stage-3 training items.

    ``uv_size``: side S of the UV textures. ``group_size``: None for one photo per item
    (stage 2); n for groups of n photos of one person (stage 3; the folder must have been
    prepared with ``layout="identities"``): each person's photos are shuffled with a
    generator seeded by ``(seed, person)`` (as ``training.data.IdentityFolders``) and cut
    into groups of n, leftovers unused; persons with fewer than n photos are skipped with one
    warning. ``image_size``: resize the crops (and their landmarks) to this side; None keeps
    the prepared size.

    An ungrouped item (keys :data:`PHOTO_KEYS`, as ``SynthUVPhotos`` gives them):

    - ``photo`` (3, R, R) linear RGB in [0, 1] (decoded from the 8-bit sRGB crop);
      ``photo_srgb`` (3, R, R) the same, sRGB-encoded in [0, 1]
    - ``landmarks`` (478, 3) float32 pixels of the crop
    - ``photo_uv`` (3, S, S) the completed UV texture, sRGB-encoded in [0, 1];
      ``photo_uv_confidence`` (1, S, S) in [0, 1] (0 where filled in)
    - ``uv_mask`` (1, S, S) the face region of the UV layout
    - ``identity``: int, the person's number in ``persons`` (layout "identities") or the
      photo's number (layout "images"); ``render``: int, the photo's number within its person
      (0 for layout "images"). (identity, render) names a photo uniquely: stage 2 seeds its random views with it.

    In a grouped item the per-photo keys gain a leading axis of n (``render`` is a list);
    ``uv_mask`` and ``identity`` appear once. No ground-truth keys (``albedo_uv_srgb`` ...).
    UV textures are computed on first use and cached in memory (per process).
    """

    def __init__(
        self,
        root: str | Path,
        *,
        uv_size: int = 64,
        group_size: int | None = None,
        image_size: int | None = None,
        seed: int = 0,
    ) -> None:
        self.root = Path(root)
        self.index = read_photo_index(self.root)
        if uv_size < 16:
            raise ValueError(f"uv_size must be >= 16, got {uv_size}")
        if image_size is not None and image_size < 16:
            raise ValueError(f"image_size must be >= 16, got {image_size}")
        self.uv_size, self.group_size = uv_size, group_size
        self.size = int(self.index["size"])
        self.image_size = self.size if image_size is None else image_size
        self.layout = self.index["layout"]
        self.photos: list[dict[str, Any]] = self.index["photos"]
        self.landmarks = np.load(self.root / LANDMARKS_NAME, mmap_mode="r")  # mapped: large sets stay on disk
        if self.landmarks.shape != (len(self.photos), 478, 3):
            raise ValueError(f"{self.root / LANDMARKS_NAME}: shape {self.landmarks.shape}, expected ({len(self.photos)}, 478, 3)")
        self.persons: list[str] = list(self.index.get("persons", []))
        self._uv_mask = torch.from_numpy(uv_regions(uv_size)["face"].astype(np.float32))[None]
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.photo_ids: list[tuple[int, int]] = []
        """(identity, render) of each photo (row of ``photos`` and ``landmarks``)."""
        if self.layout == "identities":
            number = {name: i for i, name in enumerate(self.persons)}
            seen: dict[str, int] = {}
            for p in self.photos:
                self.photo_ids.append((number[p["person"]], seen.get(p["person"], 0)))
                seen[p["person"]] = seen.get(p["person"], 0) + 1
        else:
            self.photo_ids = [(k, 0) for k in range(len(self.photos))]
        self.members: list[list[int]] = [[k] for k in range(len(self.photos))] if group_size is None else self._groups(group_size, seed)
        """The photos (rows of ``photos`` and ``landmarks``) of each item."""

    def _groups(self, n: int, seed: int) -> list[list[int]]:
        if n < 1:
            raise ValueError(f"group_size must be >= 1, got {n}")
        if self.layout != "identities":
            raise ValueError(
                f"{self.root}: prepared with layout {self.layout!r}; groups of one person need a folder prepared from "
                f"SRC/<person>/<photos> with: hifialbedo prepare SRC -o {self.root} --layout identities --overwrite"
            )
        by_person: dict[int, list[int]] = {}
        for k, (identity, _) in enumerate(self.photo_ids):
            by_person.setdefault(identity, []).append(k)
        groups, too_few = [], []
        for identity in sorted(by_person):
            photos = by_person[identity]
            if len(photos) < n:
                too_few.append(self.persons[identity])
                continue
            order = np.random.default_rng([seed, identity]).permutation(len(photos))
            groups += [[photos[i] for i in order[g * n : (g + 1) * n]] for g in range(len(photos) // n)]
        if too_few:
            shown = ", ".join(too_few[:5]) + (", ..." if len(too_few) > 5 else "")
            warnings.warn(f"{self.root}: skipped {len(too_few)} person(s) with < {n} photos ({shown})", stacklevel=3)
        if not groups:
            raise ValueError(f"{self.root}: no person with >= {n} photos (group_size)")
        return groups

    def __len__(self) -> int:
        return len(self.members)

    def _photo(self, k: int) -> dict[str, torch.Tensor]:
        bgr = cv2.imread(str(self.root / self.photos[k]["file"]), cv2.IMREAD_COLOR)
        if bgr is None:
            raise OSError(f"{self.root / self.photos[k]['file']}: cannot read PNG")
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        marks = np.array(self.landmarks[k], dtype=np.float32)
        if self.image_size != rgb.shape[0]:
            shrink = self.image_size < rgb.shape[0]
            rgb = cv2.resize(rgb, (self.image_size, self.image_size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
            marks *= np.float32(self.image_size / self.size)  # x, y and z scale alike
        linear = srgb_uint8_to_linear(rgb)
        if k not in self._cache:
            pt = photo_texture(linear, marks.astype(np.float64), self.uv_size)
            texture = np.clip(linear_to_srgb(pt.texture), 0.0, 1.0)
            self._cache[k] = (_chw(texture), torch.from_numpy(pt.confidence[None].astype(np.float32)))
        photo_uv, confidence = self._cache[k]
        return {
            "photo": _chw(linear),
            "photo_srgb": _chw(rgb.astype(np.float32) / 255.0),
            "landmarks": torch.from_numpy(marks),
            "photo_uv": photo_uv,
            "photo_uv_confidence": confidence,
        }

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        members = self.members[index]
        per_photo = [self._photo(k) for k in members]
        identity = self.photo_ids[members[0]][0]
        item: dict[str, Any] = {"uv_mask": self._uv_mask.clone(), "identity": identity}
        if self.group_size is None:
            item.update(per_photo[0])
            item["render"] = self.photo_ids[members[0]][1]
        else:
            for key in per_photo[0]:
                item[key] = torch.stack([p[key] for p in per_photo])
            item["render"] = [self.photo_ids[k][1] for k in members]
        return item


class SelectKeys(Dataset):
    """Items of ``base`` restricted to ``keys``, so datasets of different kinds collate in one batch."""

    def __init__(self, base: Dataset, keys: Sequence[str] = PHOTO_KEYS) -> None:
        self.base, self.keys = base, tuple(keys)

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.base[index]
        return {k: item[k] for k in self.keys}


__all__ = [
    "LAYOUTS",
    "PHOTO_KEYS",
    "PhotoUVFolder",
    "SelectKeys",
    "face_crop",
    "prepare_photos",
    "read_photo_index",
]
