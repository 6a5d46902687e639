"""One item of a batch, in whichever process runs it: reconstruct, write, emit, mark done.

Both engines run :class:`ItemProcessor`: it loads the models once (per worker process or Ray
actor) and turns a *task* (a plain dict, :func:`make_task`) into a *result* (a plain dict:
``key``, ``status``, ``error``, ``seconds``, ``photos``, ``skin_ita``, ``light``). The
order of writes is what makes an item complete-or-absent:

1. stale temporary folders of the item from a killed run are removed;
2. the output contract is written atomically (``io.contract.write_outputs``: a temporary folder
   renamed into place; a folder without a done marker is replaced);
3. with training data asked for, ``texture.png`` and ``albedo.png`` are copied (atomically)
   to ``DIR/textures/<key>.png`` and ``DIR/albedos/<key>.png``;
4. the done marker ``batch_done.json`` is written last (atomically).

A bad input is a ``failed`` result with its one-line error; a full output disk is a
``disk_full`` result (the driver stops); nothing else escapes.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from hifialbedo.batch.manifest import MARKER_NAME, atomic_write_bytes, is_disk_full, write_marker
from hifialbedo.io.errors import InputError
from hifialbedo.ops.colour import LUMA_WEIGHTS, mean_ita
from hifialbedo.pipeline import Models, ReconstructConfig, Reconstruction, reconstruct_photos, write_outputs

TRAINING_KINDS = {"textures": "texture.png", "albedos": "albedo.png"}
"""``--emit-training-data`` sub-folders (each a ``uv:`` folder of ``hifialbedo train``) and
the output file each copies."""
LOW_SPACE_BYTES = 16 * 2**20
"""A write error without an errno (OpenCV's PNG writer) counts as a full disk below this much free space."""


def make_task(key: str, source: str, photos: Sequence[str], *, input_dir: Path, out_dir: Path, emit_dir: Path | None) -> dict[str, Any]:
    """The plain-dict task of one item (absolute paths, so any process on any node can run it
    when the folders are on shared storage)."""
    return {
        "key": key,
        "source": source,
        "photos": list(photos),
        "input_dir": str(Path(input_dir).resolve()),
        "out_dir": str(Path(out_dir).resolve()),
        "emit_dir": str(Path(emit_dir).resolve()) if emit_dir is not None else None,
    }


def limit_threads() -> None:
    """One compute thread in this process (PyTorch, OpenCV), so N workers use N cores. BLAS
    and OpenMP pools read ``OMP_NUM_THREADS`` and friends when loaded: the engines set those
    before their workers start (``batch._worker_env``, Ray's ``num_cpus=1``)."""
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (MediaPipe's and TFLite's C++ start-up lines), restored after."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class ItemProcessor:
    """Runs tasks with models loaded once (``pipeline.Models``: MediaPipe, the identity net)."""

    def __init__(self, config: ReconstructConfig, *, quiet: bool = True) -> None:
        self.config = config
        self.models = Models()
        # Load and run once now (TFLite prints its start-up lines on the first run), so the
        # terminal stays clean and the first item's time is its own.
        with quiet_native_stderr() if quiet else contextlib.nullcontext(), contextlib.suppress(Exception):
            self.models.detector.detect(np.zeros((64, 64, 3), np.uint8))
        self._ita_masks: dict[int, np.ndarray] = {}

    def __call__(self, task: dict[str, Any]) -> dict[str, Any]:
        t0 = time.perf_counter()
        key = task["key"]
        out = Path(task["out_dir"]) / key
        result: dict[str, Any] = {"key": key, "status": "failed", "error": "", "seconds": 0.0}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # the pipeline puts its warnings in report.json
                metrics = self._run(task, out, t0)
            result.update(status="done", **metrics)
        except Exception as exc:  # noqa: BLE001  one bad item must not stop the batch: every failure is recorded
            if is_disk_full(exc) or (isinstance(exc, OSError) and exc.errno is None and _low_space(out)):
                result.update(status="disk_full", error=_one_line(exc, task))
            else:
                result.update(error=_one_line(exc, task))
        if result["status"] != "done":
            result["seconds"] = round(time.perf_counter() - t0, 4)
        return result

    def _run(self, task: dict[str, Any], out: Path, t0: float) -> dict[str, Any]:
        root = Path(task["input_dir"])
        photos = [root / p for p in task["photos"]]
        remove_stale_temporaries(out)
        try:
            rec = reconstruct_photos(photos, config=self.config, models=self.models)
        except InputError as exc:
            if len(photos) > 1:  # identities: every photo of the person was unusable
                raise InputError(task["source"], f"none of its {len(photos)} photos has a usable face (first: {exc})") from None
            raise
        write_outputs(
            rec,
            out,
            overwrite=out.exists(),  # only a folder without a done marker reaches here
            extra_report={"config": asdict(self.config), "batch": {"input": task["source"], "output": task["key"]}},
        )
        metrics = self.metrics(rec)
        if task.get("emit_dir"):
            emit_training_files(out, Path(task["emit_dir"]), task["key"])
        marker = {
            "input": task["source"],
            "photos": list(task["photos"]),
            "seconds": round(time.perf_counter() - t0, 4),
            "photos_used": metrics["photos"],
            "skin_ita": metrics["skin_ita"],
            "light": metrics["light"],
        }
        write_marker(out, marker)
        return {**metrics, "seconds": marker["seconds"]}  # the manifest's row, rebuilt alike from the marker

    def metrics(self, rec: Reconstruction) -> dict[str, Any]:
        """The manifest's numbers of a result: photos used, mean skin ITA, light colour."""
        size = rec.layout.size
        if size not in self._ita_masks:
            from hifialbedo.mesh.topology import uv_regions

            regions = uv_regions(size)
            self._ita_masks[size] = regions["forehead"] | regions["cheeks"]
        try:
            ita = mean_ita(rec.albedo, self._ita_masks[size])
        except ValueError:
            ita = float("nan")
        colours = []
        for r in rec.results:
            dc = np.asarray(r.estimate.sh[0], dtype=np.float64)  # the constant band: the light's mean colour
            lum = float(dc @ LUMA_WEIGHTS)
            colours.append(dc / lum if lum > 0 else np.ones(3))
        light = np.mean(colours, axis=0)
        return {"photos": len(rec.results), "skin_ita": round(ita, 4), "light": [round(float(c), 4) for c in light]}


def training_file(emit_dir: Path, kind: str, key: str) -> Path:
    """Where ``--emit-training-data`` puts an item's file of ``kind`` (:data:`TRAINING_KINDS`)."""
    return Path(emit_dir) / kind / f"{key}.png"


def emit_training_files(out: Path, emit_dir: Path, key: str) -> None:
    """Copy a finished item's UV texture and albedo into the ``uv:`` folders under ``emit_dir``."""
    for kind, name in TRAINING_KINDS.items():
        dst = training_file(emit_dir, kind, key)
        dst.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(dst, (out / name).read_bytes())


def remove_stale_temporaries(out: Path) -> None:
    """Remove what a killed run left of this item: ``atomic_output_dir``'s ``.<name>.tmp-*``
    and ``.<name>.old-*`` folders beside it (the folder itself has no done marker, so nothing
    complete is lost)."""
    parent = out.parent
    if not parent.is_dir():
        return
    pattern = re.compile(rf"^\.{re.escape(out.name)}\.(tmp|old)-([0-9]+-)?[a-z0-9_]{{8}}$")
    for entry in os.scandir(parent):
        if pattern.match(entry.name) and entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(out / MARKER_NAME)  # a marker from other inputs (identities: photos added since)


def _low_space(path: Path) -> bool:
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free < LOW_SPACE_BYTES
    except OSError:
        return False


def _one_line(exc: BaseException, task: dict[str, Any]) -> str:
    """A failure as one line naming the file, with paths under INPUT_DIR / OUT_DIR made relative."""
    if isinstance(exc, InputError):
        text = f"{_relative(exc.path, task)}: {exc.problem}"
    elif isinstance(exc, OSError) and exc.strerror:
        where = _relative(exc.filename, task) if exc.filename else task["key"]
        text = f"{where}: {exc.strerror}"
    elif isinstance(exc, (OSError, ValueError)):
        text = str(exc)
    else:
        text = f"{task['source']}: {type(exc).__name__}: {exc}"
    for base in (task["input_dir"], task["out_dir"]):
        text = text.replace(base.rstrip("/") + "/", "")
    return " ".join(text.split())  # one line


def _relative(path: str | os.PathLike, task: dict[str, Any]) -> str:
    p = str(path)
    for base in (task["input_dir"], task["out_dir"]):
        with contextlib.suppress(ValueError):
            return Path(p).relative_to(base).as_posix()
    return p
