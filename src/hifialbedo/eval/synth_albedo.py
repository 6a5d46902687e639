"""Albedo error on held-out synthetic identities, for any method and any number of photos.

A *method* maps k renders of one identity (dicts from ``synth.dataset.load_render``: 8-bit
sRGB ``photo``, ``landmarks``, ...) to a UV albedo ``(S, S, 3)`` in linear RGB on the
project's layout. Each identity's renders are split into consecutive groups of k (k = 1:
every render alone); the error of a group is the mean absolute difference from the true
albedo over the face region of the layout (linear RGB, plus ITA error in degrees), and a
k's figure is the mean over groups and identities. The training-free pipeline as such a
method: ``pipeline.methods.training_free_method``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from hifialbedo.mesh.topology import uv_regions
from hifialbedo.ops.colour import mean_ita
from hifialbedo.synth.dataset import load_identity, load_render, read_metadata

AlbedoMethod = Callable[[list[dict]], np.ndarray]


@dataclass(frozen=True)
class SynthAlbedoScores:
    """Per k: mean albedo MAE (linear RGB) and mean absolute ITA error (degrees), and the
    number of groups scored."""

    mae: dict[int, float]
    ita_error: dict[int, float]
    groups: dict[int, int]


def _resize(uv_map: np.ndarray, size: int) -> np.ndarray:
    if uv_map.shape[0] == size:
        return uv_map
    interp = cv2.INTER_AREA if size < uv_map.shape[0] else cv2.INTER_LINEAR
    return cv2.resize(uv_map, (size, size), interpolation=interp)


def score_albedo(pred_linear: np.ndarray, gt_linear: np.ndarray, face: np.ndarray) -> tuple[float, float]:
    """(MAE, |ITA error|) of a predicted UV albedo against the truth over ``face (S, S)``;
    the prediction is resampled to the truth's size."""
    pred = _resize(np.asarray(pred_linear, dtype=np.float32), gt_linear.shape[0])
    mae = float(np.abs(pred - gt_linear)[face].mean())
    return mae, abs(mean_ita(pred, face) - mean_ita(gt_linear, face))


def evaluate_synth_albedo(
    method: AlbedoMethod, root: str | Path, *, split: str | None = "val", ks: Sequence[int] = (1, 3, 6), max_identities: int | None = None
) -> SynthAlbedoScores:
    """Score ``method`` on the identities of ``split`` of a synthetic dataset folder."""
    root = Path(root)
    meta = read_metadata(root)
    per_identity = int(meta["counts"]["renders_per_identity"])
    identities = [int(d["id"]) for d in meta["identities"] if split is None or d["split"] == split]
    if max_identities is not None:
        identities = identities[:max_identities]
    if not identities:
        raise ValueError(f"{root}: no identities in split {split!r}")
    mae: dict[int, list[float]] = {k: [] for k in ks}
    ita: dict[int, list[float]] = {k: [] for k in ks}
    for identity in identities:
        gt = load_identity(root, identity)["albedo"].astype(np.float32)
        face = uv_regions(gt.shape[0])["face"]
        renders = [load_render(root, identity, r) for r in range(per_identity)]
        for k in ks:
            if k > per_identity:
                raise ValueError(f"k = {k} > {per_identity} renders per identity in {root}")
            for g in range(per_identity // k):
                m, e = score_albedo(method(renders[g * k : (g + 1) * k]), gt, face)
                mae[k].append(m)
                ita[k].append(e)
    return SynthAlbedoScores(
        {k: float(np.mean(v)) for k, v in mae.items()}, {k: float(np.mean(v)) for k, v in ita.items()}, {k: len(v) for k, v in mae.items()}
    )


def mean_albedo_method(value_linear: Sequence[float]) -> AlbedoMethod:
    """A constant albedo (e.g. the training set's mean): the floor any method must beat."""
    colour = np.asarray(value_linear, dtype=np.float32)

    def method(renders: list[dict]) -> np.ndarray:
        return np.broadcast_to(colour, (64, 64, 3)).copy()

    return method
