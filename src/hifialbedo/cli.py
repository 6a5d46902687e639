"""Command line: a thin layer that parses arguments and calls the pipeline."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from hifialbedo import __version__


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hifialbedo", description="De-lit facial albedo, lighting and a textured mesh from photos."
    )
    parser.add_argument("--version", action="version", version=f"hifialbedo {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("reconstruct", help="photos of one person -> UV albedo, lighting, mesh (training-free, CPU)")
    rec.add_argument("photos", nargs="+", type=Path, help="one or more photos of the same person")
    rec.add_argument("-o", "--output", type=Path, required=True, help="output folder (written atomically)")
    rec.add_argument("--uv-size", type=int, default=1024, help="side of the UV maps in texels (default 1024)")
    rec.add_argument("--face-index", type=int, default=None, help="which face when a photo has several (0 = largest)")
    rec.add_argument(
        "--landmarks",
        type=Path,
        action="append",
        help="478x2 or 478x3 pixel landmarks (.npy), one per photo, in order; skips detection",
    )
    rec.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    rec.add_argument("--no-identity-check", action="store_true", help="keep every photo even if a face looks like someone else")
    rec.add_argument(
        "--no-reflectance",
        action="store_true",
        help="skip the specular fit and the detail normals (about 3x faster at --uv-size 1024; no specular.png/roughness.png, normal.png = mesh normals)",
    )
    rec.add_argument(
        "--model", type=Path, default=None, help="a HiFiAlbedo stage-3 checkpoint: take the albedo from the learned model"
    )
    rec.add_argument("--quiet", action="store_true", help="no progress display")

    rel = sub.add_parser(
        "relight",
        help="render a reconstruct output under new light: front view, turntable, over the photo; the estimated lights as maps",
    )
    rel.add_argument("reconstruction", type=Path, metavar="OUT_DIR", help="an output folder of hifialbedo reconstruct")
    rel.add_argument("-o", "--output", type=Path, required=True, help="folder for the renders (written atomically)")
    light = rel.add_mutually_exclusive_group()
    light.add_argument(
        "--sh",
        type=Path,
        default=None,
        metavar="FILE.json",
        help="SH light: a 9x3 list (linear-RGB radiance, hifialbedo's basis) or a lighting.json",
    )
    light.add_argument(
        "--light-dir",
        type=float,
        nargs=3,
        default=None,
        metavar=("X", "Y", "Z"),
        help="a distant light toward (X, Y, Z), camera frame: x right, y up, z toward the camera",
    )
    light.add_argument(
        "--envmap",
        type=Path,
        default=None,
        metavar="FILE",
        help="equirectangular environment map (.hdr, .exr linear; .png, .jpg sRGB)",
    )
    rel.add_argument(
        "--light-colour",
        type=float,
        nargs=3,
        default=None,
        metavar=("R", "G", "B"),
        help="with --light-dir: linear-RGB irradiance (default 1 1 1)",
    )
    rel.add_argument("--ambient", type=float, default=None, help="with --light-dir: uniform ambient radiance (default 0.2)")
    rel.add_argument(
        "--turntable",
        type=int,
        default=None,
        metavar="N",
        help="also write N frames turning the head from -60 to +60 degrees of yaw",
    )
    rel.add_argument("--size", type=int, default=512, help="side of the front view and turntable frames in pixels (default 512)")
    rel.add_argument("--over-photo", action="store_true", help="also render in the first photo's camera and composite over it")
    rel.add_argument(
        "--specular",
        type=float,
        default=None,
        metavar="K",
        help="Blinn-Phong intensity everywhere (default: OUT_DIR's specular.png, else 0: diffuse only)",
    )
    rel.add_argument(
        "--shininess",
        type=float,
        default=None,
        metavar="S",
        help="Blinn-Phong exponent everywhere (default: from OUT_DIR's roughness.png, else 32)",
    )
    rel.add_argument("--overwrite", action="store_true", help="replace an existing output folder")

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
        help="comma-free list separated by ';' (default: reconstruct;identity;grey_world;oracle_shading;oracle_shape); "
        "options in brackets, e.g. 'reconstruct[locus_weight=0.5]'",
    )
    ben.add_argument("--photos", type=Path, nargs="+", default=None, help="real photos to relight (default: the two samples)")
    ben.add_argument("--no-mirror", action="store_true", help="do not add the mirrored photos")
    ben.add_argument("--lightings", type=int, default=6, help="lightings per face and skin type (default 6)")
    ben.add_argument("--max-photos", type=int, default=6, help="the k-photo curve goes up to this k (1: no curve)")
    ben.add_argument("--uv-size", type=int, default=512, help="UV size for reconstruct (default 512)")
    ben.add_argument("--seed", type=int, default=0)
    ben.add_argument("--no-image-metrics", action="store_true", help="skip PSNR, SSIM and LPIPS")
    ben.add_argument("--no-identity-metric", action="store_true", help="skip the dlib identity distance")
    ben.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    ben.add_argument("--quiet", action="store_true", help="no progress bar")

    idn = sub.add_parser(
        "identity", help="face identity descriptors of photos and whether they show the same person (dlib's 128-D ResNet)"
    )
    idn.add_argument("photos", nargs="+", type=Path, help="one or more photos")
    idn.add_argument(
        "--backend", choices=("torch", "dlib"), default="torch", help="torch: the PyTorch port (default); dlib: dlib itself"
    )
    idn.add_argument("--face-index", type=int, default=None, help="which face when a photo has several (0 = largest)")
    idn.add_argument(
        "--landmarks",
        type=Path,
        action="append",
        help="478x2 or 478x3 pixel landmarks (.npy), one per photo, in order; skips detection",
    )
    idn.add_argument("--json", action="store_true", help="print descriptors, distances and verdicts as JSON")

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
    prp.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    prp.add_argument("--quiet", action="store_true", help="no progress bar")

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
    bat.add_argument("--uv-size", type=int, default=1024, help="side of the UV maps in texels (default 1024)")
    bat.add_argument("--face-index", type=int, default=None, help="which face when a photo has several (0 = largest)")
    bat.add_argument("--no-identity-check", action="store_true", help="identities: keep every photo even if a face looks like someone else")
    bat.add_argument("--no-reflectance", action="store_true", help="skip the specular fit and the detail normals (about 3x faster)")
    bat.add_argument("--model", type=Path, default=None, help="a HiFiAlbedo stage-3 checkpoint: take the albedo from the learned model")
    bat.add_argument("--quiet", action="store_true", help="no progress bar")

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
    syn.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    syn.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _synth(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from hifialbedo.io.output import check_output_dir
    from hifialbedo.synth import PRESETS, write_dataset

    if args.preset not in PRESETS:
        raise ValueError(f"unknown --preset {args.preset!r}; known: {', '.join(PRESETS)}")
    overrides = {
        "n_identities": args.identities,
        "renders_per_identity": args.renders,
        "image_size": args.image_size,
        "uv_size": args.uv_size,
        "seed": args.seed,
    }
    for name in ("n_identities", "renders_per_identity"):
        if overrides[name] is not None and overrides[name] < 1:
            raise ValueError(f"--{'identities' if name == 'n_identities' else 'renders'} must be >= 1, got {overrides[name]}")
    if args.image_size is not None and not 32 <= args.image_size <= 4096:
        raise ValueError(f"--image-size must be between 32 and 4096, got {args.image_size}")
    if args.uv_size is not None and (args.uv_size < 32 or args.uv_size & (args.uv_size - 1)):
        raise ValueError(f"--uv-size must be a power of two >= 32, got {args.uv_size}")
    config = replace(PRESETS[args.preset], **{k: v for k, v in overrides.items() if v is not None})
    check_output_dir(args.output, overwrite=args.overwrite)
    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=config.n_identities * config.renders_per_identity, file=sys.stderr, leave=False, unit="render")

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.update(done - bar.n)

    try:
        write_dataset(args.output, config, progress, overwrite=args.overwrite)
    finally:
        if bar is not None:
            bar.close()
    print(
        f"wrote {args.output}/ ({config.n_identities} identities x {config.renders_per_identity} renders at {config.image_size} px, UV {config.uv_size}; read it with hifialbedo.synth.SyntheticFaces)"
    )
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from hifialbedo.io.output import check_output_dir
    from hifialbedo.training.photo_data import prepare_photos

    if not 32 <= args.size <= 4096:
        raise ValueError(f"--size must be between 32 and 4096, got {args.size}")
    if not args.source.is_dir():
        raise ValueError(f"{args.source}: folder does not exist")
    check_output_dir(args.output, overwrite=args.overwrite)  # before loading MediaPipe
    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=0, file=sys.stderr, leave=False, unit="photo")

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.update(done - bar.n)

    try:
        index = prepare_photos(
            args.source, args.output, size=args.size, layout=args.layout, overwrite=args.overwrite, progress=progress
        )
    finally:
        if bar is not None:
            bar.close()
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


def _progress(enabled: bool):
    if not enabled:
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=None, bar_format="{desc} [{elapsed}]", file=sys.stderr, leave=False)

    def note(stage: str) -> None:
        bar.set_description_str(f"hifialbedo: {stage}")
        bar.update(1)

    return note, bar.close


def _reconstruct(args: argparse.Namespace) -> int:
    from hifialbedo.pipeline import ReconstructConfig, reconstruct

    if not 16 <= args.uv_size <= 8192:
        raise ValueError(f"--uv-size must be between 16 and 8192, got {args.uv_size}")
    if args.face_index is not None and args.face_index < 0:
        raise ValueError(f"--face-index must be >= 0, got {args.face_index}")
    config = ReconstructConfig(
        uv_size=args.uv_size,
        face_index=args.face_index,
        check_identity=not args.no_identity_check,
        model=str(args.model) if args.model else None,
        **({"specular": None, "detail_normals": False} if args.no_reflectance else {}),
    )
    note, close = _progress(not args.quiet and sys.stderr.isatty())
    try:
        report = reconstruct(
            args.photos, args.output, config=config, landmark_files=args.landmarks, overwrite=args.overwrite, progress=note
        )
    finally:
        close()
    for w in report["warnings"]:
        print(f"hifialbedo: warning: {w}", file=sys.stderr)
    total = sum(report["timings_s"].values())
    print(
        f"wrote {args.output}/ (albedo.png, texture.png, normal.png, mesh.obj, views/...) from {len(report['inputs'])} photo(s) in {total:.2f} s"
    )
    return 0


def _batch(args: argparse.Namespace) -> int:
    from hifialbedo.batch import BatchStopped, run_batch, summary_line
    from hifialbedo.pipeline import ReconstructConfig

    if not 16 <= args.uv_size <= 8192:
        raise ValueError(f"--uv-size must be between 16 and 8192, got {args.uv_size}")
    if args.face_index is not None and args.face_index < 0:
        raise ValueError(f"--face-index must be >= 0, got {args.face_index}")
    config = ReconstructConfig(
        uv_size=args.uv_size,
        face_index=args.face_index,
        check_identity=not args.no_identity_check,
        model=str(args.model.resolve()) if args.model else None,
        **({"specular": None, "detail_normals": False} if args.no_reflectance else {}),
    )
    bar = None

    def on_start(todo: int, already: int, engine: str) -> None:
        nonlocal bar
        print(f"hifialbedo batch: {todo} item(s) to do, {already} already done; {engine}", file=sys.stderr)
        if todo and not args.quiet and sys.stderr.isatty():
            from tqdm import tqdm

            bar = tqdm(total=todo, file=sys.stderr, unit="item", dynamic_ncols=True, smoothing=0.1)

    def progress(done: int, total: int, failed: int) -> None:
        if bar is not None:
            bar.update(done - bar.n)
            if failed:
                bar.set_postfix_str(f"{failed} failed", refresh=False)

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
        if bar is not None:
            bar.close()
        print(f"hifialbedo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        print(f"hifialbedo: interrupted; finished items are kept: run the same command again to resume ({args.output})", file=sys.stderr)
        return 130
    if bar is not None:
        bar.close()
    for source, error in summary.failures[:10]:
        print(f"hifialbedo: failed: {error}", file=sys.stderr)
    if len(summary.failures) > 10:
        print(f"hifialbedo: ... and {len(summary.failures) - 10} more failed (see the manifest)", file=sys.stderr)
    print(summary_line(summary))
    return 1 if summary.failed else 0


def _relight(args: argparse.Namespace) -> int:
    from hifialbedo.relight import RelightConfig, light_from_direction, load_light, relight

    if args.light_dir is None and (args.light_colour is not None or args.ambient is not None):
        raise ValueError("--light-colour and --ambient go with --light-dir")
    config = RelightConfig(
        size=args.size, turntable=args.turntable, over_photo=args.over_photo, specular=args.specular, shininess=args.shininess
    )
    if args.light_dir is not None:
        colour = args.light_colour if args.light_colour is not None else (1.0, 1.0, 1.0)
        light = light_from_direction(args.light_dir, colour, 0.2 if args.ambient is None else args.ambient)
    else:
        light = load_light(sh_file=args.sh, envmap=args.envmap)
    summary = relight(args.reconstruction, args.output, light=light, config=config, overwrite=args.overwrite)
    print(f"wrote {args.output}/ ({', '.join(summary['files'])}) under {summary['light']}")
    return 0


def _identity(args: argparse.Namespace) -> int:
    import json

    import numpy as np

    from hifialbedo.pipeline import identify_photos

    if args.face_index is not None and args.face_index < 0:
        raise ValueError(f"--face-index must be >= 0, got {args.face_index}")
    report = identify_photos(args.photos, backend=args.backend, face_index=args.face_index, landmark_files=args.landmarks)
    for w in report.warnings:
        print(f"hifialbedo: warning: {w}", file=sys.stderr)
    if args.json:
        print(json.dumps(report.to_dict()))
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


def _train(args: argparse.Namespace) -> int:
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


def _benchmark(args: argparse.Namespace) -> int:
    from hifialbedo.eval.benchmark import DEFAULT_METHODS, BenchmarkConfig, run_benchmark
    from hifialbedo.eval.relit import RelitConfig
    from hifialbedo.eval.report import write_report
    from hifialbedo.io.output import check_output_dir

    if args.lightings < 1:
        raise ValueError(f"--lightings must be >= 1, got {args.lightings}")
    if args.max_photos < 1:
        raise ValueError(f"--max-photos must be >= 1, got {args.max_photos}")
    if not 16 <= args.uv_size <= 8192:
        raise ValueError(f"--uv-size must be between 16 and 8192, got {args.uv_size}")
    methods = tuple(m for m in (args.methods.split(";") if args.methods else DEFAULT_METHODS) if m.strip())
    for p in args.photos or []:
        if not p.is_file():
            from hifialbedo.io.errors import InputError

            raise InputError(p, "no such file")
    photos = {"photos": tuple(str(p) for p in args.photos)} if args.photos else {}
    relit = RelitConfig(lightings=args.lightings, mirror=not args.no_mirror, seed=args.seed, **photos)
    config = BenchmarkConfig(
        relit=relit,
        methods=methods,
        uv_size=args.uv_size,
        max_photos=args.max_photos,
        image_metrics=not args.no_image_metrics,
        identity_metric=not args.no_identity_metric,
    )
    check_output_dir(args.output, overwrite=args.overwrite)
    root = None if args.photos else Path(__file__).resolve().parents[2]
    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=0, file=sys.stderr, leave=False, unit="run")

    def progress(done: int, total: int, what: str) -> None:
        if bar is not None:
            bar.total = total
            bar.set_description_str(what[:40])
            bar.update(done - bar.n)

    try:
        result = run_benchmark(config, root=_samples_root(root), progress=progress)
    finally:
        if bar is not None:
            bar.close()
    files = write_report(result, args.output, overwrite=args.overwrite)
    print((args.output / "results.md").read_text())
    print(f"wrote {args.output}/ ({', '.join(files)}) in {result.seconds:.0f} s")
    return 0


def _samples_root(root: Path | None) -> Path | None:
    """Where the default sample photos are: the repository (editable install) or the cwd."""
    if root is None:
        return None
    for base in (root, Path.cwd()):
        if (base / "samples" / "grace_hopper.jpg").is_file():
            return base
    from hifialbedo.io.errors import InputError

    raise InputError("samples/", "the sample photos are not found; run from the repository root or pass --photos")


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GLOG_minloglevel", "2")  # mediapipe's C++ logging
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = _build_parser().parse_args(argv)
    from hifialbedo.io.errors import InputError

    warnings.simplefilter("ignore", UserWarning)  # warnings are collected into the report and printed once
    try:
        if args.command == "reconstruct":
            return _reconstruct(args)
        if args.command == "relight":
            return _relight(args)
        if args.command == "benchmark":
            return _benchmark(args)
        if args.command == "synth":
            return _synth(args)
        if args.command == "prepare":
            return _prepare(args)
        if args.command == "identity":
            return _identity(args)
        if args.command == "train":
            return _train(args)
        if args.command == "batch":
            return _batch(args)
    except InputError as exc:
        print(f"hifialbedo: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"hifialbedo: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. disk full while writing: the output folder was cleaned up
        where = exc.filename or getattr(args, "output", "")
        print(f"hifialbedo: error: {where}: {exc.strerror or exc}; nothing was written", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hifialbedo: interrupted; nothing was written", file=sys.stderr)
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
