"""``hifialbedo synth``: a synthetic face dataset with exact ground truth (``synth``)."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from hifialbedo.cli.args import add_overwrite, add_quiet, check_at_least, check_between
from hifialbedo.cli.progress import Progress


def add_parser(sub) -> None:
    syn = sub.add_parser(
        "synth", help="write a synthetic face dataset with exact ground truth (training data for the learned model)"
    )
    syn.add_argument("-o", "--output", type=Path, required=True, help="dataset folder (written atomically)")
    syn.add_argument("--preset", default="small", help="tiny | small (default: 12 identities x 6 renders, 128 px) | medium")
    syn.add_argument("--identities", type=int, default=None, help="override the preset's number of identities")
    syn.add_argument("--renders", type=int, default=None, help="override the renders per identity")
    syn.add_argument("--image-size", type=int, default=None, help="override the photo size in pixels")
    syn.add_argument("--uv-size", type=int, default=None, help="override the UV map size")
    syn.add_argument("--seed", type=int, default=None)
    add_overwrite(syn)
    add_quiet(syn)


def run(args: argparse.Namespace) -> int:
    from hifialbedo.io.output import check_output_dir
    from hifialbedo.synth import PRESETS, write_dataset

    if args.preset not in PRESETS:
        raise ValueError(f"unknown --preset {args.preset!r}; known: {', '.join(PRESETS)}")
    check_at_least("--identities", args.identities, 1)
    check_at_least("--renders", args.renders, 1)
    if args.image_size is not None:
        check_between("--image-size", args.image_size, 32, 4096)
    if args.uv_size is not None and (args.uv_size < 32 or args.uv_size & (args.uv_size - 1)):
        raise ValueError(f"--uv-size must be a power of two >= 32, got {args.uv_size}")
    overrides = {
        "n_identities": args.identities,
        "renders_per_identity": args.renders,
        "image_size": args.image_size,
        "uv_size": args.uv_size,
        "seed": args.seed,
    }
    config = replace(PRESETS[args.preset], **{k: v for k, v in overrides.items() if v is not None})
    check_output_dir(args.output, overwrite=args.overwrite)
    with Progress(args.quiet, unit="render", total=config.n_identities * config.renders_per_identity) as progress:
        write_dataset(args.output, config, progress.count, overwrite=args.overwrite)
    print(
        f"wrote {args.output}/ ({config.n_identities} identities x {config.renders_per_identity} renders at {config.image_size} px, UV {config.uv_size}; read it with hifialbedo.synth.SyntheticFaces)"
    )
    return 0
