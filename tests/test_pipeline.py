"""End-to-end recipes on the sample photo: round trips, known-light recovery, fusion."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from hifialbedo.inverse.fusion import fuse_albedos
from hifialbedo.inverse.lighting import LightingConfig
from hifialbedo.inverse.priors import AlbedoPriors, CueModel
from hifialbedo.mesh.geometry import fit_face_geometry
from hifialbedo.mesh.topology import uv_regions
from hifialbedo.ops.colour import LUMA_WEIGHTS, srgb_uint8_to_linear
from hifialbedo.ops.sh import directional_light, sh_shading
from hifialbedo.pipeline import ReconstructConfig, reconstruct, reconstruct_photos
from hifialbedo.render.image_raster import rasterize_in_image
from hifialbedo.render.unwrap import unwrap
from hifialbedo.render.uv_layout import uv_layout
from hifialbedo.render.view_shading import shade_view

from .conftest import SAMPLES
from .synthetic import known_albedo, render_known_face, write_case

UV = 256


def test_unwrap_then_reproject_round_trip(grace):
    """Unwrapping the photo and re-projecting the UV map gives back the photo's face pixels."""
    image, lm = grace
    h, w = image.shape[:2]
    linear = srgb_uint8_to_linear(image)
    geometry = fit_face_geometry(lm, (h, w))
    raster = rasterize_in_image(geometry, h, w)
    layout = uv_layout(1024)
    unwrapped = unwrap(linear, geometry, layout, raster)
    assert unwrapped.visible.mean() > 0.95
    uv_map = layout.scatter(unwrapped.colour)
    back = shade_view(geometry, raster, uv_map, directional_light([0, 0, 1], 0.0, ambient=1.0)).albedo
    # Compare on pixels well inside the face (the UV map is finer than the photo there).
    mask = cv2.erode(raster.fragments.mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    original = linear[raster.y0 : raster.y0 + mask.shape[0], raster.x0 : raster.x0 + mask.shape[1]]
    err = np.abs(back[mask] - original[mask])
    assert np.median(err) < 0.01
    assert np.percentile(err, 90) < 0.04


TRUE_LIGHT = directional_light([0.5, 0.3, 0.8], radiance=0.9, ambient=0.45)


def _per_channel_scale(est: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return np.median(ref, axis=0) / np.median(est, axis=0)


def test_known_albedo_and_light_are_recovered(grace, tmp_path, models):
    """A known albedo under a known white SH light, rendered on the fitted mesh, is recovered.

    Tolerances: the shading's shape (correlation over visible skin normals) > 0.99; the
    albedo up to one global gain per channel (the ambiguity priors settle) has a median
    relative error < 3%; the light's colour (white; the skin is on the skin locus) and the
    albedo's chroma within 0.03;
    its absolute brightness within a factor 1.6.

    The mean-albedo priors take the photo at its word here (``CueModel.photo_only``): the
    calibrated cues read the face against its scene and eye whites, which a rendered face
    pasted into an unrelated photo does not share with it (they are tested in test_priors
    and measured by the benchmark).
    """
    image, lm = grace
    truth = known_albedo(UV)
    photo, lm_file = write_case(tmp_path, "known", render_known_face(image, lm, truth, TRUE_LIGHT), lm)
    photo_only = tmp_path / "photo_only.json"
    CueModel.photo_only().save(photo_only)
    config = ReconstructConfig(uv_size=UV, lighting=LightingConfig(priors=AlbedoPriors(model=str(photo_only))))
    rec = reconstruct_photos([photo], config=config, landmark_files=[lm_file], models=models)
    est = rec.results[0].estimate
    layout = rec.layout
    skin = layout.gather(uv_regions(UV)["skin"]) & (rec.results[0].unwrap.confidence > 0.5)
    normals = rec.results[0].unwrap.normals[skin]

    s_true = sh_shading(normals, TRUE_LIGHT) @ LUMA_WEIGHTS
    s_est = sh_shading(normals, est.sh) @ LUMA_WEIGHTS
    assert np.corrcoef(s_true, s_est)[0, 1] > 0.99

    a_true = layout.gather(truth)[skin]
    a_est = est.albedo[skin]
    gain = _per_channel_scale(a_est, a_true)
    rel = np.abs(a_est * gain - a_true) / a_true
    assert np.median(rel) < 0.03

    light_colour = est.sh[0] / est.sh[0].mean()
    np.testing.assert_allclose(light_colour, 1.0, atol=0.03)
    chroma = lambda a: np.median(a, axis=0) / np.median(a, axis=0).sum()
    np.testing.assert_allclose(chroma(a_est), chroma(a_true), atol=0.03)
    assert 1 / 1.6 < np.median(a_est @ LUMA_WEIGHTS) / np.median(a_true @ LUMA_WEIGHTS) < 1.6


def test_fusion_of_relit_copies_beats_every_single_one(grace, tmp_path, models):
    """Four copies under different lights (one coloured, each with its own highlight and
    noise): the fused albedo's error is below every single photo's."""
    image, lm = grace
    truth = known_albedo(UV)
    lights = [
        (directional_light([0.6, 0.2, 0.8], 0.9, 0.4), (0.5, 0.3, 0.8)),
        (directional_light([-0.6, 0.3, 0.7], 0.8, 0.5), (-0.5, 0.3, 0.8)),
        (directional_light([0.0, 0.7, 0.7], [1.0, 0.85, 0.7], 0.4), (0.0, 0.6, 0.8)),
        (directional_light([0.2, -0.5, 0.8], 0.7, 0.6), (0.2, -0.4, 0.9)),
    ]
    paths, lms = [], []
    for i, (sh, spec) in enumerate(lights):
        img = render_known_face(image, lm, truth, sh, highlight=spec, noise=0.02, seed=i)
        p, l = write_case(tmp_path, f"copy{i}", img, lm)
        paths.append(p)
        lms.append(l)
    config = ReconstructConfig(uv_size=UV, check_identity=False)
    layout = uv_layout(UV)
    face = layout.gather(uv_regions(UV)["face"]) & (layout.border_weight > 0.99)
    a_true = layout.gather(truth)[face]

    def error(albedo: np.ndarray) -> float:
        a = albedo[face]
        return float(np.mean(np.abs(a * _per_channel_scale(a, a_true) - a_true)))

    singles = []
    for p, l in zip(paths, lms):
        r = reconstruct_photos([p], config=config, landmark_files=[l], models=models)
        singles.append(error(layout.gather(r.albedo)))
    fused = reconstruct_photos(paths, config=config, landmark_files=lms, models=models)
    fused_err = error(layout.gather(fused.albedo))
    assert fused_err < min(singles), (fused_err, singles)


def test_photos_analysed_in_parallel_threads_give_the_serial_result(grace, tmp_path, models):
    """With OpenCV allowed one thread the photos go one after the other (as in a batch worker);
    with more, their analysis and per-photo steps run on a thread pool: the same numbers."""
    import cv2

    image, lm = grace
    truth = known_albedo(UV)
    paths, lms = [], []
    for i, direction in enumerate(([0.6, 0.2, 0.8], [-0.5, 0.3, 0.8], [0.1, -0.4, 0.9])):
        p, l = write_case(tmp_path, f"photo{i}", render_known_face(image, lm, truth, directional_light(direction, 0.9, 0.4), seed=i), lm)
        paths.append(p)
        lms.append(l)
    config = ReconstructConfig(uv_size=UV, check_identity=False)
    before = cv2.getNumThreads()
    try:
        cv2.setNumThreads(1)
        serial = reconstruct_photos(paths, config=config, landmark_files=lms, models=models)
        cv2.setNumThreads(max(before, 2))
        parallel = reconstruct_photos(paths, config=config, landmark_files=lms, models=models)
    finally:
        cv2.setNumThreads(before)
    np.testing.assert_array_equal(parallel.albedo, serial.albedo)
    np.testing.assert_array_equal(parallel.detail_normals, serial.detail_normals)
    np.testing.assert_array_equal(parallel.specular, serial.specular)
    assert [r.name for r in parallel.results] == [r.name for r in serial.results] == ["photo0", "photo1", "photo2"]


def test_fuse_albedos_rejects_one_odd_photo():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.2, 0.6, (5000, 3))
    albedos = np.stack([truth * g + rng.normal(0, 0.01, truth.shape) for g in (1.0, 1.05, 0.95, 1.0)])
    albedos[3, :2500] *= 0.3  # a big cast shadow the light model missed
    conf = np.ones((4, 5000))
    fused = fuse_albedos(albedos, conf)
    assert np.median(np.abs(fused.albedo - truth)) < 0.01
    assert fused.photo_weights[3] < fused.photo_weights[:3].min()


def test_reconstruct_writes_the_output_contract(tmp_path, models):
    out = tmp_path / "out"
    report = reconstruct([SAMPLES / "grace_hopper.jpg"], out, config=ReconstructConfig(uv_size=UV), models=models)
    for name in ("albedo.png", "texture.png", "confidence.png", "normal.png", "lighting.json", "mesh.obj", "mesh.mtl", "face.glb", "report.json"):
        assert (out / name).is_file(), name
    albedo = cv2.imread(str(out / "albedo.png"), cv2.IMREAD_UNCHANGED)
    assert albedo.shape == (UV, UV, 4)
    face = uv_layout(UV).mask
    assert (albedo[..., 3][face] == 255).all() and (albedo[..., 3][~face] == 0).all()
    for view in ("albedo_view", "shading_view", "render_view"):
        v = cv2.imread(str(out / "views" / "grace_hopper" / f"{view}.png"), cv2.IMREAD_UNCHANGED)
        assert v.shape == (600, 512, 4)
        assert 0.05 < (v[..., 3] > 0).mean() < 0.5
    # The shading shows the light's shape, not a white mask (its raw values reach 2-3 here).
    shading = cv2.imread(str(out / "views" / "grace_hopper" / "shading_view.png"), cv2.IMREAD_UNCHANGED)
    lit = shading[..., :3][shading[..., 3] == 255].astype(float) @ LUMA_WEIGHTS[::-1]  # BGR
    assert np.percentile(lit, 99) > 240 and np.median(lit) < 235 and (lit >= 254.5).mean() < 0.05
    lighting = json.loads((out / "lighting.json").read_text())
    assert np.array(lighting["photos"][0]["sh"]).shape == (9, 3)
    assert "frame" in lighting["conventions"]
    obj = (out / "mesh.obj").read_text().splitlines()
    assert sum(l.startswith("v ") for l in obj) == 468 and sum(l.startswith("f ") for l in obj) == 852
    assert "map_Kd albedo.png" in (out / "mesh.mtl").read_text()
    assert set(report["timings_s"]) >= {"landmarks", "unwrap", "lighting", "completion", "write"}
    # The render of albedo x shading resembles the photo (re-rendering consistency).
    photo = cv2.imread(str(SAMPLES / "grace_hopper.jpg"))[..., ::-1].astype(float)
    render = cv2.imread(str(out / "views" / "grace_hopper" / "render_view.png"), cv2.IMREAD_UNCHANGED)
    m = render[..., 3] == 255
    assert np.median(np.abs(render[..., 2::-1][m].astype(float) - photo[m])) < 20


def test_someone_else_is_left_out(tmp_path, models):
    if models.identity is None:
        pytest.skip("dlib is not installed")
    out = tmp_path / "out"
    mirrored = tmp_path / "grace_mirrored.png"
    cv2.imwrite(str(mirrored), cv2.imread(str(SAMPLES / "grace_hopper.jpg"))[:, ::-1])
    report = reconstruct(
        [SAMPLES / "grace_hopper.jpg", mirrored, SAMPLES / "astronaut.png"], out, config=ReconstructConfig(uv_size=UV), models=models
    )
    assert [e["photo"] for e in report["excluded"]] == [str(SAMPLES / "astronaut.png")]
    assert len(report["inputs"]) == 2
    assert any("someone else" in w for w in report["warnings"])


@pytest.mark.parametrize(
    "shape, dtype",
    [((33, 47, 4), np.uint8), ((33, 47, 3), np.uint8), ((33, 47), np.uint8), ((33, 47, 3), np.uint16), ((1, 5), np.uint16), ((20, 9, 4), np.uint16)],
)
def test_png_encoding_is_lossless_and_keeps_rgb_order(shape, dtype):
    """encode_png (the writer's PNG settings) decodes to the same values, channels in RGB(A) order."""
    from hifialbedo.io.images import encode_png

    rng = np.random.default_rng(1)
    image = rng.integers(0, np.iinfo(dtype).max, size=shape, dtype=dtype, endpoint=True)
    image[: len(image) // 3] = image[:1]  # repeated rows: zero after the "up" filter
    decoded = cv2.imdecode(np.frombuffer(encode_png(image), np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded is not None
    if len(shape) == 3:
        decoded = cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGBA if shape[2] == 4 else cv2.COLOR_BGR2RGB)
    assert decoded.dtype == dtype
    np.testing.assert_array_equal(decoded, image)


def test_png_encoding_refuses_what_png_cannot_hold():
    from hifialbedo.io.images import encode_png

    for bad in (np.zeros((4, 4), np.float32), np.zeros((4, 4, 5), np.uint8), np.zeros((2, 2, 2, 2), np.uint8)):
        with pytest.raises(ValueError, match="could not encode"):
            encode_png(bad)
