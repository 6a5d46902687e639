"""One photo in process, models loaded, for two source trees interleaved on the same machine:
a speed change measured against the code before it when the machine's own speed drifts.

Usage: python benchmarks/compare_reconstruct.py OTHER_SRC [--rounds 3] [--repeats 4] [--uv-size 1024]

``OTHER_SRC`` is the ``src`` folder of another checkout (``git worktree add /tmp/before <commit>``,
then ``/tmp/before/src``). Each round runs, in fresh processes one after the other: the other
tree, this tree, and this tree with the allocator tuned as the ``hifialbedo`` command tunes it
(``pipeline.allocator``). Each process warms up once, then reconstructs ``samples/astronaut.png``
``--repeats`` times; the best wall time and the per-stage minima are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = """
import json, os, sys, tempfile, time
os.environ.setdefault("GLOG_minloglevel", "2")
if sys.argv[3] == "1":
    from hifialbedo.pipeline.allocator import keep_freed_memory
    keep_freed_memory()
from hifialbedo.pipeline import ReconstructConfig, reconstruct
from hifialbedo.pipeline.model_cache import Models
from hifialbedo.render.uv_layout import uv_layout
photo, size, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[4])
config, models = ReconstructConfig(uv_size=size), Models()
models.detector
uv_layout(size)
tmp = tempfile.mkdtemp()
reconstruct([photo], tmp + "/warm", config=config, models=models)
walls, stages = [], {}
for i in range(repeats):
    t = time.perf_counter()
    report = reconstruct([photo], f"{tmp}/o{i}", config=config, models=models)
    walls.append(time.perf_counter() - t)
    for k, v in report["timings_s"].items():
        stages[k] = min(stages.get(k, 1e9), v)
print(json.dumps({"best_s": min(walls), "stages_s": stages}))
"""


def run(src: Path, tuned: bool, args) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src))
    cmd = [sys.executable, "-c", CHILD, str(REPO / "samples" / "astronaut.png"), str(args.uv_size), "1" if tuned else "0", str(args.repeats)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("other_src", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--uv-size", type=int, default=1024)
    args = ap.parse_args()
    trees = [("other", args.other_src, False), ("this", REPO / "src", False), ("this, allocator tuned", REPO / "src", True)]
    for r in range(args.rounds):
        for name, src, tuned in trees:
            res = run(src, tuned, args)
            stages = ", ".join(f"{k} {v * 1000:.0f}" for k, v in res["stages_s"].items() if v >= 0.02)
            print(f"round {r + 1}  {name:22s} {res['best_s']:.3f} s   ({stages} ms)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
