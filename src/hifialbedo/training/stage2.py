"""Stage 2 of the learned model: the UV texture encoder E_uv with the dual discriminator
(HiFiAlbedo section 3.2, eqs. 5-7; section 4.1).

The stage-1 codebook autoencoder (E, Q, G) is frozen. A copy of its encoder, E_uv
(initialised from E, including the 1x1 pre-quantisation conv), learns to map a photo to
the latent of its UV texture; Q and G turn that into the texture T = G(Q(E_uv(photo))).
T is mapped onto the photo's mesh and rendered from the photo's view (I_origin) and from a
random view (I_random)::

    L_texture = id_weight L_id (eq. 5) + l1_weight L1 + lpips_weight LPIPS
                + adv_weight (L_G(D_latent, z_uv) + L_G(D_image, I_random))      (eq. 7)
                + commitment_weight mean ||z_uv - sg[Q(z_uv)]||^2                 (ours)

with L_id = 1 - cos(A(photo face), A(I_random)) (A: the frozen identity network), L1 and
LPIPS between I_origin and the photo on the rendered mask, and the adversarial terms 0
before ``adversarial_start``. The two critics of eq. 6 are trained alternately:
D_latent tells real-texture latents z_texture = E(real UV texture) (real) from z_uv (fake);
D_image tells I_origin (real) from I_random (fake). (Eq. 6 as extracted writes
``log D_latent(z_uv) + log(1 - D_latent(z_texture))``, the opposite labelling of its
image half; we read z_texture as the real side, which is what makes E_uv's latents
"texture-like".) Paper weights (eq. 7): 1, 10, 10, 0.1.

Design decisions (ours, not the paper's):

- **E_uv's input is the photo unwrapped onto our UV layout** by its own fitted mesh
  (``photo_uv`` of :class:`~hifialbedo.training.synth_data.SynthUVPhotos`: sRGB [0, 1],
  mapped to [-1, 1]). The paper's encoder sees the aligned photo and learns the unwrap
  itself; ours gets the geometry for free, so at toy size the encoder only has to map lit,
  partly filled-in textures into the codebook's texture domain.
- **The predicted texture keeps the photo's lighting** (it is a texture, not an albedo;
  stage 3 removes the light). It is rendered *unlit*
  (``render.views.render_texture(..., sh=None)``, shading 1) on the photo's mesh
  (``render.views.mesh_views(landmarks)``), from the original view and from a random view
  turned by yaw ~ U(-yaw_range, yaw_range), pitch ~ U(-pitch_range, pitch_range) radians.
  The angles come from a ``torch.Generator`` seeded from (step, identity, render) of each
  sample (:func:`random_view_angles`): a run is reproducible, and a sample gets the same
  view whatever the split of the batch over devices and accumulation.
- Colour: the decoder's output is sRGB in about [-1, 1]; it is clamped to [0, 1] and
  linearised (``ops.colour.srgb_to_linear``) before rendering, renders are linear RGB. L1
  compares linear RGB; LPIPS, the identity network and the image critic see sRGB (the
  critic in [-1, 1], the others in [0, 1]).
- The identity landmarks of I_random are the turned mesh's projected vertices (468, padded
  with zeros to MediaPipe's 478: the face chip only uses indices 263, 382, 33, 155, 2).
- The photo's identity descriptor is taken of ``photo_srgb * mask`` (mask = the render's
  coverage of the original view), so both descriptors see a face on black.
- The discriminators are not run before ``adversarial_start`` (their loss is a constant 0,
  their weights and Adam state stay untouched); afterwards the discriminator pass reuses
  the generator pass's detached z_uv, z_texture, I_origin and I_random of the same
  micro-batch (computed before this step's E_uv update), recomputing only when called alone.
- **A commitment term is added to eq. 7**, weight 2.5 = stage 1's beta (0.25) times the 10
  eq. 7 gives the reconstruction terms; 0 restores eq. 7. Q is straight-through to z_uv and
  the codebook is frozen, so the reconstruction gradients keep pushing z_uv the same way
  until its nearest code changes. Measured on a toy 64-code VQ (6 photos, batch 2, lr 1e-3,
  no adversarial terms; mean |z_uv - z_texture|, code perplexity and L1 after 80 steps,
  from 0.20, 14.3 and 0.0939 at the start):

  ======  ======  ==========  ======
  weight  z dist  perplexity  L1
  ======  ======  ==========  ======
  0       3.46    2.9         0.0981
  0.25    0.78    6.4         0.0933
  1       0.28    12.0        0.0914
  2.5     0.24    16.2        0.0917
  4       0.22    19.4        0.0914
  ======  ======  ==========  ======

  Without it z_uv drifts off the codebook and code usage collapses. Worth re-checking at
  paper scale (lr 1e-5, 1024 codes).
- The adversarial losses are the non-saturating pair by default (eq. 6 is written as a
  log-likelihood); ``gan_loss="hinge"`` gives taming's pair.

Real UV textures for z_texture: a batch's ``texture`` (a ``UVTextureFolder`` of real
textures on the project's UV layout, paired by index modulo its length, see
:func:`stage2_dataset`) when present, else the synthetic set's ``albedo_uv_srgb``.

Here: :class:`UVEncoderStage`, :class:`Stage2Forward`, :func:`random_view_angles`,
:func:`build_stage2`, :func:`load_stage2_model`. The settings: ``training.stage2_config``
(:class:`Stage2Config`, :data:`STAGE2_PRESETS`, :func:`stage2_config`); the data:
``training.stage2_data`` (:func:`stage2_dataset`, :class:`PairedTextures`); the texture
T = G(Q(E_uv(photo))): ``models.albedo_model.predict_texture``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from hifialbedo.models.albedo_model import predict_texture
from hifialbedo.models.discriminators import LatentDiscriminator, PatchDiscriminator
from hifialbedo.models.losses import GAN_LOSSES, PerceptualLoss, adversarial_warmup, identity_loss, l1
from hifialbedo.models.saved import load_module_weights, read_stage_checkpoint
from hifialbedo.models.vqgan import Encoder, Quantized, VQAutoencoder, VQConfig
from hifialbedo.ops.colour import linear_to_srgb, srgb_to_linear
from hifialbedo.render.differentiable import RenderOutput
from hifialbedo.render.views import MeshView, mesh_views, render_texture
from hifialbedo.training.data import derive_seed
from hifialbedo.training.stage1 import to_model_range, to_unit_range
from hifialbedo.training.stage2_config import Stage2Config, stage2_config
from hifialbedo.training.stage2_data import stage2_dataset
from hifialbedo.training.step_cache import MicroBatchCache
from hifialbedo.typed_config import coerce_config, merge_settings

N_LANDMARKS = 478  # MediaPipe's count (468 mesh vertices + 10 iris points)
_VIEW_STREAM = 0x51E2  # salt of the random-view seeds (keeps them apart from other derive_seed uses)


# --------------------------------------------------------------------------- pieces


def random_view_angles(step: int, sample_keys: Tensor, *, yaw_range: float, pitch_range: float) -> tuple[Tensor, Tensor]:
    """I_random's ``(yaw, pitch)``, each ``(B,)`` float32 radians, for one training step.

    ``sample_keys`` ``(B, k)`` non-negative int64 naming each sample (stage 2 uses
    (identity, render)). Sample b's angles are uniform draws of a ``torch.Generator`` seeded
    with ``derive_seed(salt, step, *sample_keys[b])``: a function of the step and the sample
    only, and never of the global random state.

    >>> keys = torch.tensor([[0, 0], [0, 1]])
    >>> a = random_view_angles(3, keys, yaw_range=0.6, pitch_range=0.25)
    >>> torch.equal(a[0], random_view_angles(3, keys, yaw_range=0.6, pitch_range=0.25)[0])
    True
    """
    keys = sample_keys.detach().cpu().to(torch.int64).reshape(sample_keys.shape[0], -1)
    if bool((keys < 0).any()) or step < 0:
        raise ValueError("step and sample keys must be >= 0")
    draws = []
    for row in keys.tolist():
        generator = torch.Generator().manual_seed(derive_seed(_VIEW_STREAM, step, *row))
        draws.append(torch.rand(2, generator=generator) * 2.0 - 1.0)
    u = torch.stack(draws) if draws else torch.zeros(0, 2)
    return u[:, 0] * yaw_range, u[:, 1] * pitch_range


def sample_keys(batch: Mapping[str, Any], batch_size: int) -> Tensor:
    """``(B, 2)`` (identity, render) of a synthetic batch; ``(B, 1)`` positions when the batch has no such keys."""
    identity, render = batch.get("identity"), batch.get("render")
    if torch.is_tensor(identity) and torch.is_tensor(render) and identity.shape == render.shape == (batch_size,):
        return torch.stack([identity, render], dim=1)
    return torch.arange(batch_size)[:, None]


def texture_to_linear(texture: Tensor) -> Tensor:
    """Decoder output (sRGB, about [-1, 1]) -> linear RGB in [0, 1] (clamped first), float32."""
    return srgb_to_linear(to_unit_range(texture.float()))


def render_to_srgb(image: Tensor) -> Tensor:
    """Linear-RGB render -> sRGB in [0, 1]."""
    return linear_to_srgb(image).clamp(0.0, 1.0)


def pad_landmarks(positions: Tensor) -> Tensor:
    """Projected mesh vertices ``(B, 468, 2)`` -> ``(B, 478, 2)`` landmark pixels (iris points 0)."""
    b, v, c = positions.shape
    return torch.cat([positions, positions.new_zeros(b, N_LANDMARKS - v, c)], dim=1) if v < N_LANDMARKS else positions


def _concat_views(a: MeshView, b: MeshView) -> MeshView:
    return MeshView(torch.cat([a.positions, b.positions]), torch.cat([a.depth, b.depth]), torch.cat([a.normals, b.normals]))


def _split_render(render: RenderOutput, b: int) -> tuple[RenderOutput, RenderOutput]:
    parts = (render.image, render.albedo, render.shading, render.mask)
    return RenderOutput(*(t[:b] for t in parts)), RenderOutput(*(t[b:] for t in parts))


@dataclass(frozen=True)
class Stage2Forward:
    """The intermediates of one stage-2 forward pass (B samples, S the UV side, H x W the photo).

    ``photo_uv`` ``(B, 3, S, S)`` E_uv's input, sRGB in [-1, 1]; ``z_uv`` ``(B, d, S/f, S/f)``
    continuous; ``quantized``: Q's output for ``z_uv`` (``zq`` straight-through, ``indices``
    ``(B, S/f, S/f)``); ``texture`` ``(B, 3, S, S)`` G's output, sRGB about [-1, 1];
    ``texture_linear`` the same clamped and linear in [0, 1]; ``origin`` / ``random``:
    renders (linear RGB ``image`` ``(B, 3, H, W)``, ``mask`` ``(B, 1, H, W)``) from the
    photo's view and the turned one; ``yaw``, ``pitch`` ``(B,)`` radians;
    ``random_landmarks`` ``(B, 478, 2)`` pixels of the turned mesh (iris points 0).
    """

    photo_uv: Tensor
    z_uv: Tensor
    quantized: Quantized
    texture: Tensor
    texture_linear: Tensor
    origin: RenderOutput
    random: RenderOutput
    yaw: Tensor
    pitch: Tensor
    random_landmarks: Tensor


# --------------------------------------------------------------------------- the stage


class UVEncoderStage:
    """Stage 2 for ``training.engine.fit``.

    Modules: ``encoder_uv`` (trained, initialised from the stage-1 encoder), ``d_latent``
    and ``d_image`` (trained); frozen: ``vq`` (the whole stage-1 autoencoder), ``lpips``
    and, with ``use_identity``, ``identity``. Optimisers: "generator" (encoder_uv) then
    "discriminator" (both critics).

    ``vq``: the trained stage-1 model; its weights are copied, and every :meth:`build`
    rebuilds the modules from that copy (``config.vq`` must equal ``vq.config``).

    Batches (collated :class:`~hifialbedo.training.synth_data.SynthUVPhotos` items): ``photo``
    ``(B, 3, H, W)`` linear RGB, ``photo_srgb`` sRGB, ``landmarks`` ``(B, 478, 3)`` pixels,
    ``photo_uv`` ``(B, 3, S, S)`` sRGB [0, 1] with S = ``config.vq.image_size``, and real
    textures ``texture`` or ``albedo_uv_srgb`` ``(B, 3, S, S)`` sRGB [0, 1]; ``identity`` and
    ``render`` (ints) seed the random views.
    """

    def __init__(self, config: Stage2Config, vq: VQAutoencoder) -> None:
        if vq.config != config.vq:
            raise ValueError("config.vq differs from the stage-1 model's config; use config.with_vq(vq.config)")
        self.config = config
        self._vq_state = {k: v.detach().cpu().clone() for k, v in vq.state_dict().items()}
        self._cache = MicroBatchCache()  # generator outputs for the same step's discriminator pass

    def config_dict(self) -> dict[str, Any]:
        return {"stage": "stage2", "stage2": self.config.to_dict()}

    def build(self) -> dict[str, nn.Module]:
        c = self.config
        vq = VQAutoencoder(c.vq)
        vq.load_state_dict(self._vq_state)
        vq.eval().requires_grad_(False)
        encoder_uv = Encoder(c.vq)
        encoder_uv.load_state_dict(vq.encoder.state_dict())  # E_uv starts as E (incl. quant_conv)
        encoder_uv.requires_grad_(True)
        modules: dict[str, nn.Module] = {
            "encoder_uv": encoder_uv,
            "vq": vq,
            "d_latent": LatentDiscriminator(c.latent_disc),
            "d_image": PatchDiscriminator(c.image_disc),
            "lpips": PerceptualLoss.from_installed_package(input_range=(0.0, 1.0)),
        }
        if c.use_identity:
            from hifialbedo.models.identity import IdentityNet

            modules["identity"] = IdentityNet().eval().requires_grad_(False)
        return modules

    def frozen(self) -> set[str]:
        return {"vq", "lpips"} | ({"identity"} if self.config.use_identity else set())

    def optimizers(self) -> list[tuple[str, list[str], float]]:
        return [("generator", ["encoder_uv"], 1.0), ("discriminator", ["d_latent", "d_image"], 1.0)]

    # ----------------------------------------------------------------- forward

    def forward(self, modules: Mapping[str, nn.Module], batch: Mapping[str, Any], step: int) -> Stage2Forward:
        """E_uv, Q, G, and the two unlit renders of the predicted texture (views of ``step``)."""
        for key in ("photo_uv", "landmarks", "photo"):
            if key not in batch:
                raise ValueError(f"stage-2 batch has no {key!r} (keys: {sorted(batch)})")
        photo_uv = to_model_range(batch["photo_uv"])
        z_uv, quantized, texture = predict_texture(modules["encoder_uv"], modules["vq"], photo_uv)  # type: ignore[arg-type]
        landmarks = batch["landmarks"]
        b = landmarks.shape[0]
        height, width = batch["photo"].shape[-2:]
        c = self.config
        yaw, pitch = random_view_angles(step, sample_keys(batch, b), yaw_range=c.yaw_range, pitch_range=c.pitch_range)
        device = texture.device
        with torch.autocast(device.type, enabled=False):  # the rasterizer reads float32 positions
            linear = texture_to_linear(texture)
            origin_view = mesh_views(landmarks.float())
            random_view = mesh_views(landmarks.float(), yaw=yaw.to(device), pitch=pitch.to(device))
            both = render_texture(torch.cat([linear, linear]), _concat_views(origin_view, random_view), height, width)
        origin, random = _split_render(both, b)
        return Stage2Forward(
            photo_uv, z_uv, quantized, texture, linear, origin, random, yaw, pitch, pad_landmarks(random_view.positions)
        )

    @staticmethod
    def real_textures(batch: Mapping[str, Any]) -> Tensor:
        """The batch's real UV textures, sRGB [0, 1]: ``texture`` when given, else ``albedo_uv_srgb``."""
        if "texture" in batch:
            return batch["texture"]
        if "albedo_uv_srgb" in batch:
            return batch["albedo_uv_srgb"]
        raise ValueError("stage-2 batch has no real UV textures ('texture' or 'albedo_uv_srgb')")

    # ----------------------------------------------------------------- losses

    def loss(self, modules: dict[str, nn.Module], batch: Any, step: int, optimizer: str) -> tuple[Tensor, dict[str, float]]:
        if optimizer == "generator":
            return self.generator_loss(modules, batch, step)
        if optimizer == "discriminator":
            return self.discriminator_loss(modules, batch, step)
        raise ValueError(f"unknown optimizer {optimizer!r}")

    def generator_loss(
        self, modules: Mapping[str, nn.Module], batch: Mapping[str, Any], step: int
    ) -> tuple[Tensor, dict[str, float]]:
        """Eq. 7 for E_uv on one micro-batch, and its terms as metrics."""
        c = self.config
        out = self.forward(modules, batch, step)
        zero = out.z_uv.new_zeros(())
        mask = out.origin.mask
        photo_linear = batch["photo"].to(out.origin.image.dtype)
        photo_srgb = batch["photo_srgb"].to(out.origin.image.dtype)

        rec = l1(out.origin.image, photo_linear * mask, mask=mask)
        lpips = zero
        if c.lpips_weight > 0:
            lpips = modules["lpips"](render_to_srgb(out.origin.image), photo_srgb * mask, mask)
        id_loss = zero
        if c.use_identity:
            net = modules["identity"]
            with torch.no_grad():
                desc_photo = net(photo_srgb * mask, batch["landmarks"])
            desc_random = net(render_to_srgb(out.random.image), out.random_landmarks)
            id_loss = identity_loss(desc_photo, desc_random)
        with torch.no_grad():
            z_texture = modules["vq"].encode(to_model_range(self.real_textures(batch)))

        warm = adversarial_warmup(step, c.adversarial_start)
        g_latent = g_image = zero
        if warm > 0:
            g_loss = GAN_LOSSES[c.gan_loss][1]
            g_latent = g_loss(modules["d_latent"](out.z_uv))
            g_image = g_loss(modules["d_image"](to_model_range(render_to_srgb(out.random.image))))
            self._cache.put(step, batch["photo_uv"], {
                "z_uv": out.z_uv.detach(),
                "z_texture": z_texture,
                "origin": out.origin.image.detach(),
                "random": out.random.image.detach(),
            })
        commitment = F.mse_loss(out.z_uv, out.quantized.zq.detach())  # zq's value is the selected codes
        adv_weight = c.adv_weight * warm
        total = c.id_weight * id_loss + c.l1_weight * rec + c.lpips_weight * lpips + adv_weight * (g_latent + g_image)
        total = total + c.commitment_weight * commitment
        metrics = {
            "id": id_loss.item(),
            "l1": rec.item(),
            "lpips": lpips.item(),
            "g_latent": g_latent.item(),
            "g_image": g_image.item(),
            "adv_weight": float(adv_weight),
            "commitment": commitment.item(),
            "perplexity": out.quantized.perplexity.item(),
            "z_distance": (out.z_uv.detach() - z_texture).abs().mean().item(),
        }
        return total, metrics

    def discriminator_loss(
        self, modules: Mapping[str, nn.Module], batch: Mapping[str, Any], step: int
    ) -> tuple[Tensor, dict[str, float]]:
        """Eq. 6 for both critics (0, with no critic run, before ``adversarial_start``)."""
        c = self.config
        names = ("d_latent", "d_image", "logits_real_latent", "logits_fake_latent", "logits_real_image", "logits_fake_image")
        warm = adversarial_warmup(step, c.adversarial_start)
        if warm == 0:
            device = batch["photo_uv"].device
            return torch.zeros((), device=device, requires_grad=True), dict.fromkeys(names, 0.0)
        cached = self._cache.get(step, batch["photo_uv"])
        if cached is None:  # called without this step's generator pass: recompute
            with torch.no_grad():
                out = self.forward(modules, batch, step)
                z_texture = modules["vq"].encode(to_model_range(self.real_textures(batch)))
            cached = {"z_uv": out.z_uv, "z_texture": z_texture, "origin": out.origin.image, "random": out.random.image}
        d_loss = GAN_LOSSES[c.gan_loss][0]
        real_latent = modules["d_latent"](cached["z_texture"])
        fake_latent = modules["d_latent"](cached["z_uv"])
        real_image = modules["d_image"](to_model_range(render_to_srgb(cached["origin"])))
        fake_image = modules["d_image"](to_model_range(render_to_srgb(cached["random"])))
        latent_loss = d_loss(real_latent, fake_latent)
        image_loss = d_loss(real_image, fake_image)
        values = (latent_loss, image_loss, real_latent.mean(), fake_latent.mean(), real_image.mean(), fake_image.mean())
        return warm * (latent_loss + image_loss), {n: v.item() for n, v in zip(names, values, strict=True)}

    # ----------------------------------------------------------------- samples

    def samples(self, modules: dict[str, nn.Module], batch: Any) -> dict[str, Tensor]:
        """photo, E_uv's input, the predicted texture, I_origin and I_random (step 0's views), sRGB [0, 1] at the photo's size."""
        out = self.forward(modules, batch, 0)
        size = tuple(batch["photo_srgb"].shape[-2:])

        def resized(x: Tensor) -> Tensor:
            x = x.float()
            return x if tuple(x.shape[-2:]) == size else F.interpolate(x, size=size, mode="bilinear", align_corners=False)

        return {
            "photo": batch["photo_srgb"].float(),
            "photo_uv": resized(batch["photo_uv"]),
            "texture": resized(to_unit_range(out.texture)),
            "origin": render_to_srgb(out.origin.image),
            "random": render_to_srgb(out.random.image),
        }


# --------------------------------------------------------------------------- building and loading


def build_stage2(
    overrides: Mapping[str, Any], data: Sequence[tuple[str, Path]], preset: str, init: Path | None
) -> tuple[UVEncoderStage, Dataset]:
    """``(stage, dataset)`` for ``hifialbedo train stage2``.

    ``overrides``: nested stage-2 settings (``{"adv_weight": 0.2, "image_disc": {"n_layers": 2}}``)
    over the ``preset`` ("tiny" or "paper"). ``vq`` comes from the stage-1 checkpoint ``init``
    (required); a ``vq`` table in ``overrides`` (e.g. from a run's ``config.json``) must agree
    with it. ``data``: see :func:`stage2_dataset`.
    """
    if init is None:
        raise ValueError("stage 2 needs the stage-1 checkpoint: pass --init <stage1 run>/checkpoints/last.ckpt")
    from hifialbedo.training.stage1 import load_stage1_model

    vq = load_stage1_model(init)
    overrides = dict(overrides)
    if "vq" in overrides:
        given = coerce_config(VQConfig, merge_settings(vq.config.to_dict(), overrides.pop("vq")), where="stage2.vq.")
        if given != vq.config:
            raise ValueError(f"stage2.vq differs from the stage-1 checkpoint {init}; the architecture comes from --init")
    config = stage2_config(preset).with_vq(vq.config).updated(overrides)
    return UVEncoderStage(config, vq), stage2_dataset(data, config.vq.image_size)


def load_stage2_model(ckpt_path: str | Path, *, map_location: str | torch.device = "cpu") -> tuple[VQAutoencoder, nn.Module]:
    """``(vq, encoder_uv)`` of a stage-2 checkpoint: the frozen stage-1 autoencoder and the trained
    E_uv (an :class:`~hifialbedo.models.vqgan.Encoder`), rebuilt from the stored config, in eval
    mode without gradients on ``map_location``. Texture of a photo UV map:
    ``predict_texture(encoder_uv, vq, photo_uv * 2 - 1)``. FileNotFoundError / ValueError
    naming the file when it is missing, unreadable or not a stage-2 checkpoint.
    """
    config, state = read_stage_checkpoint(ckpt_path, "stage2", Stage2Config.from_dict, modules=("vq", "encoder_uv"))
    vq, encoder_uv = VQAutoencoder(config.vq), Encoder(config.vq)
    load_module_weights(ckpt_path, state, {"vq": vq, "encoder_uv": encoder_uv})
    return vq.to(map_location).eval().requires_grad_(False), encoder_uv.to(map_location).eval().requires_grad_(False)


__all__ = [
    "Stage2Forward",
    "UVEncoderStage",
    "build_stage2",
    "load_stage2_model",
    "random_view_angles",
]
