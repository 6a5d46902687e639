"""Blinn-Phong specular reflection (the specular lobe added to the Lambertian SH shading).

For a unit normal n, a unit direction l toward the light and a unit direction v toward
the viewer, all in the same frame (the camera frame: x right, y up, z toward the camera;
the camera is orthographic, so v = (0, 0, 1) everywhere), the half vector is
h = (l + v) / |l + v| and

    specular(n) = intensity * max(n . h, 0) ** shininess     if n . l > 0,  else 0.

Normalisation: none (the peak, at n = h, equals ``intensity``); the lobe narrows as
``shininess`` grows (at an angle t between n and h it is intensity * cos(t) ** shininess,
e.g. 0.5 ** s * intensity at 60 degrees). There is no n . l factor, as in the classic
Blinn-Phong model of the end-to-end specular paper; the step on n . l removes highlights on
surfaces facing away from the light. A pixel reads I = albedo * S + specular * E, with S
the SH shading (``ops.sh``) and E the light's linear-RGB colour.

Roughness maps relate to shininess through the usual Blinn-Phong <-> Beckmann match
(Walter et al. 2007): alpha = roughness ** 2, shininess = 2 / alpha ** 2 - 2.
Functions accept NumPy arrays or torch tensors.
"""

from __future__ import annotations

import numpy as np

from hifialbedo.ops._array import clip_min, is_torch, where

VIEW_DIRECTION = (0.0, 0.0, 1.0)  # toward an orthographic camera, camera frame
MAX_SHININESS = 1e4


def half_vector(light_dir, view_dir=VIEW_DIRECTION) -> np.ndarray:
    """Unit half vector ``(3,)`` between the unit-normalised light and view directions."""
    light = np.asarray(light_dir, dtype=np.float64)
    view = np.asarray(view_dir, dtype=np.float64)
    light = light / np.linalg.norm(light)
    view = view / np.linalg.norm(view)
    h = light + view
    norm = np.linalg.norm(h)
    if norm < 1e-12:
        raise ValueError("light and view directions are opposite: the half vector is undefined")
    return h / norm


def blinn_phong(normals, light_dir, *, shininess, intensity=1.0, view_dir=VIEW_DIRECTION):
    """Blinn-Phong specular term ``(...)`` of unit normals ``(..., 3)`` (module docstring).

    ``light_dir`` and ``view_dir`` ``(3,)`` point from the surface toward the light and the
    viewer (same frame as the normals; normalised here). ``shininess`` and ``intensity`` are
    scalars or arrays broadcasting against ``(...)`` (per-pixel maps), >= 0.

    >>> float(blinn_phong(np.array([0.0, 0.0, 1.0]), [0, 0, 1], shininess=10, intensity=0.3))
    0.3
    """
    h = half_vector(light_dir, view_dir)
    light = np.asarray(light_dir, dtype=np.float64)
    light = light / np.linalg.norm(light)
    if is_torch(normals):
        import torch

        h = torch.as_tensor(h, dtype=normals.dtype, device=normals.device)
        light = torch.as_tensor(light, dtype=normals.dtype, device=normals.device)
    else:
        h = h.astype(normals.dtype) if np.issubdtype(normals.dtype, np.floating) else h
    n_dot_h = clip_min(normals @ h, 0.0)
    lobe = intensity * n_dot_h**shininess
    return where((normals @ light) > 0.0, lobe, 0.0 * lobe)


def shininess_from_roughness(roughness):
    """Blinn-Phong shininess of a perceptual roughness in (0, 1]: 2 / roughness ** 4 - 2
    (alpha = roughness ** 2), capped at ``MAX_SHININESS``; roughness 1 gives 0 (no lobe).

    >>> float(shininess_from_roughness(np.array(0.5)))
    30.0
    """
    r = np.clip(np.asarray(roughness, dtype=np.float64), 1e-3, 1.0)
    return np.minimum(2.0 / r**4 - 2.0, MAX_SHININESS)


def roughness_from_shininess(shininess):
    """Perceptual roughness of a Blinn-Phong shininess >= 0: (2 / (shininess + 2)) ** 0.25,
    the inverse of ``shininess_from_roughness`` (alpha = roughness ** 2 = sqrt(2 / (s + 2)));
    shininess 0 gives 1, and the result is at least ``shininess_from_roughness``'s floor.

    >>> float(roughness_from_shininess(np.array(30.0)))
    0.5
    """
    s = np.clip(np.asarray(shininess, dtype=np.float64), 0.0, MAX_SHININESS)
    return (2.0 / (s + 2.0)) ** 0.25
