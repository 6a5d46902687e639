"""Checkpoint files of a training run: rotation of ``step_*.ckpt`` beside ``last.ckpt``, and
random-number-generator state.

The file format, its atomic writing and its reading are the models' (``models.saved``: a
checkpoint holds the models' weights and configs, and models load from it).
"""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hifialbedo.models.saved import atomic_save

LAST = "last.ckpt"
_STEP_FILE = re.compile(r"^step_(\d+)\.ckpt$")


def step_file_name(step: int) -> str:
    """``step_0000100.ckpt`` for step 100."""
    return f"step_{step:07d}.ckpt"


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
