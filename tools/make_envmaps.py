"""Build the environment maps shipped with ``hifialbedo serve`` (src/hifialbedo/web/envmaps/*.hdr).

Procedural, made here (no third-party images): small equirectangular maps of linear-RGB
radiance in the layout of ``ops.sh.equirect_directions`` (centre = +z, toward the camera;
top row = +y; a quarter width right of centre = +x), written as Radiance .hdr by the
project's own writer. Each is scaled so that a white frontal surface shades to about 1.

Usage: python tools/make_envmaps.py [OUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from hifialbedo.io.light import write_hdr
from hifialbedo.ops.sh import equirect_directions, sh_from_equirect, sh_shading

HEIGHT, WIDTH = 64, 128


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def _disc(dirs: np.ndarray, centre, radius_deg: float, softness_deg: float = 2.0) -> np.ndarray:
    """A soft-edged disc of directions within ``radius_deg`` of ``centre``: (H, W) in [0, 1]."""
    angle = np.degrees(np.arccos(np.clip(dirs @ _unit(centre), -1.0, 1.0)))
    return np.clip((radius_deg + softness_deg - angle) / (2.0 * softness_deg), 0.0, 1.0)


def studio(dirs: np.ndarray) -> np.ndarray:
    """A key softbox up and to the left, a weaker fill on the right, a rim light behind, grey walls."""
    env = np.full(dirs.shape, 0.04)
    env += _disc(dirs, (-0.6, 0.45, 0.65), 22.0, 4.0)[..., None] * np.array([4.0, 3.9, 3.7])
    env += _disc(dirs, (0.8, 0.05, 0.55), 18.0, 5.0)[..., None] * np.array([1.1, 1.15, 1.25])
    env += _disc(dirs, (0.2, 0.6, -0.75), 12.0, 3.0)[..., None] * np.array([2.0, 2.0, 2.0])
    return env


def sky(dirs: np.ndarray) -> np.ndarray:
    """Clear daylight: a blue sky brighter at the horizon, a small sun up and to the right, dull ground."""
    y = dirs[..., 1]
    up = np.clip(y, 0.0, 1.0)[..., None]
    sky_colour = (1.0 - up) * np.array([0.55, 0.65, 0.8]) + up * np.array([0.15, 0.3, 0.7])
    ground = np.array([0.12, 0.1, 0.08]) * np.clip(1.0 + y, 0.3, 1.0)[..., None]
    env = np.where((y >= 0.0)[..., None], sky_colour, ground)
    env += _disc(dirs, (0.45, 0.6, 0.65), 4.0, 1.5)[..., None] * np.array([300.0, 270.0, 220.0])
    return env


def sunset(dirs: np.ndarray) -> np.ndarray:
    """A low orange sun on the left, a sky from orange at the horizon to violet blue, dark ground."""
    y = dirs[..., 1]
    up = np.clip(y, 0.0, 1.0)[..., None] ** 0.5
    sky_colour = (1.0 - up) * np.array([0.9, 0.45, 0.2]) + up * np.array([0.12, 0.1, 0.3])
    ground = np.array([0.05, 0.035, 0.03])
    env = np.where((y >= 0.0)[..., None], sky_colour, ground)
    env += _disc(dirs, (-0.85, 0.12, 0.5), 4.0, 2.0)[..., None] * np.array([160.0, 75.0, 25.0])
    return env


MAPS = {"studio": studio, "sky": sky, "sunset": sunset}


def build(out_dir: Path) -> list[Path]:
    dirs, _ = equirect_directions(HEIGHT, WIDTH)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in MAPS.items():
        env = make(dirs)
        # Scale so the brightest shading of a white surface over the front hemisphere is about 1.2.
        front = np.array([[0.0, 0.0, 1.0], [-0.5, 0.3, 0.8], [0.5, 0.3, 0.8], [0.0, 0.6, 0.8], [-0.8, 0.1, 0.6], [0.8, 0.1, 0.6]])
        front /= np.linalg.norm(front, axis=1, keepdims=True)
        peak = float(sh_shading(front, sh_from_equirect(env)).mean(axis=1).max())
        env = env * (1.2 / peak)
        path = out_dir / f"{name}.hdr"
        write_hdr(path, env.astype(np.float32))
        written.append(path)
    return written


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1]
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "src" / "hifialbedo" / "web" / "envmaps"
    for p in build(target):
        print(f"wrote {p} ({p.stat().st_size} bytes)")
