"""The held-out synthetic albedo evaluation: hand-made scores, an oracle and a constant."""

from __future__ import annotations

import numpy as np
import pytest

from hifialbedo.eval.synth_albedo import evaluate_synth_albedo, mean_albedo_method, score_albedo
from hifialbedo.synth import PRESETS, write_dataset
from hifialbedo.synth.dataset import load_identity


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    from dataclasses import replace

    root = tmp_path_factory.mktemp("synth") / "set"
    write_dataset(root, replace(PRESETS["tiny"], n_identities=3, renders_per_identity=2))
    return root


def test_score_albedo_hand_computed():
    gt = np.full((4, 4, 3), 0.5, np.float32)
    pred = gt.copy()
    pred[0, 0] = [0.9, 0.5, 0.5]  # one texel off by 0.4 in red
    face = np.zeros((4, 4), bool)
    face[:2, :2] = True
    mae, ita = score_albedo(pred, gt, face)
    assert mae == pytest.approx(0.4 / 12)  # 4 texels x 3 channels
    assert ita > 0


def test_oracle_scores_zero_and_constant_does_not(synth_root):
    scores_const = evaluate_synth_albedo(mean_albedo_method([0.4, 0.25, 0.2]), synth_root, split=None, ks=(1, 2))
    assert scores_const.groups == {1: 6, 2: 3}
    assert scores_const.mae[1] > 0.02

    ids = iter([0, 0, 0, 1, 1, 1, 2, 2, 2])  # identities in order, groups of k = 1 then k = 2

    def oracle_by_order(renders):
        return load_identity(synth_root, next(ids))["albedo"]

    scores = evaluate_synth_albedo(oracle_by_order, synth_root, split=None, ks=(1, 2))
    assert scores.mae == {1: 0.0, 2: 0.0} and scores.ita_error == {1: 0.0, 2: 0.0}
