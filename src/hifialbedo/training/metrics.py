"""Training outputs written by rank 0: the metrics CSV (+ TensorBoard when installed) and sample grids."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np
import torch

from hifialbedo.models.saved import atomic_write_bytes


class MetricsLog:
    """Append-only ``metrics.csv`` (one flushed line per logged step) and optional TensorBoard events.

    The columns are fixed by the first row written (``step`` first); keys first seen later are
    left out of the CSV. An existing file keeps only its rows up to ``start_step`` (a resumed run
    drops what a killed run logged after its last checkpoint; a fresh run, ``start_step=0``,
    starts a new file), so the file always reads as one uninterrupted run.
    """

    def __init__(self, out_dir: str | Path, *, start_step: int = 0, tensorboard: bool = True) -> None:
        self.path = Path(out_dir) / "metrics.csv"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._columns: list[str] | None = None
        self._file = None
        self._writer: csv.DictWriter | None = None
        if start_step > 0:
            self._truncate(start_step)
        else:
            self.path.unlink(missing_ok=True)
        self._tb = _tensorboard_writer(Path(out_dir) / "tensorboard") if tensorboard else None

    def _truncate(self, step: int) -> None:
        """Keep only the rows with ``step <= step`` (atomically rewritten)."""
        if not self.path.exists():
            return
        with self.path.open(newline="") as f:
            reader = csv.DictReader(f)
            columns = reader.fieldnames
            rows = [row for row in reader if int(row["step"]) <= step]
        if not columns:
            return
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_bytes(buffer.getvalue().encode(), self.path)
        self._columns = list(columns)

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        """Write one row: ``step`` then ``metrics`` (numbers)."""
        row = {"step": step, **{k: _fmt(v) for k, v in metrics.items()}}
        if self._file is None:
            exists = self.path.exists() and self.path.stat().st_size > 0
            if self._columns is None:
                self._columns = list(row)
            self._file = self.path.open("a", newline="")
            self._writer = csv.DictWriter(self._file, fieldnames=self._columns, extrasaction="ignore", lineterminator="\n")
            if not exists:
                self._writer.writeheader()
        self._writer.writerow(row)
        self._file.flush()
        if self._tb is not None:
            for key, value in metrics.items():
                self._tb.add_scalar(key, value, step)
            self._tb.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tb is not None:
            self._tb.close()


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    """The rows of a ``metrics.csv`` as floats (empty cells become NaN)."""
    with Path(path).open(newline="") as f:
        return [{k: float(v) if v != "" else math.nan for k, v in row.items()} for row in csv.DictReader(f)]


def image_grid(images: torch.Tensor, *, columns: int = 8, pad: int = 2) -> np.ndarray:
    """``(B, 3, H, W)`` float sRGB in [0, 1] -> ``(rows (H + pad), columns (W + pad), 3)`` uint8 sRGB, white padding."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"sample images must be (B, 3, H, W), got {tuple(images.shape)}")
    x = images.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    b, h, w, _ = x.shape
    cols = min(columns, b)
    rows = math.ceil(b / cols)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, np.uint8)
    for i in range(b):
        r, c = divmod(i, cols)
        grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = x[i]
    return grid


def save_sample_grids(samples: Mapping[str, torch.Tensor], out_dir: str | Path, step: int) -> list[Path]:
    """Write each ``(B, 3, H, W)`` sRGB [0, 1] tensor as ``out_dir/step_XXXXXXX_<name>.png`` (atomically)."""
    paths = []
    for name, images in samples.items():
        ok, png = cv2.imencode(".png", cv2.cvtColor(image_grid(images), cv2.COLOR_RGB2BGR))
        if not ok:  # pragma: no cover - OpenCV failure
            raise RuntimeError(f"could not encode sample grid {name!r}")
        path = Path(out_dir) / f"step_{step:07d}_{name}.png"
        atomic_write_bytes(png.tobytes(), path)
        paths.append(path)
    return paths


def _fmt(value: float) -> float | int:
    return value if isinstance(value, int) else float(value)


def _tensorboard_writer(log_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(log_dir=str(log_dir))
