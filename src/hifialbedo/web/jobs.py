"""Jobs of ``hifialbedo serve``: uploaded photos checked, a bounded queue served by worker
threads that run the pipeline's ``reconstruct``, and each job's temporary folder.

A job lives in ``ROOT/<job id>/``: ``inputs/photo_<i>.<ext>`` (server-chosen names: the
client's file name is kept only for display) and ``out/`` (the output contract of
``reconstruct``, written atomically). Finished jobs are deleted ``keep_seconds`` after they
finish, and the whole root on ``close()``.
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
import tempfile
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from hifialbedo.io.errors import InputError

log = logging.getLogger("hifialbedo.web")

UV_SIZES = (256, 512, 1024, 2048)
"""UV sizes a job may ask for (``reconstruct --uv-size``)."""

RESULT_FILES = (
    "albedo.png",
    "texture.png",
    "confidence.png",
    "normal.png",
    "normal_coarse.png",
    "specular.png",
    "roughness.png",
    "lighting.json",
    "mesh.obj",
    "mesh.mtl",
    "face.glb",
    "report.json",
)
"""The output contract's top-level files (README, "Outputs"): the only names served."""
VIEW_FILES = ("albedo_view.png", "shading_view.png", "render_view.png")
"""The files of each ``views/<photo>/`` folder."""

_IMAGE_TYPES = (  # (name, suffix, content type) by magic bytes
    ("JPEG", ".jpg", "image/jpeg"),
    ("PNG", ".png", "image/png"),
    ("WebP", ".webp", "image/webp"),
    ("BMP", ".bmp", "image/bmp"),
    ("TIFF", ".tif", "image/tiff"),
)
ACCEPTED_TYPES = ", ".join(t[0] for t in _IMAGE_TYPES[:-1]) + " or " + _IMAGE_TYPES[-1][0]
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")


def sniff_image(head: bytes) -> tuple[str, str, str] | None:
    """``(type name, suffix, content type)`` of an image from its first bytes (12 or more),
    or None when they are not one of the accepted types (JPEG, PNG, WebP, BMP, TIFF).

    >>> sniff_image(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(8))[0]
    'PNG'
    >>> sniff_image(b"GIF89a" + bytes(8)) is None
    True
    """
    if head.startswith(b"\xff\xd8\xff"):
        return _IMAGE_TYPES[0]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return _IMAGE_TYPES[1]
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _IMAGE_TYPES[2]
    if head[:2] == b"BM" and len(head) >= 14:
        return _IMAGE_TYPES[3]
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return _IMAGE_TYPES[4]
    return None


def display_name(client_name: str | None, index: int) -> str:
    """A client-given file name made safe to show (never used as a path): its last path
    component, control characters dropped, at most 80 characters; ``photo <index>`` if empty.

    >>> display_name("../../etc/pass\\x00wd.jpg", 1)
    'passwd.jpg'
    """
    name = (client_name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    if len(name) > 80:
        name = name[:38] + "..." + name[-39:]
    return name or f"photo {index}"


@dataclass(frozen=True)
class Limits:
    """What an upload may be."""

    max_upload_bytes: int = 20 * 1024 * 1024
    """All photos of one upload together (``--max-upload-mb``)."""
    max_pixels: int = 40_000_000
    """Pixels of one photo (width x height, read from its header before it is decoded)."""
    max_photos: int = 12
    """Photos per job."""


def check_photo(path: Path, limits: Limits) -> tuple[str, str, str]:
    """Check a saved upload: its type from its bytes, its pixel count from its header, then a
    full decode by the CLI's reader (``io.images.read_photo``). Returns ``(type name, suffix,
    content type)``; raises ``InputError`` whose ``problem`` is the message to show."""
    from hifialbedo.io.images import read_photo

    with open(path, "rb") as f:
        head = f.read(16)
    if not head:
        raise InputError(path, "empty file (0 bytes)")
    kind = sniff_image(head)
    if kind is None:
        raise InputError(path, f"not a {ACCEPTED_TYPES} image (judged from its bytes, not its name)")
    try:
        with Image.open(path) as img:  # reads the header only
            w, h = img.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise InputError(path, f"cannot read the {kind[0]} header (truncated or corrupt image data)") from None
    if w * h > limits.max_pixels:
        raise InputError(path, f"{w}x{h} px is {w * h / 1e6:.1f} megapixels, over the limit of {limits.max_pixels / 1e6:.0f}")
    read_photo(path)  # the CLI's checks and messages: truncated, too small, undecodable...
    return kind


@dataclass(frozen=True)
class JobOptions:
    """The reconstruct options a job may set."""

    uv_size: int = 1024
    reflectance: bool = True
    """False: ``reconstruct --no-reflectance`` (no specular fit, no detail normals)."""

    def config(self):
        """The pipeline's ``ReconstructConfig`` for these options (as the CLI builds it)."""
        from hifialbedo.pipeline import ReconstructConfig

        return ReconstructConfig(
            uv_size=self.uv_size, **({} if self.reflectance else {"specular": None, "detail_normals": False})
        )


@dataclass
class Job:
    """One reconstruction request and its state; changed only under the queue's lock."""

    id: str
    dir: Path
    photos: list[Path]
    names: list[str]  # display names, one per photo
    content_types: list[str]
    options: JobOptions
    refused: list[dict] = field(default_factory=list)  # {"name", "problem"} of files left out at upload
    state: str = "queued"  # queued | running | done | failed
    stages: list[dict] = field(default_factory=list)  # {"name", "seconds"}; the last one is current while running
    error: str | None = None
    report: dict | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    version: int = 0  # bumped on every change (for the event stream)

    @property
    def out_dir(self) -> Path:
        return self.dir / "out"

    @property
    def done(self) -> bool:
        return self.state in ("done", "failed")

    def display(self, text: str) -> str:
        """A pipeline message with the server's paths and file names of the photos replaced by
        the client's names (the CLI's messages, naming the files as the user knows them)."""
        for path, name in zip(self.photos, self.names):
            text = text.replace(str(path), name)
        for path, name in zip(self.photos, self.names):
            text = re.sub(rf"(?<![\w.-]){re.escape(path.name)}(?![\w.-])", name, text)
        return text.replace(str(self.dir) + "/", "")


class QueueFull(Exception):
    """The queue holds as many waiting jobs as it may."""


Runner = Callable[[Job, object, Callable[[str], None]], dict]
"""``runner(job, models, progress) -> report``: runs one job (raises ``InputError`` or
``ValueError`` for a job that cannot be done, with the message to show)."""


def run_reconstruct(job: Job, models, progress: Callable[[str], None]) -> dict:
    """The default runner: the pipeline's ``reconstruct`` on the job's photos, as the CLI calls it."""
    from hifialbedo.pipeline import reconstruct

    return reconstruct(job.photos, job.out_dir, config=job.options.config(), models=models, progress=progress)


def default_models():
    """One set of loaded models per worker thread (MediaPipe's graph is not shared across threads)."""
    from hifialbedo.pipeline import Models

    return Models()


class JobQueue:
    """A bounded queue of jobs served by ``workers`` threads, each with its own loaded models.

    ``submit`` raises ``QueueFull`` when ``max_queued`` jobs already wait (running ones do not
    count). Finished jobs are deleted ``keep_seconds`` after they finish (a sweeper thread), and
    everything on ``close()``.
    """

    def __init__(
        self,
        *,
        workers: int = 1,
        max_queued: int = 4,
        keep_seconds: float = 3600.0,
        root: Path | None = None,
        runner: Runner = run_reconstruct,
        models_factory: Callable[[], object] = default_models,
        warm_up: bool = True,
    ) -> None:
        if workers < 1:
            raise ValueError(f"--workers must be >= 1, got {workers}")
        if max_queued < 1:
            raise ValueError(f"the queue must hold at least 1 job, got {max_queued}")
        if not keep_seconds > 0:
            raise ValueError(f"jobs must be kept a positive time, got {keep_seconds} s")
        self.workers = workers
        self.max_queued = max_queued
        self.keep_seconds = keep_seconds
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="hifialbedo-serve-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self._runner = runner
        self._models_factory = models_factory
        self._warm_up = warm_up
        self._cond = threading.Condition()
        self._waiting: deque[Job] = deque()
        self._jobs: dict[str, Job] = {}
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._running = 0

    # --- jobs ---------------------------------------------------------------------------

    def new_job_dir(self) -> tuple[str, Path]:
        """A fresh job id (random, 32 hex digits) and its empty folder with ``inputs/``."""
        job_id = secrets.token_hex(16)
        job_dir = self.root / job_id
        (job_dir / "inputs").mkdir(parents=True)
        return job_id, job_dir

    def submit(self, job: Job) -> None:
        """Queue a job (``QueueFull`` when the queue is full; the caller deletes its folder)."""
        with self._cond:
            if self._closed:
                raise QueueFull("the server is shutting down")
            if len(self._waiting) >= self.max_queued:
                raise QueueFull(
                    f"the queue is full ({len(self._waiting)} job(s) waiting, {self._running} running); try again in a minute"
                )
            self._jobs[job.id] = job
            self._waiting.append(job)
            self._cond.notify_all()

    def get(self, job_id: str) -> Job | None:
        if not _JOB_ID.match(job_id or ""):
            return None
        with self._cond:
            return self._jobs.get(job_id)

    def position(self, job: Job) -> int | None:
        """1-based place of a waiting job in the queue (1 = next), None when not waiting."""
        with self._cond:
            try:
                return self._waiting.index(job) + 1
            except ValueError:
                return None

    def describe(self, job: Job) -> dict:
        """The job as the API shows it."""
        with self._cond:
            position = self._waiting.index(job) + 1 if job in self._waiting else None
            now = time.time()
            stages = [dict(s) for s in job.stages]
            if job.state == "running" and stages:
                stages[-1]["seconds"] = round(now - stages[-1].pop("_t0", now), 2)
            for s in stages:
                s.pop("_t0", None)
            report = job.report or {}
            return {
                "id": job.id,
                "state": job.state,
                "position": position,
                "running": self._running,
                "photos": [{"index": i, "name": n} for i, n in enumerate(job.names)],
                "refused": job.refused,
                "options": {"uv_size": job.options.uv_size, "reflectance": job.options.reflectance},
                "stages": stages,
                "error": job.error,
                "warnings": [job.display(w) for w in report.get("warnings", [])],
                "seconds": round((job.finished or now) - job.started, 2) if job.started else None,
                "created": job.created,
                "expires": job.finished + self.keep_seconds if job.finished else None,
            }

    def remove(self, job_id: str) -> bool:
        """Delete a waiting or finished job and its folder (False: unknown or running)."""
        with self._cond:
            job = self._jobs.get(job_id)
            if job is None or job.state == "running":
                return False
            if job in self._waiting:
                self._waiting.remove(job)
            del self._jobs[job_id]
        shutil.rmtree(job.dir, ignore_errors=True)
        return True

    def sweep(self, now: float | None = None) -> list[str]:
        """Delete the jobs that finished more than ``keep_seconds`` ago; their ids."""
        now = time.time() if now is None else now
        with self._cond:
            old = [j for j in self._jobs.values() if j.finished is not None and now - j.finished > self.keep_seconds]
            for job in old:
                del self._jobs[job.id]
        for job in old:
            shutil.rmtree(job.dir, ignore_errors=True)
        return [j.id for j in old]

    @property
    def closed(self) -> bool:
        return self._closed

    def stats(self) -> dict:
        with self._cond:
            return {
                "waiting": len(self._waiting),
                "running": self._running,
                "max_queued": self.max_queued,
                "workers": self.workers,
            }

    # --- threads ------------------------------------------------------------------------

    def start(self) -> None:
        for i in range(self.workers):
            t = threading.Thread(target=self._work, name=f"hifialbedo-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        sweeper = threading.Thread(target=self._sweep_loop, name="hifialbedo-sweeper", daemon=True)
        sweeper.start()
        self._threads.append(sweeper)

    def close(self, timeout: float = 2.0) -> None:
        """Stop taking jobs, let the workers finish what they run (up to ``timeout`` s in
        all), and delete every job's folder (the whole root)."""
        with self._cond:
            self._closed = True
            self._waiting.clear()
            self._cond.notify_all()
        end = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, end - time.monotonic()))
        shutil.rmtree(self.root, ignore_errors=True)

    def _sweep_loop(self) -> None:
        period = min(30.0, max(0.05, self.keep_seconds / 4))
        with self._cond:
            while not self._closed:
                self._cond.wait(period)
                if self._closed:
                    break
                self._cond.release()
                try:
                    self.sweep()
                finally:
                    self._cond.acquire()

    def _work(self) -> None:
        models = self._models_factory()
        if self._warm_up and hasattr(models, "detector"):
            try:
                _ = models.detector  # load MediaPipe now, not in the first job
            except Exception:
                log.exception("loading the landmark detector failed")
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job = self._waiting.popleft()
                job.state = "running"
                job.started = time.time()
                job.version += 1
                self._running += 1
                self._cond.notify_all()
            try:
                report = self._runner(job, models, lambda stage, job=job: self._progress(job, stage))
                error = None
            except (InputError, ValueError) as exc:
                report, error = None, job.display(str(exc))
            except Exception as exc:
                log.exception("job %s failed", job.id)
                report, error = None, job.display(f"internal error: {type(exc).__name__}: {exc}")
            with self._cond:
                now = time.time()
                if job.stages:
                    last = job.stages[-1]
                    last["seconds"] = round(now - last.pop("_t0", now), 2)
                job.report = report
                job.error = error
                job.state = "failed" if error else "done"
                job.finished = now
                job.version += 1
                self._running -= 1
                self._cond.notify_all()

    def _progress(self, job: Job, stage: str) -> None:
        with self._cond:
            now = time.time()
            if job.stages:
                last = job.stages[-1]
                last["seconds"] = round(now - last.pop("_t0", now), 2)
            job.stages.append({"name": job.display(stage), "_t0": now})
            job.version += 1
