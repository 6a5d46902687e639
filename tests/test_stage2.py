"""Stage 2 (the UV texture encoder with the dual discriminator) at toy size.

One synthetic set (64 px photos, 32 px UV maps) and one short stage-1 run (a tiny VQ at
32 px with 4-d codes: a dense codebook, so that straight-through steps of E_uv reach
neighbouring codes) are made per module; a 40-step stage-2 run on them (adversarial terms
from step 20) is shared by the training tests. The module runs torch on one thread: the
short runs' numerics then do not depend on the machine's thread count, and a busy shared
CPU is not oversubscribed.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from hifialbedo.models.albedo_model import predict_texture
from hifialbedo.models.discriminators import LatentDiscriminatorConfig
from hifialbedo.models.saved import load_checkpoint
from hifialbedo.models.vqgan import vq_config
from hifialbedo.synth import PRESETS, write_dataset
from hifialbedo.training.config import TrainConfig
from hifialbedo.training.metrics import read_metrics
from hifialbedo.training.stage1 import CodebookStage, load_stage1_model, stage1_config, stage1_dataset
from hifialbedo.training.stage2 import UVEncoderStage, build_stage2, load_stage2_model, random_view_angles
from hifialbedo.training.stage2_config import STAGE2_PRESETS, Stage2Config, stage2_config
from hifialbedo.training.stage2_data import stage2_dataset

UV, IMAGE, STEPS, ADV_START, CODES = 32, 64, 40, 20, 128
GEN_TERMS = ("id", "l1", "lpips", "g_latent", "g_image", "adv_weight", "commitment", "perplexity", "z_distance")
DISC_TERMS = ("d_latent", "d_image", "logits_real_latent", "logits_fake_latent", "logits_real_image", "logits_fake_image")


def _train_config(out_dir: Path, **changes) -> TrainConfig:
    base = {"out_dir": str(out_dir), "accelerator": "cpu", "num_workers": 0, "sample_every": 0, "log_every": 1}
    return TrainConfig.from_dict({**base, **changes})


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> SimpleNamespace:
    """A tiny synthetic set and a stage-1 checkpoint (a 32 px VQ trained 80 steps on it)."""
    from hifialbedo.training.engine import fit

    tmp = tmp_path_factory.mktemp("stage2")
    synth = write_dataset(tmp / "synth", replace(PRESETS["tiny"], n_identities=4, image_size=IMAGE, uv_size=UV))
    config = stage1_config(
        "tiny",
        vq=vq_config("tiny", image_size=UV, codebook_size=CODES, embed_dim=4),
        lpips_weight=0.0,
        adversarial_start=10**6,
        revive_every=20,
    )
    fit(
        CodebookStage(config),
        stage1_dataset([("synth", synth)], UV),
        _train_config(tmp / "stage1", max_steps=80, batch_size=4, lr=2e-3),
    )
    return SimpleNamespace(tmp=tmp, synth=synth, stage1=tmp / "stage1" / "checkpoints" / "last.ckpt")


def _stage(world: SimpleNamespace, **overrides) -> UVEncoderStage:
    vq = load_stage1_model(world.stage1)
    return UVEncoderStage(stage2_config("tiny").with_vq(vq.config).updated(overrides), vq)


def _modules(stage: UVEncoderStage) -> dict[str, torch.nn.Module]:
    modules = stage.build()
    for name in stage.frozen():
        modules[name].eval().requires_grad_(False)
    return modules


def _batch(world: SimpleNamespace, indices=(0, 1)) -> dict:
    dataset = stage2_dataset([("synth", world.synth)], UV)
    return default_collate([dataset[i] for i in indices])


@pytest.fixture(scope="module")
def run(world) -> SimpleNamespace:
    """40 steps of stage 2 through ``fit`` (adversarial terms from step 20), checkpoints at 20 and 40."""
    from hifialbedo.training.engine import fit

    stage, dataset = build_stage2({"adversarial_start": ADV_START}, [("synth", world.synth)], "tiny", world.stage1)
    out = world.tmp / "stage2"
    settings = {"max_steps": STEPS, "batch_size": 3, "lr": 1e-3, "ckpt_every": ADV_START, "sample_every": STEPS}
    result = fit(stage, dataset, _train_config(out, keep_last_checkpoints=0, **settings))
    return SimpleNamespace(stage=stage, out=out, result=result, rows=read_metrics(out / "metrics.csv"))


# --------------------------------------------------------------------------- config


def test_config_round_trip_presets_and_errors():
    for preset in STAGE2_PRESETS.values():
        assert Stage2Config.from_dict(preset.to_dict()) == preset
        assert preset.latent_disc.in_channels == preset.vq.embed_dim
    paper = stage2_config("paper")
    assert (paper.id_weight, paper.l1_weight, paper.lpips_weight, paper.adv_weight) == (1.0, 10.0, 10.0, 0.1)  # eq. 7
    small = stage2_config("tiny", vq=vq_config("tiny", embed_dim=8), adv_weight=0.2)
    assert small.latent_disc.in_channels == 8 and small.adv_weight == 0.2
    nested = small.updated({"image_disc": {"n_layers": 2}, "yaw_range": 1})
    assert nested.image_disc.n_layers == 2 and nested.image_disc.base_channels == 16 and nested.yaw_range == 1.0
    with pytest.raises(ValueError, match=r"latent_disc.in_channels \(16\) must equal vq.embed_dim \(8\)"):
        replace(small, latent_disc=LatentDiscriminatorConfig(in_channels=16))
    with pytest.raises(ValueError, match="unknown stage2.Stage2Config settings"):
        small.updated({"lambda_id": 1.0})
    with pytest.raises(ValueError, match="stage2.gan_loss: must be one of"):
        small.updated({"gan_loss": "wasserstein"})
    with pytest.raises(ValueError, match="adv_weight must be >= 0"):
        stage2_config("tiny", adv_weight=-1.0)
    with pytest.raises(ValueError, match="unknown stage-2 preset"):
        stage2_config("huge")


# --------------------------------------------------------------------------- one step


@pytest.mark.slow
def test_forward_shapes_and_gradients(world):
    stage = _stage(world, adversarial_start=0)
    modules = _modules(stage)
    batch = _batch(world)
    with torch.no_grad():
        out = stage.forward(modules, batch, step=3)
    d, h = stage.config.vq.embed_dim, UV // stage.config.vq.downsample_factor
    assert out.photo_uv.shape == (2, 3, UV, UV) and float(out.photo_uv.min()) >= -1 and float(out.photo_uv.max()) <= 1
    assert out.z_uv.shape == out.quantized.zq.shape == (2, d, h, h)
    assert out.quantized.indices.shape == (2, h, h) and out.quantized.indices.dtype == torch.int64
    assert out.texture.shape == out.texture_linear.shape == (2, 3, UV, UV)
    assert 0.0 <= float(out.texture_linear.min()) and float(out.texture_linear.max()) <= 1.0
    for render in (out.origin, out.random):
        assert render.image.shape == (2, 3, IMAGE, IMAGE) and render.mask.shape == (2, 1, IMAGE, IMAGE)
        assert 0.05 < float(render.mask.mean()) < 0.6
        assert float((render.image * (1 - render.mask)).abs().max()) == 0.0  # black off the mesh
    assert out.yaw.shape == out.pitch.shape == (2,) and out.random_landmarks.shape == (2, 478, 2)
    # E_uv starts as the stage-1 encoder, so z_uv of a UV texture is E's latent.
    with torch.no_grad():
        assert torch.allclose(out.z_uv, modules["vq"].encode(out.photo_uv), atol=1e-5)
    assert torch.equal(out.quantized.indices, modules["vq"].quantizer.nearest(out.z_uv))

    loss, metrics = stage.loss(modules, batch, 3, "generator")
    assert set(metrics) == set(GEN_TERMS) and all(math.isfinite(v) for v in metrics.values())
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in modules["encoder_uv"].parameters())
    assert any(float(p.grad.abs().max()) > 0 for p in modules["encoder_uv"].parameters())
    assert all(p.grad is None for name in ("vq", "identity", "lpips") for p in modules[name].parameters())


@pytest.mark.slow
def test_discriminator_pass_reuses_the_generator_pass(world):
    batch = _batch(world)
    stage = _stage(world, adversarial_start=5)
    modules = _modules(stage)
    zero, metrics = stage.loss(modules, batch, 4, "discriminator")  # before the warm-up ends: nothing runs
    assert float(zero.detach()) == 0.0 and zero.requires_grad and set(metrics) == set(DISC_TERMS)
    _, gen = stage.loss(modules, batch, 4, "generator")
    assert gen["g_latent"] == gen["g_image"] == gen["adv_weight"] == 0.0

    stage.loss(modules, batch, 5, "generator")
    cached, cached_metrics = stage.loss(modules, batch, 5, "discriminator")
    alone, alone_metrics = _stage(world, adversarial_start=5).loss(modules, batch, 5, "discriminator")  # recomputes
    assert float(cached.detach()) == pytest.approx(float(alone.detach()), rel=1e-5)
    assert cached_metrics == pytest.approx(alone_metrics, rel=1e-5)
    cached.backward()
    assert all(p.grad is not None for name in ("d_latent", "d_image") for p in modules[name].parameters())
    assert all(p.grad is None for p in modules["encoder_uv"].parameters())  # fakes are detached


@pytest.mark.slow
def test_random_views_are_reproducible_and_differ_from_the_original(world):
    keys = torch.tensor([[0, 0], [0, 1], [2, 1]])
    yaw, pitch = random_view_angles(7, keys, yaw_range=0.6, pitch_range=0.25)
    again = random_view_angles(7, keys[[2, 0]], yaw_range=0.6, pitch_range=0.25)  # other batch, same samples
    assert torch.equal(again[0], yaw[[2, 0]]) and torch.equal(again[1], pitch[[2, 0]])
    other_step = random_view_angles(8, keys, yaw_range=0.6, pitch_range=0.25)
    assert not torch.equal(other_step[0], yaw)
    many = random_view_angles(0, torch.arange(400)[:, None], yaw_range=0.6, pitch_range=0.25)
    assert float(many[0].abs().max()) <= 0.6 and float(many[1].abs().max()) <= 0.25
    assert float(many[0].min()) < -0.4 and float(many[0].max()) > 0.4  # spread over the range
    with pytest.raises(ValueError, match=">= 0"):
        random_view_angles(-1, keys, yaw_range=0.6, pitch_range=0.25)

    stage = _stage(world)
    modules = _modules(stage)
    batch = _batch(world)
    with torch.no_grad():
        a, b, c = (stage.forward(modules, batch, s) for s in (7, 7, 8))
    assert torch.equal(a.random.image, b.random.image) and torch.equal(a.yaw, b.yaw)
    assert not torch.equal(a.random.image, c.random.image)
    assert float((a.random.image - a.origin.image).abs().mean()) > 1e-3
    assert float((a.random.mask - a.origin.mask).abs().mean()) > 1e-3
    original = batch["landmarks"][:, :468, :2]
    moved = (a.random_landmarks[:, :468] - original).norm(dim=-1).mean(dim=1)
    assert bool((moved > 0.1).all()) and float(moved.mean()) > 0.5 and float(a.random_landmarks[:, 468:].abs().max()) == 0.0


# --------------------------------------------------------------------------- training through fit


@pytest.mark.slow
def test_training_run_logs_every_term(run):
    rows = run.rows
    assert [int(r["step"]) for r in rows] == list(range(1, STEPS + 1))
    for row in rows:
        for key in (*GEN_TERMS, *DISC_TERMS, "loss/generator", "loss/discriminator"):
            assert math.isfinite(row[key]), (row["step"], key)
    before, after = rows[:ADV_START], rows[ADV_START:]  # row k is step k - 1's metrics
    for key in ("g_latent", "g_image", "adv_weight", "d_latent", "d_image", "loss/discriminator"):
        assert all(r[key] == 0.0 for r in before), key
        assert all(r[key] != 0.0 for r in after), key
    assert all(r["adv_weight"] == pytest.approx(0.1) for r in after)
    assert all(r["id"] > 0 and r["lpips"] > 0 and 1.0 <= r["perplexity"] <= CODES for r in rows)


@pytest.mark.slow
def test_training_lowers_the_l1_term(run, world):
    """On all six training photos: E_uv after 40 steps against E_uv = the stage-1 encoder."""
    batch = _batch(world, range(6))
    modules = _modules(run.stage)
    with torch.no_grad():
        before = run.stage.generator_loss(modules, batch, 0)[1]
        modules["encoder_uv"] = load_stage2_model(run.out / "checkpoints" / "last.ckpt")[1]
        after = run.stage.generator_loss(modules, batch, 0)[1]
    assert after["l1"] < 0.95 * before["l1"], (before, after)


@pytest.mark.slow
def test_training_updates_only_the_trained_modules(run, world):
    state = load_checkpoint(run.out / "checkpoints" / "last.ckpt")
    stage1 = load_checkpoint(world.stage1)["modules"]["vq"]
    vq = state["modules"]["vq"]
    assert vq.keys() == stage1.keys() and all(torch.equal(vq[k], stage1[k]) for k in vq)  # frozen, buffers included
    encoder = state["modules"]["encoder_uv"]
    start = {k[len("encoder.") :]: v for k, v in stage1.items() if k.startswith("encoder.")}
    assert encoder.keys() == start.keys()
    assert max(float((encoder[k] - start[k]).abs().max()) for k in encoder) > 1e-4
    # The critics are untouched until the warm-up ends, then trained.
    torch.manual_seed(TrainConfig().seed)  # fit seeds the same way before build()
    fresh = run.stage.build()
    at_start = load_checkpoint(run.out / "checkpoints" / f"step_{ADV_START:07d}.ckpt")["modules"]
    for name in ("d_latent", "d_image"):
        initial = fresh[name].state_dict()
        assert all(torch.equal(at_start[name][k], initial[k]) for k in initial), name
        assert any(not torch.equal(state["modules"][name][k], initial[k]) for k in initial), name
    assert state["stage_config"] == run.stage.config_dict() and state["stage_config"]["stage"] == "stage2"


@pytest.mark.slow
def test_sample_grids_are_written(run):
    names = ("photo", "photo_uv", "texture", "origin", "random")
    grids = {n: cv2.imread(str(run.out / "samples" / f"step_{STEPS:07d}_{n}.png")) for n in names}
    assert all(g is not None and g.shape == grids["photo"].shape for g in grids.values())
    assert float(np.abs(grids["origin"].astype(float) - grids["random"].astype(float)).mean()) > 0.5


@pytest.mark.slow
def test_load_stage2_model_round_trip(run, world):
    ckpt = run.out / "checkpoints" / "last.ckpt"
    vq, encoder_uv = load_stage2_model(ckpt)
    state = load_checkpoint(ckpt)["modules"]
    assert all(torch.equal(v, state["encoder_uv"][k]) for k, v in encoder_uv.state_dict().items())
    assert all(torch.equal(v, state["vq"][k]) for k, v in vq.state_dict().items())
    assert not vq.training and not any(p.requires_grad for p in (*vq.parameters(), *encoder_uv.parameters()))
    batch = _batch(world)
    with torch.no_grad():
        _, quantized, texture = predict_texture(encoder_uv, vq, batch["photo_uv"] * 2 - 1)
        modules = {**_modules(run.stage), "vq": vq, "encoder_uv": encoder_uv}
        expected = run.stage.forward(modules, batch, 0)
    assert texture.shape == (2, 3, UV, UV) and torch.equal(texture, expected.texture)
    assert torch.equal(quantized.indices, expected.quantized.indices)
    with pytest.raises(ValueError, match=r"last.ckpt: not a stage-2 \(UV encoder\) checkpoint \(its stage is 'stage1'\)"):
        load_stage2_model(world.stage1)
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        load_stage2_model(world.tmp / "missing.ckpt")


# --------------------------------------------------------------------------- building


@pytest.mark.slow
def test_build_stage2_checks_its_inputs(world, tmp_path):
    data = [("synth", world.synth)]
    with pytest.raises(ValueError, match="needs the stage-1 checkpoint"):
        build_stage2({}, data, "tiny", None)
    with pytest.raises(ValueError, match="stage2.vq differs from the stage-1 checkpoint"):
        build_stage2({"vq": {"codebook_size": 8}}, data, "tiny", world.stage1)
    again, _ = build_stage2(_stage(world).config.to_dict(), data, "paper", world.stage1)  # a run's config.json table
    assert again.config == _stage(world).config
    with pytest.raises(ValueError, match="unknown data kind 'images' for stage 2"):
        build_stage2({}, [("images", world.synth)], "tiny", world.stage1)
    with pytest.raises(ValueError, match="at least one synth:folder"):
        build_stage2({}, [("uv", world.synth)], "tiny", world.stage1)
    stage, dataset = build_stage2({"l1_weight": 5}, data, "paper", world.stage1)
    assert stage.config.vq == load_stage1_model(world.stage1).config and stage.config.l1_weight == 5.0
    assert stage.config.latent_disc.in_channels == stage.config.vq.embed_dim and stage.config.adv_weight == 0.1
    assert len(dataset) == 6 and dataset[0]["photo_uv"].shape == (3, UV, UV)  # 3 training identities x 2 photos


@pytest.mark.slow
def test_real_uv_textures_are_paired_by_index(world, tmp_path):
    for k, value in enumerate((40, 120, 200)):
        cv2.imwrite(str(tmp_path / f"t{k}.png"), np.full((48, 48, 3), value, np.uint8))
    dataset = stage2_dataset([("synth", world.synth), ("uv", tmp_path)], UV)
    assert len(dataset) == 6
    for i in (0, 4):
        texture = dataset[i]["texture"]
        assert texture.shape == (3, UV, UV) and float(texture.mean()) == pytest.approx((40, 120, 200)[i % 3] / 255, abs=1e-3)
    batch = default_collate([dataset[0], dataset[1]])
    assert torch.equal(UVEncoderStage.real_textures(batch), batch["texture"])
    del batch["texture"]
    assert torch.equal(UVEncoderStage.real_textures(batch), batch["albedo_uv_srgb"])
