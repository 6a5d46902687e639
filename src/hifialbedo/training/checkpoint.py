"""Checkpoint files: atomic writing, rotation, loading, and random-number-generator state.

A training checkpoint (written by ``training.engine.fit``) is a dict:

- ``format``: ``"hifialbedo.train/1"``; ``step``: optimiser steps completed
- ``modules``: ``{name: state_dict}`` for every module of the stage, trainable and frozen
- ``optimizers``: ``{name: state_dict}``; ``scaler``: the grad scaler's state or None
- ``rng``: one ``capture_rng_state()`` dict per rank, in rank order
- ``sampler``: ``{"epoch", "batches_consumed"}`` (global batches into that epoch)
- ``elapsed``: training seconds so far; ``metrics``: the last logged metrics
- ``train_config``: ``TrainConfig.to_dict()``; ``stage_config``: ``stage.config_dict()`` or None
- ``world_size``: processes that trained it

It holds only tensors and plain Python values, so ``torch.load(weights_only=True)`` reads it.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from hifialbedo.models.saved import load_tagged

FORMAT = "hifialbedo.train/1"
LAST = "last.ckpt"
_STEP_FILE = re.compile(r"^step_(\d+)\.ckpt$")


def step_file_name(step: int) -> str:
    """``step_0000100.ckpt`` for step 100."""
    return f"step_{step:07d}.ckpt"


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
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``."""
    _atomic_write(path, lambda f: f.write(data), fsync=False)


def save_checkpoint(state: dict[str, Any], ckpt_dir: str | Path, *, keep_last: int) -> Path:
    """Write ``state`` as ``ckpt_dir/step_XXXXXXX.ckpt`` and make ``last.ckpt`` the same file.

    ``last.ckpt`` is replaced atomically by a hard link (a copy where links are not supported).
    Only the newest ``keep_last`` step files are kept (0 keeps all). Returns the step file's path.
    """
    ckpt_dir = Path(ckpt_dir)
    path = ckpt_dir / step_file_name(int(state["step"]))
    atomic_save(state, path)
    tmp = ckpt_dir / f".{LAST}.link.tmp"
    tmp.unlink(missing_ok=True)
    try:
        os.link(path, tmp)
    except OSError:
        shutil.copyfile(path, tmp)
    os.replace(tmp, ckpt_dir / LAST)
    if keep_last > 0:
        for old in step_checkpoints(ckpt_dir)[:-keep_last]:
            old.unlink(missing_ok=True)
    return path


def step_checkpoints(ckpt_dir: str | Path) -> list[Path]:
    """The ``step_*.ckpt`` files in ``ckpt_dir``, oldest step first."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckpt_dir.iterdir() if (m := _STEP_FILE.match(p.name))]
    return [p for _, p in sorted(found)]


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by ``fit`` (see the module docstring for its keys).

    Raises FileNotFoundError when ``path`` does not exist and ValueError, naming the file, when it
    is not a readable checkpoint (truncated, corrupt, or another format).
    """
    return load_tagged(path, FORMAT, "hifialbedo training checkpoint", map_location=map_location)


def capture_rng_state() -> dict[str, Any]:
    """This process's Python, NumPy, torch CPU and (when present) CUDA generator states, as plain values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None,
    }
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Undo ``capture_rng_state``: the random streams continue exactly where they were captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
