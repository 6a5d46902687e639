"""``hifialbedo batch``: reconstruct every photo (or person folder) under a folder, resumable,
on a local process pool or a Ray cluster (``hifialbedo.batch``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hifialbedo.cli.args import add_quiet, add_reconstruct_options, reconstruct_config
from hifialbedo.cli.progress import Progress


def add_parser(sub) -> None:
    bat = sub.add_parser(
        "batch",
        help="reconstruct every photo (or every person folder) under a folder: resumable, on a local process pool or a Ray cluster",
    )
    bat.add_argument("input", type=Path, metavar="INPUT_DIR", help="folder of photos (any tree), or INPUT_DIR/<person>/<photos> with --layout identities")
    bat.add_argument("-o", "--output", type=Path, required=True, help="batch folder: one output folder per item, manifest.csv (rerun to resume)")
    bat.add_argument(
        "--layout",
        choices=("photos", "identities"),
        default="photos",
        help="photos: one reconstruction per image (default); identities: one fused reconstruction per person folder",
    )
    bat.add_argument("--engine", choices=("local", "ray"), default="local", help="local: a process pool (default); ray: Ray Data")
    bat.add_argument("--workers", type=int, default=None, help="worker processes or Ray actors (default: one per CPU; local 0: in this process)")
    bat.add_argument("--ray-address", default=None, metavar="ADDR", help="join this Ray cluster (auto, HOST:PORT); default: start a local Ray")
    bat.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N items (sorted by output folder)")
    bat.add_argument("--retry-failed", action="store_true", help="redo the items that failed in an earlier run")
    bat.add_argument(
        "--emit-training-data",
        type=Path,
        default=None,
        metavar="DIR",
        help="also copy the UV textures and albedos to DIR/textures/ and DIR/albedos/ (hifialbedo train --data uv:DIR/albedos)",
    )
    add_reconstruct_options(bat, identity_help="identities: keep every photo even if a face looks like someone else")
    add_quiet(bat)


def run(args: argparse.Namespace) -> int:
    from hifialbedo.batch import BatchStopped, run_batch, summary_line

    config = reconstruct_config(args, resolve_model=True)
    bar = Progress(True)  # nothing shown until the number of items to do is known

    def on_start(todo: int, already: int, engine: str) -> None:
        nonlocal bar
        print(f"hifialbedo batch: {todo} item(s) to do, {already} already done; {engine}", file=sys.stderr)
        if todo:
            bar = Progress(args.quiet, unit="item", total=todo)

    def progress(done: int, total: int, failed: int) -> None:
        bar.count(done, what=f"{failed} failed" if failed else None)

    try:
        summary = run_batch(
            args.input,
            args.output,
            layout=args.layout,
            config=config,
            engine=args.engine,
            workers=args.workers,
            ray_address=args.ray_address,
            limit=args.limit,
            retry_failed=args.retry_failed,
            emit_training_data=args.emit_training_data,
            progress=progress,
            on_start=on_start,
        )
    except BatchStopped as exc:
        print(f"hifialbedo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hifialbedo: interrupted; finished items are kept: run the same command again to resume ({args.output})", file=sys.stderr)
        return 130
    finally:
        bar.close()
    for _source, error in summary.failures[:10]:
        print(f"hifialbedo: failed: {error}", file=sys.stderr)
    if len(summary.failures) > 10:
        print(f"hifialbedo: ... and {len(summary.failures) - 10} more failed (see the manifest)", file=sys.stderr)
    print(summary_line(summary))
    return 1 if summary.failed else 0
