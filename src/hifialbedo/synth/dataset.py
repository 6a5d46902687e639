"""Writing and reading a synthetic dataset folder (ground truth included).

Layout (``{i}`` = identity id as 5 digits, ``{k}`` = render index as 2 digits)::

    dataset.json                       config, counts, conventions, splits, per-identity summary
    identities/{i}/albedo.png          UV albedo, 8-bit sRGB (to look at)
    identities/{i}/albedo16.png        UV albedo, 16-bit sRGB-encoded: the exact ground truth
    identities/{i}/specular_mask.png   UV relative specular strength, 8-bit linear (0..255 -> 0..1)
    identities/{i}/shape.npy           (478, 3) float32 neutral shape, head frame
    renders/{i}_{k}.png                the photo, 8-bit sRGB
    renders/{i}_{k}_albedo_view.png    the albedo in the photo's pixel grid, 16-bit sRGB-encoded
                                       RGBA; alpha = the face mesh's pixels (the mask)
    renders/{i}_{k}_normals.npy        (R, R, 3) float16 unit camera-frame normals (0 off the mask)
    renders/{i}_{k}_specular.npy       (R, R, 3) float16 linear-RGB specular layer (0 when off)
    renders/{i}_{k}_landmarks.npy      (478, 3) float32 pixels (x right, y down, z; MediaPipe's order)
    renders/{i}_{k}_light.json         SH (9 x 3), light kind and colour, temperature, white
                                       balance, exposure, specular, pose, expression, noise

In the mask, before noise and 8-bit rounding:
``linear photo = albedo_view * max(sh_shading(normals, sh), 0) + specular``.
Everything is a deterministic function of the config (same config, byte-identical files).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hifialbedo.io.images import write_png
from hifialbedo.io.output import atomic_output_dir, write_json
from hifialbedo.ops.colour import SKIN_TYPES, linear_to_srgb, linear_to_srgb_uint8, srgb_to_linear
from hifialbedo.synth.config import SynthConfig
from hifialbedo.synth.engine import Identity, allocate_skin_types, make_identity, make_render

FORMAT = "hifialbedo-synth"
VERSION = 1
CONVENTIONS = {
    "colour": "albedo and photo PNGs are sRGB-encoded; the maths (I = A * S + specular) is in linear RGB",
    "albedo16": "16-bit sRGB-encoded: linear = srgb_to_linear(value / 65535)",
    "uv": "u right, v down; texel (i, j) centre at ((j + 0.5) / S, (i + 0.5) / S) (mesh.topology)",
    "camera": "x right, y up, z toward the camera; orthographic; normals and SH in this frame",
    "landmarks": "pixels: x right, y down, continuous (pixel centres at +0.5); z pixels, smaller = nearer",
    "sh": "9 x 3 radiance coefficients, basis and normalisation of hifialbedo.ops.sh (uniform white 1 -> shading 1)",
    "head_frame": "x subject's left, y up, z out of the face; unit = mean vertex distance from the centroid",
}


def render_name(identity: int, k: int) -> str:
    return f"{identity:05d}_{k:02d}"


def encode_srgb16(linear: np.ndarray) -> np.ndarray:
    """Linear RGB(A) in [0, 1] -> uint16 sRGB-encoded (alpha, if a 4th channel, stays linear)."""
    out = np.clip(linear, 0.0, 1.0).astype(np.float64)
    out[..., :3] = linear_to_srgb(out[..., :3])
    return np.round(np.clip(out, 0.0, 1.0) * 65535.0).astype(np.uint16)


def decode_srgb16(values: np.ndarray) -> np.ndarray:
    """Inverse of ``encode_srgb16`` -> float32 linear RGB(A)."""
    out = values.astype(np.float64) / 65535.0
    out[..., :3] = srgb_to_linear(out[..., :3])
    return out.astype(np.float32)


def split_identities(config: SynthConfig, skin_types: list[int]) -> list[str]:
    """The split ("train" or "val") of each identity: ``val_fraction`` of them (at least one when there are two
    or more and the fraction is > 0), spread over skin types, chosen by a seeded permutation."""
    n = config.n_identities
    n_val = round(n * config.val_fraction)
    if config.val_fraction > 0 and n >= 2:
        n_val = max(n_val, 1)
    n_val = min(n_val, n - 1) if n > 1 else 0
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(2**20,)))
    perm = [int(i) for i in rng.permutation(n)]
    per_type_cap = -(-n_val // 6) if n_val else 0
    val: list[int] = []
    taken = [0] * 6
    for cap in (per_type_cap, n):
        for i in perm:
            if len(val) == n_val:
                break
            if i not in val and taken[skin_types[i]] < cap:
                val.append(i)
                taken[skin_types[i]] += 1
    return ["val" if i in val else "train" for i in range(n)]


def _write_identity(folder: Path, identity: Identity) -> None:
    folder.mkdir(parents=True)
    a = identity.albedo
    write_png(folder / "albedo.png", linear_to_srgb_uint8(a.albedo))
    write_png(folder / "albedo16.png", encode_srgb16(a.albedo))
    write_png(folder / "specular_mask.png", np.round(a.specular_mask * 255.0).astype(np.uint8))
    np.save(folder / "shape.npy", identity.shape.astype(np.float32))


def write_dataset(
    out_dir: str | Path,
    config: SynthConfig,
    progress: Callable[[int, int], None] | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Generate the dataset ``config`` describes into ``out_dir`` (layout in the module docstring).

    Written into a temporary folder beside ``out_dir`` and renamed into place, so the folder
    is complete or absent; an existing ``out_dir`` is refused unless ``overwrite``
    (``hifialbedo.io.errors.InputError``). ``progress(done, total)`` is called after each
    render. Returns ``out_dir``.
    """
    out_dir = Path(out_dir)
    skin_types = allocate_skin_types(config)
    splits = split_identities(config, skin_types)
    total = config.n_identities * config.renders_per_identity
    done = 0
    summaries = []
    with atomic_output_dir(out_dir, overwrite=overwrite) as tmp:
        (tmp / "renders").mkdir()
        for i in range(config.n_identities):
            identity = make_identity(config, i, skin_types[i])
            _write_identity(tmp / "identities" / f"{i:05d}", identity)
            names = []
            for k in range(config.renders_per_identity):
                render, spec, expression = make_render(config, identity, k)
                name = render_name(i, k)
                base = tmp / "renders" / name
                write_png(base.with_name(name + ".png"), render.photo)
                rgba = np.concatenate([render.albedo_view, render.mask[..., None].astype(np.float32)], axis=-1)
                write_png(base.with_name(name + "_albedo_view.png"), encode_srgb16(rgba))
                np.save(base.with_name(name + "_normals.npy"), render.normals.astype(np.float16))
                np.save(base.with_name(name + "_specular.npy"), render.specular.astype(np.float16))
                np.save(base.with_name(name + "_landmarks.npy"), render.landmarks.astype(np.float32))
                light = render.light.as_dict()
                light.update(
                    {
                        "exposure": render.exposure,
                        "target_exposure": spec.exposure,
                        "specular": None
                        if spec.specular is None
                        else {"intensity": spec.specular.intensity, "shininess": spec.specular.shininess},
                        "pose": spec.pose.as_dict(),
                        "expression": {k2: getattr(expression, k2) for k2 in expression.__dataclass_fields__},
                        "identity": i,
                        "render": k,
                        **render.info,
                    }
                )
                write_json(base.with_name(name + "_light.json"), light)
                names.append(name)
                done += 1
                if progress is not None:
                    progress(done, total)
            summary = identity.summary()
            summary["split"] = splits[i]
            summary["renders"] = names
            summaries.append(summary)
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "config": config.as_dict(),
            "counts": {
                "identities": config.n_identities,
                "renders": total,
                "renders_per_identity": config.renders_per_identity,
                "per_skin_type": {name: skin_types.count(t) for t, name in enumerate(SKIN_TYPES)},
                "train": splits.count("train"),
                "val": splits.count("val"),
            },
            "conventions": CONVENTIONS,
            "identities": summaries,
        }
        write_json(tmp / "dataset.json", meta)
    return out_dir


def read_metadata(root: str | Path) -> dict:
    """``dataset.json`` of a synthetic dataset folder (checked to be one)."""
    path = Path(root) / "dataset.json"
    if not path.is_file():
        raise FileNotFoundError(f"{root}: not a synthetic dataset (no dataset.json)")
    meta = json.loads(path.read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("version") != VERSION:
        raise ValueError(f"{path}: version {meta.get('version')}, this reader knows {VERSION}")
    return meta


def _read_png(path: Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise OSError(f"{path}: cannot read PNG")
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB if image.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
    return image


def load_identity(root: str | Path, identity: int) -> dict[str, np.ndarray]:
    """An identity's ground truth as NumPy arrays: ``albedo`` (S, S, 3) float32 linear (from
    the 16-bit PNG), ``specular_mask`` (S, S) float32, ``shape`` (478, 3) float32."""
    folder = Path(root) / "identities" / f"{identity:05d}"
    return {
        "albedo": decode_srgb16(_read_png(folder / "albedo16.png")),
        "specular_mask": _read_png(folder / "specular_mask.png").astype(np.float32) / 255.0,
        "shape": np.load(folder / "shape.npy"),
    }


def load_render(root: str | Path, identity: int, k: int) -> dict:
    """One render as NumPy arrays: ``photo`` (R, R, 3) uint8 sRGB, ``albedo_view`` (R, R, 3)
    float32 linear, ``mask`` (R, R) bool, ``normals`` and ``specular`` (R, R, 3) float32,
    ``landmarks`` (478, 3) float32, ``sh`` (9, 3) float32, ``light`` (the JSON dict)."""
    base = Path(root) / "renders" / render_name(identity, k)
    rgba = decode_srgb16(_read_png(base.with_name(base.name + "_albedo_view.png")))
    light = json.loads(base.with_name(base.name + "_light.json").read_text())
    return {
        "photo": _read_png(base.with_name(base.name + ".png")),
        "albedo_view": rgba[..., :3],
        "mask": rgba[..., 3] > 0.5,
        "normals": np.load(base.with_name(base.name + "_normals.npy")).astype(np.float32),
        "specular": np.load(base.with_name(base.name + "_specular.npy")).astype(np.float32),
        "landmarks": np.load(base.with_name(base.name + "_landmarks.npy")),
        "sh": np.asarray(light["sh"], dtype=np.float32),
        "light": light,
    }
