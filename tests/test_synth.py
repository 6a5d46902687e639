"""The synthetic face engine: calibrated skin tones, SH projection, shapes, the dataset
writer and reader, the image-formation ground truth, and landmark detection on renders."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from hifialbedo.io.errors import InputError
from hifialbedo.mesh.geometry import fit_face_geometry
from hifialbedo.mesh.topology import uv_regions
from hifialbedo.ops import colour
from hifialbedo.ops.colour import LUMA_WEIGHTS, linear_to_lab, linear_to_srgb, white_of_temperature
from hifialbedo.ops.sh import (
    directional_light,
    dominant_direction,
    equirect_directions,
    sh_from_equirect,
    sh_shading,
    uniform_light,
)
from hifialbedo.synth import SKIN_TYPE_ITA, SynthConfig, load_identity, load_render, procedural_albedo, skin_ita, write_dataset
from hifialbedo.synth.engine import allocate_skin_types, make_identity, make_render
from hifialbedo.synth.lighting import balanced_white, sample_synth_light
from hifialbedo.synth.render import render_photo
from hifialbedo.synth.shape import (
    Expression,
    Pose,
    apply_expression,
    base_shapes,
    expressed_shape,
    flipped_triangles,
    project_landmarks,
    sample_expression,
    sample_identity_shape,
)
from hifialbedo.synth.torch_data import SyntheticFaces

TINY = SynthConfig(n_identities=3, renders_per_identity=2, image_size=64, uv_size=64, seed=5)


# ----------------------------------------------------------------------------- albedo


@pytest.mark.parametrize("skin_type", range(6))
def test_albedo_skin_ita_lands_in_its_type_for_every_seed(skin_type):
    lo, hi = SKIN_TYPE_ITA[skin_type]
    for seed in range(4):
        a = procedural_albedo(64, skin_type=skin_type, seed=100 * skin_type + seed)
        measured = skin_ita(a.albedo)
        assert lo < measured < hi or (skin_type == 0 and measured > lo) or (skin_type == 5 and measured < hi)
        assert colour.skin_type(measured) == skin_type
        assert abs(measured - a.tone.target_ita) < 0.05
        assert a.ita == pytest.approx(measured)


def test_albedo_hits_an_explicit_ita_target_at_any_size():
    for size in (64, 256):
        a = procedural_albedo(size, ita=20.0, seed=3)
        assert skin_ita(a.albedo) == pytest.approx(20.0, abs=0.05)
        assert a.albedo.shape == (size, size, 3) and a.albedo.dtype == np.float32
        assert 0.0 <= a.albedo.min() and a.albedo.max() <= 1.0


def test_albedo_is_deterministic_and_the_same_face_at_every_size():
    a = procedural_albedo(128, skin_type=2, seed=7)
    b = procedural_albedo(128, skin_type=2, seed=7)
    np.testing.assert_array_equal(a.albedo, b.albedo)
    assert np.abs(procedural_albedo(128, skin_type=2, seed=8).albedo - a.albedo).mean() > 0.005
    small = procedural_albedo(64, skin_type=2, seed=7).albedo
    skin = uv_regions(64)["skin"]
    down = cv2.resize(a.albedo, (64, 64), interpolation=cv2.INTER_AREA)
    assert np.abs(down - small)[skin].mean() < 0.01


def test_albedo_regions_look_like_a_face():
    a = procedural_albedo(128, skin_type=1, seed=11, stubble=False, freckles=False)
    regions = uv_regions(128)
    lab = linear_to_lab(a.albedo)
    cheeks, lips, brows, forehead = (lab[regions[k]].mean(axis=0) for k in ("cheeks", "lips", "brows", "forehead"))
    assert lips[1] > cheeks[1] + 4  # lips redder
    assert lips[0] < cheeks[0]  # and darker
    assert brows[0] < forehead[0] - 5  # brows dark
    # Stubble darkens the chin; the specular mask is strongest on the nose.
    with_stubble = procedural_albedo(128, skin_type=1, seed=11, stubble=True, freckles=False)
    chin = regions["skin"] & (np.arange(128)[:, None] > 0.8 * 128)
    assert (with_stubble.albedo[chin] @ LUMA_WEIGHTS).mean() < (a.albedo[chin] @ LUMA_WEIGHTS).mean()
    assert a.specular_mask[regions["nose"]].mean() > a.specular_mask[regions["cheeks"]].mean()


def test_albedo_rejects_bad_input():
    with pytest.raises(ValueError):
        procedural_albedo(64, skin_type=6)
    with pytest.raises(ValueError):
        procedural_albedo(8)
    with pytest.raises(ValueError):
        procedural_albedo(64, ita=95.0)


# ----------------------------------------------------------------------------- SH and light


def test_sh_from_equirect_of_a_constant_environment_is_uniform_light():
    for h in (8, 32):
        np.testing.assert_allclose(sh_from_equirect(np.full((h, 2 * h, 3), 0.7)), uniform_light(0.7), atol=1e-5)
    coloured = np.ones((16, 32, 3)) * np.array([0.2, 0.5, 1.0])
    np.testing.assert_allclose(sh_from_equirect(coloured), uniform_light([0.2, 0.5, 1.0]), atol=1e-5)
    with pytest.raises(ValueError):
        sh_from_equirect(np.ones((16, 32)))


def test_sh_from_equirect_of_a_narrowing_blob_approaches_directional_light():
    d = np.array([0.3, 0.5, 0.8])
    d /= np.linalg.norm(d)
    target = directional_light(d, [1.0, 0.8, 0.6])
    errors = []
    for height, kappa in ((32, 20.0), (64, 80.0), (128, 320.0)):
        dirs, solid_angle = equirect_directions(height, 2 * height)
        blob = np.exp(kappa * (dirs @ d - 1.0))
        blob *= math.pi / (blob * solid_angle).sum()  # total intensity pi: shading 1 at normal incidence
        coeffs = sh_from_equirect(blob[..., None] * np.array([1.0, 0.8, 0.6]))
        errors.append(np.abs(coeffs - target).max())
        np.testing.assert_allclose(dominant_direction(coeffs), d, atol=1e-3)
    assert errors[0] > errors[1] > errors[2]
    assert errors[-1] < 0.01 * np.abs(target).max()


def test_light_colour_of_temperature_and_white_balance():
    ratios = [balanced_white(t, 0.0)[0] / balanced_white(t, 0.0)[2] for t in (3000, 4500, 6000, 7500)]
    assert all(a > b for a, b in itertools.pairwise(ratios))  # warmer is redder
    half = balanced_white(3000, 0.5)
    assert 1.0 < half[0] / half[2] < ratios[0]  # a partial white balance leaves part of the cast
    np.testing.assert_allclose(balanced_white(4000, 1.0), 1.0, atol=1e-9)
    np.testing.assert_allclose(balanced_white(3000, 0.0), white_of_temperature(3000), atol=1e-9)
    for t, wb in ((3000, 0.2), (7000, 0.7)):
        assert balanced_white(t, wb) @ LUMA_WEIGHTS == pytest.approx(1.0)


@pytest.mark.parametrize("kind", ["sh", "directional", "envmap"])
def test_random_lights_never_shade_negative_toward_the_camera(kind):
    """SH and directional lights are kept non-negative; an environment map's exact order-2
    projection may ring a little below zero behind a narrow blob (the renderer clamps at 0)."""
    rng = np.random.default_rng(0)
    n = rng.normal(size=(2000, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    n = n[n[:, 2] > 0]
    for _ in range(10):
        light = sample_synth_light(rng, kind)
        shading = sh_shading(n, light.sh)
        assert shading.min() >= (-0.01 * shading.mean() if kind == "envmap" else 0.0)
        assert light.sh.shape == (9, 3) and abs(np.linalg.norm(light.direction) - 1) < 1e-9


# ----------------------------------------------------------------------------- shapes


def test_base_and_random_shapes_have_no_flipped_triangles():
    assert base_shapes().shape[1:] == (478, 3)
    for b in base_shapes():
        assert flipped_triangles(b) == 0
    rng = np.random.default_rng(1)
    shapes = []
    for _ in range(6):
        shape, _ = sample_identity_shape(rng)
        assert flipped_triangles(shape) == 0
        out, _ = expressed_shape(shape, sample_expression(rng))
        assert flipped_triangles(out) == 0
        shapes.append(shape)
    assert np.abs(shapes[0] - shapes[1]).mean() > 0.01
    # Each expression on its own, at full strength, keeps the mesh valid.
    for e in (
        Expression(smile=1),
        Expression(mouth_open=1),
        Expression(brow_raise=1),
        Expression(brow_raise=-0.5),
        Expression(squint=0.6),
    ):
        moved = apply_expression(shapes[0], e)
        assert flipped_triangles(moved) == 0 and np.abs(moved - shapes[0]).max() > 0.02


def test_projection_matches_fit_face_geometry_conventions():
    shape = base_shapes()[0]
    pose = Pose(yaw=25.0, pitch=-10.0, roll=5.0, scale=40.0, centre=(100.0, 120.0), image_size=256)
    lm = project_landmarks(shape, pose)
    geometry = fit_face_geometry(lm, (256, 256))
    # Positive yaw turns the face toward the image's right: the nose tip lies right of centre.
    assert lm[1, 0] > pose.centre[0]
    # The head frame found from the landmarks is the pose's rotation (columns = head axes).
    np.testing.assert_allclose(geometry.frame.rotation, pose.rotation.T, atol=0.03)
    # Object vertices are the shape again (the base shape is already in its own head frame).
    np.testing.assert_allclose(geometry.object_vertices, shape[:468], atol=0.02)
    # The nose tip is nearer the camera than the face's outline: smaller landmark z.
    assert lm[1, 2] < lm[234, 2]


# ----------------------------------------------------------------------------- dataset


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "tiny"
    calls = []
    write_dataset(root, TINY, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (6, 6)
    return root


def test_dataset_layout_and_metadata(tiny_dataset):
    import json

    meta = json.loads((tiny_dataset / "dataset.json").read_text())
    assert meta["counts"]["identities"] == 3 and meta["counts"]["renders"] == 6
    assert SynthConfig.from_dict(meta["config"]) == TINY
    assert sorted(d["split"] for d in meta["identities"]) == ["train", "train", "val"]
    for d in meta["identities"]:
        assert colour.skin_type(d["ita"]) == d["skin_type"]
        gt = load_identity(tiny_dataset, d["id"])
        assert skin_ita(gt["albedo"]) == pytest.approx(d["ita"], abs=0.05)  # 16-bit PNG is exact enough
    assert not [p for p in tiny_dataset.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_dataset_writer_is_deterministic_and_atomic(tiny_dataset, tmp_path):
    again = write_dataset(tmp_path / "again", TINY)
    files = sorted(p.relative_to(tiny_dataset) for p in tiny_dataset.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for f in files:
        assert (tiny_dataset / f).read_bytes() == (again / f).read_bytes(), f
    with pytest.raises(InputError):
        write_dataset(again, TINY)
    other = write_dataset(again, SynthConfig(**{**TINY.as_dict(), "seed": 6, "n_identities": 1}), overwrite=True)
    assert len(list((other / "identities").iterdir())) == 1
    assert (other / "renders" / "00000_00.png").read_bytes() != (tiny_dataset / "renders" / "00000_00.png").read_bytes()


def test_torch_dataset_items(tiny_dataset):
    data = SyntheticFaces(tiny_dataset)
    assert len(data) == 6
    item = data[0]
    r, s = TINY.image_size, TINY.uv_size
    shapes = {
        "photo": (3, r, r),
        "photo_srgb": (3, r, r),
        "albedo_view": (3, r, r),
        "mask": (1, r, r),
        "normals": (3, r, r),
        "specular": (3, r, r),
        "landmarks": (478, 3),
        "sh": (9, 3),
        "albedo_uv": (3, s, s),
        "uv_mask": (1, s, s),
    }
    for key, shape in shapes.items():
        assert tuple(item[key].shape) == shape, key
        assert item[key].dtype == torch.float32, key
    for key in ("photo", "photo_srgb", "albedo_view", "mask", "albedo_uv"):
        assert 0.0 <= float(item[key].min()) and float(item[key].max()) <= 1.0, key
    assert bool((item["photo"] <= item["photo_srgb"] + 1e-6).all())  # linear <= sRGB-encoded in [0, 1]
    mask = item["mask"][0] > 0
    norms = item["normals"].norm(dim=0)
    assert float((norms[mask] - 1).abs().max()) < 2e-3 and float(norms[~mask].max()) == 0.0
    assert isinstance(item["identity"], int) and 0 <= item["skin_type"] <= 5
    # Splits partition the identities; grouped items hold n renders of one identity.
    train, val = SyntheticFaces(tiny_dataset, split="train"), SyntheticFaces(tiny_dataset, split="val")
    assert len(train) + len(val) == len(data)
    assert not {d["id"] for d in train.identities} & {d["id"] for d in val.identities}
    grouped = SyntheticFaces(tiny_dataset, group_size=2, uv_size=32)
    g = grouped[1]
    assert len(grouped) == 3 and g["render"] == [0, 1]
    assert tuple(g["photo"].shape) == (2, 3, r, r) and tuple(g["albedo_uv"].shape) == (3, 32, 32)
    cyclic = SyntheticFaces(tiny_dataset, group_size=2, cyclic_groups=True)
    assert len(cyclic) == 2 * len(grouped) and [cyclic[i]["render"] for i in (0, 1)] == [[0, 1], [1, 0]]
    batch = torch.utils.data.default_collate([data[0], data[1]])
    assert tuple(batch["photo"].shape) == (2, 3, r, r)
    with pytest.raises(ValueError):
        SyntheticFaces(tiny_dataset, split="test")
    with pytest.raises(ValueError):
        SyntheticFaces(tiny_dataset, group_size=3)


@pytest.mark.parametrize("specular", [False, True])
def test_photo_is_albedo_times_shading_plus_specular(tmp_path, specular):
    """Noise off: in the face mask, the photo is the 8-bit sRGB encoding of
    albedo_view * max(sh_shading(normals, sh), 0) + specular, recomputed from the stored files."""
    config = SynthConfig(
        n_identities=2, renders_per_identity=2, image_size=96, uv_size=64, noise_std=0.0, specular=specular, seed=2
    )
    root = write_dataset(tmp_path / "gt", config)
    for i in range(2):
        for k in range(2):
            r = load_render(root, i, k)
            assert r["mask"].sum() > 500
            linear = r["albedo_view"] * np.maximum(sh_shading(r["normals"], r["sh"]), 0.0) + r["specular"]
            unclipped = r["mask"] & (linear.max(axis=-1) < 1.0)
            assert unclipped.sum() > 0.9 * r["mask"].sum()
            expected = np.round(linear_to_srgb(np.clip(linear, 0, 1)) * 255.0)
            diff = np.abs(expected[unclipped] - r["photo"][unclipped])
            assert diff.max() <= 1.0
            assert (r["specular"].max() > 0.01) == specular


def test_identities_differ():
    config = SynthConfig(n_identities=4, uv_size=64)
    types = allocate_skin_types(config)
    assert sorted(allocate_skin_types(SynthConfig(n_identities=12))) == sorted(list(range(6)) * 2)
    people = [make_identity(config, i, types[i]) for i in range(4)]
    for a in range(4):
        for b in range(a + 1, 4):
            assert np.abs(people[a].albedo.albedo - people[b].albedo.albedo).mean() > 0.01
            assert np.abs(people[a].shape - people[b].shape).mean() > 0.01


def test_config_validation():
    with pytest.raises(ValueError):
        SynthConfig(image_size=16)
    with pytest.raises(ValueError):
        SynthConfig(skin_type_weights=(1, 1, 1))
    with pytest.raises(ValueError):
        SynthConfig(lighting_mix=(0, 0, 0))
    with pytest.raises(ValueError):
        SynthConfig.from_dict({"n_identities": 2, "colour": "blue"})


# ----------------------------------------------------------------------------- detection


@pytest.fixture(scope="module")
def detector():
    from hifialbedo.mesh.landmarks import LandmarkDetector

    d = LandmarkDetector(max_faces=1)
    yield d
    d.close()


def test_mediapipe_finds_the_face_in_a_frontal_render(detector):
    config = SynthConfig(n_identities=1, image_size=256, uv_size=128, seed=3)
    identity = make_identity(config, 0, skin_type=3)
    rng = np.random.default_rng(0)
    light = sample_synth_light(rng, "directional")
    pose = Pose(yaw=0.0, pitch=0.0, roll=0.0, scale=0.5 * 256 / 3.3, centre=(128.0, 136.0), image_size=256)
    render = render_photo(
        identity.albedo, identity.shape, identity.head, pose, light, exposure=1.0, specular=None, noise_std=0.002, seed=1
    )
    faces = detector.detect_all(render.photo)
    assert faces, "no face found in a frontal render"
    error = np.linalg.norm(faces[0][:468, :2] - render.landmarks[:468, :2], axis=1).mean()
    assert error < 0.02 * 256
    # Informative: how often it finds the faces of random renders (not asserted strictly).
    found = sum(bool(detector.detect_all(make_render(config, identity, k)[0].photo)) for k in range(3))
    assert found >= 1


@pytest.mark.parametrize("module", ["albedo", "config", "lighting"])
def test_synth_doctests(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"hifialbedo.synth.{module}"))
    assert result.attempted > 0 and result.failed == 0
