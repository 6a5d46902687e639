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
