"""``hifialbedo reconstruct``: photos of one person -> the output folder (``pipeline.reconstruct``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hifialbedo.cli.args import add_face_index, add_landmarks, add_overwrite, add_quiet, check_at_least, check_uv_size
from hifialbedo.cli.progress import Progress


def add_parser(sub) -> None:
    rec = sub.add_parser("reconstruct", help="photos of one person -> UV albedo, lighting, mesh (training-free, CPU)")
    rec.add_argument("photos", nargs="+", type=Path, help="one or more photos of the same person")
    rec.add_argument("-o", "--output", type=Path, required=True, help="output folder (written atomically)")
    rec.add_argument("--uv-size", type=int, default=1024, help="side of the UV maps in texels (default 1024)")
    add_face_index(rec)
    add_landmarks(rec)
    add_overwrite(rec)
    rec.add_argument("--no-identity-check", action="store_true", help="keep every photo even if a face looks like someone else")
    rec.add_argument(
        "--no-reflectance",
        action="store_true",
        help="skip the specular fit and the detail normals (about 3x faster at --uv-size 1024; no specular.png/roughness.png, normal.png = mesh normals)",
    )
    rec.add_argument(
        "--model", type=Path, default=None, help="a HiFiAlbedo stage-3 checkpoint: take the albedo from the learned model"
    )
    add_quiet(rec, "no progress display")


def run(args: argparse.Namespace) -> int:
    from hifialbedo.pipeline import ReconstructConfig, reconstruct

    check_uv_size(args.uv_size)
    check_at_least("--face-index", args.face_index, 0)
    config = ReconstructConfig(
        uv_size=args.uv_size,
        face_index=args.face_index,
        check_identity=not args.no_identity_check,
        model=str(args.model) if args.model else None,
        **({"specular": None, "detail_normals": False} if args.no_reflectance else {}),
    )
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
