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
from hifialbedo.inverse.priors import AlbedoPriors, CueModel, LightShape, MeanAlbedo, choose_mean_albedo
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


def _weighted_sigma(x: np.ndarray, w: np.ndarray) -> float:
    """``_robust_sigma`` under weights: 1.4826 x the weighted median absolute deviation."""
    return float(1.4826 * weighted_median(np.abs(x - weighted_median(x, w)), w)) + 1e-6


def weighted_median(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The weighted median of ``values (M,)`` or of each column of ``(M, k)`` under
    ``weights (M,)`` >= 0: the smallest value whose share of the weight below and at it
    reaches one half.

    >>> weighted_median(np.array([1.0, 2.0, 3.0, 100.0]), np.array([1.0, 1.0, 1.0, 0.0])).item()
    2.0
    >>> weighted_median(np.array([[1.0, 5.0], [2.0, 4.0], [9.0, 3.0]]), np.array([1.0, 1.0, 3.0])).tolist()
    [9.0, 3.0]
    """
    v = np.asarray(values, dtype=np.float64)
    column = v.ndim == 1
    v = v[:, None] if column else v
    order = np.argsort(v, axis=0)
    cum = np.cumsum(np.asarray(weights, dtype=np.float64)[order], axis=0)
    at = np.argmax(cum >= 0.5 * cum[-1], axis=0)
    out = np.take_along_axis(v, np.take_along_axis(order, at[None, :], axis=0), axis=0)[0]
    return out[0:1].reshape(()) if column else out


@dataclass(frozen=True)
class LightFit:
    """The light fitted to one photo and the mean skin albedo the priors chose, before the
    per-texel division (``apply_lighting``): what a refit needs, computed on the sampled
    skin texels only. The statistics of the relative colour over those texels are kept so
    that ``apply_lighting`` flags outliers against them."""

    sh: np.ndarray  # (9, 3) radiance SH coefficients, linear RGB, camera frame: the light L
    apparent: np.ndarray  # (9, 3) the apparent light a * L that was fitted
    mean_albedo: np.ndarray  # (3,) a
    prior: MeanAlbedo | None
    relative_median: float  # median relative luminance I / (a S) over them
    relative_sigma: float  # its robust sigma (LightingEstimate.fit_residual)
    skin_chroma: np.ndarray  # (3,) their median chromaticity
    chroma_sigma: float
    shading_median: float  # median apparent shading luminance over them
    outlier_sigmas: float  # LightingConfig.outlier_sigmas


def fit_lighting(
    colour: np.ndarray,
    normals: np.ndarray,
    confidence: np.ndarray,
    skin: np.ndarray,
    *,
    config: LightingConfig = LightingConfig(),
    cues: PhotoCues | None = None,
    cue_model: CueModel | None = None,
) -> LightFit:
    """Fit SH light and the mean skin albedo, without the per-texel division (``apply_lighting``).

    colour ``(N, 3)`` linear RGB, normals ``(N, 3)`` unit (camera frame), confidence ``(N,)``
    in [0, 1], skin ``(N,)`` bool (texels trusted for lighting), over any set of texels (a
    layout's, or a sample of them). ``cues``: the photo's scene and eye whites (``inverse.cues``),
    references for the mean skin albedo (``inverse.priors``); ``cue_model``: their calibration
    (None: the priors' own). Raises ``ValueError`` when too few skin texels are visible."""
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

    # The sampled texels' relative colour, in float32 as the per-texel division computes it.
    s_fit = np.maximum(shading_rows(normals[idx], apparent), np.float32(1e-4))  # (M, 3) apparent shading = a * S
    relative = colour[idx] / s_fit
    rel_lum = relative @ LUMA_WEIGHTS.astype(np.float32)
    chroma = relative / np.maximum(rel_lum[:, None], np.float32(1e-6))
    s_lum = s_fit @ LUMA_WEIGHTS.astype(np.float32)

    # The statistics of the relative colour are taken over the texels the fit trusted (its
    # final weights): under a hard side light the SH light goes to zero or below across the
    # dark half, whose relative colour (the photo over a floored shading) is then meaningless.
    skin_chroma = weighted_median(chroma, w).astype(np.float32)
    median_relative = weighted_median(relative, w)
    relative_median = float(weighted_median(rel_lum, w))
    relative_sigma = _weighted_sigma(rel_lum, w)

    # What the photo shows of the skin: its mean colour under the fitted light, and at its
    # brightest shading; the priors choose the albedo that mean stands for.
    observed = s_fit.mean(axis=0).astype(np.float64) * median_relative
    peak = float(np.percentile(s_lum, 95)) * float(median_relative @ LUMA_WEIGHTS)
    prior = choose_mean_albedo(observed, peak, cues, config.priors, model=cue_model, light=LightShape(apparent, relative_sigma))
    a = prior.albedo / np.maximum(median_relative, 1e-6)
    return LightFit(
        sh=apparent / a[None, :],
        apparent=apparent,
        mean_albedo=a,
        prior=prior,
        relative_median=relative_median,
        relative_sigma=relative_sigma,
        skin_chroma=skin_chroma,
        chroma_sigma=_weighted_sigma(row_norm(chroma - skin_chroma), w) + 1e-3,
        shading_median=float(np.median(s_lum)),
        outlier_sigmas=config.outlier_sigmas,
    )


def apply_lighting(
    fit: LightFit, colour: np.ndarray, normals: np.ndarray, confidence: np.ndarray, skin: np.ndarray
) -> LightingEstimate:
    """Divide a fitted light out of every texel (the arrays as in ``fit_lighting``, over the
    layout's texels: the photo's colour, or its diffuse remainder): albedo, shading and the
    confidence lowered at outliers."""
    # Full resolution in float32: these few passes over every texel dominate the cost.
    s_all = np.maximum(shading_rows(normals, fit.apparent), np.float32(1e-4))  # (N, 3) apparent shading = a * S
    relative = colour / s_all  # ~1 on average skin
    rel_lum = relative @ LUMA_WEIGHTS.astype(np.float32)
    # |chroma - skin chroma|, chroma = relative / rel_lum, a channel at a time (no (N, 3) temporaries).
    rel_lum_floor = np.maximum(rel_lum, np.float32(1e-6))
    d_chroma = np.zeros(rel_lum.shape, np.float32)
    for c in range(3):
        d = relative[:, c] / rel_lum_floor
        d -= fit.skin_chroma[c]
        d *= d
        d_chroma += d
    np.sqrt(d_chroma, out=d_chroma)

    k = fit.outlier_sigmas
    excess_lum = np.maximum(np.abs(rel_lum - fit.relative_median) / fit.relative_sigma - k, 0.0)
    excess_chroma = np.maximum(d_chroma / fit.chroma_sigma - 2 * k, 0.0)
    # Colour outliers only count on skin: lips, brows and eyes differ by nature.
    outlier_weight = np.exp(-0.5 * (excess_lum**2 + skin * excess_chroma**2))
    s_lum = s_all @ LUMA_WEIGHTS.astype(np.float32)
    shading_ok = np.clip(s_lum / (0.15 * fit.shading_median), 0.0, 1.0)
    new_conf = (confidence * outlier_weight * shading_ok).astype(np.float32)

    a32 = fit.mean_albedo.astype(np.float32)
    skin_all = skin & (confidence > 0)
    flagged = skin_all & (outlier_weight < 0.5)
    relative *= a32  # the albedo, in place
    s_all /= a32  # the shading
    return LightingEstimate(
        sh=fit.sh,
        albedo=np.clip(relative, 0.0, 1.0, out=relative),
        shading=s_all,
        confidence=new_conf,
        mean_albedo=fit.mean_albedo,
        fit_residual=fit.relative_sigma,
        outlier_fraction=float(flagged.sum() / max(skin_all.sum(), 1)),
        prior=fit.prior,
    )
