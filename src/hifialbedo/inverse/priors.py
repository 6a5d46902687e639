"""Priors that settle the albedo/light ambiguity a single photo leaves open.

Geometry fixes the *shape* of the shading, not the mean skin albedo a (3 numbers) against
the light's colour and strength: (a * k, L / k) explain a photo equally well for any
positive k per channel. The priors choose a:

1. **Skin locus and light colour** (colour): real skin lies near a one-parameter curve
   (more melanin: darker *and* more saturated), and real lights near the Planckian locus
   (one parameter, the colour temperature T). In log chromaticity (log R/G, log B/G) the
   apparent colour of the skin is the sum of the two: c = skin(t) + cast(T). Their
   directions differ by about 30 degrees, so both t and T are found by least squares,
   with a weak pull of T toward daylight (``daylight_weight``). The albedo keeps the
   observed chromaticity less the cast (individual skin colour stays). Optionally the
   cast is blended toward the scene's grey world (``scene_weight``).
2. **Exposure** (brightness): the brightest skin shading on the face, the 95th percentile
   of S over the visible skin, equals ``peak_shading``.
3. **Skin locus** (brightness from colour): the locus position t predicts the lightness.
   ``locus_weight`` in [0, 1] blends (in log luminance) between the exposure prior (0)
   and the locus (1).

The locus is a smooth curve through typical skin colours of ITA types I to VI
(L* 72 -> 30, a* 9 -> 13, b* 13 -> 17 -> 15; ``ops.colour.skin_locus_lab``): approximate
values in the range reported for skin colorimetry (e.g. Del Bino & Bernerd 2013).
``peak_shading``, ``locus_weight`` and ``daylight_weight`` were chosen on the relit-face
benchmark (``hifialbedo benchmark``); see README.md, "Benchmark".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from hifialbedo.inverse.eyes import SCLERA_LOG_CHROMA, ScleraCue
from hifialbedo.ops.colour import LUMA_WEIGHTS, lab_to_linear, log_chromaticity, skin_locus_lab, white_of_temperature

DAYLIGHT_MIRED = 1e6 / 6504.0
SCLERA_GOOD_SPREAD = 0.05  # log-chromaticity spread of clean eye-white pixels
SCLERA_MAX_SPREAD = 0.2  # beyond this the "eye whites" are lids, lashes or glare: ignored


@dataclass(frozen=True)
class AlbedoPriors:
    """Weights of the priors (see the module docstring)."""

    scene_weight: float = 0.0
    """Weight of the scene's grey world (the mean colour around the face) as a witness of
    the light's colour, relative to the skin's (see ``solve_skin_and_light``); 0: unused."""
    sclera_weight: float = 4.0
    """Weight of the eye whites' colour as a witness of the light's colour (scaled down
    when the eye-white pixels disagree among themselves); 0: unused."""
    peak_shading: float = 1.1
    """Shading at the brightest skin (95th percentile) under the exposure prior."""
    locus_weight: float = 0.0
    """0: brightness from the exposure prior only; 1: from the skin locus only."""
    daylight_weight: float = 1.0
    """Pull of the light's colour temperature toward daylight (6504 K), per 100 mired of
    departure, in units of squared log chromaticity error x 100; 0: no pull; large: the
    light is taken as white (the camera's white balance is trusted)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.locus_weight <= 1.0:
            raise ValueError(f"locus_weight must be in [0, 1], got {self.locus_weight}")
        for name in ("scene_weight", "sclera_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.peak_shading <= 0:
            raise ValueError(f"peak_shading must be positive, got {self.peak_shading}")
        if self.daylight_weight < 0:
            raise ValueError(f"daylight_weight must be >= 0, got {self.daylight_weight}")


@lru_cache(maxsize=1)
def skin_locus_samples(n: int = 281) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The skin locus (``ops.colour.skin_locus_lab``) sampled for t in [-0.2, 1.2]: ``(t (n,), log chromaticity (n, 2),
    luminance (n,))``, from light to dark skin."""
    t = np.linspace(-0.2, 1.2, n)
    rgb = np.clip(lab_to_linear(skin_locus_lab(t)), 1e-4, None)
    return t, log_chromaticity(rgb), rgb @ LUMA_WEIGHTS


@lru_cache(maxsize=1)
def planckian_casts(n: int = 121) -> tuple[np.ndarray, np.ndarray]:
    """Light colours along the Planckian locus, 2500..12000 K: ``(mired (n,), log chromaticity (n, 2))``
    as recorded by a camera balanced for daylight."""
    mired = np.linspace(1e6 / 12000.0, 1e6 / 2500.0, n)
    casts = np.array([log_chromaticity(white_of_temperature(1e6 / m)) for m in mired])
    return mired, casts


def solve_skin_and_light(
    observed_rgb: np.ndarray,
    daylight_weight: float,
    witnesses: list[tuple[np.ndarray, float]] | None = None,
) -> tuple[float, float, np.ndarray]:
    """Split an apparent skin colour (linear RGB ``(3,)``, = albedo x light colour) into a
    skin-locus position and a Planckian light: returns ``(t, kelvin, cast (2,))``.

    Least squares in log chromaticity over a grid of (t, T):
    |c - skin(t) - cast(T)|^2 + sum_w weight * |cast(T) - witness|^2
    + ``daylight_weight / 100 * ((mired(T) - mired(6504 K)) / 100)^2``, where each witness
    is the cast another cue sees (the eye whites, the scene), log chromaticity ``(2,)``.
    """
    c = log_chromaticity(observed_rgb)
    t, locus, _ = skin_locus_samples()
    mired, casts = planckian_casts()
    resid = c[None, None, :] - locus[:, None, :] - casts[None, :, :]
    cost = (resid**2).sum(axis=-1) + daylight_weight / 100.0 * ((mired[None, :] - DAYLIGHT_MIRED) / 100.0) ** 2
    for witness, weight in witnesses or []:
        cost = cost + weight * ((casts - np.asarray(witness)[None, :]) ** 2).sum(axis=-1)[None, :]
    i, j = np.unravel_index(int(np.argmin(cost)), cost.shape)
    return float(t[i]), float(1e6 / mired[j]), casts[j]


def locus_luminance_at(t: float) -> float:
    """Luminance of the skin locus at position t."""
    ts, _, lum = skin_locus_samples()
    return float(np.interp(t, ts, lum))


def mean_skin_albedo(
    apparent_light: np.ndarray,
    skin_relative: np.ndarray,
    skin_apparent_shading: np.ndarray,
    priors: AlbedoPriors,
    *,
    scene_colour: np.ndarray | None = None,
    sclera: ScleraCue | None = None,
) -> np.ndarray:
    """The mean skin albedo a ``(3,)``, linear RGB, chosen by the priors.

    ``apparent_light (9, 3)``: fitted SH of a * L. ``skin_relative (M, 3)``: I / (a S) on
    the fit's skin texels (about 1). ``skin_apparent_shading (M, 3)``: a * S there.
    ``scene_colour (3,)``: mean linear colour around the face; ``sclera``: the eye whites.
    """
    dc = np.maximum(apparent_light[0], 1e-6)  # a_c * L_c[0]
    # Mean skin colour under the light actually fitted: fold in the median relative albedo.
    apparent = dc * np.median(skin_relative, axis=0)
    witnesses = []
    if scene_colour is not None and priors.scene_weight > 0:
        witnesses.append((log_chromaticity(np.maximum(np.asarray(scene_colour, dtype=np.float64), 1e-4)), priors.scene_weight))
    if sclera is not None and priors.sclera_weight > 0 and sclera.spread < SCLERA_MAX_SPREAD:
        trust = min(1.0, (SCLERA_GOOD_SPREAD / max(sclera.spread, 1e-6)) ** 2)
        witnesses.append((sclera.log_chroma - SCLERA_LOG_CHROMA, priors.sclera_weight * trust))
    t, _, cast = solve_skin_and_light(apparent, priors.daylight_weight, witnesses)
    logc = log_chromaticity(apparent) - cast
    colour = np.array([np.exp(logc[0]), 1.0, np.exp(logc[1])])
    colour /= colour @ LUMA_WEIGHTS

    peak = np.percentile(skin_apparent_shading @ LUMA_WEIGHTS, 95) * float(np.median(skin_relative @ LUMA_WEIGHTS))
    y_exposure = peak / priors.peak_shading
    y_locus = locus_luminance_at(t)
    y = np.exp((1 - priors.locus_weight) * np.log(y_exposure) + priors.locus_weight * np.log(y_locus))
    return colour * y
