"""The generic training engine on a toy GAN-like stage: DDP equivalence, exact resume, accumulation,
config files, checkpoints, and the folder readers.

The multi-process runs launch ``tests/training_scripts/run_toy.py`` with ``torch.distributed.run``
(2 CPU processes, gloo); that script imports ``ToyGAN`` and ``toy_dataset`` from this file.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hifialbedo.models.saved import load_checkpoint
from hifialbedo.training.config import TrainConfig, load_config, parse_overrides
from hifialbedo.training.data import IdentityFolders, ImageFolder, StepBatchSampler, UVTextureFolder
from hifialbedo.training.metrics import read_metrics

SCRIPT = Path(__file__).parent / "training_scripts" / "run_toy.py"
DIM = 12  # a toy "image" is (3, 2, 2)


class ToyGAN:
    """A generator regressing y from x, a discriminator on frozen features: two optimisers, one frozen module.

    ``noise`` > 0 draws from the global torch RNG in every loss (checks RNG restoration on resume).
    ``kill_at``: SIGKILL this process when the loss of that step is first asked for.
    """

    def __init__(self, noise: float = 0.0, kill_at: int | None = None) -> None:
        self.noise, self.kill_at = noise, kill_at

    def config_dict(self) -> dict:
        return {"noise": self.noise}

    def build(self) -> dict[str, nn.Module]:
        return {
            "generator": nn.Sequential(nn.Linear(DIM, 16), nn.Tanh(), nn.Linear(16, DIM)),
            "discriminator": nn.Sequential(nn.Linear(DIM, 16), nn.Tanh(), nn.Linear(16, 1)),
            "features": nn.Linear(DIM, DIM),
        }

    def frozen(self) -> set[str]:
        return {"features"}

    def optimizers(self) -> list[tuple[str, list[str], float]]:
        return [("generator", ["generator"], 1.0), ("discriminator", ["discriminator"], 0.5)]

    def loss(self, modules, batch, step, optimizer):
        if step == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        other = "discriminator" if optimizer == "generator" else "generator"
        assert not any(p.requires_grad for p in modules[other].parameters()), "other optimiser's module has gradients on"
        assert not any(p.requires_grad for p in modules["features"].parameters())
        x, y = batch["x"], batch["y"]
        fake = modules["generator"](x + self.noise * torch.randn_like(x))
        disc, feat = modules["discriminator"], modules["features"]
        if optimizer == "generator":
            rec = (fake - y).pow(2).mean()
            return rec + 0.1 * F.softplus(-disc(feat(fake))).mean(), {"rec": rec.item()}
        d_real, d_fake = disc(feat(y)), disc(feat(fake))  # fake not detached: the generator must get no gradient
        return F.softplus(-d_real).mean() + F.softplus(d_fake).mean(), {"d_real": d_real.mean().item()}

    def samples(self, modules, batch):
        fake = modules["generator"](batch["x"])
        return {"fake": torch.sigmoid(fake).view(-1, 3, 2, 2), "real": torch.sigmoid(batch["y"]).view(-1, 3, 2, 2)}


class _Pairs(torch.utils.data.Dataset):
    def __init__(self, n: int = 64) -> None:
        g = torch.Generator().manual_seed(123)
        self.x = torch.randn(n, DIM, generator=g)
        self.y = torch.tanh(self.x @ torch.randn(DIM, DIM, generator=g) / DIM**0.5)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "y": self.y[i]}


def toy_dataset() -> torch.utils.data.Dataset:
    return _Pairs()


def _config(out_dir: Path, **changes) -> TrainConfig:
    base = {"out_dir": str(out_dir), "accelerator": "cpu", "num_workers": 0, "lr": 1e-2, "log_every": 1, "sample_every": 0}
    return TrainConfig.from_dict({**base, **changes})


def _fit(out_dir: Path, noise: float = 0.0, **changes):
    from hifialbedo.training.engine import fit

    return fit(ToyGAN(noise=noise), toy_dataset(), _config(out_dir, **changes))


def _launch(out_dir: Path, *args: str, nproc: int = 1) -> subprocess.CompletedProcess:
    if nproc == 1:
        cmd = [sys.executable, str(SCRIPT), str(out_dir), *args]
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", str(nproc)]
        cmd += ["--master_addr", "127.0.0.1", "--master_port", str(port), str(SCRIPT), str(out_dir), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120, env=env)


def _params(out_dir: Path) -> dict[str, torch.Tensor]:
    modules = load_checkpoint(out_dir / "checkpoints" / "last.ckpt")["modules"]
    return {f"{m}.{k}": v for m, state in modules.items() for k, v in state.items()}


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """One process, global batch 8, 4 steps."""
    out = tmp_path_factory.mktemp("ref")
    result = _fit(out, batch_size=8, max_steps=4, ckpt_every=2, sample_every=2)
    assert result.step == 4 and result.checkpoint == out / "checkpoints" / "last.ckpt"
    return out


@pytest.mark.slow
def test_reference_run_outputs(reference):
    ckpt = load_checkpoint(reference / "checkpoints" / "last.ckpt")
    assert ckpt["step"] == 4 and ckpt["sampler"] == {"epoch": 0, "batches_consumed": 4}
    assert set(ckpt["modules"]) == {"generator", "discriminator", "features"}
    assert set(ckpt["optimizers"]) == {"generator", "discriminator"}
    assert ckpt["stage_config"] == {"noise": 0.0} and ckpt["train_config"]["batch_size"] == 8
    assert len(ckpt["rng"]) == 1
    assert sorted(p.name for p in (reference / "checkpoints").glob("step_*")) == ["step_0000002.ckpt", "step_0000004.ckpt"]
    assert sorted(p.name for p in (reference / "samples").iterdir()) == [
        f"step_{s:07d}_{n}.png" for s in (2, 4) for n in ("fake", "real")
    ]
    rows = read_metrics(reference / "metrics.csv")
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    columns = {"loss/generator", "loss/discriminator", "rec", "d_real", "lr/generator", "images_per_s", "elapsed_s"}
    assert columns <= rows[0].keys()
    assert rows[0]["lr/discriminator"] == pytest.approx(5e-3)
    assert json.loads((reference / "config.json").read_text())["train"]["max_steps"] == 4
    again = _fit(reference, batch_size=8, max_steps=4, ckpt_every=2, sample_every=2)  # already finished: nothing to do
    assert again.step == 4 and again.metrics["loss/generator"] == rows[-1]["loss/generator"]
    assert read_metrics(reference / "metrics.csv") == rows
    with pytest.raises(FileExistsError, match="checkpoints of an earlier run"):
        _fit(reference, batch_size=8, max_steps=4, resume=False)


@pytest.mark.slow
def test_ddp_two_processes_match_one(reference, tmp_path):
    """2 CPU processes (gloo) x batch 4 == 1 process x batch 8 on the same global batches."""
    settings = ["devices=2", "strategy=ddp", "batch_size=4", "max_steps=4", "ckpt_every=2", "lr=1e-2", "log_every=1"]
    proc = _launch(tmp_path, *settings, nproc=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _max_diff(_params(tmp_path), _params(reference)) < 1e-6
    assert len(load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["rng"]) == 2
    ddp, ref = read_metrics(tmp_path / "metrics.csv"), read_metrics(reference / "metrics.csv")
    for a, b in zip(ddp, ref, strict=True):
        assert a["loss/generator"] == pytest.approx(b["loss/generator"], abs=1e-6)


@pytest.mark.slow
def test_grad_accumulation_matches_full_batch(reference, tmp_path):
    _fit(tmp_path, batch_size=4, grad_accum=2, max_steps=4, ckpt_every=2)
    assert _max_diff(_params(tmp_path), _params(reference)) < 1e-6


@pytest.mark.slow
def test_resume_after_kill_continues_the_same_curve(tmp_path):
    """Killed (SIGKILL) after the step-6 checkpoint, then resumed: the same losses and weights as one run."""
    settings = {"batch_size": 4, "grad_accum": 2, "max_steps": 10, "ckpt_every": 3, "keep_last_checkpoints": 2, "num_workers": 1}
    _fit(tmp_path / "full", noise=0.1, **settings)
    overrides = [f"{k}={v}" for k, v in {**settings, "lr": 1e-2, "log_every": 1, "sample_every": 0}.items()]
    killed = _launch(tmp_path / "resumed", "--noise", "0.1", "--kill-at", "7", *overrides)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.ckpt")["step"] == 6
    assert len(read_metrics(tmp_path / "resumed" / "metrics.csv")) == 7  # steps 1..7 logged before the kill
    result = _fit(tmp_path / "resumed", noise=0.1, **settings)
    assert result.step == 10
    full, resumed = read_metrics(tmp_path / "full" / "metrics.csv"), read_metrics(tmp_path / "resumed" / "metrics.csv")
    assert [r["step"] for r in resumed] == list(range(1, 11))
    for a, b in zip(full, resumed, strict=True):
        for key in ("loss/generator", "loss/discriminator", "rec", "d_real"):
            assert a[key] == pytest.approx(b[key], abs=1e-7), (a["step"], key)
    assert _max_diff(_params(tmp_path / "full"), _params(tmp_path / "resumed")) == 0.0
    ckpts = sorted(p.name for p in (tmp_path / "resumed" / "checkpoints").glob("step_*"))
    assert ckpts == ["step_0000009.ckpt", "step_0000010.ckpt"]


def test_sampler_splits_global_batches_the_same_way():
    def sampler(world=1, rank=0, accum=1, start=0) -> StepBatchSampler:
        batch = 8 // (world * accum)
        return StepBatchSampler(
            20, batch_size=batch, grad_accum=accum, world_size=world, rank=rank, seed=3, start_step=start, max_steps=5
        )

    def steps(world: int, accum: int) -> list[list[int]]:
        per_rank = [list(sampler(world, r, accum)) for r in range(world)]
        return [sorted(i for r in range(world) for b in per_rank[r][s * accum : (s + 1) * accum] for i in b) for s in range(5)]

    assert steps(1, 1) == steps(2, 1) == steps(2, 2) == steps(1, 4)
    assert list(sampler(start=3)) == list(sampler())[3:]
    assert sampler().position(5) == {"epoch": 2, "batches_consumed": 1}
    with pytest.raises(ValueError, match="fewer than one global batch"):
        StepBatchSampler(7, batch_size=8, grad_accum=1, world_size=1, rank=0, seed=0, max_steps=1)


def test_bad_stage_is_refused(tmp_path):
    from hifialbedo.training.engine import fit

    class Orphan(ToyGAN):
        def optimizers(self):
            return [("generator", ["generator"], 1.0)]

    with pytest.raises(ValueError, match="exactly one optimizer"):
        fit(Orphan(), toy_dataset(), _config(tmp_path, max_steps=1))


def test_config_file_and_overrides_round_trip(tmp_path):
    cfg = TrainConfig(out_dir="runs/x", max_steps=7, betas=(0.5, 0.99), precision="bf16-mixed", compile=True)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    (tmp_path / "c.json").write_text(json.dumps(cfg.to_dict()))
    assert load_config(tmp_path / "c.json") == cfg
    (tmp_path / "c.toml").write_text("[train]\nmax_steps = 7\nbetas = [0.5, 0.99]\nlr = 1\n")
    overrides = ["max_steps=100", "precision=bf16-mixed", "compile=true", "betas=[0.0, 0.9]"]
    loaded = load_config(tmp_path / "c.toml", overrides, section="train")
    assert loaded == cfg.replace(out_dir="runs/train", max_steps=100, compile=True, betas=(0.0, 0.9), lr=1.0)
    assert parse_overrides(["out_dir=/tmp/a=b"]) == {"out_dir": "/tmp/a=b"}
    with pytest.raises(ValueError, match="unknown TrainConfig settings"):
        load_config(None, ["max_stesp=1"])
    with pytest.raises(ValueError, match="max_steps: expected int"):
        load_config(None, ["max_steps=1.5"])
    with pytest.raises(ValueError, match="precision must be one of"):
        load_config(None, ["precision=fp8"])
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["max_steps"])
    with pytest.raises(ValueError, match="c.yaml"):
        (tmp_path / "c.yaml").write_text("a: 1")
        load_config(tmp_path / "c.yaml")


def test_load_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        load_checkpoint(tmp_path / "nope.ckpt")
    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.ckpt"):
        load_checkpoint(tmp_path / "bad.ckpt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match="other.ckpt: not a hifialbedo"):
        load_checkpoint(tmp_path / "other.ckpt")


def _write(path: Path, h: int, w: int, value: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full((h, w, 3), value, np.uint8)
    img[..., 2] = 255  # BGR: red in RGB
    assert cv2.imwrite(str(path), img)


def test_image_and_uv_folders(tmp_path):
    _write(tmp_path / "faces" / "a.jpg", 40, 60)
    _write(tmp_path / "faces" / "sub" / "b.PNG", 16, 16)
    _write(tmp_path / "faces" / "c.webp", 8, 8)
    (tmp_path / "faces" / "notes.txt").write_text("skip me")
    ds = ImageFolder(tmp_path / "faces", 16)
    assert len(ds) == 3 and [p.name for p in ds.files] == ["a.jpg", "c.webp", "b.PNG"]
    item = ds[0]["image"]
    assert item.shape == (3, 16, 16) and item.dtype == torch.float32
    assert item[0].mean().item() == pytest.approx(1.0, abs=0.02) and item[1].mean().item() == pytest.approx(128 / 255, abs=0.02)
    uv = UVTextureFolder(tmp_path / "faces", 32)
    assert uv[0]["texture"].shape == (3, 32, 32)
    with pytest.raises(ValueError, match="power of two"):
        ImageFolder(tmp_path / "faces", 24)
    with pytest.raises(ValueError, match="missing: folder does not exist"):
        ImageFolder(tmp_path / "missing", 16)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty: no images"):
        UVTextureFolder(tmp_path / "empty", 16)
    (tmp_path / "faces" / "broken.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(ValueError, match="broken.png: cannot read image"):
        ImageFolder(tmp_path / "faces", 16)[1]


def test_identity_folders(tmp_path):
    for person, n in (("p1", 5), ("p2", 1), ("p3", 4)):
        for i in range(n):
            _write(tmp_path / "vgg" / person / f"{i:04d}.jpg", 20, 20, value=10 * i)

    def folders(seed: int) -> IdentityFolders:
        with pytest.warns(UserWarning, match=r"skipped 1 person folder\(s\) with < 3 images \(p2\)"):
            return IdentityFolders(tmp_path / "vgg", 8, group_size=2, min_images=3, seed=seed)

    ds = folders(1)
    assert ds.persons == ["p1", "p3"] and len(ds) == 4  # p1: 2 groups (1 left over), p3: 2 groups
    item = ds[3]
    assert item["images"].shape == (2, 3, 8, 8) and item["identity"] == 1
    assert ds.groups == folders(1).groups and ds.groups != folders(2).groups
    batch = torch.utils.data.default_collate([ds[0], ds[2]])
    assert batch["images"].shape == (2, 2, 3, 8, 8) and batch["identity"].tolist() == [0, 1]
    with pytest.raises(ValueError, match="no person folder with >= 9 images"), pytest.warns(UserWarning):
        IdentityFolders(tmp_path / "vgg", 8, group_size=2, min_images=9)
    with pytest.raises(ValueError, match="folder does not exist"):
        IdentityFolders(tmp_path / "nobody", 8, group_size=2)


def test_micro_batch_cache_keeps_one_step_per_micro_batch():
    from hifialbedo.training.step_cache import MicroBatchCache

    cache = MicroBatchCache()
    a, b = torch.zeros(2, 3), torch.zeros(2, 3)
    cache.put(5, a, "from a")
    assert cache.get(5, a) == "from a"
    assert cache.get(5, b) is None  # equal values, another micro-batch
    assert cache.get(5, a.view(3, 2)) is None  # same storage, another shape
    assert cache.get(6, a) is None  # another step
    cache.put(6, b, "from b")
    assert cache.get(6, b) == "from b" and cache.get(5, a) is None  # a new step drops the old entries
