"""The training configuration: one frozen dataclass, read from JSON/TOML plus ``key=value`` overrides.

Example::

    cfg = load_config("stage1.toml", ["max_steps=100", "precision=bf16-mixed"])
    cfg.to_dict()  # plain JSON types; TrainConfig.from_dict(cfg.to_dict()) == cfg
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hifialbedo.typed_config import ConfigDictMixin

PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")
ACCELERATORS = ("auto", "cpu", "cuda")
STRATEGIES = ("auto", "ddp")


@dataclass(frozen=True)
class TrainConfig(ConfigDictMixin):
    """What the generic engine (``training.engine.fit``) needs; the stage has its own config."""

    out_dir: str = "runs/train"
    """Run folder: ``checkpoints/``, ``samples/``, ``metrics.csv``, ``config.json``."""
    max_steps: int = 1000
    """Optimiser steps to train in total (a resumed run stops at the same step)."""
    batch_size: int = 8
    """Samples per micro-batch per device; the global batch is batch_size x devices x num_nodes x grad_accum."""
    grad_accum: int = 1
    """Micro-batches accumulated before each optimiser step."""
    lr: float = 2e-4
    """Base Adam learning rate; each optimiser scales it by the stage's multiplier."""
    betas: tuple[float, float] = (0.9, 0.999)
    """Adam (beta1, beta2)."""
    weight_decay: float = 0.0
    """Adam's L2 weight decay."""
    precision: str = "32-true"
    """Fabric precision: "32-true", "bf16-mixed" or "16-mixed" (16-mixed adds a grad scaler; CUDA only)."""
    compile: bool = False
    """``torch.compile`` the trainable modules (needs a working compiler toolchain)."""
    accelerator: str = "auto"
    """"auto", "cpu" or "cuda"."""
    devices: int = 1
    """Devices (processes) per node; -1 for all visible GPUs."""
    num_nodes: int = 1
    """Machines taking part."""
    strategy: str = "auto"
    """"auto" (one device) or "ddp" (distributed data parallel)."""
    seed: int = 0
    """Seeds module initialisation, the data order (with the epoch) and each rank's random stream."""
    ckpt_every: int = 1000
    """Write a checkpoint every this many steps (and always at the last step)."""
    sample_every: int = 500
    """Write sample image grids every this many steps; 0 turns samples off."""
    log_every: int = 10
    """Log metrics (CSV, progress bar, TensorBoard) every this many steps."""
    num_workers: int = 2
    """DataLoader worker processes per rank (0: load in the training process)."""
    keep_last_checkpoints: int = 3
    """Keep only this many ``step_*.ckpt`` files (``last.ckpt`` is always kept); 0 keeps all."""
    resume: bool = True
    """Continue from ``out_dir/checkpoints/last.ckpt`` when it exists (False: refuse a folder holding checkpoints)."""

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "grad_accum", "ckpt_every", "log_every", "num_nodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("sample_every", "num_workers", "keep_last_checkpoints"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.devices == 0 or self.devices < -1:
            raise ValueError(f"devices must be >= 1 or -1 (all), got {self.devices}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas}")
        for name, allowed in (("precision", PRECISIONS), ("accelerator", ACCELERATORS), ("strategy", STRATEGIES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied (type-checked like ``from_dict``)."""
        return type(self).from_dict({**self.to_dict(), **changes})


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The table in a ``.json`` or ``.toml`` file; ValueError naming the file on any problem."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read config file ({exc.strerror})") from None
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        elif path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            raise ValueError("config files must end in .json or .toml")
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise TypeError(f"{path}: expected a table of settings, got {type(data).__name__}")
    return data


def parse_overrides(overrides: Sequence[str]) -> dict[str, Any]:
    """``["max_steps=100", "betas=[0.5, 0.99]", "precision=bf16-mixed"]`` -> a dict.

    A value is read as JSON when it parses (numbers, true/false, lists), else kept as a string.
    """
    parsed: dict[str, Any] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {item!r} is not of the form key=value")
        try:
            parsed[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            parsed[key.strip()] = value
    return parsed


def load_config(
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
    *,
    base: TrainConfig | None = None,
    section: str | None = None,
) -> TrainConfig:
    """``base`` (default ``TrainConfig()``), updated by the file (its ``section`` table when given), then by overrides."""
    data = (base or TrainConfig()).to_dict()
    if path is not None:
        table = read_config_file(path)
        if section is not None:
            if not isinstance(table.get(section), dict):
                raise ValueError(f"{path}: no [{section}] table")
            table = table[section]
        data.update(table)
    data.update(parse_overrides(overrides))
    return TrainConfig.from_dict(data)


__all__ = ["TrainConfig", "load_config", "parse_overrides", "read_config_file"]
