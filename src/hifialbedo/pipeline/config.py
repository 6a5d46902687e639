"""The settings of the training-free reconstruction: :class:`ReconstructConfig`, with the
fusion steps' constants in :class:`FusionConfig`."""

from __future__ import annotations

from dataclasses import dataclass, field

from hifialbedo.inverse.lighting import LightingConfig
from hifialbedo.inverse.specular import SpecularConfig
from hifialbedo.io.images import MAX_SIDE


@dataclass(frozen=True)
class FusionConfig:
    """Constants of the fusion and completion steps (``pipeline.fuse``).

    >>> FusionConfig().detail_factor_range, FusionConfig().confidence_percentile
    ((0.5, 2.0), 95.0)
    """

    detail_factor_range: tuple[float, float] = (0.5, 2.0)
    """The factor by which the detail normals' explained shading changes a photo's albedo
    (A = I / S(n) instead of I / S(n0)) is clipped to this range, per texel."""
    max_pixels_per_texel: float = 1.0
    """A photo's fusion weight grows with its sampling density (pixels per texel) up to this."""
    confidence_percentile: float = 95.0
    """confidence.png is the fused confidence divided by this percentile of itself (relative
    within the reconstruction, so completion trusts the best-seen texels fully), clipped to [0, 1]."""
    confidence_floor: float = 1e-6
    """Smallest divisor of that normalisation (a reconstruction that saw almost nothing)."""
    completion_feather: float = 0.004
    """Completion first erodes the confidence by this share of the UV side (4 texels at 1024)
    and smooths it (``inverse.completion.feather_confidence``): the rim of a shadow or
    highlight that was filled in would otherwise stay as a line around it. 0: off."""
    texture_confidence: float = 0.5
    """texture.png takes the reference photo's own colour where its confidence is at least
    this, and blends linearly toward albedo x its shading below."""


@dataclass(frozen=True)
class ReconstructConfig:
    """Options of the training-free reconstruction."""

    uv_size: int = 1024
    """Side of the square UV maps, texels."""
    face_index: int | None = None
    """Which face when a photo has several (0 = largest); None: the largest, with a warning."""
    max_side: int = MAX_SIDE
    """Photos with a larger side are downscaled to this, with a warning."""
    check_identity: bool = True
    """With several photos, leave out faces that belong to someone else (dlib descriptor)."""
    lighting: LightingConfig = field(default_factory=LightingConfig)
    specular: SpecularConfig | None = field(default_factory=SpecularConfig)
    """The Blinn-Phong highlight fit (``inverse.specular``): specular.png, roughness.png and an
    albedo without the highlights; None: no specular separation (no maps)."""
    detail_normals: bool = True
    """Shape-from-shading detail on the mesh normals (``inverse.detail_normals``); False:
    normal.png holds the mesh normals (as normal_coarse.png)."""
    model: str | None = None
    """A stage-3 checkpoint (or ``HiFiAlbedo.save_pretrained`` file): the albedo comes from
    the learned HiFiAlbedo model instead of the training-free estimate; mesh, lighting
    and every other output are computed as in the training-free path."""
    fusion: FusionConfig = field(default_factory=FusionConfig)
    """Constants of the fusion and completion steps."""


__all__ = ["FusionConfig", "ReconstructConfig"]
