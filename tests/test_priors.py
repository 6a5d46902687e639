"""The mean-albedo cues and their calibration (inverse.cues, inverse.priors), and the relit
generator's camera (eval.relit_cases): recipes with answers worked out by hand."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest


def test_combine_is_the_inverse_variance_mean_of_calibrated_readings():
    from hifialbedo.inverse.priors import DimensionModel

    # own reads 0.5 u + 0.1 (variance 0.04), scene reads u - 0.2 (variance 0.01), independent.
    model = DimensionModel(("own", "scene"), (0.5, 1.0), (0.1, -0.2), ((0.04, 0.0), (0.0, 0.01)))
    u_true = -1.2
    readings = {"own": 0.5 * u_true + 0.1 + 0.02, "scene": u_true - 0.2 - 0.05}
    u, var, weights = model.combine(readings, ("own", "scene"))
    # Each cue alone: own (r - 0.1) / 0.5 with variance 0.04 / 0.25 = 0.16; scene r + 0.2, 0.01.
    own_alone, scene_alone = (readings["own"] - 0.1) / 0.5, readings["scene"] + 0.2
    expected = (own_alone / 0.16 + scene_alone / 0.01) / (1 / 0.16 + 1 / 0.01)
    assert u == pytest.approx(expected)
    assert var == pytest.approx(1 / (1 / 0.16 + 1 / 0.01))
    assert sum(weights.values()) == pytest.approx(1.0)
    assert weights["scene"] == pytest.approx((1 / 0.01) / (1 / 0.16 + 1 / 0.01))
    # A cue not asked for, or with no reading, does not count.
    u_own, _, w_own = model.combine({"own": readings["own"], "scene": float("nan")}, ("own", "scene"))
    assert u_own == pytest.approx(own_alone) and set(w_own) == {"own"}
    with pytest.raises(ValueError, match="no cue"):
        model.combine({"scene": 0.0}, ("own",))


def test_cue_model_round_trip_and_refusals(tmp_path):
    from hifialbedo.inverse.priors import CueModel, load_cue_model

    model = CueModel.photo_only()
    path = tmp_path / "m.json"
    model.save(path)
    back = load_cue_model(str(path))
    assert back.to_dict() == model.to_dict()
    data = model.to_dict()
    del data["dimensions"]["log_bg"]
    with pytest.raises(ValueError, match="log_bg"):
        CueModel.from_dict(data)


def test_committed_calibration_was_fitted_on_tuning_people_only():
    from hifialbedo.eval.relit_cases import face_set
    from hifialbedo.inverse.priors import load_cue_model

    model = load_cue_model()
    assert model.fitted_on["split"] == "tune"
    fitted = set(model.fitted_on["people"])
    assert fitted and fitted <= {p.person for p in face_set("tune")}
    assert fitted.isdisjoint({p.person for p in face_set("test")})
    for dim in model.dimensions.values():
        assert dim.cues[0] == "own"
        assert np.all(np.linalg.eigvalsh(np.array(dim.covariance)) > 0)  # a usable covariance
    # The default combiner is the joint model, and it was fitted with the rest.
    assert model.joint is not None
    assert set(model.joint.features) >= {"own_log_luminance", "own_log_rg", "own_log_bg"}
    assert all(0 < sd < 1 for sd in model.joint.residual_sd)


def _joint_toy():
    """A joint model reading log Y off the scene's correction alone: u_Y = own + 0.8 * scene
    delta (standardised: mean 0, scale 1, so the weight is the slope), colour as the photo's."""
    from hifialbedo.inverse.priors import JointModel

    names = ("own_log_luminance", "own_log_rg", "own_log_bg", "scene_log_luminance")
    weights = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (0.8, 0.0, 0.0))
    return JointModel(names, (0.0,) * 4, (1.0,) * 4, weights, (0.0, 0.0, 0.0), (0.2, 0.05, 0.1), 0.01)


def test_joint_model_reads_every_cue_and_the_light():
    from hifialbedo.inverse.cues import PhotoCues, SceneCue
    from hifialbedo.inverse.priors import AlbedoPriors, CueModel, LightShape, _log_u, choose_mean_albedo

    model = replace(CueModel.photo_only(), joint=_joint_toy())
    observed = np.array([0.42, 0.27, 0.19])
    scene = PhotoCues(SceneCue(np.array([0.5, 0.5, 0.5]), 0.5, 0.18), None)
    sh = np.zeros((9, 3))
    sh[0], sh[3] = 1.0, 0.6
    choice = choose_mean_albedo(observed, 0.6, scene, AlbedoPriors(), model=model, light=LightShape(sh, 0.1))
    own = _log_u(observed)
    # The scene's correction of log Y is -log Y(scene) = log 2; 0.8 of it is added.
    assert choice.combiner == "joint"
    assert choice.u[0] == pytest.approx(own[0] + 0.8 * np.log(2.0))
    assert choice.u[1:] == pytest.approx(own[1:])
    assert choice.variance == pytest.approx([0.04, 0.0025, 0.01])
    assert choice.weights["log_luminance"]["scene"] == pytest.approx(0.8 * np.log(2.0), abs=1e-4)
    assert choice.features["light_directional"] == pytest.approx(np.log(0.6))
    # An ablation naming cues, or a fit with no light, combines the cues per number instead.
    for kwargs in ({"light": None}, {"light": LightShape(sh, 0.1), "priors": AlbedoPriors(brightness_cues=("own",))},
                   {"light": LightShape(sh, 0.1), "priors": AlbedoPriors(combiner="cues")}):
        priors = kwargs.pop("priors", AlbedoPriors())
        other = choose_mean_albedo(observed, 0.6, scene, priors, model=model, **kwargs)
        assert other.combiner == "cues" and other.u == pytest.approx(own)
    with pytest.raises(ValueError, match="combiner"):
        AlbedoPriors(combiner="average")


def test_light_form_reads_the_lights_colour_and_direction_not_the_skins():
    from hifialbedo.inverse.priors import light_form
    from hifialbedo.ops.sh import directional_light, uniform_light

    sky = np.array([0.8, 0.9, 1.2])  # a bluer ambient under a neutral sun from the viewer's right
    sun_right = directional_light(np.array([1.0, 0.0, 0.0]), np.ones(3))
    sun_left = directional_light(np.array([-1.0, 0.0, 0.0]), np.ones(3))
    light = uniform_light(0.4) * sky[None, :] + sun_right
    form = light_form(light)
    # The directional part is redder and less blue than the ambient one it is read against.
    assert form["light_directional_log_rg"] > 0.05 and form["light_directional_log_bg"] < -0.1
    assert form["light_lateral"] == pytest.approx(1.0) and form["light_vertical"] == pytest.approx(0.0, abs=1e-9)
    # The skin's colour scales every band of a channel alike: the form does not move.
    skin = np.array([0.45, 0.3, 0.2])
    assert light_form(light * skin[None, :]) == pytest.approx(form)
    assert light_form(uniform_light(0.4) * sky[None, :] + sun_left) == pytest.approx(form)
    # A light from above; an ambient-only light has no direction.
    above = light_form(uniform_light(0.4) + directional_light(np.array([0.0, 1.0, 0.0]), np.ones(3)))
    assert above["light_vertical"] == pytest.approx(1.0) and above["light_directional_log_rg"] == pytest.approx(0.0, abs=1e-9)
    assert set(light_form(uniform_light(0.4)).values()) == {0.0}


def test_joint_model_does_not_extrapolate():
    from hifialbedo.inverse.cues import PhotoCues, SceneCue
    from hifialbedo.inverse.priors import (
        MAX_JOINT_DEVIATIONS,
        AlbedoPriors,
        CueModel,
        LightShape,
        _log_u,
        choose_mean_albedo,
        skin_locus_samples,
    )

    toy = _joint_toy()
    model = replace(CueModel.photo_only(), joint=toy)
    observed = np.array([0.42, 0.27, 0.19])
    sh = np.zeros((9, 3))
    sh[0] = 1.0
    light = LightShape(sh, 0.1)
    # A scene 1e-5 as bright as the face: log 1e5 = 11.5 > 8 deviations (scale 1) of the tuning cases.
    dark = PhotoCues(SceneCue(np.full(3, 1e-5), 0.5, 0.18), None)
    assert np.log(1e5) > MAX_JOINT_DEVIATIONS
    choice = choose_mean_albedo(observed, 0.6, dark, AlbedoPriors(), model=model, light=light)
    assert choice.combiner == "cues" and choice.outside == ["scene_log_luminance"]
    assert choice.u == pytest.approx(_log_u(observed))
    assert choice.to_dict()["joint_inputs_out_of_range"] == ["scene_log_luminance"]
    # Within range but predicting a skin lighter than any: held at the light end of the locus.
    bright = PhotoCues(SceneCue(np.full(3, 0.01), 0.5, 0.18), None)  # + 0.8 log 100 = +3.7
    _, _, locus_luminance = skin_locus_samples()
    choice = choose_mean_albedo(observed, 0.6, bright, AlbedoPriors(), model=model, light=light)
    assert choice.combiner == "joint" and choice.u[0] == pytest.approx(np.log(locus_luminance.max()))
    # A missing scene, where the model reads whether one is present, also goes per number.
    with_flag = replace(toy, features=(*toy.features, "scene_present"), mean=(*toy.mean, 1.0), scale=(*toy.scale, 0.05), weights=(*toy.weights, (0.0, 0.0, 0.0)))
    assert replace(CueModel.photo_only(), joint=with_flag).joint.outside({**dict.fromkeys(with_flag.features, 0.0), "scene_present": 1.0}) == []
    choice = choose_mean_albedo(observed, 0.6, None, AlbedoPriors(), model=replace(CueModel.photo_only(), joint=with_flag), light=light)
    assert choice.combiner == "cues" and "scene_present" in choice.outside


def test_joint_model_round_trip_and_fit(tmp_path):
    from hifialbedo.inverse.priors import CueModel, JointModel, fit_joint_model, load_cue_model

    model = replace(CueModel.photo_only(), joint=_joint_toy())
    path = tmp_path / "joint.json"
    model.save(path)
    assert load_cue_model(str(path)).joint == model.joint
    data = model.joint.to_dict()
    data["features"] = [*data["features"][:3], "moon_phase"]
    with pytest.raises(ValueError, match="moon_phase"):
        JointModel.from_dict(data)
    # The fit recovers a known linear map, on any feature scale.
    rng = np.random.default_rng(1)
    x = rng.normal([-1.5, 0.5, -0.4], [0.5, 0.1, 0.2], (300, 3))
    truth = x @ np.array([[0.6, 0.0, 0.1], [0.0, 1.2, 0.0], [0.0, 0.0, 0.9]]) + [0.2, -0.1, 0.05]
    fitted = fit_joint_model(x, truth, ("own_log_luminance", "own_log_rg", "own_log_bg"), 1e-8)
    u, _ = fitted.predict({"own_log_luminance": -1.0, "own_log_rg": 0.4, "own_log_bg": -0.3})
    assert u == pytest.approx(np.array([-1.0, 0.4, -0.3]) @ np.array([[0.6, 0.0, 0.1], [0.0, 1.2, 0.0], [0.0, 0.0, 0.9]]) + [0.2, -0.1, 0.05], abs=1e-6)


def test_photo_only_model_keeps_the_photo_colour():
    from hifialbedo.inverse.priors import AlbedoPriors, CueModel, choose_mean_albedo

    observed = np.array([0.42, 0.27, 0.19])
    choice = choose_mean_albedo(observed, 0.6, None, AlbedoPriors(), model=CueModel.photo_only())
    assert choice.albedo == pytest.approx(observed, rel=1e-6)
    assert not choice.fell_back
    assert choice.weights["log_luminance"] == {"own": pytest.approx(1.0)}


def test_an_off_locus_colour_falls_back_to_the_photo():
    from hifialbedo.inverse.cues import PhotoCues, SceneCue
    from hifialbedo.inverse.priors import AlbedoPriors, CueModel, DimensionModel, choose_mean_albedo, locus_distance

    # A model that trusts the scene's colour almost entirely; a saturated green scene then
    # "corrects" a plausible skin into a magenta one, which the priors refuse.
    dims = {d: DimensionModel(("own", "scene"), (1.0, 1.0), (0.0, 0.0), ((1.0, 0.0), (0.0, 1e-3))) for d in ("log_luminance", "log_rg", "log_bg")}
    model = CueModel(dims)
    observed = np.array([0.42, 0.27, 0.19])
    green = PhotoCues(SceneCue(np.array([0.05, 0.4, 0.05]), 0.5, 0.2), None)
    choice = choose_mean_albedo(observed, 0.6, green, AlbedoPriors(colour_cues=("own", "scene")), model=model)
    assert choice.fell_back
    assert np.log(choice.albedo[0] / choice.albedo[1]) == pytest.approx(np.log(0.42 / 0.27), abs=1e-6)
    assert locus_distance(choice.u[1:]) < 0.35
    # A grey scene moves nothing off the locus: the scene cue is used.
    grey = PhotoCues(SceneCue(np.array([0.2, 0.2, 0.2]), 0.5, 0.2), None)
    assert not choose_mean_albedo(observed, 0.6, grey, AlbedoPriors(colour_cues=("own", "scene")), model=model).fell_back


def test_scene_cue_reads_the_frame_without_the_face_or_skin():
    from hifialbedo.inverse.cues import scene_cue

    img = np.zeros((200, 200, 3), np.float32)
    img[:] = [0.1, 0.2, 0.3]  # the scene
    face = np.zeros((200, 200), bool)
    face[50:150, 60:140] = True
    img[face] = [0.4, 0.25, 0.18]
    img[160:200, 70:130] = [0.41, 0.26, 0.18]  # a neck: skin outside the face mesh
    cue = scene_cue(img, face, face)
    assert cue.colour == pytest.approx([0.1, 0.2, 0.3], abs=2.5e-3)  # the neck in it would move red by 0.015
    assert cue.fraction == pytest.approx(1 - (100 * 80 + 40 * 60) / 200**2, abs=0.02)
    assert scene_cue(img, np.ones((200, 200), bool), np.ones((200, 200), bool)) is None


@pytest.fixture(scope="module")
def relit_base_face_set(models):
    from hifialbedo.eval.relit_cases import face_set, prepare_base
    from hifialbedo.io.images import read_photo

    photo = face_set("tune")[0]
    pixels = read_photo(photo.path).pixels
    return prepare_base(photo.path.stem, pixels, models.detector.detect(pixels).landmarks, person=photo.person, source=photo.source)


def test_average_metering_exposes_the_whole_frame_at_middle_grey(relit_base_face_set):
    from hifialbedo.eval.relit_cases import MIDDLE_GREY, RelitConfig, relight
    from hifialbedo.ops.colour import LUMA_WEIGHTS, srgb_to_linear

    case = relight(relit_base_face_set, 2, 0, RelitConfig(noise=0.0))
    linear = srgb_to_linear(case.image.astype(np.float64) / 255.0)
    frame = float((linear @ LUMA_WEIGHTS).mean())
    # Middle grey, unless the highlights forced the gain down (then darker, never brighter).
    assert frame == pytest.approx(MIDDLE_GREY, rel=0.05) or frame < MIDDLE_GREY
    # The same skin type and light: a darker skin raises the gain a face-priority meter picks.
    face_light = relight(relit_base_face_set, 1, 0, RelitConfig(noise=0.0, metering="face"))
    face_dark = relight(relit_base_face_set, 5, 0, RelitConfig(noise=0.0, metering="face"))
    assert face_dark.params["gain"] > face_light.params["gain"]


def test_face_set_ships_with_its_attribution():
    from hifialbedo.eval.relit_cases import FACE_SET, face_set

    photos = face_set("all")
    assert len(photos) >= 80 and all(p.path.is_file() for p in photos)
    attribution = (FACE_SET / "ATTRIBUTION.txt").read_text()
    assert "public domain" in attribution.lower()
    assert {p.source for p in photos} <= {"london_set", "congress_gpo", "whitehouse"}


def test_the_calibrations_chosen_cues_are_the_default_and_can_be_overridden():
    from hifialbedo.inverse.cues import PhotoCues, SceneCue
    from hifialbedo.inverse.priors import AlbedoPriors, CueModel, DimensionModel, choose_mean_albedo

    # Brightness: the calibration chose own + scene; colour: own only.
    both = DimensionModel(("own", "scene"), (1.0, 1.0), (0.0, 0.0), ((1.0, 0.0), (0.0, 1.0)))
    dims = {"log_luminance": replace(both, use=("own", "scene")), "log_rg": replace(both, use=("own",)), "log_bg": replace(both, use=("own",))}
    observed = np.array([0.42, 0.27, 0.19])
    scene = PhotoCues(SceneCue(np.array([0.3, 0.25, 0.2]), 0.5, 0.2), None)
    choice = choose_mean_albedo(observed, 0.6, scene, AlbedoPriors(), model=CueModel(dims))
    assert set(choice.weights["log_luminance"]) == {"own", "scene"}
    assert choice.weights["log_luminance"]["scene"] == pytest.approx(0.5)
    assert set(choice.weights["log_rg"]) == {"own"} and set(choice.weights["log_bg"]) == {"own"}
    forced = choose_mean_albedo(observed, 0.6, scene, AlbedoPriors(brightness_cues=("own",), colour_cues=("scene",)), model=CueModel(dims))
    assert set(forced.weights["log_luminance"]) == {"own"} and set(forced.weights["log_rg"]) == {"own", "scene"}
    with pytest.raises(ValueError, match="unknown cue"):
        AlbedoPriors(colour_cues=("moon",))



def test_a_hard_side_light_reads_the_skin_off_the_lit_half(models):
    """Under a hard side light with little ambient the SH light the fit finds goes to zero or
    below across the dark half. The skin's statistics come from the texels the fit trusted,
    so the skin is read as the lit half shows it. Taken over every texel, this tuning case read
    a relative colour of 27 and a skin brighter than white (log Y +0.8)."""
    from hifialbedo.eval.relit_cases import RelitConfig, face_set, prepare_base, relight
    from hifialbedo.io.images import Photo, read_photo
    from hifialbedo.mesh.topology import uv_regions
    from hifialbedo.pipeline import ReconstructConfig, analyse_photo
    from hifialbedo.render.uv_layout import uv_layout

    photo = next(p for p in face_set("tune") if p.path.stem == "135_smiling")
    pixels = read_photo(photo.path).pixels
    base = prepare_base(photo.path.stem, pixels, models.detector.detect(pixels).landmarks)
    case = relight(base, 0, 1, RelitConfig(seed=1))
    assert case.params["light"] == "low_key"
    layout = uv_layout(64)
    config = ReconstructConfig(uv_size=64, check_identity=False, detail_normals=False)
    result = analyse_photo(Photo(photo.path, case.image, case.image.shape[:2], ()), "case", layout=layout,
                           skin=layout.gather(uv_regions(64)["skin"]), config=config, models=models, landmarks=case.landmarks)
    assert result.estimate.relative_median == pytest.approx(1.0, abs=0.1)
    assert result.estimate.prior.readings["own"][0] < np.log(0.6)  # no skin is brighter than 0.6


def _tune_priors():
    """benchmarks/tune_priors.py as a module (the benchmarks are scripts, not a package),
    registered under its name so that its worker processes can find its functions."""
    import importlib.util
    import sys
    from pathlib import Path

    if "tune_priors" in sys.modules:
        return sys.modules["tune_priors"]
    spec = importlib.util.spec_from_file_location("tune_priors", Path(__file__).resolve().parents[1] / "benchmarks" / "tune_priors.py")
    tune = importlib.util.module_from_spec(spec)
    sys.modules["tune_priors"] = tune
    spec.loader.exec_module(tune)
    return tune


def test_tuning_target_gives_the_scored_albedo_the_truths_per_pixel_ita():
    """benchmarks/tune_priors.py fits u to what the benchmark scores: the luminance at which
    the pipeline's own map, scaled to u, has the truth's mean per-pixel ITA."""
    from hifialbedo.inverse.priors import _log_u, albedo_of
    from hifialbedo.ops.colour import ita_map, log_chromaticity

    tune = _tune_priors()

    truth = _log_u(np.array([0.35, 0.22, 0.15]))
    goal = float(ita_map(albedo_of(truth)))
    # A flat map at the truth's colour scores the truth's ITA: the target is the truth itself.
    flat = {"truth": truth, "texture": np.ones((40, 3), np.float32), "pixel_truth_ita": goal}
    assert tune.pixel_target(flat) == pytest.approx(truth, abs=1e-6)
    # A map with lightness spread (shading the pipeline left in) reads a lower per-pixel mean
    # ITA at the same mean colour, so the target is lighter, with the truth's chromaticity.
    spread = np.repeat(np.linspace(0.6, 1.4, 40, dtype=np.float32)[:, None], 3, axis=1)
    row = {"truth": truth, "texture": spread, "pixel_truth_ita": goal}
    assert tune.pixel_ita(truth, spread) < goal - 1.0
    target = tune.pixel_target(row)
    assert target[0] > truth[0] + 0.01 and target[1:] == pytest.approx(truth[1:])
    assert tune.pixel_ita(target, spread) == pytest.approx(goal, abs=0.01)
    assert log_chromaticity(albedo_of(target)) == pytest.approx(truth[1:])
    assert tune.targets([row], "colour")[0] == pytest.approx(truth)


@pytest.mark.parametrize("loss, weighted", [("squared_error", False), ("huber", False), ("huber", True)])
def test_residual_trees_exported_from_scikit_learn_predict_as_it_does_and_survive_json(loss, weighted):
    """tune_priors exports scikit-learn's boosted trees to arrays; ``ResidualTrees`` must give
    scikit-learn's predictions (float32 inputs against float64 thresholds, the initial value,
    the learning rate, Huber's refitted leaves, cases counted several times) and the same after
    a JSON round trip inside a joint model."""
    import json

    from sklearn.ensemble import GradientBoostingRegressor

    from hifialbedo.inverse.priors import JointModel, fit_joint_model, joint_feature_names

    tune = _tune_priors()

    names = joint_feature_names()
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, (300, len(names)))
    residual = np.stack([np.where(x[:, 0] > 0.3, 0.2, -0.1) * x[:, 5], np.sin(2 * x[:, 1]), x[:, 2] * x[:, 3]], axis=1)
    # Huber: the leaves are refitted after each tree is grown and its initial value is a median.
    settings = {"n_estimators": 40, "learning_rate": 0.1, "max_depth": 3, "min_samples_leaf": 5, "subsample": 0.8, "loss": loss}
    weight = np.where(x[:, 4] > 0, 3.0, 1.0) if weighted else None
    trees = tune.fit_residual_trees(x, residual, settings, weight)
    fresh = rng.normal(0, 1.2, (50, len(names)))
    ours = np.array([trees.predict(dict(zip(names, row))) for row in fresh])
    for d in range(3):
        theirs = GradientBoostingRegressor(random_state=d, **settings).fit(x, residual[:, d], sample_weight=weight).predict(fresh)
        assert ours[:, d] == pytest.approx(theirs, abs=1e-9)
    if weighted:  # the weights reach the fit: unweighted trees predict otherwise
        plain = tune.fit_residual_trees(x, residual, settings)
        assert np.abs(np.array([plain.predict(dict(zip(names, row))) for row in fresh]) - ours).max() > 1e-3
    # They learn the residual (the sine is not linear in anything): far below its spread.
    assert np.abs(ours[:, 1] - np.sin(2 * fresh[:, 1])).mean() < 0.5 * np.abs(np.sin(2 * fresh[:, 1])).mean()

    linear = fit_joint_model(x[:, :3], residual, names[:3], 0.01)
    joint = JointModel(**{**linear.__dict__, "trees": trees})
    again = JointModel.from_dict(json.loads(json.dumps(joint.to_dict())))
    # Saved with float32 thresholds and rounded leaves: the same splits, also for an input
    # lying exactly on a threshold.
    feature, threshold = trees.trees[0][0][0], trees.trees[0][0][1]
    on_threshold = fresh[:5].copy()
    for node in range(len(feature)):
        if feature[node] >= 0:
            on_threshold[node % 5, feature[node]] = np.float32(threshold[node])
    for row in [*fresh[:5], *on_threshold]:
        features = dict(zip(names, row))
        u, contributions = again.predict(features)
        assert u == pytest.approx(linear.predict(features)[0] + trees.predict(features), abs=1e-5)
        assert contributions["log_rg"]["trees"] == pytest.approx(trees.predict(features)[1], abs=1e-5)


def test_left_out_person_fit_with_weighted_trees_is_the_same_in_parallel_and_leaves_each_person_out():
    """tune_priors' left-out-person estimates (the scores every choice is made by) must not
    depend on how many processes fit them, and a person's estimate must not see that person:
    a person whose targets alone are shifted far moves nobody's estimate but their own."""
    from hifialbedo.inverse.priors import joint_feature_names

    tune = _tune_priors()
    names = joint_feature_names()
    rng = np.random.default_rng(5)
    keep = []
    for i in range(120):
        f = dict(zip(names, rng.normal(0, 1, len(names)).tolist()))
        target = np.array([0.5 * f["own_log_luminance"] - 1.5, 0.4 + 0.1 * f["own_log_rg"], -0.3])
        keep.append({"person": f"p{i % 6}", "features": f, "target": target, "bright_scene": i % 3 == 0, "side_lit": False})
    settings = {"n_estimators": 20, "learning_rate": 0.1, "max_depth": 2, "min_samples_leaf": 5, "subsample": 0.8, "loss": "huber", "alpha": 0.9}
    groups = ("own",)
    serial = tune.joint_left_out(keep, groups, 0.01, settings, 2.0)
    tune.LEFT_OUT_WORKERS = 2
    try:
        parallel = tune.joint_left_out(keep, groups, 0.01, settings, 2.0)
    finally:
        tune.LEFT_OUT_WORKERS = 1
    assert parallel == pytest.approx(serial, abs=1e-12)
    shifted = [dict(r, target=r["target"] + [5.0, 0.0, 0.0]) if r["person"] == "p0" else r for r in keep]
    moved = tune.joint_left_out(shifted, groups, 0.01, settings, 2.0)
    p0 = np.array([r["person"] == "p0" for r in keep])
    assert moved[p0] == pytest.approx(serial[p0], abs=1e-12)
    assert np.abs(moved[~p0, 0] - serial[~p0, 0]).mean() > 0.3  # everyone else learns from them
