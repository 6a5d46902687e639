"""The differentiable renderer (PyTorch): gradients to vertices, texture and SH lighting.

Rasterization picks, per pixel, which triangle is visible; that choice is discrete and is
taken without gradients by the NumPy rasterizer (``render.raster``). Everything after it
is differentiable: barycentric coordinates as functions of the projected vertices, the
texture look-up (``grid_sample``, bilinear) and the SH shading (``ops.sh``).

Tensor conventions: projected vertices ``(B, V, 2)`` in continuous pixels (x right,
y down); normals ``(B, V, 3)`` camera frame; textures ``(B, C, S, S)`` linear RGB on the
UV layout (v down); SH ``(B, 9, 3)``; images ``(B, C, H, W)`` linear RGB.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from hifialbedo.ops.sh import sh_shading
from hifialbedo.render.raster import rasterize


@dataclass(frozen=True)
class PixelFaces:
    """Which triangle each pixel sees (no gradient): ``face_index (B, H, W)`` int64, -1 = none."""

    face_index: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        return self.face_index >= 0


def rasterize_batch(positions: torch.Tensor, depth: torch.Tensor, faces: torch.Tensor, height: int, width: int) -> PixelFaces:
    """Visible triangle per pixel for a batch of meshes (z-buffer, back faces culled)."""
    out = []
    for p, z in zip(positions.detach().cpu().numpy(), depth.detach().cpu().numpy()):
        frags = rasterize(p, faces.cpu().numpy(), height, width, z, cull_backfaces=True)
        out.append(torch.from_numpy(frags.face_index.astype(np.int64)))
    return PixelFaces(torch.stack(out).to(positions.device))


def barycentrics(positions: torch.Tensor, faces: torch.Tensor, pixel_faces: PixelFaces) -> torch.Tensor:
    """Barycentric coordinates ``(B, H, W, 3)`` of pixel centres in their triangles, differentiable
    in ``positions (B, V, 2)``; zero where no triangle covers the pixel."""
    b, h, w = pixel_faces.face_index.shape
    idx = pixel_faces.face_index.clamp_min(0)
    tri = faces[idx]  # (B, H, W, 3)
    batch = torch.arange(b, device=positions.device).view(b, 1, 1, 1)
    p = positions[batch, tri]  # (B, H, W, 3, 2)
    ys, xs = torch.meshgrid(torch.arange(h, device=positions.device), torch.arange(w, device=positions.device), indexing="ij")
    q = torch.stack([xs, ys], dim=-1).to(positions.dtype) + 0.5
    e1 = p[..., 1, :] - p[..., 0, :]
    e2 = p[..., 2, :] - p[..., 0, :]
    d = q - p[..., 0, :]
    det = e1[..., 0] * e2[..., 1] - e1[..., 1] * e2[..., 0]
    det = torch.where(det.abs() < 1e-12, torch.ones_like(det), det)
    b1 = (d[..., 0] * e2[..., 1] - d[..., 1] * e2[..., 0]) / det
    b2 = (e1[..., 0] * d[..., 1] - e1[..., 1] * d[..., 0]) / det
    bary = torch.stack([1.0 - b1 - b2, b1, b2], dim=-1)
    return bary * pixel_faces.mask[..., None].to(bary.dtype)


def interpolate(vertex_values: torch.Tensor, faces: torch.Tensor, pixel_faces: PixelFaces, bary: torch.Tensor) -> torch.Tensor:
    """Per-vertex values ``(B, V, C)`` -> per-pixel ``(B, H, W, C)`` (zero outside the mesh)."""
    b = vertex_values.shape[0]
    tri = faces[pixel_faces.face_index.clamp_min(0)]
    batch = torch.arange(b, device=vertex_values.device).view(b, 1, 1, 1)
    vals = vertex_values[batch, tri]  # (B, H, W, 3, C)
    return (bary[..., None] * vals).sum(dim=-2)


def sample_texture(texture: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Bilinear look-up of ``texture (B, C, S, S)`` at ``uv (B, H, W, 2)`` (v down) -> ``(B, C, H, W)``."""
    grid = uv * 2.0 - 1.0  # align_corners=False: texel centres at (j + 0.5) / S, as in mesh.topology
    return F.grid_sample(texture, grid, mode="bilinear", padding_mode="border", align_corners=False)


@dataclass(frozen=True)
class RenderOutput:
    image: torch.Tensor  # (B, 3, H, W) albedo x shading, linear RGB
    albedo: torch.Tensor  # (B, 3, H, W)
    shading: torch.Tensor  # (B, 3, H, W)
    mask: torch.Tensor  # (B, 1, H, W) float


def render(
    positions: torch.Tensor,
    depth: torch.Tensor,
    normals: torch.Tensor,
    uv: torch.Tensor,
    faces: torch.Tensor,
    texture: torch.Tensor,
    sh: torch.Tensor,
    height: int,
    width: int,
) -> RenderOutput:
    """Render textured, SH-lit meshes: I = texture(uv) * S(n), differentiable in positions,
    normals, texture and SH. ``uv (V, 2)`` is the shared layout; ``depth (B, V)``: larger = farther."""
    pf = rasterize_batch(positions, depth, faces, height, width)
    bary = barycentrics(positions, faces, pf)
    b = positions.shape[0]
    uv_pix = interpolate(uv.expand(b, -1, -1), faces, pf, bary)
    n = interpolate(normals, faces, pf, bary)
    n = n / n.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    shading = sh_shading(n, sh).clamp_min(0.0).permute(0, 3, 1, 2)
    mask = pf.mask[:, None].to(texture.dtype)
    albedo = sample_texture(texture, uv_pix) * mask
    return RenderOutput(albedo * shading * mask, albedo, shading * mask, mask)
