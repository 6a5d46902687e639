"""The lights the page offers: the environment maps shipped in ``web/envmaps/`` and each
photo's estimated light, as the page's shader takes them.

A light is ``{"sh": 9x3, "direction": 3, "colour": 3}``: SH radiance coefficients (linear
RGB, ``ops.sh``'s basis) for the diffuse part, and the distant light standing for their
directional part (``ops.sh.directional_part``) for the Blinn-Phong lobe, exactly what
``hifialbedo relight`` renders with (``--envmap FILE`` and its default light). The page does
no SH projection of its own: one implementation, here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from hifialbedo.io.light import read_envmap
from hifialbedo.ops import sh as sh_ops
from hifialbedo.ops.colour import linear_to_srgb_uint8

ENVMAP_DIR = Path(__file__).resolve().parent / "envmaps"
ENVMAP_LABELS = {"studio": "Studio", "sky": "Daylight", "sunset": "Sunset"}
"""The shipped maps (made by ``tools/make_envmaps.py``), in the order the page lists them."""


def light_dict(sh: np.ndarray) -> dict:
    """The page's light for SH coefficients ``(9, 3)`` (module docstring)."""
    sh = np.asarray(sh, dtype=np.float64)
    direction, colour = sh_ops.directional_part(sh)
    return {"sh": sh.tolist(), "direction": direction.tolist(), "colour": colour.tolist()}


@dataclass(frozen=True)
class EnvMap:
    name: str
    label: str
    path: Path
    light: dict
    preview_png: bytes  # sRGB thumbnail of the map, scaled for display


def _preview(env: np.ndarray) -> bytes:
    shown = linear_to_srgb_uint8(env / max(2.0 * float(env.mean()), 1e-6))
    ok, png = cv2.imencode(".png", cv2.cvtColor(shown, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError("could not encode an environment map preview")
    return png.tobytes()


@lru_cache(maxsize=1)
def envmaps() -> tuple[EnvMap, ...]:
    """The shipped environment maps with their lights (computed once)."""
    out = []
    for name, label in ENVMAP_LABELS.items():
        path = ENVMAP_DIR / f"{name}.hdr"
        env = read_envmap(path)
        out.append(EnvMap(name, label, path, light_dict(sh_ops.sh_from_equirect(env)), _preview(env)))
    return tuple(out)
