"""Training orchestration: the generic engine (``fit``), its config, checkpoints, logs and data readers.

Stages (what is trained and its losses) live with the models; this package only runs them.
Importing it does not import Lightning Fabric: ``engine`` does, on first use.
"""

from hifialbedo.training.checkpoint import load_checkpoint
from hifialbedo.training.config import TrainConfig, load_config
from hifialbedo.training.data import IdentityFolders, ImageFolder, UVTextureFolder

__all__ = ["IdentityFolders", "ImageFolder", "TrainConfig", "UVTextureFolder", "load_checkpoint", "load_config"]
