"""The learned albedo model of HiFiAlbedo (section 3.3, Fig. 4): any number of photos -> one albedo map.

The n photos of one person, each unwrapped onto the UV layout (``inverse.texture``), go
through the stage-2 UV encoder E_uv to continuous latents z_1 .. z_n; the cross-attention
module (:class:`hifialbedo.models.attention.AlbedoAttention`) reads them all into one albedo
latent a; the frozen codebook quantises it and the frozen decoder G turns it into the
albedo map::

    z_j = E_uv(photo_uv_j * 2 - 1)          (B, n, d, h, w)
    a   = Attention(z_1 .. z_n; mask)       (B, d, h, w)   order of the photos irrelevant
    A   = G(Q(a))                           (B, 3, S, S)   sRGB, [-1, 1] -> [0, 1]
    L_j = LightingHead(z_j)                 (B, n, 9, 3)   SH light of each photo (linear RGB)

:func:`albedo_from_photos` is that computation on separate modules (what stage-3 training
calls on its modules); :class:`HiFiAlbedo` holds the four modules for inference and
loads a stage-3 training checkpoint (:meth:`HiFiAlbedo.from_checkpoint`) or a compact
weights + config file (:meth:`HiFiAlbedo.save_pretrained` / :meth:`HiFiAlbedo.from_pretrained`).

Colour: photo textures and the albedo are **sRGB-encoded** in [0, 1] at the edges;
``albedo_linear`` is the same map in linear RGB (``ops.colour.srgb_to_linear``), the space
of the renderer (I = A * S) and of the SH light.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from hifialbedo.models.attention import AlbedoAttention, AlbedoAttentionConfig, LightingHead, LightingHeadConfig
from hifialbedo.models.saved import atomic_save, load_module_weights, load_tagged, read_stage_checkpoint
from hifialbedo.models.vqgan import Encoder, Quantized, VQAutoencoder, VQConfig
from hifialbedo.ops.colour import srgb_to_linear

PRETRAINED_FORMAT = "hifialbedo.model/1"
_STAGE3_MODULES = ("vq", "encoder_uv", "attention", "lighting")  # what a stage-3 checkpoint gives the model


@dataclass(frozen=True)
class HiFiAlbedoConfig:
    """Architecture of :class:`HiFiAlbedo`: the codebook autoencoder, the attention and the lighting head.

    The attention's latent grid and width must be the VQ latent of a ``uv_size`` texture
    (``latent_dim = vq.embed_dim``, ``height = width = uv_size / f``) and the lighting head's
    input width ``vq.embed_dim``; :meth:`for_vq` fills those in.
    """

    vq: VQConfig
    """The frozen codebook autoencoder (quantiser Q + decoder G; E_uv has E's architecture)."""
    attention: AlbedoAttentionConfig
    """The cross-attention over the photos' latents (its grid sets the UV size)."""
    lighting: LightingHeadConfig
    """The per-photo SH lighting head."""

    def __post_init__(self) -> None:
        a, f = self.attention, self.vq.downsample_factor
        if a.latent_dim != self.vq.embed_dim or self.lighting.latent_dim != self.vq.embed_dim:
            raise ValueError(
                f"attention.latent_dim ({a.latent_dim}) and lighting.latent_dim ({self.lighting.latent_dim}) "
                f"must equal vq.embed_dim ({self.vq.embed_dim})"
            )
        if a.height != a.width:
            raise ValueError(f"the UV latent grid must be square, got {a.height} x {a.width}")
        size = a.height * f
        if size & (size - 1) or size < f:
            raise ValueError(f"attention grid {a.height} x {a.width} times f = {f} is not a power-of-two UV size")

    @property
    def uv_size(self) -> int:
        """S: the side of the photo textures and of the albedo map (attention grid x the VQ's f)."""
        return self.attention.height * self.vq.downsample_factor

    @classmethod
    def for_vq(
        cls,
        vq: VQConfig,
        uv_size: int,
        attention: AlbedoAttentionConfig | None = None,
        lighting: LightingHeadConfig | None = None,
    ) -> HiFiAlbedoConfig:
        """``attention`` and ``lighting`` (defaults when None) with their sizes set for ``vq`` and ``uv_size``.

        >>> from hifialbedo.models.vqgan import vq_config
        >>> c = HiFiAlbedoConfig.for_vq(vq_config("tiny"), 64)
        >>> c.attention.height, c.attention.latent_dim, c.uv_size
        (16, 16, 64)
        """
        f = vq.downsample_factor
        if uv_size % f or uv_size < f:
            raise ValueError(f"uv_size {uv_size} must be a multiple of the VQ's downsampling factor {f}")
        h = uv_size // f
        attention = dataclasses.replace(attention or AlbedoAttentionConfig(), latent_dim=vq.embed_dim, height=h, width=h)
        lighting = dataclasses.replace(lighting or LightingHeadConfig(), latent_dim=vq.embed_dim)
        return cls(vq=vq, attention=attention, lighting=lighting)

    def to_dict(self) -> dict[str, Any]:
        """``{"vq": ..., "attention": ..., "lighting": ...}`` of plain JSON values."""
        return {"vq": self.vq.to_dict(), "attention": self.attention.to_dict(), "lighting": self.lighting.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HiFiAlbedoConfig:
        """Inverse of :meth:`to_dict`; ValueError on missing or unknown keys."""
        if not isinstance(data, Mapping) or set(data) != {"vq", "attention", "lighting"}:
            keys = sorted(data) if isinstance(data, Mapping) else type(data).__name__
            raise ValueError(f"HiFiAlbedoConfig needs exactly the keys ['attention', 'lighting', 'vq'], got {keys}")
        return cls(
            vq=VQConfig.from_dict(data["vq"]),
            attention=AlbedoAttentionConfig.from_dict(data["attention"]),
            lighting=LightingHeadConfig.from_dict(data["lighting"]),
        )


@dataclass(frozen=True)
class HiFiAlbedoOutput:
    """What :func:`albedo_from_photos` and :meth:`HiFiAlbedo.forward` return.

    ``albedo`` ``(B, 3, S, S)``: sRGB-encoded in [0, 1] (the decoder's [-1, 1] output mapped
    by ``(x + 1) / 2`` and clamped; the clamp passes gradients straight through).
    ``albedo_linear`` ``(B, 3, S, S)``: the same in linear RGB. ``latents``
    ``(B, n, d, h, w)``: E_uv of each photo texture. ``albedo_latent`` ``(B, d, h, w)``: the
    attention's continuous output a (before quantisation). ``indices`` ``(B, h, w)`` int64:
    its codes, Q(a). ``sh`` ``(B, n, 9, 3)``: each photo's SH light (radiance coefficients,
    linear RGB, :mod:`hifialbedo.ops.sh` convention), from its own latent.
    """

    albedo: Tensor
    albedo_linear: Tensor
    latents: Tensor
    albedo_latent: Tensor
    indices: Tensor
    sh: Tensor


def clamp_unit_straight_through(x: Tensor) -> Tensor:
    """``x`` clamped to [0, 1] in value, with the identity as gradient (an overshoot still learns)."""
    return x + (x.clamp(0.0, 1.0) - x).detach()


def predict_texture(encoder_uv: nn.Module, vq: VQAutoencoder, photo_uv: Tensor) -> tuple[Tensor, Quantized, Tensor]:
    """The stage-2 model's UV texture T = G(Q(E_uv(photo_uv))) of photos unwrapped onto the UV layout.

    ``photo_uv`` ``(B, 3, S, S)`` sRGB mapped to [-1, 1] ->
    ``(z_uv (B, d, S/f, S/f), quantised (straight-through to z_uv), texture (B, 3, S, S) sRGB about [-1, 1])``.

    >>> from hifialbedo.models.vqgan import vq_config
    >>> vq = VQAutoencoder(vq_config("tiny", image_size=16, codebook_size=8))
    >>> z, q, t = predict_texture(Encoder(vq.config), vq, torch.zeros(1, 3, 16, 16))
    >>> tuple(z.shape), tuple(q.indices.shape), tuple(t.shape)
    ((1, 16, 4, 4), (1, 4, 4), (1, 3, 16, 16))
    """
    vq.check_image(photo_uv)
    z_uv = encoder_uv(photo_uv)
    quantized = vq.quantize(z_uv)
    return z_uv, quantized, vq.decode(quantized.zq)


def albedo_from_photos(
    photo_uv: Tensor,
    mask: Tensor | None,
    *,
    vq: VQAutoencoder,
    encoder_uv: nn.Module,
    attention: nn.Module,
    lighting: nn.Module,
) -> HiFiAlbedoOutput:
    """The albedo map of each person from the UV textures of their photos (see the module docstring).

    ``photo_uv`` ``(B, n, 3, S, S)``: the photos' completed UV textures, sRGB-encoded in
    [0, 1], n >= 1; ``mask`` ``(B, n)`` bool (True = use the photo; each row needs one) or
    None (all photos). A masked-out photo has no influence on the albedo: the result is the
    same as without it. ``vq`` supplies Q (straight-through) and G; ``encoder_uv`` maps
    ``(N, 3, S, S)`` in [-1, 1] to ``(N, d, h, w)``. Gradients reach ``attention`` and
    ``lighting`` (and the other modules unless they are frozen).
    """
    if photo_uv.ndim != 5 or photo_uv.shape[2] != 3 or photo_uv.shape[1] < 1:
        raise ValueError(f"photo_uv must be (B, n, 3, S, S) sRGB in [0, 1] with n >= 1, got {tuple(photo_uv.shape)}")
    b, n = photo_uv.shape[:2]
    z = encoder_uv(photo_uv.flatten(0, 1) * 2.0 - 1.0)
    latents = z.unflatten(0, (b, n))
    sh = lighting(z).unflatten(0, (b, n))
    a = attention(latents, mask, sh.flatten(2))
    q = vq.quantize(a)
    albedo = clamp_unit_straight_through((vq.decode(q.zq) + 1.0) * 0.5)
    return HiFiAlbedoOutput(
        albedo=albedo, albedo_linear=srgb_to_linear(albedo), latents=latents, albedo_latent=a, indices=q.indices, sh=sh
    )


class HiFiAlbedo(nn.Module):
    """Photos of one person (any number, any order) -> their albedo map, and each photo's SH light.

    Modules: ``vq`` (:class:`VQAutoencoder`, frozen: Q and G are used; its image encoder E
    is kept only so stage checkpoints load as they are), ``encoder_uv`` (E_uv, frozen),
    ``attention`` (:class:`AlbedoAttention`), ``lighting`` (:class:`LightingHead`). The frozen
    parts have ``requires_grad`` off and stay in eval mode whatever ``train()`` is called with.

    Build from trained weights with :meth:`from_checkpoint` (stage-3 training checkpoint) or
    :meth:`from_pretrained`; ``HiFiAlbedo(config)`` alone is randomly initialised. Modules
    given as arguments are used as they are (not copied).

    >>> from hifialbedo.models.vqgan import vq_config
    >>> model = HiFiAlbedo(HiFiAlbedoConfig.for_vq(vq_config("tiny", image_size=16, codebook_size=8), 16))
    >>> out = model(torch.rand(2, 3, 3, 16, 16))
    >>> tuple(out.albedo.shape), tuple(out.latents.shape), tuple(out.sh.shape)
    ((2, 3, 16, 16), (2, 3, 16, 4, 4), (2, 3, 9, 3))
    """

    def __init__(
        self,
        config: HiFiAlbedoConfig,
        *,
        vq: VQAutoencoder | None = None,
        encoder_uv: nn.Module | None = None,
        attention: AlbedoAttention | None = None,
        lighting: LightingHead | None = None,
    ) -> None:
        super().__init__()
        if vq is not None and vq.config != config.vq:
            raise ValueError(f"the given vq's config differs from config.vq: {vq.config} vs {config.vq}")
        self.config = config
        self.vq = vq if vq is not None else VQAutoencoder(config.vq)
        self.encoder_uv = encoder_uv if encoder_uv is not None else Encoder(config.vq)
        self.attention = attention if attention is not None else AlbedoAttention(config.attention)
        self.lighting = lighting if lighting is not None else LightingHead(config.lighting)
        self.vq.requires_grad_(False)
        self.encoder_uv.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> HiFiAlbedo:
        super().train(mode)
        self.vq.eval()  # frozen: no dead-code bookkeeping, no dropout
        self.encoder_uv.eval()
        return self

    @property
    def uv_size(self) -> int:
        """S: the side of the photo textures this model takes and of the albedo it returns."""
        return self.config.uv_size

    def forward(self, photo_uv: Tensor, mask: Tensor | None = None) -> HiFiAlbedoOutput:
        """``photo_uv`` ``(B, n, 3, S, S)`` sRGB in [0, 1] (S = :attr:`uv_size`), ``mask`` ``(B, n)`` bool or None.

        See :func:`albedo_from_photos`.
        """
        if photo_uv.ndim != 5 or tuple(photo_uv.shape[-3:]) != (3, self.uv_size, self.uv_size):
            s = self.uv_size
            raise ValueError(f"photo_uv must be (B, n, 3, {s}, {s}) sRGB in [0, 1], got {tuple(photo_uv.shape)}")
        return albedo_from_photos(
            photo_uv, mask, vq=self.vq, encoder_uv=self.encoder_uv, attention=self.attention, lighting=self.lighting
        )

    # ------------------------------------------------------------------ loading and saving

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, map_location: str | torch.device = "cpu") -> HiFiAlbedo:
        """The model of a stage-3 training checkpoint (written by ``training.engine.fit``), in eval mode.

        The architecture comes from the checkpoint's stage config (``stage_config["model"]``);
        the weights of modules ``vq``, ``encoder_uv``, ``attention`` and ``lighting`` are loaded
        strictly. FileNotFoundError when ``path`` is missing; ValueError naming the file when
        it is unreadable, not a stage-3 checkpoint, or its weights do not fit its config.
        """
        config, state = read_stage_checkpoint(
            path,
            "stage3",
            HiFiAlbedoConfig.from_dict,
            config_key="model",
            modules=_STAGE3_MODULES,
            map_location=map_location,
        )
        model = cls(config)
        load_module_weights(path, state, {name: getattr(model, name) for name in _STAGE3_MODULES})
        return model.to(map_location).eval()

    def save_pretrained(self, path: str | Path) -> Path:
        """Write the config and all weights to one file, atomically (no optimiser or training state)."""
        path = Path(path)
        state = {k: v.detach().cpu() for k, v in self.state_dict().items()}
        atomic_save({"format": PRETRAINED_FORMAT, "config": self.config.to_dict(), "state_dict": state}, path)
        return path

    @classmethod
    def from_pretrained(cls, path: str | Path, *, map_location: str | torch.device = "cpu") -> HiFiAlbedo:
        """Inverse of :meth:`save_pretrained`, in eval mode. FileNotFoundError / ValueError naming the file."""
        data = load_tagged(path, PRETRAINED_FORMAT, "HiFiAlbedo model file", map_location=map_location)
        try:
            model = cls(HiFiAlbedoConfig.from_dict(data["config"]))
            model.load_state_dict(data["state_dict"])
        except (ValueError, TypeError, KeyError, RuntimeError) as exc:
            raise ValueError(f"{path}: model file does not match its config ({exc})") from None
        return model.to(map_location).eval()


__all__ = [
    "HiFiAlbedo",
    "HiFiAlbedoConfig",
    "HiFiAlbedoOutput",
    "albedo_from_photos",
    "clamp_unit_straight_through",
    "predict_texture",
]
