"""The output contract of ``reconstruct`` (README.md, "Outputs"): the file names, their
encodings and what each holds, the in-memory result they are written from, and the writer.

The reader of the same folder is ``io.reconstruction`` (what ``relight`` starts from); both
take the file names from here. Encodings:

- colour maps (``albedo.png``, ``texture.png``, ``views/*/*.png``): sRGB 8-bit RGBA of linear
  RGB (:func:`rgba`), alpha = the face (or the view's mask);
- normal maps (``normal.png``, ``normal_coarse.png``): RGB = (n + 1) / 2 of unit head-frame
  normals, alpha = face (:func:`normal_rgba`);
- ``confidence.png``, ``specular.png``, ``roughness.png``: 8-bit grey, linear, value / 255
  (:func:`grey8`);
- ``lighting.json``: per photo, SH radiance coefficients in the basis and frame of
  :data:`LIGHTING_CONVENTIONS`; ``report.json``: inputs (with each photo's camera pose, see
  :data:`CAMERA_POSE_CONVENTION`), exclusions, warnings, timings, the configuration.

>>> rgba(np.array([[[0.0, 0.5, 1.0]]]), np.array([[1.0]])).tolist()
[[[0, 188, 255, 255]]]
>>> grey8(np.array([0.0, 0.5, 1.2])).tolist()
[0, 128, 255]
"""

from __future__ import annotations

import contextlib
import os
import platform
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from hifialbedo import __version__
from hifialbedo.inverse.lighting import LightFit, LightingEstimate
from hifialbedo.io.gltf import SKIN_ROUGHNESS, face_normal_texture, packed_metallic_roughness, write_glb
from hifialbedo.io.images import Photo, encode_png, write_png
from hifialbedo.io.output import atomic_output_dir, write_json, write_obj
from hifialbedo.mesh.geometry import FaceGeometry
from hifialbedo.mesh.topology import load_face_topology
from hifialbedo.ops import sh as sh_ops
from hifialbedo.ops.colour import LUMA_WEIGHTS, linear_to_srgb_uint8
from hifialbedo.ops.vectors import normalize_rows
from hifialbedo.render.image_raster import ImageRaster, paste_window
from hifialbedo.render.unwrap import Unwrap
from hifialbedo.render.uv_layout import UVLayout
from hifialbedo.render.view_shading import shade_view

# --------------------------------------------------------------------------- file names

ALBEDO = "albedo.png"
"""UV diffuse albedo (colour map; RGB outside the face is a smooth padding)."""
TEXTURE = "texture.png"
"""UV lit texture of the first photo, completed (hidden texels = albedo x that photo's shading)."""
CONFIDENCE = "confidence.png"
"""UV, grey: how much each albedo texel was measured rather than mirrored or inpainted."""
NORMAL = "normal.png"
"""UV detailed normals (mesh normals plus shape-from-shading detail), normal map encoding."""
NORMAL_COARSE = "normal_coarse.png"
"""UV normals of the mesh alone, normal map encoding."""
SPECULAR = "specular.png"
"""UV Blinn-Phong specular intensity k, grey (only with the specular fit)."""
ROUGHNESS = "roughness.png"
"""UV roughness (``ops.brdf``: shininess = 2 / roughness^4 - 2), grey (only with the specular fit)."""
MESH = "mesh.obj"
"""The face mesh in the head frame, textured by albedo.png (with ``mesh.mtl``)."""
FACE_GLB = "face.glb"
"""glTF 2.0 binary: the mesh with a PBR material (albedo, roughness, tangent-space normal map)."""
LIGHTING = "lighting.json"
"""Each photo's SH light, mean skin albedo, dominant direction and fusion gain and weight."""
REPORT = "report.json"
"""Inputs, camera poses, exclusions, warnings, timings and the configuration."""
VIEWS = "views"
"""``views/<photo>/{albedo_view, shading_view, render_view}.png``: RGBA at the photo's size."""

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
"""How lighting.json's coefficients are meant (written into it, and into relight's light.json)."""

CAMERA_POSE_CONVENTION = (
    "p_camera = scale * p_head @ rotation + centre (row vectors); camera frame in working_size pixels: "
    "x right, y up (pixel row = -y), z toward the orthographic camera; exact for this photo's own mesh, "
    "approximate for mesh.obj when it averages several photos"
)
"""How report.json's ``camera_pose`` places mesh.obj's head frame in a photo (read back by
``io.reconstruction.parse_pose``)."""


# --------------------------------------------------------------------------- the result in memory


@dataclass
class Timer:
    """Seconds spent per stage of a run (``report.json`` ``timings_s``), summed over calls
    (and over threads: photos analysed in parallel add up, so a stage may exceed its wall time)."""

    stages: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, seconds: float) -> None:
        with self._lock:
            self.stages[name] = self.stages.get(name, 0.0) + seconds

    @contextlib.contextmanager
    def timing(self, name: str) -> Iterator[None]:
        """Add the time spent in the ``with`` block to stage ``name``."""
        t = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t)


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
    # The light: as fitted (``LightFit``, pipeline.photo) until the per-texel division, a
    # ``LightingEstimate`` (albedo, shading, confidence per texel) once fuse_photo_results made it.
    estimate: LightingEstimate | LightFit
    warnings: list[str] = field(default_factory=list)
    lighting_priors: dict = field(default_factory=dict)  # fit_lighting's cues (inverse.cues.PhotoCues), for refits


@dataclass
class Reconstruction:
    """The fused result, in memory (what :func:`write_outputs` writes)."""

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


# --------------------------------------------------------------------------- encodings


def rgba(linear_rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Linear RGB ``(H, W, 3)`` and alpha ``(H, W)`` in [0, 1] -> sRGB 8-bit RGBA ``(H, W, 4)``."""
    out = np.empty(linear_rgb.shape[:2] + (4,), np.uint8)
    out[..., :3] = linear_to_srgb_uint8(linear_rgb)
    out[..., 3] = np.clip(np.round(alpha * 255), 0, 255).astype(np.uint8)
    return out


def grey8(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (clipped) -> 8-bit grey, linear: value / 255."""
    return np.clip(np.round(values * 255), 0, 255).astype(np.uint8)


def normal_rgba(layout: UVLayout, normals: np.ndarray, face: np.ndarray) -> np.ndarray:
    """Per-texel unit normals ``(N, 3)`` -> RGBA uint8 map, RGB = (n + 1) / 2, alpha = face."""
    size = layout.size
    # Encoded per texel, then scattered as whole 4-byte pixels (a quarter of the memory
    # traffic of floats); 128 = round(0.5 * 255) is the fill outside the face.
    code = np.add(normals, 1.0, dtype=np.float32)
    code *= 127.5  # = 0.5 * 255, exactly
    np.clip(np.round(code, out=code), 0, 255, out=code)
    texels = np.zeros((layout.n_texels, 4), np.uint8)
    texels[:, :3] = code
    nm = np.full((size * size, 4), (128, 128, 128, 0), np.uint8)
    nm.view(np.uint32)[layout.flat_index, 0] = texels.view(np.uint32)[:, 0]
    nm[:, 3] = (face.reshape(-1) * 255).astype(np.uint8)
    return nm.reshape(size, size, 4)


SHADING_VIEW_PERCENTILE = 99.0
"""The shading view is divided by this percentile of its luminance where that is over 1."""


def view_images(result: PhotoResult, albedo_map: np.ndarray) -> dict[str, np.ndarray]:
    """``albedo_view`` / ``shading_view`` / ``render_view`` of one photo, RGBA at the photo's
    original size. The shading is in the photo's units (albedo x shading = the photo), often
    well over 1 where the albedo is darker than the photo: written as it is it would be a
    white mask, so it is divided by its brightest 1 %'s luminance where that is over 1 (the
    light's shape and colour; its strength is ``lighting.json``'s SH)."""
    view = shade_view(result.geometry, result.raster, albedo_map, result.estimate.sh)
    alpha = view.mask.astype(np.float32)
    shading = view.shading
    if view.mask.any():
        bright = float(np.percentile(shading[view.mask] @ LUMA_WEIGHTS, SHADING_VIEW_PERCENTILE))
        shading = shading / max(bright, 1.0)
    images = {"albedo_view": view.albedo, "shading_view": shading, "render_view": view.image}
    h, w = result.photo.original_size
    out = {}
    for key, img in images.items():
        full = paste_window(result.raster, rgba(img, alpha))
        if full.shape[:2] != (h, w):
            full = cv2.resize(full, (w, h), interpolation=cv2.INTER_LINEAR)
        out[key] = full
    return out


def camera_pose(geometry: FaceGeometry) -> dict:
    """How mesh.obj's head frame sits in the photo (:data:`CAMERA_POSE_CONVENTION`)."""
    frame = geometry.frame
    return {
        "convention": CAMERA_POSE_CONVENTION,
        "rotation": frame.rotation.tolist(),
        "centre": frame.centre.tolist(),
        "scale": frame.scale,
    }


def stored_path(path: str | Path, out_dir: str | Path | None = None) -> str:
    """How report.json and lighting.json name an input file: relative to ``out_dir`` when it
    lies inside it, else absolute (symlinks resolved), so the folder can be read from any
    working directory (``relight --over-photo``).

    >>> stored_path("/data/a.jpg", "/data/out"), stored_path("/data/out/x/a.jpg", "/data/out")
    ('/data/a.jpg', 'x/a.jpg')
    """
    real = Path(os.path.realpath(Path(path).expanduser()))
    if out_dir is not None:
        base = Path(os.path.realpath(Path(out_dir).expanduser()))
        if base in real.parents:
            return str(real.relative_to(base))
    return str(real)


def lighting_json(rec: Reconstruction, out_dir: str | Path | None = None) -> dict:
    """What lighting.json holds (photo paths as :func:`stored_path`)."""
    return {
        "conventions": LIGHTING_CONVENTIONS,
        "photos": [
            {
                "photo": stored_path(r.photo.path, out_dir),
                "view": r.name,
                "sh": r.estimate.sh.tolist(),
                "mean_skin_albedo_linear_rgb": r.estimate.mean_albedo.tolist(),
                **({"mean_skin_albedo_cues": r.estimate.prior.to_dict()} if r.estimate.prior is not None else {}),
                "dominant_direction": sh_ops.dominant_direction(r.estimate.sh).tolist(),
                "fusion_gain": g.tolist(),
                "fusion_weight": float(wt),
                **({"specular": rec.specular_photos[i]} if rec.specular_photos else {}),
            }
            for i, (r, g, wt) in enumerate(zip(rec.results, rec.fusion_gains, rec.fusion_weights))
        ],
    }


def report_json(rec: Reconstruction, extra_report: dict | None = None, out_dir: str | Path | None = None) -> dict:
    """What report.json holds, but its ``timings_s`` (added when everything is written); paths
    of photos as :func:`stored_path`."""
    return {
        "hifialbedo": __version__,
        "python": platform.python_version(),
        "inputs": [
            {
                "photo": stored_path(r.photo.path, out_dir),
                "view": r.name,
                "size": [r.photo.original_size[1], r.photo.original_size[0]],
                "working_size": [r.photo.pixels.shape[1], r.photo.pixels.shape[0]],
                "landmarks": r.landmark_source,
                "conversions": list(r.photo.notes),
                "visible_texels": float(r.unwrap.visible.mean()),
                "lighting_fit_residual": r.estimate.fit_residual,
                "outlier_fraction": r.estimate.outlier_fraction,
                "camera_pose": camera_pose(r.geometry),
            }
            for r in rec.results
        ],
        "excluded": [{**e, "photo": stored_path(e["photo"], out_dir)} if "photo" in e else e for e in rec.excluded],
        "uv_size": rec.layout.size,
        "warnings": rec.warnings,
        **({"specular": rec.specular_fit} if rec.specular_fit else {}),
        **(extra_report or {}),
    }


# --------------------------------------------------------------------------- the writer


def encoder_threads() -> int:
    """Threads that encode the PNGs (and that analyse several photos, ``pipeline.reconstruct``):
    as many as OpenCV may use (``cv2.getNumThreads()``: the CPUs, or 1 in a ``batch`` worker,
    ``batch.worker.limit_threads``), at most 4."""
    return max(1, min(cv2.getNumThreads(), 4))


def write_outputs(
    rec: Reconstruction,
    out_dir: Path,
    *,
    overwrite: bool = False,
    extra_report: dict | None = None,
    progress: Callable[[str], None] | None = None,
    inputs: Sequence[str | Path | None] = (),
) -> dict:
    """Write the output contract into ``out_dir`` atomically; return the report.

    ``inputs``: the files the result was made from; ``out_dir`` may not be, contain or lie
    inside one (``io.output.check_output_dir``)."""
    note = progress or (lambda stage: None)
    note("writing")
    layout = rec.layout
    face = layout.mask.astype(np.float32)
    topo = load_face_topology()
    timer = rec.timer
    with atomic_output_dir(out_dir, overwrite=overwrite, inputs=inputs) as tmp, ThreadPoolExecutor(encoder_threads()) as pool:
        # Every PNG is made and encoded on the pool (OpenCV and NumPy release the GIL) while
        # this thread builds the next map; the files are written once all are encoded.
        encoded: dict[Path, Future[bytes]] = {}

        def png(path: Path, make: Callable[[], np.ndarray]) -> None:
            encoded[path] = pool.submit(lambda: encode_png(make()))

        with timer.timing("write"):
            coarse = normalize_rows(layout.interpolate(rec.object_normals))
            n = coarse if rec.detail_normals is None else rec.detail_normals
            # The longest job first: glTF's tangent-space normal map, converted from the
            # float object-space one, and its encoding.
            def glb_normals() -> tuple[np.ndarray, bytes]:
                tangents, texture = face_normal_texture(rec.object_vertices, rec.object_normals, n, layout)
                return tangents, encode_png(texture)

            glb_normal = pool.submit(glb_normals)
            albedo_rgba = rgba(rec.albedo, face)
            png(tmp / ALBEDO, lambda: albedo_rgba)
            png(tmp / TEXTURE, lambda: rgba(rec.texture, face))
            png(tmp / CONFIDENCE, lambda: grey8(rec.confidence))
            png(tmp / NORMAL_COARSE, lambda: normal_rgba(layout, coarse, face))
            png(tmp / NORMAL, lambda: normal_rgba(layout, n, face))
            if rec.specular is not None and rec.roughness is not None:
                # 8-bit grey, linear: value / 255 = intensity (clipped to SPECULAR_MAX = 1) and roughness.
                png(tmp / SPECULAR, lambda: grey8(rec.specular))
                png(tmp / ROUGHNESS, lambda: grey8(rec.roughness))
            roughness = SKIN_ROUGHNESS if rec.roughness is None else rec.roughness
            glb_roughness = roughness if np.ndim(roughness) == 0 else pool.submit(lambda: encode_png(packed_metallic_roughness(np.asarray(roughness))))
            write_obj(tmp / MESH, rec.object_vertices, rec.object_normals, topo.uv, topo.faces, ALBEDO)
        for r in rec.results:
            with timer.timing("views"):
                views = view_images(r, rec.albedo)
            vdir = tmp / VIEWS / r.name
            vdir.mkdir(parents=True)
            for key, img in views.items():
                png(vdir / f"{key}.png", lambda img=img: img)
        with timer.timing("write"):
            write_glb(
                tmp / FACE_GLB,
                rec.object_vertices,
                rec.object_normals,
                topo.uv,
                topo.faces,
                encoded[tmp / ALBEDO].result(),  # RGBA: the material is opaque (io.gltf)
                tangents=glb_normal.result()[0],
                normal_texture=glb_normal.result()[1],
                roughness=glb_roughness.result() if isinstance(glb_roughness, Future) else glb_roughness,
            )
            for path, data in encoded.items():
                write_png(path, data.result())
            write_json(tmp / LIGHTING, lighting_json(rec, out_dir))
            report = report_json(rec, extra_report, out_dir)
        report["timings_s"] = {k: round(v, 4) for k, v in timer.stages.items()}
        write_json(tmp / REPORT, report)
    return report


__all__ = [
    "ALBEDO",
    "CAMERA_POSE_CONVENTION",
    "CONFIDENCE",
    "FACE_GLB",
    "LIGHTING",
    "LIGHTING_CONVENTIONS",
    "MESH",
    "NORMAL",
    "NORMAL_COARSE",
    "REPORT",
    "ROUGHNESS",
    "SPECULAR",
    "TEXTURE",
    "VIEWS",
    "PhotoResult",
    "Reconstruction",
    "Timer",
    "camera_pose",
    "grey8",
    "lighting_json",
    "normal_rgba",
    "report_json",
    "rgba",
    "stored_path",
    "view_images",
    "write_outputs",
]
