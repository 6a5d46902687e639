"""End to end on the synthetic engine: train the three HiFiAlbedo stages on a CPU at toy
size, then score the albedo on held-out identities against the untrained model, the
training-free path and a constant albedo, for k = 1, 3, 6 photos.

Stage 3 is trained twice on the same stages 1-2: with the tiny preset (eq. 10's terms plus
the supervised albedo term on the synthetic truth, ``stage3.albedo_weight``) and with the
paper's terms only (``albedo_weight=0``: self-supervised, as on real photos).

Usage: python benchmarks/bench_learned_synth.py -o out/learned [--identities 100]
       [--steps 600 300 300] [--image-size 128] [--uv-size 64] [--reuse] [--set stage3.key=value ...]

Writes the data, the three run folders (checkpoints, metrics.csv, samples/) and
``results.md`` / ``results.json`` under the output folder; prints the table. ``--reuse``
keeps finished runs (the engine resumes a run folder that has checkpoints).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")


def learned_method(model):
    """renders -> albedo (linear RGB, the model's UV size) through a HiFiAlbedo model, as ``reconstruct --model``."""
    from hifialbedo.pipeline import learned_albedo_of_photos

    def method(renders: list[dict]) -> np.ndarray:
        return learned_albedo_of_photos([r["photo"] for r in renders], [r["landmarks"] for r in renders], model, model.uv_size)

    return method


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--identities", type=int, default=100)
    parser.add_argument("--renders", type=int, default=6)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--uv-size", type=int, default=64)
    parser.add_argument("--steps", type=int, nargs=3, default=(600, 300, 300), metavar=("S1", "S2", "S3"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reuse", action="store_true", help="keep the data and finished runs")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="extra setting: train.* for every stage, stageN.* for that stage"
    )
    args = parser.parse_args()

    import torch

    from hifialbedo.eval.synth_albedo import evaluate_synth_albedo, mean_albedo_method
    from hifialbedo.models.albedo_model import HiFiAlbedo
    from hifialbedo.pipeline.methods import training_free_method
    from hifialbedo.synth import PRESETS, write_dataset
    from hifialbedo.synth.dataset import load_identity, read_metadata
    from hifialbedo.training.run import train

    torch.set_num_threads(args.threads)
    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    data = out / "synth"
    timings: dict[str, float] = {}
    t = time.perf_counter()
    if not (args.reuse and (data / "dataset.json").exists()):
        cfg = replace(PRESETS["small"], n_identities=args.identities, renders_per_identity=args.renders, image_size=args.image_size, uv_size=args.uv_size)
        write_dataset(data, cfg, overwrite=True)
    timings["data"] = time.perf_counter() - t

    common = ["train.log_every=10", f"train.ckpt_every={max(args.steps)}", "train.sample_every=100", "train.keep_last_checkpoints=1"]
    runs = {}
    checkpoints: dict[str, Path] = {}
    # (run folder, stage, steps, the previous stage's run folder, extra settings)
    plan = [
        ("stage1", "stage1", args.steps[0], None, [f"stage1.vq.image_size={args.uv_size}"]),
        ("stage2", "stage2", args.steps[1], "stage1", []),
        ("stage3", "stage3", args.steps[2], "stage2", []),
        ("stage3_self_supervised", "stage3", args.steps[2], "stage2", ["stage3.albedo_weight=0"]),
    ]
    for run_name, stage, steps, previous, extra in plan:
        run_dir = out / run_name
        t = time.perf_counter()
        overrides = [*common, f"train.max_steps={steps}", f"train.resume={'true' if args.reuse else 'false'}"]
        overrides += [kv for kv in args.set if kv.startswith(("train.", f"{stage}."))] + extra
        if not args.reuse and run_dir.exists():
            import shutil

            shutil.rmtree(run_dir)
        init = checkpoints[previous] if previous else None
        result = train(stage, overrides=overrides, data=[f"synth:{data}"], out_dir=run_dir, preset="tiny", init=init)
        timings[run_name] = time.perf_counter() - t
        runs[run_name] = str(result.checkpoint)
        checkpoints[run_name] = result.checkpoint
        metrics = json.dumps({k: round(v, 4) for k, v in result.metrics.items()})
        print(f"{run_name}: {result.step} steps in {timings[run_name]:.0f} s; {metrics}", flush=True)

    trained = HiFiAlbedo.from_checkpoint(checkpoints["stage3"]).eval()
    self_supervised = HiFiAlbedo.from_checkpoint(checkpoints["stage3_self_supervised"]).eval()
    untrained_stage3 = HiFiAlbedo.from_checkpoint(checkpoints["stage3"]).eval()
    untrained_stage3.attention.reset_parameters()  # stages 1-2 trained, attention at its init
    torch.manual_seed(0)
    untrained = HiFiAlbedo(trained.config).eval()  # nothing trained

    meta = read_metadata(data)
    train_ids = [int(d["id"]) for d in meta["identities"] if d["split"] == "train"]
    mean_colour = np.mean([load_identity(data, i)["albedo"].reshape(-1, 3).mean(axis=0) for i in train_ids], axis=0)

    methods = {
        "learned (3 stages, tiny preset: + supervised albedo)": learned_method(trained),
        "learned, self-supervised stage 3 (paper's eq. 10 only)": learned_method(self_supervised),
        "untrained attention (stages 1-2 trained)": learned_method(untrained_stage3),
        "untrained model": learned_method(untrained),
        "training-free": training_free_method(256),
        "constant (train mean albedo)": mean_albedo_method(mean_colour),
    }
    scores = {}
    for name, method in methods.items():
        t = time.perf_counter()
        s = evaluate_synth_albedo(method, data, split="val", ks=(1, 3, 6) if args.renders >= 6 else (1,))
        timings[f"eval {name}"] = time.perf_counter() - t
        scores[name] = s
        print(name, s, flush=True)

    ks = sorted(next(iter(scores.values())).mae)
    lines = [
        (
            f"Held-out synthetic identities ({next(iter(scores.values())).groups[1] // args.renders} identities x {args.renders} renders, "
            f"photos {args.image_size} px, UV {args.uv_size}); albedo MAE in linear RGB over the face (lower is better), ITA error in degrees."
        ),
        "",
        "| method | " + " | ".join(f"MAE k={k}" for k in ks) + " | " + " | ".join(f"ITA err k={k}" for k in ks) + " |",
        "|---|" + "---|" * (2 * len(ks)),
    ]
    for name, s in scores.items():
        lines.append(f"| {name} | " + " | ".join(f"{s.mae[k]:.4f}" for k in ks) + " | " + " | ".join(f"{s.ita_error[k]:.1f}" for k in ks) + " |")
    lines += ["", "Timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items())]
    lines += ["", f"Steps {' / '.join(map(str, args.steps))}, preset tiny" + (f", settings {' '.join(args.set)}" if args.set else "")]
    text = "\n".join(lines) + "\n"
    (out / "results.md").write_text(text)
    (out / "results.json").write_text(
        json.dumps({"runs": runs, "timings_s": timings, "scores": {n: {"mae": s.mae, "ita_error": s.ita_error, "groups": s.groups} for n, s in scores.items()}}, indent=2)
    )
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
