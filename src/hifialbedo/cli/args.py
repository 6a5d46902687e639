"""Arguments several commands share, and the checks of option values (each message written once)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_landmarks(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--landmarks",
        type=Path,
        action="append",
        help="478x2 or 478x3 pixel landmarks (.npy), one per photo, in order; skips detection",
    )


def add_face_index(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--face-index", type=int, default=None, help="which face when a photo has several (0 = largest)")


def add_overwrite(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")


def add_quiet(parser: argparse.ArgumentParser, help: str = "no progress bar") -> None:
    parser.add_argument("--quiet", action="store_true", help=help)


def check_between(option: str, value: int, low: int, high: int) -> None:
    """ValueError naming ``option`` unless ``low <= value <= high``.

    >>> check_between("--size", 16, 32, 4096)
    Traceback (most recent call last):
    ...
    ValueError: --size must be between 32 and 4096, got 16
    """
    if not low <= value <= high:
        raise ValueError(f"{option} must be between {low} and {high}, got {value}")


def check_at_least(option: str, value: int | None, low: int) -> None:
    """ValueError naming ``option`` when ``value`` (None: not given) is below ``low``.

    >>> check_at_least("--face-index", -1, 0)
    Traceback (most recent call last):
    ...
    ValueError: --face-index must be >= 0, got -1
    """
    if value is not None and value < low:
        raise ValueError(f"{option} must be >= {low}, got {value}")


UV_SIZE_RANGE = (32, 4096)
"""``--uv-size`` of ``reconstruct``, ``batch`` and ``benchmark``: what the pipeline is tested at
(tests/test_output_safety.py runs both ends). Below 32 too few skin texels remain to fit the
light; 4096 takes about 2 minutes and 6.5 GB with ``--no-reflectance`` on 2 cores, 8192 would
take about four times both."""


def check_uv_size(value: int) -> None:
    """The UV side of ``reconstruct``, ``batch`` and ``benchmark``: within :data:`UV_SIZE_RANGE`.

    >>> check_uv_size(16)
    Traceback (most recent call last):
    ...
    ValueError: --uv-size must be between 32 and 4096, got 16
    """
    check_between("--uv-size", value, *UV_SIZE_RANGE)


def add_reconstruct_options(parser: argparse.ArgumentParser, *, identity_help: str) -> None:
    """The reconstruction options ``reconstruct`` and ``batch`` share (read back by :func:`reconstruct_config`)."""
    parser.add_argument("--uv-size", type=int, default=1024, help="side of the UV maps in texels, 32 to 4096 (default 1024)")
    add_face_index(parser)
    parser.add_argument("--no-identity-check", action="store_true", help=identity_help)
    parser.add_argument(
        "--no-reflectance",
        action="store_true",
        help="skip the specular fit and the detail normals (about 3x faster at --uv-size 1024; no specular.png/roughness.png, normal.png = mesh normals)",
    )
    parser.add_argument(
        "--model", type=Path, default=None, help="a HiFiAlbedo stage-3 checkpoint: take the albedo from the learned model"
    )


def reconstruct_config(args: argparse.Namespace, *, resolve_model: bool = False):
    """The checked ``pipeline.ReconstructConfig`` of :func:`add_reconstruct_options`' arguments
    (``resolve_model``: the model path made absolute, for worker processes elsewhere)."""
    check_uv_size(args.uv_size)  # before the pipeline's imports
    check_at_least("--face-index", args.face_index, 0)
    from hifialbedo.pipeline import ReconstructConfig

    model = None if args.model is None else str(args.model.resolve() if resolve_model else args.model)
    return ReconstructConfig(
        uv_size=args.uv_size,
        face_index=args.face_index,
        check_identity=not args.no_identity_check,
        model=model,
        **({"specular": None, "detail_normals": False} if args.no_reflectance else {}),
    )
