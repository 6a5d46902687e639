"""Relit real faces: real photos with an exact ground-truth albedo, in all six skin types,
exposed as a camera exposes them.

The recipe (the FAIR protocol's idea, on data we can make):

1. A real photo's own colours *are* the ground-truth albedo, by definition (linear RGB, in
   the photo's pixel grid): the face over its fitted mesh, and the rest of the frame (hair,
   clothes, background) as the scene's reflectance.
2. The skin tone is moved to a target skin type: lightness by a gain on linear luminance,
   chroma to a point near the skin locus with its deviations scaled in proportion (pores,
   freckles and lips keep their relative contrast), refined so the mean ITA over the cheeks
   and forehead hits the target. Neck and ears (skin-coloured pixels outside the mesh) follow,
   feathered; the eye openings do not (eye whites look alike in every skin type).
3. The whole frame is relit in linear RGB by a known light (``LIGHT_KINDS``: key + ambient,
   hard side light with a dark surround (low key), sun + sky outdoors, key + a fill of another
   colour, light from above or below, an SH environment; 2700..10000 K, the camera balanced for
   daylight), with a Blinn-Phong highlight (stronger on forehead and nose). The face's shading
   continues smoothly beyond the mesh and fades, over about a tenth of the frame, to the light
   the surroundings get: in a studio the background is lit less than the face
   (``background_light`` < 1), outdoors as much.
4. The camera exposes the frame (``RelitConfig.metering``): ``"average"`` (default) puts the
   frame's mean linear luminance at middle grey (0.18), ``"face"`` (face-priority, as portrait
   cameras do) puts a blend of the face's skin (70 %) and the frame (30 %) there; both lower the
   gain until the brightest 0.5 % of the frame does not clip. ``"peak"`` is the old convention:
   the brightest skin shading set to a random exposure in 0.55..1.15. Then noise, clipping and
   8-bit sRGB, as a camera writes it. The gain and the metering are recorded per case.

Scenes that fool a whole-frame meter: a bright background or white clothes make the camera
darken the face (``RelitCase.bright_scene``: the scene outside the face, as lit, reflects more
than 0.3 of the light the face gets on average, i.e. a meter that assumes an 18 % grey world
is off by more than 1.7x); the benchmark reports them apart. Sources whose own photo is
strongly side-lit (``RelitBase.side_lit``) carry that shading into the ground truth by
construction; also reported apart.

Everything is deterministic from a seed. ``RelitCase.image`` is what a method sees;
``albedo``, ``shading``, ``face_mask`` and ``ita_mask`` are the ground truth.
"""

from __future__ import annotations

import csv
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
from hifialbedo.mesh.topology import load_face_topology, uv_regions
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

FACE_SET = Path(__file__).resolve().parent / "data" / "faces"
"""The committed portraits (``MANIFEST.tsv``: source, licence, person, split; ``ATTRIBUTION.txt``)."""

MIDDLE_GREY = 0.18
"""Linear luminance an averaging meter puts the metered region at."""
METERINGS = ("average", "face", "peak")
LIGHT_KINDS = ("key_ambient", "low_key", "outdoor", "key_fill", "above_below", "sh_environment")
"""The lightings, cycled by the lighting index (``sample_light``)."""
BRIGHT_SCENE_REFLECTANCE = 0.3
"""A scene reflecting more than this (as lit, relative to the face's light) fools a whole-frame meter by > 1.7x."""
SIDE_LIT_LOG_RATIO = 0.6
"""|log(left / right)| of a source photo's skin luminance (1.8x) above which it counts as side-lit."""


@dataclass(frozen=True)
class FacePhoto:
    """One photo of the committed face set (a row of ``MANIFEST.tsv``)."""

    path: Path
    person: str  # person id: a London-set subject (london_002) or a Bioguide id (O000167)
    split: str  # "tune" or "test": the people priors are chosen on, or scored on
    source: str  # the source folder: london_set, congress_gpo, whitehouse
    skin_guess: str  # the manifest's visual guess (light .. dark), not a measurement


def face_set(split: str = "test") -> list[FacePhoto]:
    """The committed portraits of one split (``"tune"``, ``"test"`` or ``"all"``), in manifest order.

    >>> people = {p.split: set() for p in face_set("all")}
    >>> for p in face_set("all"): people[p.split].add(p.person)
    >>> people["tune"].isdisjoint(people["test"]), len(people["tune"]) + len(people["test"])
    (True, 55)
    """
    if split not in ("tune", "test", "all"):
        raise ValueError(f"split must be tune, test or all, got {split!r}")
    with open(FACE_SET / "MANIFEST.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [
        FacePhoto(FACE_SET / r["file"], r["person_id"], r["split"], r["file"].split("/")[0], r["skin_guess"])
        for r in rows
        if split == "all" or r["split"] == split
    ]


@dataclass(frozen=True)
class RelitConfig:
    """How the relit set is made."""

    photos: tuple[str, ...] = ()
    """Real photos (paths) whose colours are the ground-truth albedo, each its own person;
    empty: the committed face set's ``split``."""
    split: str = "test"
    """With ``photos`` empty: which people of the face set (``face_set``): test, tune or all."""
    mirror: bool = False
    """Also use each photo mirrored (another pose and mesh fit of the same person: scored as
    the same person, never as another)."""
    skin_types: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
    """Skin types to make (0..5 = I..VI)."""
    lightings: int = 6
    """Lightings per face and skin type (``LIGHT_KINDS`` cycled)."""
    metering: str = "average"
    """How the camera exposes the frame: ``average`` (the whole frame's mean luminance at
    middle grey), ``face`` (face-priority: 70 % the face's skin, 30 % the frame), ``peak``
    (the old convention: brightest skin shading set to ``exposure``)."""
    face_weight: float = 0.7
    """Share of the face's skin in face-priority metering."""
    highlight_percentile: float = 99.5
    """Both meterings lower the gain until this percentile of the frame's brightest channel is 1 (no clipping)."""
    temperature_k: tuple[float, float] = (2700.0, 10000.0)
    """Light colour temperatures, uniform in mired (the camera balanced for daylight)."""
    exposure: tuple[float, float] = (0.55, 1.15)
    """``peak`` metering only: multiplier of the light, log-uniform, the brightest skin (95th
    percentile) lit at shading 1 before it."""
    off_locus_sd: float = 2.0
    """Standard deviation of each face's skin a* and b* about the skin locus."""
    specular: tuple[float, float] = (0.0, 0.12)
    """Blinn-Phong specular intensity (fraction of the key light)."""
    shininess: tuple[float, float] = (15.0, 60.0)
    noise: float = 0.004
    """Gaussian sensor noise, linear RGB standard deviation (after the exposure)."""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.metering not in METERINGS:
            raise ValueError(f"metering must be one of {', '.join(METERINGS)}, got {self.metering!r}")
        if self.split not in ("tune", "test", "all"):
            raise ValueError(f"split must be tune, test or all, got {self.split!r}")
        if self.lightings < 1:
            raise ValueError(f"lightings must be >= 1, got {self.lightings}")


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
    sh: np.ndarray  # (9, 3) the face's SH light (diffuse part, exposure included), camera frame
    gt_ita: float
    params: dict = field(default_factory=dict)
    person: str = ""  # who the base photo shows (mirrors and other photos of one person share it)
    source: str = ""  # the base photo's source folder
    bright_scene: bool = False  # the scene fools a whole-frame meter (BRIGHT_SCENE_REFLECTANCE)
    side_lit_source: bool = False  # the base photo itself is strongly side-lit (RelitBase.side_lit)

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
    person: str = ""
    source: str = ""
    side_lit: float = 0.0  # |log(left / right)| of the cheeks' luminance in the source photo

    @property
    def side_lit_source(self) -> bool:
        return self.side_lit > SIDE_LIT_LOG_RATIO


def _region_lookup(region: np.ndarray, uv: np.ndarray) -> np.ndarray:
    size = region.shape[0]
    ij = np.clip((uv * size).astype(np.int64), 0, size - 1)
    return region[ij[..., 1], ij[..., 0]]


def prepare_base(name: str, image_rgb8: np.ndarray, landmarks: np.ndarray, *, person: str = "", source: str = "") -> RelitBase:
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
    # Eye whites look alike in every skin type: the tone change leaves the eye openings alone.
    eyes = cv2.GaussianBlur(eye_openings(landmarks, h, w).astype(np.float32), (0, 0), 1.5)
    skin_weight = skin_weight * (1.0 - eyes)
    return RelitBase(
        name, linear, np.asarray(landmarks, np.float64), geometry, face, normals, ita_mask, skin_mask, shine, skin_weight,
        person=person or name, source=source, side_lit=side_lighting(linear, skin_mask, landmarks),
    )


def eye_openings(landmarks: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(H, W)`` bool: inside the two eye contours of ``(478, 2|3)`` pixel landmarks."""
    topo = load_face_topology()
    mask = np.zeros((height, width), np.uint8)
    for name in ("left_eye", "right_eye"):
        pts = np.asarray(landmarks)[topo.contours[name], :2].astype(np.float32)
        cv2.fillConvexPoly(mask, np.round(cv2.convexHull(pts)).astype(np.int32), 1)
    return mask.astype(bool)


def side_lighting(linear: np.ndarray, skin_mask: np.ndarray, landmarks: np.ndarray) -> float:
    """|log(left / right)| of the median skin luminance on either side of the nose line
    (landmark 1, the nose tip; x of the image): how side-lit a photo's own face is.

    >>> img = np.ones((4, 4, 3), np.float32); img[:, 2:] *= 0.25
    >>> lm = np.zeros((478, 3)); lm[1, 0] = 2.0
    >>> round(side_lighting(img, np.ones((4, 4), bool), lm), 3)  # log 4
    1.386
    """
    xs = np.arange(skin_mask.shape[1])[None, :].repeat(skin_mask.shape[0], 0)
    lum = linear @ LUMA_WEIGHTS
    nose_x = float(np.asarray(landmarks)[1, 0])
    left, right = lum[skin_mask & (xs < nose_x)], lum[skin_mask & (xs >= nose_x)]
    if left.size < 1 or right.size < 1:
        return 0.0
    return float(abs(np.log(max(np.median(left), 1e-4) / max(np.median(right), 1e-4))))


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


def _direction(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """Unit vector, camera frame (x right, y up, z to the camera), from azimuth about +y
    (0: from the camera, +90: from the right) and elevation (+90: from above)."""
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    return np.array([math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el)])


@dataclass(frozen=True)
class CaseLight:
    """A relit case's light before the exposure (linear RGB, camera frame): distant lights
    shading with the exact clamped cosine (attached shadows as hard as the world's, not the
    9-coefficient approximation the methods fit) plus a smooth SH remainder (ambient, sky,
    environment)."""

    directionals: tuple[tuple[np.ndarray, np.ndarray], ...]  # (direction (3,), irradiance colour (3,))
    ambient: np.ndarray  # (9, 3) SH radiance of the rest
    key: np.ndarray  # (3,) direction of the highlight's light
    key_colour: np.ndarray  # (3,) its irradiance (the highlight's colour and strength)
    background_light: float  # light on the surroundings relative to the face's mean (studio falloff)
    params: dict

    @property
    def sh(self) -> np.ndarray:
        """The whole light as 9 SH coefficients ``(9, 3)`` (the directionals projected)."""
        return self.ambient + sum((sh_ops.directional_light(d, c) for d, c in self.directionals), np.zeros((9, 3)))

    def shading(self, normals: np.ndarray) -> np.ndarray:
        """Diffuse shading ``(..., 3)`` at unit normals ``(..., 3)`` (``ops.sh``'s normalisation:
        a distant light of irradiance E facing the surface shades E)."""
        out = np.maximum(sh_ops.sh_shading(normals, self.ambient), 0.0)
        for direction, colour in self.directionals:
            out = out + np.clip(normals @ direction, 0.0, None)[..., None] * colour
        return out


def sample_light(rng: np.random.Generator, config: RelitConfig, index: int) -> CaseLight:
    """The light of lighting ``index`` (``LIGHT_KINDS[index % 6]``), white-balanced for daylight.

    - key_ambient: a key anywhere in front (azimuth +-70, elevation -15..55) + 15-50 % ambient
    - low_key: a hard side light (azimuth 55-95 either side) with 2-8 % ambient, the
      surroundings lit at 3-30 % (a dark studio)
    - outdoor: sun (elevation 15-70) + a bluer sky (7100-10000 K) brighter from above
    - key_fill: a key and a fill from the other side in another colour temperature
    - above_below: overhead (elevation 55-80) or from below (-60..-30) + ambient
    - sh_environment: a smooth random environment
    """
    kind = LIGHT_KINDS[index % len(LIGHT_KINDS)]

    def temperature() -> float:
        return 1e6 / rng.uniform(1e6 / config.temperature_k[1], 1e6 / config.temperature_k[0])

    kelvin = temperature()
    colour = white_of_temperature(kelvin)
    params: dict = {"light": kind, "temperature_k": round(float(kelvin), 1)}
    background = 1.0
    if kind in ("key_ambient", "low_key", "above_below"):
        if kind == "key_ambient":
            key, ambient, background = _direction(rng.uniform(-70, 70), rng.uniform(-15, 55)), rng.uniform(0.15, 0.5), rng.uniform(0.3, 1.0)
        elif kind == "low_key":
            key = _direction(rng.choice([-1.0, 1.0]) * rng.uniform(55, 95), rng.uniform(-5, 40))
            ambient, background = rng.uniform(0.02, 0.08), rng.uniform(0.03, 0.3)
        else:
            elevation = rng.uniform(55, 80) if rng.random() < 0.6 else rng.uniform(-60, -30)
            key, ambient, background = _direction(rng.uniform(-40, 40), elevation), rng.uniform(0.1, 0.35), rng.uniform(0.3, 1.0)
        key_colour = colour * (1 - ambient)
        directionals, rest = ((key, key_colour),), sh_ops.uniform_light(ambient) * colour[None, :]
    elif kind == "outdoor":
        sky_kelvin = 1e6 / rng.uniform(100.0, 140.0)
        sky = white_of_temperature(sky_kelvin)
        key, sun = _direction(rng.uniform(-80, 80), rng.uniform(15, 70)), rng.uniform(0.45, 0.8)
        rest = sh_ops.uniform_light(1.0) * (1 - sun) * 0.8 * sky[None, :]
        rest[1] += (1 - sun) * 0.35 * sky  # Y_1 ~ y: the sky is brighter above than the ground below
        key_colour = sun * colour
        directionals = ((key, key_colour),)
        params["sky_temperature_k"] = round(float(sky_kelvin), 1)
    elif kind == "key_fill":
        key, fill_kelvin = _direction(rng.uniform(-70, 70), rng.uniform(-10, 50)), temperature()
        fill_dir = _direction(-math.copysign(1.0, key[0]) * rng.uniform(20, 80), rng.uniform(-20, 30))
        fill = rng.uniform(0.2, 0.6)
        key_colour, background = 0.8 * colour, rng.uniform(0.3, 1.0)
        directionals = ((key, key_colour), (fill_dir, fill * white_of_temperature(fill_kelvin)))
        rest = sh_ops.uniform_light(0.1) * colour[None, :]
        params["fill_temperature_k"] = round(float(fill_kelvin), 1)
    else:
        key = _direction(rng.uniform(-70, 70), rng.uniform(-15, 55))
        rest = sh_ops.uniform_light(0.55)[:, :1] * np.ones((1, 3))
        rest[1:4, :] = (rng.normal(0, 0.12, 3) + 0.25 * np.array([key[1], key[2], key[0]]))[:, None]
        rest[4:, :] = rng.normal(0, 0.05, (5, 1))
        rest = rest * colour[None, :]
        key_colour, directionals = 0.3 * colour, ()
    params.update(key_direction=key.round(4).tolist(), background_light=round(float(background), 3))
    return CaseLight(directionals, rest, key, key_colour, float(background), params)


def exposure_gain(raw: np.ndarray, skin_mask: np.ndarray, config: RelitConfig) -> tuple[float, bool]:
    """The camera's gain for a linear frame ``raw (H, W, 3)`` under ``config.metering``
    ("average" or "face") and whether highlight protection lowered it.

    >>> frame = np.full((4, 4, 3), 0.09)
    >>> gain, protected = exposure_gain(frame, np.zeros((4, 4), bool), RelitConfig())
    >>> round(gain, 6), protected  # mean 0.09 -> middle grey
    (2.0, False)
    >>> frame[0, 0] = 0.8  # one bright pixel: the brightest 0.5 % would clip at gain 2
    >>> gain, protected = exposure_gain(frame, np.zeros((4, 4), bool), RelitConfig())
    >>> gain < 2.0, protected
    (True, True)
    """
    lum = raw @ LUMA_WEIGHTS
    metered = float(lum.mean())
    if config.metering == "face":
        metered = config.face_weight * float(lum[skin_mask].mean()) + (1 - config.face_weight) * metered
    gain = MIDDLE_GREY / max(metered, 1e-6)
    peak = float(np.percentile(raw.max(axis=-1), config.highlight_percentile))
    if gain * peak > 1.0:
        return 1.0 / max(peak, 1e-6), True
    return gain, False


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

    light = sample_light(rng, config, lighting_index)
    sh, key, params = light.sh, light.key, dict(light.params)
    face = base.face_mask
    h, w_ = face.shape
    s_face = light.shading(base.normals[face])
    shading = np.zeros((h, w_, 3), np.float32)
    shading[face] = s_face
    # Beyond the mesh: the shading continues smoothly and fades to the surroundings' light.
    extended = push_pull(shading, face.astype(np.float32))
    dist = cv2.distanceTransform((~face).astype(np.uint8), cv2.DIST_L2, 5)
    fade = np.exp(-dist / (0.12 * max(h, w_)))[..., None]
    far = s_face.mean(axis=0) * light.background_light
    shading = np.where(face[..., None], shading, fade * extended + (1 - fade) * far).astype(np.float32)

    ks = rng.uniform(*config.specular)
    shininess = rng.uniform(*config.shininess)
    half = key + np.array([0.0, 0.0, 1.0])
    half /= np.linalg.norm(half)
    n_dot_h = np.clip(base.normals @ half, 0.0, 1.0)
    n_dot_l = np.clip(base.normals @ key, 0.0, 1.0)
    lobe = ks * base.shine * n_dot_h**shininess * (n_dot_l > 0) * face
    specular = (lobe[..., None] * light.key_colour[None, None]).astype(np.float32)

    if config.metering == "peak":
        # The old convention: the brightest skin (95th percentile) at shading 1, times an exposure,
        # kept below 0.95 on the brightest 1 % of skin.
        norm = 1.0 / max(float(np.percentile(s_face @ LUMA_WEIGHTS, 95)), 1e-3)
        exposure = math.exp(rng.uniform(*np.log(config.exposure)))
        bright = float(np.percentile((albedo[base.skin_mask] * s_face[base.skin_mask[face]] * norm).max(axis=1), 99))
        gain, protected = norm * min(exposure, 0.95 / max(bright, 1e-3)), False
    else:
        gain, protected = exposure_gain(albedo * shading + specular, base.skin_mask, config)
    shading *= gain
    specular *= gain
    image = albedo * shading + specular
    if config.noise > 0:
        image = image + rng.normal(0.0, config.noise, image.shape).astype(np.float32)
    # How bright the scene is against the face's light: what fools a whole-frame meter.
    outside = ~face
    scene_reflectance = float(((albedo[outside] * shading[outside]) @ LUMA_WEIGHTS).mean() / max(float((shading[face] @ LUMA_WEIGHTS).mean()), 1e-6)) if outside.any() else 0.0
    params.update(
        off_locus_ab=[round(float(v), 3) for v in off_locus],
        metering=config.metering,
        gain=round(float(gain), 5),
        highlight_protected=protected,
        clipped=round(float((image.max(axis=-1) >= 1.0).mean()), 5),
        scene_reflectance=round(scene_reflectance, 4),
        specular=round(float(ks), 4),
        shininess=round(float(shininess), 2),
        target_ita=round(float(target), 3),
    )
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
        sh=sh * gain,
        gt_ita=gt_ita,
        params=params,
        person=base.person,
        source=base.source,
        bright_scene=scene_reflectance > BRIGHT_SCENE_REFLECTANCE,
        side_lit_source=base.side_lit_source,
    )


def load_bases(config: RelitConfig, detector: LandmarkDetector, root: Path | None = None, *, select: Sequence[int] | None = None) -> list[RelitBase]:
    """Read, detect and prepare the configured photos (the face set's split when
    ``config.photos`` is empty; mirrors added with ``config.mirror``, as the same person);
    ``select``: only the photos of these indices."""
    from hifialbedo.io.images import read_photo

    if config.photos:
        entries = [(Path(p) if root is None or Path(p).is_absolute() else root / p) for p in config.photos]
        photos = [FacePhoto(p, p.stem, "given", "given", "") for p in entries]
    else:
        photos = face_set(config.split)
    if select is not None:
        photos = [photos[i] for i in select]
    bases = []
    for photo in photos:
        pixels = read_photo(photo.path).pixels
        variants = [(photo.path.stem, pixels)] + ([(photo.path.stem + "_mirror", np.ascontiguousarray(pixels[:, ::-1]))] if config.mirror else [])
        for name, img in variants:
            lm = detector.detect(img).landmarks
            bases.append(prepare_base(name, img, lm, person=photo.person, source=photo.source))
    return bases


def relit_cases(bases: Sequence[RelitBase], config: RelitConfig) -> Iterator[RelitCase]:
    """All cases: for each base, each skin type, each lighting (lazily; each is ~3 MB)."""
    for base in bases:
        for t in config.skin_types:
            for k in range(config.lightings):
                yield relight(base, t, k, config)

