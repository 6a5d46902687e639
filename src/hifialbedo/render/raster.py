"""A vectorised z-buffered triangle rasterizer (NumPy), for image space and UV space.

Coordinates are continuous pixels: the raster spans [0, W] x [0, H], pixel (row i, col j)
has its centre at (j + 0.5, i + 0.5); a pixel is covered when its centre lies inside a
triangle (edges inclusive). Smaller depth wins. There is no Python loop over triangles:
every (triangle, pixel-in-its-bounding-box) candidate is generated at once, in chunks
that bound the memory, and the z-buffer is resolved with ``np.minimum.at``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_CHUNK_CANDIDATES = 1 << 22  # candidates per chunk: ~100 MB of temporaries at most


@dataclass(frozen=True)
class Fragments:
    """The result of rasterizing: per pixel, its triangle and barycentric coordinates."""

    face_index: np.ndarray  # (H, W) int32, -1 where no triangle covers the pixel
    bary: np.ndarray  # (H, W, 3) float32, zero where uncovered
    depth: np.ndarray  # (H, W) float32, +inf where uncovered

    @property
    def mask(self) -> np.ndarray:
        return self.face_index >= 0

    def interpolate(self, vertex_values: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """Barycentric interpolation of per-vertex values ``(V, C)`` -> ``(H, W, C)`` (0 outside)."""
        out = np.zeros(self.face_index.shape + vertex_values.shape[1:], dtype=np.float32)
        m = self.mask
        tri = faces[self.face_index[m]]
        b = self.bary[m]
        vals = vertex_values.astype(np.float32, copy=False)
        out[m] = b[:, 0:1] * vals[tri[:, 0]] + b[:, 1:2] * vals[tri[:, 1]] + b[:, 2:3] * vals[tri[:, 2]]
        return out


def rasterize(
    positions: np.ndarray,
    faces: np.ndarray,
    height: int,
    width: int,
    depth: np.ndarray | None = None,
    *,
    cull_backfaces: bool = False,
) -> Fragments:
    """Rasterize triangles given by 2-D vertex positions ``(V, 2)`` (pixels) and ``faces (F, 3)``.

    ``depth (V,)``: per-vertex depth for the z-buffer (smaller = nearer); None rasterizes
    without depth (for non-overlapping layouts like a UV map; ties go to either triangle).
    ``cull_backfaces``: skip triangles that are clockwise on the raster (x right, y down),
    i.e. facing away from a camera looking at a counter-clockwise-outward mesh.
    """
    positions = np.asarray(positions, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    face_index = np.full((height, width), -1, dtype=np.int32)
    bary_out = np.zeros((height, width, 3), dtype=np.float32)
    zbuf = np.full(height * width, np.inf, dtype=np.float64)

    p = positions[faces]  # (F, 3, 2)
    x0, y0 = p[:, 0, 0], p[:, 0, 1]
    e1 = p[:, 1] - p[:, 0]
    e2 = p[:, 2] - p[:, 0]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    keep = np.abs(det) > 1e-12
    if cull_backfaces:
        # With y pointing down, a triangle counter-clockwise as seen by the camera has det < 0.
        keep &= det < 0
    ids = np.flatnonzero(keep)
    if ids.size == 0:
        return Fragments(face_index, bary_out, zbuf.reshape(height, width).astype(np.float32))

    col_lo = np.clip(np.ceil(p[ids, :, 0].min(axis=1) - 0.5), 0, width).astype(np.int64)
    col_hi = np.clip(np.floor(p[ids, :, 0].max(axis=1) - 0.5), -1, width - 1).astype(np.int64)
    row_lo = np.clip(np.ceil(p[ids, :, 1].min(axis=1) - 0.5), 0, height).astype(np.int64)
    row_hi = np.clip(np.floor(p[ids, :, 1].max(axis=1) - 0.5), -1, height - 1).astype(np.int64)
    box_w = np.maximum(col_hi - col_lo + 1, 0)
    box_h = np.maximum(row_hi - row_lo + 1, 0)
    counts = box_w * box_h

    # Barycentrics (b1, b2) solve [e1 e2] (b1, b2) = q - p0: the inverse 2x2 per triangle.
    inv = np.stack([e2[ids, 1], -e2[ids, 0], -e1[ids, 1], e1[ids, 0]], axis=1) / det[ids, None]
    zv = None if depth is None else np.asarray(depth, dtype=np.float64)[faces[ids]]

    winners_pix, winners_tri, winners_b = [], [], []
    start = 0
    cum = np.cumsum(counts)
    while start < len(ids):
        base = cum[start - 1] if start > 0 else 0
        stop = int(np.searchsorted(cum, base + _CHUNK_CANDIDATES, side="right"))
        stop = max(stop, start + 1)
        sel = np.arange(start, stop)
        n = counts[sel]
        total = int(n.sum())
        start = stop
        if total == 0:
            continue
        t = np.repeat(sel, n)
        local = np.arange(total, dtype=np.float64) - np.repeat((np.cumsum(n) - n).astype(np.float64), n)
        bw = np.repeat(box_w[sel].astype(np.float64), n)
        r_local = np.floor((local + 0.5) / bw)  # float division: much faster than int //
        cols = np.repeat(col_lo[sel], n) + (local - r_local * bw).astype(np.int64)
        rows = np.repeat(row_lo[sel], n) + r_local.astype(np.int64)
        qx = cols + np.repeat(0.5 - x0[ids[sel]], n)
        qy = rows + np.repeat(0.5 - y0[ids[sel]], n)
        inv_sel = inv[sel]
        b1 = np.repeat(inv_sel[:, 0], n) * qx + np.repeat(inv_sel[:, 1], n) * qy
        b2 = np.repeat(inv_sel[:, 2], n) * qx + np.repeat(inv_sel[:, 3], n) * qy
        b0 = 1.0 - b1 - b2
        eps = -1e-9
        inside = (b0 >= eps) & (b1 >= eps) & (b2 >= eps)
        t, rows, cols, b0, b1, b2 = t[inside], rows[inside], cols[inside], b0[inside], b1[inside], b2[inside]
        pix = rows * width + cols
        if zv is None:
            z = np.zeros(len(t))
        else:
            z = b0 * zv[t, 0] + b1 * zv[t, 1] + b2 * zv[t, 2]
        if zv is not None:
            np.minimum.at(zbuf, pix, z)
        winners_pix.append(pix)
        winners_tri.append(t)
        winners_b.append((b0, b1, b2, z))

    flat_index = face_index.reshape(-1)
    flat_bary = bary_out.reshape(-1, 3)
    for pix, t, (b0, b1, b2, z) in zip(winners_pix, winners_tri, winners_b):
        if zv is None:  # no overlaps expected: any covering triangle will do
            zbuf[pix] = 0.0
            win = slice(None)
        else:
            win = z <= zbuf[pix]
        pix, t = pix[win], t[win]
        flat_index[pix] = ids[t]
        flat_bary[pix] = np.stack([b0[win], b1[win], b2[win]], axis=1)
    zimg = zbuf.reshape(height, width).astype(np.float32)
    return Fragments(face_index, bary_out, zimg)


def rasterize_reference(
    positions: np.ndarray, faces: np.ndarray, height: int, width: int, depth: np.ndarray | None = None
) -> Fragments:
    """Slow per-pixel, per-triangle reference with the same conventions (for tests)."""
    face_index = np.full((height, width), -1, dtype=np.int32)
    bary = np.zeros((height, width, 3), dtype=np.float32)
    zbuf = np.full((height, width), np.inf)
    for f, (i0, i1, i2) in enumerate(np.asarray(faces)):
        a, b, c = positions[i0], positions[i1], positions[i2]
        area = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
        if abs(area) <= 1e-12:
            continue
        for row in range(height):
            for col in range(width):
                q = (col + 0.5, row + 0.5)
                w0 = ((b[0] - q[0]) * (c[1] - q[1]) - (b[1] - q[1]) * (c[0] - q[0])) / area
                w1 = ((c[0] - q[0]) * (a[1] - q[1]) - (c[1] - q[1]) * (a[0] - q[0])) / area
                w2 = 1.0 - w0 - w1
                if min(w0, w1, w2) < -1e-9:
                    continue
                z = 0.0 if depth is None else w0 * depth[i0] + w1 * depth[i1] + w2 * depth[i2]
                if z < zbuf[row, col]:
                    zbuf[row, col] = z
                    face_index[row, col] = f
                    bary[row, col] = (w0, w1, w2)
    return Fragments(face_index, bary, zbuf.astype(np.float32))
