"""Priors that settle the albedo/light ambiguity a single photo leaves open.

Geometry fixes the *shape* of the shading, not the mean skin albedo a (3 numbers) against
the light's colour and strength: (a * k, L / k) explain a photo equally well for any
positive k per channel. Three priors choose a:

1. **Near-white light** (colour): the light's uniform (DC) term is white, optionally tinted
   toward the colour cast of the scene outside the face (grey world), weight
   ``scene_weight`` in [0, 1]; 0 trusts the camera's white balance.
2. **Exposure** (brightness): the brightest skin shading on the face, the 95th percentile
   of S over the visible skin, equals ``peak_shading``; i.e. the photographer exposed
   for a face lit to about that level.
3. **Skin locus** (brightness from colour): real skin lies on a one-parameter curve in
   CIE L*a*b* (more melanin: darker *and* more saturated), so the chromaticity of a
   predicts its lightness. ``locus_weight`` in [0, 1] blends (in log luminance) between
   the exposure prior (0) and the locus (1).

The locus is a smooth curve through typical skin colours of ITA types I to VI
(L* 72 -> 30, a* 9 -> 13, b* 13 -> 20 -> 15): approximate values in the range reported
for skin colorimetry (e.g. Del Bino & Bernerd 2013), not fitted to any data set here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from hifialbedo.ops.colour import LUMA_WEIGHTS, lab_to_linear


@dataclass(frozen=True)
class AlbedoPriors:
    """Weights of the priors (see the module docstring)."""

    scene_weight: float = 0.0
    """0: the light is white; 1: the light takes the scene's grey-world colour."""
    peak_shading: float = 1.25
    """Shading at the brightest skin (95th percentile) under the exposure prior."""
    locus_weight: float = 0.5
    """0: brightness from the exposure prior only; 1: from the skin locus only."""

    def __post_init__(self) -> None:
        for name in ("scene_weight", "locus_weight"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        if self.peak_shading <= 0:
            raise ValueError(f"peak_shading must be positive, got {self.peak_shading}")


@lru_cache(maxsize=1)
def skin_locus(n: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """The skin locus: ``(log chromaticity (n, 2), luminance (n,))`` from light to dark skin.

    Log chromaticity is (log R/G, log B/G) of linear RGB, invariant to exposure.
    """
    t = np.linspace(0.0, 1.0, n)
    lab = np.stack([72 - 42 * t, 9 + 4 * t, 13 + 14 * t - 12 * t**2], axis=1)
    rgb = np.clip(lab_to_linear(lab), 1e-4, None)
    logc = np.stack([np.log(rgb[:, 0] / rgb[:, 1]), np.log(rgb[:, 2] / rgb[:, 1])], axis=1)
    return logc, rgb @ LUMA_WEIGHTS


def locus_luminance(rgb: np.ndarray) -> float:
    """Luminance the skin locus predicts for a skin colour of this chromaticity (linear RGB)."""
    rgb = np.maximum(np.asarray(rgb, dtype=np.float64), 1e-6)
    logc = np.array([np.log(rgb[0] / rgb[1]), np.log(rgb[2] / rgb[1])])
    curve, lum = skin_locus()
    d = np.linalg.norm(curve - logc, axis=1)
    return float(lum[int(np.argmin(d))])


def mean_skin_albedo(
    apparent_light: np.ndarray,
    skin_relative: np.ndarray,
    skin_apparent_shading: np.ndarray,
    priors: AlbedoPriors,
    *,
    scene_colour: np.ndarray | None = None,
) -> np.ndarray:
    """The mean skin albedo a ``(3,)``, linear RGB, chosen by the priors.

    ``apparent_light (9, 3)``: fitted SH of a * L. ``skin_relative (M, 3)``: I / (a S) on
    the fit's skin texels (about 1). ``skin_apparent_shading (M, 3)``: a * S there.
    """
    dc = np.maximum(apparent_light[0], 1e-6)  # a_c * L_c[0]: white DC light -> a proportional to it
    colour = dc / (dc @ LUMA_WEIGHTS)
    if scene_colour is not None and priors.scene_weight > 0:
        cast = np.maximum(np.asarray(scene_colour, dtype=np.float64), 1e-4)
        cast = np.clip(cast / (cast @ LUMA_WEIGHTS), 0.5, 2.0)
        colour = colour / cast**priors.scene_weight
        colour /= colour @ LUMA_WEIGHTS
    # Mean skin colour under the light actually fitted: fold in the median relative albedo.
    colour = colour * np.median(skin_relative, axis=0)
    colour /= colour @ LUMA_WEIGHTS

    peak = np.percentile(skin_apparent_shading @ LUMA_WEIGHTS, 95) * float(np.median(skin_relative @ LUMA_WEIGHTS))
    y_exposure = peak / priors.peak_shading
    y_locus = locus_luminance(colour)
    y = np.exp((1 - priors.locus_weight) * np.log(y_exposure) + priors.locus_weight * np.log(y_locus))
    return colour * y
