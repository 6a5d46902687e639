"""Blinn-Phong specular intensity and shininess from the residual of the diffuse fit.

Image formation (linear RGB, one photo, per texel, camera frame):

    I = A * S(n) + k * E * max(n . h, 0) ** s * [n . l > 0]        (``ops.brdf``)

with S the SH shading and A the albedo of the diffuse fit (``inverse.lighting``), (l, E) the
distant light standing for the SH light's directional part (``ops.sh.directional_part``: its
dominant direction and linear-RGB colour, the same light ``relight`` renders the highlight
with), h the half vector between l and the view direction (+z, orthographic camera), k the
specular intensity (the lobe's peak as a fraction of E; dielectric, so white) and s the
shininess. The end-to-end specular paper's eq. 5 is this lobe with one global s.

The fit works on the luminance of the *relative residual* over visible skin texels,
y = (lum(I) - lum(a S)) / lum(a S), a the mean skin albedo: the diffuse fit's prediction is
the smooth mean skin under the fitted light, so albedo texture is zero-mean noise and the
highlights (which the robust lighting fit left out) stand out. For each shininess on a
log grid, k is the robust (Cauchy IRLS) least-squares slope of y on the lobe; the grid point
of least robust loss, refined by a parabola in log s, gives the global (k, s).

Regional variation: with s fixed, k is refitted per region (``REGIONS``: forehead, nose,
cheeks, the rest of the face) with a shrinkage toward the global k that only a region the
highlight lobe actually covers can overcome; the per-region values are painted onto the UV
layout and smoothed across region boundaries (Gaussian, ``SpecularConfig.smooth``).

Several photos (other lightings, other poses) are fitted jointly: their texels are pooled,
each with its own light and normals, so more distinct half vectors sample the lobe's shape and
intensity and shininess separate better than from one highlight.

Diffuse is what remains: A = (I - specular) / S, the last light divided out of the
diffuse remainder (``inverse.lighting.apply_lighting``; ``remove_specular`` for an estimate
already divided). The absolute k
inherits the light's brightness ambiguity (the priors' split of a * L): the observable is the
highlight's radiance k * E, which re-renders consistently with the written light.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from hifialbedo.inverse.lighting import LightFit, LightingEstimate, apply_lighting
from hifialbedo.mesh.topology import uv_regions
from hifialbedo.ops.brdf import blinn_phong, half_vector, roughness_from_shininess
from hifialbedo.ops.colour import LUMA_WEIGHTS
from hifialbedo.ops.sh import directional_part, shading_rows
from hifialbedo.ops.vectors import row_max

REGIONS = ("forehead", "nose", "cheeks", "other")
"""Regions of the regional intensity, in order of precedence (``region_labels``)."""


@dataclass(frozen=True)
class SpecularConfig:
    """How the specular lobe is fitted."""

    fit_texels: int = 8000
    """Skin texels sampled (deterministically) per photo for the fit."""
    min_shininess: float = 4.0
    """Lower end of the shininess grid: broader lobes are indistinguishable from SH shading."""
    max_shininess: float = 1000.0
    """Upper end of the shininess grid."""
    grid_points: int = 24
    """Shininess values tried, log-spaced."""
    iterations: int = 5
    """Iteratively reweighted least-squares rounds per shininess."""
    robust_scale: float = 2.5
    """Cauchy weight width, in robust standard deviations of the relative residual."""
    min_confidence: float = 0.3
    """Texels below this unwrap confidence are left out."""
    region_prior: float = 0.05
    """Shrinkage of each region's intensity toward the global one, as a share of the whole
    fit's information (sum of weighted squared lobe values): a region needs that much
    highlight coverage to move halfway from the global value."""
    smooth: float = 0.03
    """Gaussian sigma, in UV units, smoothing the regional map across region boundaries."""
    refits: int = 2
    """Rounds of refitting the light on the diffuse remainder (I - specular): the highlight
    pulls the SH light's dominant direction toward the viewer, which the lobe depends on."""
    refit_texels: int = 24000
    """Visible skin texels (drawn deterministically) whose diffuse remainder each refit sees;
    the lighting fit samples its own from them (``LightingConfig.fit_texels``)."""


@dataclass(frozen=True)
class SpecularObservation:
    """One photo's skin texels for the fit (from its unwrap and lighting estimate)."""

    residual: np.ndarray  # (M,) relative luminance residual y
    normals: np.ndarray  # (M, 3) unit, camera frame
    weights: np.ndarray  # (M,) unwrap confidence
    regions: np.ndarray  # (M,) int index into REGIONS
    scale: np.ndarray  # (M,) E_lum / lum(a S): the lobe's value in relative-residual units per unit k
    direction: np.ndarray  # (3,) light direction l, camera frame
    colour: np.ndarray  # (3,) light colour E, linear RGB


@dataclass(frozen=True)
class SpecularFit:
    """Fitted Blinn-Phong parameters: global values, per-region intensity, and the per-texel
    ``intensity`` / ``shininess`` over a UV layout's texels (``(N,)``, set by ``fit_specular``
    when given ``region_of_texel``)."""

    intensity: float
    shininess: float
    regional: dict[str, float]
    photos: int
    texels: int
    residual_sigma: float
    intensity_map: np.ndarray | None = field(default=None, repr=False)
    shininess_map: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        return {
            "model": "Blinn-Phong: specular = intensity * E * max(n.h, 0)^shininess if n.l > 0 (ops/brdf.py); "
            "l, E = the SH light's directional part (dominant direction, colour)",
            "intensity": self.intensity,
            "shininess": self.shininess,
            "roughness": float(roughness_from_shininess(self.shininess)),
            "regional_intensity": self.regional,
            "photos": self.photos,
            "texels": self.texels,
            "residual_sigma": self.residual_sigma,
        }


def region_labels(size: int) -> np.ndarray:
    """UV map ``(S, S)`` int8 of ``REGIONS`` indices (nose before forehead before cheeks;
    every other texel, face or not, is ``other``)."""
    regions = uv_regions(size)
    labels = np.full((size, size), REGIONS.index("other"), np.int8)
    for name in ("cheeks", "forehead", "nose"):  # later ones win
        labels[regions[name] & regions["face"]] = REGIONS.index(name)
    return labels


def regional_map(values: dict[str, float], size: int, *, smooth: float = SpecularConfig.smooth) -> np.ndarray:
    """Per-region values painted on the UV layout ``(S, S)`` float32 and smoothed across region
    boundaries (Gaussian of sigma ``smooth`` UV units, normalised over the face so the edges
    keep their level); outside the face the smoothed field continues."""
    # The field is smooth: paint and blur on at most a 128 grid, then resample (a 30 px
    # Gaussian at 1024 costs a quarter second per call; this, a few milliseconds).
    work = min(size, 128)
    labels = region_labels(work)
    face = uv_regions(work)["face"].astype(np.float32)
    painted = np.zeros((work, work), np.float32)
    for i, name in enumerate(REGIONS):
        painted[labels == i] = values[name]
    sigma = max(smooth * work, 0.5)
    num = cv2.GaussianBlur(painted * face, (0, 0), sigma)
    den = cv2.GaussianBlur(face, (0, 0), sigma)
    out = np.where(den > 1e-3, num / np.maximum(den, 1e-6), values["other"]).astype(np.float32)
    return out if work == size else cv2.resize(out, (size, size), interpolation=cv2.INTER_LINEAR)


def fit_sample(
    colour: np.ndarray, confidence: np.ndarray, skin: np.ndarray, config: SpecularConfig = SpecularConfig()
) -> np.ndarray:
    """The texels ``(M,)`` (indices, sorted) one photo's ``observation`` is made of, the same
    in every round of a separation: visible skin (``skin`` ``(N,)`` bool, unwrap
    ``confidence`` ``(N,)``), not clipped (``colour`` ``(N, 3)`` linear RGB), at most
    ``config.fit_texels`` of them, drawn deterministically."""
    return _draw(np.flatnonzero(skin & (confidence >= config.min_confidence) & (row_max(colour) < 0.995)), config.fit_texels)


def _draw(texels: np.ndarray, count: int) -> np.ndarray:
    """At most ``count`` of ``texels`` (sorted indices), drawn deterministically, sorted."""
    if texels.size <= count:
        return texels
    return np.sort(np.random.default_rng(0).choice(texels, count, replace=False))


def observation(
    colour: np.ndarray,
    normals: np.ndarray,
    confidence: np.ndarray,
    skin: np.ndarray,
    estimate: LightingEstimate | LightFit,
    regions: np.ndarray,
    *,
    config: SpecularConfig = SpecularConfig(),
    sample: np.ndarray | None = None,
) -> SpecularObservation:
    """One photo's fit data. colour ``(N, 3)`` linear RGB (the unwrap), normals ``(N, 3)`` unit
    camera frame, confidence ``(N,)`` the *unwrap* confidence (the lighting's lowers it at the
    highlights we want), skin ``(N,)`` bool, regions ``(N,)`` int (``region_labels`` gathered);
    ``estimate`` the light L and mean skin albedo a (a ``LightingEstimate`` or a ``LightFit``);
    ``sample`` the photo's ``fit_sample`` (drawn here when None). Texels the light leaves dark
    (lum(a S) <= 1e-3) are left out."""
    if sample is None:
        sample = fit_sample(colour, confidence, skin, config)
    direction, light_colour = directional_part(estimate.sh)
    # lum(a S), each channel of a S floored at 1e-4 as the lighting fit floors it (a dark face
    # under a light with a negative channel depends on that floor).
    apparent = np.maximum(shading_rows(normals[sample], estimate.sh * estimate.mean_albedo[None, :]), np.float32(1e-4))
    s_lum = apparent @ LUMA_WEIGHTS.astype(np.float32)
    lit = s_lum > 1e-3
    idx = sample[lit]
    lum = colour[idx] @ LUMA_WEIGHTS.astype(np.float32)
    s = s_lum[lit].astype(np.float64)
    return SpecularObservation(
        residual=(lum - s) / s,
        normals=normals[idx].astype(np.float64),
        weights=confidence[idx].astype(np.float64),
        regions=regions[idx].astype(np.int64),
        scale=float(light_colour @ LUMA_WEIGHTS) / s,
        direction=direction,
        colour=light_colour,
    )


def _robust_sigma(x: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(x - np.median(x)))) + 1e-6


class _Lobes:
    """The relative-residual lobe per unit intensity of all photos' texels, concatenated, as
    a function of the shininess: ``scale * blinn_phong(normals, direction, shininess)``
    with max(n . h, 0) and the n . l > 0 step taken once (they do not depend on it)."""

    def __init__(self, observations: Sequence[SpecularObservation]) -> None:
        cosines = []
        for o in observations:
            h = half_vector(o.direction)
            light = np.asarray(o.direction, np.float64) / np.linalg.norm(o.direction)
            n_dot_h = np.maximum(o.normals @ h.astype(o.normals.dtype), 0.0)
            cosines.append(np.where((o.normals @ light) > 0.0, n_dot_h, 0.0))
        self.cosine = np.concatenate(cosines)
        self.scale = np.concatenate([np.broadcast_to(o.scale, (len(o.normals),)) for o in observations])

    def __call__(self, shininess: float) -> np.ndarray:
        return self.scale * self.cosine**shininess


def _fit_intensity(
    x: np.ndarray, y: np.ndarray, prior_w: np.ndarray, sigma: float, config: SpecularConfig
) -> tuple[float, np.ndarray, float]:
    """Cauchy IRLS slope k >= 0 of y on x; returns (k, final weights, robust loss)."""
    c = config.robust_scale * sigma
    w = prior_w
    k = 0.0
    for _ in range(config.iterations):
        den = float(np.sum(w * x * x))
        k = max(float(np.sum(w * x * y)) / den, 0.0) if den > 1e-12 else 0.0
        r = (y - k * x) / c
        w = prior_w / (1.0 + r**2)
    loss = float(np.sum(prior_w * np.log1p(((y - k * x) / c) ** 2)))
    return k, w, loss


def fit_specular(
    observations: Sequence[SpecularObservation],
    *,
    config: SpecularConfig = SpecularConfig(),
    region_of_texel: np.ndarray | None = None,
    uv_size: int | None = None,
    texel_index: np.ndarray | None = None,
) -> SpecularFit:
    """Fit global (intensity, shininess) and regional intensities jointly over photos.

    With ``uv_size`` and ``texel_index`` (``(N,)`` flat indices of the layout's texels,
    ``UVLayout.flat_index``), the per-texel maps ``(N,)`` are filled in as well.
    """
    if not observations:
        raise ValueError("no photos to fit the specular lobe on")
    y = np.concatenate([o.residual for o in observations])
    prior_w = np.concatenate([o.weights for o in observations])
    regions = np.concatenate([o.regions for o in observations])
    if y.size < 50:
        raise ValueError("too few visible skin texels to fit the specular lobe")
    sigma = _robust_sigma(y)
    grid = np.geomspace(config.min_shininess, config.max_shininess, config.grid_points)
    lobes = _Lobes(observations)
    losses = np.array([_fit_intensity(lobes(s), y, prior_w, sigma, config)[2] for s in grid])
    best = int(np.argmin(losses))
    log_s = np.log(grid[best])
    if 0 < best < len(grid) - 1:  # parabola through the three points around the minimum
        l0, l1, l2 = losses[best - 1 : best + 2]
        curv = l0 - 2 * l1 + l2
        step = np.log(grid[1] / grid[0])
        if curv > 0:
            log_s += float(np.clip(0.5 * (l0 - l2) / curv, -0.5, 0.5)) * step
    shininess = float(np.exp(log_s))
    x = lobes(shininess)
    k, w, _ = _fit_intensity(x, y, prior_w, sigma, config)

    # Regional intensity with shrinkage toward k: lambda = region_prior x total information.
    lam = config.region_prior * float(np.sum(w * x * x)) + 1e-12
    regional = {}
    for i, name in enumerate(REGIONS):
        m = regions == i
        regional[name] = max((float(np.sum(w[m] * x[m] * y[m])) + lam * k) / (float(np.sum(w[m] * x[m] ** 2)) + lam), 0.0)

    intensity_map = shininess_map = None
    if uv_size is not None and texel_index is not None:
        uv_map = regional_map(regional, uv_size, smooth=config.smooth)
        intensity_map = uv_map.reshape(-1)[texel_index].astype(np.float32)
        shininess_map = np.full(len(texel_index), shininess, np.float32)
    return SpecularFit(k, shininess, regional, len(observations), int(y.size), sigma, intensity_map, shininess_map)


def specular_radiance(normals: np.ndarray, direction: np.ndarray, colour: np.ndarray, intensity, shininess) -> np.ndarray:
    """The highlight ``(N, 3)`` linear RGB: intensity x E x Blinn-Phong lobe (``ops.brdf``);
    ``intensity`` / ``shininess`` scalars or ``(N,)``."""
    lobe = blinn_phong(normals.astype(np.float32, copy=False), direction, shininess=shininess, intensity=intensity)
    return (lobe[:, None] * np.asarray(colour, dtype=np.float32)[None, :]).astype(np.float32, copy=False)


def remove_specular(estimate: LightingEstimate, colour: np.ndarray, specular: np.ndarray) -> LightingEstimate:
    """The estimate with the albedo recomputed without the highlight: A = (I - spec) / S,
    clipped to [0, 1] (``colour`` I and ``specular`` ``(N, 3)`` linear RGB). Light and
    confidence are kept."""
    albedo = np.clip((colour - specular) / np.maximum(estimate.shading, 1e-4), 0.0, 1.0).astype(np.float32)
    return replace(estimate, albedo=albedo)


@dataclass(frozen=True)
class SpecularPhoto:
    """What the separation needs of one photo, per texel of the UV layout ``(N, ...)``."""

    colour: np.ndarray  # (N, 3) the unwrap, linear RGB
    normals: np.ndarray  # (N, 3) unit, camera frame
    confidence: np.ndarray  # (N,) unwrap confidence
    estimate: LightingEstimate
    refit: Callable[[np.ndarray, np.ndarray], LightFit] | None = None
    """Fits the light again on some texels ``(M,)`` (indices) and their colour ``(M, 3)`` (the
    diffuse remainder: ``inverse.lighting.fit_lighting`` of those texels, with this photo's
    priors); None: keep ``estimate``."""


@dataclass(frozen=True)
class Separation:
    """The joint fit, the per-photo fits (each photo alone: diagnostics), and per photo the
    diffuse estimate (light refitted without the highlight, albedo = (I - spec) / S) and the
    highlight ``(N, 3)`` linear RGB."""

    fit: SpecularFit
    per_photo: list[SpecularFit]
    estimates: list[LightingEstimate]
    specular: list[np.ndarray]


def separate_specular(
    photos: Sequence[SpecularPhoto],
    skin: np.ndarray,
    regions: np.ndarray,
    *,
    uv_size: int,
    texel_index: np.ndarray,
    config: SpecularConfig = SpecularConfig(),
    map_photos: Callable = map,
) -> Separation:
    """Split each photo into diffuse and a Blinn-Phong highlight whose per-texel intensity and
    shininess are fitted jointly over all photos. ``skin`` ``(N,)`` bool and ``regions``
    ``(N,)`` int (``region_labels`` gathered) over the layout's texels; ``texel_index`` the
    layout's flat indices. Raises ``ValueError`` when too few skin texels are visible.
    ``map_photos``: how the per-texel work of each photo runs over the photos (``map``; a
    thread pool's ``map`` runs the photos in parallel: they are independent).

    The rounds work on samples of texels (each photo's ``fit_sample`` for the lobe, and
    ``config.refit_texels`` of its visible skin for the light's refit); the highlight and the
    division of the last light are computed for every texel once, at the end."""
    estimates: list[LightingEstimate | LightFit] = [p.estimate for p in photos]
    samples = list(map_photos(lambda p: fit_sample(p.colour, p.confidence, skin, config), photos))
    refit_texels = [_draw(np.flatnonzero(skin & (p.confidence >= config.min_confidence)), config.refit_texels) for p in photos]
    for round_ in range(config.refits + 1):
        obs = [
            observation(p.colour, p.normals, p.confidence, skin, e, regions, config=config, sample=t)
            for p, e, t in zip(photos, estimates, samples)
        ]
        fit = fit_specular(obs, config=config, uv_size=uv_size, texel_index=texel_index)
        if round_ == config.refits or all(p.refit is None for p in photos):
            break
        for i, (p, o, t) in enumerate(zip(photos, obs, refit_texels)):
            if p.refit is not None:
                highlight = specular_radiance(p.normals[t], o.direction, o.colour, fit.intensity_map[t], fit.shininess_map[t])
                estimates[i] = p.refit(t, np.maximum(p.colour[t] - highlight, 0.0))

    def separate(p: SpecularPhoto, o: SpecularObservation, e: LightFit | LightingEstimate) -> tuple[np.ndarray, LightingEstimate]:
        """The photo's highlight at every texel and its diffuse estimate: the last light
        divided out of the diffuse remainder (albedo, shading, confidence); an estimate
        already divided only has the highlight taken out of its albedo."""
        s = specular_radiance(p.normals, o.direction, o.colour, fit.intensity_map, fit.shininess_map)
        if isinstance(e, LightFit):
            return s, apply_lighting(e, np.maximum(p.colour - s, 0.0), p.normals, p.confidence, skin)
        return s, remove_specular(e, p.colour, s)

    specular, diffuse = (list(x) for x in zip(*map_photos(separate, photos, obs, estimates)))
    per_photo = [fit_specular([o], config=config) for o in obs] if len(obs) > 1 else [fit]
    return Separation(fit, per_photo, diffuse, specular)
