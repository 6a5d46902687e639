"""Face identity descriptors for the same-person check of multi-photo reconstruction.

``IdentityModel`` is the interface; ``DlibIdentity`` is dlib's 128-D ResNet descriptor
(dlib-bin + face-recognition-models, CC0 model files read from the installed package,
never downloaded). Descriptors of one person lie within ``SAME_PERSON_DISTANCE`` (0.6,
dlib's threshold) of each other.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from typing import Protocol

import numpy as np

SAME_PERSON_DISTANCE = 0.6


class IdentityModel(Protocol):
    def descriptor(self, image_rgb8: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """``(D,)`` descriptor of the face with ``(478, 3)`` pixel landmarks in an ``(H, W, 3)`` uint8 image."""
        ...


def _model_dir() -> Path:
    # Located without importing the package: its __init__ needs pkg_resources.
    spec = find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise ImportError("face-recognition-models is not installed")
    return Path(spec.origin).parent / "models"


class DlibIdentity:
    """dlib's face recognition ResNet: 150x150 aligned chip -> 128-D descriptor."""

    def __init__(self) -> None:
        import dlib

        d = _model_dir()
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


def load_identity_model() -> IdentityModel | None:
    """dlib's model, or None when dlib or its model files are not installed."""
    try:
        return DlibIdentity()
    except (ImportError, RuntimeError):
        return None


def odd_ones_out(descriptors: list[np.ndarray], threshold: float = SAME_PERSON_DISTANCE) -> list[int]:
    """Indices of faces that belong to someone else than the group.

    The reference person is the one most photos agree with: the photo with the most
    others within ``threshold`` (ties: the earliest). Faces farther than ``threshold``
    from it and from the median of its group are reported.
    """
    n = len(descriptors)
    if n < 2:
        return []
    d = np.array([[np.linalg.norm(a - b) for b in descriptors] for a in descriptors])
    agree = (d < threshold).sum(axis=1)
    ref = int(np.argmax(agree))
    group = np.flatnonzero(d[ref] < threshold)
    centre = np.median(np.array(descriptors)[group], axis=0)
    return [i for i in range(n) if d[ref, i] >= threshold and np.linalg.norm(descriptors[i] - centre) >= threshold]
