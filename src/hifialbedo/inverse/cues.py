"""What a photo shows besides the face that bears on the face's brightness and colour.

A camera meters and white-balances the whole frame, so the face's brightness and colour in a
photo mean something only against the rest of it. Three references are measured here, all
in the photo's linear RGB:

- the **scene** (:func:`scene_cue`): the frame outside the face mesh and outside every
  skin-coloured pixel (neck, ears, hands follow the face's tone, so they would make the face
  its own reference): its mean colour (the grey world, a witness of the light's colour) and
  mean luminance (how bright the face is against what the meter saw);
- the **eye whites** (``inverse.eyes.sclera_cue``): near-neutral and much alike from person to
  person, in the same light as the face;
- the **frame** itself: its mean luminance (what an averaging meter puts at middle grey).

``inverse.priors`` turns these into estimates of the mean skin albedo and combines them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from hifialbedo.inverse.eyes import ScleraCue, sclera_cue
from hifialbedo.ops.colour import LUMA_WEIGHTS, linear_to_lab

SCENE_SIZE = 128
"""The scene is measured on the photo resized so its longer side has this many pixels."""
SKIN_LIKE_SIGMAS = 3.0
"""A pixel whose L*a*b* colour lies within this many (Mahalanobis) deviations of the face's
skin counts as skin and is left out of the scene."""
MIN_SCENE_FRACTION = 0.05
"""Below this share of the frame (a close-up filling it) the scene gives no cue."""


@dataclass(frozen=True)
class SceneCue:
    """The frame outside the face and its skin, linear RGB."""

    colour: np.ndarray  # (3,) mean linear RGB of the scene pixels
    fraction: float  # share of the frame they cover
    frame_luminance: float  # mean linear luminance of the whole frame

    @property
    def luminance(self) -> float:
        return float(self.colour @ LUMA_WEIGHTS)


@dataclass(frozen=True)
class PhotoCues:
    """A photo's references for the face's brightness and colour (either may be missing)."""

    scene: SceneCue | None
    sclera: ScleraCue | None


def skin_like(image: np.ndarray, skin: np.ndarray, sigmas: float = SKIN_LIKE_SIGMAS) -> np.ndarray:
    """``(H, W)`` bool: pixels of a linear-RGB ``image (H, W, 3)`` whose L*a*b* colour is
    within ``sigmas`` Mahalanobis deviations of the pixels in ``skin (H, W)`` bool.

    >>> img = np.zeros((2, 3, 3), np.float32); img[:, :2] = [0.4, 0.25, 0.18]; img[:, 2] = [0.1, 0.3, 0.5]
    >>> img[1, 0] *= 1.1  # the face's skin varies a little
    >>> skin_like(img, np.array([[True, False, False], [True, False, False]])).tolist()
    [[True, True, False], [True, True, False]]
    """
    lab = linear_to_lab(np.maximum(image, 1e-5).astype(np.float64))
    face = lab[skin]
    if len(face) < 2:
        return skin.copy()
    # The spread of the face's own skin, widened a little (lightness varies more with shading).
    cov = np.atleast_2d(np.cov(face.T)) + np.diag([4.0, 1.0, 1.0])
    d = lab - face.mean(axis=0)
    maha = np.sqrt(np.einsum("...i,ij,...j->...", d, np.linalg.inv(cov), d))
    return maha < sigmas


def scene_cue(image: np.ndarray, face_mask: np.ndarray, skin_mask: np.ndarray) -> SceneCue | None:
    """The scene of a linear-RGB photo ``(H, W, 3)``: the frame less the face mesh
    (``face_mask (H, W)`` bool) and less the pixels coloured like its skin (``skin_mask``:
    the face's skin pixels); None when that leaves under 5 % of the frame."""
    h, w = face_mask.shape
    scale = SCENE_SIZE / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(image.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    face = cv2.resize(face_mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
    skin = cv2.resize(skin_mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool) & face
    scene = ~face & ~skin_like(small, skin if skin.any() else face)
    frame = float((small @ LUMA_WEIGHTS).mean())
    if scene.mean() < MIN_SCENE_FRACTION:
        return None
    return SceneCue(small[scene].mean(axis=0).astype(np.float64), float(scene.mean()), frame)


def photo_cues(image: np.ndarray, landmarks: np.ndarray, face_mask: np.ndarray, skin_mask: np.ndarray) -> PhotoCues:
    """The scene and eye-white references of a linear-RGB photo ``(H, W, 3)`` with its
    ``(478, 2|3)`` pixel landmarks, face-mesh mask and face-skin mask (``(H, W)`` bool)."""
    return PhotoCues(scene_cue(image, face_mask, skin_mask), sclera_cue(image, landmarks))
