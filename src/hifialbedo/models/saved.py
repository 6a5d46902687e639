"""Reading the package's own torch files (training checkpoints, compact model files) safely.

Both are ``torch.save`` dicts of tensors and plain values tagged with a ``"format"`` string;
they are read with ``weights_only=True`` (no code runs on load), and every failure names the file.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch


def load_tagged(path: str | Path, format_tag: str, what: str, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The dict saved at ``path`` whose ``"format"`` is ``format_tag``; ``what`` names the kind of file in errors.

    FileNotFoundError when ``path`` is not a file; ValueError naming the file when it cannot be
    read (truncated, corrupt, not a torch file) or carries another format tag.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, OSError) as exc:
        raise ValueError(f"{path}: not a readable {what} ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict) or data.get("format") != format_tag:
        raise ValueError(f"{path}: not a {what} (expected format {format_tag!r})")
    return data


__all__ = ["load_tagged"]
