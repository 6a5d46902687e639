"""dlib's face-recognition ResNet (``dnn_face_recognition_ex``) as a PyTorch module.

The network, input side first: 7x7/2 conv (no padding), affine, relu, 3x3/2 max pool;
then residual blocks (two 3x3 convs, each followed by a per-channel affine that stands in
for batch norm) at 32, 64, 128 and 256 channels; global average pool; a 256 -> 128 linear
map without bias. The result is dlib's 128-D face descriptor: faces of one person lie
within 0.6 of each other (Euclidean).

Two dlib details matter for an exact port:

- convolutions and pools with stride 2 have no padding (dlib's default), so spatial sizes
  go 150 -> 72 -> 35 -> 17 -> 8 -> 4 -> 2;
- a downsampling block adds its 2x2 average-pooled input to the block's output although
  their shapes can differ (8 -> a 4x4 pool with C channels, a 3x3 block output with 2C):
  dlib's ``add_prev`` zero-pads both to the larger size, top-left aligned.

Weights come from the CC0 file ``dlib_face_recognition_resnet_model_v1.dat`` of the
installed ``face-recognition-models`` package, read by ``models.dlib_format``; nothing is
downloaded and dlib itself is not needed.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from hifialbedo.models.dlib_format import DlibFormatError, DlibLayer, DlibNet, read_dlib_net

MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"
CHIP_SIZE = 150


def face_recognition_models_dir() -> Path:
    """The model folder of the installed ``face-recognition-models`` package (located
    without importing it: its ``__init__`` needs ``pkg_resources``)."""
    spec = find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise ImportError("face-recognition-models is not installed (pip install face-recognition-models==0.3.0)")
    return Path(spec.origin).parent / "models"


def add_zero_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a + b`` for ``(B, C, H, W)`` tensors of different C, H or W: both are zero-padded
    to the larger size at the end of each axis (dlib's ``tt::add``)."""
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(x, y) for x, y in zip(a.shape[1:], b.shape[1:]))

    def pad(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return pad(a) + pad(b)


class Affine(nn.Module):
    """Per-channel ``gamma * x + beta`` (dlib's affine layer, batch norm folded at training's end)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma[:, None, None] + self.beta[:, None, None]


class ResidualBlock(nn.Module):
    """``relu(conv-affine-relu-conv-affine(x) + shortcut(x))``; when ``downsample``, the
    first conv has stride 2 and the shortcut is a 2x2/2 average pool (no 1x1 conv)."""

    def __init__(self, in_channels: int, channels: int, downsample: bool) -> None:
        super().__init__()
        stride = 2 if downsample else 1
        self.downsample = downsample
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=0 if downsample else 1)
        self.affine1 = Affine(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.affine2 = Affine(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        shortcut = F.avg_pool2d(x, 2, 2) if self.downsample else x
        return F.relu(add_zero_padded(shortcut, y))


class DlibFaceResNet(nn.Module):
    """150x150 aligned face chip -> 128-D descriptor.

    Input: ``(B, 3, 150, 150)`` RGB in 0..255 pixel units (sRGB-encoded, as dlib reads
    8-bit images; floats allowed so gradients can flow). Output: ``(B, 128)``.
    """

    def __init__(self, block_channels: list[tuple[int, bool]], input_mean: tuple[float, float, float]) -> None:
        super().__init__()
        self.register_buffer("input_mean", torch.tensor(input_mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.conv = nn.Conv2d(3, 32, 7, stride=2, padding=0)
        self.affine = Affine(32)
        blocks, c_in = [], 32
        for c, down in block_channels:
            blocks.append(ResidualBlock(c_in, c, down))
            c_in = c
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(c_in, 128, bias=False)

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        if chips.ndim != 4 or chips.shape[1] != 3:
            raise ValueError(f"chips must be (B, 3, H, W), got {tuple(chips.shape)}")
        x = (chips - self.input_mean) / 256.0
        x = F.max_pool2d(F.relu(self.affine(self.conv(x))), 3, 2)
        for block in self.blocks:
            x = block(x)
        return self.fc(x.mean(dim=(2, 3)))


def _expect(layer: DlibLayer, kind: str, where: str, **ints: int) -> DlibLayer:
    if layer.kind != kind:
        raise DlibFormatError(f"{where}: expected a {kind} layer, found {layer.kind}")
    for k, v in ints.items():
        if layer.ints.get(k) != v:
            raise DlibFormatError(f"{where}: {kind} {k} is {layer.ints.get(k)}, expected {v}")
    return layer


def _copy_conv(conv: nn.Conv2d, layer: DlibLayer) -> None:
    w = torch.from_numpy(layer.arrays["filters"])
    if tuple(w.shape) != tuple(conv.weight.shape):
        raise DlibFormatError(f"conv filters {tuple(w.shape)} do not fit {tuple(conv.weight.shape)}")
    conv.weight.data.copy_(w)
    conv.bias.data.copy_(torch.from_numpy(layer.arrays["biases"]))


def _copy_affine(affine: Affine, layer: DlibLayer) -> None:
    affine.gamma.data.copy_(torch.from_numpy(layer.arrays["gamma"]))
    affine.beta.data.copy_(torch.from_numpy(layer.arrays["beta"]))


def resnet_from_dlib(net: DlibNet) -> DlibFaceResNet:
    """Build the torch module from a parsed file, checking every layer against the
    architecture of dlib's face-recognition example (the wiring of tags and skips is not
    stored in the file)."""
    if net.input_size != (CHIP_SIZE, CHIP_SIZE):
        raise DlibFormatError(f"input size {net.input_size}, expected {CHIP_SIZE}x{CHIP_SIZE}")
    layers = list(net.layers)
    pos = 0

    def take(kind: str, where: str, **ints: int) -> DlibLayer:
        nonlocal pos
        if pos >= len(layers):
            raise DlibFormatError(f"{where}: the network ends early")
        layer = _expect(layers[pos], kind, where, **ints)
        pos += 1
        return layer

    stem_conv = take("con", "stem", num_filters=32, rows=7, cols=7, stride_y=2, stride_x=2, padding_y=0, padding_x=0)
    stem_affine = take("affine", "stem")
    take("relu", "stem")
    take("max_pool", "stem", rows=3, cols=3, stride_y=2, stride_x=2, padding_y=0, padding_x=0)

    # Residual blocks: tag1, conv, affine, relu, conv, affine, then either add_prev (plain)
    # or tag2, skip1, 2x2 avg_pool, add_prev (downsampling); then relu.
    block_layers: list[tuple[int, bool, DlibLayer, DlibLayer, DlibLayer, DlibLayer]] = []
    while pos < len(layers) and layers[pos].kind == "tag_or_skip":
        where = f"residual block {len(block_layers) + 1}"
        take("tag_or_skip", where)
        conv1 = take("con", where, rows=3, cols=3)
        down = conv1.ints["stride_y"] == 2
        aff1 = take("affine", where)
        take("relu", where)
        conv2 = take("con", where, rows=3, cols=3, stride_y=1, stride_x=1, padding_y=1, padding_x=1)
        aff2 = take("affine", where)
        if down:
            take("tag_or_skip", where)
            take("tag_or_skip", where)
            take("avg_pool", where, rows=2, cols=2, stride_y=2, stride_x=2, padding_y=0, padding_x=0)
        take("add_prev", where)
        take("relu", where)
        block_layers.append((conv1.ints["num_filters"], down, conv1, aff1, conv2, aff2))
    take("avg_pool", "head", rows=0, cols=0)  # avg_pool_everything
    fc = take("fc", "head", outputs=128)
    if pos != len(layers):
        raise DlibFormatError(f"{len(layers) - pos} unexpected layers after the head")

    model = DlibFaceResNet([(c, d) for c, d, *_ in block_layers], net.input_mean)
    _copy_conv(model.conv, stem_conv)
    _copy_affine(model.affine, stem_affine)
    for block, (_, _, conv1, aff1, conv2, aff2) in zip(model.blocks, block_layers):
        _copy_conv(block.conv1, conv1)
        _copy_affine(block.affine1, aff1)
        _copy_conv(block.conv2, conv2)
        _copy_affine(block.affine2, aff2)
    w = torch.from_numpy(fc.arrays["weights"])  # (inputs, outputs): dlib computes x @ W
    if tuple(w.shape) != (model.fc.in_features, 128):
        raise DlibFormatError(f"fc weights {tuple(w.shape)} do not fit the last block")
    model.fc.weight.data.copy_(w.T)
    return model.eval()


def load_dlib_resnet(path: str | Path | None = None) -> DlibFaceResNet:
    """dlib's face-recognition ResNet with its weights, from ``path`` or the installed
    ``face-recognition-models`` package. Parameters are frozen (``requires_grad`` False);
    gradients still flow to the input."""
    path = Path(path) if path is not None else face_recognition_models_dir() / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: dlib face recognition model not found")
    model = resnet_from_dlib(read_dlib_net(path))
    for p in model.parameters():
        p.requires_grad_(False)
    return model
