"""Per-photo face meshes: camera-space vertices, vertex normals and the head frame.

Camera frame: x right, y up, z toward the camera, units of image pixels, orthographic
projection (MediaPipe's landmarks are a weak-perspective fit): a vertex (X, Y, Z) lands on
pixel coordinates (X, -Y). Object (head) frame: origin at the face's centroid, x toward the
subject's left (image right on a frontal photo), y up the face, z out of the face, unit =
the mean distance of the 468 vertices from their centroid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hifialbedo.mesh.topology import CHIN, FOREHEAD_TOP, N_VERTICES, load_face_topology


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals ``(V, 3)`` of a triangle mesh ``(V, 3)``, ``(F, 3)``.

    Triangles counter-clockwise seen from outside give outward normals.
    """
    a, b, c = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    face_n = np.cross(b - a, c - a)  # length = 2 x area: area weighting for free
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_n)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def vertex_tangents(vertices: np.ndarray, normals: np.ndarray, uv: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit tangents with handedness ``(V, 4)`` for tangent-space normal maps (glTF ``TANGENT``).

    ``vertices`` ``(V, 3)``, unit ``normals`` ``(V, 3)``, ``uv`` ``(V, 2)`` with v *down* (the
    PNG and glTF convention), ``faces`` ``(F, 3)``. MikkTSpace-like: each triangle's
    dP/du and dP/dv' (v' = 1 - v, i.e. *up* in the image, the +Y of an OpenGL-convention
    normal map) are projected onto each corner's normal plane, normalised, weighted by the
    corner angle and summed per vertex; the tangent xyz is the sum for dP/du made orthogonal
    to the normal (Gram-Schmidt) and normalised, and w = +-1 is the handedness, chosen so
    that ``bitangent = w * cross(normal, tangent)`` points along dP/dv' (glTF's rule).
    Triangles with a degenerate UV mapping are skipped; a vertex left without a tangent
    gets any unit vector orthogonal to its normal, with w = +1.

    On the face mesh in the head frame, u runs along +x and v' along +y, so the tangent is
    close to +x, the bitangent to +y and w = +1.
    """
    p = np.asarray(vertices, np.float64)[faces]  # (F, 3 corners, 3)
    st = np.asarray(uv, np.float64)[faces] * np.array([1.0, -1.0])  # (u, v') up to an offset
    e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    d1, d2 = st[:, 1] - st[:, 0], st[:, 2] - st[:, 0]
    det = d1[:, 0] * d2[:, 1] - d2[:, 0] * d1[:, 1]
    ok = np.abs(det) > 1e-12
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)[:, None]
    dp_du = (e1 * d2[:, 1:2] - e2 * d1[:, 1:2]) * inv
    dp_dv = (e2 * d1[:, 0:1] - e1 * d2[:, 0:1]) * inv
    n = np.asarray(normals, np.float64)
    tangent = np.zeros_like(n)
    bitangent = np.zeros_like(n)
    for k in range(3):
        a, b = p[:, (k + 1) % 3] - p[:, k], p[:, (k + 2) % 3] - p[:, k]
        cos = np.einsum("fi,fi->f", a, b) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)
        weight = (np.arccos(np.clip(cos, -1.0, 1.0)) * ok)[:, None]
        nk = n[faces[:, k]]
        for acc, d in ((tangent, dp_du), (bitangent, dp_dv)):
            d = d - nk * np.einsum("fi,fi->f", nk, d)[:, None]
            d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-30)
            np.add.at(acc, faces[:, k], weight * d)
    tangent -= n * np.einsum("vi,vi->v", n, tangent)[:, None]
    length = np.linalg.norm(tangent, axis=1)
    lost = length < 1e-9
    if lost.any():  # any unit vector orthogonal to the normal
        axis = np.where((np.abs(n[lost, 0]) < 0.9)[:, None], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
        fallback = axis - n[lost] * np.einsum("vi,vi->v", n[lost], axis)[:, None]
        tangent[lost] = fallback
        bitangent[lost] = np.cross(n[lost], fallback)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    w = np.where(np.einsum("vi,vi->v", np.cross(n, tangent), bitangent) < 0.0, -1.0, 1.0)
    return np.concatenate([tangent, w[:, None]], axis=1)


@dataclass(frozen=True)
class HeadFrame:
    """Rigid-plus-scale map from camera space to the head frame: p_obj = R (p_cam - centre) / scale."""

    rotation: np.ndarray  # (3, 3), rows are the head axes in camera coordinates
    centre: np.ndarray  # (3,)
    scale: float

    def to_object(self, points: np.ndarray) -> np.ndarray:
        return (points - self.centre) @ self.rotation.T / self.scale

    def directions_to_object(self, directions: np.ndarray) -> np.ndarray:
        return directions @ self.rotation.T


def head_frame(camera_vertices: np.ndarray) -> HeadFrame:
    """The head frame of a camera-space mesh ``(468, 3)``, from its mirror-symmetric pairs.

    x is the mean direction from each right-side vertex to its left-side mirror; y points
    from the chin to the top of the forehead, made orthogonal to x; z = x cross y.
    """
    topo = load_face_topology()
    left = topo.uv[:, 0] > 0.5 + 1e-3
    pairs = np.flatnonzero(left)
    # Vertices with u > 0.5 lie on the image right of a frontal face: the subject's left.
    x = (camera_vertices[pairs] - camera_vertices[topo.mirror[pairs]]).mean(axis=0)
    x /= np.linalg.norm(x)
    y = camera_vertices[FOREHEAD_TOP] - camera_vertices[CHIN]
    y -= x * (y @ x)
    y /= np.linalg.norm(y)
    z = np.cross(x, y)
    centre = camera_vertices.mean(axis=0)
    scale = float(np.linalg.norm(camera_vertices - centre, axis=1).mean())
    return HeadFrame(rotation=np.stack([x, y, z]), centre=centre, scale=scale)


@dataclass(frozen=True)
class FaceGeometry:
    """One photo's fitted face mesh."""

    camera_vertices: np.ndarray  # (468, 3) float64, camera frame, pixels
    camera_normals: np.ndarray  # (468, 3) unit, camera frame
    frame: HeadFrame
    image_size: tuple[int, int]  # (height, width) of the photo the mesh was fitted in

    @property
    def pixel_xy(self) -> np.ndarray:
        """Projected vertex positions ``(468, 2)`` in continuous pixel coordinates (x, y-down)."""
        return np.stack([self.camera_vertices[:, 0], -self.camera_vertices[:, 1]], axis=1)

    @property
    def depth(self) -> np.ndarray:
        """Distance-like depth ``(468,)``: larger = farther from the camera."""
        return -self.camera_vertices[:, 2]

    @property
    def object_vertices(self) -> np.ndarray:
        return self.frame.to_object(self.camera_vertices)

    @property
    def object_normals(self) -> np.ndarray:
        return self.frame.directions_to_object(self.camera_normals)


def fit_face_geometry(landmarks: np.ndarray, image_size: tuple[int, int]) -> FaceGeometry:
    """Face mesh in camera space from ``(478, 3)`` landmarks in pixels (see mesh.landmarks)."""
    lm = np.asarray(landmarks, dtype=np.float64)[:N_VERTICES]
    verts = np.stack([lm[:, 0], -lm[:, 1], -lm[:, 2]], axis=1)
    faces = load_face_topology().faces
    normals = vertex_normals(verts, faces)
    return FaceGeometry(verts, normals, head_frame(verts), image_size)
