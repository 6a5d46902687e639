"""Stage 1 of the learned model: the facial texture codebook (HiFiAlbedo section 3.1, eqs. 1-4).

A VQGAN (:class:`hifialbedo.models.vqgan.VQAutoencoder`) learns to reconstruct sRGB face
images and UV textures through a discrete codebook, against a PatchGAN critic::

    L_pretrain = L_rec (eq. 1, L2) + L_com (eq. 2) + lpips_weight * LPIPS + lambda_0 * L_adv1 (eq. 3)

with lambda_0 = ``adv_weight`` (0.8), multiplied, as in taming (Esser et al. 2021), by the
adaptive gradient-norm ratio when ``adaptive_weight`` is set, and 0 before
``adversarial_start`` (the warm-up). LPIPS is not in eq. 4; taming adds it with weight 1.

- :class:`Stage1Config` (+ ``stage1_config("tiny" | "paper")``, :data:`STAGE1_PRESETS`)
- :class:`CodebookStage`: the ``training.engine.Stage`` that ``fit`` runs
- :func:`stage1_dataset`: image folders, UV folders and synthetic sets as ``{"image"}`` items
- :func:`load_stage1_model`: the trained ``VQAutoencoder`` from a stage-1 checkpoint

Colour: every image here is **sRGB-encoded** in [0, 1] at the edges (datasets, samples) and
mapped to [-1, 1] (``x * 2 - 1``) for the VQ model and the discriminator.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import ConcatDataset, Dataset

from hifialbedo.models.discriminators import PatchDiscriminator, PatchDiscriminatorConfig
from hifialbedo.models.losses import (
    GAN_LOSSES,
    GanLoss,
    PerceptualLoss,
    adaptive_adversarial_weight,
    adversarial_warmup,
    reconstruction_l2,
)
from hifialbedo.models.saved import load_module_weights, read_stage_checkpoint
from hifialbedo.models.vqgan import VQAutoencoder, VQConfig, vq_config
from hifialbedo.training.data import ImageFolder, UVTextureFolder, check_sources, derive_seed
from hifialbedo.training.step_cache import MicroBatchCache
from hifialbedo.typed_config import ConfigDictMixin

DATA_KINDS = ("images", "uv", "synth")
LPIPS_MIN_SIZE = 32  # LPIPS (AlexNet) needs sides >= 31 px; image sides are powers of two


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class Stage1Config(ConfigDictMixin):
    """Everything stage 1 trains with, besides the generic ``TrainConfig``. Defaults = the paper preset.

    ``beta`` (eq. 2's commitment weight) lives in ``vq.beta``; :attr:`beta` reads it and
    ``from_dict`` accepts a top-level ``beta`` as an alias.
    """

    vq: VQConfig = field(default_factory=VQConfig)
    """The codebook autoencoder's architecture (``vq_config("paper")``: taming's f16, N = 1024, 1024 px)."""
    disc: PatchDiscriminatorConfig = field(default_factory=PatchDiscriminatorConfig)
    """The PatchGAN critic of eq. 3 (taming: 3 layers, 64 channels, batch norm)."""
    adv_weight: float = 0.8
    """Eq. 4's lambda_0: the adversarial term's factor (times the adaptive weight when that is on)."""
    adversarial_start: int = 10_000
    """Optimiser step (0-based) from which the adversarial terms are on; before it both are 0.

    Not given in the paper; taming's face models start at 30001 on far longer schedules.
    10k is about a quarter of the paper's 10 epochs (0.5 M images at global batch 128 = 39k steps)."""
    adaptive_weight: bool = True
    """Scale the generator's adversarial loss by taming's ratio |grad rec| / |grad adv| at the decoder's last layer."""
    lpips_weight: float = 1.0
    """Weight of the LPIPS term (taming's perceptual loss; not in eq. 4); 0 disables and skips loading LPIPS."""
    gan_loss: GanLoss = "non_saturating"
    """"non_saturating" (eq. 3 with the generator's -log D(I_hat)) or "hinge" (taming's default)."""
    revive_every: int = 0
    """Re-seed dead codes from encoder outputs every this many steps (0: never, as taming and the paper)."""
    disc_lr_mult: float = 1.0
    """The discriminator's learning rate relative to ``TrainConfig.lr``."""

    def __post_init__(self) -> None:
        if self.adv_weight < 0 or self.lpips_weight < 0:
            raise ValueError(f"adv_weight and lpips_weight must be >= 0, got {self.adv_weight}, {self.lpips_weight}")
        if self.adversarial_start < 0 or self.revive_every < 0:
            raise ValueError(
                f"adversarial_start and revive_every must be >= 0, got {self.adversarial_start}, {self.revive_every}"
            )
        if self.disc_lr_mult <= 0:
            raise ValueError(f"disc_lr_mult must be > 0, got {self.disc_lr_mult}")
        if self.gan_loss not in GAN_LOSSES:
            raise ValueError(f"gan_loss must be one of {sorted(GAN_LOSSES)}, got {self.gan_loss!r}")
        if self.disc.in_channels != self.vq.out_channels:
            raise ValueError(f"disc.in_channels ({self.disc.in_channels}) must equal vq.out_channels ({self.vq.out_channels})")
        if self.vq.image_size < self.disc.min_size:
            raise ValueError(f"vq.image_size {self.vq.image_size} is below the discriminator's minimum {self.disc.min_size}")
        if self.lpips_weight > 0 and self.vq.image_size < LPIPS_MIN_SIZE:
            raise ValueError(f"LPIPS needs vq.image_size >= {LPIPS_MIN_SIZE}, got {self.vq.image_size} (or set lpips_weight=0)")

    @property
    def beta(self) -> float:
        """Eq. 2's commitment weight (``vq.beta``)."""
        return self.vq.beta

    settings_prefix: ClassVar[str] = "stage1."

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Stage1Config:
        """From plain values, type-checked; missing keys (also inside ``vq``/``disc``) keep the defaults."""
        return super().from_dict(_beta_into_vq(data))

    def updated(self, overrides: Mapping[str, Any]) -> Stage1Config:
        """A copy with ``overrides`` applied (``typed_config.merge_settings``), e.g. ``{"adv_weight": 0.5, "vq": {"codebook_size": 64}}``."""
        return super().updated(_beta_into_vq(overrides))


def _beta_into_vq(data: Mapping[str, Any]) -> dict[str, Any]:
    """A top-level ``beta`` (alias) moved into ``vq.beta``; ValueError when both are given and differ."""
    data = dict(data)
    if "beta" in data:
        beta = data.pop("beta")
        vq = dict(data.get("vq") or {})
        if "beta" in vq and vq["beta"] != beta:
            raise ValueError(f"stage1.beta={beta!r} conflicts with stage1.vq.beta={vq['beta']!r}")
        data["vq"] = {**vq, "beta": beta}
    return data


STAGE1_PRESETS: dict[str, Stage1Config] = {
    # The paper: taming's f16 VQGAN at 1024 px with N = 1024 codes, a 3-layer PatchGAN.
    "paper": Stage1Config(vq=vq_config("paper")),
    # 64 px, 16 x 16 latents, 128 codes, a small critic: about 0.3 s per step (batch 8) on a 2-core CPU.
    "tiny": Stage1Config(
        vq=vq_config("tiny"),
        disc=PatchDiscriminatorConfig(base_channels=16, n_layers=3),
        adversarial_start=400,  # after the reconstruction has converged somewhat (tiny train preset: 600 steps)
        # A fixed small weight: with taming's adaptive ratio a barely trained critic's tiny gradient at
        # the last layer gives weights of 5-7 and a 64 px run's rec loss went 0.02 -> 0.26 within 50 steps.
        adaptive_weight=False,
        adv_weight=0.1,
        revive_every=50,
    ),
}


def stage1_config(name: str, **overrides: Any) -> Stage1Config:
    """The preset ``name`` ("tiny" or "paper") with top-level field overrides (nested ones: :meth:`Stage1Config.updated`).

    >>> stage1_config("tiny").vq.image_size, stage1_config("paper").vq.codebook_size
    (64, 1024)
    """
    if name not in STAGE1_PRESETS:
        raise ValueError(f"unknown stage-1 preset {name!r}; choose from {sorted(STAGE1_PRESETS)}")
    return dataclasses.replace(STAGE1_PRESETS[name], **overrides)


# --------------------------------------------------------------------------- the stage


def _plain(module: nn.Module) -> nn.Module:
    """The built module behind Fabric's wrapper and ``torch.compile`` (for attributes, not for forward)."""
    module = getattr(module, "module", module) if type(module).__name__ == "_FabricModule" else module
    return getattr(module, "_orig_mod", module)


def to_model_range(images: Tensor) -> Tensor:
    """sRGB [0, 1] -> the VQ model's [-1, 1]."""
    return images * 2.0 - 1.0


def to_unit_range(images: Tensor) -> Tensor:
    """The VQ model's [-1, 1] (decoder output, unbounded) -> sRGB clamped to [0, 1]."""
    return ((images + 1.0) * 0.5).clamp(0.0, 1.0)


class TrainableVQ(VQAutoencoder):
    """:class:`VQAutoencoder` whose ``forward`` returns a dict of the ``VQOutput`` fields.

    Lightning Fabric's module wrapper refuses frozen-dataclass outputs; this subclass has the
    same parameters and state-dict keys, so its weights load into a plain ``VQAutoencoder``.
    """

    def forward(self, x: Tensor) -> dict[str, Tensor]:  # type: ignore[override]
        out = super().forward(x)
        return {f.name: getattr(out, f.name) for f in dataclasses.fields(out)}


class CodebookStage:
    """Stage 1 for ``training.engine.fit``: modules ``vq`` and ``disc`` trained, ``lpips`` frozen.

    Batches are dicts with ``"image"`` ``(B, 3, S, S)`` sRGB in [0, 1], S = ``config.vq.image_size``
    (what :func:`stage1_dataset` yields). The discriminator pass reuses the generator pass's
    reconstruction of the same micro-batch (detached), so each step runs the VQ model once per
    micro-batch and its dead-code counters see each batch once. Generator metrics: ``rec``,
    ``codebook``, ``commitment``, ``lpips``, ``g_adv`` (the generator's GAN loss, 0 in the
    warm-up), ``adv_weight`` (its effective factor: ``config.adv_weight``, times the adaptive
    ratio when that is on; 0 in the warm-up),
    ``perplexity``, ``revived`` (dead codes re-seeded this step); discriminator metrics:
    ``logits_real``, ``logits_fake``. Under DDP, revived codes come from rank 0 (broadcast).
    """

    def __init__(self, config: Stage1Config) -> None:
        self.config = config
        self._recon_cache = MicroBatchCache()
        self._revived_step = -1

    def config_dict(self) -> dict[str, Any]:
        return {"stage": "stage1", "stage1": self.config.to_dict()}

    def build(self) -> dict[str, nn.Module]:
        modules: dict[str, nn.Module] = {"vq": TrainableVQ(self.config.vq), "disc": PatchDiscriminator(self.config.disc)}
        if self.config.lpips_weight > 0:
            modules["lpips"] = PerceptualLoss.from_installed_package(input_range=(-1.0, 1.0))
        return modules

    def frozen(self) -> set[str]:
        return {"lpips"} if self.config.lpips_weight > 0 else set()

    def optimizers(self) -> list[tuple[str, list[str], float]]:
        return [("generator", ["vq"], 1.0), ("discriminator", ["disc"], self.config.disc_lr_mult)]

    def loss(self, modules: dict[str, nn.Module], batch: Any, step: int, optimizer: str) -> tuple[Tensor, dict[str, float]]:
        images = batch["image"]
        if optimizer == "generator":
            return self._generator_loss(modules, images, step)
        if optimizer == "discriminator":
            return self._discriminator_loss(modules, images, step)
        raise ValueError(f"unknown optimizer {optimizer!r}")

    def _generator_loss(self, modules: dict[str, nn.Module], images: Tensor, step: int) -> tuple[Tensor, dict[str, float]]:
        c = self.config
        x = to_model_range(images)
        out = modules["vq"](x)
        x_hat = out["reconstruction"]
        self._recon_cache.put(step, images, x_hat.detach())

        rec = reconstruction_l2(x_hat, x)
        nll = rec
        lpips = torch.zeros((), device=x.device)
        if c.lpips_weight > 0:
            lpips = modules["lpips"](x_hat, x)
            nll = rec + c.lpips_weight * lpips
        total = nll + out["codebook_loss"] + out["commitment_loss"]

        g_adv = torch.zeros((), device=x.device)
        weight = torch.zeros((), device=x.device)
        warm = adversarial_warmup(step, c.adversarial_start)
        if warm > 0 and c.adv_weight > 0:
            g_adv = GAN_LOSSES[c.gan_loss][1](modules["disc"](x_hat))
            if c.adaptive_weight and torch.is_grad_enabled():
                weight = adaptive_adversarial_weight(nll, g_adv, _plain(modules["vq"]).last_layer, factor=c.adv_weight)
            else:
                weight = torch.tensor(c.adv_weight, device=x.device)
            weight = weight * warm
            total = total + weight * g_adv

        metrics = {
            "rec": rec.item(),
            "codebook": out["codebook_loss"].item(),
            "commitment": out["commitment_loss"].item(),
            "lpips": lpips.item(),
            "g_adv": g_adv.item(),
            "adv_weight": float(weight),
            "perplexity": out["perplexity"].item(),
            "revived": 0.0,
        }
        if c.revive_every and step > 0 and step % c.revive_every == 0 and self._revived_step != step:
            self._revived_step = step  # once per step (the first micro-batch), not per micro-batch
            metrics["revived"] = float(self._revive(modules["vq"], out["z"], step))
        return total, metrics

    def _revive(self, vq: nn.Module, z: Tensor, step: int) -> int:
        """Dead-code revival, deterministic in ``step``; the codebook is kept identical across DDP ranks."""
        model = _plain(vq)
        distributed = (
            torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1
        )
        if distributed:
            # Each rank counts its own batches: a code is dead only when no rank used it lately.
            torch.distributed.all_reduce(model.quantizer.unused_calls, op=torch.distributed.ReduceOp.MIN)
        generator = torch.Generator(device=z.device).manual_seed(derive_seed(step, 0x5EED))
        revived = model.revive_dead_codes(z, generator=generator)
        if distributed:
            # Each rank revived from its own latents: rank 0's codebook and counters win.
            torch.distributed.broadcast(model.quantizer.embedding.weight.data, src=0)
            torch.distributed.broadcast(model.quantizer.unused_calls, src=0)
        return int(revived.numel())

    def _discriminator_loss(self, modules: dict[str, nn.Module], images: Tensor, step: int) -> tuple[Tensor, dict[str, float]]:
        c = self.config
        x = to_model_range(images)
        cached = self._recon_cache.get(step, images)
        if cached is None:  # called without this step's generator pass on this micro-batch: recompute
            with torch.no_grad():
                cached = modules["vq"](x)["reconstruction"]
        disc = modules["disc"]
        logits_real = disc(x)
        logits_fake = disc(cached.detach())
        # Before the warm-up ends the loss is 0 but still built through D (a valid graph for DDP).
        warm = adversarial_warmup(step, c.adversarial_start)
        d_loss = warm * GAN_LOSSES[c.gan_loss][0](logits_real, logits_fake)
        return d_loss, {"logits_real": logits_real.mean().item(), "logits_fake": logits_fake.mean().item()}

    def samples(self, modules: dict[str, nn.Module], batch: Any) -> dict[str, Tensor]:
        x = batch["image"]
        x_hat = modules["vq"](to_model_range(x))["reconstruction"]
        return {"input": x, "reconstruction": to_unit_range(x_hat)}


# --------------------------------------------------------------------------- data


def _resize(image: Tensor, size: int) -> Tensor:
    """``(3, H, W)`` -> ``(3, size, size)``: area-like (antialiased bilinear) down, bilinear up."""
    if image.shape[-2:] == (size, size):
        return image
    return F.interpolate(image[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]


class KeyedImages(Dataset):
    """Items ``{"image": dataset[i][key]}`` of a folder reader (``ImageFolder``: "image"; ``UVTextureFolder``: "texture")."""

    def __init__(self, dataset: Dataset, key: str) -> None:
        self.dataset, self.key = dataset, key

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return {"image": self.dataset[index][self.key]}


class SyntheticImages(Dataset):
    """A synthetic set's training identities as stage-1 images, three per render: the photo, the
    photo unwrapped onto the UV layout, and the identity's true UV albedo.

    Items ``{"image": (3, size, size)}`` sRGB in [0, 1], in blocks of the same length: every
    ``photo_srgb`` (resized), every photo's completed UV texture
    (:class:`hifialbedo.training.synth_data.SynthUVPhotos`, ``photo_uv``), then the identity's
    ``albedo_uv`` once per render (linear RGB -> sRGB). Stages 2 and 3 encode lit UV textures
    and decode UV albedos with this codebook, so two thirds of the items are in UV space; with
    one albedo per identity (as before) the tiny codebook reconstructed held-out albedos with a
    mean error of 0.045 (linear RGB). Only the ``split`` identities (default "train"; None: all).
    """

    def __init__(self, root: str | Path, size: int, *, split: str | None = "train") -> None:
        from hifialbedo.training.synth_data import SynthUVPhotos

        self.photos = SynthUVPhotos(root, split=split, uv_size=size)
        self.size = size
        if len(self.photos) == 0:
            raise ValueError(f"{root}: synthetic set has no identities in split {split!r}")

    def __len__(self) -> int:
        return 3 * len(self.photos)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        block, render = divmod(index, len(self.photos))
        if block == 0:
            return {"image": _resize(self.photos.faces[render]["photo_srgb"], self.size).clamp(0.0, 1.0)}
        item = self.photos[render]
        return {"image": item["photo_uv"] if block == 1 else item["albedo_uv_srgb"]}


def stage1_dataset(sources: Sequence[tuple[str, str | Path]], size: int) -> Dataset:
    """All ``sources`` as one dataset of ``{"image": (3, size, size)}`` sRGB [0, 1] items.

    ``sources``: ``(kind, folder)`` pairs; kind "images" (any photos, centre-cropped:
    ``ImageFolder``), "uv" (UV texture maps, resized whole: ``UVTextureFolder``) or "synth"
    (a ``hifialbedo synth`` folder: its training photos and sRGB UV albedos). ValueError naming
    the kind or folder when one is unknown, missing or empty.
    """
    if not sources:
        raise ValueError("stage 1 needs at least one data source (kind:folder with kind in images, uv, synth)")
    parts: list[Dataset] = []
    for kind, root in check_sources(sources, DATA_KINDS, stage=1):
        if kind == "images":
            parts.append(KeyedImages(ImageFolder(root, size), "image"))
        elif kind == "uv":
            parts.append(KeyedImages(UVTextureFolder(root, size), "texture"))
        else:
            parts.append(SyntheticImages(root, size))
    return parts[0] if len(parts) == 1 else ConcatDataset(parts)


# --------------------------------------------------------------------------- loading


def load_stage1_model(ckpt_path: str | Path, *, map_location: str | torch.device = "cpu") -> VQAutoencoder:
    """The trained codebook autoencoder of a stage-1 checkpoint, in eval mode on ``map_location``.

    The architecture is rebuilt from the checkpoint's stored stage config, then its ``vq``
    weights are loaded (strictly). FileNotFoundError / ValueError naming the file when it is
    missing, unreadable or not a stage-1 checkpoint.
    """
    config, state = read_stage_checkpoint(ckpt_path, "stage1", Stage1Config.from_dict, modules=("vq",))
    model = VQAutoencoder(config.vq)
    load_module_weights(ckpt_path, state, {"vq": model})
    return model.to(map_location).eval()


__all__ = [
    "DATA_KINDS",
    "STAGE1_PRESETS",
    "CodebookStage",
    "KeyedImages",
    "Stage1Config",
    "SyntheticImages",
    "TrainableVQ",
    "load_stage1_model",
    "stage1_config",
    "stage1_dataset",
]
