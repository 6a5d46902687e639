"""Throughput of `hifialbedo batch`: local process pool and Ray, 1 and 2 workers, and the
cost of a resume over a finished folder.

Usage: python benchmarks/bench_batch.py [--photos 48] [--uv-size 256] [--no-reflectance]
       [--workers 1 2] [--engines local ray] [-o out/bench_batch]

The photos are made from the two samples (samples/grace_hopper.jpg, samples/astronaut.png):
each as taken and in variants, cycling through a mirror, crops of 0-40 px off the top and
left, rescales by 0.7-1.3, small rotations (-8..8 degrees) and exposure / colour-cast gains
(0.8-1.2 per channel), all JPEG at quality 92. Every run is the CLI in a fresh process on a
fresh OUT_DIR, as a user would start it, so its wall time includes Python's imports, the
engine's start (a forkserver and its workers; Ray: a local Ray and its actors) and the
models' loading. Two rates are given:

- overall: photos / wall time of the command;
- steady: photos per second between the first and the last done marker (the workers' rate
  once started: what a long run converges to).

Ray's overhead is its wall time minus the local engine's at the same number of workers. The
resume cost is the wall time of the same command over the finished folder (every item is
skipped after reading its done marker). Writes results.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def make_photos(folder: Path, n: int) -> list[Path]:
    import cv2

    bases = [cv2.imread(str(REPO / "samples" / name)) for name in ("grace_hopper.jpg", "astronaut.png")]
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        img = bases[i % 2]
        k = i // 2
        if k % 2:
            img = img[:, ::-1]
        dy, dx = int(rng.integers(0, 41)), int(rng.integers(0, 41))
        img = img[dy:, dx:]
        scale = float(rng.uniform(0.7, 1.3))
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        h, w = img.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), float(rng.uniform(-8, 8)), 1.0)
        img = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)
        gain = rng.uniform(0.8, 1.2, 3)
        img = np.clip(img.astype(np.float32) * gain, 0, 255).astype(np.uint8)
        p = folder / f"{'grace' if i % 2 == 0 else 'astro'}_{k:03d}.jpg"
        cv2.imwrite(str(p), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
        paths.append(p)
    return paths


def run(photos: Path, out: Path, engine: str, workers: int, extra: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "hifialbedo.cli", "batch", str(photos), "-o", str(out), "--engine", engine, "--workers", str(workers), "--quiet", *extra]
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    marks = sorted(p.stat().st_mtime for p in out.rglob("batch_done.json"))
    return {"wall_s": wall, "marker_times": marks, "stdout": proc.stdout.strip()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=int, default=48)
    ap.add_argument("--uv-size", type=int, default=256)
    ap.add_argument("--no-reflectance", action="store_true")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--engines", nargs="+", default=["local", "ray"], choices=["local", "ray"])
    ap.add_argument("-o", "--output", type=Path, default=REPO / "out" / "bench_batch")
    args = ap.parse_args()

    shutil.rmtree(args.output, ignore_errors=True)
    photos = args.output / "photos"
    make_photos(photos, args.photos)
    extra = ["--uv-size", str(args.uv_size), *(["--no-reflectance"] if args.no_reflectance else [])]
    results = []
    for engine in args.engines:
        for w in args.workers:
            out = args.output / f"{engine}_{w}"
            r = run(photos, out, engine, w, extra)
            marks = r["marker_times"]
            done = len(marks)
            steady = (done - 1) / (marks[-1] - marks[0]) if done > 1 and marks[-1] > marks[0] else float("nan")
            resume = run(photos, out, engine, w, extra)
            row = {
                "engine": engine,
                "workers": w,
                "done": done,
                "wall_s": round(r["wall_s"], 2),
                "overall_images_per_s": round(done / r["wall_s"], 3),
                "steady_images_per_s": round(steady, 3),
                "resume_wall_s": round(resume["wall_s"], 2),
            }
            results.append(row)
            print(json.dumps(row), flush=True)
    local = {r["workers"]: r for r in results if r["engine"] == "local"}
    for r in results:
        if r["engine"] == "ray" and r["workers"] in local:
            r["ray_overhead_s"] = round(r["wall_s"] - local[r["workers"]]["wall_s"], 2)
    meta = {
        "photos": args.photos,
        "uv_size": args.uv_size,
        "reflectance": not args.no_reflectance,
        "cpus": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
    }
    (args.output / "results.json").write_text(json.dumps({"meta": meta, "runs": results}, indent=2) + "\n")
    print(f"\n{args.photos} photos, --uv-size {args.uv_size}{'' if meta['reflectance'] else ' --no-reflectance'}, {os.cpu_count()} CPUs\n")
    print("| engine | workers | wall s | images/s overall | images/s steady | Ray overhead s | resume s |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['engine']} | {r['workers']} | {r['wall_s']} | {r['overall_images_per_s']} | {r['steady_images_per_s']} | "
            f"{r.get('ray_overhead_s', '')} | {r['resume_wall_s']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
