"""The synthetic face engine's configuration and the skin types' ITA ranges.

>>> SKIN_TYPE_ITA[0], SKIN_TYPE_ITA[5]
((55.0, 68.0), (-55.0, -30.0))
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from hifialbedo.ops.colour import SKIN_TYPE_LOWER_ITA

# ITA range (degrees) of each skin type, lightest first: the FAIR bins of ``ops.colour``
# (I > 55, II 41..55, III 28..41, IV 10..28, V -30..10, VI < -30) with the open ends closed
# at values real skin reaches (about 68 for very light skin, -55 for very dark).
SKIN_TYPE_ITA = tuple(zip((*SKIN_TYPE_LOWER_ITA, -55.0), (68.0, *SKIN_TYPE_LOWER_ITA), strict=True))
LIGHT_KINDS = ("sh", "directional", "envmap")


@dataclass(frozen=True)
class SynthConfig:
    """What ``write_dataset`` generates. Every field is plain data (saved in ``dataset.json``)."""

    n_identities: int = 12
    """Number of identities (an albedo map and a face shape each)."""
    renders_per_identity: int = 6
    """Photos per identity, each with its own pose, expression, light and background."""
    image_size: int = 128
    """Side of the square photos, pixels (>= 32; 256 or more for landmark detection)."""
    uv_size: int = 256
    """Side of the square UV albedo maps, texels (>= 32; powers of two recommended)."""
    seed: int = 0
    """Everything is a deterministic function of the seed (same seed, same bytes)."""
    skin_type_weights: tuple[float, float, float, float, float, float] = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    """Relative frequency of skin types I..VI; identities are allocated to types in these
    proportions (largest remainder), then shuffled."""
    lighting_mix: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Relative frequency of the light kinds ("sh", "directional", "envmap"): a random
    9-coefficient SH environment, a coloured directional light plus ambient, or a procedural
    HDR environment map (sky gradient and one or two bright blobs) projected to SH."""
    temperature_range: tuple[float, float] = (3000.0, 7500.0)
    """Colour temperature of the lights, kelvin."""
    white_balance_range: tuple[float, float] = (0.5, 1.0)
    """Fraction of the light's colour cast the camera's white balance removes (1 = all)."""
    exposure_stops: float = 0.35
    """Standard deviation of the exposure jitter, stops, around an exposure that puts the
    90th percentile of the face's shading at 0.85..1.2 (set by the light, not the skin)."""
    specular: bool = True
    """Add a Blinn-Phong specular lobe (stronger on forehead and nose) to the photos."""
    specular_range: tuple[float, float] = (0.03, 0.2)
    """Specular intensity, relative to the dominant light's irradiance."""
    shininess_range: tuple[float, float] = (8.0, 60.0)
    """Blinn-Phong exponent."""
    noise_std: float = 0.004
    """Largest read-noise standard deviation (linear RGB) of the sensor; the per-photo value is
    uniform in [0, noise_std] plus a matching shot-noise term. 0 turns noise off."""
    max_yaw: float = 35.0
    """Largest head yaw, degrees."""
    max_pitch: float = 15.0
    """Largest head pitch, degrees."""
    max_roll: float = 10.0
    """Largest head roll, degrees."""
    face_fraction: tuple[float, float] = (0.42, 0.58)
    """Face height (chin to upper forehead) as a fraction of the image side."""
    expression_strength: float = 1.0
    """Scale of the random expressions (0 = neutral faces)."""
    stubble_probability: float = 0.3
    """Chance that an identity has stubble."""
    freckle_probability: float = 0.3
    """Chance of freckles for skin type II (doubled-ish for I, less for darker types)."""
    head: bool = True
    """Render a head proxy (ellipsoid head with hair, neck) behind the face mesh."""
    val_fraction: float = 0.15
    """Fraction of identities in the validation split (at least one when there are two or more)."""

    def __post_init__(self) -> None:
        if self.n_identities < 1 or self.renders_per_identity < 1:
            raise ValueError("n_identities and renders_per_identity must be >= 1")
        if self.image_size < 32 or self.uv_size < 32 or self.uv_size > 8192:
            raise ValueError(f"image_size and uv_size must be >= 32 (uv_size <= 8192), got {self.image_size}, {self.uv_size}")
        if len(self.skin_type_weights) != 6 or min(self.skin_type_weights) < 0 or sum(self.skin_type_weights) <= 0:
            raise ValueError("skin_type_weights: six non-negative weights, not all zero")
        if len(self.lighting_mix) != 3 or min(self.lighting_mix) < 0 or sum(self.lighting_mix) <= 0:
            raise ValueError("lighting_mix: three non-negative weights (sh, directional, envmap), not all zero")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.noise_std < 0 or self.exposure_stops < 0:
            raise ValueError("noise_std and exposure_stops must be >= 0")

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SynthConfig:
        """Inverse of ``as_dict`` (lists become tuples; unknown keys are an error)."""
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown SynthConfig fields: {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


PRESETS: dict[str, SynthConfig] = {
    "tiny": SynthConfig(n_identities=3, renders_per_identity=2, image_size=64, uv_size=64),
    "small": SynthConfig(),
    "medium": SynthConfig(n_identities=200, renders_per_identity=8, image_size=256, uv_size=512),
}
"""Named configurations: ``tiny`` for tests, ``small`` (the default: 12 x 6 at 128 px,
UV 256, seconds to write), ``medium`` for a first training run."""
