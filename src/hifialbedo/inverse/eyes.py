"""The whites of the eyes as a reference for the light's colour.

The sclera is close to neutral in everyone (a faint warm tint), so its colour in a photo
is the colour of the light that falls on the face, whatever the skin. MediaPipe's
landmarks outline each eye opening (the mesh's eye contours) and its iris (landmarks
468-477: a centre and four rim points per eye); the sclera is the opening less the iris,
less the darker half (lashes, lid shadow, the iris's dark rim).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from hifialbedo.mesh.topology import load_face_topology
from hifialbedo.ops.colour import LUMA_WEIGHTS, log_chromaticity

IRIS = ((468, (469, 470, 471, 472)), (473, (474, 475, 476, 477)))
SCLERA_LOG_CHROMA = np.array([0.03, -0.06])
"""(log R/G, log B/G) of a typical sclera under white light: faintly warm (an assumption,
within the spread of reported sclera colours; not fitted here)."""


@dataclass(frozen=True)
class ScleraCue:
    log_chroma: np.ndarray  # (2,) observed (log R/G, log B/G) of the eye whites
    colour: np.ndarray  # (3,) median linear RGB of the eye-white pixels
    pixels: int  # how many pixels it rests on
    spread: float  # robust spread of their log chromaticity (lower = more trustworthy)
    brightness: float = 0.0  # 90th percentile of the clean eye-white pixels' linear luminance
    """The lit part of the eye white (lids and lashes shade the rest): a reference of known
    reflectance for the face's brightness, whatever the exposure."""


def sclera_mask(landmarks: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pixels ``(H, W)`` bool inside the eye openings and outside the irises.

    ``landmarks (478, 2|3)`` in pixels (x right, y down), with MediaPipe's iris points.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape[0] < 478:
        return np.zeros((height, width), bool)
    topo = load_face_topology()
    mask = np.zeros((height, width), np.uint8)
    iris = np.zeros((height, width), np.uint8)
    for name, (centre, rim) in zip(("left_eye", "right_eye"), IRIS):
        pts = lm[topo.contours[name], :2].astype(np.float32)
        hull = cv2.convexHull(pts)
        eye = np.zeros_like(mask)
        cv2.fillConvexPoly(eye, np.round(hull).astype(np.int32), 1)
        width_px = float(np.ptp(pts[:, 0]))
        r = max(1, round(0.06 * width_px))
        eye = cv2.erode(eye, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
        mask |= eye
        c = lm[centre, :2]
        radius = float(np.linalg.norm(lm[list(rim), :2] - c, axis=1).mean())
        cv2.circle(iris, (round(c[0]), round(c[1])), round(1.2 * radius + 1), 1, -1)
    return (mask & (1 - iris)).astype(bool)


def sclera_cue(image_linear: np.ndarray, landmarks: np.ndarray, *, min_pixels: int = 12) -> ScleraCue | None:
    """The eye whites' colour in a linear-RGB photo ``(H, W, 3)``, or None when too few
    clean pixels show (closed eyes, a tiny face, glare)."""
    h, w = image_linear.shape[:2]
    mask = sclera_mask(landmarks, h, w)
    px = image_linear[mask].astype(np.float64)
    if len(px) < 2 * min_pixels:
        return None
    lum = px @ LUMA_WEIGHTS
    clean = (px.max(axis=1) < 0.98) & (lum > 1e-3)
    brightness = float(np.percentile(lum[clean], 90)) if clean.sum() >= min_pixels else 0.0
    px = px[(lum >= np.median(lum)) & clean]  # the bright half, unclipped
    if len(px) < min_pixels:
        return None
    colour = np.median(px, axis=0)
    lc = log_chromaticity(px)
    spread = float(np.median(np.linalg.norm(lc - np.median(lc, axis=0), axis=1)))
    return ScleraCue(log_chromaticity(colour), colour, len(px), spread, brightness)
