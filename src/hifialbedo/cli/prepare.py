"""``hifialbedo prepare``: detect, crop and index the faces of a photo folder (``training.photo_data``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hifialbedo.cli.args import add_overwrite, add_quiet, check_between
from hifialbedo.cli.progress import Progress


def add_parser(sub) -> None:
    prp = sub.add_parser(
        "prepare",
        help="detect, crop and index the faces of a photo folder: real training data for stages 2 and 3 (--data photos:DIR)",
    )
    prp.add_argument(
        "source",
        type=Path,
        help="folder of photos, one face each: any tree (--layout images) or SOURCE/<person>/<photos> (--layout identities)",
    )
    prp.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="prepared folder: images/, landmarks.npy, photos.json (written atomically)",
    )
    prp.add_argument(
        "--layout",
        choices=("images", "identities"),
        default="images",
        help="images: every image is one photo (stage 2); identities: one folder per person (stages 2 and 3)",
    )
    prp.add_argument("--size", type=int, default=256, help="side of the square face crops in pixels (default 256)")
    add_overwrite(prp)
    add_quiet(prp)


def run(args: argparse.Namespace) -> int:
    from hifialbedo.io.output import check_output_dir
    from hifialbedo.training.photo_data import prepare_photos

    check_between("--size", args.size, 32, 4096)
    if not args.source.is_dir():
        raise ValueError(f"{args.source}: folder does not exist")
    check_output_dir(args.output, overwrite=args.overwrite, inputs=[args.source])  # before loading MediaPipe
    with Progress(args.quiet, unit="photo") as progress:
        index = prepare_photos(
            args.source, args.output, size=args.size, layout=args.layout, overwrite=args.overwrite, progress=progress.count
        )
    counts = index["counts"]
    if counts["skipped"]:  # main() silences UserWarnings: say it here, once
        shown = ", ".join(f"{e['source']} ({e['reason']})" for e in index["skipped"][:3]) + (
            ", ..." if counts["skipped"] > 3 else ""
        )
        print(
            f"hifialbedo: warning: skipped {counts['skipped']} of {counts['images']} image(s): {shown}; all listed in {args.output}/photos.json",
            file=sys.stderr,
        )
    persons = f" of {counts['persons']} person(s)" if args.layout == "identities" else ""
    print(
        f"wrote {args.output}/ ({counts['photos']} face crop(s){persons} at {args.size} px; train with --data photos:{args.output})"
    )
    return 0
