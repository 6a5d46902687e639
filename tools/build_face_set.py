"""Build the benchmark's face set (``src/hifialbedo/eval/data/faces/``) from the shared
public-domain / CC BY portraits (``../shared/data/faces``, with their MANIFEST.tsv).

What it does, deterministically:

- takes the London set (CC BY 4.0), the GPO congress photos and the White House portrait
  (public domain); leaves out ``congress_bioguide/`` (faces of 60-110 px: too small for the
  eye-white and scene cues to be measured at all, and four of them below the detector's
  minimum);
- downscales each to at most 640 px on its longer side (Lanczos, JPEG quality 92): the faces
  stay 140-250 px wide, the benchmark runs 4x faster, and the set is 3.6 MB;
- assigns each *person* (not photo) to the ``tune`` or ``test`` split: within each stratum
  (source folder x the manifest's skin guess), people sorted by the CRC-32 of their id
  alternate between the splits (each stratum starting where the one before
  left off), so both span every source and skin guess and are about the same size;
- writes ``MANIFEST.tsv`` (the source rows, the person id, the committed size and the split)
  and copies ``ATTRIBUTION.txt``.

Run from the repository root: ``python tools/build_face_set.py [--source ../shared/data/faces]``.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import zlib
from collections import defaultdict
from pathlib import Path

from PIL import Image, ImageOps

MAX_SIDE = 640
FOLDERS = ("london_set", "congress_gpo", "whitehouse")


def person_id(row: dict) -> str:
    """``london_002`` for the London set's subjects; the Bioguide id (``O000167``) for members
    of Congress, also for the White House portrait of the same man."""
    folder, name = row["file"].split("/", 1)
    if folder == "london_set":
        return "london_" + name.split("_")[0]
    if folder == "whitehouse":
        return "O000167"  # Barack Obama, also congress_gpo/O000167_*
    return name.split("_")[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=Path("../shared/data/faces"))
    ap.add_argument("--dest", type=Path, default=Path("src/hifialbedo/eval/data/faces"))
    args = ap.parse_args()
    with open(args.source / "MANIFEST.tsv", newline="") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r["file"].split("/")[0] in FOLDERS]
    strata: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in rows:
        r["person_id"] = person_id(r)
        folder = "congress_gpo" if r["file"].startswith("whitehouse") else r["file"].split("/")[0]
        strata[(folder, r["skin_guess"])].add(r["person_id"])
    split = {}
    for k, key in enumerate(sorted(strata)):
        for i, p in enumerate(sorted(strata[key] - split.keys(), key=lambda p: zlib.crc32(p.encode()))):
            split[p] = "test" if (i + k) % 2 == 0 else "tune"
    if args.dest.exists():
        shutil.rmtree(args.dest)
    out_rows = []
    for r in rows:
        dst = args.dest / r["file"]
        dst.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(args.source / r["file"]) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
            s = MAX_SIDE / max(im.size)
            if s < 1:
                im = im.resize((round(im.width * s), round(im.height * s)), Image.LANCZOS)
            im.save(dst, quality=92)
            width, height = im.size
        out_rows.append({**r, "width": width, "height": height, "split": split[r["person_id"]], "source_width": r["width"], "source_height": r["height"]})
    fields = ["file", "person_id", "split", "person", "skin_guess", "width", "height", "source_width", "source_height", "source", "licence_basis", "url_or_path"]
    with open(args.dest / "MANIFEST.tsv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, delimiter="\t", extrasaction="ignore")
        w.writeheader()
        w.writerows(out_rows)
    shutil.copy(args.source / "ATTRIBUTION.txt", args.dest / "ATTRIBUTION.txt")
    n = {s: sum(1 for v in split.values() if v == s) for s in ("tune", "test")}
    print(f"{len(out_rows)} photos of {len(split)} people ({n['tune']} tune, {n['test']} test) -> {args.dest}")


if __name__ == "__main__":
    main()
