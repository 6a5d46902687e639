"""Batched face-mesh views for the learned model: a UV texture rendered on each photo's
own mesh, from the photo's viewpoint or turned to a new one (PyTorch).

The mesh is the 468-vertex face mesh built from MediaPipe landmarks exactly as in
``mesh.geometry.fit_face_geometry`` (orthographic camera, pixel units). A new view turns
the mesh about its centroid: ``yaw`` about the camera's vertical axis (positive turns the
face toward image right), ``pitch`` about the horizontal axis, in radians. Rendering goes
through ``render.differentiable.render``: gradients reach the texture and the SH light.

Conventions: landmarks ``(B, 478, 3)`` pixels (x right, y down, z MediaPipe depth);
textures ``(B, 3, S, S)`` linear RGB on the UV layout; SH ``(B, 9, 3)``; images
``(B, 3, H, W)`` linear RGB.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from hifialbedo.mesh.topology import N_VERTICES, load_face_topology
from hifialbedo.ops.sh import uniform_light
from hifialbedo.render.differentiable import RenderOutput, render


@lru_cache(maxsize=1)
def _topology_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    topo = load_face_topology()
    return torch.from_numpy(topo.faces.astype(np.int64)), torch.from_numpy(topo.uv.astype(np.float32))


@dataclass(frozen=True)
class MeshView:
    """Projected meshes: ``positions (B, V, 2)`` pixels (x, y down), ``depth (B, V)``
    (larger = farther), unit camera-frame ``normals (B, V, 3)``."""

    positions: torch.Tensor
    depth: torch.Tensor
    normals: torch.Tensor


def vertex_normals_torch(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted unit vertex normals ``(B, V, 3)`` of meshes ``(B, V, 3)`` (as ``mesh.geometry.vertex_normals``)."""
    a, b, c = (vertices[:, faces[:, k]] for k in range(3))
    face_n = torch.cross(b - a, c - a, dim=-1)
    normals = torch.zeros_like(vertices)
    for k in range(3):
        normals = normals.index_add(1, faces[:, k], face_n)
    return normals / normals.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def rotation_yaw_pitch(yaw: torch.Tensor, pitch: torch.Tensor) -> torch.Tensor:
    """``(B, 3, 3)`` rotations: pitch about x, then yaw about y (camera frame, y up)."""
    cy, sy, cp, sp = torch.cos(yaw), torch.sin(yaw), torch.cos(pitch), torch.sin(pitch)
    one, zero = torch.ones_like(yaw), torch.zeros_like(yaw)
    r_yaw = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], dim=-1).view(-1, 3, 3)
    r_pitch = torch.stack([one, zero, zero, zero, cp, -sp, zero, sp, cp], dim=-1).view(-1, 3, 3)
    return r_yaw @ r_pitch


def mesh_views(landmarks: torch.Tensor, *, yaw: torch.Tensor | None = None, pitch: torch.Tensor | None = None) -> MeshView:
    """Face meshes of ``landmarks (B, 478, 3)``, optionally turned by ``yaw``/``pitch`` ``(B,)``."""
    if landmarks.ndim != 3 or landmarks.shape[1] < N_VERTICES or landmarks.shape[2] != 3:
        raise ValueError(f"landmarks must be (B, 478, 3) pixels, got {tuple(landmarks.shape)}")
    faces, _ = _topology_tensors()
    lm = landmarks[:, :N_VERTICES].float()
    verts = torch.stack([lm[..., 0], -lm[..., 1], -lm[..., 2]], dim=-1)  # camera frame, y up
    if yaw is not None or pitch is not None:
        b = verts.shape[0]
        yaw = torch.zeros(b) if yaw is None else yaw.float()
        pitch = torch.zeros(b) if pitch is None else pitch.float()
        centre = verts.mean(dim=1, keepdim=True)
        verts = (verts - centre) @ rotation_yaw_pitch(yaw, pitch).transpose(1, 2) + centre
    normals = vertex_normals_torch(verts, faces)
    return MeshView(torch.stack([verts[..., 0], -verts[..., 1]], dim=-1), -verts[..., 2], normals)


def render_texture(texture: torch.Tensor, view: MeshView, height: int, width: int, sh: torch.Tensor | None = None) -> RenderOutput:
    """``texture (B, 3, S, S)`` on the meshes of ``view``; lit by ``sh (B, 9, 3)``, or
    unlit (shading 1: the texture as seen) when ``sh`` is None."""
    faces, uv = _topology_tensors()
    if sh is None:
        sh = torch.from_numpy(uniform_light(1.0).astype(np.float32)).to(texture)[None].expand(texture.shape[0], -1, -1)
    return render(view.positions, view.depth, view.normals, uv.to(texture.device), faces.to(texture.device), texture, sh, height, width)
