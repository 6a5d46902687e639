"""Training orchestration: the generic engine (``fit``), its config, checkpoints, logs and data readers.

Stages (what is trained and its losses) live with the models; this package only runs them.
Importing it does not import Lightning Fabric: ``engine`` does, on first use (``train`` too).

Stage 1 (the texture codebook): ``Stage1Config`` / ``stage1_config``, ``CodebookStage``,
``stage1_dataset``, ``load_stage1_model``; ``train(stage_name, ...)`` is the CLI's entry point.
Stage 2 (UV encoder, dual discriminator) and stage 3 (multi-photo albedo) are in ``stage2`` and
``stage3``; their data: ``synth_data`` (the synthetic engine) and ``photo_data`` (real photos
made ready by ``hifialbedo prepare``).
"""

from hifialbedo.models.saved import load_checkpoint
from hifialbedo.training.config import TrainConfig, load_config
from hifialbedo.training.data import IdentityFolders, ImageFolder, UVTextureFolder
from hifialbedo.training.stage1 import (
    STAGE1_PRESETS,
    CodebookStage,
    Stage1Config,
    load_stage1_model,
    stage1_config,
    stage1_dataset,
)

__all__ = [
    "STAGE1_PRESETS",
    "CodebookStage",
    "IdentityFolders",
    "ImageFolder",
    "Stage1Config",
    "TrainConfig",
    "UVTextureFolder",
    "load_checkpoint",
    "load_config",
    "load_stage1_model",
    "stage1_config",
    "stage1_dataset",
    "train",
]


def __getattr__(name: str):
    # ``train`` imports the engine (Lightning Fabric): only on first use.
    if name == "train":
        from hifialbedo.training.run import train

        return train
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
