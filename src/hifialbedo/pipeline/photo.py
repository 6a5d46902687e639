"""Per-photo analysis: landmarks, mesh, UV unwrap and lighting of one photo.

photo -> landmarks (given, a file, or MediaPipe) -> fitted face mesh -> rasterization ->
UV unwrap -> SH lighting + albedo (``inverse.lighting``) = a ``PhotoResult``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from hifialbedo.inverse.cues import photo_cues
from hifialbedo.inverse.lighting import LightFit, fit_lighting
from hifialbedo.io.contract import PhotoResult, Timer
from hifialbedo.io.errors import InputError
from hifialbedo.io.images import Photo
from hifialbedo.mesh.geometry import FaceGeometry, fit_face_geometry
from hifialbedo.mesh.landmarks import NoFaceError, check_landmarks_on_image, landmarks_from_array
from hifialbedo.mesh.topology import uv_regions
from hifialbedo.ops.colour import srgb_uint8_to_linear
from hifialbedo.pipeline.config import ReconstructConfig
from hifialbedo.pipeline.model_cache import Models
from hifialbedo.render.image_raster import ImageRaster, paste_window, rasterize_in_image
from hifialbedo.render.unwrap import Unwrap, unwrap
from hifialbedo.render.uv_layout import UVLayout
from hifialbedo.render.view_shading import region_in_view, view_maps


def process_photo(
    photo: Photo,
    landmarks: np.ndarray,
    layout: UVLayout,
    skin: np.ndarray,
    config: ReconstructConfig,
    timer: Timer,
) -> tuple[FaceGeometry, ImageRaster, Unwrap, LightFit, dict]:
    """Mesh, unwrap and lighting of one photo (``skin``: per-texel bool over ``layout``), and
    the photo's priors for the lighting fit (``cues``: the keyword argument of
    ``fit_lighting``, kept for refits). The light is fitted, not yet divided out of every
    texel (``inverse.lighting.apply_lighting``): the specular fit divides out the light it
    refits, ``pipeline.fuse.divide_light`` this one otherwise."""
    with timer.timing("mesh"):
        h, w = photo.pixels.shape[:2]
        geometry = fit_face_geometry(landmarks, (h, w))
        raster = rasterize_in_image(geometry, h, w)
        linear = srgb_uint8_to_linear(photo.pixels)
    with timer.timing("unwrap"):
        unwrapped = unwrap(linear, geometry, layout, raster)
    with timer.timing("lighting"):
        # The photo's references for the skin's brightness and colour: its scene and eye whites.
        face = paste_window(raster, raster.fragments.mask)
        face_skin = paste_window(raster, region_in_view(view_maps(geometry, raster), uv_regions(256)["skin"]))
        priors = {"cues": photo_cues(linear, landmarks, face, face_skin)}
        try:
            light = fit_lighting(unwrapped.colour, unwrapped.normals, unwrapped.confidence, skin, config=config.lighting, **priors)
        except ValueError as exc:
            raise InputError(photo.path, str(exc)) from None
    return geometry, raster, unwrapped, light, priors


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
            check_landmarks_on_image(lm, photo.pixels.shape[:2])
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
    The result's ``estimate`` is the fitted ``LightFit`` (``process_photo``);
    ``pipeline.fuse.fuse_photo_results`` divides it out.
    """
    note = progress or (lambda stage: None)
    timer = timer or Timer()
    note(f"landmarks {photo.path.name}")
    with timer.timing("landmarks"):
        lm, source, photo_warnings = photo_landmarks(photo, face_index=config.face_index, models=models, landmark_file=landmark_file, landmarks=landmarks)
    note(f"estimating {photo.path.name}")
    return analyse_located_photo(photo, name, lm, source, photo_warnings, layout=layout, skin=skin, config=config, timer=timer)


def analyse_located_photo(
    photo: Photo,
    name: str,
    landmarks: np.ndarray,
    landmark_source: str,
    photo_warnings: list[str],
    *,
    layout: UVLayout,
    skin: np.ndarray,
    config: ReconstructConfig = ReconstructConfig(),
    timer: Timer | None = None,
) -> PhotoResult:
    """``analyse_photo`` once the landmarks are known (``photo_landmarks``): mesh, unwrap and
    lighting. Needs no model: photos can be analysed in parallel threads."""
    geometry, raster, unwrapped, light, priors = process_photo(photo, landmarks, layout, skin, config, timer or Timer())
    if not unwrapped.visible.any():
        raise InputError(photo.path, "the face mesh is not visible in the photo")
    return PhotoResult(photo, name, landmarks, landmark_source, geometry, raster, unwrapped, light, photo_warnings, priors)


def unique_names(paths: Sequence[Path]) -> list[str]:
    """One name per photo for ``views/``: its stem, numbered from the second of a kind.

    >>> unique_names([Path("a/x.jpg"), Path("b/x.png"), Path("y.jpg")])
    ['x', 'x_2', 'y']
    """
    seen: dict[str, int] = {}
    names = []
    for p in paths:
        stem = p.stem or "photo"
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}_{seen[stem]}")
    return names


def landmark_paths(landmark_files: Sequence[str | Path] | None, n_photos: int) -> list[Path | None]:
    """One landmark file (or None: detect) per photo; InputError when the counts differ."""
    if landmark_files is None:
        return [None] * n_photos
    if len(landmark_files) != n_photos:
        raise InputError(landmark_files[0] if landmark_files else "--landmarks", f"{len(landmark_files)} landmark file(s) for {n_photos} photo(s)")
    return [Path(f) for f in landmark_files]


__all__ = ["analyse_located_photo", "analyse_photo", "landmark_paths", "photo_landmarks", "process_photo", "unique_names"]
