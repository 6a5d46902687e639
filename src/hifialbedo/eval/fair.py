"""The FAIR protocol's skin-colour metrics (from TRUST, Feng et al. 2022).

An albedo's skin colour is summarised by its Individual Typology Angle: sRGB albedo in
[0, 1] -> CIE L*a*b* (D65; the exact transform, not OpenCV's 8-bit Lab) -> per-pixel
ITA = atan((L* - 50) / b*) in degrees -> the mean over a cheek + forehead skin mask.
Samples are grouped by the *ground-truth* ITA into six skin types; the error of a method
is summarised per type, and the spread of those means is its bias:

    Avg ITA = mean over types of the type's mean |ITA_pred - ITA_gt|
    Bias    = population standard deviation of the same type means
    Score   = Avg ITA + Bias

Types with no sample are left out of Avg and Bias (and reported as missing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hifialbedo.ops.colour import SKIN_TYPES, ita_map, mean_colour_ita, mean_ita, skin_type

# The per-sample measure and the type bins live in ops.colour (the synthetic engine uses them too).
__all__ = ["SKIN_TYPES", "FairScores", "fair_scores", "ita_map", "mean_colour_ita", "mean_ita", "skin_type"]

@dataclass
class FairScores:
    """FAIR summary of a set of samples (degrees)."""

    avg_ita: float
    bias: float
    score: float
    per_type: dict[str, float]  # type -> mean |ITA error| (missing types absent)
    counts: dict[str, int] = field(default_factory=dict)  # type -> samples

    def as_dict(self) -> dict:
        return {"avg_ita": self.avg_ita, "bias": self.bias, "score": self.score, "per_type": self.per_type, "counts": self.counts}


def fair_scores(ita_pred: Sequence[float], ita_gt: Sequence[float]) -> FairScores:
    """Avg ITA, Bias and Score of predictions against ground truth (one ITA per sample).

    >>> s = fair_scores([60, 62, 20], [58, 58, 25])  # type I errors 2, 4; type IV error 5
    >>> s.per_type, round(s.avg_ita, 3), round(s.bias, 3), round(s.score, 3)
    ({'I': 3.0, 'IV': 5.0}, 4.0, 1.0, 5.0)
    """
    pred = np.asarray(ita_pred, dtype=np.float64)
    gt = np.asarray(ita_gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 1 or pred.size == 0:
        raise ValueError(f"need two equal-length, non-empty lists of ITA values, got {pred.shape} and {gt.shape}")
    errors = np.abs(pred - gt)
    types = np.array([skin_type(g) for g in gt])
    per_type: dict[str, float] = {}
    counts: dict[str, int] = {}
    for k, name in enumerate(SKIN_TYPES):
        sel = types == k
        if sel.any():
            per_type[name] = float(errors[sel].mean())
            counts[name] = int(sel.sum())
    means = np.array(list(per_type.values()))
    avg = float(means.mean())
    bias = float(means.std())  # population standard deviation (ddof = 0)
    return FairScores(avg, bias, avg + bias, per_type, counts)
