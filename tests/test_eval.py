"""FAIR metrics, the relit-face set, the light-colour priors and the benchmark runner."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from hifialbedo.eval.fair import SKIN_TYPES, fair_scores, ita_map, mean_ita, skin_type
from hifialbedo.ops.colour import (
    individual_typology_angle,
    lab_to_linear,
    linear_to_lab,
    log_chromaticity,
    skin_locus_lab,
    srgb_to_linear,
    white_of_temperature,
)

# --- metrics -------------------------------------------------------------------------


def test_lab_matches_scikit_image():
    """Our sRGB -> L*a*b* (D65) against scikit-image's rgb2lab (an independent implementation)."""
    from skimage.color import rgb2lab

    srgb = np.random.default_rng(0).uniform(0, 1, (64, 3))
    ours = linear_to_lab(srgb_to_linear(srgb))
    theirs = rgb2lab(srgb[None])[0]
    np.testing.assert_allclose(ours, theirs, atol=1e-2)  # the two differ only in matrix rounding


def test_ita_by_hand():
    # L* = 50 + b* tan(ITA): a colour built to ITA 30 degrees measures 30.
    lab = np.array([50 + 15 * np.tan(np.radians(30)), 8.0, 15.0])
    assert individual_typology_angle(lab) == pytest.approx(30.0, abs=1e-9)
    uniform = np.broadcast_to(lab_to_linear(lab), (8, 8, 3))
    assert mean_ita(uniform, np.ones((8, 8), bool)) == pytest.approx(30.0, abs=1e-6)
    assert ita_map(uniform).shape == (8, 8)


def test_skin_type_bounds_belong_to_the_darker_type():
    assert [SKIN_TYPES[skin_type(a)] for a in (55.01, 55, 41, 28, 10, -30, -30.01)] == ["I", "II", "III", "IV", "V", "VI", "VI"]


def test_fair_scores_by_hand():
    # Type II errors 4 and 6 (mean 5), type V error 1, type VI errors 2 and 4 (mean 3).
    s = fair_scores([50, 39, 0, -40, -46], [46, 45, 1, -42, -50])
    assert s.per_type == {"II": 5.0, "V": 1.0, "VI": 3.0}
    assert s.avg_ita == pytest.approx(3.0)
    assert s.bias == pytest.approx(np.sqrt(((5 - 3) ** 2 + (1 - 3) ** 2 + 0) / 3))  # population std
    assert s.score == pytest.approx(s.avg_ita + s.bias)
    assert s.counts == {"II": 2, "V": 1, "VI": 2}
    with pytest.raises(ValueError):
        fair_scores([1.0], [1.0, 2.0])


def test_mean_ita_refuses_an_empty_mask():
    with pytest.raises(ValueError, match="empty"):
        mean_ita(np.zeros((4, 4, 3)), np.zeros((4, 4), bool))


# --- light colour ----------------------------------------------------------------------


def test_white_of_temperature_orders_warm_to_cool():
    warm, day, cool = white_of_temperature(3000), white_of_temperature(6504), white_of_temperature(9000)
    np.testing.assert_allclose(day, 1.0, atol=1e-9)
    assert warm[0] > warm[1] > warm[2] and cool[2] > cool[1] > cool[0]
    with pytest.raises(ValueError):
        white_of_temperature(1000)


@pytest.mark.parametrize("t, kelvin", [(0.1, 6504.0), (0.5, 4000.0), (0.8, 3200.0), (0.3, 9000.0)])
def test_skin_and_light_are_separated_on_the_loci(t, kelvin):
    """A skin colour on the locus under a Planckian light: (t, T) are found back."""
    from hifialbedo.inverse.priors import solve_skin_and_light

    apparent = lab_to_linear(skin_locus_lab(t)) * white_of_temperature(kelvin)
    t_est, k_est, cast = solve_skin_and_light(apparent, daylight_weight=0.0)
    assert t_est == pytest.approx(t, abs=0.02)
    assert 1e6 / k_est == pytest.approx(1e6 / kelvin, abs=6)  # within the grid step in mired
    np.testing.assert_allclose(cast, log_chromaticity(white_of_temperature(kelvin)), atol=0.03)


def test_a_witness_of_the_light_settles_an_off_locus_skin():
    """Off the locus the skin alone is ambiguous; the eye whites' cast decides."""
    from hifialbedo.inverse.priors import solve_skin_and_light

    lab = skin_locus_lab(0.4) + [0, -2.5, 3.0]  # individual skin: off the curve
    apparent = lab_to_linear(lab) * white_of_temperature(3500)
    witness = log_chromaticity(white_of_temperature(3500))
    _, alone, _ = solve_skin_and_light(apparent, daylight_weight=0.0)
    _, helped, _ = solve_skin_and_light(apparent, daylight_weight=0.0, witnesses=[(witness, 10.0)])
    assert abs(1e6 / helped - 1e6 / 3500) < abs(1e6 / alone - 1e6 / 3500)
    assert abs(1e6 / helped - 1e6 / 3500) < 8


def test_sclera_cue_sees_the_light_colour(astronaut):
    """The eye whites of the astronaut photo, and of the same photo under a warm light."""
    from hifialbedo.inverse.eyes import sclera_cue, sclera_mask
    from hifialbedo.ops.colour import srgb_uint8_to_linear

    image, lm = astronaut
    assert sclera_mask(lm, *image.shape[:2]).sum() > 20
    assert not sclera_mask(lm[:468], *image.shape[:2]).any()  # no iris landmarks: no cue
    linear = srgb_uint8_to_linear(image)
    plain = sclera_cue(linear, lm)
    warm = sclera_cue((linear * 0.6 * white_of_temperature(3500)).astype(np.float32), lm)  # 0.6: no clipping
    assert plain is not None and warm is not None
    shift = warm.log_chroma - plain.log_chroma
    np.testing.assert_allclose(shift, log_chromaticity(white_of_temperature(3500)), atol=0.05)


# --- relit faces -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def relit_base(astronaut):
    from hifialbedo.eval.relit_cases import prepare_base

    image, lm = astronaut
    return prepare_base("astronaut", image, lm)


@pytest.mark.parametrize("type_index", [0, 2, 5])
def test_relit_case_hits_its_skin_type_and_is_deterministic(relit_base, type_index):
    from hifialbedo.eval.relit_cases import RelitConfig, relight

    config = RelitConfig()
    case = relight(relit_base, type_index, 1, config)
    again = relight(relit_base, type_index, 1, config)
    assert np.array_equal(case.image, again.image)
    assert case.skin_type == type_index
    assert case.gt_ita == pytest.approx(mean_ita(case.albedo, case.ita_mask))
    other = relight(relit_base, type_index, 2, config)  # another light, the same albedo
    assert np.array_equal(other.albedo, case.albedo) and not np.array_equal(other.image, case.image)


def test_relit_image_is_albedo_times_shading_plus_specular(relit_base):
    from hifialbedo.eval.relit_cases import RelitConfig, relight
    from hifialbedo.ops.colour import srgb_uint8_to_linear

    case = relight(relit_base, 3, 0, RelitConfig(noise=0.0))
    expected = np.clip(case.albedo * case.shading + case.specular, 0, 1)
    got = srgb_uint8_to_linear(case.image)
    face = case.face_mask
    # 8-bit sRGB quantisation: about half a code, relative.
    assert np.median(np.abs(got[face] - expected[face]) / np.maximum(expected[face], 0.02)) < 0.01
    # Dividing out the true shading gives the ground truth's ITA back (the oracle bound).
    recovered = (got - case.specular) / np.maximum(case.shading, 1e-4)
    assert mean_ita(recovered, case.ita_mask) == pytest.approx(case.gt_ita, abs=1.0)


def test_relit_photo_still_looks_like_a_face_to_the_detector(relit_base, models):
    from hifialbedo.eval.relit_cases import RelitConfig, relight

    case = relight(relit_base, 5, 2, RelitConfig())
    det = models.detector.detect(case.image)
    err = np.linalg.norm(det.landmarks[:468, :2] - case.landmarks[:468, :2], axis=1)
    assert np.median(err) < 3.0  # pixels, on a 512 px photo


# --- benchmark -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_result(models):
    from hifialbedo.eval.benchmark import BenchmarkConfig, run_benchmark
    from hifialbedo.eval.relit_cases import RelitConfig
    from hifialbedo.pipeline.methods import benchmark_methods

    relit = RelitConfig(photos=("samples/astronaut.png",), mirror=False, skin_types=(1, 4), lightings=2)
    config = BenchmarkConfig(relit=relit, methods=("reconstruct", "identity", "oracle_shading"), max_photos=2, curve_starts=1)
    from tests.conftest import REPO

    return run_benchmark(config, models=models, methods=benchmark_methods(config, models), root=REPO)


def test_benchmark_scores_every_method(small_result):
    summary = small_result.summary
    assert set(summary) == {"reconstruct", "identity", "oracle_shading"}
    for s in summary.values():
        assert s["cases"] == 4
        assert s["fair"]["counts"] == {"II": 2, "V": 2}
    oracle, ident = summary["oracle_shading"], summary["identity"]
    assert oracle["fair"]["avg_ita"] < 5.0 and oracle["fair"]["avg_ita"] < ident["fair"]["avg_ita"] / 2
    # The mean-colour scores: the oracle divides the true shading out, the photo keeps it.
    assert oracle["fair_mean_colour"]["avg_ita"] < 5.0 < ident["fair_mean_colour"]["avg_ita"]
    assert all(np.isfinite(s.gt_colour_ita) and np.isfinite(s.pred_colour_ita) for s in small_result.scores)
    assert oracle["psnr"] > ident["psnr"] and oracle["ssim"] > ident["ssim"] and oracle["lpips"] < ident["lpips"]
    assert summary["reconstruct"]["id_distance"] is not None and summary["identity"]["id_distance"] is None
    curve = small_result.curve["reconstruct"]
    assert set(curve["k"]) == {1, 2}
    assert curve["ratio_last_to_first"] == pytest.approx(curve["k"][2]["ita_error"] / curve["k"][1]["ita_error"])


def test_benchmark_report_files(small_result, tmp_path):
    from PIL import Image

    from hifialbedo.eval.report import write_report

    out = tmp_path / "bench"
    files = write_report(small_result, out)
    assert sorted(p.name for p in out.iterdir()) == sorted(files)
    table = (out / "results.md").read_text()
    assert "| oracle_shading |" in table and "Avg ITA" in table and "mean of per-pixel ITA" in table
    assert "reconstruct's |ITA error| less each baseline's" in table and "| less identity | people |" in table
    assert "## What averaging photos can remove: reconstruct" in table
    data = json.loads((out / "results.json").read_text())
    assert set(data["harm_intervals"]) == {"identity"} and set(data["harm_intervals"]["identity"]) == {"II", "V"}
    assert data["error_structure"]["faces"] == 2 and set(data["error_structure"]["rms_ratio_by_k"]) == {"1", "2", "3", "4", "5"}
    assert data["summary"]["identity"]["fair"]["score"] == pytest.approx(small_result.summary["identity"]["fair"]["score"])
    assert Image.open(out / "per_type.png").size[0] > 400
    assert len((out / "cases.csv").read_text().splitlines()) == 1 + len(small_result.scores)


def _score(method: str, person: str, case: str, gt: float, error: float, *, base: str = "", lighting: int = 0):
    from hifialbedo.eval.benchmark import CaseScore

    return CaseScore(method, case, base or person, 0, lighting, 1, gt, gt + error, abs(error), 0.0, person=person)


def test_harm_intervals_average_people_not_cases_and_call_only_what_the_interval_shows():
    from hifialbedo.eval.benchmark import harm_intervals

    scores = []
    # Type I (ITA 60): 5 points lower than the photo for every person: below, whatever the draw.
    for p in "abcdef":
        scores += [_score("reconstruct", p, f"{p}1", 60.0, 5.0), _score("identity", p, f"{p}1", 60.0, 10.0)]
    # Type VI (ITA -50): person a has ten cases 10 worse, four others one case 1 better: the
    # mean over people is (10 - 4) / 5 = 1.2, over cases it would be 96 / 14.
    for i in range(10):
        scores += [_score("reconstruct", "a", f"a6{i}", -50.0, 20.0), _score("identity", "a", f"a6{i}", -50.0, 10.0)]
    for p in "bcde":
        scores += [_score("reconstruct", p, f"{p}6", -50.0, 9.0), _score("identity", p, f"{p}6", -50.0, 10.0)]
    table = harm_intervals(scores, baselines=("identity", "photo_shape"), draws=500)
    assert set(table) == {"identity"}  # photo_shape was not run
    one, six = table["identity"]["I"], table["identity"]["VI"]
    assert (one["difference"], one["low"], one["high"], one["people"], one["verdict"]) == pytest.approx((-5.0, -5.0, -5.0, 6, "below"))
    assert six["difference"] == pytest.approx(1.2) and six["people"] == 5
    assert six["low"] < 0 < six["high"] and six["verdict"] == "unresolved"


def test_harm_intervals_are_the_same_under_any_string_hash_seed():
    import subprocess
    import sys

    # The people are resampled by position: an order taken from a set of strings would change
    # with Python's per-process hash seed, and the report's intervals with it.
    code = (
        "from tests.test_eval import _score; from hifialbedo.eval.benchmark import harm_intervals; "
        "s = [x for i in range(12) for x in (_score('reconstruct', f'p{i}', f'c{i}', 60.0, i % 5 - 1.0), _score('identity', f'p{i}', f'c{i}', 60.0, 2.0))]; "
        "print(harm_intervals(s, draws=200)['identity']['I'])"
    )
    runs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2", "3")
    }
    assert len(runs) == 1 and "'people': 12" in runs.pop()


def test_error_structure_splits_a_faces_bias_from_its_lighting_noise():
    from hifialbedo.eval.benchmark import error_structure

    rng = np.random.default_rng(0)
    scores = []
    for f in range(3000):
        bias = rng.normal(0.0, 4.0)
        for k in range(3):
            scores.append(_score("reconstruct", f"p{f}", f"f{f}/{k}", 30.0, bias + rng.normal(0.0, 3.0), lighting=k))
    e = error_structure(scores)
    assert e["faces"] == 3000
    # The face means carry a third of the lighting noise (3^2 / 3): left in, the bias would read 4.36.
    assert e["face_bias_rms"] == pytest.approx(4.0, abs=0.12) and e["lighting_sd"] == pytest.approx(3.0, abs=0.06)
    assert e["rms_ratio_by_k"][1] == 1.0
    assert e["rms_ratio_by_k"][5] == pytest.approx(np.sqrt((16 + 9 / 5) / 25), abs=0.01)
    assert error_structure(scores[:1]) is None  # no face under two lightings


def test_benchmark_cli_rejects_bad_options(tmp_path, capsys):
    from hifialbedo.cli import main

    assert main(["benchmark", "-o", str(tmp_path / "b"), "--lightings", "0"]) == 2
    assert "--lightings" in capsys.readouterr().err
    assert main(["benchmark", "-o", str(tmp_path / "b"), "--methods", "nonsense"]) == 2
    assert "unknown method" in capsys.readouterr().err
    assert main(["benchmark", "-o", str(tmp_path / "b"), "--photos", str(tmp_path / "missing.jpg")]) == 2
    assert "missing.jpg" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
