"""face.glb: the glTF 2.0 export, re-read by an independent reader (trimesh).

trimesh moves glTF's top-left UV origin to OBJ's bottom-left on reading (v -> 1 - v) and
does not load TANGENT, which is decoded here from the raw chunks with the spec's layout.
"""

from __future__ import annotations

import json
import struct

import cv2
import numpy as np
import pytest
import trimesh

from hifialbedo.io.gltf import SKIN_ROUGHNESS, glb_container, tangent_space_normal_map, write_face_glb, write_glb
from hifialbedo.io.output import write_obj
from hifialbedo.mesh.geometry import vertex_normals, vertex_tangents
from hifialbedo.mesh.topology import load_face_topology
from hifialbedo.pipeline import ReconstructConfig, reconstruct
from hifialbedo.render.uv_layout import uv_layout

from .conftest import SAMPLES

S = 128


def bulge_mesh() -> tuple[np.ndarray, np.ndarray]:
    """The face topology on a sphere cap over its UV layout (head frame: u -> +x, v -> -y)."""
    uv = load_face_topology().uv
    x, y = (uv[:, 0] - 0.5) * 2.0, (0.5 - uv[:, 1]) * 2.0
    verts = np.stack([x, y, np.sqrt(4.0 - x**2 - y**2)], axis=1)
    return verts, vertex_normals(verts, load_face_topology().faces)


def interpolated_normals(normals: np.ndarray, size: int) -> np.ndarray:
    layout = uv_layout(size)
    n = layout.interpolate(normals)
    return layout.scatter(n / np.linalg.norm(n, axis=1, keepdims=True))


def read_glb(path) -> tuple[object, dict, bytes]:
    """(trimesh geometry, JSON, BIN) of a .glb with one mesh."""
    scene = trimesh.load(path, process=False)
    (geometry,) = scene.geometry.values()
    data = path.read_bytes()
    magic, version, total = struct.unpack_from("<4sII", data, 0)
    assert (magic, version, total) == (b"glTF", 2, len(data))
    json_len, json_type = struct.unpack_from("<II", data, 12)
    bin_len, bin_type = struct.unpack_from("<II", data, 20 + json_len)
    assert (json_type, bin_type) == (0x4E4F534A, 0x004E4942)
    assert json_len % 4 == 0 and bin_len % 4 == 0
    return geometry, json.loads(data[20 : 20 + json_len]), data[28 + json_len : 28 + json_len + bin_len]


def raw_float_accessor(gltf: dict, blob: bytes, index: int) -> np.ndarray:
    acc = gltf["accessors"][index]
    view = gltf["bufferViews"][acc["bufferView"]]
    assert acc["componentType"] == 5126 and "byteStride" not in view
    width = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}[acc["type"]]
    start = view["byteOffset"] + acc.get("byteOffset", 0)
    return np.frombuffer(blob, np.float32, acc["count"] * width, start).reshape(-1, width)


def image(pil_image) -> np.ndarray:
    return np.asarray(pil_image.convert("RGB"))


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A face.glb of the bulge mesh: random albedo, roughness 0.37, flat normal map."""
    verts, normals = bulge_mesh()
    albedo = np.random.default_rng(6).integers(0, 256, (S, S, 4), dtype=np.uint8)
    path = tmp_path_factory.mktemp("glb") / "face.glb"
    write_face_glb(path, verts, normals, albedo, object_normal_map=interpolated_normals(normals, S), roughness=0.37)
    return path, verts, normals, albedo


# ----------------------------------------------------------------------------- mesh and material


def test_mesh_rereads_with_its_positions_normals_uvs_and_triangles(written, tmp_path):
    path, verts, normals, _ = written
    geometry, gltf, _ = read_glb(path)
    topo = load_face_topology()
    assert geometry.vertices.shape == (468, 3)
    np.testing.assert_array_equal(geometry.faces, topo.faces)
    np.testing.assert_allclose(geometry.vertices, verts, atol=1e-6)
    np.testing.assert_allclose(geometry.vertex_normals, normals, atol=1e-6)
    # glTF's TEXCOORD_0 is the PNG-space layout as it is (trimesh flips v on reading).
    uv = geometry.visual.uv
    np.testing.assert_allclose(np.stack([uv[:, 0], 1.0 - uv[:, 1]], axis=1), topo.uv, atol=1e-6)
    # The positions are mesh.obj's.
    write_obj(tmp_path / "mesh.obj", verts, normals, topo.uv, topo.faces, "albedo.png")
    obj_v = [
        list(map(float, line.split()[1:])) for line in (tmp_path / "mesh.obj").read_text().splitlines() if line.startswith("v ")
    ]
    np.testing.assert_allclose(geometry.vertices, obj_v, atol=1e-6)
    assert gltf["asset"]["version"] == "2.0"


def test_material_is_the_albedo_dielectric_with_the_given_roughness(written):
    path, _, _, albedo = written
    geometry, gltf, _ = read_glb(path)
    material = geometry.visual.material
    assert material.metallicFactor == 0.0
    assert material.roughnessFactor == pytest.approx(0.37)
    assert material.metallicRoughnessTexture is None
    assert material.alphaMode == "OPAQUE"
    np.testing.assert_array_equal(image(material.baseColorTexture), albedo[..., :3])
    assert (
        gltf["materials"][0]["normalTexture"]["index"]
        != gltf["materials"][0]["pbrMetallicRoughness"]["baseColorTexture"]["index"]
    )


def test_constant_roughness_defaults_to_skin(tmp_path):
    verts, normals = bulge_mesh()
    write_face_glb(tmp_path / "face.glb", verts, normals, np.zeros((16, 16, 3), np.uint8))
    geometry, gltf, _ = read_glb(tmp_path / "face.glb")
    assert geometry.visual.material.roughnessFactor == pytest.approx(SKIN_ROUGHNESS)
    assert "normalTexture" not in gltf["materials"][0] and "TANGENT" not in gltf["meshes"][0]["primitives"][0]["attributes"]


def test_roughness_map_is_packed_in_green_with_metallic_zero_in_blue(tmp_path):
    verts, normals = bulge_mesh()
    roughness = np.tile(np.linspace(0.0, 1.0, 32), (24, 1))
    write_face_glb(tmp_path / "face.glb", verts, normals, np.zeros((16, 16, 3), np.uint8), roughness=roughness)
    material = read_glb(tmp_path / "face.glb")[0].visual.material
    assert material.metallicFactor == 0.0 and material.roughnessFactor == 1.0
    packed = image(material.metallicRoughnessTexture)
    np.testing.assert_array_equal(packed[..., 1], np.round(roughness * 255).astype(np.uint8))
    assert (packed[..., 2] == 0).all()


# ----------------------------------------------------------------------------- tangents and normal map


def grid(mirror: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A 3 x 3 vertex grid in the z = 0 plane facing +z; uv with v down. Mirrored: u runs along -x."""
    u, v = np.meshgrid(np.linspace(0, 1, 3), np.linspace(0, 1, 3))
    uv = np.stack([u.ravel(), v.ravel()], axis=1)
    verts = np.stack([(-1.0 if mirror else 1.0) * uv[:, 0], -uv[:, 1], np.zeros(9)], axis=1)
    quads = [(r * 3 + c, r * 3 + c + 1, (r + 1) * 3 + c, (r + 1) * 3 + c + 1) for r in range(2) for c in range(2)]
    faces = np.array([t for a, b, c, d in quads for t in ((a, c, b), (b, c, d))])
    return verts, np.tile([0.0, 0.0, 1.0], (9, 1)), uv, faces


@pytest.mark.parametrize("mirror", [False, True], ids=["plain", "mirrored-uv"])
def test_tangent_runs_along_u_and_bitangent_up_the_image(mirror):
    """u along +x and image-up along +y: T = +x, w = +1 (B = N x T = +y). With u along -x,
    T = -x, and B = w (N x T) must still be +y: w = -1."""
    verts, normals, uv, faces = grid(mirror)
    tangents = vertex_tangents(verts, normals, uv, faces)
    sign = -1.0 if mirror else 1.0
    np.testing.assert_allclose(tangents[:, :3], np.tile([sign, 0.0, 0.0], (9, 1)), atol=1e-12)
    np.testing.assert_array_equal(tangents[:, 3], sign)
    np.testing.assert_allclose(np.cross(normals, tangents[:, :3]) * tangents[:, 3:], np.tile([0.0, 1.0, 0.0], (9, 1)), atol=1e-12)


def test_face_tangents_are_unit_orthogonal_and_follow_the_uv_directions():
    verts, normals = bulge_mesh()
    topo = load_face_topology()
    tangents = vertex_tangents(verts, normals, topo.uv, topo.faces)
    t, w = tangents[:, :3], tangents[:, 3]
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1.0, atol=1e-12)
    assert np.abs(np.einsum("vi,vi->v", t, normals)).max() < 1e-9
    assert (w == 1.0).all()  # u -> +x, image up -> +y, normal +z: right-handed
    # Along each triangle's own dP/du and dP/dv' (v' = -v).
    p, st = verts[topo.faces], topo.uv[topo.faces] * [1.0, -1.0]
    e = np.stack([p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]], axis=1)  # (F, 2, 3)
    d = np.stack([st[:, 1] - st[:, 0], st[:, 2] - st[:, 0]], axis=1)  # (F, 2, 2)
    ok = np.abs(np.linalg.det(d)) > 1e-9
    dp = np.linalg.solve(d[ok], e[ok])  # rows: dP/du, dP/dv'
    bitangent = np.cross(normals, t) * w[:, None]
    for k in range(3):
        corner = topo.faces[ok, k]
        assert (np.einsum("fi,fi->f", t[corner], dp[:, 0]) > 0).all()
        assert (np.einsum("fi,fi->f", bitangent[corner], dp[:, 1]) > 0).all()


def test_mesh_normals_become_the_flat_tangent_normal(written):
    """An object-space map equal to the interpolated mesh normals is (0.5, 0.5, 1) over the
    face and outside it, within 8-bit rounding."""
    path = written[0]
    texture = image(read_glb(path)[0].visual.material.normalTexture)
    assert texture.shape == (S, S, 3)
    assert np.isin(texture[..., :2], (127, 128)).all()
    assert (texture[..., 2] >= 254).all()


def test_tilts_encode_along_the_tangent_axes():
    """Tilting the object normal toward +x (u, the tangent) raises red; toward +y (image up,
    OpenGL's +Y) raises green; toward -x / -y lowers them."""
    verts, normals = bulge_mesh()
    topo = load_face_topology()
    tangents = vertex_tangents(verts, normals, topo.uv, topo.faces)
    layout = uv_layout(S)
    base = layout.gather(interpolated_normals(normals, S))
    for axis, channel in ((0, 0), (1, 1)):
        for sign in (1.0, -1.0):
            tilted = base.copy()
            tilted[:, axis] += sign * 0.3
            tex = layout.gather(tangent_space_normal_map(layout.scatter(tilted), layout, normals, tangents)).astype(float)
            assert (np.sign(tex[:, channel] - 127.5) == sign).all()
            assert np.median(np.abs(tex[:, channel] - 127.5)) > 25
            assert np.median(np.abs(tex[:, 1 - channel] - 127.5)) < 10


def test_detailed_normals_come_back_through_the_gltf_shading_frame(tmp_path):
    """A bumpy object-space map, exported, then decoded as a glTF renderer does (interpolated
    NORMAL and TANGENT, B = w N x T, n = normalize(T x + B y + N z)) gives the map back."""
    verts, normals = bulge_mesh()
    layout = uv_layout(S)
    base = layout.gather(interpolated_normals(normals, S))
    u, v = (layout.cols + 0.5) / S, (layout.rows + 0.5) / S
    bumpy = base + 0.35 * np.stack([np.sin(40 * u), np.cos(33 * v), 0.2 * np.sin(25 * (u + v))], axis=1)
    bumpy /= np.linalg.norm(bumpy, axis=1, keepdims=True)
    write_face_glb(tmp_path / "face.glb", verts, normals, np.zeros((S, S, 3), np.uint8), object_normal_map=layout.scatter(bumpy))
    geometry, gltf, blob = read_glb(tmp_path / "face.glb")
    tangents = raw_float_accessor(gltf, blob, gltf["meshes"][0]["primitives"][0]["attributes"]["TANGENT"]).astype(np.float64)
    assert set(np.unique(tangents[:, 3])) <= {-1.0, 1.0}
    n_v = np.asarray(geometry.vertex_normals, np.float64)
    b_v = np.cross(n_v, tangents[:, :3]) * tangents[:, 3:]

    def unit(x):
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    t, b, n = (unit(layout.interpolate(a).astype(np.float64)) for a in (tangents[:, :3], b_v, n_v))
    texel = layout.gather(image(geometry.visual.material.normalTexture)).astype(np.float64) / 255.0 * 2.0 - 1.0
    decoded = unit(texel[:, :1] * t + texel[:, 1:2] * b + texel[:, 2:3] * n)
    angle = np.degrees(np.arccos(np.clip(np.einsum("ni,ni->n", decoded, bumpy), -1, 1)))
    assert np.percentile(angle, 99) < 0.6 and angle.max() < 1.0  # 8-bit quantisation: ~0.2 degrees
    assert np.degrees(np.arccos(np.clip(np.einsum("ni,ni->n", base, bumpy), -1, 1))).mean() > 10  # a real bump


# ----------------------------------------------------------------------------- container and bad inputs


def test_glb_container_pads_json_with_spaces_and_bin_with_zeros():
    data = glb_container(b'{"a":1}', b"\x01\x02\x03\x04\x05")
    assert data[:12] == struct.pack("<4sII", b"glTF", 2, len(data)) and len(data) == 12 + 8 + 8 + 8 + 8
    assert data[12:28] == struct.pack("<II", 8, 0x4E4F534A) + b'{"a":1} '
    assert data[28:] == struct.pack("<II", 8, 0x004E4942) + b"\x01\x02\x03\x04\x05\0\0\0"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"vertices": np.zeros((468, 2))}, "vertices must be"),
        ({"normals": np.zeros((468, 3))}, "non-zero"),
        ({"uv": np.zeros((467, 2))}, "uv must be"),
        ({"faces": np.array([[0, 1, 468]])}, "faces index"),
        ({"faces": np.zeros((3, 3))}, "integer"),
        ({"base_colour": np.zeros((8, 8, 3))}, "uint8"),
        ({"base_colour": np.zeros((8, 8, 4), np.uint8)}, r"\(H, W, 3\)"),
        ({"roughness": 1.5}, "roughness"),
        ({"roughness": np.full((4, 4), -0.1)}, "roughness"),
        ({"tangents": np.zeros((468, 4))}, "tangents"),
    ],
)
def test_bad_inputs_are_rejected(change, message, tmp_path):
    verts, normals = bulge_mesh()
    topo = load_face_topology()
    args = {
        "vertices": verts,
        "normals": normals,
        "uv": topo.uv,
        "faces": topo.faces,
        "base_colour": np.zeros((8, 8, 3), np.uint8),
    }
    args |= change
    with pytest.raises(ValueError, match=message):
        write_glb(tmp_path / "face.glb", **args)
    assert not (tmp_path / "face.glb").exists()


# ----------------------------------------------------------------------------- end to end


def test_reconstruct_writes_a_face_glb_that_rereads(tmp_path, models):
    out = tmp_path / "out"
    reconstruct([SAMPLES / "grace_hopper.jpg"], out, config=ReconstructConfig(uv_size=S), models=models)
    geometry, gltf, blob = read_glb(out / "face.glb")
    assert geometry.vertices.shape == (468, 3) and geometry.faces.shape == (852, 3)
    obj_v = [list(map(float, line.split()[1:])) for line in (out / "mesh.obj").read_text().splitlines() if line.startswith("v ")]
    np.testing.assert_allclose(geometry.vertices, obj_v, atol=1e-6)
    material = geometry.visual.material
    albedo = cv2.imread(str(out / "albedo.png"), cv2.IMREAD_UNCHANGED)[..., 2::-1]
    np.testing.assert_array_equal(image(material.baseColorTexture), albedo)
    # Roughness: roughness.png packed in green, metallic 0.
    assert material.metallicFactor == 0.0 and material.roughnessFactor == 1.0
    roughness = cv2.imread(str(out / "roughness.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(image(material.metallicRoughnessTexture)[..., 1], roughness)
    face = uv_layout(S).mask
    normal_texture = image(material.normalTexture)
    tangents = raw_float_accessor(gltf, blob, gltf["meshes"][0]["primitives"][0]["attributes"]["TANGENT"])
    assert np.abs(np.einsum("vi,vi->v", tangents[:, :3], geometry.vertex_normals)).max() < 1e-5
    # The normal texture is the detailed normal.png converted with the exported frame, within 8-bit noise ...
    object_map = cv2.imread(str(out / "normal.png"), cv2.IMREAD_UNCHANGED)[..., 2::-1] / 255.0 * 2.0 - 1.0
    from_png = tangent_space_normal_map(object_map, uv_layout(S), geometry.vertex_normals, tangents.astype(np.float64))
    assert np.abs(from_png[face].astype(int) - normal_texture[face]).max() <= 2
    assert np.abs(normal_texture[face][:, :2].astype(int) - 128).max() > 3  # ... which has detail
    # ... while normal_coarse.png (the mesh normals) is flat in tangent space.
    coarse = cv2.imread(str(out / "normal_coarse.png"), cv2.IMREAD_UNCHANGED)[..., 2::-1] / 255.0 * 2.0 - 1.0
    flat = tangent_space_normal_map(coarse, uv_layout(S), geometry.vertex_normals, tangents.astype(np.float64))
    assert np.abs(flat[face][:, :2].astype(int) - 128).max() <= 2 and (flat[face][:, 2] >= 253).all()
    # u runs along the head frame's x where the face looks forward (at the sides the tangent
    # turns with the surface, toward -z), image-up along y: right-handed everywhere.
    front = geometry.vertex_normals[:, 2] > 0.5
    assert (tangents[front, 0] > 0.5).all() and (tangents[:, 3] == 1.0).all()
