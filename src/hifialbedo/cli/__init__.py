"""Command line: a thin layer that parses arguments and calls the pipeline.

One module per command (``reconstruct``, ``relight``, ``benchmark``, ``identity``, ``train``,
``prepare``, ``synth``, ``serve``, ``batch``), each with ``add_parser(subparsers)`` and ``run(args) -> exit code``;
``args`` holds the arguments and checks several commands share, ``progress`` the one
progress display. Errors are one line on stderr, ``hifialbedo: error: ...``, exit code 2;
Ctrl-C (130) and SIGTERM (143) remove what was being written and say so in one line; one that
lands while a finished folder is renamed into place waits for the rename and says it was written.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import warnings
from collections.abc import Iterator

from hifialbedo import __version__
from hifialbedo.cli import batch, benchmark, identity, prepare, reconstruct, relight, serve, synth, train
from hifialbedo.io.errors import InputError
from hifialbedo.pipeline.allocator import keep_freed_memory

COMMANDS = {
    "reconstruct": reconstruct,
    "relight": relight,
    "benchmark": benchmark,
    "identity": identity,
    "train": train,
    "prepare": prepare,
    "synth": synth,
    "serve": serve,
    "batch": batch,
}
"""Command name -> its module, in the order ``--help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hifialbedo", description="De-lit facial albedo, lighting and a textured mesh from photos."
    )
    parser.add_argument("--version", action="version", version=f"hifialbedo {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS.values():
        command.add_parser(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so it is handled as Ctrl-C is: temporary
    folders removed, one line, a non-zero exit (143)."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` in the block (main thread only; restored after)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GLOG_minloglevel", "2")  # mediapipe's C++ logging
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = build_parser().parse_args(argv)
    keep_freed_memory()  # this process is ours: NumPy's big temporaries reuse heap pages
    try:
        with _sigterm_as_interrupt(), warnings.catch_warnings():
            # Warnings are collected into the report and printed once; library warnings
            # (numpy's RuntimeWarnings, ...) never reach the terminal as extra lines.
            warnings.simplefilter("ignore")
            return COMMANDS[args.command].run(args)
    except (InputError, ValueError) as exc:
        print(f"hifialbedo: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. disk full while writing: the output folder was cleaned up
        where = exc.filename or getattr(args, "output", "")
        print(f"hifialbedo: error: {where}: {exc.strerror or exc}; nothing was written", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (Terminated)
        what = "terminated" if isinstance(exc, Terminated) else "interrupted"
        written = getattr(exc, "output_written", None)  # it came while the folder was being renamed into place
        print(f"hifialbedo: {what}; " + (f"{written} was written" if written else "nothing was written"), file=sys.stderr)
        return 128 + signal.SIGTERM if isinstance(exc, Terminated) else 130


__all__ = ["COMMANDS", "Terminated", "build_parser", "main"]
