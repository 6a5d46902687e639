"""The synthetic face engine: training data for the learned model, with exact ground truth.

Identities (a procedural UV albedo with a calibrated skin tone, and a face shape from real
landmark sets with smooth random deformations) are rendered several times each (pose,
expression, light, specular, background, noise) through the project's renderer.

- ``procedural_albedo(size, skin_type=..., seed=...)``: a UV albedo on the project's layout.
- ``write_dataset(out_dir, SynthConfig(...))``: a dataset folder (layout in ``synth.dataset``).
- ``SyntheticFaces(root, split=..., group_size=...)``: the PyTorch ``Dataset`` over it
  (imports torch on first use).

Submodules: ``config`` (``SynthConfig``, presets, skin types), ``albedo``, ``shape``,
``lighting``, ``render``, ``engine`` (identities and renders from a config), ``dataset``
(writer and NumPy readers), ``torch_data``.
"""

from hifialbedo.synth.albedo import SynthAlbedo, procedural_albedo, skin_ita
from hifialbedo.synth.config import PRESETS, SKIN_TYPE_ITA, SynthConfig
from hifialbedo.synth.dataset import load_identity, load_render, read_metadata, write_dataset

__all__ = [
    "PRESETS",
    "SKIN_TYPE_ITA",
    "SynthAlbedo",
    "SynthConfig",
    "load_identity",
    "load_render",
    "procedural_albedo",
    "read_metadata",
    "skin_ita",
    "write_dataset",
]


def __getattr__(name: str):
    # SyntheticFaces needs torch: imported on first use, not with the package.
    if name == "SyntheticFaces":
        from hifialbedo.synth.torch_data import SyntheticFaces

        return SyntheticFaces
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
