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


def check_uv_size(value: int) -> None:
    """The UV side of ``reconstruct`` and ``benchmark`` (``render.uv_layout``'s range)."""
    check_between("--uv-size", value, 16, 8192)
