"""Face shapes for synthetic identities: real landmark sets, smooth identity deformations,
expressions, head poses and the orthographic projection to 478 landmarks.

Shapes are ``(478, 3)`` float64 arrays in the head frame of ``mesh.geometry`` (x toward
the subject's left, y up, z out of the face; unit = the mean distance of the 468 mesh
vertices from their centroid, so a face is about 3.3 units from chin to upper forehead).
Rows 468..477 are MediaPipe's iris points (468 and 473: the centres of the subject's right
and left iris, then four points on each iris outline).

Validity: every triangle of the 468-vertex mesh is counter-clockwise (front-facing) in the
frontal view (x, y) with some margin; ``flipped_triangles`` counts the ones that are not.
The committed base shapes are repaired to satisfy it (see ``data/README.md``), and every
deformation here is checked against it and scaled back when it fails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources

import numpy as np

from hifialbedo.mesh.topology import FOREHEAD_TOP, N_VERTICES, load_face_topology

N_POINTS = 478
# Iris points: centre then outline (medial, top, lateral, bottom), for the subject's right
# eye (image left on a frontal face) and left eye.
RIGHT_IRIS, LEFT_IRIS = (468, 469, 470, 471, 472), (473, 476, 475, 474, 477)
# Eyelids along the eye openings (MediaPipe indices), upper lid paired with the lower lid below it.
RIGHT_UPPER_LID = (246, 161, 160, 159, 158, 157, 173)
RIGHT_LOWER_LID = (7, 163, 144, 145, 153, 154, 155)
LEFT_UPPER_LID = (466, 388, 387, 386, 385, 384, 398)
LEFT_LOWER_LID = (249, 390, 373, 374, 380, 381, 382)
MOUTH_CORNERS = (61, 291, 78, 308)
NOSE_TIP, MOUTH_UPPER, MOUTH_LOWER = 1, 13, 14
# Minimum frontal signed area of a triangle, relative to the median: below it, it counts as flipped.
MIN_RELATIVE_AREA = 0.02
JAW_DROP = 0.3  # how far (head units) the lower lip drops at mouth_open = 1


def mirror_indices() -> np.ndarray:
    """The mirror map of all 478 points (the mesh's map plus the irises), ``(478,)`` int64."""
    mirror = np.arange(N_POINTS)
    mirror[:N_VERTICES] = load_face_topology().mirror
    for a, b in zip(RIGHT_IRIS, LEFT_IRIS):
        mirror[a], mirror[b] = b, a
    return mirror


def mirror_shape(shape: np.ndarray) -> np.ndarray:
    """The mirror image of a shape across the head's midplane (x -> -x), points relabelled."""
    out = shape[mirror_indices()].copy()
    out[:, 0] *= -1.0
    return out


def frontal_areas(shape: np.ndarray) -> np.ndarray:
    """Twice the signed area of each triangle in the frontal view (x, y up), ``(852,)``:
    positive = counter-clockwise as seen from the camera (front-facing)."""
    f = load_face_topology().faces
    p = shape[:N_VERTICES, :2]
    e1 = p[f[:, 1]] - p[f[:, 0]]
    e2 = p[f[:, 2]] - p[f[:, 0]]
    return e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]


def flipped_triangles(shape: np.ndarray, *, min_relative_area: float = MIN_RELATIVE_AREA) -> int:
    """Number of triangles that are not front-facing (with margin) in the frontal view."""
    a = frontal_areas(shape)
    return int((a <= min_relative_area * np.median(np.abs(a))).sum())


def repair_frontal(shape: np.ndarray, *, min_relative_area: float = 0.05, steps: int = 3000) -> np.ndarray:
    """Nudge x and y of a shape (least squares) until every triangle is front-facing in the
    frontal view with a margin; z is kept. Used to build the committed base shapes."""
    import torch

    p0 = torch.as_tensor(shape[:N_VERTICES, :2], dtype=torch.float64)
    p = p0.clone().requires_grad_(True)
    f = torch.as_tensor(load_face_topology().faces)
    target = min_relative_area * float(np.median(np.abs(frontal_areas(shape))))
    opt = torch.optim.Adam([p], lr=1e-3)
    for _ in range(steps):
        e1 = p[f[:, 1]] - p[f[:, 0]]
        e2 = p[f[:, 2]] - p[f[:, 0]]
        area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
        violation = torch.relu(1.5 * target - area)
        if float(violation.detach().max()) <= 0.5 * target:
            break
        loss = ((p - p0) ** 2).sum() + 1e4 * (violation**2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    out = shape.copy()
    out[:N_VERTICES, :2] = p.detach().numpy()
    return out


def build_base_shapes(photos: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Head-frame shapes ``(n, 478, 3)`` from ``(image, landmarks (478, 3))`` pairs, repaired.

    This is how ``data/base_shapes.npz`` was made (see its README); the package only reads it.
    """
    from hifialbedo.mesh.geometry import fit_face_geometry

    shapes = []
    for image, landmarks in photos:
        geometry = fit_face_geometry(landmarks, image.shape[:2])
        verts = np.stack([landmarks[:, 0], -landmarks[:, 1], -landmarks[:, 2]], axis=1)
        shapes.append(repair_frontal(geometry.frame.to_object(verts)))
    return np.stack(shapes)


@lru_cache(maxsize=1)
def base_shapes() -> np.ndarray:
    """The committed real landmark sets in the head frame, ``(n, 478, 3)`` float64 (read-only)."""
    with resources.files("hifialbedo.synth.data").joinpath("base_shapes.npz").open("rb") as f:
        shapes = np.load(f)["shapes"].astype(np.float64)
    shapes.setflags(write=False)
    return shapes


def _gaussian_weights(points: np.ndarray, centre: np.ndarray, sigma: float) -> np.ndarray:
    d2 = ((points - centre) ** 2).sum(axis=1)
    return np.exp(-0.5 * d2 / sigma**2)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


@dataclass(frozen=True)
class ShapeParams:
    """What made an identity's neutral shape (recorded in the dataset)."""

    base_weights: tuple[float, ...]  # convex weights of the base shapes and their mirror images
    scale: tuple[float, float, float]  # anisotropic scale of x, y, z
    nose_width: float
    nose_depth: float
    mouth_width: float
    chin_length: float
    mouth_closure: float = 0.0  # fraction of the mixed base's mouth opening closed


def _apply_identity(base: np.ndarray, rng: np.random.Generator, amount: float) -> tuple[np.ndarray, ShapeParams]:
    """Random smooth identity deformation of ``base`` scaled by ``amount`` (1 = full)."""
    shape = base.copy()
    pts = base
    # Smooth symmetric bumps (each with its mirror twin) plus a little asymmetry.
    disp = np.zeros_like(shape)
    for symmetric in (True,) * 6 + (False,) * 2:
        centre = pts[rng.integers(N_VERTICES)]
        sigma = rng.uniform(0.35, 0.8)
        vec = rng.normal(0.0, 1.0, 3) * np.array([0.045, 0.045, 0.07])
        if not symmetric:
            vec *= 0.3
        disp += _gaussian_weights(pts, centre, sigma)[:, None] * vec
        if symmetric:
            twin_centre = centre * np.array([-1.0, 1.0, 1.0])
            disp += _gaussian_weights(pts, twin_centre, sigma)[:, None] * (vec * np.array([-1.0, 1.0, 1.0]))
    shape += amount * disp

    nose_w = 1.0 + amount * rng.uniform(-0.15, 0.2)
    nose_d = 1.0 + amount * rng.uniform(-0.15, 0.15)
    w = _gaussian_weights(pts, pts[NOSE_TIP] - np.array([0.0, 0.1, 0.3]), 0.35)
    shape[:, 0] += w * (nose_w - 1.0) * (pts[:, 0] - pts[NOSE_TIP, 0])
    shape[:, 2] += w * (nose_d - 1.0) * (pts[:, 2] - pts[NOSE_TIP, 2] + 0.6)

    mouth_centre = 0.5 * (pts[MOUTH_UPPER] + pts[MOUTH_LOWER])
    mouth_w = 1.0 + amount * rng.uniform(-0.1, 0.12)
    w = _gaussian_weights(pts, mouth_centre, 0.4)
    shape[:, 0] += w * (mouth_w - 1.0) * (pts[:, 0] - mouth_centre[0])

    chin = amount * rng.uniform(-0.12, 0.12)
    below = _smoothstep((mouth_centre[1] - 0.15 - pts[:, 1]) / 0.6)
    shape[:, 1] -= chin * below * np.clip((mouth_centre[1] - pts[:, 1]) / 1.0, 0, None)

    scale = 1.0 + amount * np.array([rng.uniform(-0.08, 0.08), rng.uniform(-0.07, 0.07), rng.uniform(-0.15, 0.15)])
    shape *= scale
    shape -= shape[:N_VERTICES].mean(axis=0)
    params = ShapeParams((), tuple(float(s) for s in scale), float(nose_w), float(nose_d), float(mouth_w), float(chin))
    return shape, params


def sample_identity_shape(rng: np.random.Generator, *, max_tries: int = 6) -> tuple[np.ndarray, ShapeParams]:
    """A random neutral face shape ``(478, 3)`` (head frame) and what made it.

    A convex mix of the base shapes and their mirror images (Dirichlet weights), then smooth
    random deformations (symmetric Gaussian bumps, nose, mouth and chin changes, anisotropic
    scale). Scaled back until no triangle flips in the frontal view.
    """
    bases = base_shapes()
    stack = np.concatenate([bases, np.stack([mirror_shape(b) for b in bases])])
    weights = rng.dirichlet(np.ones(len(stack)))
    base = np.tensordot(weights, stack, axes=1)
    base -= base[:N_VERTICES].mean(axis=0)
    # One base photo smiles with an open mouth: close the neutral mouth most of the way
    # (expressions open it again).
    gap = float(base[MOUTH_UPPER, 1] - base[MOUTH_LOWER, 1])
    closure = float(rng.uniform(0.5, 1.0)) if gap > 0.01 else 0.0
    if closure:
        closed = apply_expression(base, Expression(mouth_open=-closure * gap / JAW_DROP))
        if flipped_triangles(closed) == 0:
            base = closed
        else:
            closure = 0.0
    amount = 1.0
    for _ in range(max_tries):
        shape, params = _apply_identity(base, np.random.default_rng(rng.integers(2**63)), amount)
        if flipped_triangles(shape) == 0:
            break
        amount *= 0.5
    else:
        shape, params = base.copy(), ShapeParams((), (1.0, 1.0, 1.0), 1.0, 1.0, 1.0, 0.0)
    return shape, replace(params, base_weights=tuple(float(w) for w in weights), mouth_closure=closure)


@dataclass(frozen=True)
class Expression:
    """Expression amplitudes (0 = neutral)."""

    smile: float = 0.0  # 0..1: mouth corners up and out, cheeks raised
    mouth_open: float = 0.0  # 0..1: jaw drop
    brow_raise: float = 0.0  # -0.5..1: negative = frown (brows down and together)
    squint: float = 0.0  # 0..0.7: upper lids down (fraction of the eye opening), lower lids up a little
    gaze: tuple[float, float] = (0.0, 0.0)  # iris shift, head units (x, y)

    def scaled(self, k: float) -> Expression:
        return Expression(
            self.smile * k, self.mouth_open * k, self.brow_raise * k, self.squint * k, (self.gaze[0] * k, self.gaze[1] * k)
        )


def sample_expression(rng: np.random.Generator, *, strength: float = 1.0) -> Expression:
    """A random expression; about a third of them near neutral, the mouth open in about a
    third. ``strength`` scales all."""
    k = 0.25 * strength if rng.random() < 0.35 else strength
    opening = float(rng.uniform(0.0, 1.0) ** 2) if rng.random() < 0.35 else 0.0
    return Expression(
        smile=k * float(rng.uniform(0.0, 1.0) ** 1.5),
        mouth_open=k * opening,
        brow_raise=k * float(rng.uniform(-0.5, 1.0)),
        squint=k * float(rng.uniform(0.0, 0.6) ** 1.5 / 0.6**0.5),
        gaze=(float(rng.uniform(-0.04, 0.04)), float(rng.uniform(-0.025, 0.02))),
    )


@lru_cache(maxsize=1)
def _vertex_adjacency():
    """Row-normalised vertex adjacency of the mesh (sparse ``(468, 468)``): neighbour means."""
    from scipy import sparse

    f = load_face_topology().faces
    rows = np.concatenate([f[:, 0], f[:, 1], f[:, 2], f[:, 1], f[:, 2], f[:, 0]])
    cols = np.concatenate([f[:, 1], f[:, 2], f[:, 0], f[:, 0], f[:, 1], f[:, 2]])
    adj = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(N_VERTICES, N_VERTICES))
    adj.data[:] = 1.0
    return sparse.diags(1.0 / np.asarray(adj.sum(axis=1)).ravel()) @ adj


UPPER_LIP_OUTLINE = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191, 78)
LOWER_LIP_OUTLINE = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95, 78)


def _lip_vertices(pts: np.ndarray, *, lower: bool) -> np.ndarray:
    """Indices of the mesh vertices on or inside the lower (upper) lip's outline, frontal view."""
    import cv2

    outline = pts[list(LOWER_LIP_OUTLINE if lower else UPPER_LIP_OUTLINE), :2].astype(np.float32)
    inside = [i for i in range(N_VERTICES) if cv2.pointPolygonTest(outline, (float(pts[i, 0]), float(pts[i, 1])), True) >= -0.02]
    return np.array(sorted(set(inside) | set(LOWER_LIP_OUTLINE if lower else UPPER_LIP_OUTLINE)), dtype=np.int64)


def apply_expression(shape: np.ndarray, expression: Expression) -> np.ndarray:
    """The shape ``(478, 3)`` with an expression: smooth local displacements around the
    mouth, cheeks, brows and eyelids (weights fall off with distance in the head frame)."""
    pts = shape
    out = shape.copy()
    e = expression
    mouth_mid = 0.5 * (pts[MOUTH_UPPER] + pts[MOUTH_LOWER])
    mouth_half_width = 0.5 * abs(pts[291, 0] - pts[61, 0])
    if e.smile:
        for corner, side in ((61, -1.0), (291, 1.0)):
            w = _gaussian_weights(pts, pts[corner], 0.28)
            out += e.smile * w[:, None] * np.array([0.1 * side, 0.11, -0.05])
            cheek = pts[corner] + np.array([0.25 * side, 0.45, 0.0])
            w = _gaussian_weights(pts, cheek, 0.35)
            out += e.smile * w[:, None] * np.array([0.02 * side, 0.05, 0.04])
    if e.mouth_open:
        # The jaw: the lower lip and everything below the mouth corners move down and back;
        # the weight never grows upward, so the skin stretches and never folds over.
        corner_y = 0.5 * (pts[61, 1] + pts[291, 1])
        below = _smoothstep((corner_y + 0.05 - pts[:, 1]) / 0.15)
        lateral = np.exp(-((np.maximum(np.abs(pts[:, 0]) - mouth_half_width, 0.0) / 0.6) ** 2))
        w = below * lateral
        lower, upper = _lip_vertices(pts, lower=True), _lip_vertices(pts, lower=False)
        w[lower] = 1.0
        w[upper] = 0.0
        w[list(MOUTH_CORNERS)] = 0.5
        # Relax the weights around the mouth corners over the mesh (the lips' middles stay pinned).
        centre_x = 0.5 * (pts[61, 0] + pts[291, 0])
        pinned = np.zeros(N_VERTICES, bool)
        pinned[upper] = True
        pinned[lower] = np.abs(pts[lower, 0] - centre_x) < 0.5 * mouth_half_width
        near = np.linalg.norm(pts[:N_VERTICES, :2] - mouth_mid[:2], axis=1) < 1.6 * mouth_half_width
        free = near & ~pinned
        neighbours = _vertex_adjacency()
        for _ in range(30):
            w_mesh = w[:N_VERTICES]
            w_mesh[free] = 0.5 * w_mesh[free] + 0.5 * (neighbours @ w_mesh)[free]
        w[N_VERTICES:] = 0.0
        out += e.mouth_open * w[:, None] * np.array([0.0, -JAW_DROP, -JAW_DROP / 3])
    if e.brow_raise:
        for centre_ids, side in (((46, 53, 52, 65, 55), -1.0), ((276, 283, 282, 295, 285), 1.0)):
            centre = pts[list(centre_ids)].mean(axis=0)
            w = _gaussian_weights(pts, centre, 0.3)
            if e.brow_raise > 0:
                out += e.brow_raise * w[:, None] * np.array([0.0, 0.1, 0.0])
            else:
                out += -e.brow_raise * w[:, None] * np.array([-0.04 * side, -0.07, 0.01])
    if e.squint:
        for upper, lower in ((RIGHT_UPPER_LID, RIGHT_LOWER_LID), (LEFT_UPPER_LID, LEFT_LOWER_LID)):
            up, lo = pts[list(upper)], pts[list(lower)]
            gap = (up - lo)[:, 1].clip(0.0, None)
            # Each vertex follows its nearest upper-lid vertex, with a falloff.
            d = np.linalg.norm(pts[:, None, :] - up[None], axis=2)
            nearest = d.argmin(axis=1)
            w = np.exp(-0.5 * (d.min(axis=1) / 0.07) ** 2)
            w[(pts[:, 1] < up[nearest, 1] - 0.02)] = 0.0  # nothing below the upper lid moves with it
            w[list(upper)] = 1.0
            w[N_VERTICES:] = 0.0
            out[:, 1] -= e.squint * w * gap[nearest]
            dl = np.linalg.norm(pts[:, None, :] - lo[None], axis=2)
            wl = np.exp(-0.5 * (dl.min(axis=1) / 0.06) ** 2)
            wl[list(lower)] = 1.0
            wl[N_VERTICES:] = 0.0
            out[:, 1] += 0.2 * e.squint * wl * gap[dl.argmin(axis=1)]
    if e.gaze != (0.0, 0.0):
        out[N_VERTICES:, 0] += e.gaze[0]
        out[N_VERTICES:, 1] += e.gaze[1]
    return out


def expressed_shape(shape: np.ndarray, expression: Expression, *, max_tries: int = 5) -> tuple[np.ndarray, Expression]:
    """Apply an expression, halving it until the mesh stays valid; returns the shape and the
    expression actually applied."""
    for _ in range(max_tries):
        out = apply_expression(shape, expression)
        if flipped_triangles(out) == 0:
            return out, expression
        expression = expression.scaled(0.5)
    return shape.copy(), Expression()


@dataclass(frozen=True)
class Pose:
    """A head pose and its placement in a square image of side ``image_size`` pixels.

    Camera frame: x right, y up, z toward the camera (orthographic). The head is rotated by
    R = Rz(roll) Rx(pitch) Ry(yaw), then scaled by ``scale`` (pixels per head unit) and
    placed with its head-frame origin at pixel ``centre`` (x right, y down).
    Positive yaw turns the face toward the image's right, positive pitch tilts it down,
    positive roll turns it counter-clockwise in the image.
    """

    yaw: float  # degrees
    pitch: float  # degrees
    roll: float  # degrees
    scale: float  # pixels per head unit
    centre: tuple[float, float]  # pixels (x right, y down)
    image_size: int

    @property
    def rotation(self) -> np.ndarray:
        """``(3, 3)``: camera = rotation @ head."""
        y, p, r = (math.radians(a) for a in (self.yaw, self.pitch, self.roll))
        ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
        rx = np.array([[1, 0, 0], [0, math.cos(p), math.sin(p)], [0, -math.sin(p), math.cos(p)]])
        rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
        return rz @ rx @ ry

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """Head-frame points ``(N, 3)`` -> camera frame ``(N, 3)`` (pixels; y up)."""
        cam = self.scale * points @ self.rotation.T
        return cam + np.array([self.centre[0], -self.centre[1], 0.0])

    def as_dict(self) -> dict:
        return {
            "yaw": self.yaw,
            "pitch": self.pitch,
            "roll": self.roll,
            "scale": self.scale,
            "centre": list(self.centre),
            "image_size": self.image_size,
            "rotation": self.rotation.tolist(),
        }


def sample_pose(
    rng: np.random.Generator,
    image_size: int,
    *,
    max_yaw: float = 35.0,
    max_pitch: float = 15.0,
    max_roll: float = 10.0,
    face_fraction: tuple[float, float] = (0.42, 0.58),
) -> Pose:
    """A random pose: yaw, pitch, roll uniform in +-max; the face (chin to upper forehead,
    about 3.3 head units) spans ``face_fraction`` of the image height; the centre is
    jittered but keeps the face inside the image."""
    yaw = float(rng.uniform(-max_yaw, max_yaw))
    pitch = float(rng.uniform(-max_pitch, max_pitch))
    roll = float(rng.uniform(-max_roll, max_roll))
    scale = float(rng.uniform(*face_fraction)) * image_size / 3.3
    room = max(0.5 * image_size - 1.9 * scale, 0.0)
    cx = 0.5 * image_size + float(rng.uniform(-0.6, 0.6)) * room
    cy = 0.5 * image_size + float(rng.uniform(-0.4, 0.6)) * room  # a little lower: room for hair
    return Pose(yaw, pitch, roll, scale, (cx, cy), image_size)


def project_landmarks(shape: np.ndarray, pose: Pose) -> np.ndarray:
    """Orthographic landmarks ``(478, 3)`` in pixels, in MediaPipe's convention (x right,
    y down, z smaller = nearer, zero at the mesh's mean depth): the input of
    ``fit_face_geometry``, which maps them back to camera vertices (x, -y, -z)."""
    cam = pose.to_camera(shape)
    z = -cam[:, 2]
    return np.stack([cam[:, 0], -cam[:, 1], z - z[:N_VERTICES].mean()], axis=1)


@lru_cache(maxsize=1)
def boundary_loops() -> dict[str, np.ndarray]:
    """The mesh's boundary loops, each an ordered ``(k,)`` vertex array: ``oval`` (the outline),
    ``right_eye`` and ``left_eye`` (the eye openings) and ``mouth`` (between the lips)."""
    topo = load_face_topology()
    count: dict[tuple[int, int], int] = {}
    for tri in topo.faces.tolist():
        for a, b in ((tri[0], tri[1]), (tri[1], tri[2]), (tri[2], tri[0])):
            key = (min(a, b), max(a, b))
            count[key] = count.get(key, 0) + 1
    neighbours: dict[int, list[int]] = {}
    for (a, b), n in count.items():
        if n == 1:
            neighbours.setdefault(a, []).append(b)
            neighbours.setdefault(b, []).append(a)
    loops: dict[str, np.ndarray] = {}
    seen: set[int] = set()
    for start in sorted(neighbours):
        if start in seen:
            continue
        loop, prev, cur = [start], -1, start
        while True:
            nxt = next(n for n in neighbours[cur] if n != prev)
            if nxt == start:
                break
            loop.append(nxt)
            prev, cur = cur, nxt
        seen.update(loop)
        members = set(loop)
        if FOREHEAD_TOP in members:
            name = "oval"
        elif MOUTH_UPPER in members:
            name = "mouth"
        elif 33 in members:
            name = "right_eye"
        else:
            name = "left_eye"
        loops[name] = np.array(loop, dtype=np.int64)
    return loops
