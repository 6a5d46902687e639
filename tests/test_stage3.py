"""Stage 3 (albedo from any number of photos, group identity loss) and the inference model ``HiFiAlbedo``.

Toy scale: the tiny VQ (random weights; E_uv a copy of its encoder, as stage 2 starts),
64 px UV textures and a tiny synthetic set (3 identities x 8 renders at 64 px).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from hifialbedo.models.albedo_model import HiFiAlbedo, HiFiAlbedoConfig
from hifialbedo.models.attention import AlbedoAttentionConfig
from hifialbedo.models.identity import IdentityNet
from hifialbedo.models.saved import load_checkpoint
from hifialbedo.models.vqgan import VQAutoencoder, vq_config
from hifialbedo.training.checkpoint import save_checkpoint
from hifialbedo.training.config import TrainConfig
from hifialbedo.training.metrics import read_metrics
from hifialbedo.training.stage3 import (
    STAGE3_PRESETS,
    AlbedoStage,
    Stage3Config,
    build_stage3,
    draw_photo_mask,
    identity_outliers,
    stage3_config,
    stage3_dataset,
)

UV = 64
GROUP = 4


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tiny_vq(seed: int = 0) -> tuple[VQAutoencoder, torch.nn.Module]:
    """A random tiny VQ whose codes are spread like its encoder's outputs (so codes differ), and E_uv = a copy of E."""
    torch.manual_seed(seed)
    vq = VQAutoencoder(vq_config("tiny")).eval()
    with torch.no_grad():
        z = vq.encode(torch.rand(4, 3, UV, UV) * 2 - 1)
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        pick = torch.randperm(flat.shape[0])[: vq.config.codebook_size]
        vq.quantizer.embedding.weight.copy_(flat[pick] + 0.01 * torch.randn_like(flat[pick]))
    return vq, copy.deepcopy(vq.encoder)


@pytest.fixture(scope="module")
def tiny_vq():
    return _tiny_vq()


@pytest.fixture(scope="module")
def model(tiny_vq) -> HiFiAlbedo:
    """A HiFiAlbedo whose attention is far from its mean-of-photos start (random keys), so order tests bite."""
    vq, enc = tiny_vq
    config = HiFiAlbedoConfig.for_vq(vq.config, UV, AlbedoAttentionConfig(num_heads=2))
    m = HiFiAlbedo(config, vq=copy.deepcopy(vq), encoder_uv=copy.deepcopy(enc))
    torch.manual_seed(1)
    with torch.no_grad():
        m.attention.to_k.weight.normal_(0.0, 0.5)
        m.lighting.head.weight.normal_(0.0, 0.05)
    return m


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    from hifialbedo.synth import PRESETS, write_dataset

    root = tmp_path_factory.mktemp("stage3") / "synth"
    return write_dataset(root, dataclasses.replace(PRESETS["tiny"], n_identities=3, renders_per_identity=2 * GROUP))


def _photos(b: int, n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, n, 3, UV, UV, generator=g)


# --------------------------------------------------------------------------- the model


def test_output_shapes_for_any_number_of_photos(model):
    d, h = model.config.vq.embed_dim, UV // model.config.vq.downsample_factor
    with torch.no_grad():
        for n in range(1, 7):
            out = model(_photos(2, n, seed=n))
            assert out.albedo.shape == out.albedo_linear.shape == (2, 3, UV, UV)
            assert out.latents.shape == (2, n, d, h, h) and out.albedo_latent.shape == (2, d, h, h)
            assert out.indices.shape == (2, h, h) and out.indices.dtype == torch.int64
            assert out.sh.shape == (2, n, 9, 3)
            assert 0.0 <= float(out.albedo.min()) and float(out.albedo.max()) <= 1.0
            assert torch.all(out.albedo_linear <= out.albedo + 1e-6)  # sRGB -> linear darkens
    with pytest.raises(ValueError, match=r"photo_uv must be \(B, n, 3, 64, 64\)"):
        model(torch.rand(1, 3, UV, UV))
    with pytest.raises(ValueError, match="at least one real photo"):
        model(_photos(1, 2), torch.zeros(1, 2, dtype=torch.bool))


def test_albedo_independent_of_photo_order(model):
    photos = _photos(2, 5, seed=7)
    perm = torch.tensor([3, 0, 4, 2, 1])
    with torch.no_grad():
        a, b = model(photos), model(photos[:, perm])
    assert (a.albedo - b.albedo).abs().max() < 1e-5
    assert torch.equal(a.indices, b.indices)
    assert torch.allclose(a.sh[:, perm], b.sh, atol=1e-6) and torch.allclose(a.latents[:, perm], b.latents, atol=1e-6)
    with torch.no_grad():  # the attention really mixes the photos: another set gives another albedo
        assert (model(photos[:, :2]).albedo - a.albedo).abs().max() > 1e-3


def test_mask_equals_dropping_photos(model):
    photos = _photos(2, 5, seed=3)
    mask = torch.tensor([[True, False, True, True, False], [False, True, False, False, False]])
    with torch.no_grad():
        masked = model(photos, mask)
        first = model(photos[:1, [0, 2, 3]])
        second = model(photos[1:, [1]])
    assert (masked.albedo[:1] - first.albedo).abs().max() < 1e-5
    assert (masked.albedo[1:] - second.albedo).abs().max() < 1e-5
    assert torch.equal(masked.indices, torch.cat([first.indices, second.indices]))


def test_config_round_trips_and_checks(tiny_vq):
    vq, _ = tiny_vq
    config = HiFiAlbedoConfig.for_vq(vq.config, UV)
    assert HiFiAlbedoConfig.from_dict(config.to_dict()) == config and config.uv_size == UV
    with pytest.raises(ValueError, match="must equal vq.embed_dim"):
        dataclasses.replace(config, attention=dataclasses.replace(config.attention, latent_dim=8))
    for name, preset in STAGE3_PRESETS.items():
        assert Stage3Config.from_dict(preset.to_dict()) == preset, name
    tiny = stage3_config("tiny")
    assert tiny.model_config(vq.config).attention == tiny.attention  # the preset fits the tiny VQ
    assert tiny.uv_size == 0 and tiny.resolved(vq.config).uv_size == UV  # 0: the VQ's image_size, as stage 2
    assert stage3_config("tiny", uv_size=128).resolved(vq.config).attention.height == 32
    paper = stage3_config("paper")
    assert (paper.group_size, paper.gid_weight, paper.l1_weight, paper.lpips_weight) == (4, 1.0, 10.0, 0.1)
    assert (paper.albedo_weight, STAGE3_PRESETS["tiny"].albedo_weight) == (0.0, 10.0)  # the paper has no true albedos
    assert paper.model_config(vq_config("paper")).attention.height == 64
    updated = tiny.updated({"attention.num_heads": 2, "lighting": {"hidden_channels": 8}, "min_photos": 2})
    assert (updated.attention.num_heads, updated.lighting.hidden_channels, updated.min_photos) == (2, 8, 2)
    assert updated.attention.height == tiny.attention.height
    with pytest.raises(ValueError, match="min_photos"):
        stage3_config("tiny", min_photos=5)
    with pytest.raises(ValueError, match="unknown stage3.Stage3Config settings"):
        stage3_config("tiny", gid_wieght=1.0)
    with pytest.raises(ValueError, match="stage3.l1_weight: expected float"):
        Stage3Config.from_dict({"l1_weight": "ten"})
    with pytest.raises(ValueError, match="unknown stage-3 preset"):
        stage3_config("huge")


# --------------------------------------------------------------------------- photo selection


def test_draw_photo_mask_is_random_in_range_and_deterministic():
    allowed = torch.ones(64, 4, dtype=torch.bool)
    allowed[:, 1] = False
    masks = [draw_photo_mask(allowed, 2, step) for step in range(20)]
    for m in masks:
        counts = m.sum(dim=1)
        assert int(counts.min()) >= 2 and int(counts.max()) <= 3  # [min_photos, n] capped at the 3 allowed
        assert not m[:, 1].any()
    assert torch.equal(masks[5], draw_photo_mask(allowed, 2, 5))
    assert not all(torch.equal(masks[0], m) for m in masks[1:])
    seen = {int(c) for m in masks for c in m.sum(dim=1)}
    assert seen == {2, 3}
    only = torch.tensor([[False, False, True]])
    assert draw_photo_mask(only, 3, 0).tolist() == [[False, False, True]]


def test_identity_outliers_rule():
    g = torch.Generator().manual_seed(0)
    person = torch.randn(128, generator=g)
    person = person / person.norm()
    same = person + 0.02 * torch.randn(3, 128, generator=g)  # within ~0.25 of each other
    other = -person  # 2 away
    desc = torch.stack([torch.cat([same[:2], other[None], same[2:]]), torch.cat([same, same[:1]])])
    assert identity_outliers(desc, 0.6).tolist() == [[False, False, True, False], [False, False, False, False]]


def _crop(image: np.ndarray, landmarks: np.ndarray, size: int, shift=(0.0, 0.0), scale=1.0, gamma=1.0):
    """A square crop around the face (face height = half the side) as (3, size, size) sRGB and (478, 3) landmarks."""
    p = landmarks[:468, :2]
    (x0, y0), (x1, y1) = p.min(axis=0), p.max(axis=0)
    cx, cy, half = (x0 + x1) / 2 + shift[0], (y0 + y1) / 2 + shift[1], max(x1 - x0, y1 - y0) * scale
    s = size / (2 * half)
    affine = np.array([[s, 0.0, -(cx - half) * s], [0.0, s, -(cy - half) * s]])
    crop = cv2.warpAffine(image, affine, (size, size), flags=cv2.INTER_AREA)
    marks = landmarks.astype(np.float64).copy()
    marks[:, :2] = landmarks[:, :2] @ affine[:, :2].T + affine[:, 2]
    marks[:, 2] *= s
    photo = (torch.from_numpy(crop).permute(2, 0, 1).float() / 255.0) ** gamma
    return photo, torch.from_numpy(marks).float()


def test_outlier_filter_drops_another_person(grace, astronaut, tiny_vq):
    """Three photos of one person (crops and tone changes of one picture) and one of another person."""
    crops = [
        _crop(*grace, 128),
        _crop(*grace, 128, shift=(5.0, -3.0), scale=1.1, gamma=0.8),
        _crop(*astronaut, 128),
        _crop(*grace, 128, shift=(-4.0, 2.0), scale=0.9, gamma=1.3),
    ]
    batch = {
        "photo_srgb": torch.stack([c[0] for c in crops])[None],
        "landmarks": torch.stack([c[1] for c in crops])[None],
        "photo_uv": torch.full((1, 4, 3, UV, UV), 0.5),
    }
    stage = AlbedoStage(stage3_config("tiny", lpips_weight=0.0), *tiny_vq)
    torch.manual_seed(0)
    modules = stage.build()
    for step in range(6):
        keep, outliers = stage.photo_mask(modules, batch, step)
        assert outliers.tolist() == [[False, False, True, False]]
        assert not keep[0, 2] and keep.any()
    loss, metrics = stage.loss(modules, batch, 0, "generator")
    assert metrics["photos_outliers"] == 1.0 and math.isfinite(loss.item())
    off = AlbedoStage(stage3_config("tiny", lpips_weight=0.0, outlier_threshold=0.0), *tiny_vq)
    assert not off.photo_mask(modules, batch, 0)[1].any()


def test_supervised_albedo_term(tiny_vq, synth_dir):
    """albedo_weight adds w * L1(albedo, truth) in linear RGB on the UV face mask, with gradient to the attention."""
    from hifialbedo.ops.colour import srgb_to_linear

    stage = AlbedoStage(stage3_config("tiny", use_identity=False, lpips_weight=0.0, albedo_weight=2.0), *tiny_vq)
    modules = stage.build()
    batch = default_collate([stage3_dataset([("synth", synth_dir)], stage.config)[i] for i in (0, 9)])
    loss, metrics = stage.loss(modules, batch, 0, "generator")
    keep = stage.photo_mask(modules, batch, 0)[0]
    with torch.no_grad():
        albedo = stage.forward(modules, batch["photo_uv"], keep).albedo
    diff = (srgb_to_linear(albedo) - srgb_to_linear(batch["albedo_uv_srgb"])).abs()
    face = batch["uv_mask"].expand_as(diff) > 0
    assert metrics["loss/albedo_l1"] == pytest.approx(float(diff[face].mean()), rel=1e-4)
    assert 0.01 < metrics["loss/albedo_l1"] < 1.0
    assert loss.item() == pytest.approx(10.0 * metrics["loss/l1"] + 2.0 * metrics["loss/albedo_l1"], rel=1e-5)
    loss.backward()
    assert float(modules["attention"].query.grad.abs().sum()) > 0
    # Items without a true albedo (real photos) skip the term.
    _, without = stage.loss(modules, {k: v for k, v in batch.items() if k != "albedo_uv_srgb"}, 0, "generator")
    assert "loss/albedo_l1" not in without and "albedo_mae" not in without
    with pytest.raises(ValueError):
        stage3_config("tiny", albedo_weight=-1.0)
    with pytest.raises(ValueError):
        stage3_config("tiny", synth_groups="random")


# --------------------------------------------------------------------------- training


def _train_config(out_dir, **changes) -> TrainConfig:
    base = {
        "out_dir": str(out_dir),
        "accelerator": "cpu",
        "num_workers": 0,
        "batch_size": 1,
        "lr": 1e-2,
        "log_every": 1,
        "sample_every": 0,
        "ckpt_every": 1000,
        "seed": 0,
    }
    return TrainConfig.from_dict({**base, **changes})


def _states(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synth_dir, tiny_vq):
    """3 steps of the full loss (L_gid + L1 + LPIPS, outlier filter on), samples at step 3."""
    from hifialbedo.training.engine import fit

    stage = AlbedoStage(stage3_config("tiny", synth_groups="disjoint"), *tiny_vq)
    dataset = stage3_dataset([("synth", synth_dir)], stage.config)
    config = _train_config(tmp_path_factory.mktemp("run"), max_steps=3, sample_every=3)
    torch.manual_seed(config.seed)
    initial = {name: _states(m) for name, m in stage.build().items()}  # what fit builds (same seed)
    result = fit(stage, dataset, config)
    return stage, dataset, config, initial, result


@pytest.mark.slow
def test_training_logs_every_term_and_trains_only_attention_and_lighting(trained):
    stage, dataset, config, initial, result = trained
    assert len(dataset) == 4 and result.step == 3
    rows = read_metrics(f"{config.out_dir}/metrics.csv")
    assert [r["step"] for r in rows] == [1, 2, 3]
    for key in ("loss/generator", "loss/l1", "loss/lpips", "loss/gid", "loss/albedo_l1", "albedo_mae", "photos_kept", "photos_outliers"):
        assert all(math.isfinite(r[key]) for r in rows), key
    assert all(1 <= r["photos_kept"] <= GROUP for r in rows)
    for r in rows:  # eq. 10 (1, 10, 0.1) plus the tiny preset's supervised albedo term (10)
        total = 10.0 * r["loss/l1"] + 0.1 * r["loss/lpips"] + 1.0 * r["loss/gid"] + 10.0 * r["loss/albedo_l1"]
        assert r["loss/generator"] == pytest.approx(total, rel=1e-4)

    ckpt = load_checkpoint(result.checkpoint)
    assert set(ckpt["modules"]) == {"vq", "encoder_uv", "attention", "lighting", "identity", "lpips"}
    assert set(ckpt["optimizers"]) == {"generator"}
    assert ckpt["stage_config"] == stage.config_dict() and ckpt["stage_config"]["stage"] == "stage3"
    for name, state in ckpt["modules"].items():
        changed = any(not torch.equal(state[k], initial[name][k]) for k in state)
        assert changed == (name in ("attention", "lighting")), name
    vq, enc = stage.vq, stage.encoder_uv  # the stage-2 models it was given are untouched too
    assert all(torch.equal(v, ckpt["modules"]["vq"][k]) for k, v in vq.state_dict().items())
    assert all(torch.equal(v, ckpt["modules"]["encoder_uv"][k]) for k, v in enc.state_dict().items())

    samples = sorted(p.name for p in (Path(config.out_dir) / "samples").iterdir())
    assert samples == [f"step_0000003_{n}.png" for n in sorted(("albedo", "albedo_gt", "photo_uv", "photos", "renders"))]


@pytest.mark.slow
def test_checkpoint_round_trip_gives_identical_outputs(trained, tmp_path):
    stage, dataset, _, _, result = trained
    model = HiFiAlbedo.from_checkpoint(result.checkpoint)
    assert model.config == stage.model_config and not model.training
    ckpt = load_checkpoint(result.checkpoint)
    modules = stage.build()
    for name, m in modules.items():
        m.load_state_dict(ckpt["modules"][name])
        m.eval()
    batch = default_collate([dataset[0], dataset[1]])
    mask = torch.tensor([[True, True, False, True], [False, True, True, True]])
    with torch.no_grad():
        expected = stage.forward(modules, batch["photo_uv"], mask)
        got = model(batch["photo_uv"], mask)
    for field in ("albedo", "albedo_linear", "latents", "albedo_latent", "indices", "sh"):
        assert torch.equal(getattr(got, field), getattr(expected, field)), field

    model.save_pretrained(tmp_path / "hifialbedo.pt")
    again = HiFiAlbedo.from_pretrained(tmp_path / "hifialbedo.pt")
    with torch.no_grad():
        assert torch.equal(again(batch["photo_uv"], mask).albedo, got.albedo)

    other = dict(ckpt, stage_config={"stage": "stage1", "stage1": {}})
    save_checkpoint(other, tmp_path / "s1", keep_last=0)
    with pytest.raises(ValueError, match=r"step_0000003\.ckpt: not a stage-3 \(albedo\) checkpoint"):
        HiFiAlbedo.from_checkpoint(tmp_path / "s1" / "step_0000003.ckpt")
    with pytest.raises(ValueError, match="last.ckpt: not a HiFiAlbedo model file"):
        HiFiAlbedo.from_pretrained(result.checkpoint)


@pytest.mark.slow
def test_short_run_lowers_the_l1_term(tmp_path, synth_dir, tiny_vq):
    """40 steps (10 epochs of the 4 groups) on all photos of each group, L1 + LPIPS (no identity network: the cheap terms)."""
    from hifialbedo.training.engine import fit

    stage = AlbedoStage(stage3_config("tiny", use_identity=False, min_photos=GROUP, synth_groups="disjoint"), *tiny_vq)
    dataset = stage3_dataset([("synth", synth_dir)], stage.config)
    fit(stage, dataset, _train_config(tmp_path, max_steps=40))
    l1 = np.array([r["loss/l1"] for r in read_metrics(tmp_path / "metrics.csv")])
    assert l1.shape == (40,) and np.isfinite(l1).all()
    per_epoch = l1.reshape(10, len(dataset)).mean(axis=1)  # each epoch sees every group once
    assert per_epoch[-1] < 0.85 * per_epoch[0] and per_epoch[-3:].mean() < per_epoch[:3].mean(), per_epoch


# --------------------------------------------------------------------------- building


def test_build_stage3(monkeypatch, synth_dir, tiny_vq, tmp_path):
    with pytest.raises(ValueError, match="needs init= a stage-2 checkpoint"):
        build_stage3({}, [("synth", synth_dir)], "tiny", None)
    calls = []

    def load_stage2_model(path):
        calls.append(path)
        return tiny_vq

    monkeypatch.setitem(sys.modules, "hifialbedo.training.stage2", types.SimpleNamespace(load_stage2_model=load_stage2_model))
    stage, dataset = build_stage3(
        {"group_size": 3, "attention.num_heads": 2, "synth_groups": "disjoint"}, [("synth", synth_dir)], "tiny", tmp_path / "s2.ckpt"
    )
    assert calls == [tmp_path / "s2.ckpt"]
    assert stage.config.group_size == 3 and stage.model_config.attention.num_heads == 2
    assert len(dataset) == 4  # 2 training identities x (8 renders // 3 = 2 groups)
    assert [dataset[i]["render"] for i in range(2)] == [[0, 1, 2], [3, 4, 5]]
    _, cyclic = build_stage3({"group_size": 3}, [("synth", synth_dir)], "tiny", tmp_path / "s2.ckpt")
    assert len(cyclic) == 16  # the default: one group per render, 2 identities x 8 renders
    assert [cyclic[i]["render"] for i in (0, 6, 7)] == [[0, 1, 2], [6, 7, 0], [7, 0, 1]]
    assert cyclic[7]["identity"] == cyclic[0]["identity"] != cyclic[8]["identity"]
    item = dataset[0]
    assert item["photo_uv"].shape == (3, 3, UV, UV) and item["landmarks"].shape == (3, 478, 3)
    with pytest.raises(ValueError, match="unknown data kind 'images' for stage 3"):
        build_stage3({}, [("images", synth_dir)], "tiny", tmp_path / "s2.ckpt")
    with pytest.raises(ValueError, match="nowhere: folder does not exist"):
        build_stage3({}, [("synth", tmp_path / "nowhere")], "tiny", tmp_path / "s2.ckpt")


def test_identity_net_is_what_the_stage_freezes(tiny_vq):
    stage = AlbedoStage(stage3_config("tiny"), *tiny_vq)
    assert stage.frozen() == {"vq", "encoder_uv", "identity", "lpips"}
    assert stage.optimizers() == [("generator", ["attention", "lighting"], 1.0)]
    cheap = AlbedoStage(stage3_config("tiny", use_identity=False, lpips_weight=0.0), *tiny_vq)
    assert set(cheap.build()) == {"vq", "encoder_uv", "attention", "lighting"} and cheap.frozen() == {"vq", "encoder_uv"}
    assert isinstance(stage.build()["identity"], IdentityNet)
