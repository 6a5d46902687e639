"""``hifialbedo train stage1|stage2|stage3``: train a stage of the learned model (``training.run``)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:
    trn = sub.add_parser(
        "train", help="train a stage of the learned HiFiAlbedo model (1: codebook, 2: UV encoder, 3: multi-photo albedo)"
    )
    trn.add_argument("stage", choices=("stage1", "stage2", "stage3"))
    trn.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="run folder: checkpoints, metrics.csv, samples (default: the config's train.out_dir)",
    )
    trn.add_argument("--config", type=Path, default=None, help="TOML or JSON file with a [train] table and a [stage1|2|3] table")
    trn.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override, e.g. train.max_steps=100, stage1.vq.codebook_size=64 (repeatable)",
    )
    trn.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="KIND:PATH",
        help="training data, repeatable. stage1: images:DIR (face photos), uv:DIR (UV textures), synth:DIR (hifialbedo synth); "
        "stage2: synth:DIR, photos:DIR (hifialbedo prepare), uv:DIR (real UV textures for D_latent); "
        "stage3: synth:DIR, photos:DIR (hifialbedo prepare --layout identities)",
    )
    trn.add_argument("--preset", default="tiny", help="tiny (CPU, minutes) or paper (1024 px, many GPUs)")
    trn.add_argument(
        "--init", type=Path, default=None, help="the previous stage's checkpoint (stage2: stage 1's; stage3: stage 2's)"
    )


def run(args: argparse.Namespace) -> int:
    from hifialbedo.training.run import train

    result = train(
        args.stage,
        config_path=args.config,
        overrides=args.overrides,
        data=args.data,
        out_dir=args.output,
        preset=args.preset,
        init=args.init,
    )
    print(f"{args.stage}: {result.step} steps; last checkpoint {result.checkpoint}")
    return 0
