"""``reconstruct``: photos of one person in, the output contract (``io.contract``) out.

photos -> per-photo analysis (``pipeline.photo``: landmarks, mesh, UV unwrap, lighting +
albedo) -> identity check, specular, detail normals, fusion, completion (``pipeline.fuse``)
-> the output folder (``io.contract.write_outputs``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from hifialbedo.io.contract import PhotoResult, Reconstruction, Timer, write_outputs
from hifialbedo.io.errors import InputError
from hifialbedo.io.images import read_photo
from hifialbedo.io.output import check_output_dir
from hifialbedo.mesh.topology import uv_regions
from hifialbedo.pipeline.config import ReconstructConfig
from hifialbedo.pipeline.fuse import fuse_photo_results
from hifialbedo.pipeline.model_cache import Models
from hifialbedo.pipeline.photo import analyse_photo, landmark_paths, unique_names
from hifialbedo.render.uv_layout import uv_layout


def reconstruct_photos(
    photo_paths: Sequence[str | Path],
    *,
    config: ReconstructConfig = ReconstructConfig(),
    landmark_files: Sequence[str | Path] | None = None,
    models: Models | None = None,
    progress: Callable[[str], None] | None = None,
) -> Reconstruction:
    """Run the training-free reconstruction in memory.

    Photos that fail (unreadable, no face, ...) are skipped with a warning while at least
    one good photo remains; with a single photo, or none left, the first error is raised
    (``InputError`` naming the file).
    """
    models = models or Models()
    paths = [Path(p) for p in photo_paths]
    if not paths:
        raise ValueError("no photos given")
    lm_paths = landmark_paths(landmark_files, len(paths))
    note = progress or (lambda stage: None)
    timer = Timer()
    warns: list[str] = []

    with timer.timing("uv_layout"):
        layout = uv_layout(config.uv_size)
        skin = layout.gather(uv_regions(config.uv_size)["skin"])

    results: list[PhotoResult] = []
    errors: list[InputError] = []
    for path, name, lm_file in zip(paths, unique_names(paths), lm_paths, strict=True):
        try:
            note(f"reading {path.name}")
            with timer.timing("read"), warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                photo = read_photo(path, max_side=config.max_side)
            photo_warnings = [str(w.message) for w in caught]

            result = analyse_photo(photo, name, layout=layout, skin=skin, config=config, models=models, landmark_file=lm_file, timer=timer, progress=note)
            result.warnings[:0] = photo_warnings
            results.append(result)
            warns.extend(result.warnings)
        except InputError as exc:
            if len(paths) == 1:
                raise
            errors.append(exc)
            warns.append(f"skipped {exc}")
    if not results:
        raise errors[0]

    return fuse_photo_results(results, layout, config=config, models=models, timer=timer, warnings_so_far=warns, progress=note)


def reconstruct(
    photo_paths: Sequence[str | Path],
    out_dir: str | Path,
    *,
    config: ReconstructConfig = ReconstructConfig(),
    landmark_files: Sequence[str | Path] | None = None,
    overwrite: bool = False,
    models: Models | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Photos in, the output contract in ``out_dir`` (atomically); returns the report.

    ``out_dir`` may not be, contain or lie inside a photo, a landmark file or the model
    (``InputError``, before any work; ``io.output.check_output_dir``).
    """
    out_dir = Path(out_dir)
    inputs = [*photo_paths, *(landmark_files or ()), config.model]
    check_output_dir(out_dir, overwrite=overwrite, inputs=inputs)  # fail before the work, not after
    rec = reconstruct_photos(photo_paths, config=config, landmark_files=landmark_files, models=models, progress=progress)
    return write_outputs(rec, out_dir, overwrite=overwrite, extra_report={"config": asdict(config)}, progress=progress, inputs=inputs)


__all__ = ["reconstruct", "reconstruct_photos"]
