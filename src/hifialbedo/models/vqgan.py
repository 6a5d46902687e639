"""The texture codebook: a VQGAN-style autoencoder (HiFiAlbedo section 3.1, eqs. 1-2).

Architecture family of Esser et al. 2021 ("taming transformers"), written from the paper's
description: encoder E (residual blocks, strided-conv downsampling, self-attention at chosen
resolutions and in the middle), a vector quantiser Q over a codebook of N codes of size d,
and a decoder G mirroring E with nearest-neighbour upsampling.

Conventions
    images   ``(B, 3, H, W)`` float in [-1, 1] (sRGB-encoded texture or photo pixels, mapped
             ``x * 2 - 1`` from the package's [0, 1]); H and W powers of two, at least the
             downsampling factor. The decoder's output is not squashed (as taming): it lies
             in [-1, 1] only approximately; clamp for display.
    latents  ``(B, d, h, w)`` float, ``h = H / f``, ``w = W / f``, ``f = 2 ** (len(channel_mult) - 1)``.
    indices  ``(B, h, w)`` int64 in ``[0, N)``.

Eq. 2's squared norms are taken as means over elements (as taming and VQ-VAE code do), so
the loss scale does not depend on the latent size.

Presets: ``vq_config("tiny")`` trains on a 2-core CPU in minutes; ``vq_config("paper")`` is
taming's f16 layout at 1024 px with N = 1024. Note: ``attn_resolutions`` are absolute
feature-map sizes (taming's convention) fixed at construction from ``image_size``; at
1024 px the f16 layout never reaches 16 x 16, so only the middle blocks' attention (on the
64 x 64 latent grid) runs, exactly as taming's f16 model configured for 1024 px would.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hifialbedo.typed_config import ConfigDictMixin


def is_power_of_two(n: int) -> bool:
    return n >= 1 and (n & (n - 1)) == 0


@dataclass(frozen=True)
class VQConfig(ConfigDictMixin):
    """Architecture and quantiser settings of :class:`VQAutoencoder`."""

    in_channels: int = 3
    """Image channels in (RGB)."""
    out_channels: int = 3
    """Image channels out (RGB)."""
    base_channels: int = 128
    """Channels of the first level; level i has ``base_channels * channel_mult[i]``."""
    channel_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    """Per-level channel multipliers; ``len - 1`` downsamplings by 2."""
    num_res_blocks: int = 2
    """Residual blocks per encoder level (the decoder has one more per level, as taming)."""
    attn_resolutions: tuple[int, ...] = (16,)
    """Feature-map sizes (absolute, for ``image_size``) at which levels get self-attention."""
    z_channels: int = 256
    """Channels at the bottleneck, before the 1x1 projection to ``embed_dim``."""
    embed_dim: int = 256
    """Codebook vector size d (the latent's channels)."""
    codebook_size: int = 1024
    """Number of codes N (paper: 1024)."""
    beta: float = 0.25
    """Commitment weight of eq. 2."""
    image_size: int = 1024
    """Nominal image side (power of two); sets where attention layers go."""
    norm_groups: int = 32
    """GroupNorm groups; must divide every channel count."""
    dropout: float = 0.0
    """Dropout inside residual blocks."""
    dead_code_threshold: int = 200
    """A code unused for this many training-mode quantiser calls counts as dead."""

    def __post_init__(self) -> None:
        if not self.channel_mult or any(m < 1 for m in self.channel_mult):
            raise ValueError(f"channel_mult must be non-empty positive ints, got {self.channel_mult}")
        if not is_power_of_two(self.image_size):
            raise ValueError(f"image_size must be a power of two, got {self.image_size}")
        if self.image_size < self.downsample_factor:
            raise ValueError(f"image_size {self.image_size} is smaller than the downsampling factor {self.downsample_factor}")
        channels = {self.base_channels * m for m in self.channel_mult}  # the GroupNorm'd widths
        if any(c % self.norm_groups for c in channels):
            raise ValueError(f"norm_groups={self.norm_groups} must divide every channel count {sorted(channels)}")
        if self.codebook_size < 1 or self.embed_dim < 1 or self.num_res_blocks < 0:
            raise ValueError("codebook_size and embed_dim must be >= 1, num_res_blocks >= 0")
        if self.beta < 0 or not 0 <= self.dropout < 1 or self.dead_code_threshold < 1:
            raise ValueError("need beta >= 0, 0 <= dropout < 1, dead_code_threshold >= 1")

    @property
    def downsample_factor(self) -> int:
        """f: image side / latent side."""
        return 2 ** (len(self.channel_mult) - 1)

    @property
    def latent_size(self) -> int:
        """Latent side h = w for a square ``image_size`` input."""
        return self.image_size // self.downsample_factor


PRESETS: dict[str, VQConfig] = {
    # Taming's f16 layout at the paper's 1024 px, N = 1024 codes.
    "paper": VQConfig(),
    # 64 px -> 16 x 16 latents, 16/32 channels, 128 codes: minutes on a 2-core CPU.
    "tiny": VQConfig(
        base_channels=16,
        channel_mult=(1, 2, 2),
        num_res_blocks=1,
        attn_resolutions=(),
        z_channels=32,
        embed_dim=16,
        codebook_size=128,
        image_size=64,
        norm_groups=8,
        dead_code_threshold=50,
    ),
}


def vq_config(name: str, **overrides: Any) -> VQConfig:
    """The preset ``name`` (``"tiny"`` or ``"paper"``) with optional field overrides.

    >>> vq_config("tiny", codebook_size=64).codebook_size
    64
    """
    if name not in PRESETS:
        raise ValueError(f"unknown VQ preset {name!r}; choose from {sorted(PRESETS)}")
    return replace(PRESETS[name], **overrides)


# --------------------------------------------------------------------------- building blocks


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(groups, channels, eps=1e-6, affine=True)


class ResBlock(nn.Module):
    """Pre-activation residual block: (GN, SiLU, conv3x3) x 2 plus a 1x1 shortcut when channels change."""

    def __init__(self, in_channels: int, out_channels: int, groups: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = _norm(in_channels, groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = _norm(out_channels, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.shortcut(x) + h


class AttnBlock(nn.Module):
    """Single-head spatial self-attention with a residual connection, ``(B, C, h, w) -> same``."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.norm = _norm(channels, groups)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).transpose(-1, -2).unbind(1)  # (B, hw, C) each
        a = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]
        return x + self.proj(a.transpose(1, 2).reshape(b, c, h, w))


class Downsample(nn.Module):
    """Stride-2 3x3 conv; the asymmetric (right, bottom) zero pad halves even sides exactly."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest-neighbour x2 then 3x3 conv (no checkerboard of transposed convs)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def _middle(channels: int, groups: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        ResBlock(channels, channels, groups, dropout), AttnBlock(channels, groups), ResBlock(channels, channels, groups, dropout)
    )


# --------------------------------------------------------------------------- encoder / decoder


class Encoder(nn.Module):
    """E: image ``(B, in_channels, H, W)`` in [-1, 1] -> continuous latent z ``(B, embed_dim, H/f, W/f)``."""

    def __init__(self, config: VQConfig) -> None:
        super().__init__()
        c, g = config, config.norm_groups
        self.conv_in = nn.Conv2d(c.in_channels, c.base_channels, 3, padding=1)
        blocks: list[nn.Module] = []
        ch, res = c.base_channels, c.image_size
        for level, mult in enumerate(c.channel_mult):
            out = c.base_channels * mult
            for _ in range(c.num_res_blocks):
                blocks.append(ResBlock(ch, out, g, c.dropout))
                ch = out
                if res in c.attn_resolutions:
                    blocks.append(AttnBlock(ch, g))
            if level != len(c.channel_mult) - 1:
                blocks.append(Downsample(ch))
                res //= 2
        self.down = nn.Sequential(*blocks)
        self.mid = _middle(ch, g, c.dropout)
        self.norm_out = _norm(ch, g)
        self.conv_out = nn.Conv2d(ch, c.z_channels, 3, padding=1)
        self.quant_conv = nn.Conv2d(c.z_channels, c.embed_dim, 1)  # to the codebook's space

    def forward(self, x: Tensor) -> Tensor:
        h = self.mid(self.down(self.conv_in(x)))
        return self.quant_conv(self.conv_out(F.silu(self.norm_out(h))))


class Decoder(nn.Module):
    """G: quantised latent ``(B, embed_dim, h, w)`` -> image ``(B, out_channels, h*f, w*f)``, about [-1, 1]."""

    def __init__(self, config: VQConfig) -> None:
        super().__init__()
        c, g = config, config.norm_groups
        ch = c.base_channels * c.channel_mult[-1]
        res = c.latent_size
        self.post_quant_conv = nn.Conv2d(c.embed_dim, c.z_channels, 1)
        self.conv_in = nn.Conv2d(c.z_channels, ch, 3, padding=1)
        self.mid = _middle(ch, g, c.dropout)
        blocks: list[nn.Module] = []
        for level in reversed(range(len(c.channel_mult))):
            out = c.base_channels * c.channel_mult[level]
            for _ in range(c.num_res_blocks + 1):
                blocks.append(ResBlock(ch, out, g, c.dropout))
                ch = out
                if res in c.attn_resolutions:
                    blocks.append(AttnBlock(ch, g))
            if level != 0:
                blocks.append(Upsample(ch))
                res *= 2
        self.up = nn.Sequential(*blocks)
        self.norm_out = _norm(ch, g)
        self.conv_out = nn.Conv2d(ch, c.out_channels, 3, padding=1)

    def forward(self, zq: Tensor) -> Tensor:
        h = self.up(self.mid(self.conv_in(self.post_quant_conv(zq))))
        return self.conv_out(F.silu(self.norm_out(h)))


# --------------------------------------------------------------------------- quantiser


@dataclass(frozen=True)
class Quantized:
    """What :class:`VectorQuantizer` returns.

    ``zq`` ``(B, d, h, w)``: straight-through quantised latent (value = the chosen codes up
    to float rounding, gradient = identity to z). ``indices`` ``(B, h, w)`` int64.
    ``codebook_loss``: mean ||sg[z] - zq||^2 (moves codes). ``commitment_loss``:
    beta * mean ||sg[zq] - z||^2 (moves the encoder). ``perplexity``: exp of the entropy of
    this batch's code usage (1 .. N), detached.
    """

    zq: Tensor
    indices: Tensor
    codebook_loss: Tensor
    commitment_loss: Tensor
    perplexity: Tensor


def perplexity(indices: Tensor, num_codes: int) -> Tensor:
    """exp(entropy) of the code histogram of ``indices`` (any shape, int64 in [0, num_codes)).

    k codes used equally often -> k. Scalar float tensor, no gradient.
    """
    counts = torch.bincount(indices.reshape(-1), minlength=num_codes).to(torch.float64)
    p = counts / counts.sum().clamp_min(1.0)
    entropy = -(p * torch.log(p.clamp_min(1e-30))).sum()  # 0 log 0 = 0 through the clamp
    return torch.exp(entropy).to(torch.float32)


class VectorQuantizer(nn.Module):
    """Q of eq. 1: nearest code (Euclidean) per latent position, with a straight-through gradient.

    Codebook ``(N, d)``. Buffer ``unused_calls`` ``(N,)`` int64 counts training-mode calls
    since each code was last chosen; it is part of ``state_dict`` so dead-code bookkeeping
    survives checkpointing. :meth:`revive_dead_codes` re-seeds dead codes from encoder outputs.
    """

    def __init__(self, num_codes: int, dim: int, *, beta: float = 0.25, dead_code_threshold: int = 200) -> None:
        super().__init__()
        self.num_codes, self.dim, self.beta = num_codes, dim, beta
        self.dead_code_threshold = dead_code_threshold
        self.embedding = nn.Embedding(num_codes, dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / num_codes, 1.0 / num_codes)  # taming's init
        self.register_buffer("unused_calls", torch.zeros(num_codes, dtype=torch.int64))

    @property
    def codebook(self) -> Tensor:
        """``(N, d)`` code vectors."""
        return self.embedding.weight

    def nearest(self, z: Tensor) -> Tensor:
        """Indices ``(B, h, w)`` of the nearest code to each position of ``z`` ``(B, d, h, w)``."""
        b, d, h, w = z.shape
        flat = z.detach().permute(0, 2, 3, 1).reshape(-1, d)
        c = self.codebook.detach()
        # ||z||^2 is constant per row, so argmin of ||c||^2 - 2 z.c is the nearest code.
        dist = (c * c).sum(dim=1)[None, :] - 2.0 * flat @ c.t()
        return dist.argmin(dim=1).reshape(b, h, w)

    def lookup(self, indices: Tensor) -> Tensor:
        """Code vectors ``(B, d, h, w)`` of ``indices`` ``(B, h, w)``."""
        return self.embedding(indices).permute(0, 3, 1, 2).contiguous()

    def forward(self, z: Tensor) -> Quantized:
        if z.ndim != 4 or z.shape[1] != self.dim:
            raise ValueError(f"quantiser input must be (B, {self.dim}, h, w), got {tuple(z.shape)}")
        indices = self.nearest(z)
        zq = self.lookup(indices)
        codebook_loss = F.mse_loss(zq, z.detach())
        commitment_loss = self.beta * F.mse_loss(z, zq.detach())
        if self.training:
            self._update_usage(indices)
        zq_st = z + (zq - z).detach()  # forward: codes; backward: identity to the encoder
        return Quantized(zq_st, indices, codebook_loss, commitment_loss, perplexity(indices, self.num_codes))

    @torch.no_grad()
    def _update_usage(self, indices: Tensor) -> None:
        used = torch.bincount(indices.reshape(-1), minlength=self.num_codes) > 0
        self.unused_calls.add_(1)
        self.unused_calls[used] = 0

    def dead_codes(self, threshold: int | None = None) -> Tensor:
        """Indices ``(k,)`` of codes unused for at least ``threshold`` (default: the configured) calls."""
        t = self.dead_code_threshold if threshold is None else threshold
        return torch.nonzero(self.unused_calls >= t).reshape(-1)

    @torch.no_grad()
    def revive_dead_codes(self, z: Tensor, *, threshold: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Re-initialise dead codes to random positions of this batch's encoder output.

        ``z`` ``(B, d, h, w)``: continuous encoder latents. Each dead code gets one randomly
        drawn latent vector (with replacement when there are more dead codes than positions)
        and its ``unused_calls`` restarts at 0. Live codes are untouched. Returns the revived
        indices ``(k,)``. The caller owns the optimiser: stale Adam moments of revived rows
        are harmless but may be reset there.
        """
        dead = self.dead_codes(threshold)
        if dead.numel() == 0:
            return dead
        flat = z.detach().permute(0, 2, 3, 1).reshape(-1, self.dim)
        pick = torch.randint(flat.shape[0], (dead.numel(),), generator=generator, device=flat.device)
        self.embedding.weight[dead] = flat[pick].to(self.embedding.weight.dtype)
        self.unused_calls[dead] = 0
        return dead


# --------------------------------------------------------------------------- autoencoder


@dataclass(frozen=True)
class VQOutput:
    """What :meth:`VQAutoencoder.forward` returns.

    ``reconstruction`` ``(B, 3, H, W)`` about [-1, 1]; ``z`` ``(B, d, h, w)`` the continuous
    encoder output; ``zq``, ``indices``, ``codebook_loss``, ``commitment_loss``,
    ``perplexity`` as in :class:`Quantized`.
    """

    reconstruction: Tensor
    z: Tensor
    zq: Tensor
    indices: Tensor
    codebook_loss: Tensor
    commitment_loss: Tensor
    perplexity: Tensor


class VQAutoencoder(nn.Module):
    """I_hat = G(Q(E(I))) with the architecture given by ``config`` (kept as ``self.config``).

    Rebuild from a checkpoint with ``VQAutoencoder(VQConfig.from_dict(d))`` then
    ``load_state_dict``.

    >>> m = VQAutoencoder(vq_config("tiny", image_size=16, codebook_size=8))
    >>> out = m(torch.zeros(1, 3, 16, 16))
    >>> tuple(out.reconstruction.shape), tuple(out.indices.shape)
    ((1, 3, 16, 16), (1, 4, 4))
    """

    def __init__(self, config: VQConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.quantizer = VectorQuantizer(
            config.codebook_size, config.embed_dim, beta=config.beta, dead_code_threshold=config.dead_code_threshold
        )
        self.decoder = Decoder(config)

    @property
    def last_layer(self) -> Tensor:
        """The decoder's last weight, for :func:`hifialbedo.models.losses.adaptive_adversarial_weight`."""
        return self.decoder.conv_out.weight

    def check_image(self, x: Tensor) -> None:
        """Raise ValueError unless ``x`` is ``(B, in_channels, H, W)`` with H, W powers of two >= f."""
        c = self.config
        if x.ndim != 4 or x.shape[1] != c.in_channels:
            raise ValueError(f"image must be (B, {c.in_channels}, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if not (is_power_of_two(h) and is_power_of_two(w)) or min(h, w) < c.downsample_factor:
            raise ValueError(f"image sides must be powers of two >= {c.downsample_factor}, got {h}x{w}")

    def encode(self, x: Tensor) -> Tensor:
        """Continuous latent z ``(B, d, H/f, W/f)`` of images ``(B, 3, H, W)`` in [-1, 1]."""
        self.check_image(x)
        return self.encoder(x)

    def quantize(self, z: Tensor) -> Quantized:
        """Eq. 1 and the two terms of eq. 2 for latents ``(B, d, h, w)``."""
        return self.quantizer(z)

    def decode(self, zq: Tensor) -> Tensor:
        """Image ``(B, 3, h*f, w*f)`` (about [-1, 1]) from quantised latents ``(B, d, h, w)``."""
        return self.decoder(zq)

    def decode_indices(self, indices: Tensor) -> Tensor:
        """Image from code indices ``(B, h, w)`` int64."""
        return self.decode(self.quantizer.lookup(indices))

    def revive_dead_codes(self, z: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """See :meth:`VectorQuantizer.revive_dead_codes`."""
        return self.quantizer.revive_dead_codes(z, generator=generator)

    def forward(self, x: Tensor) -> VQOutput:
        z = self.encode(x)
        q = self.quantize(z)
        return VQOutput(self.decode(q.zq), z, q.zq, q.indices, q.codebook_loss, q.commitment_loss, q.perplexity)


def num_parameters(module: nn.Module) -> int:
    """Number of scalar parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())


def latent_shape(config: VQConfig, height: int, width: int) -> tuple[int, int, int]:
    """``(d, h, w)`` of the latent of an ``height x width`` image."""
    f = config.downsample_factor
    return config.embed_dim, height // f, width // f
