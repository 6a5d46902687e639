"""The mean skin albedo: what geometry leaves open, settled by the photo's own references.

Geometry fixes the *shape* of the shading, not the mean skin albedo a (3 numbers) against
the light's colour and strength: (a * k, L / k) explain a photo equally well for any
positive k per channel. A camera then scales everything by its exposure and colours it by
its white balance. What *does* survive in a photo is the face against references in the same
photo and light. Each **cue** reads the mean skin albedo off one of them, as
u = (log Y, log R/G, log B/G) of a (luminance and log chromaticity, linear RGB):

- ``own``: the face as the camera exposed and white-balanced it: the mean skin colour the
  lighting fit sees (the photo taken at its word: the do-no-harm anchor);
- ``scene``: the face against the frame outside it and its skin (``inverse.cues.scene_cue``):
  brightness relative to what the meter saw, colour relative to the scene's grey world;
- ``sclera``: the face against its eye whites (``inverse.eyes``), near-neutral and alike in
  everyone: brightness and colour, whatever the exposure and the light's colour;
- ``peak``: the old exposure prior, the brightest skin shading (brightness only);
- ``locus``: the skin locus and the Planckian locus (colour: the light's temperature that
  puts the skin on the locus; brightness: the locus's lightness there).

**Calibration** (``CueModel``, fitted on the *tuning* split of the relit-face benchmark by
``benchmarks/tune_priors.py``; the people scored in its *test* split are never seen; every
tuning case, the scenes that fool a whole-frame meter included: a calibration that never saw
a bright background reads one far off): each
cue's reading is modelled as r_k = beta_k u + alpha_k + e_k, the slope from the variation
within one scene and light (a meter that includes the face compresses the ``own`` reading:
beta < 1), the offset and the error covariance Sigma from all tuning cases. The estimate is
the best linear unbiased combination of the cues a photo has,

    u = beta' Sigma^-1 (r - alpha) / (beta' Sigma^-1 beta),    var(u) = 1 / (beta' Sigma^-1 beta),

i.e. each cue is trusted by its measured reliability and the ``own`` reading is always among
them; a missing cue (no eye whites, a close-up with no scene) drops out. Unbiased: no pull
toward a typical skin, so no skin type is moved toward the middle (the FAIR bias).

**The joint model** (``JointModel``, the default combiner): the three numbers of u are not
independent (skin darkens along a locus, and the scene's colour says as much about the
light as its brightness does), and how far the scene's brightness can be trusted depends on
the light (a hard side light leaves a dark surround). So u is also estimated by one ridge
regression of the truth's u on every cue's correction of the ``own`` reading, the shape and
form of the fitted light (the colour of its directional part against its ambient part's, where
it comes from: ``light_form``) and the frame's metered luminance (``JOINT_FEATURES``), fitted
on the tuning split with the penalty and the cue groups chosen by leaving one person out at a
time (``benchmarks/tune_priors.py``). What it is fitted to is what the FAIR protocol scores: the
mean *per-pixel* ITA over the cheeks and forehead. The truth keeps its source photo's fine
shading and the pipeline explains part of it as detail normals, so at the true mean colour
its albedo reads 5-9 degrees lighter per pixel than the truth on types I-IV (on the tuning
split; 3 darker on type V); each tuning case's target
is the truth's chromaticity at the luminance that gives the pipeline's own map the truth's
per-pixel ITA (``tune_priors.pixel_target``). What the linear model leaves is then read by
gradient-boosted trees over every input (``ResidualTrees``): the same scene brightness means
a different face under sun than under a studio key, which no one slope captures (left out
person by person on the tuning split, 12.08 -> 10.03 on every case with 400 Huber-loss trees
of depth 5; ``tune_priors`` chooses them, or none, by that score). The main cases (no bright
scene, no side-lit source: what the targets are set on) count three times in the trees' fit
(left out person by person, 10.65 -> 10.19 on them, for 10.03 -> 10.38 on every case: the
bright scenes pay). The light's form is what tells a sun under a bluer sky (whose scene is lit
as the face is) from a studio key (whose backdrop falls off): the tuning cases' left-out
main score is 10.50 without it, with the same trees. A regression pulls toward the tuning
cases' mean a little, which the per-number combination does not; it was chosen because its
error on the people left out is lower, on every skin type, than the per-number combination's
on the very cases it was fitted on (the tuning log prints both). Its variance is the left-out-person error, the same for
every photo.

**Do no harm**: the joint model is read only where its inputs lie within
``MAX_JOINT_DEVIATIONS`` of its tuning cases and the scene is there (``JointModel.outside``;
elsewhere the per-number combination is used and ``lighting.json`` says why); the luminance
is held between the skin locus's ends, whichever combiner chose it; a combined colour
further off the skin locus than real skin lies (``AlbedoPriors.off_locus_limit``, e.g. the
grey-green or blue a wrong light colour gives) is not believed: the ``own`` reading's colour
is used instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from hifialbedo.inverse.cues import PhotoCues
from hifialbedo.inverse.eyes import SCLERA_LOG_CHROMA
from hifialbedo.ops.colour import LUMA_WEIGHTS, lab_to_linear, log_chromaticity, skin_locus_lab, white_of_temperature

DAYLIGHT_MIRED = 1e6 / 6504.0
CUES = ("own", "scene", "sclera", "peak", "locus")
COMBINERS = ("joint", "cues")
DIMENSIONS = ("log_luminance", "log_rg", "log_bg")
"""The three numbers a cue reads: u = (log Y, log R/G, log B/G) of the mean skin albedo."""
CUE_MODEL = Path(__file__).resolve().parent / "data" / "cue_model.json"
"""The committed calibration (``benchmarks/tune_priors.py`` on the tuning split)."""
SCLERA_MIN_PIXELS = 25
SCLERA_MAX_SPREAD = 0.15
"""Eye whites with fewer clean pixels, or whose log chromaticity spreads more (lids, lashes,
glare, a small face), give no cue."""


@dataclass(frozen=True)
class AlbedoPriors:
    """Which cues settle the mean skin albedo, and the do-no-harm bound."""

    brightness_cues: tuple[str, ...] | None = None
    """Cues read for the luminance (``own`` is always read); None: those the calibration
    chose on the tuning split (``DimensionModel.use``)."""
    colour_cues: tuple[str, ...] | None = None
    """Cues read for the chromaticity (``own`` is always read); None: the calibration's choice."""
    off_locus_limit: float = 0.35
    """Largest distance (log chromaticity) of the combined colour from the skin locus; beyond
    it the photo's own colour is kept. Real skin under a white light lies within about 0.2."""
    model: str | None = None
    """A calibration file (``CueModel.save``); None: the committed one (``CUE_MODEL``)."""
    combiner: str = "joint"
    """``joint``: the calibration's joint linear model of every cue's reading and the light's
    shape (``JointModel``); ``cues``: each number of u from its own cues' readings alone
    (``DimensionModel``, the best linear unbiased combination). Naming cues in
    ``brightness_cues`` or ``colour_cues`` (an ablation) implies ``cues``; so does a
    calibration without a joint model or a fit with no light to describe."""

    def __post_init__(self) -> None:
        if self.combiner not in COMBINERS:
            raise ValueError(f"combiner must be one of {', '.join(COMBINERS)}, got {self.combiner!r}")
        for name in ("brightness_cues", "colour_cues"):
            cues = getattr(self, name)
            if cues is None:
                continue
            unknown = set(cues) - set(CUES)
            if unknown:
                raise ValueError(f"{name}: unknown cue(s) {sorted(unknown)}; known: {', '.join(CUES)}")
        if self.off_locus_limit <= 0:
            raise ValueError(f"off_locus_limit must be positive, got {self.off_locus_limit}")


@lru_cache(maxsize=1)
def skin_locus_samples(n: int = 281) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The prior's skin locus (``ops.colour.skin_locus_lab``) sampled for t in [-0.2, 1.2]:
    ``(t (n,), log chromaticity (n, 2), luminance (n,))``, from light to dark skin."""
    t = np.linspace(-0.2, 1.2, n)
    rgb = np.clip(lab_to_linear(skin_locus_lab(t)), 1e-4, None)
    return t, log_chromaticity(rgb), rgb @ LUMA_WEIGHTS


@lru_cache(maxsize=1)
def planckian_casts(n: int = 121) -> tuple[np.ndarray, np.ndarray]:
    """Light colours along the Planckian locus, 2500..12000 K: ``(mired (n,), log chromaticity (n, 2))``
    as recorded by a camera balanced for daylight."""
    mired = np.linspace(1e6 / 12000.0, 1e6 / 2500.0, n)
    casts = np.array([log_chromaticity(white_of_temperature(1e6 / m)) for m in mired])
    return mired, casts


def solve_skin_and_light(
    observed_rgb: np.ndarray,
    daylight_weight: float,
    witnesses: list[tuple[np.ndarray, float]] | None = None,
) -> tuple[float, float, np.ndarray]:
    """Split an apparent skin colour (linear RGB ``(3,)``, = albedo x light colour) into a
    skin-locus position and a Planckian light: returns ``(t, kelvin, cast (2,))``.

    Least squares in log chromaticity over a grid of (t, T):
    |c - skin(t) - cast(T)|^2 + sum_w weight * |cast(T) - witness|^2
    + ``daylight_weight / 100 * ((mired(T) - mired(6504 K)) / 100)^2``, where each witness
    is the cast another cue sees, log chromaticity ``(2,)``.
    """
    c = log_chromaticity(observed_rgb)
    t, locus, _ = skin_locus_samples()
    mired, casts = planckian_casts()
    resid = c[None, None, :] - locus[:, None, :] - casts[None, :, :]
    cost = (resid**2).sum(axis=-1) + daylight_weight / 100.0 * ((mired[None, :] - DAYLIGHT_MIRED) / 100.0) ** 2
    for witness, weight in witnesses or []:
        cost = cost + weight * ((casts - np.asarray(witness)[None, :]) ** 2).sum(axis=-1)[None, :]
    i, j = np.unravel_index(int(np.argmin(cost)), cost.shape)
    return float(t[i]), float(1e6 / mired[j]), casts[j]


def locus_distance(log_chroma: np.ndarray) -> float:
    """Distance (log chromaticity) of a colour from the nearest point of the skin locus.

    >>> t, locus, _ = skin_locus_samples()
    >>> round(locus_distance(locus[100]), 6), 0.1 < locus_distance(locus[100] + [0.0, 0.3]) <= 0.3
    (0.0, True)
    """
    _, locus, _ = skin_locus_samples()
    return float(np.sqrt(((locus - np.asarray(log_chroma)[None, :]) ** 2).sum(axis=1)).min())


def _log_u(rgb: np.ndarray) -> np.ndarray:
    """(log Y, log R/G, log B/G) of a linear-RGB colour ``(3,)``."""
    rgb = np.maximum(np.asarray(rgb, dtype=np.float64), 1e-5)
    return np.concatenate([[np.log(rgb @ LUMA_WEIGHTS)], log_chromaticity(rgb)])


def albedo_of(u: np.ndarray) -> np.ndarray:
    """The linear-RGB colour ``(3,)`` of u = (log Y, log R/G, log B/G).

    >>> np.round(albedo_of(_log_u(np.array([0.4, 0.25, 0.18]))), 6).tolist()
    [0.4, 0.25, 0.18]
    """
    rgb = np.array([np.exp(u[1]), 1.0, np.exp(u[2])])
    return rgb / (rgb @ LUMA_WEIGHTS) * np.exp(u[0])


def cue_readings(observed: np.ndarray, peak: float, cues: PhotoCues | None) -> dict[str, np.ndarray]:
    """Each available cue's raw reading ``(3,)`` of u = (log Y, log R/G, log B/G) of the mean
    skin albedo (before calibration; NaN where a cue has no reading of that number).

    ``observed (3,)``: the mean skin colour the lighting fit sees (linear RGB, what the photo
    shows); ``peak``: its luminance at the brightest skin shading (95th percentile).
    """
    own = _log_u(observed)
    readings = {"own": own, "peak": np.array([np.log(max(peak, 1e-5)), np.nan, np.nan])}
    if cues is not None and cues.scene is not None:
        readings["scene"] = own - _log_u(cues.scene.colour)
    sclera = None if cues is None else cues.sclera
    if sclera is not None and sclera.pixels >= SCLERA_MIN_PIXELS and sclera.spread <= SCLERA_MAX_SPREAD and sclera.brightness > 0:
        readings["sclera"] = own - np.concatenate([[np.log(sclera.brightness)], sclera.log_chroma - SCLERA_LOG_CHROMA])
    t, _, cast = solve_skin_and_light(observed, daylight_weight=1.0)
    _, _, locus_lum = skin_locus_samples()
    ts, _, _ = skin_locus_samples()
    readings["locus"] = np.concatenate([[np.log(float(np.interp(t, ts, locus_lum)))], own[1:] - cast])
    return readings


LIGHT_FORM_FEATURES = ("light_directional_log_rg", "light_directional_log_bg", "light_vertical", "light_frontal", "light_lateral")
"""``light_form``'s features, in the order it returns them."""

JOINT_FEATURES = (
    ("own", ("own_log_luminance", "own_log_rg", "own_log_bg")),
    ("scene", ("scene_log_luminance", "scene_log_rg", "scene_log_bg", "scene_present")),
    ("sclera", ("sclera_log_luminance", "sclera_log_rg", "sclera_log_bg", "sclera_present")),
    ("peak", ("peak_log_luminance",)),
    ("locus", ("locus_log_luminance", "locus_log_rg", "locus_log_bg")),
    ("light", ("light_directional", "light_quadratic", "fit_residual")),
    ("frame", ("frame_log_luminance", "scene_fraction")),
    ("light_form", LIGHT_FORM_FEATURES),
)
"""The joint model's inputs, by the cue they come from: each cue's reading of u relative to
the ``own`` one (its correction; 0 and ``*_present`` 0 where the cue is missing), the shape
of the fitted light (log of the directional and second-order bands' strength against the
ambient band's, luminance; the fit's relative residual: hard side light leaves a dark
surround and deep shadows), and the frame (its mean linear luminance, what an averaging
meter saw, and the share of it the scene covers), and the light's form: the colour of its
directional part against its ambient part's (log chromaticity; the camera's white balance and
the skin's colour cancel: a sun under a bluer sky, a fill of another temperature) and where
the directional part comes from (its luminance direction's vertical, frontal and lateral
components: a light from above or below, a side light)."""

_CUE_OF_FEATURE = {name: cue for cue, names in JOINT_FEATURES for name in names}


@dataclass(frozen=True)
class LightShape:
    """What the joint model reads of the fitted light: the apparent SH light ``(9, 3)``
    (``LightFit.apparent``, linear RGB) and the robust sigma of the relative residual."""

    apparent: np.ndarray
    fit_residual: float


def joint_features(readings: Mapping[str, np.ndarray], light: LightShape, cues: PhotoCues | None) -> dict[str, float]:
    """The joint model's inputs (``JOINT_FEATURES``) of one photo, from its cues' raw readings
    (``cue_readings``), its fitted light and its scene.

    >>> own = np.array([-1.5, 0.5, -0.4]); sh = np.zeros((9, 3)); sh[0] = 1.0; sh[2] = 0.5
    >>> f = joint_features({"own": own, "peak": np.array([-1.2, np.nan, np.nan]), "locus": own}, LightShape(sh, 0.1), None)
    >>> f["scene_present"], f["sclera_log_luminance"], round(f["light_directional"], 4), f["scene_fraction"]
    (0.0, 0.0, -0.6931, 0.0)
    """
    own = np.asarray(readings["own"], dtype=np.float64)
    f = dict(zip(JOINT_FEATURES[0][1], own.tolist()))
    for cue in ("scene", "sclera"):
        r = readings.get(cue)
        present = r is not None and bool(np.all(np.isfinite(r)))
        delta = (np.asarray(r) - own) if present else np.zeros(3)
        f.update(zip((f"{cue}_log_luminance", f"{cue}_log_rg", f"{cue}_log_bg"), delta.tolist()))
        f[f"{cue}_present"] = float(present)
    f["peak_log_luminance"] = float(readings["peak"][0])
    f.update(zip(("locus_log_luminance", "locus_log_rg", "locus_log_bg"), np.asarray(readings["locus"], dtype=np.float64).tolist()))
    band = np.asarray(light.apparent, dtype=np.float64) @ LUMA_WEIGHTS
    ambient = max(abs(float(band[0])), 1e-6)
    f["light_directional"] = float(np.log(max(float(np.linalg.norm(band[1:4])), 1e-6) / ambient))
    f["light_quadratic"] = float(np.log(max(float(np.linalg.norm(band[4:9])), 1e-6) / ambient))
    f["fit_residual"] = float(light.fit_residual)
    f.update(light_form(light.apparent))
    scene = None if cues is None else cues.scene
    f["frame_log_luminance"] = float(np.log(max(scene.frame_luminance, 1e-6))) if scene is not None else float(np.log(0.18))
    f["scene_fraction"] = float(scene.fraction) if scene is not None else 0.0
    return f


LIGHT_FORM_CHROMA_LIMIT = 1.5
"""The directional part's log chromaticity against the ambient's is held within +-this: lights
of 2700 and 10000 K differ by 1.0 in log R/G and 1.8 in log B/G, and the bands mix the lights
of a scene, so a difference beyond this is mostly a weak directional band's noise (a tenth to
a sixth of the tuning cases read beyond it, some beyond +-7), which would tip a linear weight."""


def light_form(apparent: np.ndarray) -> dict[str, float]:
    """The ``light_form`` features of an apparent SH light ``(9, 3)`` (linear RGB, ``ops.sh``'s
    band order: 1, y, z, x, ...): the log chromaticity of the directional band along its
    luminance direction minus the ambient band's, and that direction's components
    (vertical y, frontal z, lateral |x|; 0 with no directional part).

    >>> sh = np.zeros((9, 3)); sh[0] = [1.0, 1.0, 1.0]; sh[1] = [0.2, 0.4, 0.8]  # a bluer light from y
    >>> {k: round(v, 3) for k, v in light_form(sh).items()}
    {'light_directional_log_rg': -0.693, 'light_directional_log_bg': 0.693, 'light_vertical': 1.0, 'light_frontal': 0.0, 'light_lateral': 0.0}
    """
    sh = np.asarray(apparent, dtype=np.float64)
    first = sh[1:4] @ LUMA_WEIGHTS
    norm = float(np.linalg.norm(first))
    if norm < 1e-6:
        return dict.fromkeys(LIGHT_FORM_FEATURES, 0.0)
    direction = first / norm
    along = np.maximum(direction @ sh[1:4], 1e-3 * norm)  # (3,) each channel's strength along it
    ambient = np.maximum(sh[0], 1e-3 * max(float(sh[0].max()), 1e-6))
    chroma = np.log(along[[0, 2]] / along[1]) - np.log(ambient[[0, 2]] / ambient[1])
    chroma = np.clip(chroma, -LIGHT_FORM_CHROMA_LIMIT, LIGHT_FORM_CHROMA_LIMIT)
    values = (chroma[0], chroma[1], direction[0], direction[1], abs(direction[2]))
    return {name: float(v) for name, v in zip(LIGHT_FORM_FEATURES, values)}


def joint_feature_names(groups: Sequence[str] | None = None) -> tuple[str, ...]:
    """The names of ``JOINT_FEATURES`` in order, of the cue ``groups`` given (None: all)."""
    return tuple(name for g, names in JOINT_FEATURES if groups is None or g in groups for name in names)


MAX_JOINT_DEVIATIONS = 8.0
"""A photo whose joint-model inputs lie further than this from the tuning cases' (in their
standard deviations; a failed light fit, a scene the meter never saw) is read by the
per-number combination instead."""


@dataclass(frozen=True)
class ResidualTrees:
    """Gradient-boosted regression trees on what the linear joint model leaves: per number d
    of u, ``base[d] + learning_rate * sum of the trees' leaves``. They read every joint input
    (``features``), the light's shape and the peak included, and catch what a linear model
    cannot (a bright scene under sun reads darker than one under a studio key; a hard side
    light's shadowed half). Fitted by ``benchmarks/tune_priors.py`` (scikit-learn's
    ``GradientBoostingRegressor``, exported here as arrays; nothing of scikit-learn is needed
    to read them). Each tree is ``(feature, threshold, left, right, value)`` over its nodes:
    a leaf has feature -1; an input at most the threshold goes left, the input rounded to
    float32 first as scikit-learn does. Trees never extrapolate: beyond the tuning range they
    give the edge's value.

    >>> stump = ((0, -1, -1), (0.5, 0.0, 0.0), (1, -1, -1), (2, -1, -1), (0.0, -2.0, 4.0))
    >>> t = ResidualTrees(("own_log_luminance",), 0.5, (0.1, 0.0, 0.0), ((stump,), (), ()))
    >>> t.predict({"own_log_luminance": 0.2}).tolist(), t.predict({"own_log_luminance": 0.9}).tolist()
    ([-0.9, 0.0, 0.0], [2.1, 0.0, 0.0])
    """

    features: tuple[str, ...]
    learning_rate: float
    base: tuple[float, float, float]
    trees: tuple[tuple[tuple[tuple[float, ...], ...], ...], ...]  # [d][tree] = (feature, threshold, left, right, value)

    def predict(self, features: Mapping[str, float]) -> np.ndarray:
        """The correction ``(3,)`` of u for one photo's joint inputs."""
        # scikit-learn splits float32 inputs against float64 thresholds.
        x = np.array([features[n] for n in self.features], dtype=np.float32).astype(np.float64).tolist()
        out = np.array(self.base, dtype=np.float64)
        for d, trees in enumerate(self.trees):
            total = 0.0
            for feature, threshold, left, right, value in trees:
                node = 0
                while feature[node] >= 0:
                    node = left[node] if x[feature[node]] <= threshold[node] else right[node]
                total += value[node]
            out[d] += self.learning_rate * total
        return out

    def to_dict(self) -> dict:
        """Thresholds as the largest float32 at most them (the same split of every float32
        input; 9 digits, read back through float32 by ``from_dict``), leaf values to 7
        significant digits."""
        def tree_dict(feature, threshold, left, right, value) -> list:
            below = [float(np.nextafter(t32, np.float32(-np.inf)) if float(t32) > t else t32) for t, t32 in zip(threshold, np.float32(threshold))]
            return [list(feature), [float(f"{t:.9g}") for t in below], list(left), list(right), [float(f"{v:.7g}") for v in value]]

        return {
            "features": list(self.features),
            "learning_rate": self.learning_rate,
            "base": list(self.base),
            "trees": [[tree_dict(*tree) for tree in trees] for trees in self.trees],
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> ResidualTrees:
        unknown = set(data["features"]) - set(joint_feature_names())
        if unknown:
            raise ValueError(f"residual trees with unknown features {sorted(unknown)}")
        trees = tuple(
            tuple((tuple(int(v) for v in f), tuple(np.float32(t).astype(np.float64).tolist()), tuple(int(v) for v in a), tuple(int(v) for v in b), tuple(float(v) for v in val)) for f, t, a, b, val in per_d)
            for per_d in data["trees"]
        )
        return cls(tuple(data["features"]), float(data["learning_rate"]), tuple(float(v) for v in data["base"]), trees)


@dataclass(frozen=True)
class JointModel:
    """u = W' z + b over the standardised features z = (x - mean) / scale: ridge regression
    of the truth's u on ``features``, fitted on the tuning split (``fit_joint_model``), plus
    ``trees`` (``ResidualTrees``, where the tuning split chose them) on what it leaves."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[tuple[float, float, float], ...]  # (k, 3)
    intercept: tuple[float, float, float]
    residual_sd: tuple[float, float, float]
    """The error of u over the tuning split, left out person by person (the variance a
    photo's choice carries into the several-photo consensus)."""
    ridge: float
    trees: ResidualTrees | None = None

    def outside(self, features: Mapping[str, float]) -> list[str]:
        """The features further than ``MAX_JOINT_DEVIATIONS`` standard deviations from their
        tuning mean, and ``scene_present`` when the scene is missing (the tuning cases nearly
        always had one): where a linear model extrapolates instead of interpolating."""
        far = [n for n, m, sd in zip(self.features, self.mean, self.scale) if abs(features[n] - m) > MAX_JOINT_DEVIATIONS * sd]
        if "scene_present" in self.features and features["scene_present"] < 0.5:
            far.append("scene_present")
        return sorted(set(far))

    def predict(self, features: Mapping[str, float]) -> tuple[np.ndarray, dict[str, dict[str, float]]]:
        """``(u (3,), contributions)``: u, and per number of u how far each cue's features
        moved it from the tuning mean."""
        x = np.array([features[name] for name in self.features], dtype=np.float64)
        z = (x - np.array(self.mean)) / np.array(self.scale)
        terms = z[:, None] * np.array(self.weights)  # (k, 3)
        u = terms.sum(axis=0) + np.array(self.intercept)
        contributions = {}
        for d, dim in enumerate(DIMENSIONS):
            by_cue: dict[str, float] = {}
            for name, t in zip(self.features, terms[:, d]):
                by_cue[_CUE_OF_FEATURE[name]] = by_cue.get(_CUE_OF_FEATURE[name], 0.0) + float(t)
            contributions[dim] = {k: round(v, 5) for k, v in by_cue.items()}
        if self.trees is not None:
            correction = self.trees.predict(features)
            u = u + correction
            for d, dim in enumerate(DIMENSIONS):
                contributions[dim]["trees"] = round(float(correction[d]), 5)
        return u, contributions

    def to_dict(self) -> dict:
        linear = {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items() if k != "trees"}
        return linear | {"weights": [list(w) for w in self.weights]} | ({"trees": self.trees.to_dict()} if self.trees is not None else {})

    @classmethod
    def from_dict(cls, data: Mapping) -> JointModel:
        unknown = set(data["features"]) - set(joint_feature_names())
        if unknown:
            raise ValueError(f"a joint model with unknown features {sorted(unknown)}")
        return cls(
            tuple(data["features"]), tuple(data["mean"]), tuple(data["scale"]), tuple(tuple(w) for w in data["weights"]),
            tuple(data["intercept"]), tuple(data["residual_sd"]), float(data["ridge"]),
            ResidualTrees.from_dict(data["trees"]) if "trees" in data else None,
        )


def fit_joint_model(features: np.ndarray, truth: np.ndarray, names: Sequence[str], ridge: float, residual_sd: Sequence[float] | None = None) -> JointModel:
    """Ridge regression of ``truth (n, 3)`` (u of the true mean skin albedo) on ``features
    (n, k)`` named ``names``; the penalty ``ridge`` is per case on standardised features.

    >>> rng = np.random.default_rng(0); x = rng.normal(0, 1, (400, 2)); t = x @ [[1.0, 0, 0], [0, 2.0, -1.0]] + 0.5
    >>> m = fit_joint_model(x, t, ("own_log_luminance", "own_log_rg"), 1e-6)
    >>> u, _ = m.predict({"own_log_luminance": 1.0, "own_log_rg": 0.0}); np.round(u, 3).tolist()
    [1.5, 0.5, 0.5]
    """
    x = np.asarray(features, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    z = (x - mean) / scale
    b = t.mean(axis=0)
    w = np.linalg.solve(z.T @ z + ridge * len(z) * np.eye(z.shape[1]), z.T @ (t - b))
    sd = np.asarray(residual_sd if residual_sd is not None else (z @ w + b - t).std(axis=0), dtype=np.float64)
    return JointModel(tuple(names), tuple(mean.tolist()), tuple(scale.tolist()), tuple(tuple(r) for r in w.tolist()), tuple(b.tolist()), tuple(sd.tolist()), float(ridge))


@dataclass(frozen=True)
class DimensionModel:
    """The calibration of the cues' readings of one number of u (see the module docstring)."""

    cues: tuple[str, ...]
    slope: tuple[float, ...]
    offset: tuple[float, ...]
    covariance: tuple[tuple[float, ...], ...]
    use: tuple[str, ...] = ()
    """The cues read by default: the set with the least error on the tuning split (empty: all)."""

    def combine(self, readings: Mapping[str, float], use: Sequence[str]) -> tuple[float, float, dict[str, float]]:
        """``(u, variance, weights)`` from the readings of the cues in ``use`` that this model
        calibrates and that are finite."""
        idx = [i for i, c in enumerate(self.cues) if c in use and c in readings and np.isfinite(readings[c])]
        if not idx:
            raise ValueError("no cue to read the mean skin albedo from")
        beta = np.array(self.slope)[idx]
        alpha = np.array(self.offset)[idx]
        cov = np.array(self.covariance)[np.ix_(idx, idx)]
        r = np.array([readings[self.cues[i]] for i in idx])
        info = np.linalg.solve(cov, beta)
        precision = float(beta @ info)
        u = float(info @ (r - alpha)) / precision
        weights = info * beta / precision  # how much each cue moved u (they sum to 1)
        return u, 1.0 / precision, {self.cues[i]: float(w) for i, w in zip(idx, weights)}


@dataclass(frozen=True)
class CueModel:
    """The cues' calibration for the three numbers of u, and where it was fitted."""

    dimensions: dict[str, DimensionModel]
    fitted_on: dict = field(default_factory=dict)
    joint: JointModel | None = None
    """The joint model of all cues and the light's shape (None: the cues combined per number)."""

    def to_dict(self) -> dict:
        return {
            "fitted_on": self.fitted_on,
            **({"joint": self.joint.to_dict()} if self.joint is not None else {}),
            "dimensions": {
                k: {"cues": list(m.cues), "slope": list(m.slope), "offset": list(m.offset), "covariance": [list(r) for r in m.covariance], "use": list(m.use)}
                for k, m in self.dimensions.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> CueModel:
        dims = {
            k: DimensionModel(tuple(m["cues"]), tuple(m["slope"]), tuple(m["offset"]), tuple(tuple(r) for r in m["covariance"]), tuple(m.get("use", ())))
            for k, m in data["dimensions"].items()
        }
        if set(dims) != set(DIMENSIONS):
            raise ValueError(f"a cue model needs the dimensions {DIMENSIONS}, got {sorted(dims)}")
        joint = JointModel.from_dict(data["joint"]) if "joint" in data else None
        return cls(dims, dict(data.get("fitted_on", {})), joint)

    @classmethod
    def photo_only(cls) -> CueModel:
        """The photo taken at its word (``own`` only, slope 1, no offset): the start of the
        tuning, before any cue is calibrated."""
        dims = {k: DimensionModel(("own",), (1.0,), (0.0,), ((1.0,),)) for k in DIMENSIONS}
        return cls(dims, {"split": "none: the photo as it is"})

    def save(self, path: Path) -> None:
        text = json.dumps(self.to_dict(), indent=1)
        # Lists of numbers on one line each (the residual trees' arrays would take a line a number).
        text = re.sub(r"\[\s*(-?[0-9][-+0-9.eE,\s]*?)\s*\]", lambda m: "[" + ",".join(m.group(1).split()).replace(",,", ",") + "]", text)
        Path(path).write_text(text + "\n")


@lru_cache(maxsize=4)
def load_cue_model(path: str | None = None) -> CueModel:
    """The calibration in ``path`` (None: the committed ``CUE_MODEL``)."""
    return CueModel.from_dict(json.loads(Path(path or CUE_MODEL).read_text()))


def fit_dimension(readings: np.ndarray, truth: np.ndarray, groups: Sequence, cues: Sequence[str], *, min_cases: int = 30) -> DimensionModel:
    """Calibrate the cues' readings ``(n, k)`` (NaN: no reading) of one number against its
    ``truth (n,)``: slopes from the variation within each group (cases of one scene and light,
    different skin), offsets and the residual covariance from all cases (pairwise where cues
    are missing).

    >>> rng = np.random.default_rng(0); u = rng.normal(0, 1, 600); g = np.repeat(np.arange(100), 6)
    >>> scene = np.repeat(rng.normal(0, 0.3, 100), 6)
    >>> r = np.stack([0.7 * u + 0.2 + scene, u - 1.0 + rng.normal(0, 0.1, 600)], 1)
    >>> m = fit_dimension(r, u, g, ("own", "sclera"))
    >>> np.round(m.slope, 2).tolist(), np.round(m.offset, 1).tolist()
    ([0.7, 1.0], [0.2, -1.0])
    """
    readings = np.asarray(readings, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    keys = {g: i for i, g in enumerate(dict.fromkeys(groups))}
    gi = np.array([keys[g] for g in groups])
    slopes, offsets = [], []
    for k in range(readings.shape[1]):
        ok = np.isfinite(readings[:, k])
        if ok.sum() < min_cases:
            raise ValueError(f"cue {cues[k]}: {int(ok.sum())} readings, at least {min_cases} needed")
        x, y, g = truth[ok], readings[ok, k], gi[ok]
        xm = np.bincount(g, x, minlength=len(keys)) / np.maximum(np.bincount(g, minlength=len(keys)), 1)
        ym = np.bincount(g, y, minlength=len(keys)) / np.maximum(np.bincount(g, minlength=len(keys)), 1)
        dx, dy = x - xm[g], y - ym[g]
        beta = float((dx * dy).sum() / max((dx * dx).sum(), 1e-12))
        slopes.append(beta)
        offsets.append(float(np.mean(y - beta * x)))
    resid = readings - np.array(offsets)[None, :] - truth[:, None] * np.array(slopes)[None, :]
    n = readings.shape[1]
    cov = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            ok = np.isfinite(resid[:, i]) & np.isfinite(resid[:, j])
            cov[i, j] = float(np.mean(resid[ok, i] * resid[ok, j]) - np.mean(resid[ok, i]) * np.mean(resid[ok, j])) if ok.sum() > 2 else 0.0
    # Pairwise estimates need not give a positive-definite matrix: lift its smallest eigenvalue.
    w, v = np.linalg.eigh((cov + cov.T) / 2)
    cov = (v * np.maximum(w, 1e-4 * max(w.max(), 1e-6))) @ v.T
    return DimensionModel(tuple(cues), tuple(slopes), tuple(offsets), tuple(tuple(float(c) for c in row) for row in cov))


@dataclass(frozen=True)
class MeanAlbedo:
    """The priors' choice for one photo: the mean skin albedo and how it was reached."""

    albedo: np.ndarray  # (3,) linear RGB
    u: np.ndarray  # (3,) (log Y, log R/G, log B/G)
    variance: np.ndarray  # (3,) of u, from the calibration
    readings: dict[str, list[float]]  # each cue's raw reading of u
    weights: dict[str, dict[str, float]]  # per number of u, how much each cue counted
    fell_back: bool  # the combined colour was off the skin locus: the photo's own colour kept
    combiner: str = "cues"  # "joint" (JointModel) or "cues" (DimensionModel per number)
    features: dict[str, float] = field(default_factory=dict)  # the joint model's inputs (joint_features)
    outside: list[str] = field(default_factory=list)  # inputs beyond the joint model's range (JointModel.outside)

    def to_dict(self) -> dict:
        return {
            "albedo_linear_rgb": self.albedo.tolist(),
            "log_luminance_rg_bg": self.u.tolist(),
            "variance": self.variance.tolist(),
            "combiner": self.combiner,
            **({"joint_inputs_out_of_range": self.outside} if self.outside else {}),
            "cue_readings": self.readings,
            # joint: how far each cue's features moved u from the tuning mean ("trees": the residual
            # trees' correction); cues: each cue's weight
            "cue_weights": self.weights,
            "colour_fell_back_to_photo": self.fell_back,
        }


def choose_mean_albedo(
    observed: np.ndarray,
    peak: float,
    cues: PhotoCues | None,
    priors: AlbedoPriors,
    *,
    model: CueModel | None = None,
    light: LightShape | None = None,
) -> MeanAlbedo:
    """The mean skin albedo ``(3,)`` of one photo (linear RGB) by the calibrated cues.

    ``observed (3,)``: the mean skin colour the lighting fit sees; ``peak``: its luminance at
    the brightest skin shading; ``cues``: the photo's scene and eye whites (or None);
    ``model``: the calibration (None: ``priors.model``, or the committed one); ``light``: the
    fitted light's shape, which the joint model reads (None: the cues combined per number).
    """
    model = model or load_cue_model(priors.model)
    readings = cue_readings(observed, peak, cues)
    features = joint_features(readings, light, cues) if light is not None else {}
    joint = priors.combiner == "joint" and model.joint is not None and light is not None
    joint = joint and priors.brightness_cues is None and priors.colour_cues is None
    outside = model.joint.outside(features) if joint else []
    joint = joint and not outside
    u = np.zeros(3)
    var = np.zeros(3)
    weights = {}
    if joint:
        u, weights = model.joint.predict(features)
        var = np.array(model.joint.residual_sd) ** 2
    else:
        for d, name in enumerate(DIMENSIONS):
            dim = model.dimensions[name]
            asked = priors.brightness_cues if d == 0 else priors.colour_cues
            use = ("own", *asked) if asked is not None else (dim.use or dim.cues)
            u[d], var[d], weights[name] = dim.combine({k: r[d] for k, r in readings.items()}, use)
    # No skin is darker or lighter than the ends of the skin locus (a failed light fit can
    # read a face as brighter than white).
    _, _, locus_luminance = skin_locus_samples()
    u[0] = float(np.clip(u[0], np.log(locus_luminance.min()), np.log(locus_luminance.max())))
    fell_back = locus_distance(u[1:]) > priors.off_locus_limit and locus_distance(u[1:]) > locus_distance(readings["own"][1:])
    if fell_back:
        own = model.dimensions["log_rg"], model.dimensions["log_bg"]
        for d, m in zip((1, 2), own):
            u[d], var[d], weights[DIMENSIONS[d]] = m.combine({"own": readings["own"][d]}, ("own",))
    rounded = {k: [round(float(v), 5) for v in r] for k, r in readings.items()}
    return MeanAlbedo(albedo_of(u), u, var, rounded, weights, fell_back, "joint" if joint else "cues", features, outside)


def consensus(choices: Sequence[MeanAlbedo], weights: Sequence[float] | None = None) -> np.ndarray:
    """The mean skin albedo ``(3,)`` of one person from several photos' choices: per number of
    u, the inverse-variance weighted mean (times ``weights``, e.g. the photos' resolution).

    >>> a = MeanAlbedo(albedo_of(np.zeros(3)), np.zeros(3), np.ones(3), {}, {}, False)
    >>> b = MeanAlbedo(albedo_of(np.ones(3)), np.ones(3), np.full(3, 3.0), {}, {}, False)
    >>> round(float(np.log(consensus([a, b]) @ LUMA_WEIGHTS)), 3)  # (0 / 1 + 1 / 3) / (1 + 1 / 3)
    0.25
    """
    u = np.array([c.u for c in choices])
    w = 1.0 / np.array([c.variance for c in choices])
    if weights is not None:
        w = w * np.asarray(weights, dtype=np.float64)[:, None]
    return albedo_of((w * u).sum(axis=0) / w.sum(axis=0))
