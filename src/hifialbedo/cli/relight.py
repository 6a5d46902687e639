"""``hifialbedo relight``: a reconstruct folder under new light (``pipeline.relight``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hifialbedo.cli.args import add_overwrite


def add_parser(sub) -> None:
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
    add_overwrite(rel)


def run(args: argparse.Namespace) -> int:
    from hifialbedo.pipeline.relight import RelightConfig, light_from_direction, load_light, relight

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
    summary = relight(
        args.reconstruction, args.output, light=light, config=config, overwrite=args.overwrite, inputs=[args.sh, args.envmap]
    )
    print(f"wrote {args.output}/ ({', '.join(summary['files'])}) under {summary['light']}")
    return 0
