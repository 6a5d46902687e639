"""Stage 1 (the texture codebook): config, losses, data adapters, a tiny training run through
``training.run.train``, checkpoint reloading, and config / ``--set`` / ``--data`` resolution.

The run: 32 px images from a tiny synthetic set, a tiny VQ (32 codes), 80 steps on the CPU.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import types
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from hifialbedo.inverse.texture import photo_texture
from hifialbedo.models.saved import CHECKPOINT_FORMAT, load_checkpoint
from hifialbedo.models.vqgan import VQAutoencoder
from hifialbedo.ops.colour import linear_to_srgb
from hifialbedo.synth import PRESETS as SYNTH_PRESETS, write_dataset
from hifialbedo.training.metrics import read_metrics
from hifialbedo.training.run import parse_data_specs, resolve_config, train
from hifialbedo.training.stage1 import (
    STAGE1_PRESETS,
    CodebookStage,
    Stage1Config,
    load_stage1_model,
    stage1_config,
    stage1_dataset,
)

SIZE = 32
STEPS, ADV_START = 80, 60


def _tiny_config(**changes) -> Stage1Config:
    cfg = stage1_config("tiny").updated({"vq": {"image_size": SIZE, "codebook_size": 32, "dead_code_threshold": 5}})
    return replace(cfg, **{"adaptive_weight": True, "adv_weight": 0.8, **changes})


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "set"
    return write_dataset(root, replace(SYNTH_PRESETS["tiny"], image_size=SIZE, uv_size=SIZE))


@pytest.fixture(scope="module")
def run(tmp_path_factory, synth_root):
    """One ``train("stage1", ...)`` run; the stage's built modules are captured to compare with the checkpoint."""
    import hifialbedo.training.run as run_module

    tmp = tmp_path_factory.mktemp("run")
    config = tmp / "stage1.toml"
    config.write_text(
        "[train]\nbatch_size = 4\nlr = 1e-3\nlog_every = 1\nnum_workers = 0\nsample_every = 40\naccelerator = 'cpu'\n"
        f"[stage1]\nlpips_weight = 0\nrevive_every = 10\nadversarial_start = {ADV_START}\nadaptive_weight = true\nadv_weight = 0.8\n"
        f"[stage1.vq]\nimage_size = {SIZE}\ncodebook_size = 64\ndead_code_threshold = 5\n"
    )
    built: dict[str, torch.nn.Module] = {}

    class Capturing(CodebookStage):
        def build(self):
            built.update(super().build())
            return built

    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run_module, "CodebookStage", Capturing)
        torch.set_num_threads(1)  # tiny tensors: threads only add contention on a busy 2-core machine
        result = train(
            "stage1",
            config_path=config,
            overrides=[f"train.max_steps={STEPS}", f"train.ckpt_every={STEPS}", "stage1.vq.codebook_size=32"],
            data=[f"synth:{synth_root}"],
            out_dir=tmp / "out",
            preset="tiny",
        )
    torch.set_num_threads(threads)
    return tmp / "out", result, built


@pytest.mark.slow
def test_run_learns_and_writes_outputs(run):
    out, result, _ = run
    assert result.step == STEPS and result.checkpoint == out / "checkpoints" / "last.ckpt"
    rows = read_metrics(out / "metrics.csv")
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    rec = [r["rec"] for r in rows]
    assert np.mean(rec[-5:]) < 0.5 * np.mean(rec[:5]), (rec[:5], rec[-5:])
    assert min(r["perplexity"] for r in rows[-10:]) > 1.0
    assert sum(r["revived"] for r in rows) > 0  # dead codes were re-seeded (every 10 steps, threshold 5)
    assert all(r["lpips"] == 0 for r in rows)  # lpips_weight = 0 in the file
    names = sorted(p.name for p in (out / "samples").iterdir())
    assert names == [f"step_{s:07d}_{n}.png" for s in (40, 80) for n in ("input", "reconstruction")]
    grid = cv2.imread(str(out / "samples" / "step_0000080_reconstruction.png"))
    assert grid is not None and grid.shape[0] == SIZE + 4 and grid.std() > 5  # one row of 4, not blank
    saved = json.loads((out / "config.json").read_text())
    assert saved["train"]["max_steps"] == STEPS and saved["train"]["lr"] == 1e-3 and saved["train"]["out_dir"] == str(out)
    stage = saved["stage"]
    assert stage["stage"] == "stage1" and stage["stage1"]["vq"]["codebook_size"] == 32  # --set wins over the file
    assert Stage1Config.from_dict(stage["stage1"]) == _tiny_config(lpips_weight=0.0, revive_every=10, adversarial_start=ADV_START)


@pytest.mark.slow
def test_adversarial_term_off_before_start_on_after(run):
    rows = read_metrics(run[0] / "metrics.csv")
    before, after = rows[:ADV_START], rows[ADV_START:]  # row k is step index k - 1 (0-based)
    assert all(r["adv_weight"] == 0 and r["g_adv"] == 0 and r["loss/discriminator"] == 0 for r in before)
    assert all(r["adv_weight"] > 0 and r["g_adv"] != 0 and r["loss/discriminator"] > 0 for r in after)


@pytest.mark.slow
def test_load_stage1_model_matches_the_trained_module(run, tmp_path):
    _, result, built = run
    model = load_stage1_model(result.checkpoint)
    assert type(model) is VQAutoencoder and not model.training and model.config.codebook_size == 32
    trained = built["vq"].eval()
    x = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        a, b = model(x), trained(x)
        assert torch.equal(a.reconstruction, b["reconstruction"]) and torch.equal(a.indices, b["indices"])
        assert torch.allclose(model.decode_indices(a.indices), a.reconstruction, atol=1e-5)  # straight-through rounding
    assert torch.equal(model.quantizer.unused_calls, trained.quantizer.unused_calls)

    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        load_stage1_model(tmp_path / "nope.ckpt")
    other = {**load_checkpoint(result.checkpoint), "stage_config": {"stage": "stage2", "stage2": {}}}
    torch.save(other, tmp_path / "s2.ckpt")
    with pytest.raises(ValueError, match=r"s2.ckpt: not a stage-1 .* 'stage2'"):
        load_stage1_model(tmp_path / "s2.ckpt")
    torch.save({"format": CHECKPOINT_FORMAT, "stage_config": None, "modules": {}}, tmp_path / "none.ckpt")
    with pytest.raises(ValueError, match="none.ckpt: not a stage-1"):
        load_stage1_model(tmp_path / "none.ckpt")


@pytest.mark.slow
def test_run_resumes_finished_run_from_its_config_json(run, synth_root):
    """A run's config.json is a valid --config: re-running it finds the finished checkpoint and stops."""
    out = run[0]
    train_cfg, stage = resolve_config("stage1", config_path=out / "config.json")
    assert train_cfg.out_dir == str(out) and train_cfg.max_steps == STEPS and stage["vq"]["codebook_size"] == 32
    result = train("stage1", config_path=out / "config.json", data=[f"synth:{synth_root}"])
    assert result.step == STEPS and len(read_metrics(out / "metrics.csv")) == STEPS


def test_losses_warmup_lpips_and_revival():
    cfg = _tiny_config(adversarial_start=5, revive_every=3)
    batch = {"image": torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))}

    def modules(seed: int = 0):
        torch.manual_seed(seed)
        return CodebookStage(cfg).build()

    stage, m = CodebookStage(cfg), modules()
    assert set(m) == {"vq", "disc", "lpips"} and stage.frozen() == {"lpips"}
    loss, metrics = stage.loss(m, batch, 4, "generator")
    assert metrics["adv_weight"] == 0 and metrics["g_adv"] == 0 and metrics["lpips"] > 0
    expected = metrics["rec"] + metrics["codebook"] + metrics["commitment"] + metrics["lpips"]
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    counters = m["vq"].quantizer.unused_calls.clone()
    d_loss, _ = stage.loss(m, batch, 4, "discriminator")
    assert d_loss.item() == 0 and d_loss.requires_grad  # zero, but a graph through D
    assert torch.equal(m["vq"].quantizer.unused_calls, counters)  # D reused the generator pass's reconstruction
    loss, metrics = stage.loss(m, batch, 5, "generator")
    assert metrics["adv_weight"] > 0 and metrics["g_adv"] != 0
    assert loss.item() == pytest.approx(expected + metrics["adv_weight"] * metrics["g_adv"], rel=1e-4)
    assert stage.loss(m, batch, 5, "discriminator")[0].item() > 0

    fixed = CodebookStage(replace(cfg, adaptive_weight=False, adv_weight=0.3, gan_loss="hinge"))
    assert fixed.loss(modules(), batch, 5, "generator")[1]["adv_weight"] == pytest.approx(0.3)

    # Revival: every 3 steps, only in the generator pass, a function of the step (same inputs -> same codes).
    codebooks = []
    for _ in range(2):
        m = modules()
        m["vq"].quantizer.unused_calls[:20] = 100  # codes 0..19 dead
        before = m["vq"].quantizer.codebook.detach().clone()
        stage = CodebookStage(cfg)
        stage.loss(m, batch, 6, "discriminator")
        assert torch.equal(m["vq"].quantizer.codebook, before)
        _, metrics = stage.loss(m, batch, 6, "generator")
        after = m["vq"].quantizer.codebook.detach()
        changed = (after != before).any(dim=1)  # codes 0..19 the batch did not pick were dead: re-seeded
        assert metrics["revived"] == changed.sum() > 0 and not changed[20:].any()
        codebooks.append(after.clone())
    assert torch.equal(codebooks[0], codebooks[1])

    samples = stage.samples(m, batch)
    assert set(samples) == {"input", "reconstruction"} and samples["reconstruction"].shape == (2, 3, SIZE, SIZE)
    assert samples["reconstruction"].min() >= 0 and samples["reconstruction"].max() <= 1


def test_stage1_config_presets_and_validation():
    for cfg in STAGE1_PRESETS.values():
        assert Stage1Config.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert stage1_config("tiny").vq.image_size == 64 and stage1_config("paper").vq.image_size == 1024
    assert stage1_config("paper").vq.codebook_size == 1024 and stage1_config("paper").adv_weight == 0.8
    cfg = stage1_config("tiny").updated({"beta": 0.5, "gan_loss": "hinge"})
    assert cfg.beta == cfg.vq.beta == 0.5 and cfg.gan_loss == "hinge"
    with pytest.raises(ValueError, match="stage1.gan_loss: must be one of"):
        stage1_config("tiny").updated({"gan_loss": "wasserstein"})
    with pytest.raises(ValueError, match="stage1.vq.codebook_size: expected int"):
        stage1_config("tiny").updated({"vq": {"codebook_size": "64"}})
    with pytest.raises(ValueError, match=r"unknown stage1.Stage1Config settings \['adv_wieght'\]"):
        Stage1Config.from_dict({"adv_wieght": 1})
    with pytest.raises(ValueError, match="LPIPS needs"):
        stage1_config("tiny").updated({"vq": {"image_size": 16}, "disc": {"n_layers": 2}})
    with pytest.raises(ValueError, match="unknown stage-1 preset"):
        stage1_config("huge")


def _write_png(path: Path, h: int, w: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 90)], axis=-1).astype(np.uint8)
    assert cv2.imwrite(str(path), img)


def test_stage1_dataset_mixes_sources(tmp_path, synth_root):
    _write_png(tmp_path / "faces" / "a.png", 48, 40)
    _write_png(tmp_path / "uv" / "u.jpg", 64, 64)
    ds = stage1_dataset([("images", tmp_path / "faces"), ("uv", tmp_path / "uv"), ("synth", synth_root)], SIZE)
    from hifialbedo.synth.torch_data import SyntheticFaces

    faces = SyntheticFaces(synth_root, split="train", uv_size=SIZE)
    n = len(faces)
    assert len(ds) == 1 + 1 + 3 * n  # per render: photo, its UV unwrap, its identity's albedo
    for i in range(len(ds)):
        item = ds[i]["image"]
        assert item.shape == (3, SIZE, SIZE) and item.dtype == torch.float32 and 0 <= item.min() and item.max() <= 1
    last = n - 1  # the last render: another identity than render 0's
    assert torch.equal(ds[2 + last]["image"], faces[last]["photo_srgb"])  # photos are stored at SIZE: unchanged
    unwrap = ds[2 + n + last]["image"]
    pt = photo_texture(faces[last]["photo"].permute(1, 2, 0).numpy(), faces[last]["landmarks"].numpy().astype(np.float64), SIZE)
    expected = np.clip(linear_to_srgb(pt.texture), 0, 1).transpose(2, 0, 1)
    assert np.abs(unwrap.numpy() - expected).max() < 1e-6
    albedo = faces[last]["albedo_uv"]  # linear RGB
    assert torch.allclose(ds[2 + 2 * n + last]["image"], linear_to_srgb(albedo).clamp(0, 1))
    assert ds[2 + 2 * n + last]["image"].mean() > albedo.mean() + 0.1  # sRGB-encoded is brighter than linear
    assert not torch.allclose(ds[2 + 2 * n]["image"], ds[2 + 2 * n + last]["image"])  # a different identity's albedo


def test_bad_data_specs_and_overrides(tmp_path, synth_root):
    with pytest.raises(ValueError, match="'nokind': expected kind:folder"):
        train("stage1", data=["nokind"], out_dir=tmp_path / "o")
    with pytest.raises(ValueError, match="missing: folder does not exist"):
        train("stage1", data=[f"synth:{tmp_path / 'missing'}"], out_dir=tmp_path / "o")
    with pytest.raises(ValueError, match="unknown data kind 'photos'"):
        train("stage1", data=[f"photos:{synth_root}"], out_dir=tmp_path / "o")
    with pytest.raises(ValueError, match="no training data"):
        train("stage1", data=[], out_dir=tmp_path / "o")
    assert parse_data_specs([f"synth:{synth_root}"]) == [("synth", synth_root)]
    with pytest.raises(ValueError, match="keys must start with 'train.' or 'stage1.'"):
        resolve_config("stage1", overrides=["max_steps=3"])
    with pytest.raises(ValueError, match="this run trains stage1, not stage2"):
        resolve_config("stage1", overrides=["stage2.x=1"])
    with pytest.raises(ValueError, match="max_steps: expected int"):
        resolve_config("stage1", overrides=["train.max_steps=ten"])
    with pytest.raises(ValueError, match="unknown stage"):
        resolve_config("stage9")
    assert not (tmp_path / "o").exists()


def test_config_file_and_set_resolution(tmp_path):
    (tmp_path / "c.toml").write_text(
        "[train]\nmax_steps = 7\nout_dir = 'from_file'\n[stage1]\nadv_weight = 0.3\n[stage1.vq]\ncodebook_size = 16\n"
        "[stage2]\nignored = 1\n"
    )
    sets = ["stage1.adv_weight=0.5", "stage1.vq.embed_dim=8", "train.betas=[0.5, 0.9]", "stage1.gan_loss=hinge"]
    train_cfg, stage = resolve_config("stage1", config_path=tmp_path / "c.toml", overrides=sets, preset="paper")
    assert train_cfg.max_steps == 7 and train_cfg.out_dir == "from_file" and train_cfg.betas == (0.5, 0.9)
    assert train_cfg.lr == 1e-5 and train_cfg.batch_size == 4  # the paper preset's engine settings
    assert stage == {"adv_weight": 0.5, "vq": {"codebook_size": 16, "embed_dim": 8}, "gan_loss": "hinge"}
    cfg = stage1_config("paper").updated(stage)
    assert (cfg.adv_weight, cfg.vq.codebook_size, cfg.vq.embed_dim, cfg.vq.image_size) == (0.5, 16, 8, 1024)
    train_cfg, _ = resolve_config("stage1", config_path=tmp_path / "c.toml", out_dir=tmp_path / "cli")
    assert train_cfg.out_dir == str(tmp_path / "cli")  # -o wins over the file
    assert resolve_config("stage1")[0].out_dir == "runs/stage1"
    (tmp_path / "bad.toml").write_text("[optimizer]\nlr = 1\n")
    with pytest.raises(ValueError, match=r"bad.toml: unknown tables \['optimizer'\]"):
        resolve_config("stage1", config_path=tmp_path / "bad.toml")


def test_later_stages_are_built_by_their_modules(tmp_path, synth_root, monkeypatch):
    seen = {}

    def build_stage3(overrides, data, preset, init):
        seen.update(overrides=overrides, data=data, preset=preset, init=init)
        raise RuntimeError("built")

    monkeypatch.setitem(sys.modules, "hifialbedo.training.stage3", types.SimpleNamespace(build_stage3=build_stage3))
    init = tmp_path / "s2.ckpt"
    init.write_bytes(b"x")
    with pytest.raises(RuntimeError, match="built"):
        train("stage3", overrides=["stage3.group_size=4"], data=[f"vgg:{synth_root}"], preset="paper", init=init)
    assert seen == {"overrides": {"group_size": 4}, "data": [("vgg", synth_root)], "preset": "paper", "init": init}
    monkeypatch.setitem(sys.modules, "hifialbedo.training.stage2", types.SimpleNamespace())
    with pytest.raises(NotImplementedError, match="has no build_stage2"):
        train("stage2", data=[f"x:{synth_root}"])
    with pytest.raises(ValueError, match="--init is for stage2/stage3"):
        train("stage1", data=[f"synth:{synth_root}"], init=init)


def _cli_train(out: Path, synth_root: Path, *settings: str, nproc: int) -> subprocess.CompletedProcess:
    """``hifialbedo train stage1`` as the README launches it: plain, or under torchrun (``-m hifialbedo.cli``)."""
    args = ["train", "stage1", "--preset", "tiny", "--data", f"synth:{synth_root}", "-o", str(out)]
    for s in (
        "train.accelerator=cpu",
        "train.num_workers=0",
        "train.max_steps=3",
        "train.ckpt_every=3",
        "train.sample_every=0",
        "train.lr=1e-3",
        "stage1.lpips_weight=0",
        "stage1.revive_every=2",  # runs the ranks' code-use reduction; nothing is dead (threshold 50) after 3 steps
        f"stage1.vq.image_size={SIZE}",
        "stage1.vq.codebook_size=32",
        *settings,
    ):
        args += ["--set", s]
    if nproc == 1:
        cmd = [sys.executable, "-m", "hifialbedo.cli", *args]
    else:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", str(nproc)]
        cmd += ["--master-addr", "127.0.0.1", "--master-port", str(port), "-m", "hifialbedo.cli", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.slow
def test_torchrun_two_processes_match_one(tmp_path, synth_root):
    """The README's multi-process launch: 2 gloo ranks x batch 2 give the parameters of 1 process x batch 4."""
    one = _cli_train(tmp_path / "one", synth_root, "train.batch_size=4", nproc=1)
    assert one.returncode == 0, one.stderr[-2000:]
    two = _cli_train(tmp_path / "two", synth_root, "train.batch_size=2", "train.devices=2", "train.strategy=ddp", nproc=2)
    assert two.returncode == 0, two.stderr[-2000:]
    a = load_checkpoint(tmp_path / "one" / "checkpoints" / "last.ckpt")
    b = load_checkpoint(tmp_path / "two" / "checkpoints" / "last.ckpt")
    assert a["step"] == b["step"] == 3
    vq_a, vq_b = a["modules"]["vq"], b["modules"]["vq"]
    assert vq_a.keys() == vq_b.keys()
    # Each rank counts its own batch's code use (reset at revival, which broadcasts rank 0's).
    weights = [k for k in vq_a if not k.endswith("unused_calls")]
    assert len(weights) == len(vq_a) - 1
    diff = max((vq_a[k].float() - vq_b[k].float()).abs().max().item() for k in weights)
    assert diff < 1e-4, diff  # Adam steps of lr 1e-3 amplify float summation-order differences in tiny gradients
    # The check can tell: one process on half the global batch ends elsewhere.
    half = _cli_train(tmp_path / "half", synth_root, "train.batch_size=2", nproc=1)
    assert half.returncode == 0, half.stderr[-2000:]
    vq_c = load_checkpoint(tmp_path / "half" / "checkpoints" / "last.ckpt")["modules"]["vq"]
    other = max((vq_a[k].float() - vq_c[k].float()).abs().max().item() for k in weights)
    assert other > 10 * diff and other > 1e-3, (other, diff)
