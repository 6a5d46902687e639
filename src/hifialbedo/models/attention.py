"""Stage 3: the albedo cross-attention over n photos of one person, and a lighting head.

Section 3.3: the latents of n photos ``z_uv,1 .. z_uv,n`` (each ``h x w x d``) are flattened
and concatenated into ``z_all`` (m = n h w tokens of size d); a learnable query latent
``q`` (h w x d) attends to keys ``k = P_k(z_all)`` and values ``v = P_v(z_all)``:
``a = softmax(q k^T) v`` (h w x d), which the frozen codebook quantises and the frozen
decoder turns into the albedo map.

Choices beyond the paper's sentence, each switchable in :class:`AlbedoAttentionConfig`:

* the logits are scaled by 1/sqrt(d_head) (standard scaled dot-product attention; the
  paper writes softmax(q k^T), a difference a learned q absorbs);
* an output projection and optional multi-head split;
* ``key_position``: a learnable per-position embedding (h w x d) added to the keys. The
  paper's keys carry content only, so a query could not tell which UV position a token
  came from; the embedding is the same for every photo, so the output stays exactly
  invariant to the photos' order;
* ``layer_norm``: LayerNorm on the key path only; values stay in the latent space;
* ``value_hidden`` > 0: a per-token MLP added to the linear value projection, fed the
  token, a learnable embedding of its UV position and its photo's SH light (from the
  lighting head; ``context``). The paper's P_v is a projector of the token alone; a linear
  map of a shaded latent cannot divide out a shading that changes with the light and the
  position, which this branch can. It starts at zero (the last layer), so the init below
  is unchanged; the light travels with its photo, so order invariance holds;
* ``init="local_mean"``: queries and key-position embeddings start as matching unit
  directions with a large logit (``init_logit``), ``P_k = 0``, ``P_v`` and the output
  projection the identity, so the untrained module returns (nearly) the per-position mean
  of the photos' latents: the training starts from the plain average. ``"random"``
  is a Perceiver-style init (q ~ N(0, 0.02)).

Order invariance: softmax over the concatenated tokens followed by a weighted sum is
symmetric in the tokens, so permuting the photos permutes keys and values together and
leaves ``a`` unchanged (up to float summation order). Padded photos are excluded with a
boolean ``mask`` (True = a real photo), which is exactly equivalent to dropping them.

``LightingHead``: one photo's latent -> second-order SH lighting ``(B, 9, 3)`` (radiance
coefficients, linear RGB, basis order and normalisation of :mod:`hifialbedo.ops.sh`),
initialised to a uniform white environment (shading exactly ``ambient`` everywhere).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hifialbedo.ops.sh import uniform_light
from hifialbedo.typed_config import ConfigDictMixin

CONTEXT_DIM = 27
"""Width of the per-photo context of the value MLP: the photo's SH light, 9 coefficients x RGB."""


@dataclass(frozen=True)
class AlbedoAttentionConfig(ConfigDictMixin):
    """Settings of :class:`AlbedoAttention`."""

    latent_dim: int = 256
    """d: channels of the VQ latent (the codebook's embed_dim)."""
    height: int = 64
    """h: latent grid rows."""
    width: int = 64
    """w: latent grid columns."""
    num_heads: int = 1
    """Attention heads (the paper: one); must divide ``latent_dim``."""
    layer_norm: bool = False
    """LayerNorm on the tokens before the key projection (values are never normalised)."""
    key_position: bool = True
    """Add a learnable per-position embedding (h w x d) to the keys (same for every photo)."""
    init: Literal["local_mean", "random"] = "local_mean"
    """Start as the per-position mean over photos, or a Perceiver-style random init."""
    init_logit: float = 12.0
    """``local_mean`` init: the scaled logit of a query on its own position's key."""
    value_hidden: int = 0
    """Width of the value MLP branch (token, UV position, photo light -> d); 0: the paper's linear P_v only."""

    def __post_init__(self) -> None:
        if min(self.latent_dim, self.height, self.width, self.num_heads) < 1:
            raise ValueError("latent_dim, height, width and num_heads must be >= 1")
        if self.value_hidden < 0:
            raise ValueError(f"value_hidden must be >= 0, got {self.value_hidden}")
        if self.latent_dim % self.num_heads:
            raise ValueError(f"num_heads={self.num_heads} must divide latent_dim={self.latent_dim}")
        if self.init not in ("local_mean", "random"):
            raise ValueError(f"unknown init {self.init!r}")
        if self.init == "local_mean" and not self.key_position:
            raise ValueError('init="local_mean" needs key_position=True (queries find their position through it)')


class AlbedoAttention(nn.Module):
    """Cross-attention from a learned query latent to the latents of n photos.

    ``forward(z, mask=None, context=None)``: ``z`` ``(B, n, d, h, w)`` continuous encoder
    latents of n >= 1 photos per person (``(B, d, h, w)`` is read as n = 1); ``mask``
    optional ``(B, n)`` bool, True for a real photo, False for padding (each row needs one
    True); ``context`` ``(B, n, 27)``: each photo's SH light flattened, needed when
    ``value_hidden`` > 0 and ignored otherwise.
    Returns the albedo latent ``(B, d, h, w)`` for the frozen quantiser and decoder.
    """

    def __init__(self, config: AlbedoAttentionConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or AlbedoAttentionConfig()
        d, hw = c.latent_dim, c.height * c.width
        self.query = nn.Parameter(torch.empty(hw, d))
        self.key_position = nn.Parameter(torch.zeros(hw, d)) if c.key_position else None
        self.norm = nn.LayerNorm(d) if c.layer_norm else nn.Identity()
        self.to_k = nn.Linear(d, d)
        self.to_v = nn.Linear(d, d)
        self.out = nn.Linear(d, d)
        if c.value_hidden > 0:
            self.value_position = nn.Parameter(torch.zeros(hw, d))
            self.value_mlp = nn.Sequential(nn.Linear(2 * d + CONTEXT_DIM, c.value_hidden), nn.SiLU(), nn.Linear(c.value_hidden, d))
        else:
            self.value_position, self.value_mlp = None, None
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        c = self.config
        d, hw, heads = c.latent_dim, c.height * c.width, c.num_heads
        dh = d // heads
        if self.value_mlp is not None:
            nn.init.trunc_normal_(self.value_position, std=0.02)
            self.value_mlp[0].reset_parameters()
            nn.init.zeros_(self.value_mlp[2].weight)  # the branch starts at zero
            nn.init.zeros_(self.value_mlp[2].bias)
        if c.init == "random":
            nn.init.trunc_normal_(self.query, std=0.02)
            if self.key_position is not None:
                nn.init.trunc_normal_(self.key_position, std=0.02)
            return
        # Unit directions per head; q.e / sqrt(dh) = init_logit on the own position and
        # about init_logit * N(0, 1/dh) elsewhere, so attention starts (nearly) local.
        u = F.normalize(torch.randn(hw, heads, dh), dim=-1)
        scale = (c.init_logit * dh**0.5) ** 0.5
        self.query.copy_((u * scale).reshape(hw, d))
        if self.key_position is not None:  # always, by AlbedoAttentionConfig's check
            self.key_position.copy_((u * scale).reshape(hw, d))
        nn.init.zeros_(self.to_k.weight)
        nn.init.zeros_(self.to_k.bias)
        for lin in (self.to_v, self.out):
            lin.weight.copy_(torch.eye(d))
            nn.init.zeros_(lin.bias)

    def forward(self, z: Tensor, mask: Tensor | None = None, context: Tensor | None = None) -> Tensor:
        c = self.config
        if z.ndim == 4:
            z = z[:, None]
        if z.ndim != 5 or tuple(z.shape[2:]) != (c.latent_dim, c.height, c.width):
            raise ValueError(f"latents must be (B, n, {c.latent_dim}, {c.height}, {c.width}), got {tuple(z.shape)}")
        b, n, d, h, w = z.shape
        hw, heads = h * w, c.num_heads
        tokens = z.permute(0, 1, 3, 4, 2).reshape(b, n, hw, d)  # token index = photo * hw + position
        k = self.to_k(self.norm(tokens))
        if self.key_position is not None:
            k = k + self.key_position  # broadcast over (B, n): identical for every photo
        v = self.to_v(tokens)
        if self.value_mlp is not None:
            if context is None or tuple(context.shape) != (b, n, CONTEXT_DIM):
                got = None if context is None else tuple(context.shape)
                raise ValueError(f"value_hidden > 0 needs context (B, n, {CONTEXT_DIM}) = each photo's SH light, got {got}")
            features = torch.cat(
                [tokens, self.value_position.expand(b, n, hw, d), context[:, :, None, :].expand(b, n, hw, CONTEXT_DIM)], dim=-1
            )
            v = v + self.value_mlp(features)

        def heads_first(t: Tensor) -> Tensor:  # (B, n, hw, d) -> (B, heads, n hw, d / heads)
            return t.reshape(b, n * hw, heads, d // heads).transpose(1, 2)

        q = self.query.reshape(1, hw, heads, d // heads).transpose(1, 2).expand(b, -1, -1, -1)
        attn_mask = None
        if mask is not None:
            if mask.shape != (b, n) or mask.dtype != torch.bool:
                raise ValueError(f"mask must be bool (B, n) = {(b, n)}, got {mask.dtype} {tuple(mask.shape)}")
            if not bool(mask.any(dim=1).all()):
                raise ValueError("every row of mask needs at least one real photo (True)")
            attn_mask = mask[:, None, None, :, None].expand(b, 1, 1, n, hw).reshape(b, 1, 1, n * hw)
        a = F.scaled_dot_product_attention(q, heads_first(k), heads_first(v), attn_mask=attn_mask)  # (B, heads, hw, dh)
        a = self.out(a.transpose(1, 2).reshape(b, hw, d))
        return a.transpose(1, 2).reshape(b, d, h, w)


@dataclass(frozen=True)
class LightingHeadConfig(ConfigDictMixin):
    """Settings of :class:`LightingHead`."""

    latent_dim: int = 256
    """d: channels of the input latent."""
    hidden_channels: int = 64
    """Channels of the two 3x3 convs before global pooling."""
    ambient: float = 1.0
    """Initial output: a uniform environment with this shading (linear RGB)."""

    def __post_init__(self) -> None:
        if self.latent_dim < 1 or self.hidden_channels < 1 or self.ambient < 0:
            raise ValueError("latent_dim, hidden_channels must be >= 1 and ambient >= 0")


class LightingHead(nn.Module):
    """One photo's latent ``(B, d, h, w)`` -> SH radiance coefficients ``(B, 9, 3)``, linear RGB.

    Order and normalisation as :mod:`hifialbedo.ops.sh` (``sh_shading(normals, coeffs)``
    gives the shading). The last layer starts at zero weight and a bias equal to
    ``uniform_light(ambient)``, so the untrained head predicts shading ``ambient`` for
    every normal, whatever the input.
    """

    def __init__(self, config: LightingHeadConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or LightingHeadConfig()
        self.features = nn.Sequential(
            nn.Conv2d(c.latent_dim, c.hidden_channels, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(c.hidden_channels, c.hidden_channels, 3, padding=1),
            nn.SiLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(c.hidden_channels, 27)
        with torch.no_grad():
            nn.init.zeros_(self.head.weight)
            self.head.bias.copy_(torch.as_tensor(uniform_light(c.ambient), dtype=torch.float32).reshape(27))

    def forward(self, z: Tensor) -> Tensor:
        if z.ndim != 4 or z.shape[1] != self.config.latent_dim:
            raise ValueError(f"latent must be (B, {self.config.latent_dim}, h, w), got {tuple(z.shape)}")
        return self.head(self.features(z)).reshape(-1, 9, 3)
