"""A reader of dlib's serialised DNN files (``dlib::serialize(net, out)``), enough for
``dlib_face_recognition_resnet_model_v1.dat``.

dlib writes a network from the outside in: the loss layer, then a version number for every
layer wrapper down to the input (2 for a computational ``add_layer``, 1 for a tag or skip,
3 for the ``add_layer`` that sits on the input layer), then the input layer, then each
computational layer's details from the input outwards, each followed by the wrapper's
bookkeeping (three booleans and cached tensors, all empty in a saved net).

The primitives:

- integer: one header byte (low nibble = number of bytes, bit 7 = negative), then the
  magnitude little-endian;
- string: its length as an integer, then the bytes;
- float: ``mantissa * 2**exponent``, two integers;
- tensor: version (2), ``num_samples, k, nr, nc`` as integers, then raw little-endian float32;
- bool: the character ``'1'`` or ``'0'``.

Tags and skips carry no data, so which tag a layer adds back is not in the file: the
network builder (``models.dlib_resnet``) supplies the ResNet's wiring and checks every
layer read here against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class DlibFormatError(ValueError):
    """The file is not a dlib DNN of the kind this reader knows."""


@dataclass(frozen=True)
class DlibLayer:
    """One layer read from the file, input side first.

    ``kind``: "tag_or_skip", "con", "affine", "relu", "max_pool", "avg_pool", "add_prev" or
    "fc". ``ints``: the layer's integer settings by name; ``arrays``: its weights
    (float32, dlib's layout: con ``filters (N, K, R, C)`` and ``biases (N,)``; affine
    ``gamma, beta (K,)``; fc ``weights (inputs, outputs)``).
    """

    kind: str
    ints: dict[str, int] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class DlibNet:
    """A whole network file: ``input_mean`` (R, G, B) in 0..255 pixel units, the input
    side length, the loss layer's name and the layers input side first."""

    loss: str
    input_layer: str
    input_mean: tuple[float, float, float]
    input_size: tuple[int, int]
    layers: list[DlibLayer]


class _Reader:
    def __init__(self, data: bytes, path: Path) -> None:
        self.data = data
        self.pos = 0
        self.path = path

    def fail(self, what: str) -> DlibFormatError:
        return DlibFormatError(f"{self.path}: {what} at byte {self.pos}")

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise self.fail("unexpected end of file")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def integer(self) -> int:
        header = self.take(1)[0]
        size = header & 0x0F
        if size > 8 or header & 0x70:
            raise self.fail(f"bad integer header 0x{header:02x}")
        value = int.from_bytes(self.take(size), "little")
        return -value if header & 0x80 else value

    def string(self) -> str:
        n = self.integer()
        if not 0 <= n < 256:
            raise self.fail(f"implausible string length {n}")
        return self.take(n).decode("latin-1")

    def real(self) -> float:
        mantissa = self.integer()
        exponent = self.integer()
        return float(mantissa * 2.0**exponent)

    def boolean(self) -> bool:
        c = self.take(1)
        if c not in (b"0", b"1"):
            raise self.fail(f"bad boolean {c!r}")
        return c == b"1"

    def tensor(self) -> np.ndarray:
        version = self.integer()
        if version != 2:
            raise self.fail(f"unknown tensor version {version}")
        shape = tuple(self.integer() for _ in range(4))
        count = int(np.prod(shape))
        values = np.frombuffer(self.take(4 * count), dtype="<f4").astype(np.float32)
        return values.reshape(shape)

    def alias(self) -> tuple[int, int, int, int]:
        version = self.integer()
        if version != 1:
            raise self.fail(f"unknown alias_tensor version {version}")
        return tuple(self.integer() for _ in range(4))  # type: ignore[return-value]


def _split_params(params: np.ndarray, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    flat = params.reshape(-1)
    sizes = [int(np.prod(s)) for s in shapes]
    if sum(sizes) != flat.size:
        raise DlibFormatError(f"parameter tensor has {flat.size} values, its parts need {sum(sizes)}")
    out, start = [], 0
    for s, n in zip(shapes, sizes):
        out.append(flat[start : start + n].reshape(s).copy())
        start += n
    return out


def _read_layer(r: _Reader) -> DlibLayer:
    name = r.string()
    if name == "con_4":
        params = r.tensor()
        keys = ("num_filters", "rows", "cols", "stride_y", "stride_x", "padding_y", "padding_x")
        ints = {k: r.integer() for k in keys}
        filters_shape = r.alias()
        bias_shape = r.alias()
        for _ in range(4):  # learning-rate and weight-decay multipliers: training only
            r.real()
        filters, biases = _split_params(params, [filters_shape, (int(np.prod(bias_shape)),)])
        return DlibLayer("con", ints, {"filters": filters, "biases": biases})
    if name == "affine_":
        params = r.tensor()
        gamma_shape = r.alias()
        beta_shape = r.alias()
        mode = r.integer()
        if mode != 0:
            raise r.fail("only per-channel (CONV_MODE) affine layers are supported")
        gamma, beta = _split_params(params, [(int(np.prod(gamma_shape)),), (int(np.prod(beta_shape)),)])
        return DlibLayer("affine", {}, {"gamma": gamma, "beta": beta})
    if name == "relu_":
        return DlibLayer("relu")
    if name in ("max_pool_2", "avg_pool_2"):
        keys = ("rows", "cols", "stride_y", "stride_x", "padding_y", "padding_x")
        return DlibLayer(name[:-2], {k: r.integer() for k in keys})
    if name == "add_prev_":
        return DlibLayer("add_prev")
    if name == "fc_2":
        outputs, inputs = r.integer(), r.integer()
        params = r.tensor()
        weights_shape = r.alias()
        bias_shape = r.alias()
        bias_mode = r.integer()
        for _ in range(4):
            r.real()
        has_bias = int(np.prod(bias_shape)) > 0
        shapes = [(inputs, outputs)] + ([(outputs,)] if has_bias else [])
        if int(np.prod(weights_shape)) != inputs * outputs:
            raise r.fail("fc weight shape does not match its sizes")
        parts = _split_params(params, shapes)
        arrays = {"weights": parts[0]} | ({"biases": parts[1]} if has_bias else {})
        return DlibLayer("fc", {"outputs": outputs, "inputs": inputs, "bias_mode": bias_mode}, arrays)
    raise r.fail(f"unsupported layer {name!r}")


def read_dlib_net(path: str | Path) -> DlibNet:
    """Parse a dlib DNN file (metric-loss networks built from con, affine, relu, pooling,
    add_prev, tag/skip and fc layers). Raises ``DlibFormatError`` naming the file on
    anything else, and ``FileNotFoundError`` when it is missing."""
    path = Path(path)
    r = _Reader(path.read_bytes(), path)
    if r.integer() != 1:
        raise r.fail("not a dlib loss layer (version)")
    loss = r.string()
    if not loss.startswith("loss_metric"):
        raise r.fail(f"unsupported loss layer {loss!r}")
    r.real()  # margin
    r.real()  # distance threshold
    versions: list[int] = []
    while True:
        v = r.integer()
        if v not in (1, 2, 3):
            raise r.fail(f"bad layer version {v}")
        versions.append(v)
        if v == 3:  # the add_layer on the input layer: innermost
            break
    input_layer = r.string()
    if not input_layer.startswith("input_rgb_image"):
        raise r.fail(f"unsupported input layer {input_layer!r}")
    mean = (r.real(), r.real(), r.real())
    size = (r.integer(), r.integer())
    layers: list[DlibLayer] = []
    for v in reversed(versions):
        if v == 1:
            layers.append(DlibLayer("tag_or_skip"))
            continue
        layers.append(_read_layer(r))
        for _ in range(3):  # this_layer_setup_called, gradient_input_is_stale, output disabled
            r.boolean()
        for _ in range(3):  # x_grad, cached_output, params_grad (or grad_final): empty
            r.tensor()
        if v == 3:
            r.integer()  # sample expansion factor
    if r.pos != len(r.data):
        raise r.fail(f"{len(r.data) - r.pos} trailing bytes")
    return DlibNet(loss, input_layer, mean, size, layers)
