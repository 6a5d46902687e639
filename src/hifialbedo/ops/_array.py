"""Tiny helpers that let one maths function serve both NumPy arrays and torch tensors."""

from __future__ import annotations

from typing import Any

import numpy as np


def is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def stack(arrays: list, axis: int = -1):
    if is_torch(arrays[0]):
        import torch

        return torch.stack(arrays, dim=axis)
    return np.stack(arrays, axis=axis)


def where(cond, a, b):
    if is_torch(cond):
        import torch

        return torch.where(cond, a, b)
    return np.where(cond, a, b)


def clip_min(x, lo: float):
    if is_torch(x):
        return x.clamp_min(lo)
    return np.maximum(x, lo)
