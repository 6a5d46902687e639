"""``hifialbedo identity``: identity descriptors of photos and who is the same person (``pipeline.identify``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from hifialbedo.cli.args import add_face_index, add_landmarks, check_at_least


def add_parser(sub) -> None:
    idn = sub.add_parser(
        "identity", help="face identity descriptors of photos and whether they show the same person (dlib's 128-D ResNet)"
    )
    idn.add_argument("photos", nargs="+", type=Path, help="one or more photos")
    idn.add_argument(
        "--backend", choices=("torch", "dlib"), default="torch", help="torch: the PyTorch port (default); dlib: dlib itself"
    )
    add_face_index(idn)
    add_landmarks(idn)
    idn.add_argument("--json", action="store_true", help="print descriptors, distances and verdicts as JSON")


def run(args: argparse.Namespace) -> int:
    from hifialbedo.pipeline import identify_photos

    check_at_least("--face-index", args.face_index, 0)
    report = identify_photos(args.photos, backend=args.backend, face_index=args.face_index, landmark_files=args.landmarks)
    for w in report.warnings:
        print(f"hifialbedo: warning: {w}", file=sys.stderr)
    if args.json:
        print(json.dumps(report.to_dict(), allow_nan=False))
        return 0
    n = len(report.photos)
    print(f"{n} descriptor(s), backend {report.backend}; same person when the distance is below {report.threshold}")
    if n == 1:
        print(f"{report.photos[0]}: |d| = {np.linalg.norm(report.descriptors[0]):.3f}")
    for i in range(n):
        for j in range(i + 1, n):
            dist = report.distances[i, j]
            verdict = "same person" if dist < report.threshold else "different people"
            print(f"{dist:.3f}  {verdict:16s}  {report.photos[i]}  {report.photos[j]}")
    return 0
