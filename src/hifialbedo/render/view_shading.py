"""UV -> photo: per-pixel texture coordinates and normals of the mesh in its photo, UV maps
sampled there, and a UV albedo lit by an SH light in the photo's raster window.

UV maps are ``(S, S, C)`` float32 (v down); colours are linear RGB; SH ``(9, 3)`` as ``ops.sh``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from hifialbedo.mesh.geometry import FaceGeometry
from hifialbedo.mesh.topology import load_face_topology
from hifialbedo.ops.sh import sh_shading
from hifialbedo.render.image_raster import ImageRaster


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


def region_in_view(maps: ViewMaps, region: np.ndarray) -> np.ndarray:
    """``(h, w)`` bool over the raster window: covered pixels whose texture coordinates fall in
    a UV region mask ``(S, S)`` bool (``mesh.topology.uv_regions``), nearest texel.

    >>> maps = ViewMaps(np.ones((1, 2), bool), np.array([[[0.1, 0.5], [0.9, 0.5]]]), np.zeros((1, 2, 3)))
    >>> left_half = np.zeros((4, 4), bool); left_half[:, :2] = True
    >>> region_in_view(maps, left_half).tolist()
    [[True, False]]
    """
    size = region.shape[0]
    ij = np.clip((maps.uv * size).astype(np.int64), 0, size - 1)
    return region[ij[..., 1], ij[..., 0]] & maps.mask


def sample_uv_map(uv_map: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear look-up of a UV map ``(S, S, C)`` at texture coordinates ``(..., 2)`` (v down)."""
    size = uv_map.shape[0]
    coords = (uv * size - 0.5).astype(np.float32)
    out = cv2.remap(uv_map, coords[..., 0], coords[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(uv.shape[:-1] + uv_map.shape[2:])


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
    vm = view_maps(geometry, raster)
    m = vm.mask[..., None]
    albedo = sample_uv_map(albedo_map, vm.uv) * m
    shading = np.maximum(sh_shading(vm.normals, sh.astype(np.float32)), 0.0) * m
    return ShadedView(albedo.astype(np.float32), shading.astype(np.float32), vm.mask)
