"""Robust spherical-harmonics lighting and Lambertian albedo from one unwrapped photo.

Image formation (linear RGB): I_c = A_c * S_c(n), S_c = shading_basis(n) @ L[:, c]
(``ops.sh``). Over the skin, A varies little about its mean colour a, so
I_c ~ a_c * S_c(n) = s_c(n): the *apparent* light l_c = a_c * L_c is found by robust,
weighted least squares over visible skin texels, and the relative albedo I_c / s_c(n) by
division. What geometry cannot give, a (the mean skin albedo: its colour and its
brightness, against the light's colour and strength), comes from the priors in
``AlbedoPriors``; see ``inverse.priors``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hifialbedo.inverse.cues import PhotoCues
from hifialbedo.inverse.priors import AlbedoPriors, CueModel, MeanAlbedo, choose_mean_albedo
from hifialbedo.ops.colour import LUMA_WEIGHTS, luminance
from hifialbedo.ops.sh import shading_basis, shading_rows
from hifialbedo.ops.vectors import row_max, row_norm


@dataclass(frozen=True)
class LightingConfig:
    """How the light is fitted."""

    fit_texels: int = 12000
    """Skin texels sampled (deterministically) for the fit; more adds time, not accuracy."""
    iterations: int = 6
    """Iteratively reweighted least-squares rounds."""
    robust_scale: float = 2.5
    """Cauchy weight width, in robust standard deviations of the relative residual."""
    ridge: float = 1e-2
    """Tikhonov weight on the second-order coefficients (the face sees half the sphere)."""
    min_confidence: float = 0.3
    """Texels below this unwrap confidence are left out of the fit."""
    outlier_sigmas: float = 3.0
    """Texels whose relative residual exceeds this many robust sigmas lose confidence:
    highlights (above), cast shadows (below), and hair, beard or glasses (colour)."""
    priors: AlbedoPriors = field(default_factory=AlbedoPriors)


@dataclass(frozen=True)
class LightingEstimate:
    """One photo's light and albedo on the texels of a UV layout."""

    sh: np.ndarray  # (9, 3) radiance SH coefficients, linear RGB, camera frame (ops.sh)
    albedo: np.ndarray  # (N, 3) linear RGB, clipped to [0, 1]
    shading: np.ndarray  # (N, 3) S_c(n) at each texel
    confidence: np.ndarray  # (N,) unwrap confidence lowered at outliers
    mean_albedo: np.ndarray  # (3,) the prior-chosen mean skin albedo a
    fit_residual: float  # robust sigma of the relative luminance residual over the skin
    outlier_fraction: float  # share of skin texels flagged as highlight, shadow or occluder
    prior: MeanAlbedo | None = None  # how the priors chose the mean skin albedo (inverse.priors)


def _weighted_ridge(basis: np.ndarray, target: np.ndarray, weights: np.ndarray, ridge: float) -> np.ndarray:
    bw = basis * weights[:, None]
    lhs = bw.T @ basis
    reg = np.zeros(9)
    reg[4:] = ridge * np.trace(lhs) / 9.0
    return np.linalg.solve(lhs + np.diag(reg) + 1e-9 * np.eye(9), bw.T @ target)


def _robust_sigma(x: np.ndarray) -> float:
    med = np.median(x)
    return float(1.4826 * np.median(np.abs(x - med))) + 1e-6


def estimate_lighting(
    colour: np.ndarray,
    normals: np.ndarray,
    confidence: np.ndarray,
    skin: np.ndarray,
    *,
    config: LightingConfig = LightingConfig(),
    cues: PhotoCues | None = None,
    cue_model: CueModel | None = None,
) -> LightingEstimate:
    """Fit SH light and divide it out.

    colour ``(N, 3)`` linear RGB, normals ``(N, 3)`` unit (camera frame), confidence ``(N,)``
    in [0, 1], skin ``(N,)`` bool (texels trusted for lighting). ``cues``: the photo's scene
    and eye whites (``inverse.cues``), references for the mean skin albedo (``inverse.priors``);
    ``cue_model``: their calibration (None: the priors' own).
    """
    lum = luminance(colour)
    usable = skin & (confidence >= config.min_confidence) & (lum > 1e-3) & (row_max(colour) < 0.98)
    idx = np.flatnonzero(usable)
    if idx.size < 50:
        raise ValueError("too few visible skin texels to estimate the lighting")
    if idx.size > config.fit_texels:
        idx = np.sort(np.random.default_rng(0).choice(idx, config.fit_texels, replace=False))
    basis = shading_basis(normals[idx].astype(np.float64))
    y = lum[idx].astype(np.float64)
    prior_w = confidence[idx].astype(np.float64)

    # IRLS on luminance with Cauchy weights on the relative residual: highlights, cast
    # shadows, stubble and glasses frames are few and far from the fit, so they fade out.
    w = prior_w.copy()
    for _ in range(config.iterations):
        coef = _weighted_ridge(basis, y, w, config.ridge)
        s = np.maximum(basis @ coef, 1e-4)
        r = y / s - 1.0
        sigma = _robust_sigma(r)
        w = prior_w / (1.0 + (r / (config.robust_scale * sigma)) ** 2)
    # Per-channel apparent light with the final weights: keeps coloured directional light
    # (warm key, cool fill) while the grey fit chose which texels to trust.
    apparent = np.stack([_weighted_ridge(basis, colour[idx, c].astype(np.float64), w, config.ridge) for c in range(3)], axis=1)

    # Full resolution in float32: these few passes over every texel dominate the cost.
    s_all = np.maximum(shading_rows(normals, apparent), np.float32(1e-4))  # (N, 3) apparent shading = a * S
    relative = colour / s_all  # ~1 on average skin
    rel_lum = relative @ LUMA_WEIGHTS.astype(np.float32)
    skin_rel = rel_lum[idx]
    med = float(np.median(skin_rel))
    sigma = _robust_sigma(skin_rel)
    chroma = relative / np.maximum(rel_lum[:, None], np.float32(1e-6))
    skin_chroma = np.median(chroma[idx], axis=0).astype(np.float32)
    d_chroma = row_norm(chroma - skin_chroma)
    chroma_sigma = _robust_sigma(d_chroma[idx]) + 1e-3

    k = config.outlier_sigmas
    excess_lum = np.maximum(np.abs(rel_lum - med) / sigma - k, 0.0)
    excess_chroma = np.maximum(d_chroma / chroma_sigma - 2 * k, 0.0)
    # Colour outliers only count on skin: lips, brows and eyes differ by nature.
    outlier_weight = np.exp(-0.5 * (excess_lum**2 + skin * excess_chroma**2))
    s_lum = s_all @ LUMA_WEIGHTS.astype(np.float32)
    shading_ok = np.clip(s_lum / (0.15 * np.median(s_lum[idx])), 0.0, 1.0)
    new_conf = (confidence * outlier_weight * shading_ok).astype(np.float32)

    # What the photo shows of the skin: its mean colour under the fitted light, and at its
    # brightest shading; the priors choose the albedo that mean stands for.
    median_relative = np.median(relative[idx], axis=0).astype(np.float64)
    observed = s_all[idx].mean(axis=0).astype(np.float64) * median_relative
    peak = float(np.percentile(s_all[idx] @ LUMA_WEIGHTS.astype(np.float32), 95)) * float(median_relative @ LUMA_WEIGHTS)
    prior = choose_mean_albedo(observed, peak, cues, config.priors, model=cue_model)
    a = prior.albedo / np.maximum(median_relative, 1e-6)
    light = apparent / a[None, :]
    a32 = a.astype(np.float32)
    shading = s_all / a32
    albedo = np.clip(relative * a32, 0.0, 1.0)
    skin_all = skin & (confidence > 0)
    flagged = skin_all & (outlier_weight < 0.5)
    return LightingEstimate(
        sh=light,
        albedo=albedo,
        shading=shading,
        confidence=new_conf,
        mean_albedo=a,
        fit_residual=sigma,
        outlier_fraction=float(flagged.sum() / max(skin_all.sum(), 1)),
        prior=prior,
    )
