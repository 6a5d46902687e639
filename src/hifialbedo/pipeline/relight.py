"""``relight``: the output of ``reconstruct`` rendered under new light (diffuse + specular),
as a front view, a turntable, over the original photo, and the estimated lights as maps.

Lights live in the camera frame of the rendered view (x right, y up, z toward the camera):
the head turns on a turntable, the light stays. In the front view (yaw 0) the camera frame is
the head frame of ``mesh.obj``; over the photo it is that photo's camera, the frame of its
``lighting.json`` light, so relighting with the estimated light reproduces
``views/<photo>/render_view.png``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from hifialbedo.io.contract import LIGHTING, LIGHTING_CONVENTIONS, REPORT, stored_path
from hifialbedo.io.errors import InputError
from hifialbedo.io.images import read_photo, write_png
from hifialbedo.io.light import read_envmap, read_sh, write_hdr
from hifialbedo.io.output import atomic_output_dir, check_output_dir, write_json
from hifialbedo.io.reconstruction import ReconstructionFiles, read_reconstruction
from hifialbedo.ops import sh as sh_ops
from hifialbedo.ops.brdf import shininess_from_roughness
from hifialbedo.ops.colour import linear_to_srgb_uint8, srgb_uint8_to_linear
from hifialbedo.render.relit_render import RelitView, Specular, posed_geometry, render_relit, turntable_geometry

TURNTABLE_DEGREES = 60.0
"""A turntable spans yaw -60 .. +60 degrees (the mesh is a face, open at the back)."""
EQUIRECT_HEIGHT = 128
"""Height of the ``lighting_<photo>`` maps (width twice that)."""
LIGHT_MAP_EXPOSURE = 1.0
"""``lighting_<photo>.png`` = sRGB(clip(radiance x exposure, 0, 1)): radiance 1, the level of a
uniform environment that shades a white surface to 1, is white."""


@dataclass(frozen=True)
class RelightLight:
    """A light for relighting: ``sh (9, 3)`` linear-RGB radiance (diffuse part) and the distant
    light standing for its directional part: unit ``direction (3,)`` and ``colour (3,)``
    (specular lobe); all in the rendered view's camera frame."""

    sh: np.ndarray
    direction: np.ndarray
    colour: np.ndarray
    source: str


@dataclass(frozen=True)
class RelightConfig:
    """Options of ``relight``."""

    size: int = 512
    """Side of the front view and turntable frames, pixels."""
    turntable: int | None = None
    """Number of turntable frames (yaw from -TURNTABLE_DEGREES to +TURNTABLE_DEGREES); None: none."""
    over_photo: bool = False
    """Also render in the first photo's camera and composite over it."""
    specular: float | None = None
    """Blinn-Phong intensity for every texel; None: the folder's specular.png, else 0 (diffuse only)."""
    shininess: float | None = None
    """Blinn-Phong exponent for every texel; None: from the folder's roughness.png, else 32."""
    feather_px: float = 3.0
    """Over the photo, the face's alpha rises from 0 at the mesh outline to 1 this far inside."""


DEFAULT_SHININESS = 32.0
"""Blinn-Phong exponent when neither ``--shininess`` nor roughness.png gives one."""


def light_from_sh(sh: np.ndarray, source: str) -> RelightLight:
    """A RelightLight from SH coefficients; the specular lobe follows their dominant direction."""
    direction, colour = sh_ops.directional_part(sh)
    return RelightLight(np.asarray(sh, dtype=np.float64), direction, colour, source)


def light_from_direction(direction, colour=(1.0, 1.0, 1.0), ambient: float = 0.2) -> RelightLight:
    """A distant light (toward ``direction``, irradiance ``colour`` at normal incidence) plus a
    uniform ambient radiance; the diffuse part is its order-2 SH projection."""
    d = np.asarray(direction, dtype=np.float64)
    c = np.asarray(colour, dtype=np.float64)
    if d.shape != (3,) or not np.isfinite(d).all() or np.linalg.norm(d) < 1e-9:
        raise ValueError(f"--light-dir must be a finite, non-zero 3-vector, got {d.tolist()}")
    if c.shape != (3,) or not np.isfinite(c).all() or (c < 0).any():
        raise ValueError(f"--light-colour must be 3 finite values >= 0, got {c.tolist()}")
    if not math.isfinite(ambient) or ambient < 0:
        raise ValueError(f"--ambient must be a finite value >= 0, got {ambient}")
    d = d / np.linalg.norm(d)
    return RelightLight(
        sh_ops.directional_light(d, c, ambient), d, c, f"directional {d.round(4).tolist()} colour {c.tolist()} ambient {ambient}"
    )


def load_light(*, sh_file: Path | None = None, envmap: Path | None = None) -> RelightLight | None:
    """The light of an SH JSON file or an equirectangular map (None when neither is given)."""
    if sh_file is not None and envmap is not None:
        raise ValueError("give one light: --sh or --envmap")
    if sh_file is not None:
        return light_from_sh(read_sh(sh_file), str(sh_file))
    if envmap is not None:
        return light_from_sh(sh_ops.sh_from_equirect(read_envmap(envmap)), str(envmap))
    return None


def check_config(config: RelightConfig) -> None:
    """ValueError naming the option for out-of-range settings."""
    if not 16 <= config.size <= 4096:
        raise ValueError(f"--size must be between 16 and 4096, got {config.size}")
    if config.turntable is not None and not 1 <= config.turntable <= 3600:
        raise ValueError(f"--turntable must be between 1 and 3600, got {config.turntable}")
    if config.specular is not None and not (math.isfinite(config.specular) and config.specular >= 0):
        raise ValueError(f"--specular must be a finite value >= 0, got {config.specular}")
    if config.shininess is not None and not (math.isfinite(config.shininess) and config.shininess > 0):
        raise ValueError(f"--shininess must be a finite value > 0, got {config.shininess}")
    if not (math.isfinite(config.feather_px) and config.feather_px >= 0):
        raise ValueError(f"feather_px must be >= 0, got {config.feather_px}")


def turntable_yaws(n: int) -> np.ndarray:
    """The ``n`` yaws, degrees: evenly from -TURNTABLE_DEGREES to +TURNTABLE_DEGREES (ends
    included; yaw 0 is a frame when n is odd); ``n = 1`` gives the front view."""
    return np.zeros(1) if n == 1 else np.linspace(-TURNTABLE_DEGREES, TURNTABLE_DEGREES, n)


def specular_for(files: ReconstructionFiles, light: RelightLight, config: RelightConfig) -> Specular | None:
    """The Blinn-Phong lobe: ``config.specular`` / ``config.shininess`` when given (they override
    the maps), else per texel from the folder's specular.png / roughness.png, else intensity 0
    and shininess 32; None when the intensity is 0 everywhere (diffuse only)."""
    intensity = config.specular if config.specular is not None else files.specular if files.specular is not None else 0.0
    if config.shininess is not None:
        shininess = config.shininess
    elif files.roughness is not None:
        shininess = shininess_from_roughness(files.roughness).astype(np.float32)
    else:
        shininess = DEFAULT_SHININESS
    if not np.any(np.asarray(intensity) > 0):
        return None
    return Specular(light.direction, light.colour, intensity, shininess)


def _rgba(view: RelitView) -> np.ndarray:
    out = np.empty(view.mask.shape + (4,), np.uint8)
    out[..., :3] = linear_to_srgb_uint8(view.image)
    out[..., 3] = view.mask.astype(np.uint8) * 255
    return out


def feathered_alpha(mask: np.ndarray, feather_px: float) -> np.ndarray:
    """``(H, W)`` float32 alpha: 0 off the mask, rising linearly to 1 at ``feather_px`` pixels
    inside its outline (Euclidean distance to the nearest pixel off the mask)."""
    if feather_px <= 0:
        return mask.astype(np.float32)
    dist = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    return np.clip(dist / feather_px, 0.0, 1.0).astype(np.float32)


def _resolve_photo(photo: str, out_dir: Path, report: Path) -> Path:
    """report.json's photo: absolute, or relative to the folder (``io.contract.stored_path``);
    older folders stored it as given, relative to where reconstruct ran (tried last)."""
    path = Path(photo)
    for candidate in (out_dir / path, path, out_dir.parent / path):
        if candidate.is_file():
            return candidate
    raise InputError(report, f"the first input photo {photo} is not found (for --over-photo)")


def relight(
    out_dir: str | Path,
    relit_dir: str | Path,
    *,
    light: RelightLight | None = None,
    config: RelightConfig = RelightConfig(),
    overwrite: bool = False,
    inputs: Sequence[str | Path | None] = (),
) -> dict:
    """Render ``out_dir`` (a reconstruct output) under ``light`` (default: the first photo's
    estimated light) into ``relit_dir``, atomically; returns the summary written as relight.json.

    Writes relit.png (front view, RGBA sRGB), turntable/frame_000.png... (with
    ``config.turntable``), photo_view.png and over_photo.png (with ``config.over_photo``),
    lighting_<photo>.png / .hdr (each input's estimated light as an equirectangular map),
    light.json (the light used, readable by ``--sh``) and relight.json. Every input is read
    and checked before anything is written (``InputError`` / ``ValueError``). ``relit_dir``
    may not be, contain or lie inside ``out_dir``, the photo of ``over_photo`` or one of
    ``inputs`` (the light's files).
    """
    out_dir, relit_dir = Path(out_dir), Path(relit_dir)
    check_config(config)
    inputs = [out_dir, *inputs]
    check_output_dir(relit_dir, overwrite=overwrite, inputs=inputs)
    files = read_reconstruction(out_dir)
    if light is None:
        first = files.lights[0]
        light = light_from_sh(first.sh, f"estimated light of {first.photo or first.view} ({out_dir / LIGHTING})")
    specular = specular_for(files, light, config)
    photo = pose = None
    if config.over_photo:
        report = out_dir / REPORT
        pose = files.pose(0)
        photo = read_photo(_resolve_photo(str(files.inputs[0]["photo"]), out_dir, report), max_side=1 << 30)
        inputs.append(photo.path)
        if photo.pixels.shape[:2] != (pose.size[1], pose.size[0]):
            raise InputError(
                photo.path,
                f"is {photo.pixels.shape[1]}x{photo.pixels.shape[0]} px, reconstruct saw {pose.size[0]}x{pose.size[1]} px",
            )

    written: list[str] = []
    with atomic_output_dir(relit_dir, overwrite=overwrite, inputs=inputs) as tmp:
        front = render_relit(turntable_geometry(files.vertices, 0.0, config.size), files.albedo, light.sh, specular)
        write_png(tmp / "relit.png", _rgba(front))
        written.append("relit.png")
        yaws = turntable_yaws(config.turntable) if config.turntable else np.zeros(0)
        if len(yaws):
            (tmp / "turntable").mkdir()
            for i, yaw in enumerate(yaws):
                view = render_relit(
                    turntable_geometry(files.vertices, math.radians(yaw), config.size), files.albedo, light.sh, specular
                )
                write_png(tmp / "turntable" / f"frame_{i:03d}.png", _rgba(view))
            written.append(f"turntable/ ({len(yaws)} frames)")
        if photo is not None and pose is not None:
            w, h = pose.working_size
            geometry = posed_geometry(files.vertices, pose.rotation, pose.centre, pose.scale, (h, w))
            view = render_relit(geometry, files.albedo, light.sh, specular)
            rgba = _rgba(view)
            image, mask = view.image, view.mask.astype(np.float32)
            ow, oh = pose.size
            if (ow, oh) != (w, h):  # the photo was downscaled for the work: upsample back, as views/
                rgba = cv2.resize(rgba, (ow, oh), interpolation=cv2.INTER_LINEAR)
                image = cv2.resize(image, (ow, oh), interpolation=cv2.INTER_LINEAR)
                mask = cv2.resize(mask, (ow, oh), interpolation=cv2.INTER_LINEAR)
            alpha = feathered_alpha(mask > 0.5, config.feather_px)[..., None]
            base = srgb_uint8_to_linear(photo.pixels)
            write_png(tmp / "photo_view.png", rgba)
            write_png(tmp / "over_photo.png", linear_to_srgb_uint8(alpha * image + (1.0 - alpha) * base))
            written += ["photo_view.png", "over_photo.png"]
        for pl in files.lights:
            env = sh_ops.equirect_from_sh(pl.sh, EQUIRECT_HEIGHT, 2 * EQUIRECT_HEIGHT)
            write_hdr(tmp / f"lighting_{pl.view}.hdr", env)
            write_png(tmp / f"lighting_{pl.view}.png", linear_to_srgb_uint8(env * LIGHT_MAP_EXPOSURE))
            written += [f"lighting_{pl.view}.png", f"lighting_{pl.view}.hdr"]
        spec_info = None
        if specular is not None:
            spec_info = {
                "direction": light.direction.tolist(),
                "colour_linear_rgb": light.colour.tolist(),
                "intensity": config.specular if config.specular is not None else "specular.png",
                "shininess": config.shininess
                if config.shininess is not None
                else "roughness.png (shininess = 2 / roughness^4 - 2)"
                if files.roughness is not None
                else DEFAULT_SHININESS,
            }
        write_json(
            tmp / "light.json",
            {"source": light.source, "sh": light.sh.tolist(), "specular": spec_info, "conventions": LIGHTING_CONVENTIONS},
        )
        summary = {
            "reconstruction": stored_path(out_dir, relit_dir),
            "light": light.source,
            "config": asdict(config),
            "turntable_yaw_degrees": yaws.tolist(),
            "light_map": {
                "layout": "equirectangular, camera frame of that photo: centre = +z (toward the camera), "
                "top row = +y (up), a quarter width right of centre = +x (image right), edges = -z (behind the head)",
                "png": f"sRGB of clip(radiance x {LIGHT_MAP_EXPOSURE}, 0, 1)",
                "hdr": "linear-RGB radiance (negative SH ringing stored as 0)",
            },
            "files": written + ["light.json", "relight.json"],
        }
        write_json(tmp / "relight.json", summary)
    return summary
