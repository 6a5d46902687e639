"""The batch driver: discover, resume, hand the pending items to an engine, keep the manifest.

:func:`run_batch` is ``hifialbedo batch``. Running it again on the same OUT_DIR resumes: the
done markers say what is finished (:mod:`hifialbedo.batch.manifest`), those items are
skipped, everything else is (re)done; failed items stay failed unless ``retry_failed``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hifialbedo.batch.discovery import LAYOUTS, Item, Layout, discover
from hifialbedo.batch.manifest import (
    MANIFEST_NAME,
    RESERVED_NAMES,
    check_options,
    is_disk_full,
    read_manifest,
    read_marker,
    run_lock,
    write_manifest,
)
from hifialbedo.io.errors import InputError
from hifialbedo.pipeline import ReconstructConfig

ENGINES: tuple[str, ...] = ("local", "ray")
FLUSH_SECONDS = 2.0
"""The manifest is rewritten at most this often while results arrive (and at the end)."""
FLUSH_ITEMS = 200
"""... or after this many results, whichever comes first."""


@dataclass
class BatchSummary:
    """What a run did and where the collection stands (``counts`` over the manifest's items)."""

    out_dir: Path
    manifest: Path
    counts: dict[str, int]
    """Items by status over the whole folder: done, failed, skipped, pending."""
    done_now: int = 0
    failed_now: int = 0
    already_done: int = 0
    seconds: float = 0.0
    stopped: str | None = None
    """Why the run stopped before the end (a full disk), else None."""
    engine: str = ""
    failures: list[tuple[str, str]] = field(default_factory=list)
    """(input, error) of the items that failed in this run."""

    @property
    def failed(self) -> int:
        return self.counts.get("failed", 0)


class BatchStopped(Exception):
    """The run stopped before the end (the output disk is full, the workers cannot start):
    what was done is kept and recorded; the same command resumes. ``summary`` says where it stands."""

    def __init__(self, message: str, summary: BatchSummary) -> None:
        super().__init__(message)
        self.summary = summary


def _check_folders(input_dir: Path, out_dir: Path, emit_dir: Path | None) -> None:
    if not input_dir.is_dir():
        raise InputError(input_dir, "no such folder")
    src, dst = input_dir.resolve(), out_dir.resolve()
    if dst == src or src in dst.parents:
        raise InputError(out_dir, f"the output folder must lie outside the input folder {input_dir}")
    if dst in src.parents:
        raise InputError(out_dir, f"the output folder must not contain the input folder {input_dir}")
    if emit_dir is not None:
        e = emit_dir.resolve()
        for other, what in ((src, "input"), (dst, "output")):
            if e == other or other in e.parents or e in other.parents:
                raise InputError(emit_dir, f"the training-data folder must lie outside the {what} folder {other}")


def _row(item: Item, status: str, **values: Any) -> dict[str, Any]:
    return {"input": item.source, "output": item.key, "status": status, **values}


def _done_row(item: Item, marker: dict[str, Any]) -> dict[str, Any]:
    light = marker.get("light") or [None, None, None]
    return _row(
        item,
        "done",
        seconds=marker.get("seconds"),
        photos=marker.get("photos_used"),
        skin_ita=marker.get("skin_ita"),
        light_r=light[0],
        light_g=light[1],
        light_b=light[2],
    )


def run_batch(
    input_dir: str | Path,
    out_dir: str | Path,
    *,
    layout: Layout = "photos",
    config: ReconstructConfig | None = None,
    engine: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    limit: int | None = None,
    retry_failed: bool = False,
    emit_training_data: str | Path | None = None,
    progress: Callable[[int, int, int], None] | None = None,
    on_start: Callable[[int, int, str], None] | None = None,
) -> BatchSummary:
    """Reconstruct every item under ``input_dir`` into ``out_dir`` (resumable; see the module).

    ``layout``: "photos" or "identities" (``batch.discovery``). ``engine``: "local" (a process
    pool of ``workers``, default the CPU count; 0: in this process) or "ray" (``workers``
    actors, default one per CPU; ``ray_address`` joins a cluster). ``limit``: only the first N
    items (sorted by output folder). ``emit_training_data``: also copy each finished item's
    ``texture.png`` and ``albedo.png`` to ``DIR/textures/<key>.png`` and ``DIR/albedos/<key>.png``
    (``uv:`` folders of ``hifialbedo train``). ``on_start(todo, already_done, engine)`` once
    before the work, ``progress(finished, todo, failed)`` after each result.

    InputError (one line, naming the folder) for unusable folders or a rerun with other
    options; :class:`BatchStopped` when the disk fills up (or the workers cannot start), after
    recording what was done. Bad items do not raise: they are failed rows.
    """
    config = ReconstructConfig() if config is None else config
    input_dir, out_dir = Path(input_dir), Path(out_dir)
    emit_dir = Path(emit_training_data) if emit_training_data is not None else None
    if layout not in LAYOUTS:
        raise ValueError(f"--layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if engine not in ENGINES:
        raise ValueError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be >= 1, got {limit}")
    _check_folders(input_dir, out_dir, emit_dir)
    items, skipped = discover(input_dir, layout, reserved=RESERVED_NAMES)
    if limit is not None:
        items = items[:limit]
    runner = _engine(engine, config, workers, ray_address)
    check_options(out_dir, {"layout": layout, "reconstruct": asdict(config)})

    t0 = time.perf_counter()
    with run_lock(out_dir):
        for stale in out_dir.glob(f".{MANIFEST_NAME}.*.part"):  # a driver killed mid-write (we hold the lock)
            stale.unlink(missing_ok=True)
        manifest_path = out_dir / MANIFEST_NAME
        rows: dict[str, dict[str, Any]] = read_manifest(manifest_path)
        for s in skipped:
            rows[s.key] = {"input": s.source, "output": s.key, "status": "skipped", "error": s.reason}
        todo: list[Item] = []
        already = 0
        for item in items:
            marker = read_marker(out_dir / item.key)
            old = rows.get(item.key)
            if marker is not None and marker.get("photos") == list(item.photos):
                rows[item.key] = _done_row(item, marker)
                already += 1
                if emit_dir is not None:
                    _emit_if_missing(out_dir / item.key, emit_dir, item.key)
            elif old and old.get("status") == "failed" and old.get("input") == item.source and not retry_failed:
                rows[item.key] = {**old}
            else:
                rows[item.key] = _row(item, "pending")
                todo.append(item)
        summary = BatchSummary(out_dir, manifest_path, {}, already_done=already, engine=runner.describe())
        if not _flush(manifest_path, rows, summary):
            raise BatchStopped(f"{summary.stopped}; nothing was started", summary)
        if on_start is not None:
            on_start(len(todo), already, runner.describe())

        from hifialbedo.batch.worker import make_task

        tasks = [make_task(it.key, it.source, it.photos, input_dir=input_dir, out_dir=out_dir, emit_dir=emit_dir) for it in todo]
        by_key = {it.key: it for it in todo}
        finished = 0
        last_flush = time.monotonic()
        unflushed = 0
        results = runner.results(tasks)
        try:
            for res in results:
                item = by_key[res["key"]]
                status = res["status"]
                if status in ("disk_full", "fatal"):
                    summary.stopped = (
                        f"{out_dir}: the output disk is full ({res['error']})"
                        if status == "disk_full"
                        else f"{out_dir}: {res['error']}"
                    )
                    break
                finished += 1
                if status == "done":
                    summary.done_now += 1
                    light = res.get("light") or [None] * 3
                    rows[item.key] = _row(
                        item,
                        "done",
                        seconds=res["seconds"],
                        photos=res.get("photos"),
                        skin_ita=res.get("skin_ita"),
                        light_r=light[0],
                        light_g=light[1],
                        light_b=light[2],
                    )
                else:
                    summary.failed_now += 1
                    summary.failures.append((item.source, res["error"]))
                    rows[item.key] = _row(item, "failed", error=res["error"], seconds=res["seconds"])
                if progress is not None:
                    progress(finished, len(tasks), summary.failed_now)
                unflushed += 1
                if unflushed >= FLUSH_ITEMS or time.monotonic() - last_flush >= FLUSH_SECONDS:
                    if not _flush(manifest_path, rows, summary):
                        break
                    last_flush, unflushed = time.monotonic(), 0
        except RuntimeError as exc:  # the engine itself failed (Ray)
            summary.stopped = f"{out_dir}: {exc}"
        finally:
            results.close()  # stop the engine: hand out no more work, wait for what is in flight
            _flush(manifest_path, rows, summary)
            summary.seconds = time.perf_counter() - t0
    if summary.stopped:
        left = len(tasks) - finished
        raise BatchStopped(f"{summary.stopped}; {summary.done_now} item(s) done in this run, {left} left: run the same command again to resume", summary)
    return summary


def _flush(path: Path, rows: dict[str, dict[str, Any]], summary: BatchSummary) -> bool:
    """Rewrite the manifest and the counts; False (and ``summary.stopped``) when the disk is full."""
    counts = {s: 0 for s in ("done", "failed", "skipped", "pending")}
    for r in rows.values():
        counts[r.get("status") or "pending"] = counts.get(r.get("status") or "pending", 0) + 1
    summary.counts = counts
    try:
        write_manifest(path, rows)
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        summary.stopped = summary.stopped or f"{path}: the output disk is full ({exc.strerror})"
        return False
    return True


def _emit_if_missing(folder: Path, emit_dir: Path, key: str) -> None:
    from hifialbedo.batch.worker import TRAINING_KINDS, emit_training_files, training_file

    if not all(training_file(emit_dir, kind, key).is_file() for kind in TRAINING_KINDS):
        emit_training_files(folder, emit_dir, key)


def _engine(name: str, config: ReconstructConfig, workers: int | None, ray_address: str | None):
    import os

    if name == "local":
        from hifialbedo.batch.local import LocalEngine

        if ray_address:
            raise ValueError("--ray-address goes with --engine ray")
        return LocalEngine(config, workers=(os.cpu_count() or 1) if workers is None else workers)
    from hifialbedo.batch.ray_engine import RayEngine

    return RayEngine(config, workers=workers, address=ray_address)


def summary_line(summary: BatchSummary) -> str:
    c = summary.counts
    total = sum(c.values())
    parts = [f"{c.get('done', 0)} done ({summary.done_now} in this run, {summary.already_done} already)", f"{c.get('failed', 0)} failed"]
    if c.get("skipped"):
        parts.append(f"{c['skipped']} skipped")
    if c.get("pending"):
        parts.append(f"{c['pending']} pending")
    return f"{', '.join(parts)} of {total} item(s) in {summary.seconds:.1f} s; manifest {summary.manifest}"

