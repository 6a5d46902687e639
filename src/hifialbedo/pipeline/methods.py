"""The training-free pipeline as methods the evaluations score.

``eval`` sits below the pipeline and does not import it: its runners take the methods they
score as callables, and these are the pipeline's. :func:`benchmark_methods` gives
``eval.benchmark.run_benchmark`` its ``reconstruct[...]``; :func:`training_free_method` is a
method of ``eval.synth_albedo.evaluate_synth_albedo``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hifialbedo.eval.benchmark import BenchmarkConfig, MethodBuilder, MethodFn, Prediction, priors_from
from hifialbedo.eval.relit_cases import RelitCase
from hifialbedo.eval.synth_albedo import AlbedoMethod
from hifialbedo.inverse.lighting import LightingConfig
from hifialbedo.inverse.priors import AlbedoPriors
from hifialbedo.io.contract import PhotoResult, Reconstruction
from hifialbedo.io.images import Photo
from hifialbedo.mesh.topology import uv_regions
from hifialbedo.ops.colour import linear_to_srgb_uint8, srgb_uint8_to_linear
from hifialbedo.pipeline.config import ReconstructConfig
from hifialbedo.pipeline.fuse import fuse_photo_results
from hifialbedo.pipeline.model_cache import Models
from hifialbedo.pipeline.photo import analyse_photo
from hifialbedo.render.image_raster import paste_window
from hifialbedo.render.uv_layout import uv_layout
from hifialbedo.render.view_shading import ShadedView, shade_view


class ReconstructMethod:
    """The training-free pipeline on relit cases (``pipeline.photo.analyse_photo`` +
    ``pipeline.fuse.fuse_photo_results``), identity check off, with per-photo analysis
    cached across k-photo subsets until :meth:`forget`."""

    def __init__(self, uv_size: int, priors: AlbedoPriors, models: Models) -> None:
        self.config = ReconstructConfig(uv_size=uv_size, check_identity=False, lighting=LightingConfig(priors=priors))
        self.layout = uv_layout(uv_size)
        self.skin = self.layout.gather(uv_regions(uv_size)["skin"])
        self.models = models
        self._cache: dict[str, PhotoResult] = {}

    def analyse(self, case: RelitCase) -> PhotoResult:
        if case.name not in self._cache:
            photo = Photo(Path(case.name.replace("/", "_") + ".png"), case.image, case.image.shape[:2], ())
            result = analyse_photo(photo, case.name, layout=self.layout, skin=self.skin, config=self.config, models=self.models)
            self._cache[case.name] = result
        return self._cache[case.name]

    def forget(self, keep: Sequence[str] = ()) -> None:
        self._cache = {k: v for k, v in self._cache.items() if k in keep}

    def __call__(self, cases: Sequence[RelitCase]) -> Prediction:
        results = [self.analyse(c) for c in cases]
        rec = fuse_photo_results(results, self.layout, config=self.config, models=self.models)
        albedo, mask, view = albedo_in_photo(rec)
        image = srgb_uint8_to_linear(cases[0].image)
        image[mask] = paste_window(rec.results[0].raster, view.image)[mask]
        return Prediction(albedo, mask, linear_to_srgb_uint8(np.clip(image, 0, 1)))


def albedo_in_photo(rec: Reconstruction) -> tuple[np.ndarray, np.ndarray, ShadedView]:
    """The reconstruction's UV albedo put back on its reference photo, as the benchmark scores
    it: ``(albedo (H, W, 3) linear RGB, mask (H, W) bool, the view's ShadedView)``."""
    ref = rec.results[0]
    view = shade_view(ref.geometry, ref.raster, rec.albedo, ref.estimate.sh)
    return paste_window(ref.raster, view.albedo), paste_window(ref.raster, view.mask.astype(np.uint8)).astype(bool), view


def benchmark_methods(config: BenchmarkConfig, models: Models) -> dict[str, MethodBuilder]:
    """The pipeline's methods for ``run_benchmark(config, methods=...)``: ``reconstruct[...]``,
    its options overriding the priors (``inverse.priors.AlbedoPriors`` fields)."""

    def reconstruct(options: dict[str, str]) -> MethodFn:
        return ReconstructMethod(config.uv_size, priors_from(options), models)

    return {"reconstruct": reconstruct}


def training_free_method(uv_size: int = 256) -> AlbedoMethod:
    """The training-free pipeline (``analyse_photo`` + ``fuse_photo_results``) on synthetic
    renders, with their true landmarks (no detection), identity check off."""
    config = ReconstructConfig(uv_size=uv_size, check_identity=False)
    layout = uv_layout(uv_size)
    skin = layout.gather(uv_regions(uv_size)["skin"])

    def method(renders: list[dict]) -> np.ndarray:
        results = []
        for i, r in enumerate(renders):
            photo = Photo(Path(f"render{i}.png"), r["photo"], r["photo"].shape[:2], ())
            results.append(analyse_photo(photo, f"render{i}", layout=layout, skin=skin, config=config, landmarks=r["landmarks"]))
        return fuse_photo_results(results, layout, config=config).albedo

    return method


__all__ = ["ReconstructMethod", "albedo_in_photo", "benchmark_methods", "training_free_method"]
