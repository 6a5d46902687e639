"""The fixed 468-vertex face mesh: UV layout, triangles, mirror map and UV regions.

UV convention: u to the right, v *down*, both in [0, 1]; texel (row i, column j) of an
``S x S`` map has its centre at (u, v) = ((j + 0.5) / S, (i + 0.5) / S). The OBJ writer
flips v (OBJ's v points up).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import cv2
import numpy as np

N_VERTICES = 468
# Landmarks used to build the head frame (indices into the 468-vertex mesh).
FOREHEAD_TOP, CHIN = 10, 152


@dataclass(frozen=True)
class FaceTopology:
    """The mesh's fixed data (see ``mesh/data/README.md`` for sources and licence)."""

    uv: np.ndarray  # (468, 2) float64, v down
    faces: np.ndarray  # (852, 3) int64, counter-clockwise as seen from the camera
    mirror: np.ndarray  # (468,) int64, mirror vertex
    contours: dict[str, np.ndarray]  # name -> vertex indices


@lru_cache(maxsize=1)
def load_face_topology() -> FaceTopology:
    """Load the committed face-mesh data (no download; a few KB from the package).

    >>> topo = load_face_topology()
    >>> topo.uv.shape, topo.faces.shape[1], int(topo.faces.max()) + 1 == N_VERTICES
    ((468, 2), 3, True)
    """
    with resources.files("hifialbedo.mesh.data").joinpath("face_mesh.npz").open("rb") as f:
        data = np.load(f)
        contours = {k[len("contour_") :]: data[k] for k in data.files if k.startswith("contour_")}
        return FaceTopology(uv=data["uv"], faces=data["faces"], mirror=data["mirror"], contours=contours)


def uv_mirror_texels(size: int) -> tuple[np.ndarray, np.ndarray]:
    """The UV symmetry map: for each texel (i, j) of an ``S x S`` map, its mirror texel.

    The layout is mirror-symmetric about u = 0.5 (every vertex's mirror vertex sits at
    (1 - u, v) within 0.0012 in UV units, about one texel at S = 1024), so the mirror of
    texel (i, j) is (i, S - 1 - j). Returns ``(rows, cols)``, each ``(S, S)`` int64.
    """
    rows, cols = np.indices((size, size))
    return rows, size - 1 - cols


REGION_NAMES = ("face", "skin", "forehead", "cheeks", "lips", "brows", "eyes", "nose")


@lru_cache(maxsize=8)
def uv_regions(size: int) -> dict[str, np.ndarray]:
    """Named boolean UV masks ``(size, size)``.

    - ``face``: every texel covered by a triangle.
    - ``eyes``, ``brows``, ``lips``, ``nose``: convex hulls of MediaPipe's contours, widened
      by a margin that scales with the map.
    - ``skin``: face less eyes, brows, lips and the outer border band (where hair and
      background bleed into the unwrap); the texels trusted for lighting.
    - ``forehead``, ``cheeks``: the skin of the FAIR protocol's ITA mask: above the brows,
      and below the eyes beside the nose down to the mouth corners.
    """
    topo = load_face_topology()
    px = topo.uv * size
    face = np.zeros((size, size), np.uint8)
    tris = np.round(px[topo.faces] * 16 - 8).astype(np.int32)  # 4 fractional bits, centre-aligned
    cv2.fillPoly(face, list(tris), 1, lineType=cv2.LINE_8, shift=4)
    face = face.astype(bool)

    def hull(*names: str, margin: float) -> np.ndarray:
        mask = np.zeros((size, size), np.uint8)
        for name in names:
            pts = px[topo.contours[name]].astype(np.float32)
            cv2.fillConvexPoly(mask, np.round(cv2.convexHull(pts) - 0.5).astype(np.int32), 1)
        r = max(1, round(margin * size))
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
        return mask.astype(bool) & face

    eyes = hull("left_eye", "right_eye", margin=0.015)
    brows = hull("left_eyebrow", "right_eyebrow", margin=0.01)
    lips = hull("lips", margin=0.01)
    nose = hull("nose", margin=0.0)
    r = max(1, round(0.03 * size))
    interior = cv2.erode(face.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    skin = interior.astype(bool) & ~eyes & ~brows & ~lips

    v = (np.arange(size) + 0.5)[:, None] / size * np.ones((1, size))
    u = v.T
    uv = topo.uv
    brow_top = uv[np.r_[topo.contours["left_eyebrow"], topo.contours["right_eyebrow"]], 1].min()
    eye_bottom = uv[np.r_[topo.contours["left_eye"], topo.contours["right_eye"]], 1].max()
    mouth_v = uv[topo.contours["lips"], 1].mean()
    nose_half_width = np.abs(uv[topo.contours["nose"], 0] - 0.5).max()
    forehead = skin & (v < brow_top - 0.02)
    cheeks = skin & (v > eye_bottom + 0.03) & (v < mouth_v) & (np.abs(u - 0.5) > nose_half_width + 0.03)
    return {
        "face": face,
        "skin": skin,
        "forehead": forehead,
        "cheeks": cheeks,
        "lips": lips,
        "brows": brows,
        "eyes": eyes,
        "nose": nose,
    }
