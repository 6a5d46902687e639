"""Face detection and 478 landmarks with MediaPipe FaceMesh (models ship in the wheel).

Landmarks are ``(478, 3)`` float64 in pixels of the image they were found in: x to the
right, y down, both in continuous coordinates (the image spans [0, W] x [0, H], pixel
(row i, col j) has its centre at (j + 0.5, i + 0.5)); z is MediaPipe's relative depth,
scaled like x (pixels), smaller = nearer the camera, zero near the face's centre.
"""

from __future__ import annotations

import contextlib
import os
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

N_LANDMARKS = 478
N_MESH = 468
MIN_FACE_SIZE_PX = 64


class NoFaceError(ValueError):
    """No face, or no usable face, in an image."""


@dataclass(frozen=True)
class Detection:
    landmarks: np.ndarray  # (478, 3) pixels
    n_faces: int  # faces found in the image
    face_index: int  # which one was chosen (0 = largest)

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the 468 mesh landmarks, pixels."""
        p = self.landmarks[:N_MESH, :2]
        return float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())


def face_size(landmarks: np.ndarray) -> float:
    """Size of a face in pixels: the larger side of its landmarks' bounding box."""
    p = landmarks[:N_MESH, :2]
    return float(max(np.ptp(p[:, 0]), np.ptp(p[:, 1])))


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence what native code writes to file descriptor 2 in the block (MediaPipe's C++ log
    lines before absl is initialised, libpng's and OpenCV's own error lines)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _NotLoaded(types.ModuleType):
    """Stands in for a module while ``import_mediapipe`` runs; any use of it says so."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(f"{self.__name__} was not loaded for mediapipe's drawing helpers (hifialbedo never draws with them)")


def import_mediapipe() -> types.ModuleType:
    """``import mediapipe``, without the matplotlib its package imports.

    mediapipe's ``__init__`` imports its drawing helpers (``solutions.drawing_utils``), which
    import ``matplotlib.pyplot`` at module level, a third of a one-photo command's start-up
    (0.3-0.5 s), only to plot landmarks, which we never do. While mediapipe is imported, a
    matplotlib not yet imported is a placeholder (``_NotLoaded``), taken out of
    ``sys.modules`` afterwards: a later ``import matplotlib`` loads the real one.
    """
    if "mediapipe" in sys.modules:
        return sys.modules["mediapipe"]
    placeholders = {name: _NotLoaded(name) for name in ("matplotlib", "matplotlib.pyplot") if name not in sys.modules}
    sys.modules.update(placeholders)
    try:
        import mediapipe
    finally:
        for name, module in placeholders.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
    return mediapipe


class LandmarkDetector:
    """MediaPipe FaceMesh in static-image mode, loaded once and reused.

    ``mediapipe`` is imported on construction, not at module import (``import_mediapipe``).
    """

    def __init__(self, max_faces: int = 5) -> None:
        mp = import_mediapipe()

        with quiet_native_stderr():
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, refine_landmarks=True, max_num_faces=max_faces, min_detection_confidence=0.5
            )

    def detect_all(self, image_rgb8: np.ndarray) -> list[np.ndarray]:
        """All faces in an ``(H, W, 3)`` uint8 sRGB image, largest first, each ``(478, 3)``."""
        h, w = image_rgb8.shape[:2]
        with quiet_native_stderr():
            result = self._mesh.process(np.ascontiguousarray(image_rgb8))
        faces = []
        for lm in result.multi_face_landmarks or []:
            pts = np.array([(p.x, p.y, p.z) for p in lm.landmark], dtype=np.float64)
            pts *= np.array([w, h, w], dtype=np.float64)
            faces.append(pts)
        faces.sort(key=face_size, reverse=True)
        return faces

    def detect(self, image_rgb8: np.ndarray, face_index: int | None = None) -> Detection:
        """The chosen face: ``face_index`` (0 = largest), or the largest when None.

        Raises NoFaceError when there is no face, the index is out of range or the face is
        smaller than ``MIN_FACE_SIZE_PX``.
        """
        faces = self.detect_all(image_rgb8)
        if not faces:
            raise NoFaceError("no face found")
        index = 0 if face_index is None else face_index
        if not 0 <= index < len(faces):
            raise NoFaceError(f"--face-index {index} out of range: {len(faces)} face(s) found")
        chosen = faces[index]
        size = face_size(chosen)
        if size < MIN_FACE_SIZE_PX:
            raise NoFaceError(f"face too small ({size:.0f} px across; at least {MIN_FACE_SIZE_PX} px needed)")
        return Detection(landmarks=chosen, n_faces=len(faces), face_index=index)

    def close(self) -> None:
        self._mesh.close()


def landmarks_from_array(array: np.ndarray) -> np.ndarray:
    """Validate user-given landmarks ``(478, 2|3)`` in pixels -> ``(478, 3)``.

    Without z, a flat depth (z = 0) is used: normals then all face the camera, so the
    lighting estimate degrades; give z where you have it.
    """
    a = np.asarray(array, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != N_LANDMARKS or a.shape[1] not in (2, 3):
        raise ValueError(f"landmarks must be 478x2 or 478x3 pixel coordinates, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("landmarks contain NaN or infinite values")
    if a.shape[1] == 2:
        a = np.concatenate([a, np.zeros((len(a), 1))], axis=1)
    return a


MIN_GIVEN_FACE_SPAN_PX = 16.0
"""Given landmarks must spread at least this far in both x and y (pixels of the photo)."""


def check_landmarks_on_image(landmarks: np.ndarray, image_size: tuple[int, int]) -> None:
    """ValueError unless ``(478, 3)`` pixel landmarks can be a face in an image of ``(height,
    width)``: finite, spread over at least :data:`MIN_GIVEN_FACE_SPAN_PX` in x and in y (not all
    equal, not on a line), and on the image (at least half of the 468 mesh points inside it, a
    face cut by the border is fine).

    >>> check_landmarks_on_image(np.zeros((478, 3)), (100, 100))
    Traceback (most recent call last):
    ...
    ValueError: landmarks do not spread out: they span 0x0 px (at least 16 px in x and y needed)
    """
    a = np.asarray(landmarks, dtype=np.float64)
    if not np.isfinite(a).all():
        raise ValueError("landmarks contain NaN or infinite values")
    p = a[:N_MESH, :2]
    span = np.ptp(p, axis=0)
    if (span < MIN_GIVEN_FACE_SPAN_PX).any():
        raise ValueError(
            f"landmarks do not spread out: they span {span[0]:.0f}x{span[1]:.0f} px (at least {MIN_GIVEN_FACE_SPAN_PX:.0f} px in x and y needed)"
        )
    h, w = image_size
    inside = (p[:, 0] >= 0) & (p[:, 0] <= w) & (p[:, 1] >= 0) & (p[:, 1] <= h)
    if inside.mean() < 0.5:
        x0, y0 = p.min(axis=0)
        x1, y1 = p.max(axis=0)
        raise ValueError(
            f"landmarks lie off the {w}x{h} px image ({inside.mean():.0%} inside; they span x {x0:.0f}..{x1:.0f}, y {y0:.0f}..{y1:.0f})"
        )
