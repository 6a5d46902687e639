"""The one place that wires the stages into commands: ``reconstruct``, ``identity``, ``relight``.

- ``config``: :class:`ReconstructConfig` and the fusion constants (:class:`FusionConfig`)
- ``model_cache``: :class:`Models`, what is loaded once (detector, identity net, learned models)
- ``photo``: per-photo analysis (landmarks, mesh, unwrap, lighting)
- ``fuse``: identity check, specular, detail normals, fusion, completion, as named steps
- ``learned``: the learned model's albedo (``reconstruct --model``)
- ``reconstruct``: :func:`reconstruct_photos` (in memory) and :func:`reconstruct` (to a folder,
  the contract of ``io.contract``)
- ``identify``: :func:`identify_photos`
- ``relight``: :func:`relight`, a reconstruct folder under new light
- ``methods``: the pipeline as methods the evaluations score
"""

from hifialbedo.io.contract import PhotoResult, Reconstruction, Timer, write_outputs
from hifialbedo.pipeline.config import FusionConfig, ReconstructConfig
from hifialbedo.pipeline.fuse import fuse_photo_results
from hifialbedo.pipeline.identify import IdentityReport, identify_photos
from hifialbedo.pipeline.learned import learned_albedo, learned_albedo_of_photos
from hifialbedo.pipeline.model_cache import Models
from hifialbedo.pipeline.photo import analyse_photo, photo_landmarks, process_photo
from hifialbedo.pipeline.reconstruct import reconstruct, reconstruct_photos
from hifialbedo.pipeline.relight import RelightConfig, RelightLight, light_from_direction, load_light, relight

__all__ = [
    "FusionConfig",
    "IdentityReport",
    "Models",
    "PhotoResult",
    "ReconstructConfig",
    "Reconstruction",
    "RelightConfig",
    "RelightLight",
    "Timer",
    "analyse_photo",
    "fuse_photo_results",
    "identify_photos",
    "learned_albedo",
    "learned_albedo_of_photos",
    "light_from_direction",
    "load_light",
    "photo_landmarks",
    "process_photo",
    "reconstruct",
    "reconstruct_photos",
    "relight",
    "write_outputs",
]
