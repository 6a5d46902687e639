"""Photo -> UV unwrap with per-texel visibility and confidence, and UV -> photo re-projection.

UV maps are ``(S, S, C)`` float32 arrays on the layout of ``mesh.topology`` (v down); the
colour ones hold linear RGB. Photos are ``(H, W, 3)`` float32 linear RGB.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from scipy import sparse

from hifialbedo.mesh.geometry import FaceGeometry
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

    def interpolate(self, vertex_values: np.ndarray) -> np.ndarray:
        """Per-vertex values ``(468, C)`` -> per-texel ``(N, C)`` float32."""
        return np.asarray(self.interpolation @ vertex_values.astype(np.float32, copy=False), dtype=np.float32)

    def scatter(self, texel_values: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """Per-texel ``(N, ...)`` -> UV map ``(S, S, ...)``, ``fill`` outside the face."""
        out = np.full((self.size * self.size,) + texel_values.shape[1:], fill, dtype=np.float32)
        out[self.flat_index] = texel_values
        return out.reshape((self.size, self.size) + texel_values.shape[1:])

    def gather(self, uv_map: np.ndarray) -> np.ndarray:
        """UV map ``(S, S, ...)`` -> per-texel ``(N, ...)``."""
        return uv_map.reshape((self.size * self.size,) + uv_map.shape[2:])[self.flat_index]


BORDER_WIDTH = 0.02  # in UV units: the band along the mesh outline whose confidence ramps up


@lru_cache(maxsize=4)
def uv_layout(size: int) -> UVLayout:
    """Rasterize the face mesh's UV layout at ``size x size`` (0.2 s at 1024; cached)."""
    if size < 16 or size > 8192:
        raise ValueError(f"uv size must be in [16, 8192], got {size}")
    topo = load_face_topology()
    frags = rasterize(topo.uv * size, topo.faces, size, size)
    rows, cols = np.nonzero(frags.mask)
    faces = topo.faces[frags.face_index[rows, cols]]
    dist = cv2.distanceTransform(np.pad(frags.mask, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    border = np.clip(dist[rows, cols] / (BORDER_WIDTH * size), 0.0, 1.0).astype(np.float32)
    bary = frags.bary[rows, cols]
    n = len(rows)
    matrix = sparse.csr_matrix((bary.reshape(-1), (np.repeat(np.arange(n), 3), faces.reshape(-1))), shape=(n, len(topo.uv)))
    return UVLayout(size, frags, rows, cols, faces, bary, border, matrix, rows * size + cols)


@dataclass(frozen=True)
class ImageRaster:
    """The face mesh rasterized in a photo, in a window around the face (saves memory)."""

    fragments: Fragments  # over the window
    x0: int  # window's offset in the photo, pixels
    y0: int
    height: int  # the photo's size
    width: int


def rasterize_in_image(geometry: FaceGeometry, height: int, width: int) -> ImageRaster:
    """Z-buffered rasterization of the face mesh in its photo (back faces culled)."""
    xy = geometry.pixel_xy
    x0 = int(np.clip(np.floor(xy[:, 0].min()) - 1, 0, width))
    y0 = int(np.clip(np.floor(xy[:, 1].min()) - 1, 0, height))
    x1 = int(np.clip(np.ceil(xy[:, 0].max()) + 1, 0, width))
    y1 = int(np.clip(np.ceil(xy[:, 1].max()) + 1, 0, height))
    frags = rasterize(
        xy - np.array([x0, y0]),
        load_face_topology().faces,
        max(y1 - y0, 1),
        max(x1 - x0, 1),
        geometry.depth,
        cull_backfaces=True,
    )
    return ImageRaster(frags, x0, y0, height, width)


@dataclass(frozen=True)
class Unwrap:
    """One photo unwrapped onto the UV layout; per-texel arrays ``(N, ...)`` over ``layout``."""

    colour: np.ndarray  # (N, 3) linear RGB sampled from the photo (0 where not visible)
    normals: np.ndarray  # (N, 3) unit normals, camera frame
    visible: np.ndarray  # (N,) bool
    confidence: np.ndarray  # (N,) float32 in [0, 1]
    pixels_per_texel: float  # median linear sampling density over visible texels


def unwrap(image: np.ndarray, geometry: FaceGeometry, layout: UVLayout, raster: ImageRaster) -> Unwrap:
    """Sample a linear-RGB photo ``(H, W, 3)`` onto the UV layout.

    A texel is visible when it faces the camera and is not hidden by a nearer part of the
    mesh (its depth is within a tolerance of the z-buffer at its pixel). Confidence =
    visibility x view term (cosine between normal and view direction, ramped from 0.15 to
    0.6) x resolution term (local linear sampling density relative to the photo's median,
    capped at 1) x border term (the outline band, where hair and background bleed in).
    """
    topo = load_face_topology()
    xy = layout.interpolate(geometry.pixel_xy)  # (N, 2) continuous pixel coordinates
    depth = layout.interpolate(geometry.depth[:, None])[:, 0]
    normals = layout.interpolate(geometry.camera_normals)
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-8)

    frags = raster.fragments
    wh, ww = frags.face_index.shape
    col = np.floor(xy[:, 0]).astype(np.int64) - raster.x0
    row = np.floor(xy[:, 1]).astype(np.int64) - raster.y0
    inside = (col >= 0) & (col < ww) & (row >= 0) & (row < wh)
    # The farthest depth in each 3x3 neighbourhood: a texel on a steep slope reads the
    # z-buffer a pixel away from where it lands, so its own depth can exceed the centre
    # pixel's by a slope x pixel; a real occluder is nearer than the whole neighbourhood.
    zfar = cv2.dilate(np.where(frags.mask, frags.depth, np.float32(np.inf)), np.ones((3, 3), np.uint8))
    zbuf = np.full(len(xy), -np.inf, dtype=np.float32)
    zbuf[inside] = zfar[row[inside], col[inside]]
    tolerance = 0.02 * geometry.frame.scale
    visible = inside & (normals[:, 2] > 0.0) & (depth <= zbuf + tolerance)

    # cv2.remap wants pixel centres at integer coordinates; remap in tiles of rows to
    # stay within its 32767-column limit.
    map_xy = (xy - 0.5).astype(np.float32)
    n = len(map_xy)
    width = 1024
    pad = (-n) % width
    grid = np.concatenate([map_xy, np.full((pad, 2), -10.0, np.float32)]).reshape(-1, width, 2)
    sampled = cv2.remap(image, grid[..., 0], grid[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    colour = sampled.reshape(-1, 3)[:n].astype(np.float32, copy=False)
    colour = np.where(visible[:, None], colour, 0.0).astype(np.float32)

    # Sampling density: photo pixels per texel along a line, per triangle (sqrt of the area ratio).
    uv_px = topo.uv * layout.size
    img_px = geometry.pixel_xy
    f = topo.faces

    def areas(p: np.ndarray) -> np.ndarray:
        a, b, c = p[f[:, 0]], p[f[:, 1]], p[f[:, 2]]
        return np.abs((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))

    density_per_face = np.sqrt(areas(img_px) / np.maximum(areas(uv_px), 1e-12))
    density = density_per_face[layout.fragments.face_index[layout.rows, layout.cols]]
    median_density = float(np.median(density[visible])) if visible.any() else 0.0
    resolution = np.clip(density / max(median_density, 1e-8), 0.0, 1.0)
    view = np.clip((normals[:, 2] - 0.15) / 0.45, 0.0, 1.0)
    confidence = (visible * view * resolution * layout.border_weight).astype(np.float32)
    return Unwrap(colour, normals.astype(np.float32), visible, confidence, median_density)


@dataclass(frozen=True)
class ViewMaps:
    """Per-pixel maps of a photo, over the raster window (see ImageRaster)."""

    mask: np.ndarray  # (h, w) bool, pixels covered by the face mesh
    uv: np.ndarray  # (h, w, 2) texture coordinates (v down)
    normals: np.ndarray  # (h, w, 3) unit camera-frame normals


def view_maps(geometry: FaceGeometry, raster: ImageRaster) -> ViewMaps:
    """Texture coordinates and normals for each pixel the mesh covers in its photo."""
    topo = load_face_topology()
    frags = raster.fragments
    uv = frags.interpolate(topo.uv, topo.faces)
    normals = frags.interpolate(geometry.camera_normals, topo.faces)
    normals /= np.maximum(np.linalg.norm(normals, axis=-1, keepdims=True), 1e-8)
    return ViewMaps(frags.mask, uv, normals)


def sample_uv_map(uv_map: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear look-up of a UV map ``(S, S, C)`` at texture coordinates ``(..., 2)`` (v down)."""
    size = uv_map.shape[0]
    coords = (uv * size - 0.5).astype(np.float32)
    out = cv2.remap(uv_map, coords[..., 0], coords[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(uv.shape[:-1] + uv_map.shape[2:])


def paste_window(raster: ImageRaster, window: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """A window-sized map ``(h, w, C)`` -> full photo size ``(H, W, C)``."""
    out = np.full((raster.height, raster.width) + window.shape[2:], fill, dtype=window.dtype)
    h, w = window.shape[:2]
    out[raster.y0 : raster.y0 + h, raster.x0 : raster.x0 + w] = window
    return out


@dataclass(frozen=True)
class ShadedView:
    """A UV albedo and an SH light rendered into a photo's raster window."""

    albedo: np.ndarray  # (h, w, 3) linear RGB, 0 outside the mask
    shading: np.ndarray  # (h, w, 3) >= 0
    mask: np.ndarray  # (h, w) bool

    @property
    def image(self) -> np.ndarray:
        return self.albedo * self.shading


def shade_view(geometry: FaceGeometry, raster: ImageRaster, albedo_map: np.ndarray, sh: np.ndarray) -> ShadedView:
    """Re-project a UV albedo ``(S, S, 3)`` into the photo and light it with SH ``(9, 3)``."""
    from hifialbedo.ops.sh import sh_shading

    vm = view_maps(geometry, raster)
    m = vm.mask[..., None]
    albedo = sample_uv_map(albedo_map, vm.uv) * m
    shading = np.maximum(sh_shading(vm.normals, sh.astype(np.float32)), 0.0) * m
    return ShadedView(albedo.astype(np.float32), shading.astype(np.float32), vm.mask)
