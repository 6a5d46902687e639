"""``reconstruct --model``: the learned path writes the same outputs as the training-free one,
with the albedo from the model."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch

from hifialbedo.cli import main
from hifialbedo.models.albedo_model import HiFiAlbedo, HiFiAlbedoConfig
from hifialbedo.models.vqgan import vq_config

GRACE = Path(__file__).resolve().parents[1] / "samples" / "grace_hopper.jpg"


def _model_file(tmp_path):
    torch.manual_seed(0)
    vq = vq_config("tiny", image_size=32)
    model = HiFiAlbedo(HiFiAlbedoConfig.for_vq(vq, 32))
    return model.save_pretrained(tmp_path / "model.pt")


def test_reconstruct_with_model_writes_the_contract(tmp_path):
    model = _model_file(tmp_path)
    out_free, out_learned = tmp_path / "free", tmp_path / "learned"
    assert main(["reconstruct", str(GRACE), "-o", str(out_free), "--uv-size", "64", "--quiet"]) == 0
    assert main(["reconstruct", str(GRACE), "-o", str(out_learned), "--uv-size", "64", "--model", str(model), "--quiet"]) == 0
    free = sorted(p.relative_to(out_free).as_posix() for p in out_free.rglob("*"))
    learned = sorted(p.relative_to(out_learned).as_posix() for p in out_learned.rglob("*"))
    assert free == learned
    a = cv2.imread(str(out_free / "albedo.png"), cv2.IMREAD_UNCHANGED)
    b = cv2.imread(str(out_learned / "albedo.png"), cv2.IMREAD_UNCHANGED)
    assert a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).mean() > 1  # a different albedo
    report = json.loads((out_learned / "report.json").read_text())
    assert report["config"]["model"] == str(model) and "learned_model" in report["timings_s"]


def test_reconstruct_with_a_bad_model_file(tmp_path, capsys):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["reconstruct", str(GRACE), "-o", str(tmp_path / "out"), "--model", str(bad), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "model.pt" in err and not (tmp_path / "out").exists()
