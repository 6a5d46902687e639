"""Stage 3 of the learned model: albedo from n photos of one person (HiFiAlbedo section 3.3, eqs. 8-10).

The frozen stage-2 UV encoder E_uv and the frozen codebook (Q, G) stay fixed; the
cross-attention (:class:`hifialbedo.models.attention.AlbedoAttention`) and the lighting head
(:class:`hifialbedo.models.attention.LightingHead`) learn so that the one albedo A of a group,
rendered with each photo's own mesh and light, reproduces every photo::

    A, L_j = HiFiAlbedo(photo_uv_1 .. photo_uv_n)             (models.albedo_model)
    R_j    = render(A, mesh(landmarks_j), L_j)                 linear RGB (render.views)
    L_albedo = gid_weight * L_gid(R, I)                        (eqs. 8-9, models.losses)
             + l1_weight * L1(R_j, I_j on R_j's mask)           (linear RGB)
             + lpips_weight * LPIPS(R_j, I_j on the mask)      (sRGB)      (eq. 10: 1, 10, 0.1)
             + albedo_weight * L1(A, A_true on the UV face)    (linear RGB; synthetic items only)

The last term is ours, not the paper's (it has no true albedos): on the synthetic engine the
truth is known, and without it the re-render terms leave the albedo's colour and scale
ambiguous against the light. The tiny preset uses it (weight 10); the paper preset does not.

The identity network 𝒜 is dlib's ResNet (:class:`hifialbedo.models.identity.IdentityNet`,
frozen); photo descriptors are taken on the photo masked to R_j's pixels (R_j is black
elsewhere), with the photo's landmarks for both.

**Which photos a step uses.** Each group of ``group_size`` photos is first filtered (the
"sampling constraint" of section 3.3, as implemented here, see
:attr:`Stage3Config.outlier_threshold`), then a random number of the remaining photos,
between ``min_photos`` and the group's size, is kept through the attention mask, so the
model learns to work from any number of photos. Masked-out photos are neither fused nor
rendered nor in any loss term. The draw is a function of the step only (the same on
every rank and for every micro-batch of one step).

- :class:`Stage3Config` (+ ``stage3_config("tiny" | "paper")``, :data:`STAGE3_PRESETS`)
- :class:`AlbedoStage`: the ``training.engine.Stage`` that ``fit`` runs
- :func:`build_stage3`: the stage and dataset from a stage-2 checkpoint and data sources
- :func:`load_stage3_model`: the trained :class:`HiFiAlbedo` of a stage-3 checkpoint

Colour: photos and photo textures are sRGB-encoded in [0, 1] at the edges; renders, the
L1 term and the SH light are linear RGB.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn
from torch.utils.data import ConcatDataset, Dataset

from hifialbedo.models.albedo_model import (
    HiFiAlbedo,
    HiFiAlbedoConfig,
    HiFiAlbedoOutput,
    albedo_from_photos,
    clamp_unit_straight_through,
)
from hifialbedo.models.attention import AlbedoAttention, AlbedoAttentionConfig, LightingHead, LightingHeadConfig
from hifialbedo.models.identity import IdentityNet, odd_ones_out
from hifialbedo.models.losses import PerceptualLoss, group_identity_loss, l1
from hifialbedo.models.vqgan import VQAutoencoder, VQConfig
from hifialbedo.ops.colour import linear_to_srgb, srgb_to_linear
from hifialbedo.render.views import MeshView, mesh_views, render_texture
from hifialbedo.training.data import check_sources, derive_seed
from hifialbedo.typed_config import ConfigDictMixin

DATA_KINDS = ("synth", "photos")
_PHOTO_SEED = 0x5A3B  # salt of the per-step photo draw


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class Stage3Config(ConfigDictMixin):
    """Everything stage 3 trains with, besides the generic ``TrainConfig``. Defaults = the paper preset.

    The attention's and lighting head's sizes (``latent_dim``, ``height``, ``width``) follow
    the stage-2 VQ and ``uv_size``; :meth:`resolved` sets them (``build_stage3`` and
    :class:`AlbedoStage` do), so they need not be given.
    """

    uv_size: int = 0
    """S: side of the photos' UV textures and of the albedo map; 0 (the presets): the VQ's
    ``image_size``, the size stage 2 trained E_uv on. Otherwise a power of two >= 16."""
    group_size: int = 4
    """Photos per group, i.e. per dataset item (the paper's n = 4)."""
    synth_groups: Literal["disjoint", "cyclic"] = "cyclic"
    """How a synthetic set's renders form groups: "disjoint" (renders 0..n-1, n..2n-1, ..; the rest
    unused) or "cyclic" (one group per render, renders k..k+n-1 modulo the renders per identity,
    so every render is used). Real ``photos:`` folders have their own grouping."""
    min_photos: int = 1
    """Fewest photos a step keeps per group; each step keeps a random number in [min_photos, group size]."""
    gid_weight: float = 1.0
    """Weight of the group identity loss L_gid (eq. 10: 1)."""
    l1_weight: float = 10.0
    """Eq. 10's eta_1: weight of the L1 between renders and photos (linear RGB, on the render mask)."""
    lpips_weight: float = 0.1
    """Eq. 10's eta_2: weight of LPIPS between renders and masked photos (sRGB); 0 skips loading LPIPS."""
    albedo_weight: float = 0.0
    """Weight of a supervised L1 between the albedo and its ground truth (linear RGB, on the UV
    face mask), on items that carry one (synthetic sets). Not in the paper, which has no true
    albedos (0 there); on synthetic data it removes the albedo-light scale ambiguity that the
    re-render terms alone leave open. Items without ground truth (``photos:``) skip it, and so
    does a run mixing ``synth:`` with ``photos:``, whose batches keep only the keys both share."""
    use_identity: bool = True
    """Load the identity network (dlib's ResNet). Off: no L_gid (``gid_weight`` unused) and no outlier filter."""
    outlier_threshold: float = 0.6
    """Identity filter of a group (0: off). Section 3.3 filters each subject's photos by attributes
    (e.g. age) so that a group holds one consistent albedo. Synthetic data has no age or attribute
    labels, so the attribute checked is identity consistency: a photo is masked out when its
    descriptor (dlib's, on the whole photo) is at least this far from the group's reference
    photo (the one most others lie within this distance of) and from the median descriptor of
    the photos agreeing with it (``models.identity.odd_ones_out``; 0.6 is dlib's same-person
    distance). The median is taken over the agreeing photos, not all of them, because one
    intruder pulls an all-photo median toward itself. Note: dlib hardly tells the synthetic
    identities apart at 64-128 px (their descriptors lie 0.3-0.75 apart), so on synthetic
    data this catches only gross outliers."""
    attention: AlbedoAttentionConfig = field(default_factory=AlbedoAttentionConfig)
    """The cross-attention (sizes set by :meth:`resolved`)."""
    lighting: LightingHeadConfig = field(default_factory=LightingHeadConfig)
    """The per-photo SH lighting head (``latent_dim`` set by :meth:`resolved`)."""

    def __post_init__(self) -> None:
        if self.uv_size != 0 and (self.uv_size < 16 or self.uv_size & (self.uv_size - 1)):
            raise ValueError(f"uv_size must be 0 (the VQ's image_size) or a power of two >= 16, got {self.uv_size}")
        if self.synth_groups not in ("disjoint", "cyclic"):
            raise ValueError(f"synth_groups must be 'disjoint' or 'cyclic', got {self.synth_groups!r}")
        if self.group_size < 1 or not 1 <= self.min_photos <= self.group_size:
            raise ValueError(f"need group_size >= 1 and 1 <= min_photos <= group_size, got {self.group_size}, {self.min_photos}")
        for name in ("gid_weight", "l1_weight", "lpips_weight", "albedo_weight", "outlier_threshold"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    @property
    def identity_loss_on(self) -> bool:
        """L_gid is computed (identity network loaded and a positive weight)."""
        return self.use_identity and self.gid_weight > 0

    @property
    def outlier_filter_on(self) -> bool:
        """The identity filter runs (identity network loaded and a positive threshold)."""
        return self.use_identity and self.outlier_threshold > 0

    def resolved(self, vq: VQConfig) -> Stage3Config:
        """A copy with ``uv_size`` set (0 -> ``vq.image_size``) and attention and lighting sizes that fit ``vq``."""
        model = self.model_config(vq)
        return dataclasses.replace(self, uv_size=model.uv_size, attention=model.attention, lighting=model.lighting)

    def model_config(self, vq: VQConfig) -> HiFiAlbedoConfig:
        """The :class:`HiFiAlbedoConfig` of the model this stage trains on top of ``vq``."""
        return HiFiAlbedoConfig.for_vq(vq, self.uv_size or vq.image_size, self.attention, self.lighting)

    settings_prefix: ClassVar[str] = "stage3."


STAGE3_PRESETS: dict[str, Stage3Config] = {
    # The paper: n = 4 photos per subject, eq. 10's weights; on the paper VQ, 1024 px UV
    # textures on the f16 codebook (a 64 x 64 latent grid, d = 256).
    "paper": Stage3Config(),
    # On the tiny VQ (f = 4, d = 16, 64 px): a 16 x 16 latent grid; trained on the synthetic
    # engine, so with the supervised albedo term (items without a true albedo skip it).
    "tiny": Stage3Config(
        albedo_weight=10.0,
        attention=AlbedoAttentionConfig(latent_dim=16, height=16, width=16),
        lighting=LightingHeadConfig(latent_dim=16, hidden_channels=32),
    ),
}


def stage3_config(name: str, **overrides: Any) -> Stage3Config:
    """The preset ``name`` ("tiny" or "paper") with overrides (nested tables merge, see :meth:`Stage3Config.updated`).

    >>> stage3_config("tiny", group_size=3).group_size, stage3_config("paper").l1_weight
    (3, 10.0)
    """
    if name not in STAGE3_PRESETS:
        raise ValueError(f"unknown stage-3 preset {name!r}; choose from {sorted(STAGE3_PRESETS)}")
    return STAGE3_PRESETS[name].updated(overrides)


# --------------------------------------------------------------------------- photo selection


def identity_outliers(descriptors: Tensor, threshold: float) -> Tensor:
    """``(B, n)`` bool: True for the photos of a group that are someone else (see ``Stage3Config.outlier_threshold``).

    ``descriptors`` ``(B, n, D)``: identity descriptors of each group's photos. The rule is
    ``models.identity.odd_ones_out``; at least one photo per group (the reference) is never flagged.
    """
    flags = torch.zeros(descriptors.shape[:2], dtype=torch.bool)
    d = descriptors.detach().double().cpu().numpy()
    for g in range(d.shape[0]):
        for i in odd_ones_out(list(d[g]), threshold):
            flags[g, i] = True
    return flags.to(descriptors.device)


def draw_photo_mask(allowed: Tensor, min_photos: int, step: int) -> Tensor:
    """``(B, n)`` bool: a random subset of each row's ``allowed`` photos, of a random size in [min_photos, n].

    The size is drawn uniformly in ``[min(min_photos, n), n]``, then capped at the number of
    allowed photos (at least one is kept when one is allowed); which photos are kept is a
    uniform random choice among the allowed ones. Deterministic in ``step``.
    """
    b, n = allowed.shape
    generator = torch.Generator().manual_seed(derive_seed(step, _PHOTO_SEED))
    counts = torch.randint(min(min_photos, n), n + 1, (b,), generator=generator)
    priority = torch.rand(b, n, generator=generator)
    allowed = allowed.cpu()
    priority = torch.where(allowed, priority, torch.full_like(priority, -1.0))
    order = priority.argsort(dim=1, descending=True)
    counts = torch.minimum(counts, allowed.sum(dim=1)).clamp_min(1)
    keep = torch.arange(n)[None, :] < counts[:, None]  # the first `count` of each row's order
    mask = torch.zeros(b, n, dtype=torch.bool)
    mask.scatter_(1, order, keep)
    return mask


# --------------------------------------------------------------------------- the stage


def _index_view(view: MeshView, index: Tensor) -> MeshView:
    return MeshView(view.positions[index], view.depth[index], view.normals[index])


@dataclass(frozen=True)
class GroupRenders:
    """The kept photos of a batch and their renders (rows = kept photos, in batch order).

    ``index`` ``(K,)``: their positions in the flattened ``(B n)`` batch; ``group`` ``(K,)``: their
    group; ``image`` ``(K, 3, H, W)`` linear-RGB renders; ``mask`` ``(K, 1, H, W)`` the rendered
    face's pixels; ``photo_srgb`` ``(K, 3, H, W)``; ``landmarks`` ``(K, 478, 3)``.
    """

    index: Tensor
    group: Tensor
    image: Tensor
    mask: Tensor
    photo_srgb: Tensor
    landmarks: Tensor


class AlbedoStage:
    """Stage 3 for ``training.engine.fit``: ``attention`` and ``lighting`` trained; ``vq``,
    ``encoder_uv``, ``identity`` (when ``use_identity``) and ``lpips`` (when ``lpips_weight`` > 0) frozen.

    ``vq`` and ``encoder_uv`` are the stage-2 models (``load_stage2_model``), kept as attributes;
    ``build`` copies them (they are never changed). ``config`` is the given config resolved for
    ``vq`` (:meth:`Stage3Config.resolved`); ``model_config`` the trained model's architecture. Batches are grouped items of :class:`hifialbedo.training.synth_data.SynthUVPhotos`:
    ``photo_uv`` ``(B, n, 3, S, S)`` and ``photo_srgb`` ``(B, n, 3, H, W)`` sRGB in [0, 1],
    ``landmarks`` ``(B, n, 478, 3)`` pixels of the photos; optional ``albedo_uv_srgb``
    ``(B, 3, S, S)`` and ``uv_mask`` ``(B, 1, S, S)`` (ground truth, for monitoring only).
    """

    def __init__(self, config: Stage3Config, vq: VQAutoencoder, encoder_uv: nn.Module) -> None:
        self.config = config.resolved(vq.config)
        self.model_config = self.config.model_config(vq.config)
        self.vq, self.encoder_uv = vq, encoder_uv

    def config_dict(self) -> dict[str, Any]:
        return {"stage": "stage3", "stage3": self.config.to_dict(), "model": self.model_config.to_dict()}

    def build(self) -> dict[str, nn.Module]:
        c, m = self.config, self.model_config
        modules: dict[str, nn.Module] = {
            "vq": copy.deepcopy(self.vq).cpu(),
            "encoder_uv": copy.deepcopy(self.encoder_uv).cpu(),
            "attention": AlbedoAttention(m.attention),
            "lighting": LightingHead(m.lighting),
        }
        if c.use_identity:
            modules["identity"] = IdentityNet()
        if c.lpips_weight > 0:
            modules["lpips"] = PerceptualLoss.from_installed_package(input_range=(0.0, 1.0))
        return modules

    def frozen(self) -> set[str]:
        names = {"vq", "encoder_uv"}
        if self.config.use_identity:
            names.add("identity")
        if self.config.lpips_weight > 0:
            names.add("lpips")
        return names

    def optimizers(self) -> list[tuple[str, list[str], float]]:
        return [("generator", ["attention", "lighting"], 1.0)]

    # ------------------------------------------------------------------ pieces

    def forward(self, modules: Mapping[str, nn.Module], photo_uv: Tensor, mask: Tensor | None) -> HiFiAlbedoOutput:
        """The model's forward pass on the stage's modules (:func:`models.albedo_model.albedo_from_photos`)."""
        return albedo_from_photos(
            photo_uv,
            mask,
            vq=modules["vq"],  # type: ignore[arg-type]
            encoder_uv=modules["encoder_uv"],
            attention=modules["attention"],
            lighting=modules["lighting"],
        )

    def photo_mask(self, modules: Mapping[str, nn.Module], batch: Mapping[str, Any], step: int) -> tuple[Tensor, Tensor]:
        """``(keep, outliers)``, both ``(B, n)`` bool: the photos this step uses, and those the identity filter removed."""
        photos, landmarks = batch["photo_srgb"], batch["landmarks"]
        b, n = photos.shape[:2]
        outliers = torch.zeros(b, n, dtype=torch.bool)
        if self.config.outlier_filter_on and n >= 2:
            with torch.no_grad():
                desc = modules["identity"](photos.flatten(0, 1), landmarks.flatten(0, 1)).unflatten(0, (b, n))
            outliers = identity_outliers(desc, self.config.outlier_threshold).cpu()
        keep = draw_photo_mask(~outliers, self.config.min_photos, step)
        return keep.to(photos.device), outliers.to(photos.device)

    def render_groups(self, out: HiFiAlbedoOutput, batch: Mapping[str, Any], keep: Tensor) -> GroupRenders:
        """Each kept photo's render: the group's albedo on the photo's own mesh, under its own SH light."""
        photos, landmarks = batch["photo_srgb"], batch["landmarks"]
        n = photos.shape[1]
        h, w = photos.shape[-2:]
        index = keep.flatten().nonzero()[:, 0]
        group = torch.div(index, n, rounding_mode="floor")
        marks = landmarks.flatten(0, 1)[index]
        view = mesh_views(marks)
        sh = out.sh.flatten(0, 1)[index]
        r = render_texture(out.albedo_linear[group], view, h, w, sh=sh)
        return GroupRenders(index, group, r.image, r.mask, photos.flatten(0, 1)[index], marks)

    def loss(self, modules: dict[str, nn.Module], batch: Any, step: int, optimizer: str) -> tuple[Tensor, dict[str, float]]:
        if optimizer != "generator":
            raise ValueError(f"unknown optimizer {optimizer!r}")
        c = self.config
        keep, outliers = self.photo_mask(modules, batch, step)
        out = self.forward(modules, batch["photo_uv"], keep)
        r = self.render_groups(out, batch, keep)

        rec = l1(r.image, srgb_to_linear(r.photo_srgb), mask=r.mask)
        total = c.l1_weight * rec
        metrics: dict[str, float] = {"loss/l1": rec.item()}
        render_srgb = clamp_unit_straight_through(linear_to_srgb(r.image))
        photo_masked = r.photo_srgb * r.mask
        if c.lpips_weight > 0:
            lp = modules["lpips"](render_srgb, photo_masked, r.mask)
            total = total + c.lpips_weight * lp
            metrics["loss/lpips"] = lp.item()
        if c.identity_loss_on:
            gid = self._group_identity(modules["identity"], r, render_srgb, photo_masked, keep.shape[0])
            total = total + c.gid_weight * gid
            metrics["loss/gid"] = gid.item()
        if c.albedo_weight > 0 and "albedo_uv_srgb" in batch:
            sup = self.albedo_loss(out, batch)
            total = total + c.albedo_weight * sup
            metrics["loss/albedo_l1"] = sup.item()
        metrics["photos_kept"] = keep.sum().item() / keep.shape[0]
        metrics["photos_outliers"] = outliers.sum().item() / keep.shape[0]
        if "albedo_uv_srgb" in batch:
            metrics["albedo_mae"] = self.albedo_error(out, batch).item()
        return total, metrics

    @staticmethod
    def _group_identity(identity: nn.Module, r: GroupRenders, render_srgb: Tensor, photo_masked: Tensor, groups: int) -> Tensor:
        """Eqs. 8-9 per group over its kept photos (weights from the photos' descriptors), averaged over groups."""
        with torch.no_grad():
            photo_desc = identity(photo_masked, r.landmarks)
        render_desc = identity(render_srgb, r.landmarks)
        per_group = [group_identity_loss(photo_desc[r.group == g], render_desc[r.group == g]) for g in range(groups)]
        return torch.stack(per_group).mean()

    @staticmethod
    def albedo_loss(out: HiFiAlbedoOutput, batch: Mapping[str, Any]) -> Tensor:
        """L1 of the albedo against ``albedo_uv_srgb`` in linear RGB on ``uv_mask`` (the benchmark's space), with gradient."""
        target = srgb_to_linear(batch["albedo_uv_srgb"])
        if target.shape[-1] != out.albedo_linear.shape[-1]:
            raise ValueError(f"albedo_uv_srgb is {tuple(target.shape)}, the model's albedo {tuple(out.albedo.shape)}")
        return l1(out.albedo_linear, target, mask=batch.get("uv_mask"))

    @staticmethod
    def albedo_error(out: HiFiAlbedoOutput, batch: Mapping[str, Any]) -> Tensor:
        """Mean absolute error of the albedo (sRGB [0, 1]) against ``albedo_uv_srgb`` on ``uv_mask``. No gradient."""
        with torch.no_grad():
            target = batch["albedo_uv_srgb"]
            if target.shape[-1] != out.albedo.shape[-1]:
                raise ValueError(f"albedo_uv_srgb is {tuple(target.shape)}, the model's albedo {tuple(out.albedo.shape)}")
            return l1(out.albedo, target, mask=batch.get("uv_mask"))

    def samples(self, modules: dict[str, nn.Module], batch: Any) -> dict[str, Tensor]:
        """All photos of each group (no photo dropped or filtered), their renders, their UV textures, the albedo (and GT)."""
        b, n = batch["photo_uv"].shape[:2]
        keep = torch.ones(b, n, dtype=torch.bool, device=batch["photo_uv"].device)
        out = self.forward(modules, batch["photo_uv"], None)
        r = self.render_groups(out, batch, keep)
        images = {
            "photos": batch["photo_srgb"].flatten(0, 1),
            "renders": linear_to_srgb(r.image).clamp(0.0, 1.0),
            "photo_uv": batch["photo_uv"].flatten(0, 1),
            "albedo": out.albedo,
        }
        if "albedo_uv_srgb" in batch:
            images["albedo_gt"] = batch["albedo_uv_srgb"]
        return images


# --------------------------------------------------------------------------- data and building


def stage3_dataset(sources: Sequence[tuple[str, str | Path]], config: Stage3Config) -> Dataset:
    """Groups of ``config.group_size`` photos of one person, with their UV textures at ``config.uv_size``
    (a resolved config: ``uv_size`` > 0).

    ``sources``: ``(kind, folder)`` pairs; kind "synth" (a ``hifialbedo synth`` folder: its
    training identities, :class:`hifialbedo.training.synth_data.SynthUVPhotos`) or "photos" (a
    folder made by ``hifialbedo prepare --layout identities``: real photos grouped by person,
    :class:`hifialbedo.training.photo_data.PhotoUVFolder`). When both kinds are given, items
    keep only the keys they share (``photo_data.PHOTO_KEYS``: no ground-truth albedo, so no
    ``albedo_mae``) and the crops are resized to the first synthetic set's photo size, so
    batches collate. ValueError naming the kind or folder when one is unknown, missing, or a
    photos folder was not prepared with layout identities.
    """
    from hifialbedo.training.photo_data import PHOTO_KEYS, PhotoUVFolder, SelectKeys
    from hifialbedo.training.synth_data import SynthUVPhotos

    if config.uv_size <= 0:
        raise ValueError("stage3_dataset needs a resolved config (uv_size > 0): use Stage3Config.resolved(vq_config)")
    if not sources:
        raise ValueError("stage 3 needs at least one data source (synth:folder or photos:folder)")
    checked = check_sources(sources, DATA_KINDS, stage=3)
    synth: list[SynthUVPhotos] = []
    for kind, root in checked:
        if kind == "synth":
            ds = SynthUVPhotos(
                root, split="train", uv_size=config.uv_size, group_size=config.group_size, cyclic_groups=config.synth_groups == "cyclic"
            )
            if len(ds) == 0:
                raise ValueError(f"{root}: no training group of {config.group_size} photos")
            synth.append(ds)
    real = [root for kind, root in checked if kind == "photos"]
    parts: list[Dataset] = list(synth)
    if real:
        # One photo size and one key set per batch: the crops follow the first synthetic set's photo size.
        size = int(synth[0].faces.meta["config"]["image_size"]) if synth else None
        folders = [PhotoUVFolder(root, uv_size=config.uv_size, group_size=config.group_size, image_size=size) for root in real]
        sizes = sorted({f.image_size for f in folders})
        if len(sizes) > 1:
            raise ValueError(f"photos folders {', '.join(map(str, real))} hold crops of different sizes {sizes}; prepare them with one --size")
        parts = [SelectKeys(ds, PHOTO_KEYS) for ds in synth] + folders
    return parts[0] if len(parts) == 1 else ConcatDataset(parts)


def build_stage3(
    overrides: Mapping[str, Any], data: Sequence[tuple[str, Path]], preset: str, init: Path | None
) -> tuple[AlbedoStage, Dataset]:
    """The stage-3 stage and its dataset: ``preset`` with ``overrides``, on the stage-2 checkpoint ``init`` (required)."""
    if init is None:
        raise ValueError("stage 3 needs init= a stage-2 checkpoint (its frozen VQ and UV encoder)")
    config = stage3_config(preset).updated(overrides)
    from hifialbedo.training.stage2 import load_stage2_model  # written beside this stage; imported on use

    vq, encoder_uv = load_stage2_model(init)
    stage = AlbedoStage(config, vq, encoder_uv)
    return stage, stage3_dataset(data, stage.config)


def load_stage3_model(ckpt_path: str | Path, *, map_location: str | torch.device = "cpu") -> HiFiAlbedo:
    """The trained model of a stage-3 checkpoint (:meth:`HiFiAlbedo.from_checkpoint`)."""
    return HiFiAlbedo.from_checkpoint(ckpt_path, map_location=map_location)


__all__ = [
    "DATA_KINDS",
    "STAGE3_PRESETS",
    "AlbedoStage",
    "GroupRenders",
    "Stage3Config",
    "build_stage3",
    "draw_photo_mask",
    "identity_outliers",
    "load_stage3_model",
    "stage3_config",
    "stage3_dataset",
]
