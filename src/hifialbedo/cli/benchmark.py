"""``hifialbedo benchmark``: the methods on relit real faces (``eval.benchmark``), the
pipeline's ``reconstruct`` among them (``pipeline.methods``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hifialbedo.cli.args import add_overwrite, add_quiet, check_at_least, check_uv_size
from hifialbedo.cli.progress import Progress
from hifialbedo.io.errors import InputError


def add_parser(sub) -> None:
    ben = sub.add_parser(
        "benchmark", help="measure methods on relit real faces with ground truth (FAIR protocol, PSNR/SSIM/LPIPS, k-photo curve)"
    )
    ben.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="output folder: results.md, results.json, cases.csv, per_type.png, examples.png",
    )
    ben.add_argument(
        "--methods",
        default=None,
        help="methods separated by ';' (default: reconstruct;identity;photo_shape;oracle_colour;oracle_shading; also "
        "oracle_shape, grey_world); options in brackets, e.g. 'reconstruct[brightness_cues=own+scene]'",
    )
    ben.add_argument(
        "--photos", type=Path, nargs="+", default=None, help="real photos to relight, one person each (default: the committed face set's --split)"
    )
    ben.add_argument("--split", choices=("test", "tune", "all"), default="test", help="which people of the face set (default test: never tuned on)")
    ben.add_argument("--mirror", action="store_true", help="also each photo mirrored (scored as the same person)")
    ben.add_argument(
        "--metering", choices=("average", "face", "peak"), default="average",
        help="how the camera exposes the relit frame: average (whole frame at middle grey, default), face (face-priority), peak (the old convention)",
    )
    ben.add_argument("--lightings", type=int, default=6, help="lightings per face and skin type (default 6: each kind once)")
    ben.add_argument("--max-photos", type=int, default=5, help="the k-photo curve goes up to this k (1: no curve)")
    ben.add_argument("--workers", type=int, default=1, help="processes sharing the photos (default 1)")
    ben.add_argument("--uv-size", type=int, default=512, help="UV size for reconstruct (default 512)")
    ben.add_argument("--examples", type=int, default=6, help="reconstruct's worst cases in examples.png (default 6)")
    ben.add_argument("--seed", type=int, default=0)
    ben.add_argument("--no-image-metrics", action="store_true", help="skip PSNR, SSIM and LPIPS")
    ben.add_argument("--no-identity-metric", action="store_true", help="skip the dlib identity distance")
    add_overwrite(ben)
    add_quiet(ben)


def run(args: argparse.Namespace) -> int:
    from hifialbedo.eval.benchmark import DEFAULT_METHODS, BenchmarkConfig, run_benchmark
    from hifialbedo.eval.relit_cases import RelitConfig
    from hifialbedo.eval.report import write_report
    from hifialbedo.io.output import check_output_dir
    from hifialbedo.pipeline import Models
    from hifialbedo.pipeline.methods import benchmark_methods

    check_at_least("--lightings", args.lightings, 1)
    check_at_least("--max-photos", args.max_photos, 1)
    check_at_least("--workers", args.workers, 1)
    check_at_least("--examples", args.examples, 0)
    check_uv_size(args.uv_size)
    methods = tuple(m for m in (args.methods.split(";") if args.methods else DEFAULT_METHODS) if m.strip())
    for p in args.photos or []:
        if not p.is_file():
            raise InputError(p, "no such file")
    photos = {"photos": tuple(str(p) for p in args.photos)} if args.photos else {}
    relit = RelitConfig(lightings=args.lightings, mirror=args.mirror, seed=args.seed, split=args.split, metering=args.metering, **photos)
    config = BenchmarkConfig(
        relit=relit,
        methods=methods,
        uv_size=args.uv_size,
        max_photos=args.max_photos,
        image_metrics=not args.no_image_metrics,
        identity_metric=not args.no_identity_metric,
        examples=args.examples,
    )
    check_output_dir(args.output, overwrite=args.overwrite)
    models = Models()
    with Progress(args.quiet, unit="run") as progress:
        result = run_benchmark(
            config, models=models, methods=benchmark_methods(config, models), progress=progress.count,
            workers=args.workers, models_factory=Models, methods_factory=benchmark_methods,
        )
    files = write_report(result, args.output, overwrite=args.overwrite)
    print((args.output / "results.md").read_text())
    print(f"wrote {args.output}/ ({', '.join(files)}) in {result.seconds:.0f} s")
    return 0
