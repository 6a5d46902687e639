"""Full-reference image metrics for the benchmark: PSNR, SSIM, and LPIPS (re-exported).

Images are NumPy float arrays ``(H, W, 3)`` holding sRGB-encoded values in
``[0, data_range]`` (default [0, 1]): the metrics are computed on the encoded values, as
published numbers are, not on linear RGB. An optional ``mask`` is an ``(H, W)`` bool array
selecting the pixels that count. PSNR and SSIM are scikit-image's; LPIPS is
:func:`hifialbedo.models.lpips.lpips_distance`.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from hifialbedo.models.lpips import lpips_distance

__all__ = ["SSIM_SIGMA", "lpips_distance", "psnr", "ssim"]

# Wang et al. 2004: 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, population
# (co)variances. scikit-image's Gaussian filter truncated at 3.5 sigma is that 11-tap window.
SSIM_SIGMA = 1.5
_SSIM_TRUNCATE = 3.5
_SSIM_BORDER = int(_SSIM_TRUNCATE * SSIM_SIGMA + 0.5)  # 5: half the window
_RANGE_TOLERANCE = 1e-6


def psnr(pred: np.ndarray, target: np.ndarray, *, mask: np.ndarray | None = None, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB: ``10 log10(data_range**2 / MSE)``.

    ``pred``, ``target``: ``(H, W, 3)`` float sRGB in [0, data_range]. The MSE is over all
    channels of the pixels where ``mask`` (``(H, W)`` bool) is True, or of all pixels.
    Identical images give ``inf``.

    >>> a = np.full((4, 4, 3), 0.5)
    >>> round(psnr(a + 0.1, a), 6)  # 10 log10(1 / 0.01)
    20.0
    """
    pred, target, mask = _check(pred, target, mask, data_range)
    if mask is not None:
        pred, target = pred[mask], target[mask]
    if np.array_equal(pred, target):
        return float("inf")
    return float(peak_signal_noise_ratio(target, pred, data_range=data_range))


def ssim(pred: np.ndarray, target: np.ndarray, *, mask: np.ndarray | None = None, data_range: float = 1.0) -> float:
    """Structural similarity (Wang et al. 2004) in [-1, 1]; 1 for identical images.

    ``pred``, ``target``: ``(H, W, 3)`` float sRGB in [0, data_range], at least 11 x 11.
    The per-pixel SSIM map of each channel (11x11 Gaussian window, sigma 1.5, K1 = 0.01,
    K2 = 0.03, population covariance; scikit-image's ``structural_similarity``) is averaged
    over the pixels where ``mask`` is True, per channel, and the three means are averaged.
    As scikit-image does (and Wang's reference code, which filters 'valid'), pixels within 5
    of the image border are left out, so ``mask=None`` equals scikit-image's mean SSIM.
    Pixels outside the mask still enter the windows of the masked pixels near its edge.
    Raises ValueError if the mask has no pixel away from the border.

    >>> a = np.random.default_rng(0).uniform(size=(16, 16, 3))
    >>> ssim(a, a)
    1.0
    """
    pred, target, mask = _check(pred, target, mask, data_range)
    if min(pred.shape[:2]) < 2 * _SSIM_BORDER + 1:
        raise ValueError(
            f"ssim needs images of at least {2 * _SSIM_BORDER + 1}x{2 * _SSIM_BORDER + 1} pixels, got {pred.shape[:2]}"
        )
    _, ssim_map = structural_similarity(
        target,
        pred,
        data_range=data_range,
        channel_axis=-1,
        gaussian_weights=True,
        sigma=SSIM_SIGMA,
        truncate=_SSIM_TRUNCATE,
        use_sample_covariance=False,
        K1=0.01,
        K2=0.03,
        full=True,
    )
    keep = np.zeros(pred.shape[:2], dtype=bool)
    b = _SSIM_BORDER
    keep[b:-b, b:-b] = True
    if mask is not None:
        keep &= mask
        if not keep.any():
            raise ValueError("ssim mask has no pixel at least 5 pixels away from the image border")
    return float(ssim_map[keep].mean(axis=0).mean())


def _check(pred, target, mask, data_range: float):
    """Validated float64 ``(H, W, 3)`` images and bool ``(H, W)`` mask (or None)."""
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    arrays = []
    for name, a in (("pred", pred), ("target", target)):
        a = np.asarray(a)
        if not np.issubdtype(a.dtype, np.floating):
            raise TypeError(f"{name} must be a float sRGB image in [0, {data_range}], got dtype {a.dtype}")
        if a.ndim != 3 or a.shape[-1] != 3:
            raise ValueError(f"{name} must be (H, W, 3), got {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"{name} has non-finite values")
        tol = _RANGE_TOLERANCE * data_range
        if a.min() < -tol or a.max() > data_range + tol:
            raise ValueError(f"{name} must lie in [0, {data_range}], got [{a.min():.4g}, {a.max():.4g}]")
        arrays.append(a.astype(np.float64, copy=False))
    pred, target = arrays
    if pred.shape != target.shape:
        raise ValueError(f"pred and target shapes differ: {pred.shape} vs {target.shape}")
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype != bool or mask.shape != pred.shape[:2]:
            raise ValueError(f"mask must be a bool array of shape {pred.shape[:2]}, got {mask.dtype} {mask.shape}")
        if not mask.any():
            raise ValueError("mask selects no pixel")
    return pred, target, mask
