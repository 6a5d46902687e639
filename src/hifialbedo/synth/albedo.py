"""Procedural UV albedo maps with a calibrated skin tone (ITA) and regional detail.

A map is ``(S, S, 3)`` float32 linear RGB on the UV layout of ``mesh.topology`` (u right,
v down). The skin tone is drawn along a skin locus in CIE L*a*b* (light to dark: L* 72 ->
30, a* 9 -> 13, b* 13 -> 20 -> 15) with per-identity jitter; regional variation (blotches,
cheek and nose redness, darker eye surrounds, lash lines, lips, brows, optional stubble,
freckles and moles, pores and multi-scale fine texture) is added; finally the whole map is
scaled so that its skin ITA (the mean per-texel ITA over the cheek and forehead masks of
``uv_regions``, as in the FAIR protocol) equals the target exactly.

Detail is defined in UV units, not texels, and the noise octaves are drawn coarse to fine,
so one seed gives the same face at every size: octaves finer than the map are left out,
as downsampling a larger map would average them away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

from hifialbedo.mesh.topology import load_face_topology, uv_regions
from hifialbedo.ops import colour as colour_ops
from hifialbedo.ops.colour import ita_map, lab_to_linear, mean_ita
from hifialbedo.synth.config import SKIN_TYPE_ITA
from hifialbedo.synth.shape import boundary_loops

# Hair colours, linear RGB (name, colour); brows and stubble use the identity's hair colour.
HAIR_COLOURS = (
    ("black", (0.012, 0.010, 0.009)),
    ("dark brown", (0.030, 0.019, 0.013)),
    ("brown", (0.075, 0.045, 0.026)),
    ("light brown", (0.16, 0.105, 0.06)),
    ("blond", (0.34, 0.25, 0.14)),
    ("auburn", (0.20, 0.065, 0.03)),
    ("grey", (0.32, 0.31, 0.30)),
)
# Probability of each hair colour per skin type I..VI.
_HAIR_WEIGHTS = (
    (0.05, 0.20, 0.25, 0.20, 0.15, 0.10, 0.05),
    (0.10, 0.30, 0.30, 0.14, 0.08, 0.04, 0.04),
    (0.30, 0.40, 0.20, 0.04, 0.02, 0.00, 0.04),
    (0.55, 0.35, 0.06, 0.00, 0.00, 0.00, 0.04),
    (0.65, 0.30, 0.02, 0.00, 0.00, 0.00, 0.03),
    (0.70, 0.27, 0.00, 0.00, 0.00, 0.00, 0.03),
)
EYE_COLOURS = (
    ("dark brown", (0.035, 0.018, 0.010)),
    ("brown", (0.085, 0.042, 0.018)),
    ("hazel", (0.11, 0.085, 0.035)),
    ("green", (0.065, 0.10, 0.055)),
    ("blue", (0.07, 0.12, 0.19)),
    ("grey", (0.13, 0.14, 0.15)),
)
_EYE_WEIGHTS = (
    (0.05, 0.15, 0.15, 0.15, 0.40, 0.10),
    (0.10, 0.30, 0.20, 0.12, 0.22, 0.06),
    (0.35, 0.40, 0.15, 0.04, 0.05, 0.01),
    (0.60, 0.35, 0.05, 0.00, 0.00, 0.00),
    (0.80, 0.20, 0.00, 0.00, 0.00, 0.00),
    (0.90, 0.10, 0.00, 0.00, 0.00, 0.00),
)
_FRECKLE_SCALE = (1.8, 1.0, 0.5, 0.15, 0.05, 0.0)  # x freckle_probability per skin type


@dataclass(frozen=True)
class SkinTone:
    """The base skin colour of an identity (before regional detail and calibration)."""

    lab: tuple[float, float, float]  # CIE L*a*b* (D65)
    target_ita: float  # degrees
    skin_type: int  # 0..5 = I..VI


@dataclass(frozen=True)
class SynthAlbedo:
    """A procedural identity's UV maps and appearance attributes."""

    albedo: np.ndarray  # (S, S, 3) float32 linear RGB
    specular_mask: np.ndarray  # (S, S) float32 in [0, 1]: relative specular strength (oily T-zone high)
    tone: SkinTone
    ita: float  # measured skin ITA of ``albedo`` (cheeks + forehead), degrees
    hair_colour: tuple[float, float, float]  # linear RGB
    hair_name: str
    eye_colour: tuple[float, float, float]  # linear RGB (iris)
    eye_name: str
    features: dict = field(default_factory=dict)  # stubble, freckles, moles, ... (JSON-able)

    @property
    def skin_type(self) -> int:
        return self.tone.skin_type


def synth_skin_locus(t: float) -> tuple[float, float, float]:
    """L*a*b* of the synthetic engine's skin locus at t in [0, 1] (0 = lightest, 1 = darkest;
    extrapolates a little): L* 72 -> 30, a* 9 -> 13, b* 13 -> 20 -> 15.

    Not ``ops.colour.skin_locus_lab``, the estimator's prior (b* 13 -> 17 -> 15), on purpose:
    see that function for why the two differ.

    >>> [round(c, 1) for c in synth_skin_locus(0.5)]
    [51.0, 11.0, 20.0]
    """
    return 72.0 - 42.0 * t, 9.0 + 4.0 * t, 13.0 + 26.0 * t - 24.0 * t * t


def _locus_ita(t: float) -> float:
    lab = synth_skin_locus(t)
    return math.degrees(math.atan((lab[0] - 50.0) / lab[2]))


def sample_skin_tone(rng: np.random.Generator, *, skin_type: int | None = None, ita: float | None = None) -> SkinTone:
    """A skin colour for a target skin type (0..5 = I..VI; ITA uniform inside its range, 1.5
    degrees from the bounds) or a target ITA: the locus point of that ITA, a* and b* jittered
    per identity, then L* chosen so that the colour's ITA is the target exactly."""
    if ita is None:
        if skin_type is None:
            skin_type = int(rng.integers(6))
        lo, hi = SKIN_TYPE_ITA[skin_type]
        ita = float(rng.uniform(lo + 1.5, hi - 1.5))
    ita = float(ita)
    if not -80.0 < ita < 80.0:
        raise ValueError(f"target ITA must be in (-80, 80) degrees, got {ita}")
    # The locus ITA falls monotonically with t: bisection (extrapolating past the ends).
    lo_t, hi_t = -0.4, 1.4
    for _ in range(50):
        mid = 0.5 * (lo_t + hi_t)
        if _locus_ita(mid) > ita:
            lo_t = mid
        else:
            hi_t = mid
    _, a, b = synth_skin_locus(0.5 * (lo_t + hi_t))
    a = float(np.clip(a + rng.normal(0.0, 1.3), 5.0, 17.0))
    b = float(np.clip(b + rng.normal(0.0, 1.5), 8.0, 25.0))
    lightness = 50.0 + b * math.tan(math.radians(ita))
    return SkinTone((lightness, a, b), ita, colour_ops.skin_type(ita) if skin_type is None else int(skin_type))


def skin_ita(albedo: np.ndarray) -> float:
    """Mean per-texel ITA (degrees) of a UV albedo ``(S, S, 3)`` (linear RGB, clipped to
    [0, 1]) over the cheek and forehead masks of ``uv_regions(S)``: the FAIR measure."""
    regions = uv_regions(albedo.shape[0])
    return mean_ita(albedo, regions["cheeks"] | regions["forehead"])


# ----------------------------------------------------------------------------- noise


def _upsample(grid: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(grid.astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)


def smooth_noise(rng: np.random.Generator, size: int, cells: int | tuple[int, int]) -> np.ndarray:
    """Zero-mean, unit-variance smooth noise ``(size, size)``: Gaussian values on a grid of
    ``cells`` (rows, cols) upsampled bicubically. The draw does not depend on ``size``."""
    rows, cols = (cells, cells) if isinstance(cells, int) else cells
    grid = rng.standard_normal((rows, cols))
    if rows >= size and cols >= size:
        out = cv2.resize(grid.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
    else:
        out = _upsample(grid, size)
    return (out - out.mean()) / max(float(out.std()), 1e-6)


def fractal_noise(rng: np.random.Generator, size: int, octaves: list[tuple[int, float]]) -> np.ndarray:
    """Sum of ``smooth_noise`` octaves ``[(cells, amplitude), ...]``, drawn in the order given;
    octaves with more cells than texels are drawn (to keep the stream) but left out."""
    out = np.zeros((size, size), np.float32)
    for cells, amplitude in octaves:
        if cells > size:
            rng.standard_normal((cells, cells))
            continue
        out += amplitude * smooth_noise(rng, size, cells)
    return out


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


# ----------------------------------------------------------------------------- UV features


@dataclass(frozen=True)
class _UVFeatures:
    u: np.ndarray  # (S, S) texel centres
    v: np.ndarray
    eye_distance: np.ndarray  # UV units from the eye openings (0 inside)
    upper_lid: np.ndarray  # (S, S) bool: texels above the eye opening's midline, near it
    lips: np.ndarray  # (S, S) float in [0, 1]: the lips (outer contour less the mouth opening), soft
    brows: tuple[np.ndarray, ...]  # per brow: (S, S) float polygon mask (soft)
    brow_along: tuple[np.ndarray, ...]  # per brow: position along it, 0 = medial end, 1 = tail
    nose: np.ndarray  # (S, S) float: nose mask, soft
    points: dict[str, tuple[float, float]]  # named UV points


def _poly_mask(size: int, uv_points: np.ndarray) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    pts = np.round(uv_points * size * 16 - 8).astype(np.int32)
    cv2.fillPoly(mask, [pts], 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(np.float32)


def _soften(mask: np.ndarray, sigma_uv: float) -> np.ndarray:
    size = mask.shape[0]
    sigma = sigma_uv * size
    if sigma < 0.3:
        return mask
    return cv2.GaussianBlur(mask, (0, 0), sigma)


def _ordered_by_angle(uv: np.ndarray, ids: np.ndarray) -> np.ndarray:
    c = uv[ids].mean(axis=0)
    ang = np.arctan2(uv[ids, 1] - c[1], uv[ids, 0] - c[0])
    return ids[np.argsort(ang)]


@lru_cache(maxsize=4)
def _uv_features(size: int) -> _UVFeatures:
    topo = load_face_topology()
    uv = topo.uv
    v, u = (np.mgrid[0:size, 0:size].astype(np.float32) + 0.5) / size
    loops = boundary_loops()

    eyes = np.zeros((size, size), np.float32)
    upper = np.zeros((size, size), bool)
    for name in ("right_eye", "left_eye"):
        poly = uv[loops[name]]
        eyes = np.maximum(eyes, _poly_mask(size, poly))
        centre_v = poly[:, 1].mean()
        lo, hi = poly[:, 0].min(), poly[:, 0].max()
        upper |= (v < centre_v) & (u > lo - 0.03) & (u < hi + 0.03)
    eye_distance = cv2.distanceTransform((1 - eyes).astype(np.uint8), cv2.DIST_L2, 5) / size

    lip_ids = topo.contours["lips"]
    outer = np.setdiff1d(lip_ids, loops["mouth"])
    # The mouth opening is filled too: it is off the mesh, but bilinear look-ups at the inner
    # lip edge read it.
    lips = _soften(_poly_mask(size, uv[_ordered_by_angle(uv, outer)]), 0.002)

    brows, along = [], []
    for lower, upper_line in (
        ((46, 53, 52, 65, 55), (70, 63, 105, 66, 107)),
        ((276, 283, 282, 295, 285), (300, 293, 334, 296, 336)),
    ):
        poly = np.concatenate([uv[list(lower)], uv[list(upper_line)][::-1]])
        brows.append(_poly_mask(size, poly))
        tail, medial = uv[lower[0]], uv[lower[-1]]
        axis = medial - tail
        t = ((u - tail[0]) * axis[0] + (v - tail[1]) * axis[1]) / float(axis @ axis)
        along.append(np.clip(1.0 - t, 0.0, 1.0).astype(np.float32))

    nose = _soften(uv_regions(size)["nose"].astype(np.float32), 0.01)
    points = {
        "nose_tip": tuple(uv[1]),
        "nose_bottom": tuple(uv[2]),
        "cheek_right": tuple(uv[50]),
        "cheek_left": tuple(uv[280]),
        "mouth_right": tuple(uv[61]),
        "mouth_left": tuple(uv[291]),
        "chin": tuple(uv[152]),
        "glabella": tuple(uv[9]),
        "nostril_right": tuple(0.5 * (uv[98] + uv[2])),
        "nostril_left": tuple(0.5 * (uv[327] + uv[2])),
    }
    return _UVFeatures(u, v, eye_distance.astype(np.float32), upper, lips, tuple(brows), tuple(along), nose, points)


def _blob(f: _UVFeatures, centre: tuple[float, float], sigma_u: float, sigma_v: float | None = None) -> np.ndarray:
    sigma_v = sigma_u if sigma_v is None else sigma_v
    return np.exp(-0.5 * (((f.u - centre[0]) / sigma_u) ** 2 + ((f.v - centre[1]) / sigma_v) ** 2)).astype(np.float32)


def _splats(size: int, centres: np.ndarray, amplitudes: np.ndarray, radius_uv: float) -> np.ndarray:
    """Gaussian spots of peak ``amplitudes`` at UV ``centres`` (N, 2) with a common radius."""
    canvas = np.zeros((size, size), np.float32)
    sigma = max(radius_uv * size, 0.5)
    # Bilinear deposit of each spot's mass (of its true radius: a spot smaller than a texel
    # is spread, as downsampling would), then one blur.
    xy = centres * size - 0.5
    x0, y0 = np.floor(xy[:, 0]).astype(int), np.floor(xy[:, 1]).astype(int)
    fx, fy = xy[:, 0] - x0, xy[:, 1] - y0
    mass = amplitudes * 2.0 * math.pi * (radius_uv * size) ** 2
    for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xs, ys = np.clip(x0 + dx, 0, size - 1), np.clip(y0 + dy, 0, size - 1)
        np.add.at(canvas, (ys, xs), (mass * w).astype(np.float32))
    return cv2.GaussianBlur(canvas, (0, 0), sigma)


# ----------------------------------------------------------------------------- the map


def _child(seed_seq: np.random.SeedSequence, k: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed_seq.entropy, spawn_key=tuple(seed_seq.spawn_key) + (k,)))


def _pick(rng: np.random.Generator, table: tuple, weights: tuple[float, ...]) -> tuple[str, np.ndarray]:
    w = np.asarray(weights, dtype=np.float64)
    name, colour = table[int(rng.choice(len(table), p=w / w.sum()))]
    return name, np.asarray(colour, dtype=np.float64)


def procedural_albedo(
    size: int,
    *,
    skin_type: int | None = None,
    ita: float | None = None,
    seed: int | np.random.SeedSequence = 0,
    stubble: bool | None = None,
    freckles: bool | None = None,
    stubble_probability: float = 0.3,
    freckle_probability: float = 0.3,
) -> SynthAlbedo:
    """A random identity's UV albedo ``(size, size, 3)`` (linear RGB) with skin ITA on target.

    ``skin_type`` (0..5 = I..VI) or ``ita`` (degrees) sets the tone (neither: a random type);
    ``seed`` makes it deterministic (the same seed gives the same face at every ``size``).
    ``stubble`` / ``freckles``: force on or off; None draws them with the given probabilities
    (freckles more likely on lighter skin). The returned ``ita`` is the measured skin ITA
    (``skin_ita``), within 0.05 degrees of the target.

    >>> a = procedural_albedo(64, skin_type=5, seed=1)
    >>> a.albedo.shape, a.albedo.dtype, bool(a.ita < -30)
    ((64, 64, 3), dtype('float32'), True)
    """
    if size < 16:
        raise ValueError(f"size must be >= 16, got {size}")
    if skin_type is not None and not 0 <= skin_type <= 5:
        raise ValueError(f"skin_type must be 0..5 (I..VI), got {skin_type}")
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(int(seed))
    rng = _child(ss, 0)
    tone = sample_skin_tone(rng, skin_type=skin_type, ita=ita)
    t = colour_ops.skin_type(tone.target_ita) / 5.0  # 0 light .. 1 dark, for tone-dependent detail
    hair_name, hair = _pick(rng, HAIR_COLOURS, _HAIR_WEIGHTS[tone.skin_type])
    hair = hair * rng.uniform(0.8, 1.2)
    eye_name, eye = _pick(rng, EYE_COLOURS, _EYE_WEIGHTS[tone.skin_type])
    eye = eye * rng.uniform(0.8, 1.2)
    if stubble is None:
        stubble = bool(rng.random() < stubble_probability)
    else:
        rng.random()
    if freckles is None:
        freckles = bool(rng.random() < freckle_probability * _FRECKLE_SCALE[tone.skin_type])
    else:
        rng.random()

    f = _uv_features(size)
    L = np.full((size, size), tone.lab[0], np.float32)
    A = np.full((size, size), tone.lab[1], np.float32)
    B = np.full((size, size), tone.lab[2], np.float32)
    features: dict = {"stubble": stubble, "freckles": freckles}

    # Smooth blotches: lightness, redness and yellowness vary over a few centimetres.
    r = _child(ss, 1)
    L += fractal_noise(r, size, [(4, 1.0), (8, 0.8), (16, 0.5)])
    A += fractal_noise(r, size, [(5, 0.9), (10, 0.7), (24, 0.4)])
    B += fractal_noise(r, size, [(4, 0.7), (12, 0.4)])

    # Regional colour: redder cheeks and nose, slightly darker and cooler under the eyes,
    # a little darker around the mouth, warmer forehead.
    r = _child(ss, 2)
    blush = r.uniform(1.5, 5.0)
    for key in ("cheek_right", "cheek_left"):
        w = _blob(f, f.points[key], 0.085, 0.07)
        A += blush * w
        L -= 0.3 * blush * w
    nose_red = r.uniform(0.5, 3.5)
    w = _blob(f, f.points["nose_tip"], 0.05, 0.04)
    A += nose_red * w
    around = np.exp(-((f.eye_distance / 0.04) ** 2)) * (f.eye_distance > 0)
    below = np.where(f.upper_lid, 0.55, 1.0).astype(np.float32)
    dark = r.uniform(2.0, 5.5) * (1.0 - 0.3 * t)
    L -= dark * around * below
    A += r.uniform(0.0, 1.5) * around
    B -= r.uniform(0.5, 3.0) * around * below
    mouth_centre = 0.5 * (np.array(f.points["mouth_right"]) + np.array(f.points["mouth_left"]))
    w = _blob(f, tuple(mouth_centre), 0.09, 0.05) * (1.0 - f.lips)
    L -= r.uniform(0.5, 2.5) * w
    B += r.uniform(0.0, 1.5) * _smoothstep((0.28 - f.v) / 0.1)

    # Lips: darker and redder, with fine vertical creases.
    r = _child(ss, 3)
    lip_dl = -r.uniform(8.0, 15.0) * (1.0 - 0.4 * t)
    lip_da = r.uniform(7.0, 13.0) * (1.0 - 0.3 * t)
    lip_db = r.uniform(-1.0, 3.0)
    crease = smooth_noise(r, size, (24, 120)) if size >= 64 else np.zeros((size, size), np.float32)
    L += f.lips * (lip_dl + 0.8 * crease)
    A += f.lips * lip_da
    B += f.lips * lip_db

    # Freckles and moles: small darker, browner spots.
    r = _child(ss, 4)
    spots = np.zeros((size, size), np.float32)
    if freckles:
        n = int(r.integers(120, 450))
        # Concentrated over the nose bridge and cheeks, fewer on the forehead.
        centres = np.stack([r.normal(0.5, 0.16, n), r.normal(0.47, 0.07, n)], axis=1)
        n_fore = n // 4
        centres[:n_fore, 1] = r.normal(0.2, 0.05, n_fore)
        for radius in (0.0022, 0.0035, 0.005):
            pick = r.random(n) < 1 / 3
            spots += _splats(size, centres[pick], r.uniform(0.5, 1.0, int(pick.sum())), radius)
        spots *= r.uniform(6.0, 12.0)
        features["n_freckles"] = n
    else:
        r.integers(120, 450)
    n_moles = int(r.choice(4, p=[0.4, 0.3, 0.2, 0.1]))
    mole_centres = np.stack([r.uniform(0.15, 0.85, n_moles), r.uniform(0.15, 0.85, n_moles)], axis=1)
    moles = _splats(size, mole_centres, np.full(n_moles, 22.0), 0.003) if n_moles else 0.0
    features["n_moles"] = n_moles
    spots = np.clip(spots + moles, 0.0, 28.0)
    L -= spots
    B += 0.35 * spots
    A += 0.15 * spots

    linear = lab_to_linear(np.stack([L, A, B], axis=-1)).astype(np.float32)
    linear = np.clip(linear, 0.002, 1.0)

    # Pores and fine texture: multiplicative, stronger on the nose and cheeks.
    r = _child(ss, 5)
    pore_map = 0.6 + 0.6 * f.nose + 0.4 * (_blob(f, f.points["cheek_right"], 0.1) + _blob(f, f.points["cheek_left"], 0.1))
    texture = fractal_noise(r, size, [(32, 0.012), (64, 0.012), (128, 0.012), (256, 0.01), (512, 0.01), (1024, 0.008)])
    pores = np.maximum(fractal_noise(r, size, [(384, 1.0)]) - 1.3, 0.0) if size >= 384 else 0.0
    linear *= (1.0 + texture * pore_map - 0.08 * pores * pore_map)[..., None]

    # Eyelashes and lid crease: a dark line along the eye openings, heavier above.
    r = _child(ss, 6)
    lash = np.exp(-((f.eye_distance / 0.006) ** 2)) * np.where(f.upper_lid, 1.0, 0.35)
    linear *= (1.0 - r.uniform(0.55, 0.8) * lash)[..., None]

    # Hair: brows (strands along the brow, tapering to the tail), optional stubble.
    r = _child(ss, 7)
    alpha = np.zeros((size, size), np.float32)
    density = r.uniform(0.7, 0.97)
    strands = fractal_noise(r, size, [(40, 0.6), (160, 0.5)])
    for mask, along in zip(f.brows, f.brow_along):
        thick = _soften(mask, 0.006) ** 0.7
        taper = 1.0 - 0.5 * along**2
        alpha = np.maximum(alpha, density * thick * taper * np.clip(0.9 + 0.25 * strands, 0.0, 1.0))
    features["brow_density"] = float(density)
    if stubble:
        # The beard line: under the nose (moustache), down around the mouth corners, then up
        # across the lower cheek toward the sideburns; a ragged, soft edge.
        a = np.abs(f.u - 0.5)
        top = f.points["nose_bottom"][1] + r.uniform(0.015, 0.035)
        corner = 0.5 * (f.points["mouth_right"][1] + f.points["mouth_left"][1]) - r.uniform(0.0, 0.03)
        line = np.interp(a, [0.0, 0.07, 0.13, 0.46, 0.6], [top, top + 0.005, corner, corner - r.uniform(0.04, 0.12), 0.45])
        line = line + 0.012 * fractal_noise(r, size, [(12, 1.0)])
        region = _smoothstep((f.v - line) / 0.08) ** 1.5 * (1.0 - f.lips)
        cover = r.uniform(0.3, 0.8)
        # A shadow of hair (what a small map shows) with the individual hairs as fine dark
        # speckle where the map resolves them (about 0.5 mm: 512 texels and up).
        speckle = fractal_noise(r, size, [(512, 1.0), (1024, 0.7)])
        speckle = np.clip(speckle - 0.6, 0.0, 2.0) if size >= 512 else 0.0
        stubble_alpha = region * np.clip(cover * (0.4 + 0.3 * speckle), 0.0, 0.9)
        stubble_alpha = stubble_alpha.astype(np.float32)
        alpha = np.maximum(alpha, stubble_alpha)
        features["stubble_cover"] = float(cover)
    hair_layer = np.broadcast_to(hair.astype(np.float32), linear.shape).copy()
    if stubble:
        # Short hairs under and on the skin read darker and cooler than the hair's colour.
        stubble_colour = (0.5 * hair + 0.5 * np.array([0.02, 0.024, 0.03])).astype(np.float32)
        w = (stubble_alpha / np.maximum(alpha, 1e-6))[..., None].astype(np.float32)
        hair_layer = hair_layer * (1 - w) + stubble_colour * w
    linear = linear * (1.0 - alpha[..., None]) + hair_layer * alpha[..., None]

    # Calibrate: scale the whole map so its skin ITA is the target (secant on log scale).
    albedo = _calibrate(linear, tone.target_ita)

    spec = 0.45 + 0.45 * f.nose + 0.35 * _smoothstep((0.3 - f.v) / 0.1) + 0.2 * _blob(f, f.points["chin"], 0.08)
    spec = spec * (1.0 - 0.8 * alpha) * (1.0 - 0.3 * f.lips)
    spec = np.clip(spec + 0.08 * fractal_noise(_child(ss, 8), size, [(6, 1.0)]), 0.0, 1.0).astype(np.float32)
    return SynthAlbedo(
        albedo=albedo,
        specular_mask=spec,
        tone=tone,
        ita=skin_ita(albedo),
        hair_colour=tuple(float(c) for c in hair),
        hair_name=hair_name,
        eye_colour=tuple(float(c) for c in eye),
        eye_name=eye_name,
        features=features,
    )


def _calibrate(linear: np.ndarray, target: float, *, tolerance: float = 0.02) -> np.ndarray:
    regions = uv_regions(linear.shape[0])
    texels = linear[regions["cheeks"] | regions["forehead"]].astype(np.float64)

    def ita_at(log_k: float) -> float:
        return float(np.nanmean(ita_map(texels * math.exp(log_k))))

    x0, x1 = 0.0, 0.1
    f0, f1 = ita_at(x0) - target, ita_at(x1) - target
    for _ in range(30):
        if abs(f1) < tolerance or f1 == f0:
            break
        x0, x1, f0 = x1, float(np.clip(x1 - f1 * (x1 - x0) / (f1 - f0), -3.0, 3.0)), f1
        f1 = ita_at(x1) - target
    if abs(f1) >= tolerance:
        raise RuntimeError(f"could not calibrate the albedo to ITA {target:.2f} (off by {f1:.3f})")
    return np.clip(linear * math.exp(x1), 0.0, 1.0).astype(np.float32)
