"""Fusing per-photo albedos of one person into one.

HiFiAlbedo's premise: averaged over many lightings, the estimate approaches the true
albedo. Each photo's albedo carries its own error in overall colour and brightness (the
priors' guess) plus local errors (a shadow, a highlight, an odd light). Fusion therefore
(1) brings every photo's albedo to a common colour scale by a robust per-channel gain
against the consensus, the gains centred so that their log-median is 0 (the consensus
scale is the median photo's, not the first's); (2) takes a per-texel weighted mean with
weights = confidence x a Cauchy weight on the distance from the per-texel weighted median
(an odd photo's outlying texels drop out) x a per-photo weight from its overall
disagreement.
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


def weighted_median(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-texel weighted median over photos: values ``(K, N, C)``, weights ``(K, N)`` -> ``(N, C)``."""
    order = np.argsort(values, axis=0)
    v = np.take_along_axis(values, order, axis=0)
    w = np.take_along_axis(np.broadcast_to(weights[..., None], values.shape), order, axis=0)
    cw = np.cumsum(w, axis=0)
    half = cw[-1:] * 0.5
    pick = np.argmax(cw >= half, axis=0)[None]
    return np.take_along_axis(v, pick, axis=0)[0]


def fuse_albedos(albedos: np.ndarray, confidences: np.ndarray, *, robust_scale: float = 0.08) -> FusionResult:
    """Fuse ``albedos (K, N, 3)`` (linear RGB) with ``confidences (K, N)`` into one ``(N, 3)``.

    ``robust_scale``: the albedo difference (linear units) at which a texel's weight halves.
    """
    k = albedos.shape[0]
    conf = np.clip(confidences, 0.0, None).astype(np.float64)
    if k == 1:
        return FusionResult(albedos[0], confidences[0], np.ones((1, 3)), np.ones(1))
    a = albedos.astype(np.float64)
    consensus = weighted_median(a, conf + 1e-9)
    gains = np.ones((k, 3))
    for _ in range(2):
        for i in range(k):
            both = (conf[i] > 0.3) & (conf.sum(axis=0) > 0.6)
            if both.sum() < 100:
                continue
            ratio = np.log(np.maximum(consensus[both], 1e-4)) - np.log(np.maximum(a[i, both], 1e-4))
            gains[i] = np.exp(np.median(ratio, axis=0))
        gains /= np.exp(np.median(np.log(gains), axis=0))  # the median photo sets the scale
        consensus = weighted_median(a * gains[:, None, :], conf + 1e-9)
    scaled = a * gains[:, None, :]
    dist = np.abs((scaled - consensus[None]) @ LUMA_WEIGHTS) + 0.5 * np.linalg.norm(scaled - consensus[None], axis=-1)
    texel_w = 1.0 / (1.0 + (dist / robust_scale) ** 2)
    # A photo that disagrees overall (an odd light the model cannot explain) counts less.
    typical = np.array([np.average(dist[i], weights=conf[i] + 1e-9) for i in range(k)])
    photo_w = 1.0 / (1.0 + (typical / (np.median(typical) * 2.0 + 1e-6)) ** 2)
    w = conf * texel_w * photo_w[:, None]
    fused = (w[..., None] * scaled).sum(axis=0) / np.maximum(w.sum(axis=0), 1e-9)[..., None]
    fused = np.where(w.sum(axis=0)[..., None] > 1e-9, fused, consensus)
    fused_conf = np.clip(np.max(conf * texel_w, axis=0), 0.0, 1.0)
    return FusionResult(np.clip(fused, 0, 1).astype(np.float32), fused_conf.astype(np.float32), gains, photo_w)
