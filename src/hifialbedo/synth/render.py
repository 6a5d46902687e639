"""Rendering a synthetic photo: the face mesh through the project's renderer, plus a head
proxy (ellipsoid head with hair, neck, long hair), eyes and mouth in the mesh's openings,
a Blinn-Phong specular lobe, a background, exposure and sensor noise.

Image formation, linear RGB, per pixel of the face mesh (the ``mask``):

    linear = albedo_view * shading + specular,   shading = max(sh_shading(normals, sh), 0)

with ``sh`` the light after exposure. Everything outside the mask (background, head, hair,
eyes, mouth) is there to make the photo look like a photo; it carries no ground truth.
The photo is ``clip(linear + noise, 0, 1)`` encoded as 8-bit sRGB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from hifialbedo.mesh.geometry import fit_face_geometry
from hifialbedo.mesh.topology import uv_regions
from hifialbedo.ops.colour import LUMA_WEIGHTS, linear_to_srgb_uint8, srgb_to_linear
from hifialbedo.ops.sh import sh_shading
from hifialbedo.render.image_raster import paste_window, rasterize_in_image
from hifialbedo.render.view_shading import sample_uv_map, view_maps
from hifialbedo.synth.albedo import SynthAlbedo, fractal_noise, smooth_noise
from hifialbedo.synth.lighting import SynthLight
from hifialbedo.synth.shape import FOREHEAD_TOP, LEFT_IRIS, RIGHT_IRIS, Pose, boundary_loops, project_landmarks

CHIN, RIGHT_EAR_SIDE, LEFT_EAR_SIDE, NOSE_TIP = 152, 234, 454, 1


@dataclass(frozen=True)
class HeadProxy:
    """The rest of the head, around the face mesh (head frame, head units)."""

    centre: tuple[float, float, float]  # ellipsoid of the skull
    radii: tuple[float, float, float]
    skin: tuple[float, float, float]  # linear RGB albedo of the head and neck skin
    hair: tuple[float, float, float]  # linear RGB hair albedo
    style: str  # "bald", "short" or "long"
    hairline: tuple[float, float, float]  # hair where q_y > this, front / side / back (unit-sphere coords)
    thickness: float  # hair shell, relative to the skull radii
    long_length: float  # long hair: how far below the chin it ends, head units
    neck_radius: float  # head units
    neck_length: float  # chin to collar, head units
    clothing: tuple[float, float, float]  # linear RGB albedo
    seed: int  # for the hair strands and fabric

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _clothing_colour(rng: np.random.Generator) -> np.ndarray:
    import colorsys

    h, sat, v = rng.uniform(), rng.uniform(0.0, 0.7), rng.uniform(0.1, 0.9)
    return srgb_to_linear(np.array(colorsys.hsv_to_rgb(h, sat, v)))


def make_head_proxy(shape: np.ndarray, albedo: SynthAlbedo, rng: np.random.Generator) -> HeadProxy:
    """A head proxy sized from a neutral shape ``(478, 3)``: skull ellipsoid, hair style and
    hairline, neck; skin colour = the mean of the albedo's skin region."""
    width = shape[LEFT_EAR_SIDE, 0] - shape[RIGHT_EAR_SIDE, 0]
    height = shape[FOREHEAD_TOP, 1] - shape[CHIN, 1]
    y_ear = 0.5 * (shape[RIGHT_EAR_SIDE, 1] + shape[LEFT_EAR_SIDE, 1])
    y_top = shape[FOREHEAD_TOP, 1] + rng.uniform(0.27, 0.33) * height
    y_bottom = y_ear - 0.25 * height
    cy, ry = 0.5 * (y_top + y_bottom), 0.5 * (y_top - y_bottom)
    rx = rng.uniform(1.0, 1.06) * 0.5 * width / math.sqrt(1.0 - ((y_ear - cy) / ry) ** 2)
    z_front = shape[FOREHEAD_TOP, 2] - 0.1
    z_back = shape[NOSE_TIP, 2] - rng.uniform(1.15, 1.3) * height
    cz, rz = 0.5 * (z_front + z_back), 0.5 * (z_front - z_back)
    skin_mask = uv_regions(albedo.albedo.shape[0])["skin"]
    skin = albedo.albedo[skin_mask].mean(axis=0) * rng.uniform(0.9, 1.0)
    grey = albedo.hair_name == "grey"
    style = str(rng.choice(["bald", "short", "long"], p=[0.1, 0.5, 0.4] if grey else [0.03, 0.5, 0.47]))
    face_top_q = (shape[FOREHEAD_TOP, 1] - cy) / ry
    front = face_top_q - rng.uniform(0.02, 0.3) if style != "bald" else 1.5
    side = rng.uniform(-0.75, -0.45) if style == "long" else rng.uniform(-0.55, -0.25)
    hairline = (float(front), float(side), float(rng.uniform(-0.95, -0.7)))
    return HeadProxy(
        centre=(0.0, float(cy), float(cz)),
        radii=(float(rx), float(ry), float(rz)),
        skin=tuple(float(c) for c in skin),
        hair=albedo.hair_colour,
        style=style,
        hairline=hairline,
        thickness=float({"bald": 0.02, "short": rng.uniform(0.03, 0.1), "long": rng.uniform(0.06, 0.14)}[style]),
        long_length=float(rng.uniform(0.0, 2.5)),
        neck_radius=float(rng.uniform(0.36, 0.42) * width),
        neck_length=float(rng.uniform(0.5, 1.0)),
        clothing=tuple(float(c) for c in _clothing_colour(rng)),
        seed=int(rng.integers(2**31)),
    )


@dataclass(frozen=True)
class SpecularParams:
    """Blinn-Phong: specular = intensity * mask * light colour * (n.h)^shininess * max(n.l, 0)."""

    intensity: float
    shininess: float


@dataclass(frozen=True)
class SynthRender:
    """One rendered photo and its ground truth, all ``(R, R, ...)`` in the photo's pixel grid."""

    photo: np.ndarray  # (R, R, 3) uint8 sRGB
    albedo_view: np.ndarray  # (R, R, 3) float32 linear RGB, 0 outside the mask
    mask: np.ndarray  # (R, R) bool, pixels of the face mesh
    normals: np.ndarray  # (R, R, 3) float32 unit camera-frame normals, 0 outside the mask
    shading: np.ndarray  # (R, R, 3) float32 = max(sh_shading(normals, light.sh), 0) in the mask
    specular: np.ndarray  # (R, R, 3) float32 linear RGB, 0 outside the mask
    landmarks: np.ndarray  # (478, 3) float64 pixels (x right, y down, z pixels, smaller = nearer)
    light: SynthLight  # after exposure
    exposure: float  # the factor the raw light was scaled by
    info: dict = field(default_factory=dict)  # background, noise, ... (JSON-able)


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Camera-frame X, Y (y up) of pixel centres."""
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    return cols, -rows


def _ray_ellipsoid(pose: Pose, centre: np.ndarray, radii: np.ndarray, size: int):
    """Orthographic rays (toward -z from the camera) against an ellipsoid in the head frame.

    Returns (coverage (R, R) in [0, 1] with a one-pixel soft edge, unit-sphere coordinates
    q (R, R, 3) of the nearest hit, camera-frame normals (R, R, 3))."""
    X, Y = _pixel_grid(size)
    rot = pose.rotation
    origin_cam = np.stack([X - pose.centre[0], Y + pose.centre[1], np.zeros_like(X)], axis=-1)
    o = origin_cam @ rot / pose.scale  # head frame (rot is orthonormal: R^T p = p @ R)
    d = rot[2] / pose.scale  # head-frame direction of camera +z
    oc = (o - centre) / radii
    dd = d / radii
    a = float(dd @ dd)
    b = 2.0 * oc @ dd
    c = (oc * oc).sum(-1) - 1.0
    disc = b * b - 4 * a * c
    t = (-b + np.sqrt(np.maximum(disc, 0.0))) / (2 * a)
    q = oc + t[..., None] * dd
    n_head = _unit(q / radii)
    normals = n_head @ rot.T
    # Soft edge: t is in pixels along the ray, so sqrt(disc) / a is the chord in pixels; a
    # chord c at depth delta inside the silhouette of a radius-rho outline has c^2 = 8 rho delta.
    chord = np.sqrt(np.maximum(disc, 0.0)) / a
    rho = pose.scale * float(radii.mean())
    coverage = np.where(disc > 0, np.clip(chord**2 / (8.0 * rho), 0.0, 1.0), 0.0)
    return coverage, q, normals


def _hair_mask(q: np.ndarray, hairline: tuple[float, float, float], style: str, wobble: np.ndarray) -> np.ndarray:
    front, side, back = hairline
    qz = np.clip(q[..., 2], -1.0, 1.0)
    h = np.where(qz >= 0, side + (front - side) * _smoothstep(qz), side + (back - side) * _smoothstep(-qz))
    if style == "short":  # cut around the ears
        h = h + 0.3 * np.exp(-(((qz - 0.05) / 0.2) ** 2)) * (np.abs(q[..., 0]) > 0.5)
    mask = q[..., 1] > h + wobble
    if style == "bald":  # a fringe around the back and sides
        mask &= q[..., 1] < 0.1 + wobble
    return mask


def _strands(seed: int, q: np.ndarray) -> np.ndarray:
    """Hair strand brightness modulation at unit-sphere points: noise stretched along meridians."""
    rng = np.random.default_rng(seed)
    tex = 0.5 * smooth_noise(rng, 256, (4, 48)) + 0.7 * smooth_noise(rng, 256, (10, 256))
    tex = cv2.resize(tex, (256, 64), interpolation=cv2.INTER_AREA)  # 64 rows of elevation, 256 of azimuth
    phi = (np.arctan2(q[..., 0], q[..., 2]) / (2 * math.pi) + 0.5) * 256 - 0.5
    theta = (np.arcsin(np.clip(q[..., 1], -1, 1)) / math.pi + 0.5) * 64 - 0.5
    return cv2.remap(tex, phi.astype(np.float32), theta.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)


def _shade(normals: np.ndarray, sh: np.ndarray) -> np.ndarray:
    return np.maximum(sh_shading(normals.astype(np.float32), sh.astype(np.float32)), 0.0)


def _blinn_phong(normals: np.ndarray, light: SynthLight, shininess: float) -> np.ndarray:
    """(n.h)^shininess * max(n.l, 0), ``(...,)``; view direction +z."""
    h = _unit(light.direction + np.array([0.0, 0.0, 1.0]))
    ndoth = np.clip(normals @ h, 0.0, 1.0)
    ndotl = np.clip(normals @ light.direction, 0.0, 1.0)
    return (ndoth**shininess * ndotl).astype(np.float32)


def _background(rng: np.random.Generator, size: int) -> tuple[np.ndarray, dict]:
    """Smooth random background ``(R, R, 3)`` linear RGB: a two-colour gradient, low-frequency
    noise and a few soft blobs (out-of-focus lights and objects)."""
    import colorsys

    hue = rng.uniform()
    level = float(np.exp(rng.uniform(np.log(0.03), np.log(0.6))))
    colours = []
    for k in range(2):
        h = (hue + rng.normal(0, 0.12)) % 1.0
        s = rng.uniform(0.0, 0.55)
        v = rng.uniform(0.3, 1.0)
        colours.append(srgb_to_linear(np.array(colorsys.hsv_to_rgb(h, s, v))))
    c0, c1 = colours
    angle = rng.uniform(0, 2 * math.pi)
    X, Y = _pixel_grid(size)
    t = ((X / size - 0.5) * math.cos(angle) + (Y / size + 0.5) * math.sin(angle)) + 0.5
    t = np.clip(t * rng.uniform(0.5, 1.5), 0.0, 1.0)[..., None]
    bg = c0 * (1 - t) + c1 * t
    noise = fractal_noise(rng, 64, [(3, 0.6), (6, 0.4), (12, 0.2)])
    bg = bg * np.exp(0.25 * cv2.resize(noise, (size, size), interpolation=cv2.INTER_LINEAR))[..., None]
    n_blobs = int(rng.integers(0, 5))
    for _ in range(n_blobs):
        cx, cy = rng.uniform(0, size, 2)
        r = rng.uniform(0.05, 0.3) * size
        col = srgb_to_linear(np.array(colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0, 0.6), 1.0)))
        w = np.exp(-0.5 * ((X - cx) ** 2 + (Y + cy) ** 2) / r**2)
        bg = bg + rng.uniform(0.2, 1.0) * w[..., None] * col
    bg = bg / max(float((bg @ LUMA_WEIGHTS).mean()), 1e-6) * level
    return bg.astype(np.float32), {"level": level, "hue": float(hue), "blobs": n_blobs}


def _fill_polygon(size: int, points_xy: np.ndarray) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round((points_xy - 0.5) * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool)


def _draw_eyes(image, covered, landmarks, camera, pose, light, eye_colour, rng):
    """Eyeballs (sclera, iris, pupil, catchlight) in the eye openings the mesh leaves."""
    size = image.shape[0]
    loops = boundary_loops()
    X, Y = _pixel_grid(size)
    forward = pose.rotation[:, 2]
    for loop, iris in (("right_eye", RIGHT_IRIS), ("left_eye", LEFT_IRIS)):
        hole = _fill_polygon(size, landmarks[loops[loop], :2])
        hole = cv2.dilate(hole.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~covered
        if not hole.any():
            continue
        rows, cols = np.nonzero(hole)
        c2 = landmarks[iris[0], :2]
        a_vec = 0.5 * (landmarks[iris[1], :2] - landmarks[iris[3], :2])  # medial - lateral
        b_vec = 0.5 * (landmarks[iris[2], :2] - landmarks[iris[4], :2])  # top - bottom
        basis = np.stack([a_vec, b_vec], axis=1)
        if abs(np.linalg.det(basis)) < 1e-6:
            continue
        p = np.stack([cols + 0.5, rows + 0.5], axis=1) - c2
        ab = p @ np.linalg.inv(basis).T
        r = np.linalg.norm(ab, axis=1)
        angle = np.arctan2(ab[:, 1], ab[:, 0])
        # Sphere normals of the eyeball (radius about twice the iris's).
        iris_cam = camera[list(iris)]
        iris_radius = float(np.linalg.norm(iris_cam[1:] - iris_cam[0], axis=1).mean())
        eye_r = 2.1 * iris_radius
        centre = iris_cam[0] - eye_r * forward
        dx = X[rows, cols] - centre[0]
        dy = Y[rows, cols] - centre[1]
        nz = np.sqrt(np.maximum(eye_r**2 - dx * dx - dy * dy, 0.05 * eye_r**2))
        n = _unit(np.stack([dx, dy, nz], axis=1))
        # Albedo: sclera, iris with radial streaks and a dark limbal ring, pupil.
        streak = 1.0 + 0.25 * np.sin(angle * 23 + rng.uniform(0, 6)) * np.sin(angle * 7 + rng.uniform(0, 6))
        iris_col = np.asarray(eye_colour) * streak[:, None] * (1.0 - 0.6 * _smoothstep((r - 0.75) / 0.25))[:, None]
        iris_col = iris_col * (1.0 + 0.5 * _smoothstep((0.75 - r) / 0.4))[:, None]
        sclera = np.array([0.52, 0.46, 0.42]) * rng.uniform(0.8, 1.05)
        albedo = np.where((r < 1.0)[:, None], iris_col, sclera)
        albedo = np.where((r < 0.42)[:, None], 0.012, albedo)
        # Lids shade the eyeball near the opening's edge, the upper lid more.
        dist = cv2.distanceTransform(np.pad(hole, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1][rows, cols]
        opening = max(float(np.sqrt(hole.sum())) * 0.5, 1.0)
        occlusion = 0.35 + 0.65 * _smoothstep(dist / (0.6 * opening))
        colour = albedo * _shade(n, light.sh) * occlusion[:, None]
        colour += 0.6 * light.colour * _blinn_phong(n, light, 400.0)[:, None]
        image[rows, cols] = colour


def _draw_mouth(image, covered, landmarks, light, pose):
    """Teeth and a dark mouth cavity in the mouth opening the mesh leaves."""
    size = image.shape[0]
    loop = boundary_loops()["mouth"]
    hole = _fill_polygon(size, landmarks[loop, :2])
    hole = cv2.dilate(hole.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~covered
    if not hole.any():
        return
    rows, cols = np.nonzero(hole)
    upper = landmarks[[78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308], :2]
    lower = landmarks[[78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308], :2]
    gap = float(np.linalg.norm(landmarks[13, :2] - landmarks[14, :2]))
    p = np.stack([cols + 0.5, rows + 0.5], axis=1)

    def dist_to(poly):
        a, b = poly[:-1], poly[1:]
        ab = b - a
        t = np.clip(((p[:, None] - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-9), 0, 1)
        return np.linalg.norm(p[:, None] - (a + t[..., None] * ab), axis=-1).min(axis=1)

    du, dl = dist_to(upper), dist_to(lower)
    corner_l, corner_r = landmarks[78, :2], landmarks[308, :2]
    axis = corner_r - corner_l
    s = ((p - corner_l) @ axis) / max(float(axis @ axis), 1e-9)
    # Lips barely parted show a dark line; teeth from about 3 pixels of opening.
    teeth = ((du < 0.45 * gap) | (dl < 0.3 * gap)) & (np.abs(s - 0.5) < 0.38) & (gap > 3.0)
    dark = np.array([0.03, 0.008, 0.008])
    tooth = np.array([0.38, 0.34, 0.27])
    albedo = np.where(teeth[:, None], tooth, dark)
    shade = _shade(np.broadcast_to(pose.rotation[:, 2], (len(rows), 3)), light.sh)
    depth = 1.0 - 0.6 * _smoothstep(np.abs(s - 0.5) / 0.5)
    image[rows, cols] = albedo * shade * (0.6 * depth)[:, None]


def render_photo(
    albedo: SynthAlbedo,
    shape: np.ndarray,
    head: HeadProxy | None,
    pose: Pose,
    light: SynthLight,
    *,
    exposure: float,
    specular: SpecularParams | None,
    noise_std: float,
    seed: int,
) -> SynthRender:
    """Render a face of UV ``albedo`` and head-frame ``shape (478, 3)`` (expression included)
    in ``pose`` under ``light``.

    ``exposure``: the 90th percentile of the face's shading luminance after exposure (the
    light is scaled to it; about 1 is a well-exposed photo, whatever the skin tone).
    ``specular``: None for a purely diffuse face. ``noise_std``: read-noise standard deviation (linear RGB), with shot noise on top; 0 for
    none. ``seed`` drives the background, eye detail and noise.
    """
    rng = np.random.default_rng(seed)
    size = pose.image_size
    landmarks = project_landmarks(shape, pose)
    geometry = fit_face_geometry(landmarks, (size, size))
    raster = rasterize_in_image(geometry, size, size)
    vm = view_maps(geometry, raster)
    m = vm.mask[..., None]
    albedo_win = sample_uv_map(albedo.albedo, vm.uv) * m
    raw_shading = _shade(vm.normals, light.sh) * m
    face_luma = (raw_shading[vm.mask] @ LUMA_WEIGHTS).astype(np.float64)
    k = exposure / max(float(np.percentile(face_luma, 90)), 1e-6) if face_luma.size else 1.0
    light = light.scaled(k)
    shading_win = _shade(vm.normals, light.sh) * m
    spec_win = np.zeros_like(shading_win)
    if specular is not None:
        spec_mask = sample_uv_map(albedo.specular_mask[..., None], vm.uv).reshape(vm.mask.shape)
        lobe = _blinn_phong(vm.normals, light, specular.shininess) * spec_mask * vm.mask
        spec_win = (specular.intensity * lobe)[..., None] * light.colour.astype(np.float32)

    mask = paste_window(raster, vm.mask)
    albedo_view = paste_window(raster, albedo_win.astype(np.float32))
    normals = paste_window(raster, (vm.normals * m).astype(np.float32))
    shading = paste_window(raster, shading_win.astype(np.float32))
    spec = paste_window(raster, spec_win.astype(np.float32))

    image, bg_info = _background(rng, size)
    camera = pose.to_camera(shape)
    if head is not None:
        _draw_head(image, head, pose, light, landmarks, size)
    image = np.where(mask[..., None], albedo_view * shading + spec, image)
    _draw_eyes(image, mask, landmarks, camera, pose, light, albedo.eye_colour, rng)
    _draw_mouth(image, mask, landmarks, light, pose)

    read = float(rng.uniform(0.0, noise_std)) if noise_std > 0 else 0.0
    if read > 0:
        sigma = read * np.sqrt(1.0 + 25.0 * np.clip(image, 0.0, None))
        image = image + sigma * rng.standard_normal(image.shape)
    photo = linear_to_srgb_uint8(np.clip(image, 0.0, 1.0).astype(np.float32))
    info = {"background": bg_info, "read_noise": read}
    return SynthRender(photo, albedo_view, mask, normals, shading, spec, landmarks, light, float(k), info)


def _draw_head(image, head: HeadProxy, pose: Pose, light: SynthLight, landmarks, size):
    """Paint torso, long hair, neck, skull skin and hair behind the face (painter's order)."""
    rng = np.random.default_rng(head.seed)
    centre = np.array(head.centre)
    radii = np.array(head.radii)
    X, Y = _pixel_grid(size)
    skin = np.asarray(head.skin)
    hair = np.asarray(head.hair)
    cover_s, _, n_s = _ray_ellipsoid(pose, centre, radii, size)
    shell = radii * (1.0 + head.thickness * np.array([1.0, 1.8, 1.0]))
    cover_h, q_h, n_h = _ray_ellipsoid(pose, centre, shell, size)
    wobble = 0.04 * cv2.resize(smooth_noise(rng, 64, 6), (size, size), interpolation=cv2.INTER_LINEAR)
    hair_alpha = cover_h * _hair_mask(q_h, head.hairline, head.style, wobble)

    # Torso: shoulders under a collar (a superellipse in the image), clothed, shaded as a
    # flattened ellipsoid.
    chin_y = -landmarks[CHIN, 1]
    neck_x = pose.to_camera(centre[None])[0, 0]
    collar = chin_y - head.neck_length * pose.scale
    half = 2.6 * head.neck_radius * pose.scale
    height = 1.6 * half
    dx = (X - neck_x) / half
    dy = (collar - height - Y) / height  # 0 at the torso's centre, -1 at the collar
    body = np.abs(dx) ** 2.5 + np.abs(np.minimum(dy, 0.0)) ** 2.5
    cover = np.clip((1.0 - body) * half * 0.5, 0.0, 1.0)
    if cover.any():
        ex, ey = np.clip(dx, -1, 1), np.clip(np.minimum(dy, 0.0), -1, 0)
        n = _unit(np.stack([0.9 * ex, -0.9 * ey, np.sqrt(np.clip(1.0 - 0.8 * ex**2 - 0.8 * ey**2, 0.05, 1.0))], axis=-1))
        fabric = cv2.resize(smooth_noise(rng, 64, 12), (size, size), interpolation=cv2.INTER_LINEAR)
        col = np.asarray(head.clothing) * np.exp(0.12 * fabric)[..., None] * _shade(n, light.sh)
        image[:] = image * (1 - cover[..., None]) + col * cover[..., None]

    # Long hair: a curtain falling from the hair shell's widest row, flaring a little,
    # in front of the shoulders and behind the neck.
    if head.style == "long" and (cover_h > 0.5).any():
        rows = np.flatnonzero((cover_h > 0.5).any(axis=1))
        widths = (cover_h[rows] > 0.5).sum(axis=1)
        top_row = int(rows[np.argmax(widths)])
        cols = np.flatnonzero(cover_h[top_row] > 0.5)
        left, right = cols.min() + 0.5, cols.max() + 1.5
        bottom = -pose.to_camera(np.array([[0.0, -1.6 - head.long_length, centre[2]]]))[0, 1]
        row_px = -Y
        drop = np.clip((row_px - top_row) / max(bottom - top_row, 1.0), 0.0, 1.0)
        flare = 0.1 * (right - left) * drop
        col_px = X
        ragged = 0.04 * (right - left) * cv2.resize(smooth_noise(rng, 64, (4, 24)), (size, size), interpolation=cv2.INTER_LINEAR)
        inside_x = np.minimum(col_px - (left - flare), (right + flare) - col_px)
        inside_y = bottom + ragged - row_px
        cover = np.clip(np.minimum(inside_x, inside_y), 0.0, 1.0) * (row_px >= top_row)
        mid = 0.5 * (left + right)
        nx = np.clip((col_px - mid) / (0.5 * (right - left)) * 0.7, -0.9, 0.9)
        n = np.stack([nx, np.zeros_like(nx), np.sqrt(1 - nx**2)], axis=-1)
        strands = cv2.resize(smooth_noise(rng, 256, (6, 160)), (size, size), interpolation=cv2.INTER_LINEAR)
        col = hair * np.exp(0.3 * strands)[..., None] * _shade(n, light.sh) * (0.85 - 0.25 * drop)[..., None]
        image[:] = image * (1 - cover[..., None]) + col * cover[..., None]

    # Neck: a vertical cylinder (camera frame) under the skull, shaded, darker under the jaw.
    neck_top = pose.to_camera(np.array([[0.0, centre[1] - 0.4 * radii[1], centre[2] + 0.2 * radii[2]]]))[0]
    r = head.neck_radius * pose.scale
    nx = (X - neck_top[0]) / r
    neckline = collar - 0.25 * r * (1.0 - np.clip(nx, -1, 1) ** 2)  # a round neckline into the collar
    inside = (np.abs(nx) < 1.0) & (Y < neck_top[1]) & (Y > neckline)
    if inside.any():
        n = np.stack([np.clip(nx, -1, 1), np.zeros_like(nx), np.sqrt(np.clip(1 - nx**2, 0, 1))], axis=-1)
        ao = 0.45 + 0.55 * _smoothstep((chin_y - Y) / (0.9 * pose.scale))
        col = skin * 0.95 * _shade(n, light.sh) * ao[..., None]
        edge = np.clip((1.0 - np.abs(nx)) * r, 0.0, 1.0) * inside
        image[:] = image * (1 - edge[..., None]) + col * edge[..., None]

    # Skull: the skin ellipsoid, then the hair shell where the hairline puts hair.
    col = skin * _shade(n_s, light.sh)
    image[:] = image * (1 - cover_s[..., None]) + col * cover_s[..., None]
    strands = _strands(head.seed, q_h)
    col = hair * np.exp(0.3 * strands)[..., None] * _shade(n_h, light.sh)
    col = col + 0.08 * light.colour * _blinn_phong(n_h, light, 20.0)[..., None]
    image[:] = image * (1 - hair_alpha[..., None]) + col * hair_alpha[..., None]
