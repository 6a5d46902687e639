"""Discriminators: the image-space PatchGAN (eqs. 3, 6) and the latent-space one (eq. 6).

Both return raw logits (no sigmoid); the adversarial losses in
:mod:`hifialbedo.models.losses` take logits.

``PatchDiscriminator``: Isola et al.'s PatchGAN as used by taming: ``n_layers`` stride-2
4x4 convs (channels doubling, capped at 8x), one stride-1 4x4 conv, a 4x4 conv to one
logit per patch. Image ``(B, 3, H, W)`` in [-1, 1] -> ``(B, 1, H / 2**n_layers - 2, W / 2**n_layers - 2)``.

``LatentDiscriminator``: the code-space critic of section 3.2, acting on continuous encoder
latents ``(B, d, h, w)`` before quantisation -> per-position logits ``(B, 1, h, w)``
(3x3 convs with padding, no downsampling: latent grids are small).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from torch import Tensor, nn

from hifialbedo.typed_config import ConfigDictMixin

Norm = Literal["batch", "instance", "group", "none"]


def _norm(kind: Norm, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "group":
        return nn.GroupNorm(math.gcd(32, channels), channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}")


def _init_weights(module: nn.Module) -> None:
    # The DCGAN/taming init: N(0, 0.02) convs, N(1, 0.02) norm scales, zero biases.
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


@dataclass(frozen=True)
class PatchDiscriminatorConfig(ConfigDictMixin):
    """Settings of :class:`PatchDiscriminator`."""

    in_channels: int = 3
    """Image channels."""
    base_channels: int = 64
    """Channels of the first conv; doubled per layer up to 8x."""
    n_layers: int = 3
    """Stride-2 convs (taming: 3, a 70x70 receptive field)."""
    norm: Norm = "batch"
    """Normalisation after each inner conv."""

    def __post_init__(self) -> None:
        if self.n_layers < 1 or self.base_channels < 1 or self.in_channels < 1:
            raise ValueError("n_layers, base_channels and in_channels must be >= 1")
        _norm(self.norm, 1)  # raises on an unknown name

    @property
    def min_size(self) -> int:
        """Smallest image side giving a logits map of at least 1 x 1."""
        return 3 * 2**self.n_layers


class PatchDiscriminator(nn.Module):
    """PatchGAN critic: image ``(B, C, H, W)`` in [-1, 1] -> logits ``(B, 1, H/2^n - 2, W/2^n - 2)``."""

    def __init__(self, config: PatchDiscriminatorConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or PatchDiscriminatorConfig()
        bias = c.norm == "none"  # a norm's shift makes a conv bias redundant
        layers: list[nn.Module] = [nn.Conv2d(c.in_channels, c.base_channels, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        ch = c.base_channels
        for n in range(1, c.n_layers + 1):
            out = c.base_channels * min(2**n, 8)
            stride = 2 if n < c.n_layers else 1
            layers += [nn.Conv2d(ch, out, 4, stride, 1, bias=bias), _norm(c.norm, out), nn.LeakyReLU(0.2, True)]
            ch = out
        layers.append(nn.Conv2d(ch, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)
        _init_weights(self)

    def forward(self, image: Tensor) -> Tensor:
        c = self.config
        if image.ndim != 4 or image.shape[1] != c.in_channels:
            raise ValueError(f"discriminator input must be (B, {c.in_channels}, H, W), got {tuple(image.shape)}")
        if min(image.shape[-2:]) < c.min_size:
            raise ValueError(f"image sides must be >= {c.min_size} for n_layers={c.n_layers}, got {tuple(image.shape[-2:])}")
        return self.net(image)


@dataclass(frozen=True)
class LatentDiscriminatorConfig(ConfigDictMixin):
    """Settings of :class:`LatentDiscriminator`."""

    in_channels: int = 256
    """Latent channels d (the codebook's embed_dim)."""
    base_channels: int = 64
    """Channels of the first conv; doubled per layer up to 4x."""
    n_layers: int = 3
    """3x3 conv + LeakyReLU stages before the logit conv."""
    norm: Norm = "none"
    """Normalisation after each inner conv but the first."""

    def __post_init__(self) -> None:
        if self.n_layers < 1 or self.base_channels < 1 or self.in_channels < 1:
            raise ValueError("n_layers, base_channels and in_channels must be >= 1")
        _norm(self.norm, 1)


class LatentDiscriminator(nn.Module):
    """Critic on continuous latents: ``(B, d, h, w)`` -> per-position logits ``(B, 1, h, w)``."""

    def __init__(self, config: LatentDiscriminatorConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or LatentDiscriminatorConfig()
        layers: list[nn.Module] = []
        ch = c.in_channels
        for n in range(c.n_layers):
            out = c.base_channels * min(2**n, 4)
            layers += [nn.Conv2d(ch, out, 3, 1, 1), _norm(c.norm, out) if n else nn.Identity(), nn.LeakyReLU(0.2, True)]
            ch = out
        layers.append(nn.Conv2d(ch, 1, 3, 1, 1))
        self.net = nn.Sequential(*layers)
        _init_weights(self)

    def forward(self, z: Tensor) -> Tensor:
        if z.ndim != 4 or z.shape[1] != self.config.in_channels:
            raise ValueError(f"latent discriminator input must be (B, {self.config.in_channels}, h, w), got {tuple(z.shape)}")
        return self.net(z)
