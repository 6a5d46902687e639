"""Reading photos: validation, EXIF rotation, mode conversion, downscaling; writing PNGs.

Every reader returns ``(H, W, 3)`` uint8 sRGB; what Pillow can convert is accepted
(grayscale, 16-bit, CMYK, palette, alpha), anything else raises ``InputError`` naming the
file and the problem.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from isal import isal_zlib
from PIL import Image, ImageOps, UnidentifiedImageError

from hifialbedo.io.errors import InputError
from hifialbedo.mesh.landmarks import quiet_native_stderr

MAX_SIDE = 4096  # photos larger than this (either side) are downscaled, with a warning


@dataclass(frozen=True)
class Photo:
    path: Path
    pixels: np.ndarray  # (H, W, 3) uint8 sRGB, after EXIF rotation and any downscale
    original_size: tuple[int, int]  # (height, width) after EXIF rotation, before downscale
    notes: tuple[str, ...]  # what was converted, for the report

    @property
    def scale(self) -> float:
        """Working size / original size (1.0 unless downscaled)."""
        return self.pixels.shape[0] / self.original_size[0]


def _to_rgb8(img: Image.Image, notes: list[str]) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        if mode == "F" and np.nanmax(a, initial=0.0) <= 1.0:  # float data in 0..1
            top = 1.0
            notes.append("32-bit float grayscale (0..1) converted to 8-bit RGB")
        else:
            top = 65535.0 if mode.startswith("I;16") or a.max() > 255 else 255.0
            notes.append(f"{'16-bit' if top > 255 else mode} grayscale converted to 8-bit RGB")
        a = np.nan_to_num(a, nan=0.0)
        g = np.clip(np.round(a / top * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(g[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        notes.append(f"{mode} image: alpha composited over white")
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    if mode != "RGB":
        notes.append(f"{mode} image converted to RGB")
    return np.asarray(img.convert("RGB"))


def read_photo(path: str | Path, *, max_side: int = MAX_SIDE) -> Photo:
    """Read a photo as ``(H, W, 3)`` uint8 sRGB, honouring EXIF orientation.

    Raises InputError for a missing, empty, unreadable, truncated or unsupported file.
    Warns (``UserWarning``) when it downscales a photo larger than ``max_side``.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file")
    if path.is_dir():
        raise InputError(path, "is a directory, not an image")
    if path.stat().st_size == 0:
        raise InputError(path, "empty file (0 bytes)")
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rgb = _decode(path, notes)
    for w in caught:  # Pillow's own (e.g. corrupt EXIF), said once, naming the file
        text = str(w.message).splitlines()[0] if str(w.message) else type(w.message).__name__
        warnings.warn(f"{path}: {text}", UserWarning, stacklevel=2)
    h, w = rgb.shape[:2]
    if h < 16 or w < 16:
        raise InputError(path, f"image too small ({w}x{h} px)")
    original = (h, w)
    if max(h, w) > max_side:
        f = max_side / max(h, w)
        size = (max(1, round(w * f)), max(1, round(h * f)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        msg = f"{path}: {w}x{h} px is large; working on a {size[0]}x{size[1]} copy (views are upsampled back)"
        notes.append(msg)
        warnings.warn(msg, stacklevel=2)
    return Photo(path, np.ascontiguousarray(rgb), original, tuple(notes))


def _is_tiff(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _read_tiff_cv2(path: Path, notes: list[str]) -> np.ndarray | None:
    """A TIFF Pillow cannot open (float or multi-sample RGB): read by OpenCV, ``None`` if it cannot."""
    with quiet_native_stderr():
        try:
            a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        except cv2.error:
            a = None
    if a is None or a.ndim not in (2, 3) or a.size == 0:
        return None
    if a.ndim == 3:
        if a.shape[2] not in (3, 4):
            return None
        a = a[..., 2::-1] if a.shape[2] == 3 else a[..., [2, 1, 0]]
    else:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.dtype == np.uint8:
        top, what = 255.0, "8-bit"
    elif a.dtype == np.uint16:
        top, what = 65535.0, "16-bit"
    else:
        f = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        peak = float(f.max(initial=0.0))
        top = 1.0 if peak <= 1.0 else 255.0 if peak <= 255.0 else 65535.0
        what, a = f"{a.dtype} (0..{top:g})", f
    notes.append(f"{what} TIFF converted to 8-bit RGB")
    return np.clip(np.round(np.asarray(a, dtype=np.float64) / top * 255.0), 0, 255).astype(np.uint8)


def _decode(path: Path, notes: list[str]) -> np.ndarray:
    try:
        with Image.open(path) as img:
            img.load()  # decode now: a truncated file fails here, not later
            oriented = ImageOps.exif_transpose(img)
            if oriented is not img:
                orientation = img.getexif().get(0x0112, 1)
                if orientation != 1:
                    notes.append(f"EXIF orientation {orientation} applied")
            # 16-bit RGB(A) PNGs: Pillow gives 8-bit RGB; OpenCV keeps the 16 bits.
            if img.format == "PNG" and img.mode in ("RGB", "RGBA") and _png_bit_depth(path) == 16:
                rgb = _read_png16(path, notes)
            else:
                rgb = _to_rgb8(oriented, notes)
    except InputError:
        raise
    except UnidentifiedImageError:
        rgb = _read_tiff_cv2(path, notes) if _is_tiff(path) else None
        if rgb is None:
            raise InputError(path, "not an image (unrecognised format)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        msg = str(exc).split("\n")[0]
        if "truncated" in msg.lower() or "broken" in msg.lower() or "premature" in msg.lower():
            raise InputError(path, "truncated or corrupt image data") from None
        raise InputError(path, f"cannot decode image ({msg})") from None
    except Image.DecompressionBombError:
        raise InputError(path, "image too large to decode safely") from None
    return rgb


def _png_bit_depth(path: Path) -> int:
    with open(path, "rb") as f:
        head = f.read(26)
    return head[24] if len(head) >= 25 and head[12:16] == b"IHDR" else 8


def _read_png16(path: Path, notes: list[str]) -> np.ndarray:
    with quiet_native_stderr():
        a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if a is None:
        raise InputError(path, "cannot decode 16-bit PNG")
    if a.ndim == 3 and a.shape[2] == 4:
        alpha = a[..., 3:4].astype(np.float64) / 65535.0
        rgb = a[..., 2::-1].astype(np.float64) / 65535.0
        rgb = rgb * alpha + (1.0 - alpha)
        notes.append("16-bit RGBA PNG: alpha composited over white, converted to 8-bit")
    else:
        rgb = a[..., ::-1].astype(np.float64) / 65535.0
        notes.append("16-bit PNG converted to 8-bit")
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)


PNG_DEFLATE_LEVEL = 1
"""ISA-L's deflate level (0-3) of the PNG data: on the output maps level 1 on up-filtered rows
is 4-5x faster than zlib level 1 on Paeth-filtered rows (OpenCV's libpng) and the files are
10-25 % larger (albedo.png at 1024: 40 -> 10 ms, 651 -> 747 kB)."""

_PNG_COLOUR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type (grey, grey+alpha, RGB, RGBA)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(image: np.ndarray) -> bytes:
    """``(H, W)``, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA uint8/uint16 -> PNG bytes (fast
    compression: every row "up"-filtered, ISA-L deflate at ``PNG_DEFLATE_LEVEL``). NumPy and
    ISA-L release the GIL: several threads encode in parallel."""
    if (
        image.dtype not in (np.uint8, np.uint16)
        or image.ndim not in (2, 3)
        or (image.ndim == 3 and image.shape[2] not in _PNG_COLOUR_TYPE)
    ):
        raise ValueError(f"could not encode a {image.dtype} {image.shape} image as PNG")
    h, w = image.shape[:2]
    channels = 1 if image.ndim == 2 else image.shape[2]
    # Rows as bytes, 16-bit samples big-endian (the PNG byte order).
    rows = np.ascontiguousarray(image, dtype=image.dtype.newbyteorder(">")).view(np.uint8).reshape(h, -1)
    # Filter type 2 ("up"): each byte minus the byte above it, mod 256; the first row as it is.
    filtered = np.empty((h, rows.shape[1] + 1), np.uint8)
    filtered[:, 0] = 2
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])
    header = struct.pack(">IIBBBBB", w, h, 8 * image.itemsize, _PNG_COLOUR_TYPE[channels], 0, 0, 0)
    return b"".join((
        b"\x89PNG\r\n\x1a\n",
        _png_chunk(b"IHDR", header),
        _png_chunk(b"IDAT", isal_zlib.compress(filtered.data, PNG_DEFLATE_LEVEL)),
        _png_chunk(b"IEND", b""),
    ))  # fmt: skip


def write_png(path: Path, image: np.ndarray | bytes) -> None:
    """Write ``(H, W)``, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA uint8/uint16 as PNG (fast
    compression), or PNG bytes already encoded (``encode_png``)."""
    # Encoded in memory, written by Python: a full disk is an OSError with its errno, and
    # libpng prints nothing of its own.
    try:
        data = image if isinstance(image, bytes) else encode_png(image)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    with open(path, "wb") as f:
        f.write(data)
