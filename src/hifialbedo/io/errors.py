"""The one error type the command line turns into a one-line message."""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad input: names the file and the problem, e.g. ``photo.jpg: not an image``."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
