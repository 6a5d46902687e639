"""The UV layout: the face mesh's UV map rasterized once per size, shared by every photo.

Per-texel arrays ``(N, ...)`` list the N texels the mesh covers (row-major order of the
``(S, S)`` map, v down); :meth:`UVLayout.scatter` and :meth:`UVLayout.gather` convert between
them and ``(S, S, ...)`` UV maps, :meth:`UVLayout.interpolate` takes per-vertex values to texels.

The rasterization of a size is kept on disk (:func:`cache_dir`: ``$HIFIALBEDO_CACHE``, else
``$XDG_CACHE_HOME/hifialbedo`` or ``~/.cache/hifialbedo``), keyed by size, package version and
a hash of the mesh data, written atomically; a new process loads it instead of rasterizing
again (0.6 s at 1024 on 2 cores). An unreadable or unwritable cache is ignored.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
from scipy import sparse

from hifialbedo import __version__
from hifialbedo.mesh.topology import load_face_topology
from hifialbedo.render.raster import Fragments, rasterize


@dataclass(frozen=True)
class UVLayout:
    """The UV map's rasterization, computed once per size and shared by every photo."""

    size: int
    fragments: Fragments  # (S, S) triangle ids and barycentrics
    rows: np.ndarray  # (N,) row of each covered texel
    cols: np.ndarray  # (N,) column
    texel_faces: np.ndarray  # (N, 3) vertex ids of each covered texel's triangle
    texel_bary: np.ndarray  # (N, 3) float32
    border_weight: np.ndarray  # (N,) 0 on the mesh border rising to 1 inside (hair, background bleed)
    interpolation: sparse.csr_matrix  # (N, 468) barycentric weights: texel values = matrix @ vertex values
    flat_index: np.ndarray  # (N,) row * size + col

    @property
    def mask(self) -> np.ndarray:
        return self.fragments.mask

    @property
    def n_texels(self) -> int:
        return len(self.rows)

    @cached_property
    def face_of_texel(self) -> np.ndarray:
        """``(N,)`` the triangle each covered texel lies in (computed once per layout)."""
        return self.fragments.face_index[self.rows, self.cols]

    def interpolate(self, vertex_values: np.ndarray) -> np.ndarray:
        """Per-vertex values ``(468, C)`` -> per-texel ``(N, C)`` float32."""
        return np.asarray(self.interpolation @ vertex_values.astype(np.float32, copy=False), dtype=np.float32)

    def interpolate_rows(self, vertex_values: np.ndarray) -> np.ndarray:
        """Per-vertex values ``(468, C)`` -> per-texel ``(C, N)`` float32, each channel a
        contiguous row (for per-channel passes over the texels)."""
        values = vertex_values.astype(np.float32, copy=False)
        return np.stack([self.interpolation @ values[:, c] for c in range(values.shape[1])])

    def scatter(self, texel_values: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """Per-texel ``(N, ...)`` -> UV map ``(S, S, ...)``, ``fill`` outside the face."""
        out = np.full((self.size * self.size,) + texel_values.shape[1:], fill, dtype=np.float32)
        out[self.flat_index] = texel_values
        return out.reshape((self.size, self.size) + texel_values.shape[1:])

    def gather(self, uv_map: np.ndarray) -> np.ndarray:
        """UV map ``(S, S, ...)`` -> per-texel ``(N, ...)``."""
        return uv_map.reshape((self.size * self.size,) + uv_map.shape[2:])[self.flat_index]


BORDER_WIDTH = 0.02  # in UV units: the band along the mesh outline whose confidence ramps up


def cache_dir() -> Path:
    """Where per-size precomputations are kept: ``$HIFIALBEDO_CACHE``, else
    ``$XDG_CACHE_HOME/hifialbedo``, else ``~/.cache/hifialbedo``."""
    if os.environ.get("HIFIALBEDO_CACHE"):
        return Path(os.environ["HIFIALBEDO_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hifialbedo"


@lru_cache(maxsize=1)
def _mesh_key() -> str:
    data = resources.files("hifialbedo.mesh.data").joinpath("face_mesh.npz").read_bytes()
    return hashlib.sha256(data + f"{BORDER_WIDTH}".encode()).hexdigest()[:12]


def _cache_path(size: int) -> Path:
    return cache_dir() / f"uv_layout_{size}_v{__version__}_{_mesh_key()}.npz"


def _rasterize_layout(size: int) -> tuple[Fragments, np.ndarray]:
    """The UV rasterization ``Fragments`` and the border weight map ``(S, S)`` float32."""
    topo = load_face_topology()
    frags = rasterize(topo.uv * size, topo.faces, size, size)
    dist = cv2.distanceTransform(np.pad(frags.mask, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    border = np.clip(dist / (BORDER_WIDTH * size), 0.0, 1.0).astype(np.float32)
    return frags, border


def _load_cached(path: Path, size: int) -> tuple[Fragments, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            frags = Fragments(data["face_index"], data["bary"], data["depth"])
            border = data["border"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if frags.face_index.shape != (size, size) or frags.bary.shape != (size, size, 3) or border.shape != (size, size):
        return None
    return frags, border


def _save_cached(path: Path, frags: Fragments, border: np.ndarray) -> None:
    """Write atomically (a temporary file in the same folder, renamed); failures are ignored."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.stem, suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, face_index=frags.face_index, bary=frags.bary, depth=frags.depth, border=border)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        pass


@lru_cache(maxsize=4)
def uv_layout(size: int, *, disk_cache: bool = True) -> UVLayout:
    """Rasterize the face mesh's UV layout at ``size x size`` (cached in the process, and on
    disk with ``disk_cache``: see the module docstring).

    >>> layout = uv_layout(64)
    >>> values = np.arange(layout.n_texels, dtype=np.float32)
    >>> layout.scatter(values).shape, bool((layout.gather(layout.scatter(values)) == values).all())
    ((64, 64), True)
    """
    if size < 16 or size > 8192:
        raise ValueError(f"uv size must be in [16, 8192], got {size}")
    topo = load_face_topology()
    path = _cache_path(size) if disk_cache else None
    cached = _load_cached(path, size) if path is not None and path.is_file() else None
    if cached is None:
        cached = _rasterize_layout(size)
        if path is not None:
            _save_cached(path, *cached)
    frags, border_map = cached
    rows, cols = np.nonzero(frags.mask)
    face_of_texel = frags.face_index[rows, cols]
    faces = topo.faces[face_of_texel]
    border = border_map[rows, cols]
    bary = frags.bary[rows, cols]
    n = len(rows)
    # The interpolation matrix built as CSR directly: three entries per texel, its triangle's
    # vertices in increasing order (as a COO -> CSR conversion sorts them, ten times slower).
    by_vertex = np.argsort(topo.faces, axis=1, kind="stable")  # (F, 3) per triangle
    columns = np.take_along_axis(topo.faces, by_vertex, axis=1)[face_of_texel]
    weights = np.empty_like(bary)
    for j, k in enumerate(by_vertex[face_of_texel].T):  # texel weight k_j goes to column j
        weights[:, j] = np.where(k == 0, bary[:, 0], np.where(k == 1, bary[:, 1], bary[:, 2]))
    indptr = np.arange(0, 3 * n + 1, 3, dtype=np.int32)
    matrix = sparse.csr_matrix((weights.reshape(-1), columns.reshape(-1).astype(np.int32), indptr), shape=(n, len(topo.uv)))
    layout = UVLayout(size, frags, rows, cols, faces, bary, border, matrix, rows * size + cols)
    layout.__dict__["face_of_texel"] = face_of_texel  # the cached property, already at hand
    return layout
