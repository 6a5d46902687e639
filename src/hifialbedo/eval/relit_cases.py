"""Relit real faces: real photos with an exact ground-truth albedo, in all six skin types.

The recipe (the FAIR protocol's idea, on data we can make):

1. A real photo's own face colours *are* the ground-truth albedo, by definition (linear
   RGB, in the photo's pixel grid, over the fitted face mesh).
2. Its skin tone is moved to a target skin type: a per-channel gain (a change of melanin
   level scales reflectance multiplicatively, so pores, freckles and lips keep their
   relative contrast), chosen along a skin locus in CIE L*a*b* and refined so the mean
   ITA over the cheeks and forehead hits the target. The neck and ears (skin-coloured
   pixels outside the mesh) get the same gain, feathered, so the photo stays coherent.
3. It is relit with a known light on its fitted mesh, in linear RGB: an SH environment,
   a directional key light plus ambient, or a key plus a coloured fill; light colour from
   a colour temperature (3000..7500 K, the camera balanced for daylight), an exposure,
   and a Blinn-Phong specular lobe (stronger on forehead and nose).
4. The rest of the photo (hair, clothes, background) is lit by the same light: the face's
   shading is extended smoothly beyond the mesh and fades to the light's mean level.

Everything is deterministic from a seed. ``RelitCase.image`` is what a method sees;
``albedo``, ``shading``, ``face_mask`` and ``ita_mask`` are the ground truth.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from hifialbedo.eval.fair import mean_ita, skin_type
from hifialbedo.inverse.completion import push_pull
from hifialbedo.mesh.geometry import FaceGeometry, fit_face_geometry
from hifialbedo.mesh.landmarks import LandmarkDetector
from hifialbedo.mesh.topology import uv_regions
from hifialbedo.ops import sh as sh_ops
from hifialbedo.ops.colour import (
    LUMA_WEIGHTS,
    lab_to_linear,
    linear_to_lab,
    linear_to_srgb_uint8,
    skin_locus_lab,
    srgb_uint8_to_linear,
    white_of_temperature,
)
from hifialbedo.render.image_raster import paste_window, rasterize_in_image
from hifialbedo.render.view_shading import view_maps

# Target ITA of each skin type (degrees): inside the type's range, clear of its bounds.
TYPE_TARGET_ITA = (62.0, 48.0, 34.5, 19.0, -10.0, -45.0)
TYPE_TARGET_JITTER = (3.0, 3.5, 3.0, 4.5, 10.0, 6.0)


@dataclass(frozen=True)
class RelitConfig:
    """How the relit set is made."""

    photos: tuple[str, ...] = ("samples/grace_hopper.jpg", "samples/astronaut.png")
    """Real photos (paths) whose face colours are the ground-truth albedo."""
    mirror: bool = True
    """Also use each photo mirrored (a different pose and mesh fit for the same person)."""
    skin_types: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
    """Skin types to make (0..5 = I..VI)."""
    lightings: int = 6
    """Lightings per face and skin type."""
    temperature_k: tuple[float, float] = (3000.0, 7500.0)
    exposure: tuple[float, float] = (0.55, 1.15)
    """Multiplier of the light, log-uniform; the brightest skin (95th percentile) is lit at
    shading 1 before it."""
    off_locus_sd: float = 2.0
    """Standard deviation of each face's skin a* and b* about the skin locus."""
    specular: tuple[float, float] = (0.0, 0.12)
    """Blinn-Phong specular intensity (fraction of the key light)."""
    shininess: tuple[float, float] = (15.0, 60.0)
    noise: float = 0.004
    """Gaussian sensor noise, linear RGB standard deviation."""
    seed: int = 0


@dataclass
class RelitCase:
    """One relit photo and its ground truth (arrays at the photo's size)."""

    name: str  # "{base}/{type}/{lighting}"
    base: str  # photo stem (+ "_mirror")
    type_index: int  # target skin type 0..5 (the scored type comes from gt_ita)
    lighting_index: int
    image: np.ndarray  # (H, W, 3) uint8 sRGB: what a method sees
    albedo: np.ndarray  # (H, W, 3) float32 linear RGB ground-truth albedo (meaningful on face_mask)
    shading: np.ndarray  # (H, W, 3) float32 true diffuse shading (light colour and exposure included)
    specular: np.ndarray  # (H, W, 3) float32 the specular layer added
    face_mask: np.ndarray  # (H, W) bool: pixels the fitted face mesh covers
    ita_mask: np.ndarray  # (H, W) bool: cheek + forehead skin (the FAIR ITA mask)
    skin_mask: np.ndarray  # (H, W) bool: the face's skin (no brows, lips, eye surround, border)
    landmarks: np.ndarray  # (478, 3) the landmarks the ground truth was made on
    sh: np.ndarray  # (9, 3) the face's SH light (diffuse part), camera frame
    gt_ita: float
    params: dict = field(default_factory=dict)

    @property
    def skin_type(self) -> int:
        return skin_type(self.gt_ita)


@dataclass
class RelitBase:
    """A real photo prepared once: its mesh and per-pixel maps."""

    name: str
    linear: np.ndarray  # (H, W, 3) float32 linear RGB photo
    landmarks: np.ndarray
    geometry: FaceGeometry
    face_mask: np.ndarray  # (H, W) bool
    normals: np.ndarray  # (H, W, 3) camera-frame normals (0 outside the mesh)
    ita_mask: np.ndarray  # (H, W) bool
    skin_mask: np.ndarray  # (H, W) bool
    shine: np.ndarray  # (H, W) regional specular weight (forehead and nose shine more)
    skin_weight: np.ndarray  # (H, W) in [0, 1]: where the skin-tone change applies


def _region_lookup(region: np.ndarray, uv: np.ndarray) -> np.ndarray:
    size = region.shape[0]
    ij = np.clip((uv * size).astype(np.int64), 0, size - 1)
    return region[ij[..., 1], ij[..., 0]]


def prepare_base(name: str, image_rgb8: np.ndarray, landmarks: np.ndarray) -> RelitBase:
    """Fit the mesh of a real photo and derive its masks (uint8 sRGB ``(H, W, 3)``)."""
    h, w = image_rgb8.shape[:2]
    geometry = fit_face_geometry(landmarks, (h, w))
    raster = rasterize_in_image(geometry, h, w)
    vm = view_maps(geometry, raster)
    regions = uv_regions(512)
    face = paste_window(raster, vm.mask.astype(np.uint8)).astype(bool)
    normals = paste_window(raster, vm.normals * vm.mask[..., None])
    ita_window = _region_lookup(regions["cheeks"] | regions["forehead"], vm.uv) & vm.mask
    shine_window = 1.0 + 0.6 * (_region_lookup(regions["forehead"] | regions["nose"], vm.uv) & vm.mask)
    ita_mask = paste_window(raster, ita_window.astype(np.uint8)).astype(bool)
    skin_window = _region_lookup(regions["skin"], vm.uv) & vm.mask
    skin_mask = paste_window(raster, skin_window.astype(np.uint8)).astype(bool)
    shine = cv2.GaussianBlur(paste_window(raster, shine_window.astype(np.float32), fill=1.0), (0, 0), 3)
    linear = srgb_uint8_to_linear(image_rgb8)

    # Skin outside the mesh (neck, ears): close in L*a*b* to the face's own skin.
    lab_face = linear_to_lab(linear[skin_mask])
    mean = lab_face.mean(axis=0)
    cov = np.cov(lab_face.T) + np.diag([4.0, 1.0, 1.0])
    d = linear_to_lab(linear) - mean
    maha = np.sqrt(np.einsum("...i,ij,...j->...", d, np.linalg.inv(cov), d))
    likely = np.exp(-0.5 * np.maximum(maha - 2.0, 0.0) ** 2).astype(np.float32)
    likely = cv2.GaussianBlur(likely, (0, 0), 2)
    feather = cv2.GaussianBlur(face.astype(np.float32), (0, 0), max(2.0, 0.01 * max(h, w)))
    skin_weight = np.maximum.reduce([likely, feather, face.astype(np.float32)])
    return RelitBase(name, linear, np.asarray(landmarks, np.float64), geometry, face, normals, ita_mask, skin_mask, shine, skin_weight)


def soft_clip(albedo: np.ndarray, knee: float = 0.7, ceiling: float = 0.95) -> np.ndarray:
    """Compress reflectance ``(..., 3)`` whose largest channel exceeds ``knee`` smoothly
    toward ``ceiling``, all channels by the same factor (the colour's chromaticity stays)."""
    peak = np.maximum(albedo.max(axis=-1, keepdims=True), 1e-6)
    span = ceiling - knee
    squeezed = np.where(peak < knee, peak, knee + span * np.tanh((peak - knee) / span))
    return (albedo * (squeezed / peak)).astype(np.float32)


@dataclass(frozen=True)
class ToneChange:
    """A skin-tone change in CIE L*a*b*: lightness by a gain on linear luminance (relative
    lightness detail kept), chroma moved to a new mean with its deviations scaled in
    proportion (relative chroma detail kept)."""

    luminance_gain: float
    from_ab: tuple[float, float]
    to_ab: tuple[float, float]
    chroma_scale: float

    def apply(self, linear_rgb: np.ndarray) -> np.ndarray:
        lab = linear_to_lab(linear_rgb)
        y = np.clip(lab_to_linear(np.stack([lab[..., 0], np.zeros_like(lab[..., 0]), np.zeros_like(lab[..., 0])], -1))[..., 1], 0, None)
        lab[..., 0] = linear_to_lab(np.repeat((y * self.luminance_gain)[..., None], 3, -1))[..., 0]
        for i in (0, 1):
            lab[..., 1 + i] = self.to_ab[i] + (lab[..., 1 + i] - self.from_ab[i]) * self.chroma_scale
        return soft_clip(np.clip(lab_to_linear(lab), 0.0, None))


def tone_change(base: RelitBase, target_ita: float, off_locus: tuple[float, float] = (0.0, 0.0)) -> ToneChange:
    """The tone change that takes the base's skin to a point of the skin locus (offset by
    ``off_locus`` = (delta a*, delta b*): individual skin is not on the curve), moved along
    the locus until the mean per-pixel ITA over the ITA mask is ``target_ita``."""
    skin = base.linear[base.ita_mask]
    lab = linear_to_lab(skin)
    y0 = float((skin @ LUMA_WEIGHTS).mean())
    ab0 = lab[:, 1:].mean(axis=0)
    everywhere = np.ones(len(skin), bool)

    def change_at(t: float) -> ToneChange:
        target = skin_locus_lab(t) + np.array([0.0, *off_locus])
        y_t = float(lab_to_linear(target)[..., :] @ LUMA_WEIGHTS)
        scale = float(np.hypot(*target[1:]) / max(np.hypot(*ab0), 1e-3))
        return ToneChange(y_t / max(y0, 1e-4), (float(ab0[0]), float(ab0[1])), (float(target[1]), float(target[2])), scale)

    lo, hi = -0.3, 1.4  # the locus a little extrapolated: the mean ITA falls as t grows
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        if mean_ita(change_at(mid).apply(skin), everywhere) > target_ita:
            lo = mid
        else:
            hi = mid
    return change_at(0.5 * (lo + hi))


def _random_direction(rng: np.random.Generator) -> np.ndarray:
    az = math.radians(rng.uniform(-70, 70))
    el = math.radians(rng.uniform(-15, 55))
    return np.array([math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el)])


def sample_light(rng: np.random.Generator, config: RelitConfig, index: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """A white-balanced light before exposure: ``(sh (9, 3), key direction (3,), params)``.

    The kind cycles with ``index``: directional + ambient, SH environment, key + coloured fill.
    """
    kind = ("directional", "sh_environment", "key_fill")[index % 3]
    temperature = rng.uniform(*config.temperature_k)
    colour = white_of_temperature(temperature)
    key = _random_direction(rng)
    if kind == "directional":
        ambient = rng.uniform(0.15, 0.5)
        sh = sh_ops.directional_light(key, colour * (1 - ambient), ambient * colour)
    elif kind == "sh_environment":
        sh = sh_ops.uniform_light(0.55)[:, :1] * np.ones((1, 3))
        first = rng.normal(0, 0.12, 3) + 0.25 * np.array([key[1], key[2], key[0]])
        sh[1:4, :] = first[:, None]
        sh[4:, :] = rng.normal(0, 0.05, (5, 1))
        sh = sh * colour[None, :]
    else:
        fill_t = rng.uniform(*config.temperature_k)
        fill_dir = _random_direction(rng) * np.array([-1, 1, 1])
        fill = rng.uniform(0.2, 0.5)
        sh = sh_ops.directional_light(key, 0.8 * colour, 0.15 * colour) + sh_ops.directional_light(fill_dir, fill * white_of_temperature(fill_t))
        kind = f"key_fill({fill_t:.0f} K fill)"
    return sh, key, {"light": kind, "temperature_k": round(float(temperature), 1), "key_direction": key.round(4).tolist()}


def relight(base: RelitBase, type_index: int, lighting_index: int, config: RelitConfig) -> RelitCase:
    """One relit case (deterministic in config.seed, the base name, the type and lighting)."""
    face_key = zlib.crc32(base.name.encode())
    # The albedo depends on the face and type only: every lighting of it shares one ground truth.
    tone_rng = np.random.default_rng([config.seed, face_key, type_index])
    target = TYPE_TARGET_ITA[type_index] + tone_rng.uniform(-1, 1) * TYPE_TARGET_JITTER[type_index]
    off_locus = tuple(np.clip(tone_rng.normal(0.0, config.off_locus_sd, 2), -2.5 * config.off_locus_sd, 2.5 * config.off_locus_sd))
    change = tone_change(base, target, off_locus)
    rng = np.random.default_rng([config.seed, face_key, type_index, lighting_index + 1])
    w = base.skin_weight[..., None]
    albedo = (base.linear * (1 - w) + change.apply(base.linear) * w).astype(np.float32)

    sh, key, params = sample_light(rng, config, lighting_index)
    face = base.face_mask
    s_face = np.maximum(sh_ops.sh_shading(base.normals[face], sh), 0.0)
    # Normalise: the brightest skin (95th percentile of luminance) at 1, then the exposure.
    norm = 1.0 / max(float(np.percentile(s_face @ LUMA_WEIGHTS, 95)), 1e-3)
    exposure = math.exp(rng.uniform(*np.log(config.exposure)))
    # A photographer keeps the face out of saturation: the brightest 1% of skin below 0.95.
    bright = float(np.percentile((albedo[base.skin_mask] * s_face[base.skin_mask[face]] * norm).max(axis=1), 99))
    exposure = min(exposure, 0.95 / max(bright, 1e-3))
    sh = sh * norm * exposure
    s_face = s_face * norm * exposure

    h, w_ = face.shape
    shading = np.zeros((h, w_, 3), np.float32)
    shading[face] = s_face
    # Beyond the mesh: the shading continues smoothly and fades to its mean level.
    extended = push_pull(shading, face.astype(np.float32))
    dist = cv2.distanceTransform((~face).astype(np.uint8), cv2.DIST_L2, 5)
    fade = np.exp(-dist / (0.12 * max(h, w_)))[..., None]
    mean_level = s_face.mean(axis=0)
    shading = np.where(face[..., None], shading, fade * extended + (1 - fade) * mean_level).astype(np.float32)

    ks = rng.uniform(*config.specular)
    shininess = rng.uniform(*config.shininess)
    half = key + np.array([0.0, 0.0, 1.0])
    half /= np.linalg.norm(half)
    n_dot_h = np.clip(base.normals @ half, 0.0, 1.0)
    n_dot_l = np.clip(base.normals @ key, 0.0, 1.0)
    key_colour = white_of_temperature(params["temperature_k"]) * norm * exposure
    lobe = ks * base.shine * n_dot_h**shininess * (n_dot_l > 0) * face
    specular = (lobe[..., None] * key_colour[None, None]).astype(np.float32)

    image = albedo * shading + specular
    if config.noise > 0:
        image = image + rng.normal(0.0, config.noise, image.shape).astype(np.float32)
    params.update(off_locus_ab=[round(float(v), 3) for v in off_locus], exposure=round(float(exposure), 4), specular=round(float(ks), 4), shininess=round(float(shininess), 2), target_ita=round(float(target), 3))
    gt_ita = mean_ita(albedo, base.ita_mask)
    return RelitCase(
        name=f"{base.name}/{type_index + 1}/{lighting_index}",
        base=base.name,
        type_index=type_index,
        lighting_index=lighting_index,
        image=linear_to_srgb_uint8(np.clip(image, 0, 1).astype(np.float32)),
        albedo=albedo,
        shading=shading,
        specular=specular,
        face_mask=face,
        ita_mask=base.ita_mask,
        skin_mask=base.skin_mask,
        landmarks=base.landmarks,
        sh=sh,
        gt_ita=gt_ita,
        params=params,
    )


def load_bases(config: RelitConfig, detector: LandmarkDetector, root: Path | None = None) -> list[RelitBase]:
    """Read, detect and prepare the configured photos (and their mirrors)."""
    from hifialbedo.io.images import read_photo

    bases = []
    for p in config.photos:
        path = Path(p) if root is None or Path(p).is_absolute() else root / p
        pixels = read_photo(path).pixels
        variants = [(path.stem, pixels)] + ([(path.stem + "_mirror", np.ascontiguousarray(pixels[:, ::-1]))] if config.mirror else [])
        for name, img in variants:
            lm = detector.detect(img).landmarks
            bases.append(prepare_base(name, img, lm))
    return bases


def relit_cases(bases: Sequence[RelitBase], config: RelitConfig) -> Iterator[RelitCase]:
    """All cases: for each base, each skin type, each lighting (lazily; each is ~3 MB)."""
    for base in bases:
        for t in config.skin_types:
            for k in range(config.lightings):
                yield relight(base, t, k, config)

