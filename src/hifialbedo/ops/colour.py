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
    """``(H, W, 3)`` uint8 sRGB -> float32 linear RGB, through a 256-entry table (fast)."""
    if image.dtype != np.uint8:
        raise TypeError(f"expected uint8, got {image.dtype}")
    return _SRGB8_TO_LINEAR[image]


def linear_to_srgb_uint8(linear: np.ndarray) -> np.ndarray:
    """Float linear RGB -> uint8 sRGB (clipped to [0, 1], rounded)."""
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
