"""``hifialbedo reconstruct``: photos of one person -> the output folder (``pipeline.reconstruct``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hifialbedo.cli.args import add_landmarks, add_overwrite, add_quiet, add_reconstruct_options, reconstruct_config
from hifialbedo.cli.progress import Progress


def add_parser(sub) -> None:
    rec = sub.add_parser("reconstruct", help="photos of one person -> UV albedo, lighting, mesh (training-free, CPU)")
    rec.add_argument("photos", nargs="+", type=Path, help="one or more photos of the same person")
    rec.add_argument("-o", "--output", type=Path, required=True, help="output folder (written atomically)")
    add_landmarks(rec)
    add_overwrite(rec)
    add_reconstruct_options(rec, identity_help="keep every photo even if a face looks like someone else")
    add_quiet(rec, "no progress display")


def run(args: argparse.Namespace) -> int:
    from hifialbedo.pipeline import reconstruct

    config = reconstruct_config(args)
    with Progress(args.quiet) as progress:
        report = reconstruct(
            args.photos,
            args.output,
            config=config,
            landmark_files=args.landmarks,
            overwrite=args.overwrite,
            progress=progress.stage if progress.shown else None,
        )
    for w in report["warnings"]:
        print(f"hifialbedo: warning: {w}", file=sys.stderr)
    total = sum(report["timings_s"].values())
    print(
        f"wrote {args.output}/ (albedo.png, texture.png, normal.png, mesh.obj, views/...) from {len(report['inputs'])} photo(s) in {total:.2f} s"
    )
    return 0
