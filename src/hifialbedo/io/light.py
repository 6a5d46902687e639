"""Reading light files (SH coefficients, equirectangular environment maps) and writing HDR images.

Every reader validates and raises ``InputError`` naming the file and the problem.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from hifialbedo.io.errors import InputError
from hifialbedo.mesh.landmarks import quiet_native_stderr
from hifialbedo.ops.colour import srgb_to_linear

ENVMAP_SUFFIXES = (".hdr", ".exr", ".png", ".jpg", ".jpeg")
MAX_ENVMAP_SIDE = 8192
BLACK_ENVMAP = 1e-6
"""A map whose brightest radiance is at most this is refused as black (it would render black)."""


def parse_sh(value: object, path: str | Path) -> np.ndarray:
    """SH coefficients ``(9, 3)`` float64 from a JSON value: a 9x3 list, ``{"sh": 9x3}``, or
    the ``lighting.json`` of ``reconstruct`` (its first photo's light)."""
    if isinstance(value, dict):
        if "sh" in value:
            value = value["sh"]
        elif (
            isinstance(value.get("photos"), list)
            and value["photos"]
            and isinstance(value["photos"][0], dict)
            and "sh" in value["photos"][0]
        ):
            value = value["photos"][0]["sh"]
        else:
            raise InputError(path, 'expected a 9x3 list of SH coefficients, {"sh": [...]}, or a lighting.json')
    try:
        sh = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(path, "SH coefficients must be numbers (a 9x3 list)") from None
    if sh.shape != (9, 3):
        raise InputError(path, f"SH coefficients must be 9x3 (9 coefficients x R, G, B), got shape {sh.shape}")
    if not np.isfinite(sh).all():
        raise InputError(path, "SH coefficients contain NaN or infinity")
    return sh


def read_json(path: str | Path) -> object:
    """A JSON file's value (``InputError`` when missing, unreadable or not JSON)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        return json.loads(path.read_text())
    except UnicodeDecodeError:
        raise InputError(path, "not a text (JSON) file") from None
    except json.JSONDecodeError as exc:
        raise InputError(path, f"bad JSON ({exc.msg} at line {exc.lineno})") from None


def read_sh(path: str | Path) -> np.ndarray:
    """SH coefficients ``(9, 3)`` (linear-RGB radiance, ``ops.sh`` basis) from a JSON file."""
    return parse_sh(read_json(path), path)


def read_envmap(path: str | Path) -> np.ndarray:
    """An equirectangular environment map ``(H, W, 3)`` float64 of linear-RGB radiance.

    ``.hdr`` (Radiance) and ``.exr`` are linear; ``.png`` / ``.jpg`` are sRGB (8 or 16 bit)
    and are decoded to linear in [0, 1]. The map must be about twice as wide as high
    (within 10%) and hold finite, non-negative values, not all black. EXR is read with the ``OpenEXR``
    package (the reference library's bindings; this OpenCV has no EXR codec): channels R, G,
    B (or Y, grey), any pixel type.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise InputError(path, "no such file")
    if suffix not in ENVMAP_SUFFIXES:
        raise InputError(path, f"unsupported environment map type {suffix or '(none)'}; use one of {', '.join(ENVMAP_SUFFIXES)}")
    if suffix == ".exr":
        image = _read_exr_bgr(path)
    else:
        with quiet_native_stderr():  # OpenCV's "RGBE read error", libpng's own lines
            try:
                image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            except cv2.error:
                image = None
        if image is None:
            raise InputError(path, f"cannot decode the {suffix} environment map (not an image, or corrupt)")
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise InputError(path, f"environment map must be RGB, got shape {image.shape}")
    rgb = image[..., 2::-1]  # BGR(A) -> RGB
    if rgb.dtype == np.uint8:
        env = srgb_to_linear(rgb.astype(np.float64) / 255.0)
    elif rgb.dtype == np.uint16:
        env = srgb_to_linear(rgb.astype(np.float64) / 65535.0)
    else:
        env = rgb.astype(np.float64)
    h, w = env.shape[:2]
    if h < 2 or w < 4 or max(h, w) > MAX_ENVMAP_SIDE:
        raise InputError(path, f"environment map size {w}x{h} px is out of range (4x2 .. {MAX_ENVMAP_SIDE} px)")
    if abs(w / h - 2.0) > 0.2:
        raise InputError(path, f"not an equirectangular map: {w}x{h} px (expected width = 2 x height)")
    if not np.isfinite(env).all():
        raise InputError(path, "environment map contains NaN or infinity")
    if (env < 0).any():
        raise InputError(path, "environment map contains negative radiance")
    if env.max() <= BLACK_ENVMAP:
        raise InputError(path, "environment map is black everywhere (no light to relight with)")
    return env


def _read_exr_bgr(path: Path) -> np.ndarray:
    """An OpenEXR image as ``(H, W, 3)`` float32 in OpenCV's BGR order; InputError naming the file."""
    import OpenEXR

    planes: dict[str, np.ndarray] = {}
    try:
        with OpenEXR.File(str(path)) as exr:  # the channels' pixels live only while the file is open
            names = sorted(exr.channels())
            for name, channel in exr.channels().items():
                pixels = np.array(channel.pixels, dtype=np.float32)
                if pixels.ndim == 3:  # an interleaved group such as "RGB" or "RGBA"
                    planes.update({c: pixels[..., i] for i, c in enumerate(name) if i < pixels.shape[2]})
                else:
                    planes[name.split(".")[-1]] = pixels
    except (RuntimeError, ValueError, OSError, TypeError) as exc:
        raise InputError(path, f"cannot read OpenEXR ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    if all(c in planes for c in "RGB"):
        return np.stack([planes["B"], planes["G"], planes["R"]], axis=-1)
    if "Y" in planes:
        return np.repeat(planes["Y"][..., None], 3, axis=2)
    raise InputError(path, f"OpenEXR file has no R, G, B (or Y) channels: {names}")


def write_exr(path: Path, linear_rgb: np.ndarray) -> None:
    """Write ``(H, W, 3)`` linear RGB as a float32 OpenEXR file (negative values kept)."""
    import OpenEXR

    rgb = np.ascontiguousarray(np.asarray(linear_rgb, dtype=np.float32))
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, {"RGB": rgb}) as exr:
        exr.write(str(path))


def write_hdr(path: Path, linear_rgb: np.ndarray) -> None:
    """Write ``(H, W, 3)`` linear RGB as a Radiance ``.hdr`` (RGBE: negative values become 0)."""
    bgr = np.ascontiguousarray(np.maximum(linear_rgb, 0.0)[..., ::-1], dtype=np.float32)
    ok, data = cv2.imencode(".hdr", bgr)  # in memory: a full disk is Python's OSError, not OpenCV's own line
    if not ok:
        raise ValueError(f"{path}: could not encode HDR")
    with open(path, "wb") as f:
        f.write(data.tobytes())
