"""Identities and their renders, as deterministic functions of (config, identity index, render index).

Random streams: identity ``i`` draws from ``SeedSequence(config.seed, spawn_key=(i,))``
(its albedo, shape and head), render ``k`` of it from ``spawn_key=(i, 1000 + k)``; the
allocation of skin types to identities from ``spawn_key=()``. An identity therefore does
not depend on how many identities or renders the dataset has (except for its skin type,
which the allocation decides).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hifialbedo.ops.colour import SKIN_TYPES
from hifialbedo.synth.albedo import SynthAlbedo, procedural_albedo
from hifialbedo.synth.config import LIGHT_KINDS, SynthConfig
from hifialbedo.synth.lighting import sample_synth_light
from hifialbedo.synth.render import HeadProxy, SpecularParams, SynthRender, make_head_proxy, render_photo
from hifialbedo.synth.shape import (
    Expression,
    Pose,
    ShapeParams,
    expressed_shape,
    sample_expression,
    sample_identity_shape,
    sample_pose,
)


@dataclass(frozen=True)
class Identity:
    """A synthetic person: a UV albedo and a neutral face shape (plus the rest of the head)."""

    index: int
    albedo: SynthAlbedo
    shape: np.ndarray  # (478, 3) head frame, neutral expression
    shape_params: ShapeParams
    head: HeadProxy | None

    def summary(self) -> dict:
        """JSON-able description (what dataset.json lists per identity)."""
        a = self.albedo
        return {
            "id": self.index,
            "skin_type": a.skin_type,
            "skin_type_name": SKIN_TYPES[a.skin_type],
            "ita": a.ita,
            "target_ita": a.tone.target_ita,
            "base_lab": list(a.tone.lab),
            "hair": a.hair_name,
            "eyes": a.eye_name,
            "features": a.features,
            "shape": {k: getattr(self.shape_params, k) for k in self.shape_params.__dataclass_fields__},
            "head": None if self.head is None else self.head.as_dict(),
        }


def _seq(config: SynthConfig, *key: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(config.seed, spawn_key=key)


def allocate_skin_types(config: SynthConfig) -> list[int]:
    """Skin type (0..5) of each identity: ``skin_type_weights`` by largest remainder, shuffled."""
    w = np.asarray(config.skin_type_weights, dtype=np.float64)
    quota = w / w.sum() * config.n_identities
    counts = np.floor(quota).astype(int)
    order = np.argsort(-(quota - counts), kind="stable")
    counts[order[: config.n_identities - counts.sum()]] += 1
    types = np.repeat(np.arange(6), counts)
    np.random.default_rng(_seq(config)).shuffle(types)
    return [int(t) for t in types]


def make_identity(config: SynthConfig, index: int, skin_type: int) -> Identity:
    """Identity ``index`` of a dataset: its albedo (``config.uv_size``), shape and head."""
    seq = _seq(config, index)
    albedo_seq, shape_seq, head_seq = seq.spawn(3)
    albedo = procedural_albedo(
        config.uv_size,
        skin_type=skin_type,
        seed=albedo_seq,
        stubble_probability=config.stubble_probability,
        freckle_probability=config.freckle_probability,
    )
    shape, params = sample_identity_shape(np.random.default_rng(shape_seq))
    head = make_head_proxy(shape, albedo, np.random.default_rng(head_seq)) if config.head else None
    return Identity(index, albedo, shape, params, head)


@dataclass(frozen=True)
class RenderSpec:
    """Everything random about one render (drawn by ``sample_render_spec``)."""

    pose: Pose
    expression: Expression
    light_kind: str
    exposure: float  # target 90th percentile of the face's shading luminance
    specular: SpecularParams | None
    noise_std: float
    seed: int


def sample_render_spec(config: SynthConfig, rng: np.random.Generator) -> RenderSpec:
    pose = sample_pose(
        rng,
        config.image_size,
        max_yaw=config.max_yaw,
        max_pitch=config.max_pitch,
        max_roll=config.max_roll,
        face_fraction=config.face_fraction,
    )
    expression = sample_expression(rng, strength=config.expression_strength)
    mix = np.asarray(config.lighting_mix, dtype=np.float64)
    kind = LIGHT_KINDS[int(rng.choice(3, p=mix / mix.sum()))]
    exposure = float(rng.uniform(0.85, 1.2) * 2.0 ** rng.normal(0.0, config.exposure_stops))
    spec = SpecularParams(float(rng.uniform(*config.specular_range)), float(rng.uniform(*config.shininess_range)))
    return RenderSpec(
        pose, expression, kind, exposure, spec if config.specular else None, config.noise_std, int(rng.integers(2**31))
    )


def make_render(config: SynthConfig, identity: Identity, k: int) -> tuple[SynthRender, RenderSpec, Expression]:
    """Render ``k`` of an identity; returns the render, its spec and the expression applied
    (the sampled one, scaled back if it made the mesh invalid)."""
    rng = np.random.default_rng(_seq(config, identity.index, 1000 + k))
    spec = sample_render_spec(config, rng)
    light = sample_synth_light(
        rng, spec.light_kind, temperature_range=config.temperature_range, white_balance_range=config.white_balance_range
    )
    shape, expression = expressed_shape(identity.shape, spec.expression)
    render = render_photo(
        identity.albedo,
        shape,
        identity.head,
        spec.pose,
        light,
        exposure=spec.exposure,
        specular=spec.specular,
        noise_std=spec.noise_std,
        seed=spec.seed,
    )
    return render, spec, expression
