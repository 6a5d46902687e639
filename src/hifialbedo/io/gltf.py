"""glTF 2.0 binary (``.glb``) export: the textured face mesh with a PBR metallic-roughness material.

One mesh, one primitive, one material, every texture embedded as PNG in the binary chunk, so a
single file opens in Blender (File > Import > glTF 2.0) and three.js (``GLTFLoader``).
Conventions (glTF's, which the head frame already follows): y up, +z toward the viewer,
counter-clockwise front faces; ``TEXCOORD_0`` has its origin at the top-left of the image
with v *down*, so the UV layout's coordinates go in as they are (unlike OBJ's, flipped).
Positions are in head-frame units (the mean vertex distance from the centroid, as in
``mesh.obj``), not metres.

Material:

- ``baseColorTexture``: the albedo, sRGB 8-bit RGB (glTF reads base colour as sRGB); or
  ``albedo.png``'s RGBA bytes as they are (``reconstruct``: no second encoding), whose alpha
  (the face region) a renderer ignores under ``alphaMode`` OPAQUE (glTF 2.0, 3.9.4).
- ``metallicFactor`` 0 (skin is a dielectric); ``roughnessFactor`` a constant, or 1 times a
  ``metallicRoughnessTexture`` (linear: G = roughness, B = metallic = 0, R = 255, unused).
- ``normalTexture``: tangent space, OpenGL convention (+X along u, +Y up the image, i.e.
  along decreasing v, +Z out of the surface), with the ``TANGENT`` attribute from
  ``mesh.geometry.vertex_tangents``; ``tangent_space_normal_map`` converts an object-space map.
  three.js uses the exported tangents; Blender's importer computes its own MikkTSpace ones,
  which on the face mesh agree with these within 1 degree (checked once with Blender 3.4).
- ``alphaMode`` OPAQUE: the albedo's padding outside the face region is smooth colour.

The container is written by hand (12-byte header, a JSON chunk padded with spaces and a BIN
chunk padded with zeros, each to 4 bytes; glTF 2.0 spec, "Binary glTF Layout").
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from hifialbedo import __version__
from hifialbedo.io.images import encode_png
from hifialbedo.mesh.geometry import vertex_tangents
from hifialbedo.mesh.topology import load_face_topology
from hifialbedo.render.uv_layout import UVLayout, uv_layout

SKIN_ROUGHNESS = 0.5
"""Constant roughness when no roughness map is given: a typical value for skin in PBR
shaders (Blender's Principled BSDF skin presets use 0.4-0.6)."""

_FLOAT, _UINT16, _UINT32 = 5126, 5123, 5125  # accessor componentType
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963  # bufferView target
_LINEAR, _LINEAR_MIPMAP_LINEAR, _CLAMP_TO_EDGE = 9729, 9987, 33071  # sampler
_JSON, _BIN = 0x4E4F534A, 0x004E4942  # chunk types


def tangent_space_normal_map(
    object_normal_map: np.ndarray, layout: UVLayout, vertex_normals: np.ndarray, vertex_tangents: np.ndarray
) -> np.ndarray:
    """Object-space normal map ``(S, S, 3)`` -> glTF tangent-space normal texture ``(S, S, 3)`` uint8.

    ``object_normal_map`` holds normals (any length, float) in the mesh's frame over
    ``layout`` (``uv_layout(S)``); ``vertex_normals`` ``(V, 3)`` and ``vertex_tangents``
    ``(V, 4)`` are the mesh's ``NORMAL`` and ``TANGENT``. Texels outside the face are flat,
    (0, 0, 1) -> (128, 128, 255); inside, :func:`tangent_space_texels`.
    """
    size = layout.size
    if object_normal_map.shape != (size, size, 3):
        raise ValueError(f"object normal map must be ({size}, {size}, 3) for this layout, got {object_normal_map.shape}")
    return _flat_outside(layout, tangent_space_texels(layout.gather(object_normal_map), layout, vertex_normals, vertex_tangents))


def tangent_space_texels(
    object_normals: np.ndarray, layout: UVLayout, vertex_normals: np.ndarray, vertex_tangents: np.ndarray
) -> np.ndarray:
    """Object-space normals ``(N, 3)`` at the layout's texels (any length, float) -> their
    glTF tangent-space encoding ``(N, 3)`` uint8.

    Per texel the frame a glTF renderer builds is interpolated (T, B = w cross(N, T) and N
    from the vertices' ``TANGENT`` ``(V, 4)`` and ``NORMAL`` ``(V, 3)``, each normalised, as
    three.js does) and the normal is expressed in it: t = M^-1 n with M = [T B N], then
    normalised, so the renderer's ``normalize(M t)`` gives n back. Encoded as (t + 1) / 2 in
    8 bits; a zero normal is flat, (0, 0, 1). Normals equal to the interpolated mesh normals
    are flat everywhere.
    """
    n_v = np.asarray(vertex_normals, np.float64)
    t_v = np.asarray(vertex_tangents, np.float64)
    b_v = np.cross(n_v, t_v[:, :3]) * t_v[:, 3:4]

    # Float32 (an 8-bit texture is the result), laid out as (3, N) rows: every step below
    # is a pass over contiguous texels (NumPy on (N, 3) columns is several times slower).
    def frame_axis(values: np.ndarray) -> np.ndarray:
        rows = layout.interpolate_rows(values)
        rows /= np.maximum(np.sqrt(rows[0] * rows[0] + rows[1] * rows[1] + rows[2] * rows[2]), 1e-12)
        return rows

    t, b, n = frame_axis(t_v[:, :3]), frame_axis(b_v), frame_axis(n_v)
    target = np.asarray(object_normals, np.float32).T
    # M^-1 = [b x n, n x t, t x b] (rows) / det(M), with det(M) = t . (b x n).
    b_n, n_t, t_b = _cross(b, n), _cross(n, t), _cross(t, b)
    det = t[0] * b_n[0] + t[1] * b_n[1] + t[2] * b_n[2]
    det = np.where(np.abs(det) > 1e-12, det, np.float32(1.0))
    local = np.empty((3, target.shape[1]), np.float32)
    for row, axis in zip(local, (b_n, n_t, t_b)):
        np.multiply(axis[0], target[0], out=row)
        row += axis[1] * target[1]
        row += axis[2] * target[2]
        row /= det
    length = np.sqrt(local[0] * local[0] + local[1] * local[1] + local[2] * local[2])
    zero = length <= 1e-9
    local /= np.maximum(length, 1e-12)
    local[:, zero] = np.array([[0.0], [0.0], [1.0]], np.float32)
    encoded = np.empty((target.shape[1], 3), np.uint8)
    for c in range(3):
        encoded[:, c] = encode_unit_vectors(local[c])
    return encoded


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross products of vectors laid out as rows ``(3, N)``."""
    return np.stack([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def _flat_outside(layout: UVLayout, texels: np.ndarray) -> np.ndarray:
    """Tangent-space texels ``(N, 3)`` uint8 -> the texture ``(S, S, 3)``, flat outside the face."""
    size = layout.size
    texture = np.empty((size * size, 3), np.uint8)
    texture[:] = encode_unit_vectors(np.array([0.0, 0.0, 1.0]))
    texture[layout.flat_index] = texels
    return texture.reshape(size, size, 3)


def encode_unit_vectors(vectors: np.ndarray) -> np.ndarray:
    """Unit vectors ``(..., 3)`` in [-1, 1] -> uint8 ``round((v + 1) / 2 * 255)`` (glTF normal textures)."""
    return np.clip(np.round((np.asarray(vectors, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def write_face_glb(
    path: Path,
    vertices: np.ndarray,
    normals: np.ndarray,
    albedo: np.ndarray,
    *,
    object_normal_map: np.ndarray | None = None,
    roughness: float | np.ndarray = SKIN_ROUGHNESS,
) -> None:
    """Write the 468-vertex face mesh as ``face.glb`` (see the module docstring).

    ``vertices``/``normals`` ``(468, 3)`` in the head frame; ``albedo`` ``(S, S, 3 or 4)``
    uint8 sRGB over the face's UV layout (alpha, if any, is dropped: the material is opaque);
    ``object_normal_map`` ``(S', S', 3)`` float object-space normals over the layout, converted
    to tangent space (with exported tangents) or left out when None; ``roughness`` a constant
    in [0, 1] or a map (see ``write_glb``).
    """
    topo = load_face_topology()
    tangents = normal_texture = None
    if object_normal_map is not None:
        tangents, normal_texture = face_normal_texture(vertices, normals, object_normal_map)
    write_glb(
        path,
        vertices,
        normals,
        topo.uv,
        topo.faces,
        albedo[..., :3],
        tangents=tangents,
        normal_texture=normal_texture,
        roughness=roughness,
    )


def face_normal_texture(
    vertices: np.ndarray, normals: np.ndarray, object_normals: np.ndarray, layout: UVLayout | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The face mesh's ``TANGENT`` attribute ``(468, 4)`` and the tangent-space normal texture
    ``(S, S, 3)`` uint8 (what ``write_face_glb`` embeds) of object-space normals: a map
    ``(S, S, 3)`` over ``uv_layout(S)`` (``tangent_space_normal_map``), or, with ``layout``,
    per texel of it ``(N, 3)`` (``tangent_space_texels``)."""
    topo = load_face_topology()
    tangents = vertex_tangents(vertices, normals, topo.uv, topo.faces)
    if layout is None:
        return tangents, tangent_space_normal_map(object_normals, uv_layout(object_normals.shape[0]), normals, tangents)
    return tangents, _flat_outside(layout, tangent_space_texels(object_normals, layout, normals, tangents))


def write_glb(
    path: Path,
    vertices: np.ndarray,
    normals: np.ndarray,
    uv: np.ndarray,
    faces: np.ndarray,
    base_colour: np.ndarray | bytes,
    *,
    tangents: np.ndarray | None = None,
    normal_texture: np.ndarray | bytes | None = None,
    roughness: float | np.ndarray | bytes = SKIN_ROUGHNESS,
    name: str = "face",
) -> None:
    """Write a UV-textured triangle mesh with a PBR metallic-roughness material as glTF 2.0 binary.

    - ``vertices`` ``(V, 3)``, ``normals`` ``(V, 3)`` (normalised here), ``uv`` ``(V, 2)`` with
      v down (glTF's convention, no flip), ``faces`` ``(F, 3)`` 0-based, counter-clockwise.
    - ``base_colour`` ``(H, W, 3)`` uint8 sRGB: ``baseColorTexture``.
    - ``tangents`` ``(V, 4)``: xyz unit, w = +-1 handedness (``mesh.geometry.vertex_tangents``).
    - ``normal_texture`` ``(H', W', 3)`` uint8, tangent space, OpenGL convention
      (``tangent_space_normal_map``); without ``tangents`` a renderer computes MikkTSpace ones.
    - ``roughness``: a float in [0, 1] (``roughnessFactor``), or a map ``(H'', W'')`` float in
      [0, 1] or uint8, packed into the G channel of a ``metallicRoughnessTexture``
      (``packed_metallic_roughness``).
    - Each texture may also come as its PNG bytes, already encoded (``io.images.encode_png``
      of the array described; not checked here), so that they can be encoded in parallel.
    ``metallicFactor`` is 0. Raises ``ValueError`` on bad shapes, types or ranges.
    """
    vertices = _float_array("vertices", vertices, (None, 3))
    n_vertices = len(vertices)
    normals = _float_array("normals", normals, (n_vertices, 3))
    lengths = np.linalg.norm(normals, axis=1, keepdims=True)
    if (lengths < 1e-12).any():
        raise ValueError("normals must be non-zero")
    normals = normals / lengths
    uv = _float_array("uv", uv, (n_vertices, 2))
    faces = np.asarray(faces)
    if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0 or not np.issubdtype(faces.dtype, np.integer):
        raise ValueError(f"faces must be a non-empty integer (F, 3) array, got {faces.dtype} {faces.shape}")
    if faces.min() < 0 or faces.max() >= n_vertices:
        raise ValueError(f"faces index vertices 0..{n_vertices - 1}, got {faces.min()}..{faces.max()}")
    if not isinstance(base_colour, bytes):
        _check_image("base_colour", base_colour, channels=3)

    blob = bytearray()
    views: list[dict] = []
    accessors: list[dict] = []

    def view(data: bytes, target: int | None = None) -> int:
        blob.extend(b"\0" * (-len(blob) % 4))  # every view 4-byte aligned
        views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": len(data)} | ({"target": target} if target else {}))
        blob.extend(data)
        return len(views) - 1

    def accessor(values: np.ndarray, kind: str, *, bounds: bool = False) -> int:
        values = np.ascontiguousarray(values, np.float32)
        acc = {"bufferView": view(values.tobytes(), _ARRAY_BUFFER), "componentType": _FLOAT, "count": len(values), "type": kind}
        if bounds:
            acc |= {"min": values.min(axis=0).tolist(), "max": values.max(axis=0).tolist()}
        accessors.append(acc)
        return len(accessors) - 1

    attributes = {
        "POSITION": accessor(vertices, "VEC3", bounds=True),
        "NORMAL": accessor(normals, "VEC3"),
        "TEXCOORD_0": accessor(uv, "VEC2"),
    }
    if tangents is not None:
        tangents = _float_array("tangents", tangents, (n_vertices, 4))
        if (
            not np.allclose(np.linalg.norm(tangents[:, :3], axis=1), 1.0, atol=1e-4)
            or not np.isin(tangents[:, 3], (-1.0, 1.0)).all()
        ):
            raise ValueError("tangents must have unit xyz and w = +1 or -1")
        attributes["TANGENT"] = accessor(tangents, "VEC4")
    index_type, index_dtype = (_UINT16, np.uint16) if n_vertices <= 65535 else (_UINT32, np.uint32)
    indices = faces.astype(index_dtype).reshape(-1)
    accessors.append(
        {
            "bufferView": view(indices.tobytes(), _ELEMENT_ARRAY_BUFFER),
            "componentType": index_type,
            "count": len(indices),
            "type": "SCALAR",
        }
    )
    index_accessor = len(accessors) - 1

    images: list[dict] = []

    def texture(rgb: np.ndarray | bytes) -> dict:
        png = rgb if isinstance(rgb, bytes) else encode_png(rgb)
        images.append({"bufferView": view(png), "mimeType": "image/png"})
        return {"index": len(images) - 1}

    pbr: dict = {"baseColorFactor": [1.0, 1.0, 1.0, 1.0], "baseColorTexture": texture(base_colour), "metallicFactor": 0.0}
    if isinstance(roughness, bytes):
        pbr["roughnessFactor"] = 1.0
        pbr["metallicRoughnessTexture"] = texture(roughness)
    elif np.ndim(roughness) == 0:
        r = float(roughness)
        if not 0.0 <= r <= 1.0:
            raise ValueError(f"roughness must be in [0, 1], got {r}")
        pbr["roughnessFactor"] = r
    else:
        pbr["roughnessFactor"] = 1.0
        pbr["metallicRoughnessTexture"] = texture(packed_metallic_roughness(np.asarray(roughness)))
    material: dict = {"name": f"{name}_albedo", "pbrMetallicRoughness": pbr, "alphaMode": "OPAQUE", "doubleSided": False}
    if normal_texture is not None:
        if not isinstance(normal_texture, bytes):
            _check_image("normal_texture", normal_texture, channels=3)
        material["normalTexture"] = texture(normal_texture) | {"scale": 1.0}

    gltf = {
        "asset": {"version": "2.0", "generator": f"hifialbedo {__version__}"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"name": name, "mesh": 0}],
        "meshes": [
            {"name": name, "primitives": [{"attributes": attributes, "indices": index_accessor, "material": 0, "mode": 4}]}
        ],
        "materials": [material],
        "samplers": [
            {"magFilter": _LINEAR, "minFilter": _LINEAR_MIPMAP_LINEAR, "wrapS": _CLAMP_TO_EDGE, "wrapT": _CLAMP_TO_EDGE}
        ],
        "images": images,
        "textures": [{"sampler": 0, "source": i} for i in range(len(images))],
        "accessors": accessors,
        "bufferViews": views,
        "buffers": [{"byteLength": len(blob)}],
    }
    Path(path).write_bytes(glb_container(json.dumps(gltf, separators=(",", ":")).encode(), bytes(blob)))


def glb_container(json_chunk: bytes, bin_chunk: bytes) -> bytes:
    """The GLB layout: header (magic, version 2, total length), JSON chunk padded with spaces,
    BIN chunk padded with zeros, both to a multiple of 4 bytes."""
    json_chunk += b" " * (-len(json_chunk) % 4)
    bin_chunk += b"\0" * (-len(bin_chunk) % 4)
    total = 12 + 8 + len(json_chunk) + 8 + len(bin_chunk)
    return b"".join(
        [
            struct.pack("<4sII", b"glTF", 2, total),
            struct.pack("<II", len(json_chunk), _JSON),
            json_chunk,
            struct.pack("<II", len(bin_chunk), _BIN),
            bin_chunk,
        ]
    )


def packed_metallic_roughness(roughness: np.ndarray) -> np.ndarray:
    """A roughness map ``(H, W)`` (float in [0, 1] or uint8) -> glTF's packed RGB uint8:
    R = 255 (unused), G = roughness, B = metallic = 0."""
    if roughness.ndim != 2 or min(roughness.shape) == 0:
        raise ValueError(f"roughness map must be (H, W), got {roughness.shape}")
    if roughness.dtype == np.uint8:
        g = roughness
    else:
        r = roughness.astype(np.float64)
        if not np.isfinite(r).all() or r.min() < 0.0 or r.max() > 1.0:
            raise ValueError("roughness map values must be finite and in [0, 1]")
        g = np.round(r * 255.0).astype(np.uint8)
    packed = np.zeros(roughness.shape + (3,), np.uint8)
    packed[..., 0] = 255
    packed[..., 1] = g
    return packed


def _float_array(what: str, values: np.ndarray, shape: tuple[int | None, int]) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    rows, cols = shape
    if a.ndim != 2 or a.shape[1] != cols or (rows is not None and a.shape[0] != rows) or len(a) == 0:
        want = f"({rows if rows is not None else 'V'}, {cols})"
        raise ValueError(f"{what} must be {want}, got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{what} must be finite")
    return a


def _check_image(what: str, image: np.ndarray, *, channels: int) -> None:
    if (
        not isinstance(image, np.ndarray)
        or image.dtype != np.uint8
        or image.ndim != 3
        or image.shape[2] != channels
        or min(image.shape[:2]) == 0
    ):
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise ValueError(f"{what} must be (H, W, {channels}) uint8, got {dtype} {shape}")
