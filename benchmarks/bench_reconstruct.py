"""Every speed figure of `reconstruct` in one run: one photo, each further photo, the CLI in a
fresh process, `--uv-size 2048`, peak memory, per-stage times, and the compute stages as a
ratio of the landmark detection.

Usage: python benchmarks/bench_reconstruct.py [--uv-size 1024] [--repeats 3] [--no-reflectance]
                                              [--json out/bench_reconstruct.json] [--skip-cli] [--skip-2048]

Photos: the 512x512 sample (samples/astronaut.png) and relit, shifted copies of it, so that
the several-photo runs do real fusion work (the identity check included).

- **in process** (models loaded: imports, the landmark detector, the identity network and the
  UV layout of the size are loaded before timing; a warm-up run first): the wall time of
  ``pipeline.reconstruct`` from the call until every output file is on disk, and its CPU time
  (``time.process_time``, all threads), best of ``--repeats``, for k = 1, 2, 3, 6 photos;
  "each further photo" is the least-squares slope of wall time over k.
- **landmarks**: ``LandmarkDetector.detect`` on the photo alone (best of 10), and each
  compute stage of the one-photo run (``report.json``'s ``timings_s``) as a multiple of it.
- **CLI, fresh process**: ``python -m hifialbedo.cli reconstruct PHOTO -o OUT --quiet``,
  wall time of the whole process (best of ``--repeats``), with the UV-layout cache warm (the
  usual case: ``$HIFIALBEDO_CACHE``, default ``~/.cache/hifialbedo``) and cold (an empty cache
  folder); and the import time alone (``import hifialbedo.cli`` and the reconstruct path,
  in a fresh process, less a bare interpreter's start).
- **peak RSS**: a fresh process (``VmHWM`` of ``/proc/self/status``) that loads what the CLI loads and
  reconstructs one photo, at ``--uv-size`` and at 2048.
- **uv 2048**: one photo in process, models and layout loaded, as the first row.
- **allocator**: by default this process (and the peak-RSS child) tunes glibc's allocator as the
  ``hifialbedo`` command and the ``batch`` workers do (``pipeline.allocator``);
  ``--library-allocator`` leaves it as a program that imports the package has it.

Prints a table and writes every figure to ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
COUNTS = (1, 2, 3, 6)
STAGE_ORDER = (
    "uv_layout", "read", "landmarks", "mesh", "unwrap", "lighting", "identity", "specular",
    "detail_normals", "fusion", "completion", "views", "write",
)  # fmt: skip
NOT_COMPUTE = ("read", "write", "uv_layout", "landmarks")

CHILD_RSS = """
import os, sys, time
os.environ.setdefault("GLOG_minloglevel", "2")
from hifialbedo.pipeline import ReconstructConfig, reconstruct
if sys.argv[5] == "1":
    from hifialbedo.pipeline.allocator import keep_freed_memory
    keep_freed_memory()
t = time.perf_counter()
reconstruct([sys.argv[1]], sys.argv[2], config=ReconstructConfig(uv_size=int(sys.argv[3]), **({"specular": None, "detail_normals": False} if sys.argv[4] == "1" else {})))
# VmHWM, not ru_maxrss: after a vfork + exec Linux carries the parent's peak into ru_maxrss.
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(time.perf_counter() - t, hwm / 1024)
"""

CHILD_IMPORT = """
import time
t = time.perf_counter()
import hifialbedo.cli, hifialbedo.cli.reconstruct, hifialbedo.pipeline.reconstruct
print(time.perf_counter() - t, {modules})
""".replace("{modules}", "int('torch' in __import__('sys').modules)")


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


def child_env(cache: Path | None = None) -> dict:
    env = dict(os.environ)
    src = str(REPO / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if cache is not None:
        env["HIFIALBEDO_CACHE"] = str(cache)
    return env


def timed_process(cmd: list[str], env: dict) -> tuple[float, str]:
    t = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return wall, done.stdout


def in_process(photos, work: Path, config, models, repeats: int, label: str) -> dict:
    from hifialbedo.pipeline import reconstruct

    walls, cpus, stages = [], [], []
    for r in range(repeats):
        out = work / f"{label}_{r}"
        t, c = time.perf_counter(), time.process_time()
        report = reconstruct(photos, out, config=config, models=models)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
        stages.append(report["timings_s"])
        shutil.rmtree(out, ignore_errors=True)
    best = int(np.argmin(walls))
    return {"photos": len(photos), "wall_s": walls[best], "cpu_s": cpus[best], "walls_s": walls, "stages_s": stages[best]}


def stage_table(runs: dict[str, dict], landmark_s: float) -> list[str]:
    keys = [k for k in STAGE_ORDER if any(k in r["stages_s"] for r in runs.values())]
    keys += sorted({k for r in runs.values() for k in r["stages_s"]} - set(keys))
    head = f"  {'stage':15s}" + "".join(f"{name:>12s}" for name in runs) + f"{'x landmarks':>14s}"
    lines = [head]
    first = next(iter(runs.values()))
    for k in keys:
        row = f"  {k:15s}" + "".join(f"{r['stages_s'].get(k, 0.0) * 1000:10.1f}ms" for r in runs.values())
        if k not in NOT_COMPUTE or k == "landmarks":
            row += f"{first['stages_s'].get(k, 0.0) / landmark_s:13.1f}x"
        lines.append(row)
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--uv-size", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-reflectance", action="store_true", help="as reconstruct --no-reflectance: no specular fit, no detail normals")
    ap.add_argument("--json", type=Path, default=REPO / "out" / "bench_reconstruct.json", help="where to write the figures")
    ap.add_argument("--skip-cli", action="store_true", help="leave out the fresh-process figures (CLI, imports, peak RSS)")
    ap.add_argument("--skip-2048", action="store_true", help="leave out the --uv-size 2048 figures")
    ap.add_argument(
        "--library-allocator",
        action="store_true",
        help="leave glibc's allocator as a program importing the package has it (default: tuned as the "
        "hifialbedo command and batch workers tune it, pipeline.allocator)",
    )
    args = ap.parse_args()
    if not args.library_allocator:
        from hifialbedo.pipeline.allocator import keep_freed_memory

        keep_freed_memory()
    results: dict = {"uv_size": args.uv_size, "reflectance": not args.no_reflectance, "allocator_tuned": not args.library_allocator, "cores": os.cpu_count(), "load_average": os.getloadavg()}

    t = time.perf_counter()
    from hifialbedo.mesh.topology import uv_regions
    from hifialbedo.pipeline import Models, ReconstructConfig
    from hifialbedo.render.uv_layout import uv_layout

    results["import_in_process_s"] = time.perf_counter() - t
    extra = {"specular": None, "detail_normals": False} if args.no_reflectance else {}
    config = ReconstructConfig(uv_size=args.uv_size, **extra)
    t = time.perf_counter()
    models = Models()
    _ = models.detector, models.identity  # load both now
    uv_layout(args.uv_size)
    uv_regions(args.uv_size)
    results["load_s"] = time.perf_counter() - t

    work = Path(tempfile.mkdtemp(prefix="hifialbedo-bench-"))
    try:
        photos = make_photos(work, max(COUNTS))
        from hifialbedo.pipeline import reconstruct

        reconstruct(photos[:1], work / "warm", config=config, models=models)  # first-call costs (allocator, graph start)

        # Landmark detection alone, on the decoded photo.
        from hifialbedo.io.images import read_photo

        pixels = read_photo(photos[0]).pixels
        det = []
        for _ in range(10):
            t = time.perf_counter()
            models.detector.detect(pixels)
            det.append(time.perf_counter() - t)
        landmark_s = min(det)
        results["landmark_detection_s"] = landmark_s

        runs = {f"{k} photo{'s' if k > 1 else ''}": in_process(photos[:k], work, config, models, args.repeats, f"k{k}") for k in COUNTS}
        ks = np.array(COUNTS, float)
        walls = np.array([runs[name]["wall_s"] for name in runs])
        cpus = np.array([runs[name]["cpu_s"] for name in runs])
        slope, intercept = np.polyfit(ks, walls, 1)
        cpu_slope, _ = np.polyfit(ks, cpus, 1)
        linear_residual = float(np.max(np.abs(walls - (slope * ks + intercept))))
        results["runs"] = runs
        results["per_further_photo_s"] = float(slope)
        results["per_further_photo_cpu_s"] = float(cpu_slope)
        results["fixed_cost_s"] = float(intercept)
        results["linear_fit_max_residual_s"] = linear_residual
        one = runs["1 photo"]
        compute = {k: v for k, v in one["stages_s"].items() if k not in NOT_COMPUTE}
        results["compute_stages_over_landmarks"] = {k: v / landmark_s for k, v in compute.items()}
        results["compute_over_landmarks"] = sum(compute.values()) / landmark_s

        if not args.skip_2048 and args.uv_size != 2048:
            cfg2 = ReconstructConfig(uv_size=2048, **extra)
            t = time.perf_counter()
            uv_layout(2048)
            uv_regions(2048)
            results["load_2048_s"] = time.perf_counter() - t
            reconstruct(photos[:1], work / "warm2048", config=cfg2, models=models)
            results["uv_2048"] = in_process(photos[:1], work, cfg2, models, max(1, args.repeats - 1), "uv2048")

        if not args.skip_cli:
            env = child_env()
            bare, _ = min(timed_process([sys.executable, "-c", "pass"], env) for _ in range(3))
            imports = [timed_process([sys.executable, "-c", CHILD_IMPORT], env)[1].split() for _ in range(args.repeats)]
            results["python_start_s"] = bare
            results["import_s"] = min(float(i[0]) for i in imports)
            results["import_loads_torch"] = bool(int(imports[0][1]))
            cli = [sys.executable, "-m", "hifialbedo.cli", "reconstruct", str(photos[0]), "--quiet", "--overwrite", "-o"]
            flags = ["--no-reflectance"] if args.no_reflectance else []
            size = ["--uv-size", str(args.uv_size)]
            timed_process(cli + [str(work / "cli_warm"), *size, *flags], env)  # fills the user cache
            results["cli_s"] = min(timed_process(cli + [str(work / f"cli{r}"), *size, *flags], env)[0] for r in range(args.repeats))
            cold = []
            for r in range(max(1, args.repeats - 1)):
                cache = work / f"cache{r}"
                cold.append(timed_process(cli + [str(work / f"cli_cold{r}"), *size, *flags], child_env(cache))[0])
            results["cli_cold_cache_s"] = min(cold)
            rss = {}
            for uv in (args.uv_size, 2048) if not args.skip_2048 else (args.uv_size,):
                _, out = timed_process([sys.executable, "-c", CHILD_RSS, str(photos[0]), str(work / f"rss{uv}"), str(uv), "1" if args.no_reflectance else "0", "0" if args.library_allocator else "1"], env)
                rss[str(uv)] = float(out.split()[1])
            results["peak_rss_mb"] = rss
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print_report(results, runs, landmark_s)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    return 0


def print_report(results: dict, runs: dict, landmark_s: float) -> None:
    uv, refl = results["uv_size"], "on" if results["reflectance"] else "off (--no-reflectance)"
    la = ", ".join(f"{x:.1f}" for x in results["load_average"])
    alloc = "tuned as the hifialbedo command tunes it" if results["allocator_tuned"] else "as a library user has it (--library-allocator)"
    print(f"reconstruct, 512x512 photos, --uv-size {uv}, reflectance maps {refl}; {results['cores']} cores, load average {la} at the start")
    print(f"  glibc allocator {alloc} (pipeline.allocator)")
    print(f"  imports (in process) {results['import_in_process_s']:.2f} s; load detector + identity + UV layout {results['load_s']:.2f} s")
    print("\nin process, models loaded, from the call to every file on disk (best of the repeats):")
    print(f"  {'photos':>8s} {'wall s':>8s} {'cpu s':>8s}   all walls")
    for r in runs.values():
        print(f"  {r['photos']:8d} {r['wall_s']:8.3f} {r['cpu_s']:8.3f}   {', '.join(f'{w:.3f}' for w in r['walls_s'])}")
    print(
        f"  each further photo {results['per_further_photo_s']:.3f} s wall ({results['per_further_photo_cpu_s']:.3f} s cpu), "
        f"fixed {results['fixed_cost_s']:.3f} s; largest deviation from the line {results['linear_fit_max_residual_s']:.3f} s"
    )
    if "uv_2048" in results:
        r = results["uv_2048"]
        print(f"  --uv-size 2048, 1 photo: {r['wall_s']:.3f} s wall, {r['cpu_s']:.3f} s cpu (layout load {results['load_2048_s']:.2f} s, before timing)")
    print(f"\nper stage (ms) and, for the compute stages of 1 photo, as a multiple of landmark detection ({landmark_s * 1000:.1f} ms):")
    shown = dict(runs)
    if "uv_2048" in results:
        shown["uv 2048"] = results["uv_2048"]
    for line in stage_table(shown, landmark_s):
        print(line)
    print(f"  compute stages other than landmarks, 1 photo: {results['compute_over_landmarks']:.1f}x landmark detection")
    if "cli_s" in results:
        print("\nfresh process:")
        print(
            f"  CLI reconstruct, 1 photo: {results['cli_s']:.2f} s (user cache warm), {results['cli_cold_cache_s']:.2f} s (cold cache); "
            f"python start {results['python_start_s']:.2f} s"
        )
        torch = "loads torch" if results["import_loads_torch"] else "no torch"
        print(f"  import of the CLI's reconstruct path alone: {results['import_s']:.2f} s ({torch})")
        print("  peak RSS, 1 photo: " + ", ".join(f"uv {k}: {v:.0f} MB" for k, v in results["peak_rss_mb"].items()))


if __name__ == "__main__":
    sys.exit(main())
