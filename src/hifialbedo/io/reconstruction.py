"""Reading back the output folder of ``reconstruct`` (what ``relight`` starts from).

The folder's contract (file names, encodings, the writer) is ``io.contract``. Each reader
validates and raises ``InputError`` naming the file and the problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from hifialbedo.io.contract import ALBEDO, LIGHTING, MESH, REPORT, ROUGHNESS, SPECULAR
from hifialbedo.io.errors import InputError
from hifialbedo.io.light import parse_sh, read_json
from hifialbedo.mesh.landmarks import quiet_native_stderr
from hifialbedo.mesh.topology import N_VERTICES
from hifialbedo.ops.colour import srgb_uint8_to_linear


@dataclass(frozen=True)
class CameraPose:
    """How the head-frame mesh sits in a photo: p_camera = scale * p_head @ rotation + centre.

    Camera frame in the photo's working pixels: x right, y up (pixel row = -y), z toward the
    (orthographic) camera; ``working_size`` and ``size`` are (width, height) of the photo as
    processed and as stored.
    """

    rotation: np.ndarray  # (3, 3): rows are the head axes in camera coordinates
    centre: np.ndarray  # (3,)
    scale: float
    working_size: tuple[int, int]
    size: tuple[int, int]


@dataclass(frozen=True)
class PhotoLight:
    """One input photo's estimated light (``lighting.json``)."""

    view: str  # unique stem, as under views/
    photo: str  # the photo's path as given to reconstruct
    sh: np.ndarray  # (9, 3) linear-RGB radiance, that photo's camera frame


@dataclass(frozen=True)
class ReconstructionFiles:
    """The parts of a reconstruct output folder that relighting uses."""

    out_dir: Path
    albedo: np.ndarray  # (S, S, 3) float32 linear RGB
    face: np.ndarray  # (S, S) bool: texels on the face (albedo.png's alpha)
    vertices: np.ndarray  # (468, 3) float64, head frame
    lights: list[PhotoLight]
    inputs: list[dict]  # report.json "inputs"
    specular: np.ndarray | None  # (S, S) linear specular intensity, if specular.png exists
    roughness: np.ndarray | None  # (S, S) in [0, 1], if roughness.png exists

    def pose(self, index: int = 0) -> CameraPose:
        """The camera pose of input ``index`` (``InputError`` for output folders without one)."""
        return parse_pose(self.inputs[index], self.out_dir / REPORT)


def _read_uint_image(path: Path) -> np.ndarray:
    if not path.is_file():
        raise InputError(path, "no such file (is the folder an output of hifialbedo reconstruct?)")
    with quiet_native_stderr():  # libpng's own "libpng error: ..." line
        try:
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        except cv2.error:
            image = None
    if image is None:
        raise InputError(path, "cannot decode the PNG (truncated or corrupt)")
    return image


def read_albedo(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``albedo.png`` (square RGBA sRGB) -> linear RGB ``(S, S, 3)`` float32 and face mask ``(S, S)``."""
    image = _read_uint_image(path)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 4 or image.shape[0] != image.shape[1]:
        raise InputError(path, f"expected a square 8-bit RGBA UV map, got shape {image.shape} {image.dtype}")
    rgb = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return srgb_uint8_to_linear(np.ascontiguousarray(rgb[..., :3])), rgb[..., 3] > 127


def read_grey_map(path: Path, size: int) -> np.ndarray:
    """A UV map stored as 8/16-bit PNG (grey or RGB: the first channel) -> ``(S, S)`` in [0, 1],
    resized to ``size`` if needed (linear values, no transfer curve)."""
    image = _read_uint_image(path)
    if image.dtype not in (np.uint8, np.uint16):
        raise InputError(path, f"expected an 8- or 16-bit PNG, got {image.dtype}")
    top = 255.0 if image.dtype == np.uint8 else 65535.0
    grey = (image[..., 2] if image.ndim == 3 else image).astype(np.float32) / top  # OpenCV: BGR, R last
    if grey.shape != (size, size):
        grey = cv2.resize(grey, (size, size), interpolation=cv2.INTER_LINEAR)
    return grey


def read_obj_vertices(path: Path) -> np.ndarray:
    """The 468 vertex positions ``(468, 3)`` of ``mesh.obj`` (the face topology's order)."""
    if not path.is_file():
        raise InputError(path, "no such file (is the folder an output of hifialbedo reconstruct?)")
    try:
        rows = [line.split()[1:4] for line in path.read_text().splitlines() if line.startswith("v ")]
        verts = np.array(rows, dtype=np.float64)
    except (UnicodeDecodeError, ValueError):
        raise InputError(path, "cannot parse the OBJ vertices") from None
    if verts.shape != (N_VERTICES, 3):
        raise InputError(path, f"expected {N_VERTICES} vertices (the hifialbedo face mesh), got {len(rows)}")
    if not np.isfinite(verts).all():
        raise InputError(path, "vertices contain NaN or infinity")
    return verts


def read_lights(path: Path) -> list[PhotoLight]:
    """Each input photo's SH light from ``lighting.json``."""
    data = read_json(path)
    photos = data.get("photos") if isinstance(data, dict) else None
    if not isinstance(photos, list) or not photos or not all(isinstance(p, dict) and "sh" in p for p in photos):
        raise InputError(path, 'expected {"photos": [{"sh": 9x3, ...}, ...]} as written by reconstruct')
    lights = []
    for i, p in enumerate(photos):
        view = str(p.get("view") or Path(str(p.get("photo", f"photo{i}"))).stem or f"photo{i}")
        lights.append(PhotoLight(view, str(p.get("photo", "")), parse_sh(p["sh"], path)))
    return lights


def parse_pose(entry: dict, path: Path) -> CameraPose:
    """The ``camera_pose`` of one ``report.json`` input (written by reconstruct since relight)."""
    pose = entry.get("camera_pose")
    if not isinstance(pose, dict):
        raise InputError(path, "no camera_pose for the photo (written by an older hifialbedo: run reconstruct again)")
    try:
        rotation = np.array(pose["rotation"], dtype=np.float64)
        centre = np.array(pose["centre"], dtype=np.float64)
        scale = float(pose["scale"])
        working = tuple(int(v) for v in entry["working_size"])
        size = tuple(int(v) for v in entry["size"])
    except (KeyError, TypeError, ValueError):
        raise InputError(path, "bad camera_pose (needs rotation 3x3, centre 3, scale, working_size, size)") from None
    if rotation.shape != (3, 3) or centre.shape != (3,) or len(working) != 2 or len(size) != 2:
        raise InputError(path, "bad camera_pose shapes (rotation 3x3, centre 3)")
    if not (np.isfinite(rotation).all() and np.isfinite(centre).all() and np.isfinite(scale) and scale > 0):
        raise InputError(path, "camera_pose has NaN, infinite or non-positive values")
    if min(working) < 1 or min(size) < 1:
        raise InputError(path, "photo sizes must be positive")
    return CameraPose(rotation, centre, scale, working, size)


def read_reconstruction(out_dir: str | Path) -> ReconstructionFiles:
    """Read albedo.png, mesh.obj, lighting.json, report.json (and specular.png / roughness.png
    when present) from a ``reconstruct`` output folder."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise InputError(out_dir, "no such folder (give the output folder of hifialbedo reconstruct)")
    albedo, face = read_albedo(out_dir / ALBEDO)
    vertices = read_obj_vertices(out_dir / MESH)
    lights = read_lights(out_dir / LIGHTING)
    report_path = out_dir / REPORT
    report = read_json(report_path)
    inputs = report.get("inputs") if isinstance(report, dict) else None
    if not isinstance(inputs, list) or not inputs or not all(isinstance(e, dict) and "photo" in e for e in inputs):
        raise InputError(report_path, 'expected {"inputs": [{"photo": ...}, ...]} as written by reconstruct')
    size = albedo.shape[0]
    specular = read_grey_map(out_dir / SPECULAR, size) if (out_dir / SPECULAR).exists() else None
    roughness = read_grey_map(out_dir / ROUGHNESS, size) if (out_dir / ROUGHNESS).exists() else None
    return ReconstructionFiles(out_dir, albedo, face, vertices, lights, inputs, specular, roughness)
