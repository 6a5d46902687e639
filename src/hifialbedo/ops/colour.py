"""Colour-space conversions (IEC 61966-2-1 sRGB, Rec. 709 primaries, D65 white).

All images are float arrays in [0, 1] with colour in the last axis, ``(..., 3)``, unless a
function says otherwise. "Linear" means linear-light RGB with the sRGB primaries; the
maths of image formation (I = A * S) lives there. sRGB-encoded values appear only at I/O.
Functions accept NumPy arrays or torch tensors.
"""

from __future__ import annotations

import numpy as np

from hifialbedo.ops._array import clip_min, is_torch, where

# Rec. 709 / sRGB luminance weights (the Y row of the linear-RGB -> XYZ matrix).
LUMA_WEIGHTS = np.array([0.2126, 0.7152, 0.0722])


def srgb_to_linear(srgb):
    """sRGB-encoded values in [0, 1] -> linear RGB in [0, 1] (the exact piecewise curve).

    >>> float(srgb_to_linear(np.array(0.5)))  # doctest: +ELLIPSIS
    0.2140...
    """
    srgb = clip_min(srgb, 0.0)
    return where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(linear):
    """Linear RGB (>= 0) -> sRGB-encoded values; values above 1 stay above 1 (clip at I/O).

    >>> round(float(linear_to_srgb(np.array(0.2140411))), 6)
    0.5
    """
    linear = clip_min(linear, 0.0)
    return where(linear <= 0.0031308, linear * 12.92, 1.055 * clip_min(linear, 0.0031308) ** (1 / 2.4) - 0.055)


def luminance(linear_rgb):
    """Relative luminance Y of linear RGB ``(..., 3)`` -> ``(...)``."""
    w = LUMA_WEIGHTS
    return linear_rgb[..., 0] * w[0] + linear_rgb[..., 1] * w[1] + linear_rgb[..., 2] * w[2]


def srgb_uint8_to_linear(image: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 sRGB -> float32 linear RGB, through a 256-entry table (fast).

    >>> srgb_uint8_to_linear(np.array([[[0, 128, 255]]], np.uint8)).astype(float).round(4).tolist()
    [[[0.0, 0.2159, 1.0]]]
    """
    if image.dtype != np.uint8:
        raise TypeError(f"expected uint8, got {image.dtype}")
    return _SRGB8_TO_LINEAR[image]


def linear_to_srgb_uint8(linear: np.ndarray) -> np.ndarray:
    """Float linear RGB -> uint8 sRGB (clipped to [0, 1], rounded); inverts :func:`srgb_uint8_to_linear`.

    >>> codes = np.arange(256, dtype=np.uint8)[None, :, None].repeat(3, axis=2)
    >>> bool((linear_to_srgb_uint8(srgb_uint8_to_linear(codes)) == codes).all())
    True
    >>> linear_to_srgb_uint8(np.array([-0.5, 0.2159, 7.0])).tolist()
    [0, 128, 255]
    """
    if is_torch(linear):
        raise TypeError("linear_to_srgb_uint8 takes NumPy arrays")
    # A 16384-entry table on the clipped linear value differs from the exact rounded
    # curve by at most one code (near black), and is several times faster than pow().
    index = np.clip(linear, 0.0, 1.0) * (_LUT_SIZE - 1) + 0.5
    return _LINEAR_TO_SRGB8[index.astype(np.int32)]


_SRGB8_TO_LINEAR = srgb_to_linear(np.arange(256, dtype=np.float64) / 255.0).astype(np.float32)
_LUT_SIZE = 1 << 14
_LINEAR_TO_SRGB8 = np.round(
    np.clip(linear_to_srgb(np.arange(_LUT_SIZE, dtype=np.float64) / (_LUT_SIZE - 1)), 0, 1) * 255
).astype(np.uint8)


# Linear sRGB (D65) <-> CIE XYZ, IEC 61966-2-1.
RGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
XYZ_TO_RGB = np.linalg.inv(RGB_TO_XYZ)
D65_WHITE = RGB_TO_XYZ.sum(axis=1)  # XYZ of linear RGB (1, 1, 1)
_LAB_EPS = (6.0 / 29.0) ** 3


def linear_to_lab(linear_rgb: np.ndarray) -> np.ndarray:
    """Linear RGB ``(..., 3)`` -> CIE L*a*b* (D65 white, L* in [0, 100])."""
    xyz = np.asarray(linear_rgb, dtype=np.float64) @ RGB_TO_XYZ.T / D65_WHITE
    f = np.where(xyz > _LAB_EPS, np.cbrt(np.maximum(xyz, _LAB_EPS)), xyz / (3 * (6.0 / 29.0) ** 2) + 4.0 / 29.0)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def lab_to_linear(lab: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D65) ``(..., 3)`` -> linear RGB (may leave [0, 1] for out-of-gamut colours)."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], axis=-1)
    xyz = np.where(f > 6.0 / 29.0, f**3, 3 * (6.0 / 29.0) ** 2 * (f - 4.0 / 29.0)) * D65_WHITE
    return xyz @ XYZ_TO_RGB.T


def individual_typology_angle(lab: np.ndarray) -> np.ndarray:
    """Individual Typology Angle, degrees, of CIE L*a*b* colours ``(..., 3)``: atan((L* - 50) / b*).

    The skin-colour angle of the FAIR protocol (and of dermatology: > 55 very light,
    < -30 dark). ``b* = 0`` gives +-90 (the limit of the formula).

    >>> float(individual_typology_angle(np.array([60.0, 10.0, 10.0])))
    45.0
    >>> float(np.round(individual_typology_angle(np.array([40.0, 10.0, 10.0 * 3 ** 0.5])), 6))
    -30.0
    """
    lab = np.asarray(lab, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.degrees(np.arctan((lab[..., 0] - 50.0) / lab[..., 2]))


SKIN_TYPES = ("I", "II", "III", "IV", "V", "VI")
"""The six skin types of the FAIR protocol (TRUST, Feng et al. 2022), lightest first."""
SKIN_TYPE_LOWER_ITA = (55.0, 41.0, 28.0, 10.0, -30.0)
"""Lower ITA bound (degrees) of types I..V; VI is everything below -30. The one table of the
bins: the FAIR metrics (``eval.fair``) group by it and the synthetic engine draws within it."""


def skin_type(ita: float) -> int:
    """Skin type index 0..5 (I..VI) of an ITA in degrees.

    I > 55, II 41..55, III 28..41, IV 10..28, V -30..10, VI < -30 (a bound belongs to
    the darker type).

    >>> [SKIN_TYPES[skin_type(a)] for a in (60, 55, 41.5, 30, 10, 0, -30, -45)]
    ['I', 'II', 'II', 'III', 'V', 'V', 'VI', 'VI']
    """
    for k, lower in enumerate(SKIN_TYPE_LOWER_ITA):
        if ita > lower:
            return k
    return 5


def ita_map(albedo_linear: np.ndarray) -> np.ndarray:
    """Per-pixel ITA (degrees) of a linear-RGB albedo ``(..., 3)``, clipped to [0, 1] first
    (as an sRGB image in [0, 1] would be)."""
    return individual_typology_angle(linear_to_lab(np.clip(albedo_linear, 0.0, 1.0)))


def mean_ita(albedo_linear: np.ndarray, mask: np.ndarray) -> float:
    """Mean per-pixel ITA over ``mask`` (bool, albedo's spatial shape) of a linear albedo:
    the FAIR protocol's skin-colour summary.

    Pixels with b* = 0 exactly (ITA +-90 by the formula's limit) are kept, as the formula
    says; NaNs (L* = 50 and b* = 0) are dropped.
    """
    values = ita_map(albedo_linear[mask])
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("empty skin mask: no pixel to measure the ITA on")
    return float(values.mean())


def mean_colour_ita(albedo_linear: np.ndarray, mask: np.ndarray) -> float:
    """ITA of the mean linear colour over ``mask``: the region's overall tone. Unlike
    ``mean_ita`` it does not move with the spread of lightness inside the region (ITA is
    far from linear in L*: shading left in a map pulls the per-pixel mean down).

    >>> a = np.array([[0.4, 0.3, 0.25], [0.1, 0.075, 0.0625]]); m = np.array([True, True])
    >>> round(mean_colour_ita(a, m), 1), round(mean_ita(a, m), 1)
    (12.1, -7.6)
    """
    pixels = albedo_linear[mask]
    if pixels.size == 0:
        raise ValueError("empty skin mask: no pixel to measure the ITA on")
    return float(ita_map(pixels.reshape(-1, 3).mean(axis=0)))


def _planck_xy(kelvin: float) -> tuple[float, float]:
    """CIE 1931 xy of a blackbody, Kim et al. (2002) cubic fit, 1667..25000 K."""
    t = float(kelvin)
    if not 1667.0 <= t <= 25000.0:
        raise ValueError(f"colour temperature must be in 1667..25000 K, got {t}")
    if t <= 4000.0:
        x = -0.2661239e9 / t**3 - 0.2343589e6 / t**2 + 0.8776956e3 / t + 0.179910
    else:
        x = -3.0258469e9 / t**3 + 2.1070379e6 / t**2 + 0.2226347e3 / t + 0.240390
    if t <= 2222.0:
        y = -1.1063814 * x**3 - 1.34811020 * x**2 + 2.18555832 * x - 0.20219683
    elif t <= 4000.0:
        y = -0.9549476 * x**3 - 1.37418593 * x**2 + 2.09137015 * x - 0.16748867
    else:
        y = 3.0817580 * x**3 - 5.87338670 * x**2 + 3.75112997 * x - 0.37001483
    return x, y


def _planck_linear_rgb(kelvin: float) -> np.ndarray:
    x, y = _planck_xy(kelvin)
    return XYZ_TO_RGB @ np.array([x / y, 1.0, (1.0 - x - y) / y])


def white_of_temperature(kelvin: float) -> np.ndarray:
    """Linear-RGB colour ``(3,)`` of a blackbody light of this temperature as a camera
    white-balanced for daylight records it (6504 K -> (1, 1, 1)); luminance 1.

    >>> np.round(white_of_temperature(6504), 6).tolist()
    [1.0, 1.0, 1.0]
    >>> c = white_of_temperature(3000); bool(c[0] > c[1] > c[2])  # tungsten: orange
    True
    """
    rgb = _planck_linear_rgb(kelvin) / _planck_linear_rgb(6504.0)
    return rgb / float(rgb @ LUMA_WEIGHTS)


def skin_locus_lab(t):
    """Typical skin colour, CIE L*a*b*, along the melanin axis: ``t = 0`` light (L* 72,
    ITA about 59) to ``t = 1`` dark (L* 30, ITA about -53); extrapolates a little beyond.

    A smooth curve through skin colorimetry of ITA types I to VI (approximate values in
    the range of Del Bino & Bernerd 2013), not fitted to any data set here. It is the
    estimator's prior (``inverse.priors``) and places the relit benchmark's skin tones
    (``eval.relit_cases``). The synthetic face engine draws its tones from a second,
    deliberately different curve (``synth.albedo.synth_skin_locus``, b* peaking at 20
    instead of 17): this one's b* was lowered when the priors were tuned on the relit
    faces, and training and scoring on faces drawn from the estimator's own prior would
    flatter it; keeping the engine's curve also keeps every synthetic set's bytes.

    >>> skin_locus_lab(0.5).round(2).tolist()
    [51.0, 11.0, 17.0]
    """
    t = np.asarray(t, dtype=np.float64)
    return np.stack([72 - 42 * t, 9 + 4 * t, 13 + 14 * t - 12 * t**2], axis=-1)


def log_chromaticity(linear_rgb: np.ndarray) -> np.ndarray:
    """(log R/G, log B/G) ``(..., 2)`` of linear RGB ``(..., 3)``: invariant to intensity,
    additive under a per-channel light colour."""
    rgb = np.maximum(np.asarray(linear_rgb, dtype=np.float64), 1e-6)
    return np.stack([np.log(rgb[..., 0] / rgb[..., 1]), np.log(rgb[..., 2] / rgb[..., 1])], axis=-1)
