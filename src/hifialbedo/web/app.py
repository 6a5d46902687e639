"""The ASGI app of ``hifialbedo serve`` (Starlette): the page and its JSON API.

API (every answer JSON unless a file; errors are ``{"error": message, ...}``):

- ``GET /``: the page; ``/static/...`` its files (three.js vendored, no CDN).
- ``GET /api/config``: limits, UV sizes, the shipped environment maps (with their lights).
- ``GET /api/envmaps/{name}.png``: a map's thumbnail.
- ``POST /api/jobs``: multipart ``photos`` (one or more files), ``uv_size``, ``reflectance``
  (``on``/``off``); header ``X-Hifialbedo: 1`` (a page of another site cannot send it).
  202 ``{"job": ..., "refused": [{"name", "problem"}]}``: refused files are left out, as the
  CLI skips unusable photos; 400 when no photo is usable, 413 over ``max_upload_bytes``,
  503 when the queue is full.
- ``GET /api/jobs/{id}``: state (queued / running / done / failed), place in the queue,
  stages with their seconds, error, report warnings; ``GET /api/jobs/{id}/events``: the same
  as server-sent events, one per change, until the job has finished.
- ``GET /api/jobs/{id}/scene``: what the viewer needs (file URLs, each kept photo's camera
  pose and estimated light).
- ``GET /api/jobs/{id}/files/{name}`` (a name of the output contract),
  ``/views/{i}/{name}``, ``/photos/{i}`` (the uploaded photo), ``/result.zip``.
- ``DELETE /api/jobs/{id}``: delete a waiting or finished job now.

Only fixed names reach the file system: job ids are looked up in memory, file names are
checked against the output contract's list, photos are saved as ``photo_<i>.<type>``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from hifialbedo import __version__
from hifialbedo.io.errors import InputError
from hifialbedo.web.jobs import (
    RESULT_FILES,
    UV_SIZES,
    VIEW_FILES,
    Job,
    JobOptions,
    JobQueue,
    Limits,
    QueueFull,
    check_photo,
    default_models,
    display_name,
    run_reconstruct,
)
from hifialbedo.web.lights import envmaps, light_dict

STATIC_DIR = Path(__file__).resolve().parent / "static"
CLIENT_HEADER = "x-hifialbedo"
"""Header every changing request must carry: a form on another site cannot set it, so a page
elsewhere cannot make this server work (browsers pre-flight custom headers)."""
MULTIPART_SLACK = 256 * 1024
"""Bytes of multipart framing and form fields allowed on top of ``max_upload_bytes``."""


@dataclass(frozen=True)
class ServeConfig:
    """Options of ``hifialbedo serve``."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    """Worker threads, each running one job at a time with its own loaded models."""
    max_queued: int = 4
    """Jobs that may wait; one more is answered 503."""
    keep_seconds: float = 3600.0
    """A finished job's folder is deleted this long after it finished."""
    limits: Limits = field(default_factory=Limits)
    allowed_hosts: tuple[str, ...] | None = None
    """Host headers accepted; None: those naming the bound address (and localhost), or any
    when bound to all interfaces (against DNS rebinding of a local server)."""

    def hosts(self) -> list[str]:
        if self.allowed_hosts is not None:
            return list(self.allowed_hosts)
        if self.host in ("0.0.0.0", "::", ""):
            return ["*"]
        return sorted({self.host, f"[{self.host}]" if ":" in self.host else self.host, "127.0.0.1", "localhost", "[::1]"})


class BodyTooLarge(Exception):
    pass


class _LimitBody:
    """ASGI middleware: a request body over ``max_bytes`` is refused (413) by its
    Content-Length, or stops the upload with ``BodyTooLarge`` once that many bytes came."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            response = JSONResponse({"error": _too_large(int(length), self.max_bytes - MULTIPART_SLACK)}, status_code=413)
            return await response(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(_too_large(seen, self.max_bytes - MULTIPART_SLACK))
            return message

        return await self.app(scope, limited, send)


def _too_large(size: int, limit: int) -> str:
    return f"the upload is {size / 2**20:.3g} MB, over the limit of {limit / 2**20:.3g} MB (--max-upload-mb)"


def _security_headers(app, script_hashes: list[str]):
    csp = "; ".join(
        [
            "default-src 'self'",
            "script-src 'self' " + " ".join(f"'sha256-{h}'" for h in script_hashes),
            "style-src 'self'",
            "img-src 'self' blob: data:",
            "connect-src 'self' blob: data:",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "form-action 'none'",
        ]
    )
    extra = [
        (b"content-security-policy", csp.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"cross-origin-resource-policy", b"same-origin"),
    ]

    async def wrapped(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        return await app(scope, receive, send_with_headers)

    return wrapped


def _inline_script_hashes(html: str) -> list[str]:
    """sha256 (base64) of each inline script of the page (its import map), for the CSP."""
    return [
        base64.b64encode(hashlib.sha256(m.group(1).encode()).digest()).decode()
        for m in re.finditer(r"<script[^>]*type=\"importmap\"[^>]*>(.*?)</script>", html, re.DOTALL)
    ]


def _error(message: str, status: int, **extra) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def create_app(
    config: ServeConfig = ServeConfig(), *, runner=run_reconstruct, models_factory=default_models, root: Path | None = None
) -> Starlette:
    """The app; its job queue starts and stops with the app's lifespan (``app.state.queue``).

    ``runner`` and ``models_factory`` are the queue's (tests give stand-ins); ``root`` is the
    folder for the job folders (default: a new temporary folder, deleted on shutdown).
    """
    limits = config.limits
    queue = JobQueue(
        workers=config.workers,
        max_queued=config.max_queued,
        keep_seconds=config.keep_seconds,
        root=root,
        runner=runner,
        models_factory=models_factory,
    )
    page = (STATIC_DIR / "index.html").read_text()

    def job_or_404(request: Request) -> Job | JSONResponse:
        job = queue.get(request.path_params["job_id"])
        return job if job is not None else _error("no such job (finished jobs are deleted after a while)", 404)

    async def index(request: Request) -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers={"cache-control": "no-store"})

    async def api_config(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "version": __version__,
                "limits": {
                    "max_upload_bytes": limits.max_upload_bytes,
                    "max_pixels": limits.max_pixels,
                    "max_photos": limits.max_photos,
                },
                "uv_sizes": list(UV_SIZES),
                "default_uv_size": 1024,
                "envmaps": [
                    {"name": e.name, "label": e.label, **e.light, "preview": f"/api/envmaps/{e.name}.png"} for e in envmaps()
                ],
                "queue": queue.stats(),
                "keep_seconds": queue.keep_seconds,
            }
        )

    async def envmap_preview(request: Request) -> Response:
        for e in envmaps():
            if e.name == request.path_params["name"]:
                return Response(e.preview_png, media_type="image/png", headers={"cache-control": "max-age=3600"})
        return _error("no such environment map", 404)

    async def create_job(request: Request) -> JSONResponse:
        if request.headers.get(CLIENT_HEADER) != "1":
            return _error(f"missing header {CLIENT_HEADER}: 1 (send requests from the page or set it)", 403)
        if queue.stats()["waiting"] >= queue.max_queued:  # answer before reading the upload
            return _error("the queue is full; try again in a minute", 503, queue=queue.stats())
        try:
            form = await request.form(max_files=limits.max_photos + 1, max_fields=20)
        except BodyTooLarge as exc:
            return _error(str(exc), 413)
        except Exception as exc:  # noqa: BLE001 -- malformed multipart: python-multipart / Starlette errors
            return _error(f"cannot read the upload ({exc})", 400)
        try:
            return await _create_job(form)
        finally:
            await form.close()

    async def _create_job(form) -> JSONResponse:
        files = [f for f in form.getlist("photos") if isinstance(f, UploadFile)]
        if not files:
            return _error("no photos in the upload (form field 'photos')", 400)
        if len(files) > limits.max_photos:
            return _error(f"{len(files)} photos; at most {limits.max_photos} per job", 400)
        try:
            uv_size = int(str(form.get("uv_size", "1024")))
        except ValueError:
            uv_size = -1
        if uv_size not in UV_SIZES:
            return _error(f"uv_size must be one of {', '.join(map(str, UV_SIZES))}, got {form.get('uv_size')!r}", 400)
        reflectance = str(form.get("reflectance", "on")).lower()
        if reflectance not in ("on", "off", "true", "false", "1", "0"):
            return _error(f"reflectance must be on or off, got {reflectance!r}", 400)
        options = JobOptions(uv_size=uv_size, reflectance=reflectance in ("on", "true", "1"))

        job_id, job_dir = queue.new_job_dir()
        photos, names, types, refused = [], [], [], []
        try:
            for i, upload in enumerate(files, start=1):
                name = display_name(upload.filename, i)
                staged = job_dir / "inputs" / f"upload_{i}"
                await run_in_threadpool(_save, upload, staged)
                try:
                    _kind, suffix, content_type = await run_in_threadpool(check_photo, staged, limits)
                except InputError as exc:
                    refused.append({"name": name, "problem": exc.problem})
                    staged.unlink(missing_ok=True)
                    continue
                path = job_dir / "inputs" / f"photo_{len(photos) + 1}{suffix}"
                staged.rename(path)
                photos.append(path)
                names.append(name)
                types.append(content_type)
            if not photos:
                shutil.rmtree(job_dir, ignore_errors=True)
                return _error("no usable photo in the upload", 400, refused=refused)
            job = Job(job_id, job_dir, photos, names, types, options, refused=refused)
            queue.submit(job)
        except QueueFull as exc:
            shutil.rmtree(job_dir, ignore_errors=True)
            return _error(str(exc), 503, queue=queue.stats())
        except BaseException:
            shutil.rmtree(job_dir, ignore_errors=True)
            raise
        return JSONResponse({"job": queue.describe(job), "refused": refused}, status_code=202)

    async def job_status(request: Request) -> JSONResponse:
        job = job_or_404(request)
        if isinstance(job, JSONResponse):
            return job
        return JSONResponse(queue.describe(job), headers={"cache-control": "no-store"})

    async def job_events(request: Request) -> Response:
        job = job_or_404(request)
        if isinstance(job, JSONResponse):
            return job

        async def stream():
            last = None
            idle = 0.0
            while True:
                state = queue.describe(job)
                key = (job.version, state["position"], state["running"])
                if key != last or idle >= 15.0:
                    last, idle = key, 0.0
                    yield f"event: job\ndata: {json.dumps(state)}\n\n"
                if job.done or queue.closed:
                    return
                if await request.is_disconnected():
                    return
                await asyncio.sleep(0.2)
                idle += 0.2

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"cache-control": "no-store"})

    async def job_scene(request: Request) -> JSONResponse:
        job = job_or_404(request)
        if isinstance(job, JSONResponse):
            return job
        if job.state != "done":
            return _error(f"the job is {job.state}", 409)
        try:
            scene = await run_in_threadpool(_scene, job)
        except InputError as exc:
            return _error(job.display(str(exc)), 500)
        return JSONResponse(scene)

    async def job_file(request: Request) -> Response:
        job = job_or_404(request)
        if isinstance(job, JSONResponse):
            return job
        name = request.path_params["name"]
        if name not in RESULT_FILES:
            return _error("no such result file", 404)
        return _file(job, job.out_dir / name)

    async def job_view(request: Request) -> Response:
        job = job_or_404(request)
        if isinstance(job, JSONResponse):
            return job
        name, index = request.path_params["name"], request.path_params["index"]
        views = _view_names(job)
        if name not in VIEW_FILES or not 0 <= index < len(views):
            return _error("no such view file", 404)
        return _file(job, job.out_dir / "views" / views[index] / name)

    async def job_photo(request: Request) -> Response:
        job = job_or_404(request)
        if isinstance(job, JSONResponse):
            return job
        index = request.path_params["index"]
        if not 0 <= index < len(job.photos):
            return _error("no such photo", 404)
        return FileResponse(job.photos[index], media_type=job.content_types[index], headers={"cache-control": "no-store"})

    async def job_zip(request: Request) -> Response:
        job = job_or_404(request)
        if isinstance(job, JSONResponse):
            return job
        if job.state != "done":
            return _error(f"the job is {job.state}", 409)
        data = await run_in_threadpool(_zip, job)
        return Response(
            data,
            media_type="application/zip",
            headers={"content-disposition": f'attachment; filename="hifialbedo-{job.id[:8]}.zip"', "cache-control": "no-store"},
        )

    async def job_delete(request: Request) -> JSONResponse:
        if request.headers.get(CLIENT_HEADER) != "1":
            return _error(f"missing header {CLIENT_HEADER}: 1", 403)
        job = job_or_404(request)
        if isinstance(job, JSONResponse):
            return job
        if not queue.remove(job.id):
            return _error("the job is running; it can be deleted when it has finished", 409)
        return JSONResponse({"deleted": job.id})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "version": __version__, "queue": queue.stats()})

    @contextlib.asynccontextmanager
    async def lifespan(app):
        queue.start()
        try:
            yield
        finally:
            await run_in_threadpool(queue.close)

    job = "/api/jobs/{job_id:str}"
    routes = [
        Route("/", index),
        Route("/api/health", health),
        Route("/api/config", api_config),
        Route("/api/envmaps/{name:str}.png", envmap_preview),
        Route("/api/jobs", create_job, methods=["POST"]),
        Route(job, job_status),
        Route(job, job_delete, methods=["DELETE"]),
        Route(job + "/events", job_events),
        Route(job + "/scene", job_scene),
        Route(job + "/files/{name:str}", job_file),
        Route(job + "/views/{index:int}/{name:str}", job_view),
        Route(job + "/photos/{index:int}", job_photo),
        Route(job + "/result.zip", job_zip),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(TrustedHostMiddleware, allowed_hosts=config.hosts()),
            Middleware(_LimitBody, max_bytes=limits.max_upload_bytes + MULTIPART_SLACK),
        ],
    )
    app.state.queue = queue
    app.state.config = config
    hashes = _inline_script_hashes(page)
    return _SecuredApp(app, hashes)


class _SecuredApp:
    """The Starlette app behind the security headers (``.state`` and ``.app`` reach it)."""

    def __init__(self, app: Starlette, script_hashes: list[str]) -> None:
        self.app = app
        self.state = app.state
        self._asgi = _security_headers(app, script_hashes)

    async def __call__(self, scope, receive, send):
        await self._asgi(scope, receive, send)


def _save(upload: UploadFile, path: Path) -> None:
    upload.file.seek(0)
    with open(path, "wb") as out:
        shutil.copyfileobj(upload.file, out, 1 << 20)


def _file(job: Job, path: Path) -> Response:
    if job.state != "done":
        return _error(f"the job is {job.state}", 409)
    if not path.is_file():
        return _error("this result has no such file (e.g. specular.png without reflectance)", 404)
    return FileResponse(path, headers={"cache-control": "no-store"})


def _view_names(job: Job) -> list[str]:
    """The views/ folder of each kept photo, in order, from report.json (server-made names)."""
    names = [str(entry.get("view", "")) for entry in (job.report or {}).get("inputs", [])]
    return [n for n in names if re.fullmatch(r"[A-Za-z0-9_.-]+", n) and n not in (".", "..")]


def _photo_index(job: Job, photo: str) -> int | None:
    """Which uploaded photo report.json's ``photo`` is (stored absolute: ``io.contract.stored_path``)."""
    for i, path in enumerate(job.photos):
        if str(path) == photo or os.path.realpath(path) == os.path.realpath(job.out_dir / photo):
            return i
    return None


def _scene(job: Job) -> dict:
    """What the viewer loads: file URLs, and per kept photo its camera pose and light."""
    from hifialbedo.io.reconstruction import parse_pose, read_lights

    base = f"/api/jobs/{job.id}"
    out = job.out_dir
    report = job.report or {}
    lights = read_lights(out / "lighting.json")
    views = []
    for i, (entry, pl) in enumerate(zip(report.get("inputs", []), lights)):
        pose = parse_pose(entry, out / "report.json")
        index = _photo_index(job, str(entry.get("photo")))
        views.append(
            {
                "index": i,
                "name": job.names[index] if index is not None else pl.view,
                "photo": f"{base}/photos/{index}" if index is not None else None,
                "render_view": f"{base}/views/{i}/render_view.png",
                "size": list(pose.size),
                "working_size": list(pose.working_size),
                "camera_pose": {"rotation": pose.rotation.tolist(), "centre": pose.centre.tolist(), "scale": pose.scale},
                "light": light_dict(pl.sh),
            }
        )
    files = {name: f"{base}/files/{name}" for name in RESULT_FILES if (out / name).is_file()}
    return {
        "id": job.id,
        "uv_size": report.get("uv_size"),
        "files": files,
        "has_specular": "specular.png" in files and "roughness.png" in files,
        "views": views,
        "zip": f"{base}/result.zip",
        "warnings": [job.display(w) for w in report.get("warnings", [])],
    }


def _zip(job: Job) -> bytes:
    """The job's output folder as a zip (PNGs and the glb stored, text deflated)."""
    with tempfile.SpooledTemporaryFile(max_size=64 * 2**20) as buf:
        with zipfile.ZipFile(buf, "w") as zf:
            for path in sorted(job.out_dir.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    packed = path.suffix.lower() in (".png", ".glb", ".jpg")
                    zf.write(
                        path,
                        path.relative_to(job.out_dir).as_posix(),
                        compress_type=zipfile.ZIP_STORED if packed else zipfile.ZIP_DEFLATED,
                    )
        buf.seek(0)
        return buf.read()
