"""A stage's outputs on one micro-batch, kept from one optimiser's pass for a later one in the same step.

Fabric-free, so the stages that use it import without the engine.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor


class MicroBatchCache:
    """What one optimiser's pass computed on a micro-batch, kept for a later optimiser's pass
    on the same micro-batch within the same step (e.g. a GAN's generator outputs for its
    discriminator). ``fit`` hands every optimiser of a step the same micro-batch tensors, so
    a tensor's storage and shape name the micro-batch; entries of earlier steps are dropped.
    """

    def __init__(self) -> None:
        self._step = -1
        self._entries: dict[tuple[int, tuple[int, ...]], Any] = {}

    @staticmethod
    def _key(tensor: Tensor) -> tuple[int, tuple[int, ...]]:
        return tensor.data_ptr(), tuple(tensor.shape)

    def put(self, step: int, tensor: Tensor, value: Any) -> None:
        """Keep ``value`` for the micro-batch that ``tensor`` (one of its tensors) belongs to, at ``step``."""
        if step != self._step:
            self._step, self._entries = step, {}
        self._entries[self._key(tensor)] = value

    def get(self, step: int, tensor: Tensor) -> Any | None:
        """What was put for this micro-batch at ``step``, or None (another step, or never put)."""
        return self._entries.get(self._key(tensor)) if step == self._step else None


__all__ = ["MicroBatchCache"]
