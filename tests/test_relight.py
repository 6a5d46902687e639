"""relight: Blinn-Phong, SH from environment maps, relit renders, turntable, over-photo, bad inputs."""

from __future__ import annotations

import json
import math
import shutil

import cv2
import numpy as np
import pytest

from hifialbedo.cli import main
from hifialbedo.io.errors import InputError
from hifialbedo.io.light import read_envmap, write_exr, write_hdr
from hifialbedo.io.reconstruction import read_reconstruction
from hifialbedo.ops.brdf import blinn_phong, shininess_from_roughness
from hifialbedo.ops.colour import srgb_to_linear
from hifialbedo.ops.sh import (
    SH_CONSTANTS,
    directional_light,
    directional_part,
    equirect_directions,
    equirect_from_sh,
    sh_from_equirect,
    sh_shading,
    uniform_light,
)
from hifialbedo.pipeline import ReconstructConfig, reconstruct
from hifialbedo.pipeline.relight import RelightConfig, light_from_direction, load_light, relight
from hifialbedo.render.image_raster import rasterize_in_image
from hifialbedo.render.relit_render import Specular, render_relit, turntable_geometry
from hifialbedo.render.view_shading import view_maps

from .conftest import SAMPLES

RNG = np.random.default_rng(0)
NORMALS = RNG.normal(size=(4000, 3))
NORMALS /= np.linalg.norm(NORMALS, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def rec(tmp_path_factory, models):
    """A small reconstruct output of the sample photo (UV 128)."""
    out = tmp_path_factory.mktemp("relight") / "rec"
    reconstruct([SAMPLES / "grace_hopper.jpg"], out, config=ReconstructConfig(uv_size=128), models=models)
    return out


def _read_rgba(path):
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)


# --- ops -------------------------------------------------------------------------------


def test_blinn_phong_at_known_angles():
    light = np.array([1.0, 0.0, 1.0]) / math.sqrt(2)  # 45 degrees: h at 22.5 degrees from +z
    h = np.array([math.sin(math.pi / 8), 0.0, math.cos(math.pi / 8)])
    assert blinn_phong(h, light, shininess=20, intensity=0.7) == pytest.approx(0.7, abs=1e-12)
    # A normal 60 degrees from h (turned about y, still facing the light): 0.5 ** s.
    a = math.pi / 8 + math.pi / 3
    n60 = np.array([math.sin(a), 0.0, math.cos(a)])
    for s in (1.0, 4.0, 17.5):
        assert blinn_phong(n60, light, shininess=s, intensity=0.7) == pytest.approx(0.7 * 0.5**s, rel=1e-9)
    # Facing away from the light (n . l < 0): no highlight, even where n . h would be > 0.
    back = np.array([math.sin(math.radians(-55)), 0.0, math.cos(math.radians(-55))])
    assert back @ light < 0 < back @ h
    assert blinn_phong(back, light, shininess=1.0, intensity=1.0) == 0.0
    assert blinn_phong(-h, light, shininess=2.0) == 0.0
    # Per-element intensity / shininess maps broadcast.
    out = blinn_phong(np.stack([h, n60]), light, shininess=np.array([3.0, 2.0]), intensity=np.array([1.0, 2.0]))
    np.testing.assert_allclose(out, [1.0, 2.0 * 0.25])
    assert shininess_from_roughness(np.array(0.5)) == pytest.approx(30.0)


@pytest.mark.parametrize("suffix", [".hdr", ".exr"])
def test_sh_of_a_constant_environment_shades_uniformly(tmp_path, suffix):
    """A constant map of radiance r (written as .hdr or .exr and read back) shades every normal by r."""
    path = tmp_path / f"const{suffix}"
    (write_hdr if suffix == ".hdr" else write_exr)(path, np.full((32, 64, 3), [1.0, 0.5, 2.0]))  # exact in RGBE / float
    light = load_light(envmap=path)
    np.testing.assert_allclose(sh_shading(NORMALS, light.sh), np.broadcast_to([1.0, 0.5, 2.0], NORMALS.shape), atol=1e-5)
    np.testing.assert_allclose(light.sh, uniform_light([1.0, 0.5, 2.0]), atol=1e-5)


def test_exr_channels_are_read_in_rgb_order(tmp_path):
    """Separate R, G, B channels (as most tools write them) and an interleaved RGB group read alike."""
    import OpenEXR

    rgb = np.random.default_rng(1).uniform(0.0, 8.0, (16, 32, 3)).astype(np.float32)
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, {c: np.ascontiguousarray(rgb[..., i]) for i, c in enumerate("RGB")}) as exr:
        exr.write(str(tmp_path / "planes.exr"))
    write_exr(tmp_path / "group.exr", rgb)
    np.testing.assert_array_equal(read_envmap(tmp_path / "planes.exr"), rgb)
    np.testing.assert_array_equal(read_envmap(tmp_path / "group.exr"), rgb)


def test_sh_of_a_bright_patch_is_a_clamped_cosine():
    """One bright pixel of total radiant intensity pi E gives the shading of a distant light:
    within 1e-3 of ``directional_light``, and within 0.1 E of E max(n . d, 0) (the order-2
    truncation of the clamped cosine errs by up to 0.094 E); brightest toward the patch."""
    height, width, energy = 64, 128, 0.8
    dirs, solid = equirect_directions(height, width)
    i, j = 20, 80  # above the horizon, right of centre: up, image right, toward the camera
    d = dirs[i, j]
    assert d[0] > 0.5 and d[1] > 0.5 and d[2] > 0.5
    env = np.zeros((height, width, 3))
    env[i, j] = math.pi * energy / solid[i, j]
    sh = sh_from_equirect(env)
    np.testing.assert_allclose(sh, directional_light(d, energy), atol=1e-3)
    shading = sh_shading(NORMALS, sh)[:, 0]
    assert np.abs(shading - energy * np.maximum(NORMALS @ d, 0.0)).max() < 0.1 * energy
    assert NORMALS[np.argmax(shading)] @ d > math.cos(math.radians(8))
    direction, colour = directional_part(sh)
    assert direction @ d > 0.9999 and colour == pytest.approx([energy] * 3, rel=1e-3)


def test_png_envmap_is_srgb_and_bad_maps_are_rejected(tmp_path):
    png = tmp_path / "grey.png"
    cv2.imwrite(str(png), np.full((16, 32, 3), 128, np.uint8))
    np.testing.assert_allclose(read_envmap(png), srgb_to_linear(np.full((16, 32, 3), 128 / 255)))
    square = tmp_path / "square.png"
    cv2.imwrite(str(square), np.full((16, 16, 3), 128, np.uint8))
    with pytest.raises(InputError, match="equirectangular"):
        read_envmap(square)


def test_equirect_of_uniform_sh_is_uniform():
    env = equirect_from_sh(uniform_light([0.7, 0.2, 1.5]), 16, 32)
    np.testing.assert_allclose(env, np.broadcast_to([0.7, 0.2, 1.5], env.shape), atol=1e-6)
    # And a directional light's map peaks in its direction (the layout of equirect_directions).
    dirs, _ = equirect_directions(32, 64)
    env = equirect_from_sh(directional_light([1.0, 0.0, 0.0], 1.0), 32, 64)[..., 0]
    assert dirs.reshape(-1, 3)[np.argmax(env)] @ [1.0, 0.0, 0.0] > 0.99


# --- rendering -------------------------------------------------------------------------


def test_constant_albedo_under_known_light_is_albedo_times_analytic_shading(rec):
    """Per pixel: diffuse = a (c0 L0 + 2/3 c1 L1 . n) for an order-1 light, and the
    specular = k max(n . h, 0)^s E where n . l > 0, with n the rendered pixel normals."""
    files = read_reconstruction(rec)
    albedo = np.full((128, 128, 3), [0.5, 0.3, 0.2], np.float32)
    sh = np.zeros((9, 3))
    sh[0] = [1.2, 1.0, 0.8]
    sh[[3, 1, 2]] = np.outer([0.4, 0.2, 0.6], [1.0, 0.9, 0.7])  # x, y, z coefficients
    light_dir, colour = np.array([0.5, 0.5, 0.7071]), np.array([1.0, 0.8, 0.6])
    geometry = turntable_geometry(files.vertices, 0.0, 96)
    view = render_relit(geometry, albedo, sh, Specular(light_dir, colour, 0.5, 10.0))
    maps = view_maps(geometry, rasterize_in_image(geometry, 96, 96))
    n = maps.normals[maps.mask]
    c0, c1 = SH_CONSTANTS[:2]
    analytic = c0 * sh[0] + (2.0 / 3.0) * c1 * (n[:, :1] * sh[3] + n[:, 1:2] * sh[1] + n[:, 2:3] * sh[2])
    raster = rasterize_in_image(geometry, 96, 96)
    ys, xs = np.nonzero(maps.mask)
    ys, xs = ys + raster.y0, xs + raster.x0
    assert view.mask.sum() == len(n) > 2000
    np.testing.assert_allclose(view.diffuse[ys, xs], albedo[0, 0] * np.maximum(analytic, 0.0), atol=1e-5)
    half = (light_dir / np.linalg.norm(light_dir) + [0, 0, 1]) / np.linalg.norm(light_dir / np.linalg.norm(light_dir) + [0, 0, 1])
    lobe = np.where(n @ light_dir > 0, 0.5 * np.maximum(n @ half, 0.0) ** 10, 0.0)
    np.testing.assert_allclose(view.specular[ys, xs], lobe[:, None] * colour, atol=1e-5)
    assert view.specular.max() > 0.3  # a highlight is there
    assert (view.image[~view.mask] == 0).all()


def test_front_view_is_lit_from_the_light_side(rec):
    files = read_reconstruction(rec)
    light = light_from_direction([1.0, 0.0, 0.0], ambient=0.0)  # from image right
    view = render_relit(turntable_geometry(files.vertices, 0.0, 96), np.full((128, 128, 3), 0.5, np.float32), light.sh)
    lum = view.image[..., 1]
    cols = np.nonzero(view.mask.any(axis=0))[0]
    mid = (cols.min() + cols.max()) // 2
    left, right = lum[:, :mid][view.mask[:, :mid]].mean(), lum[:, mid:][view.mask[:, mid:]].mean()
    assert right > 2.0 * left


def test_relit_with_the_estimated_light_reproduces_render_view(rec, tmp_path):
    out = tmp_path / "relit"
    # render_view is albedo x diffuse shading: no highlight here (--specular 0 overrides specular.png).
    summary = relight(rec, out, config=RelightConfig(size=64, turntable=3, over_photo=True, specular=0.0))
    ours = _read_rgba(out / "photo_view.png").astype(int)
    theirs = _read_rgba(rec / "views" / "grace_hopper" / "render_view.png").astype(int)
    assert ours.shape == theirs.shape == (600, 512, 4)
    assert (ours[..., 3] == theirs[..., 3]).mean() > 0.9999  # the same face pixels
    m = (ours[..., 3] == 255) & (theirs[..., 3] == 255)
    diff = np.abs(ours[..., :3] - theirs[..., :3])[m]  # sRGB codes (albedo.png is 8-bit)
    assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 3
    # Composite: the photo off the face, the render well inside it.
    over = cv2.imread(str(out / "over_photo.png"))[..., ::-1].astype(int)
    photo = cv2.imread(str(SAMPLES / "grace_hopper.jpg"))[..., ::-1].astype(int)
    off = ours[..., 3] == 0
    assert np.abs(over[off] - photo[off]).max() <= 1
    inner = cv2.erode((ours[..., 3] == 255).astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    assert np.abs(over[inner] - ours[..., :3][inner]).max() <= 1
    edge = (ours[..., 3] == 255) & ~cv2.erode((ours[..., 3] == 255).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert np.abs(over[edge] - ours[..., :3][edge]).mean() > 0  # feathered at the outline
    # Turntable: 3 frames at -60, 0, +60 degrees; the middle one is the front view.
    assert summary["turntable_yaw_degrees"] == [-60.0, 0.0, 60.0]
    frames = sorted(p.name for p in (out / "turntable").iterdir())
    assert frames == ["frame_000.png", "frame_001.png", "frame_002.png"]
    front = _read_rgba(out / "relit.png")
    assert front.shape == (64, 64, 4)
    np.testing.assert_array_equal(_read_rgba(out / "turntable" / "frame_001.png"), front)
    assert not np.array_equal(_read_rgba(out / "turntable" / "frame_000.png"), front)
    # Yaw -60 turns the face toward image left (-x), +60 toward image right.
    vertices = read_reconstruction(rec).vertices
    for yaw, sign in ((-60, -1), (60, 1)):
        facing = turntable_geometry(vertices, math.radians(yaw), 64).camera_normals.mean(axis=0)
        assert sign * facing[0] > 0.3
    # The estimated light as maps: the .hdr holds the SH on the sphere; light.json round-trips.
    sh = np.array(json.loads((rec / "lighting.json").read_text())["photos"][0]["sh"])
    hdr = cv2.imread(str(out / "lighting_grace_hopper.hdr"), cv2.IMREAD_UNCHANGED)[..., ::-1]
    expected = np.maximum(equirect_from_sh(sh, 128, 256), 0.0)
    np.testing.assert_allclose(hdr, expected, rtol=0.01, atol=0.01 * expected.max())
    assert cv2.imread(str(out / "lighting_grace_hopper.png")).shape == (128, 256, 3)
    np.testing.assert_allclose(load_light(sh_file=out / "light.json").sh, sh)


def test_over_photo_needs_a_camera_pose(rec, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(rec, old)
    report = json.loads((old / "report.json").read_text())
    del report["inputs"][0]["camera_pose"]
    (old / "report.json").write_text(json.dumps(report))
    relight(old, tmp_path / "fine", config=RelightConfig(size=32))  # without --over-photo: fine
    with pytest.raises(InputError, match="camera_pose"):
        relight(old, tmp_path / "relit", config=RelightConfig(size=32, over_photo=True))
    assert not (tmp_path / "relit").exists()


# --- command line ----------------------------------------------------------------------


def _bad(tmp_path, rec, name, content):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def test_cli_relight_writes_the_outputs(rec, tmp_path, capsys):
    out = tmp_path / "relit"
    assert main(["relight", str(rec), "-o", str(out), "--light-dir", "1", "1", "1", "--size", "32", "--specular", "0.2"]) == 0
    assert "relit.png" in capsys.readouterr().out
    spec = json.loads((out / "light.json").read_text())["specular"]
    assert spec["intensity"] == 0.2 and spec["shininess"].startswith("roughness.png")  # the flag overrides only the intensity
    assert main(["relight", str(rec), "-o", str(out), "--size", "32"]) == 2  # exists, no --overwrite
    assert main(["relight", str(rec), "-o", str(out), "--size", "32", "--overwrite", "--shininess", "12"]) == 0
    spec = json.loads((out / "light.json").read_text())["specular"]
    assert spec["intensity"] == "specular.png" and spec["shininess"] == 12.0  # the folder's maps by default


@pytest.mark.parametrize(
    "case",
    [
        "missing_dir",
        "missing_albedo",
        "bad_lighting_json",
        "sh_bad_json",
        "sh_wrong_shape",
        "sh_nan",
        "envmap_garbage",
        "envmap_exr",
        "envmap_missing",
        "turntable_zero",
        "negative_ambient",
        "negative_colour",
        "nan_specular",
        "zero_light_dir",
        "colour_without_dir",
    ],
)
def test_cli_bad_inputs_exit_2_and_write_nothing(case, rec, tmp_path, capsys):
    out = tmp_path / "relit"
    src = rec
    extra: list[str] = []
    named = None
    if case == "missing_dir":
        src = named = tmp_path / "nope"
    elif case in ("missing_albedo", "bad_lighting_json"):
        src = tmp_path / "copy"
        shutil.copytree(rec, src)
        if case == "missing_albedo":
            (src / "albedo.png").unlink()
            named = src / "albedo.png"
        else:
            (src / "lighting.json").write_text("{not json")
            named = src / "lighting.json"
    elif case == "sh_bad_json":
        named = _bad(tmp_path, rec, "light.json", "[[1, 2, 3],")
        extra = ["--sh", str(named)]
    elif case == "sh_wrong_shape":
        named = _bad(tmp_path, rec, "light.json", json.dumps([[1.0, 0.0, 0.0]] * 4))
        extra = ["--sh", str(named)]
    elif case == "sh_nan":
        named = _bad(tmp_path, rec, "light.json", json.dumps({"sh": [[float("nan"), 0, 0]] + [[0, 0, 0]] * 8}))
        extra = ["--sh", str(named)]
    elif case == "envmap_garbage":
        named = _bad(tmp_path, rec, "env.hdr", b"#?RADIANCE\nnot really")
        extra = ["--envmap", str(named)]
    elif case == "envmap_exr":
        named = _bad(tmp_path, rec, "env.exr", b"\x76\x2f\x31\x01 not an exr")
        extra = ["--envmap", str(named)]
    elif case == "envmap_missing":
        named = tmp_path / "absent.hdr"
        extra = ["--envmap", str(named)]
    elif case == "turntable_zero":
        extra, named = ["--turntable", "0"], "--turntable"
    elif case == "negative_ambient":
        extra, named = ["--light-dir", "0", "0", "1", "--ambient", "-1"], "--ambient"
    elif case == "negative_colour":
        extra, named = ["--light-dir", "0", "0", "1", "--light-colour", "1", "-1", "1"], "--light-colour"
    elif case == "nan_specular":
        extra, named = ["--specular", "nan"], "--specular"
    elif case == "zero_light_dir":
        extra, named = ["--light-dir", "0", "0", "0"], "--light-dir"
    elif case == "colour_without_dir":
        extra, named = ["--light-colour", "1", "1", "1"], "--light-colour"
    capsys.readouterr()
    code = main(["relight", str(src), "-o", str(out), "--size", "32", *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("hifialbedo: error: ")
    assert str(named) in err[0]
    assert not out.exists()
    assert not list(tmp_path.glob(".relit.tmp-*"))
