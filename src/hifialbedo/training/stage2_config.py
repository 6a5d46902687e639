"""Stage 2's settings: :class:`Stage2Config` (one field, one docstring), its presets and
:func:`stage2_config`. What the settings do: ``training.stage2``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hifialbedo.models.discriminators import LatentDiscriminatorConfig, PatchDiscriminatorConfig
from hifialbedo.models.losses import GAN_LOSSES, GanLoss
from hifialbedo.models.vqgan import VQConfig, vq_config
from hifialbedo.typed_config import ConfigDictMixin


@dataclass(frozen=True)
class Stage2Config(ConfigDictMixin):
    """Everything stage 2 trains with, besides the generic ``TrainConfig``. Defaults = the paper preset."""

    vq: VQConfig = field(default_factory=VQConfig)
    """The frozen stage-1 autoencoder's architecture (stored so a checkpoint can rebuild it; set from the stage-1 checkpoint)."""
    latent_disc: LatentDiscriminatorConfig = field(default_factory=LatentDiscriminatorConfig)
    """D_latent of eq. 6, on continuous latents; ``in_channels`` must equal ``vq.embed_dim``."""
    image_disc: PatchDiscriminatorConfig = field(default_factory=PatchDiscriminatorConfig)
    """D_image of eq. 6, a PatchGAN on sRGB renders mapped to [-1, 1]."""
    id_weight: float = 1.0
    """Weight of L_id (eq. 5; eq. 7 gives it 1)."""
    l1_weight: float = 10.0
    """Eq. 7's lambda_1: L1 between I_origin and the photo on the rendered mask (linear RGB)."""
    lpips_weight: float = 10.0
    """Eq. 7's lambda_2: LPIPS between I_origin and the masked photo (sRGB); 0 skips it."""
    adv_weight: float = 0.1
    """Eq. 7's lambda_3: factor of the generator's two adversarial terms."""
    commitment_weight: float = 2.5
    """Weight of mean ||z_uv - sg[Q(z_uv)]||^2 (eq. 2's commitment term). Not in eq. 7: ours (see the module docstring).

    With the codebook frozen, straight-through gradients otherwise push z_uv steadily away
    from the codes it selects (the selection only changes at Voronoi borders), the latents
    drift off the codebook and code usage collapses. 2.5 = beta (0.25) x eq. 7's
    reconstruction weight (10); 0 gives eq. 7 exactly."""
    adversarial_start: int = 1000
    """Optimiser step (0-based) from which the adversarial terms and the critics' training are on.

    Not given in the paper; ours. The paper trains 10 epochs of FFHQ (70k photos) at global
    batch 128, about 5.5k steps: 1000 is a little under 2 epochs of warm-up."""
    yaw_range: float = 0.6
    """I_random's yaw is uniform in [-yaw_range, yaw_range] radians (about the mesh's centroid)."""
    pitch_range: float = 0.25
    """I_random's pitch is uniform in [-pitch_range, pitch_range] radians."""
    use_identity: bool = True
    """Compute L_id with the frozen identity network (``models.identity.IdentityNet``: dlib's ResNet); False drops the term."""
    gan_loss: GanLoss = "non_saturating"
    """"non_saturating" (eq. 6's log-likelihood, generator -log D(fake)) or "hinge" (taming's)."""

    def __post_init__(self) -> None:
        for name in ("id_weight", "l1_weight", "lpips_weight", "adv_weight", "commitment_weight", "yaw_range", "pitch_range"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.adversarial_start < 0:
            raise ValueError(f"adversarial_start must be >= 0, got {self.adversarial_start}")
        if self.gan_loss not in GAN_LOSSES:
            raise ValueError(f"gan_loss must be one of {sorted(GAN_LOSSES)}, got {self.gan_loss!r}")
        if self.latent_disc.in_channels != self.vq.embed_dim:
            raise ValueError(
                f"latent_disc.in_channels ({self.latent_disc.in_channels}) must equal vq.embed_dim ({self.vq.embed_dim})"
            )
        if self.image_disc.in_channels != 3:
            raise ValueError(f"image_disc.in_channels must be 3 (RGB renders), got {self.image_disc.in_channels}")

    settings_prefix: ClassVar[str] = "stage2."

    def with_vq(self, vq: VQConfig) -> Stage2Config:
        """A copy for the stage-1 model ``vq`` (``latent_disc.in_channels`` follows ``vq.embed_dim``)."""
        return dataclasses.replace(self, vq=vq, latent_disc=dataclasses.replace(self.latent_disc, in_channels=vq.embed_dim))


STAGE2_PRESETS: dict[str, Stage2Config] = {
    # The paper's weights (eq. 7) on taming's f16 VQGAN at 1024 px; critics at taming's sizes.
    "paper": Stage2Config(vq=vq_config("paper"), latent_disc=LatentDiscriminatorConfig(in_channels=vq_config("paper").embed_dim)),
    # The tiny stage-1 model (64 px, 16-channel latents) and small critics: CPU-sized.
    "tiny": Stage2Config(
        vq=vq_config("tiny"),
        latent_disc=LatentDiscriminatorConfig(in_channels=vq_config("tiny").embed_dim, base_channels=32, n_layers=2),
        image_disc=PatchDiscriminatorConfig(base_channels=16, n_layers=3),
        adversarial_start=200,
    ),
}


def stage2_config(name: str, **overrides: Any) -> Stage2Config:
    """The preset ``name`` ("tiny" or "paper") with top-level field overrides.

    Overriding ``vq`` alone also sets ``latent_disc.in_channels`` to its ``embed_dim``.
    Nested partial overrides: :meth:`Stage2Config.updated`.

    >>> stage2_config("tiny").latent_disc.in_channels, stage2_config("paper").adv_weight
    (16, 0.1)
    """
    if name not in STAGE2_PRESETS:
        raise ValueError(f"unknown stage-2 preset {name!r}; choose from {sorted(STAGE2_PRESETS)}")
    base = STAGE2_PRESETS[name]
    vq = overrides.pop("vq", None)
    if vq is not None:
        base = base.with_vq(vq)
    return dataclasses.replace(base, **overrides)


__all__ = ["STAGE2_PRESETS", "Stage2Config", "stage2_config"]
