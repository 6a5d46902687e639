"""Fusing per-photo albedos of one person into one.

HiFiAlbedo's premise: averaged over many lightings, the estimate approaches the true
albedo. Each photo's albedo carries its own error in overall colour and brightness (the
priors' guess) plus local errors (a shadow, a highlight, an odd light). Fusion therefore
(1) brings every photo's albedo to a common colour scale: by given gains (the pipeline's:
each photo's mean skin albedo to the person's consensus, ``inverse.priors.consensus``), or by
a robust per-channel gain against the per-texel median, the gains centred so that their
log-median is 0 (the consensus scale is the median photo's, not the first's); (2) takes a per-texel robust
mean: weights = confidence x a Cauchy weight on the distance from the current estimate
(an odd photo's outlying texels drop out, iterated) x a per-photo weight from its
overall disagreement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hifialbedo.ops.colour import LUMA_WEIGHTS


@dataclass(frozen=True)
class FusionResult:
    albedo: np.ndarray  # (N, 3) linear RGB
    confidence: np.ndarray  # (N,) in [0, 1]
    gains: np.ndarray  # (K, 3) per-photo colour gains applied
    photo_weights: np.ndarray  # (K,) overall weight of each photo


def _weighted_mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """sum_k w_k v_k / sum_k w_k ``(3, N)`` of values ``(K, 3, N)`` and weights ``(K, N)``,
    accumulated photo by photo (no ``(K, 3, N)`` temporary)."""
    total = values[0] * weights[0]
    for k in range(1, len(values)):
        total += values[k] * weights[k]
    total /= np.maximum(weights.sum(axis=0), 1e-9)
    return total


def fuse_albedos(albedos: np.ndarray, confidences: np.ndarray, *, robust_scale: float = 0.08, gains: np.ndarray | None = None) -> FusionResult:
    """Fuse ``albedos (K, N, 3)`` (linear RGB) with ``confidences (K, N)`` into one ``(N, 3)``.

    ``robust_scale``: the albedo difference (linear units) at which a texel's weight halves.
    ``gains (K, 3)``: each photo's colour gain; None: found from the albedos (median photo's scale).

    >>> a = np.full((3, 4, 3), 0.4, np.float32); a[2] *= 2.0  # a third photo twice as bright
    >>> r = fuse_albedos(a, np.ones((3, 4), np.float32))
    >>> r.albedo.astype(float).round(3).tolist()[0], r.gains.round(3)[:, 0].tolist()
    ([0.4, 0.4, 0.4], [1.0, 1.0, 0.5])
    """
    k = albedos.shape[0]
    if k == 1:
        g = np.ones((1, 3)) if gains is None else np.asarray(gains, dtype=np.float64).reshape(1, 3)
        return FusionResult(np.clip(albedos[0] * g[0].astype(np.float32), 0, 1), confidences[0], g, np.ones(1))
    a = albedos.astype(np.float32, copy=False)
    conf = np.clip(confidences, 0.0, None).astype(np.float32)
    # Gains from a subsample of texels every photo saw well: a per-channel log-ratio median.
    seen = np.flatnonzero((conf > 0.3).all(axis=0))
    if seen.size < 100:
        seen = np.flatnonzero(conf.sum(axis=0) > 0)
    sub = seen[:: max(1, seen.size // 20000)]
    if gains is None:
        log_a = np.log(np.maximum(a[:, sub], 1e-4))
        consensus_log = np.median(log_a, axis=0)
        gains = np.exp(np.median(consensus_log[None] - log_a, axis=1))  # (K, 3)
        gains /= np.exp(np.median(np.log(gains), axis=0))  # the median photo sets the scale
    gains = np.asarray(gains, dtype=np.float64)
    # The scaled albedos as (K, 3, N) rows: each pass below runs over contiguous texels.
    scaled = a.transpose(0, 2, 1) * gains[:, :, None].astype(np.float32)

    # Robust per-texel mean: start from the confidence-weighted mean, then two rounds of
    # Cauchy reweighting on the distance to the current estimate.
    luma = LUMA_WEIGHTS.astype(np.float32)
    w = conf.copy()
    photo_w = np.ones(k, dtype=np.float32)
    for _ in range(3):
        fused = _weighted_mean(scaled, w)
        # |diff| and lum(diff) (K, N) of diff = scaled - fused, a channel at a time.
        square = np.zeros(w.shape, np.float32)
        lum = np.zeros(w.shape, np.float32)
        for c in range(3):
            diff = scaled[:, c] - fused[c]
            lum += diff * luma[c]
            diff *= diff
            square += diff
        dist = np.abs(lum) + 0.5 * np.sqrt(square)
        texel_w = 1.0 / (1.0 + (dist / robust_scale) ** 2)
        # A photo that disagrees overall (an odd light the model cannot explain) counts less.
        typical = (dist * conf).sum(axis=1) / np.maximum(conf.sum(axis=1), 1e-9)
        photo_w = 1.0 / (1.0 + (typical / (np.median(typical) * 2.0 + 1e-6)) ** 2)
        w = conf * texel_w * photo_w[:, None]
    fused = np.clip(_weighted_mean(scaled, w), 0, 1).T
    fused_conf = np.clip(np.max(conf * texel_w, axis=0), 0.0, 1.0)
    return FusionResult(np.ascontiguousarray(fused, dtype=np.float32), fused_conf.astype(np.float32), gains, photo_w)
