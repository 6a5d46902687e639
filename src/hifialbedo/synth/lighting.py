"""Lights for synthetic photos: white balance, random SH environments, a coloured
directional light plus ambient, and procedural HDR environment maps projected to SH.

All colours are linear RGB (sRGB primaries); SH coefficients ``(9, 3)`` are radiance
coefficients in the camera frame (x right, y up, z toward the camera) with the basis and
normalisation of ``ops.sh`` (a uniform white environment of radiance 1 gives shading 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from hifialbedo.ops.colour import LUMA_WEIGHTS, white_of_temperature
from hifialbedo.ops.sh import (
    SH_CONSTANTS,
    directional_light,
    dominant_direction,
    equirect_directions,
    sh_from_equirect,
    sh_shading,
    uniform_light,
)

ENV_HEIGHT = 32  # rows of the procedural environment maps (width = 2 x height)


def balanced_white(kelvin: float, white_balance: float) -> np.ndarray:
    """Colour ``(3,)`` (luminance 1) of a light of ``kelvin`` after a camera white balance that
    removes the fraction ``white_balance`` of its cast (0: none, ``ops.colour.white_of_temperature``,
    a camera balanced for 6504 K; 1: all, neutral). The camera's white is the temperature
    ``6504^(1-f) kelvin^f`` (von Kries scaling in linear sRGB; blackbody colours).

    >>> balanced_white(3000, 1.0).round(6).tolist()
    [1.0, 1.0, 1.0]
    >>> bool(np.allclose(balanced_white(3000, 0.0), white_of_temperature(3000)))
    True
    """
    camera = math.exp((1.0 - white_balance) * math.log(6504.0) + white_balance * math.log(kelvin))
    rgb = white_of_temperature(kelvin) / white_of_temperature(camera)
    return rgb / float(rgb @ LUMA_WEIGHTS)


@dataclass(frozen=True)
class SynthLight:
    """One photo's light. ``sh`` is what the diffuse shading uses (S = sh_shading(n, sh));
    ``direction`` and ``colour`` drive the specular lobe (the dominant light)."""

    kind: str  # "sh", "directional" or "envmap"
    sh: np.ndarray  # (9, 3) radiance coefficients, linear RGB, camera frame
    direction: np.ndarray  # (3,) unit, camera frame, toward the dominant light
    colour: np.ndarray  # (3,) linear RGB: the dominant light's shading at normal incidence
    temperature: float  # kelvin, of the dominant light
    white_balance: float  # fraction of the cast removed by the camera
    params: dict = field(default_factory=dict)  # kind-specific description (JSON-able)

    def scaled(self, k: float) -> SynthLight:
        """The same light, ``k`` times brighter (exposure)."""
        return replace(self, sh=self.sh * k, colour=self.colour * k)

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "sh": self.sh.tolist(),
            "direction": self.direction.tolist(),
            "colour": self.colour.tolist(),
            "temperature": self.temperature,
            "white_balance": self.white_balance,
            "params": self.params,
        }


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _front_direction(rng: np.random.Generator, *, min_z: float = 0.2, min_y: float = -0.35) -> np.ndarray:
    """A random direction toward the camera's side, more often from above."""
    while True:
        d = rng.normal(size=3)
        d[1] = abs(d[1]) * (1.0 if rng.random() < 0.8 else -1.0)
        d = _unit(d)
        if d[2] >= min_z and d[1] >= min_y:
            return d


def _sphere_samples(n: int = 400) -> np.ndarray:
    i = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * i / n)
    theta = math.pi * (1 + 5**0.5) * i
    return np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], axis=1)


def _keep_positive(sh: np.ndarray, *, floor: float = 0.02) -> np.ndarray:
    """Shrink the non-constant bands until the shading of every camera-facing normal is at
    least ``floor`` x the constant term (no black-hole lights)."""
    normals = _sphere_samples()
    normals = normals[normals[:, 2] > -0.2]
    sh = sh.copy()
    for _ in range(20):
        s = sh_shading(normals, sh)
        if s.min() >= floor * sh[0].min() * SH_CONSTANTS[0]:
            break
        sh[1:] *= 0.85
    return sh


def random_sh_light(rng: np.random.Generator, *, temperature: float, white_balance: float) -> SynthLight:
    """A random smooth SH environment: a constant term, a first-order lobe toward a random
    (front, mostly upper) direction of relative strength 0.2..0.95, and a random second order;
    slightly different colours per band."""
    colour = balanced_white(temperature, white_balance)
    d = _front_direction(rng, min_z=-0.1)
    a1 = float(rng.uniform(0.2, 0.95))
    sh = np.zeros((9, 3))
    sh[0] = 1.0 / SH_CONSTANTS[0]
    band1 = a1 / ((2.0 / 3.0) * SH_CONSTANTS[1]) * np.array([d[1], d[2], d[0]])
    sh[1:4] = band1[:, None]
    sh[4:] = rng.normal(0.0, 1.0, (5, 1)) * float(rng.uniform(0.05, 0.3)) / (0.25 * SH_CONSTANTS[2])
    tint = 1.0 + rng.normal(0.0, 0.05, (9, 3))
    tint[0] = 1.0
    sh = sh * tint * colour
    sh = _keep_positive(sh)
    strength = np.linalg.norm(sh[1:4], axis=0) * (2.0 / 3.0) * SH_CONSTANTS[1]
    return SynthLight("sh", sh, dominant_direction(sh), strength, temperature, white_balance, {"first_order": a1})


def directional_plus_ambient(
    rng: np.random.Generator, *, temperature: float, white_balance: float, ambient_temperature: float
) -> SynthLight:
    """A coloured distant light (shading 1 at normal incidence) plus a uniform ambient of
    relative strength 0.1..0.6 with its own colour temperature."""
    d = _front_direction(rng)
    colour = balanced_white(temperature, white_balance)
    ambient = float(rng.uniform(0.1, 0.6))
    ambient_colour = balanced_white(ambient_temperature, white_balance) * ambient
    sh = _keep_positive(directional_light(d, colour) + uniform_light(ambient_colour))
    params = {"ambient": ambient, "ambient_temperature": ambient_temperature}
    return SynthLight("directional", sh, d, colour, temperature, white_balance, params)


def procedural_envmap(
    rng: np.random.Generator, *, temperature: float, white_balance: float, sky_temperature: float, height: int = ENV_HEIGHT
) -> tuple[np.ndarray, dict]:
    """A procedural equirectangular HDR environment ``(H, 2H, 3)`` (linear RGB radiance,
    layout of ``ops.sh.equirect_directions``): a sky gradient over a darker ground, and one
    or two bright blobs (lamps, sun, windows), the first toward the front. Returns the map
    and its description (blob directions, sizes, powers; the first blob is the brightest)."""
    dirs, solid_angle = equirect_directions(height, 2 * height)
    up = dirs[..., 1]
    sky_colour = balanced_white(sky_temperature, white_balance)
    ground_colour = np.array(rng.uniform(0.5, 1.0, 3)) * sky_colour
    sky = float(rng.uniform(0.15, 0.5))
    ground = sky * float(rng.uniform(0.1, 0.5))
    horizon = 1.0 / (1.0 + np.exp(-up / 0.08))
    sky_radiance = horizon * sky * (0.7 + 0.3 * up.clip(0, 1))
    env = sky_radiance[..., None] * sky_colour + ((1 - horizon) * ground)[..., None] * ground_colour
    blobs = []
    n_blobs = 1 if rng.random() < 0.6 else 2
    for k in range(n_blobs):
        d = _front_direction(rng) if k == 0 else _unit(rng.normal(size=3) * np.array([1.0, 0.6, 1.0]) + np.array([0, 0.3, 0]))
        width = math.radians(float(rng.uniform(4.0, 25.0)))  # angular radius (1 sigma)
        kappa = 1.0 / width**2
        power = float(rng.uniform(1.5, 6.0)) if k == 0 else float(rng.uniform(0.3, 1.5))  # irradiance (shading) it gives
        t = temperature if k == 0 else float(rng.uniform(3000.0, 7500.0))
        lobe = np.exp(kappa * (dirs @ d - 1.0))
        lobe *= math.pi * power / float((lobe * solid_angle).sum())
        env = env + lobe[..., None] * balanced_white(t, white_balance)
        blobs.append({"direction": d.tolist(), "angular_radius_deg": math.degrees(width), "power": power, "temperature": t})
    return env.astype(np.float64), {"sky": sky, "ground": ground, "sky_temperature": sky_temperature, "blobs": blobs}


def envmap_light(rng: np.random.Generator, *, temperature: float, white_balance: float, sky_temperature: float) -> SynthLight:
    """A ``procedural_envmap`` projected to 9 SH coefficients; its first blob is the specular light."""
    env, params = procedural_envmap(rng, temperature=temperature, white_balance=white_balance, sky_temperature=sky_temperature)
    sh = sh_from_equirect(env)
    blob = params["blobs"][0]
    colour = blob["power"] * balanced_white(temperature, white_balance)
    return SynthLight("envmap", sh, np.array(blob["direction"]), colour, temperature, white_balance, params)


def sample_synth_light(
    rng: np.random.Generator,
    kind: str,
    *,
    temperature_range: tuple[float, float] = (3000.0, 7500.0),
    white_balance_range: tuple[float, float] = (0.5, 1.0),
) -> SynthLight:
    """A random light of the given kind ("sh", "directional" or "envmap"), brightness not
    yet normalised (the renderer sets the exposure)."""
    temperature = float(rng.uniform(*temperature_range))
    wb = float(rng.uniform(*white_balance_range))
    if kind == "sh":
        return random_sh_light(rng, temperature=temperature, white_balance=wb)
    if kind == "directional":
        return directional_plus_ambient(
            rng, temperature=temperature, white_balance=wb, ambient_temperature=float(rng.uniform(5000.0, 9000.0))
        )
    if kind == "envmap":
        return envmap_light(rng, temperature=temperature, white_balance=wb, sky_temperature=float(rng.uniform(5500.0, 10000.0)))
    raise ValueError(f"unknown light kind {kind!r}")
