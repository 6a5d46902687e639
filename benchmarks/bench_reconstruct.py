"""Per-stage time and peak memory of `reconstruct` for 1, 3 and 6 photos (512x512 each).

Usage: python benchmarks/bench_reconstruct.py [--uv-size 1024] [--repeats 3] [--no-reflectance]

Imports and models (landmark detector, identity network, the UV layout of the chosen
size) are loaded before timing; each run then reads the photos, computes and writes all
outputs. The photos are the 512x512 sample (samples/astronaut.png) and relit, shifted
copies of it, so that the multi-photo runs do real fusion work.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")
REPO = Path(__file__).resolve().parents[1]


def make_photos(folder: Path, n: int) -> list[Path]:
    import cv2

    base = cv2.imread(str(REPO / "samples" / "astronaut.png"))
    paths = []
    for i in range(n):
        gain = np.array([1.0 + 0.08 * np.sin(i), 1.0, 1.0 + 0.08 * np.cos(i)]) * (0.85 + 0.05 * i)
        img = np.clip(base.astype(np.float32) * gain, 0, 255).astype(np.uint8)
        img = np.roll(img, 4 * i, axis=1)
        p = folder / f"photo{i}.png"
        cv2.imwrite(str(p), img)
        paths.append(p)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--uv-size", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-reflectance", action="store_true", help="as reconstruct --no-reflectance: no specular fit, no detail normals")
    args = ap.parse_args()

    from hifialbedo.pipeline import Models, ReconstructConfig, reconstruct
    from hifialbedo.render.uv_layout import uv_layout
    from hifialbedo.mesh.topology import uv_regions

    t = time.perf_counter()
    models = Models()
    models.detector
    models.identity
    uv_layout(args.uv_size)
    uv_regions(args.uv_size)
    print(f"load (imports excluded): detector + identity + UV layout {args.uv_size}: {time.perf_counter() - t:.2f} s")
    config = ReconstructConfig(uv_size=args.uv_size, **({"specular": None, "detail_normals": False} if args.no_reflectance else {}))
    work = Path(tempfile.mkdtemp(prefix="hifialbedo-bench-"))
    try:
        photos = make_photos(work, 6)
        # Warm-up: first calls pay one-off costs (allocator, mediapipe graph start).
        reconstruct(photos[:1], work / "warm", config=config, models=models)
        for n in (1, 3, 6):
            walls, stages = [], []
            for r in range(args.repeats):
                out = work / f"out{n}_{r}"
                t = time.perf_counter()
                report = reconstruct(photos[:n], out, config=config, models=models)
                walls.append(time.perf_counter() - t)
                stages.append(report["timings_s"])
            best = int(np.argmin(walls))
            s = stages[best]
            io = s.get("read", 0) + s.get("write", 0)
            compute = sum(v for k, v in s.items() if k not in ("read", "write", "uv_layout"))
            compute_wo_lm = compute - s["landmarks"]
            print(f"\n{n} photo(s), uv {args.uv_size}: wall {walls[best]:.3f} s (best of {args.repeats}; all: {', '.join(f'{w:.3f}' for w in walls)})")
            for k, v in s.items():
                print(f"  {k:12s} {v * 1000:8.1f} ms")
            print(f"  landmarks per photo {s['landmarks'] / n * 1000:.1f} ms; compute stages other than landmarks "
                  f"{compute_wo_lm * 1000:.1f} ms = {compute_wo_lm / max(s['landmarks'], 1e-9):.1f}x landmarks; read+write {io * 1000:.1f} ms")
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"\npeak resident memory of the whole process (imports, models, 6-photo runs): {peak_mb:.0f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
