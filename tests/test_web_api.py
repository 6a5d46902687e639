"""hifialbedo serve, its JSON API through Starlette's in-process client: upload, progress,
results, zip, bad files, size and pixel limits, no face, concurrent jobs, a full queue,
clean-up, and the request checks (client header, Host)."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import zipfile

import cv2
import numpy as np
import pytest

pytest.importorskip("starlette")
from starlette.testclient import TestClient

from hifialbedo.cli import main
from hifialbedo.io.light import read_envmap
from hifialbedo.ops.sh import directional_part, sh_from_equirect
from hifialbedo.web.app import STATIC_DIR, ServeConfig, create_app
from hifialbedo.web.jobs import Limits
from hifialbedo.web.lights import ENVMAP_DIR

from .conftest import REPO, SAMPLES

BASE = "http://127.0.0.1"
H = {"X-Hifialbedo": "1"}
GRACE = (SAMPLES / "grace_hopper.jpg").read_bytes()
ASTRONAUT = (SAMPLES / "astronaut.png").read_bytes()


def _png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    assert ok
    return buf.tobytes()


NO_FACE = _png(np.tile(np.linspace(40, 220, 320, dtype=np.uint8)[None, :, None], (240, 1, 3)))


def _upload(client, files, uv_size="256", reflectance="off", headers=H):
    parts = [("photos", (name, data, "application/octet-stream")) for name, data in files]
    return client.post("/api/jobs", files=parts, data={"uv_size": uv_size, "reflectance": reflectance}, headers=headers)


def _wait(client, job_id, states=("done", "failed"), timeout=120.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in states:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job['state']} after {timeout} s")


# --- a real app (the pipeline), one job shared by the module ---------------------------


@pytest.fixture(scope="module")
def client(models, tmp_path_factory):
    config = ServeConfig(limits=Limits(max_upload_bytes=2 * 2**20, max_pixels=3_000_000), max_queued=4)
    app = create_app(config, models_factory=lambda: models, root=tmp_path_factory.mktemp("serve"))
    with TestClient(app, base_url=BASE) as c:
        yield c


@pytest.fixture(scope="module")
def done_job(client):
    r = _upload(client, [("grace_hopper.jpg", GRACE)])
    assert r.status_code == 202, r.text
    job = _wait(client, r.json()["job"]["id"])
    assert job["state"] == "done", job
    return job


def test_page_static_files_and_no_cdn(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert '<script type="importmap">' in r.text
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "'sha256-" in csp  # the import map, by its hash
    js = client.get("/static/vendor/three/build/three.module.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert "MIT License" in client.get("/static/vendor/three/LICENSE").text
    assert client.get("/static/vendor/three/VERSION").text.strip() == "0.187.0"
    # Nothing the page itself ships points outside this server.
    for name in ("index.html", "app.js", "viewer.js", "style.css"):
        assert not re.search(r"https?://", (STATIC_DIR / name).read_text()), name
    assert client.get("/static/../jobs.py").status_code == 404


def test_config_lists_the_shipped_environment_maps(client):
    config = client.get("/api/config").json()
    assert config["uv_sizes"] == [256, 512, 1024, 2048]
    assert config["limits"]["max_upload_bytes"] == 2 * 2**20
    names = [e["name"] for e in config["envmaps"]]
    assert names == ["studio", "sky", "sunset"]
    for e in config["envmaps"]:
        sh = sh_from_equirect(read_envmap(ENVMAP_DIR / f"{e['name']}.hdr"))
        d, colour = directional_part(sh)
        np.testing.assert_allclose(e["sh"], sh, atol=1e-12)
        np.testing.assert_allclose(e["direction"], d, atol=1e-12)
        np.testing.assert_allclose(e["colour"], colour, atol=1e-12)
        assert client.get(e["preview"]).content[:8] == b"\x89PNG\r\n\x1a\n"
        assert (ENVMAP_DIR / f"{e['name']}.hdr").stat().st_size < 20_000
    assert client.get("/api/envmaps/nope.png").status_code == 404


def test_upload_progress_and_results(client, done_job):
    job_id = done_job["id"]
    assert done_job["photos"] == [{"index": 0, "name": "grace_hopper.jpg"}]
    assert done_job["options"] == {"uv_size": 256, "reflectance": False}
    stages = [s["name"] for s in done_job["stages"]]
    # The pipeline's progress names, with the client's file name (not the server's).
    assert stages[0] == "reading grace_hopper.jpg" and "landmarks grace_hopper.jpg" in stages and stages[-1] == "writing"
    assert all(s["seconds"] >= 0 for s in done_job["stages"])
    assert done_job["seconds"] > 0 and done_job["expires"] > time.time()

    albedo = client.get(f"/api/jobs/{job_id}/files/albedo.png")
    assert albedo.status_code == 200 and albedo.headers["content-type"] == "image/png"
    assert cv2.imdecode(np.frombuffer(albedo.content, np.uint8), cv2.IMREAD_UNCHANGED).shape == (256, 256, 4)
    assert client.get(f"/api/jobs/{job_id}/files/face.glb").content[:4] == b"glTF"
    report = client.get(f"/api/jobs/{job_id}/files/report.json").json()
    assert report["uv_size"] == 256 and len(report["inputs"]) == 1
    view = client.get(f"/api/jobs/{job_id}/views/0/render_view.png")
    assert view.status_code == 200 and view.content[:4] == b"\x89PNG"
    assert client.get(f"/api/jobs/{job_id}/photos/0").content == GRACE
    # Only the contract's names: no traversal, nothing else, and no maps the job did not make.
    for bad in ("specular.png", "passwd", "..%2Freport.json", "%2e%2e%2F%2e%2e%2Fetc%2Fpasswd"):
        assert client.get(f"/api/jobs/{job_id}/files/{bad}").status_code == 404, bad
    assert client.get(f"/api/jobs/{job_id}/views/1/render_view.png").status_code == 404
    assert client.get(f"/api/jobs/{job_id}/views/0/mesh.obj").status_code == 404
    assert client.get(f"/api/jobs/{job_id}/photos/1").status_code == 404
    assert client.get("/api/jobs/0123456789abcdef0123456789abcdef").status_code == 404
    assert client.get("/api/jobs/..%2F..").status_code == 404


def test_scene_gives_each_photo_its_pose_and_light(client, done_job):
    job_id = done_job["id"]
    scene = client.get(f"/api/jobs/{job_id}/scene").json()
    assert set(scene["files"]) >= {"albedo.png", "texture.png", "normal.png", "face.glb", "report.json"}
    assert not scene["has_specular"]
    lighting = client.get(f"/api/jobs/{job_id}/files/lighting.json").json()
    report = client.get(f"/api/jobs/{job_id}/files/report.json").json()
    (view,) = scene["views"]
    sh = np.array(lighting["photos"][0]["sh"])
    np.testing.assert_allclose(view["light"]["sh"], sh)
    np.testing.assert_allclose(view["light"]["direction"], directional_part(sh)[0])
    np.testing.assert_allclose(view["camera_pose"]["rotation"], report["inputs"][0]["camera_pose"]["rotation"])
    assert view["name"] == "grace_hopper.jpg" and view["photo"] == f"/api/jobs/{job_id}/photos/0"
    assert view["size"] == [512, 600]


def test_zip_holds_the_output_folder(client, done_job):
    job_id = done_job["id"]
    r = client.get(f"/api/jobs/{job_id}/result.zip")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert "attachment" in r.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        names = set(zf.namelist())
        assert {"albedo.png", "texture.png", "face.glb", "mesh.obj", "lighting.json", "report.json"} <= names
        assert "views/photo_1/render_view.png" in names
        assert zf.read("albedo.png") == client.get(f"/api/jobs/{job_id}/files/albedo.png").content
        assert zf.testzip() is None


def test_events_of_a_finished_job(client, done_job):
    with client.stream("GET", f"/api/jobs/{done_job['id']}/events") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[5:]) for line in r.iter_lines() if line.startswith("data:")]
    assert events[-1]["state"] == "done"


def test_no_face_gives_the_cli_message(client):
    r = _upload(client, [("blank wall.png", NO_FACE)])
    assert r.status_code == 202
    job = _wait(client, r.json()["job"]["id"])
    assert job["state"] == "failed"
    assert job["error"] == "blank wall.png: no face found"
    # With a good photo beside it, the photo without a face is skipped with a warning, as in the CLI.
    r = _upload(client, [("grace.jpg", GRACE), ("blank wall.png", NO_FACE)])
    job = _wait(client, r.json()["job"]["id"])
    assert job["state"] == "done", job
    assert "skipped blank wall.png: no face found" in job["warnings"]
    assert len(client.get(f"/api/jobs/{job['id']}/scene").json()["views"]) == 1


def test_concurrent_jobs_on_two_workers(tmp_path):
    app = create_app(ServeConfig(workers=2, max_queued=4), root=tmp_path / "serve")
    with TestClient(app, base_url=BASE) as c:
        ids = [
            _upload(c, [(name, data)]).json()["job"]["id"] for name, data in (("grace.jpg", GRACE), ("astronaut.png", ASTRONAUT))
        ]
        jobs = [_wait(c, i) for i in ids]
        assert [j["state"] for j in jobs] == ["done", "done"], jobs
        a, b = (app.state.queue.get(i) for i in ids)
        assert a.started < b.finished and b.started < a.finished  # they ran at the same time
        albedos = [c.get(f"/api/jobs/{i}/files/albedo.png").content for i in ids]
        assert albedos[0] != albedos[1]
    assert not (tmp_path / "serve").exists()  # deleted on shutdown


# --- a stand-in runner: the queue and the upload checks without the pipeline ----------


class Gate:
    """A runner that waits until released, reporting two stages."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls: list[str] = []

    def __call__(self, job, models, progress):
        self.calls.append(job.id)
        progress(f"reading {job.photos[0].name}")
        assert self.release.wait(30)
        progress("writing")
        job.out_dir.mkdir()
        (job.out_dir / "report.json").write_text("{}")
        return {"warnings": [f"{job.photos[0]}: a warning naming the photo"], "inputs": []}


@pytest.fixture
def gated(tmp_path):
    gate = Gate()
    config = ServeConfig(
        max_queued=2, keep_seconds=600, limits=Limits(max_upload_bytes=100 * 1024, max_pixels=3_000_000, max_photos=4)
    )
    app = create_app(config, runner=gate, models_factory=lambda: None, root=tmp_path / "serve")
    with TestClient(app, base_url=BASE) as c:
        yield c, gate, app
        gate.release.set()
    assert not (tmp_path / "serve").exists()  # shutdown deletes every job's folder


def test_queue_positions_full_queue_and_events(gated):
    c, gate, _app = gated
    a = _upload(c, [("a.jpg", GRACE)]).json()["job"]["id"]
    _wait(c, a, states=("running",))
    b = _upload(c, [("b.jpg", GRACE)]).json()["job"]
    d = _upload(c, [("d.jpg", GRACE)]).json()["job"]
    assert (b["state"], b["position"]) == ("queued", 1)
    assert (d["state"], d["position"]) == ("queued", 2)
    full = _upload(c, [("e.jpg", GRACE)])
    assert full.status_code == 503
    assert "queue is full" in full.json()["error"]
    running = c.get(f"/api/jobs/{a}").json()
    assert running["stages"][0]["name"] == "reading a.jpg" and running["stages"][0]["seconds"] >= 0
    threading.Timer(0.5, gate.release.set).start()
    with c.stream("GET", f"/api/jobs/{d['id']}/events") as r:
        events = [json.loads(line[5:]) for line in r.iter_lines() if line.startswith("data:")]
    seen = [(e["state"], e["position"]) for e in events]
    assert seen[0] == ("queued", 2) and seen[-1] == ("done", None)
    job = _wait(c, b["id"])
    assert job["warnings"] == ["b.jpg: a warning naming the photo"]  # server paths never shown
    assert gate.calls == [a, b["id"], d["id"]]  # first come, first served


def test_refused_files_say_why(gated):
    c, gate, _app = gated
    gate.release.set()
    truncated = GRACE[:3000]
    gif = b"GIF89a" + bytes(100)
    r = _upload(c, [("notes.jpg", b"hello, not an image"), ("anim.gif", gif), ("cut.jpg", truncated), ("empty.png", b"")])
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == "no usable photo in the upload"
    problems = {x["name"]: x["problem"] for x in body["refused"]}
    assert (
        problems["notes.jpg"]
        == problems["anim.gif"]
        == "not a JPEG, PNG, WebP, BMP or TIFF image (judged from its bytes, not its name)"
    )
    assert problems["cut.jpg"] == "truncated or corrupt image data"  # read_photo's message, as the CLI's
    assert problems["empty.png"] == "empty file (0 bytes)"
    tiny = _png(np.zeros((10, 10, 3), np.uint8))
    r = _upload(c, [("good.jpg", GRACE), ("tiny.png", tiny)])
    assert r.status_code == 202
    assert r.json()["refused"] == [{"name": "tiny.png", "problem": "image too small (10x10 px)"}]
    assert [p["name"] for p in r.json()["job"]["photos"]] == ["good.jpg"]
    # Five photos where four are allowed; a bad uv_size; no photos at all.
    assert "at most 4" in _upload(c, [("x.jpg", GRACE)] * 5).json()["error"]
    assert "uv_size must be one of" in _upload(c, [("x.jpg", GRACE)], uv_size="333").json()["error"]
    assert c.post("/api/jobs", data={"uv_size": "256"}, headers=H).status_code == 400


def test_size_and_pixel_limits(gated):
    c, gate, _app = gated
    gate.release.set()
    r = _upload(c, [("big.png", ASTRONAUT)])  # 790 KB, the limit is 100 KB
    assert r.status_code == 413
    assert r.json()["error"] == "the upload is 0.755 MB, over the limit of 0.0977 MB (--max-upload-mb)"

    def chunks():  # no Content-Length: the body is counted as it arrives
        for i in range(0, len(ASTRONAUT), 65536):
            yield ASTRONAUT[i : i + 65536]

    r = c.post("/api/jobs", content=chunks(), headers={**H, "content-type": "multipart/form-data; boundary=x"})
    assert r.status_code == 413
    # 2000 x 2000 px of flat colour: small in bytes, over the 3-megapixel limit, refused before decoding.
    flat = _png(np.full((2000, 2000), 128, np.uint8))
    assert len(flat) < 100 * 1024
    r = _upload(c, [("flat.png", flat)])
    assert r.status_code == 400
    assert r.json()["refused"][0]["problem"] == "2000x2000 px is 4.0 megapixels, over the limit of 3"


def test_client_names_are_never_paths(gated):
    c, gate, app = gated
    gate.release.set()
    r = _upload(c, [("../../../evil.jpg", GRACE)])  # control characters: display_name's doctest
    job = r.json()["job"]
    assert job["photos"][0]["name"] == "evil.jpg"
    stored = app.state.queue.get(job["id"])
    assert stored.photos[0] == stored.dir / "inputs" / "photo_1.jpg"
    assert stored.photos[0].read_bytes() == GRACE
    assert not any(p.name.startswith("evil") for p in app.state.queue.root.parent.rglob("*"))


def test_expiry_and_delete(gated):
    c, gate, app = gated
    gate.release.set()
    queue = app.state.queue
    first = _wait(c, _upload(c, [("a.jpg", GRACE)]).json()["job"]["id"])
    second = _wait(c, _upload(c, [("b.jpg", GRACE)]).json()["job"]["id"])
    assert c.delete(f"/api/jobs/{second['id']}").status_code == 403  # no client header
    assert c.delete(f"/api/jobs/{second['id']}", headers=H).json() == {"deleted": second["id"]}
    assert c.get(f"/api/jobs/{second['id']}/files/report.json").status_code == 404
    job = queue.get(first["id"])
    assert queue.sweep(now=job.finished + 599) == []  # kept 600 s
    assert queue.sweep(now=job.finished + 601) == [first["id"]]
    assert not job.dir.exists()
    assert c.get(f"/api/jobs/{first['id']}").status_code == 404


def test_request_checks(gated):
    c, _gate, _app = gated
    r = _upload(c, [("a.jpg", GRACE)], headers={})  # a form posted by another site cannot add the header
    assert r.status_code == 403
    assert c.get("/api/health", headers={"host": "evil.example"}).status_code == 400  # DNS rebinding
    assert c.get("/api/health", headers={"host": "localhost:8000"}).status_code == 200


# --- the command ------------------------------------------------------------------------


def test_serve_command_prints_its_url_and_stops_cleanly(tmp_path):
    import urllib.request

    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""), "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hifialbedo.cli", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()
        match = re.search(r"open (http://127\.0\.0\.1:(\d+)/) in a browser", line)
        assert match, line + proc.stderr.read() if proc.poll() is not None else line
        with urllib.request.urlopen(match.group(1) + "api/health", timeout=10) as r:
            health = json.loads(r.read())
        assert health["ok"] and health["queue"]["workers"] == 1
        assert list(tmp_path.glob("hifialbedo-serve-*"))  # the job root exists while serving
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    assert proc.returncode == 0, proc.stderr.read()
    assert not list(tmp_path.glob("hifialbedo-serve-*"))  # and is deleted on the way out


def test_serve_argument_errors(capsys):
    assert main(["serve", "--workers", "0"]) == 2
    assert "--workers must be between 1 and 64" in capsys.readouterr().err
    assert main(["serve", "--max-upload-mb", "-1"]) == 2
    assert main(["serve", "--port", "70000"]) == 2
