"""Completion of distrusted texels (``inverse.completion``): mirror, inpainting, feathering."""

from __future__ import annotations

import numpy as np
import pytest

from hifialbedo.inverse.completion import complete_uv, feather_confidence, push_pull

S = 64


def _disc(centre: tuple[int, int], radius: float) -> np.ndarray:
    yy, xx = np.mgrid[:S, :S]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def test_push_pull_keeps_trusted_values_and_fills_a_hole_from_around_it():
    values = np.full((S, S, 3), 0.6, np.float32)
    hole = _disc((32, 20), 6)
    values[hole] = 0.0  # what was measured there is not to be used
    filled = push_pull(values, (~hole).astype(np.float32))
    assert filled[~hole] == pytest.approx(0.6, abs=1e-5)
    assert filled[hole] == pytest.approx(0.6, abs=1e-3)


def test_a_distrusted_texel_takes_its_mirror_texels_value():
    face = np.ones((S, S), bool)
    albedo = np.full((S, S, 3), 0.5, np.float32)
    albedo[:, : S // 2] = 0.3  # the left half is darker than the right
    confidence = np.ones((S, S), np.float32)
    confidence[30:34, 10:14] = 0.0  # a highlight on the left; its mirror is (30:34, 50:54)
    albedo[30:34, 10:14] = 1.0
    completed, combined = complete_uv(albedo, confidence, face)
    assert completed[30:34, 10:14] == pytest.approx(0.5, abs=1e-5)  # the right half's value
    assert completed[0:20] == pytest.approx(albedo[0:20], abs=1e-5)  # the rest as measured
    assert combined.min() == pytest.approx(1.0)


def test_feathering_erodes_a_distrusted_patch_smoothly_and_leaves_the_face_border():
    face = np.zeros((S, S), bool)
    face[4:60, 4:60] = True
    confidence = np.where(face, 1.0, 0.0).astype(np.float32)
    patch = _disc((32, 32), 6)
    confidence[patch] = 0.0
    out = feather_confidence(confidence, face, 3.0)
    dist = np.hypot(*(np.mgrid[:S, :S] - 32))
    assert out[patch].max() < 0.05
    rim = face & (dist > 6) & (dist <= 8)  # just outside the patch: now distrusted too
    assert out[rim].max() < 0.5
    assert out[face & (dist > 6 + 3 * 3)] == pytest.approx(1.0, abs=1e-3)  # far: untouched
    assert out[4, 30] == pytest.approx(1.0) and out[30, 59] == pytest.approx(1.0)  # the border is not eaten
    assert (out[~face] == 0).all()
    assert feather_confidence(confidence, face, 0.0) is confidence
    assert feather_confidence(confidence, face, 0.4) is confidence  # a 64-texel map at 0.4 % of its side


def test_feathering_fills_the_rim_of_a_patch_instead_of_leaving_a_line_around_it():
    # A cast shadow flagged as an outlier, on both sides (no mirror to take), with a
    # penumbra one texel wide that stayed under the outlier threshold.
    face = np.ones((S, S), bool)
    albedo = np.full((S, S, 3), 0.6, np.float32)
    confidence = np.ones((S, S), np.float32)
    for c in ((32, 20), (32, S - 1 - 20)):
        shadow, penumbra = _disc(c, 5), _disc(c, 6.5) & ~_disc(c, 5)
        albedo[shadow], confidence[shadow] = 0.1, 0.0
        albedo[penumbra] = 0.35
    rim = _disc((32, 20), 6.5) & ~_disc((32, 20), 5)
    plain, _ = complete_uv(albedo, confidence, face)
    feathered, _ = complete_uv(albedo, confidence, face, feather=3.0)
    assert plain[rim].min() == pytest.approx(0.35, abs=1e-3)  # the line around the patch
    assert feathered[rim].min() > 0.5 and feathered[_disc((32, 20), 5)].min() > 0.5
    assert feathered[:10] == pytest.approx(albedo[:10], abs=1e-4)  # far from it: as measured
