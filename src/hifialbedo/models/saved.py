"""The package's own torch files: training checkpoints and compact model files, written atomically
and read safely.

Both are ``torch.save`` dicts of tensors and plain values tagged with a ``"format"`` string;
they are read with ``weights_only=True`` (no code runs on load), and every failure names the file.

A training checkpoint (written by ``training.engine.fit``, format :data:`CHECKPOINT_FORMAT`) is a dict:

- ``format``: ``"hifialbedo.train/1"``; ``step``: optimiser steps completed
- ``modules``: ``{name: state_dict}`` for every module of the stage, trainable and frozen
- ``optimizers``: ``{name: state_dict}``; ``scaler``: the grad scaler's state or None
- ``rng``: one ``capture_rng_state()`` dict per rank, in rank order
- ``sampler``: ``{"epoch", "batches_consumed"}`` (global batches into that epoch)
- ``elapsed``: training seconds so far; ``metrics``: the last logged metrics
- ``train_config``: ``TrainConfig.to_dict()``; ``stage_config``: the stage's ``config_dict()``
  (``{"stage": "stage1", "stage1": {...}}``, ...) or None
- ``world_size``: processes that trained it

Models read what they need of a stage's checkpoint with :func:`read_stage_checkpoint` (the
one reader of stage checkpoints) and :func:`load_module_weights`.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import torch
from torch import nn

CHECKPOINT_FORMAT = "hifialbedo.train/1"
"""The ``"format"`` tag of a training checkpoint."""

STAGE_NAMES = {"stage1": "stage-1 (codebook)", "stage2": "stage-2 (UV encoder)", "stage3": "stage-3 (albedo)"}
"""What each training stage's checkpoint holds, as error messages name it."""

C = TypeVar("C")


def _atomic_write(path: str | Path, write: Callable[[BinaryIO], None], *, fsync: bool) -> None:
    """``write`` into a temporary file beside ``path`` (fsync'd when asked), then ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, fsync, then ``os.replace``: never a partial file."""
    _atomic_write(path, lambda f: torch.save(obj, f), fsync=True)


def atomic_write_bytes(data: bytes, path: str | Path) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     atomic_write_bytes(b"abc", Path(d) / "sub" / "f.bin")
    ...     (Path(d) / "sub" / "f.bin").read_bytes(), sorted(p.name for p in (Path(d) / "sub").iterdir())
    (b'abc', ['f.bin'])
    """
    _atomic_write(path, lambda f: f.write(data), fsync=False)


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


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a training checkpoint (see the module docstring for its keys).

    Raises FileNotFoundError when ``path`` does not exist and ValueError, naming the file, when it
    is not a readable checkpoint (truncated, corrupt, or another format).
    """
    return load_tagged(path, CHECKPOINT_FORMAT, "hifialbedo training checkpoint", map_location=map_location)


def read_stage_checkpoint(
    path: str | Path,
    stage: str,
    parse: Callable[[Mapping[str, Any]], C],
    *,
    config_key: str | None = None,
    modules: Sequence[str] = (),
    map_location: str | torch.device = "cpu",
) -> tuple[C, dict[str, Any]]:
    """``(config, checkpoint)`` of a checkpoint of training stage ``stage`` ("stage1", "stage2", "stage3").

    ``config`` is ``parse(stage_config[config_key])`` (``config_key`` defaults to ``stage``).
    ValueError naming the file when the checkpoint is of another stage, lacks the weights of
    one of ``modules`` or has a config ``parse`` refuses; FileNotFoundError when it is missing.
    """
    label = STAGE_NAMES[stage]
    number = label.split(" ")[0]  # "stage-1"
    key = config_key or stage
    state = load_checkpoint(path, map_location=map_location)
    info = state.get("stage_config")
    if not isinstance(info, dict) or info.get("stage") != stage or key not in info:
        found = info.get("stage") if isinstance(info, dict) else None
        raise ValueError(f"{path}: not a {label} checkpoint (its stage is {found!r})")
    for name in modules:
        if name not in state.get("modules", {}):
            raise ValueError(f"{path}: {number} checkpoint without {name!r} weights")
    try:
        config = parse(info[key])
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: bad {number} config ({exc})") from None
    return config, state


def load_module_weights(path: str | Path, state: Mapping[str, Any], modules: Mapping[str, nn.Module]) -> None:
    """Load ``state["modules"][name]`` into each of ``modules`` (strictly); ValueError naming the
    file and the module when the weights do not fit the module built from the stored config."""
    for name, module in modules.items():
        try:
            module.load_state_dict(state["modules"][name])
        except RuntimeError as exc:
            raise ValueError(f"{path}: {name!r} weights do not match the stored config ({exc})") from None


__all__ = [
    "CHECKPOINT_FORMAT",
    "STAGE_NAMES",
    "atomic_save",
    "atomic_write_bytes",
    "load_checkpoint",
    "load_module_weights",
    "load_tagged",
    "read_stage_checkpoint",
]
