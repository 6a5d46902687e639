"""``reconstruct``: photos of one person in, the output contract (``io.contract``) out.

photos -> per-photo analysis (``pipeline.photo``: landmarks, mesh, UV unwrap, lighting +
albedo) -> identity check, specular, detail normals, fusion, completion (``pipeline.fuse``)
-> the output folder (``io.contract.write_outputs``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

from hifialbedo.io.contract import PhotoResult, Reconstruction, Timer, encoder_threads, write_outputs
from hifialbedo.io.errors import InputError
from hifialbedo.io.images import read_photo
from hifialbedo.io.output import check_output_dir
from hifialbedo.mesh.topology import uv_regions
from hifialbedo.pipeline.config import ReconstructConfig
from hifialbedo.pipeline.fuse import fuse_photo_results
from hifialbedo.pipeline.model_cache import Models
from hifialbedo.pipeline.photo import analyse_located_photo, landmark_paths, photo_landmarks, unique_names
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

    # The photos' per-texel work runs on parallel threads (NumPy and OpenCV release the GIL),
    # as many as OpenCV may use (one in a batch worker: serial then): each photo's mesh,
    # unwrap and lighting while the next is read and its landmarks found (the detector is
    # one model, used from this thread only), then the per-photo steps of the fusion.
    threads = encoder_threads() if len(paths) > 1 else 1
    with ThreadPoolExecutor(threads) as pool:
        analysed: list[tuple[Future[PhotoResult], list[str]] | InputError] = []
        for path, name, lm_file in zip(paths, unique_names(paths), lm_paths, strict=True):
            try:
                note(f"reading {path.name}")
                with timer.timing("read"), warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    photo = read_photo(path, max_side=config.max_side)
                photo_warnings = [str(w.message) for w in caught]
                note(f"landmarks {path.name}")
                with timer.timing("landmarks"):
                    lm, source, lm_warnings = photo_landmarks(photo, face_index=config.face_index, models=models, landmark_file=lm_file)
            except InputError as exc:
                if len(paths) == 1:
                    raise
                analysed.append(exc)
                continue
            note(f"estimating {path.name}")
            job = pool.submit(analyse_located_photo, photo, name, lm, source, lm_warnings, layout=layout, skin=skin, config=config, timer=timer)
            analysed.append((job, photo_warnings))

        # In the photos' order, as if analysed one after the other.
        results: list[PhotoResult] = []
        errors: list[InputError] = []
        for entry in analysed:
            try:
                if isinstance(entry, InputError):
                    raise entry
                job, photo_warnings = entry
                result = job.result()
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
        map_photos = pool.map if threads > 1 and len(results) > 1 else map
        return fuse_photo_results(results, layout, config=config, models=models, timer=timer, warnings_so_far=warns, progress=note, map_photos=map_photos)


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
