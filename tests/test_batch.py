"""``hifialbedo batch``: discovery, the manifest, resume after kills, failures, both engines.

Inputs are made in tmp folders from the two sample photos (as taken, mirrored, cropped), a
corrupt JPEG, an empty file, a grey image without a face, duplicate stems and an empty
folder; reconstruct runs at ``--uv-size 64 --no-reflectance`` (about 0.3 s a photo). Most
runs are in-process (``--workers 0``, where faults can be injected by monkeypatching);
the local process pool runs in a driver subprocess that is SIGKILLed (driver, or one
worker) and resumed. One test runs a local Ray with 2 CPUs and compares with the local
engine; it is skipped only outside CI when Ray is not installed.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from hifialbedo.batch import discover, read_manifest, unique_names
from hifialbedo.batch.manifest import COLUMNS, MARKER_NAME
from hifialbedo.cli import main
from hifialbedo.io.images import read_photo

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
FAST = ["--uv-size", "64", "--no-reflectance", "--quiet"]
CONTRACT = ("albedo.png", "texture.png", "normal.png", "confidence.png", "mesh.obj", "face.glb", "lighting.json", "report.json")


def _write(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))


@pytest.fixture(scope="module")
def pixels() -> dict[str, np.ndarray]:
    return {"grace": read_photo(SAMPLES / "grace_hopper.jpg").pixels, "astro": read_photo(SAMPLES / "astronaut.png").pixels}


@pytest.fixture(scope="module")
def photos_dir(tmp_path_factory, pixels) -> Path:
    """a.jpg + a.png (duplicate stems), sub/g.jpg, sub/h.png, bad.jpg (truncated), zero.jpg
    (0 bytes), grey.png (no face), empty/ (no images), .hidden.jpg (ignored)."""
    root = tmp_path_factory.mktemp("batch_in") / "photos"
    _write(root / "a.jpg", pixels["grace"])
    _write(root / "a.png", pixels["astro"])
    _write(root / "sub" / "g.jpg", pixels["grace"][:, ::-1])
    _write(root / "sub" / "h.png", pixels["astro"][20:, 30:])
    data = (SAMPLES / "grace_hopper.jpg").read_bytes()
    (root / "bad.jpg").write_bytes(data[: len(data) // 3])
    (root / "zero.jpg").write_bytes(b"")
    _write(root / "grey.png", np.full((200, 160, 3), 128, np.uint8))
    (root / "empty").mkdir()
    (root / ".hidden.jpg").write_bytes(data)
    return root


GOOD = {"a.jpg", "a.png", "sub/g", "sub/h"}
BAD = {"bad": "truncated or corrupt", "zero": "empty file", "grey": "no face"}


def run_cli(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["batch", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


def manifest_rows(out_dir: Path) -> dict[str, dict[str, str]]:
    with open(out_dir / "manifest.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == COLUMNS
        return {r["output"]: r for r in reader}


def markers(out_dir: Path) -> dict[str, tuple[int, str]]:
    """key -> (mtime_ns, content) of every done marker under out_dir."""
    return {
        p.parent.relative_to(out_dir).as_posix(): (p.stat().st_mtime_ns, p.read_text()) for p in sorted(out_dir.rglob(MARKER_NAME))
    }


def assert_complete(folder: Path) -> None:
    for name in CONTRACT:
        assert (folder / name).is_file(), f"{folder}/{name} missing"
    assert (folder / MARKER_NAME).is_file()


@pytest.fixture(scope="module")
def local_run(photos_dir, tmp_path_factory) -> Path:
    """The photos folder done in-process once (the reference of the other runs)."""
    out = tmp_path_factory.mktemp("batch_ref") / "out"
    rc = main(["batch", str(photos_dir), "-o", str(out), "--workers", "0", *FAST])
    assert rc == 1  # three bad inputs
    return out


# --------------------------------------------------------------------------- discovery


def test_output_names_are_unique_and_deterministic(tmp_path):
    assert unique_names(["a.jpg", "a.png", "b.jpg"]) == {"a.jpg": "a.jpg", "a.png": "a.png", "b.jpg": "b"}
    root = tmp_path / "in"
    for rel in ("x.jpg", "x/y.jpg", "Dup.JPG", "dup.png", "manifest.csv.png", "manifest.csv/z.jpg"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"not read by discovery")
    items, skipped = discover(root, "photos", reserved=("manifest.csv", "batch.json"))
    keys = {it.source: it.key for it in items}
    assert keys == {
        "x.jpg": "x.jpg",  # beside a folder x/: keeps its extension, so x/ is never nested in a result
        "x/y.jpg": "x/y",
        "Dup.JPG": "Dup.JPG",
        "dup.png": "dup.png",  # stems equal without case
        "manifest.csv.png": "manifest.csv.png",  # its stem is the manifest's name
        "manifest.csv/z.jpg": "manifest.csv_2/z",  # so is this folder's
    }
    assert skipped == []
    assert discover(root, "photos", reserved=("manifest.csv", "batch.json")) == (items, skipped)


# --------------------------------------------------------------------------- photos layout


def test_photos_layout_records_every_item(local_run, photos_dir):
    rows = manifest_rows(local_run)
    assert set(rows) == GOOD | set(BAD)
    for key in GOOD:
        r = rows[key]
        assert r["status"] == "done" and r["error"] == "" and r["photos"] == "1"
        assert float(r["seconds"]) > 0
        assert -90 < float(r["skin_ita"]) < 90
        light = np.array([float(r[c]) for c in ("light_r", "light_g", "light_b")])
        assert np.all(light > 0) and abs(light @ [0.2126, 0.7152, 0.0722] - 1) < 1e-3  # luminance 1
        assert_complete(local_run / key)
        marker = json.loads((local_run / key / MARKER_NAME).read_text())
        assert marker["photos"] == [r["input"]]
    assert rows["a.jpg"]["input"] == "a.jpg" and rows["sub/g"]["input"] == "sub/g.jpg"
    # The mirrored copy of a face has the same skin colour.
    assert abs(float(rows["sub/g"]["skin_ita"]) - float(rows["a.jpg"]["skin_ita"])) < 3
    for key, problem in BAD.items():
        r = rows[key]
        assert r["status"] == "failed"
        assert r["error"].startswith(f"{r['input']}: ") and problem in r["error"], r["error"]
        assert "\n" not in r["error"] and str(photos_dir) not in r["error"]
        assert not (local_run / key).exists()
    # Nothing beside the results: no temporaries, no hidden photo, no empty folder.
    names = sorted(p.name for p in local_run.iterdir())
    assert names == [".batch.lock", "a.jpg", "a.png", "batch.json", "manifest.csv", "sub"]


def test_rerun_resumes_and_retry_failed_redoes_only_failures(local_run, photos_dir, tmp_path, capsys):
    out = tmp_path / "out"
    import shutil

    shutil.copytree(local_run, out)
    before = markers(out)
    assert set(before) == GOOD
    rc, stdout, err = run_cli(capsys, photos_dir, "-o", out, "--workers", "0", *FAST)
    assert rc == 1  # still three failed: the exit code says so
    assert "4 done (0 in this run, 4 already), 3 failed of 7 item(s)" in stdout
    assert markers(out) == before  # nothing done was redone
    rc, stdout, err = run_cli(capsys, photos_dir, "-o", out, "--workers", "0", "--retry-failed", *FAST)
    assert rc == 1 and "4 done (0 in this run, 4 already), 3 failed" in stdout
    assert err.count("hifialbedo: failed: ") == 3  # the failures were tried again, one line each
    assert markers(out) == before
    assert manifest_rows(out) == manifest_rows(local_run) | {k: manifest_rows(out)[k] for k in BAD}


def test_half_written_item_is_redone(local_run, photos_dir, tmp_path, capsys):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(local_run, out)
    # A kill after the folder was renamed into place but before its marker; another in the
    # middle of writing (a temporary folder beside it); a manifest that lags (says pending).
    (out / "a.png" / MARKER_NAME).unlink()
    shutil.rmtree(out / "sub" / "h")
    (out / "sub" / ".h.tmp-abcd1234").mkdir()
    (out / "sub" / ".h.tmp-abcd1234" / "albedo.png").write_bytes(b"partial")
    rows = read_manifest(out / "manifest.csv")
    rows["a.jpg"]["status"] = "pending"
    from hifialbedo.batch.manifest import write_manifest

    write_manifest(out / "manifest.csv", rows)
    before = markers(out)
    rc, stdout, _err = run_cli(capsys, photos_dir, "-o", out, "--workers", "0", *FAST)
    assert rc == 1 and "4 done (2 in this run, 2 already)" in stdout
    after = markers(out)
    assert after["a.jpg"] == before["a.jpg"] and after["sub/g"] == before["sub/g"]  # trusted from their markers
    assert set(after) == GOOD
    assert not (out / "sub" / ".h.tmp-abcd1234").exists()
    for key in ("a.png", "sub/h"):
        assert_complete(out / key)
        assert (out / key / "albedo.png").read_bytes() == (local_run / key / "albedo.png").read_bytes()
    assert {k: r["status"] for k, r in manifest_rows(out).items()} == {k: r["status"] for k, r in manifest_rows(local_run).items()}


def test_folder_checks(photos_dir, tmp_path, capsys):
    rc, _stdout, err = run_cli(capsys, photos_dir, "-o", photos_dir / "out", *FAST)
    assert rc == 2 and err == f"hifialbedo: error: {photos_dir / 'out'}: the output folder must lie outside the input folder {photos_dir}\n"
    rc, _, err = run_cli(capsys, photos_dir, "-o", photos_dir, *FAST)
    assert rc == 2 and err.startswith(f"hifialbedo: error: {photos_dir}: the output folder must lie outside") and err.count("\n") == 1
    rc, _, err = run_cli(capsys, tmp_path / "nope", "-o", tmp_path / "out", *FAST)
    assert rc == 2 and err == f"hifialbedo: error: {tmp_path / 'nope'}: no such folder\n"
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    rc, _, err = run_cli(capsys, photos_dir, "-o", tmp_path / "busy", *FAST)
    assert rc == 2 and "is not empty and is not a batch folder" in err
    empty_in = tmp_path / "nothing"
    (empty_in / "deep").mkdir(parents=True)
    rc, _, err = run_cli(capsys, empty_in, "-o", tmp_path / "o2", *FAST)
    assert rc == 2 and err == f"hifialbedo: error: {empty_in}: no images (.jpg, .jpeg, .png, .webp) found\n"
    rc, _, err = run_cli(capsys, photos_dir, "-o", tmp_path / "o3", "--workers", "0", "--limit", "1", *FAST)
    assert rc == 0 and set(manifest_rows(tmp_path / "o3")) == {"a.jpg"}
    rc, _, err = run_cli(capsys, photos_dir, "-o", tmp_path / "o3", "--uv-size", "128", "--no-reflectance", "--quiet")
    assert rc == 2 and "holds a batch run with other options (reconstruct.uv_size was 64, now 128)" in err


# --------------------------------------------------------------------------- faults injected in-process


def test_disk_full_stops_cleanly_and_resumes(photos_dir, local_run, tmp_path, capsys, monkeypatch):
    from hifialbedo.batch import worker

    real = worker.write_outputs
    calls = []

    def full_after_one(rec, out, **kw):
        calls.append(out)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device", str(out / "albedo.png"))
        return real(rec, out, **kw)

    monkeypatch.setattr(worker, "write_outputs", full_after_one)
    out = tmp_path / "out"
    rc, stdout, err = run_cli(capsys, photos_dir, "-o", out, "--workers", "0", *FAST)
    assert rc == 2 and stdout == ""
    lines = [line for line in err.splitlines() if line.startswith("hifialbedo: error")]
    assert len(lines) == 1 and lines[0].startswith(f"hifialbedo: error: {out}: the output disk is full (")
    assert "No space left on device" in lines[0] and "run the same command again to resume" in lines[0]
    rows = manifest_rows(out)
    assert [k for k, r in rows.items() if r["status"] == "done"] == ["a.jpg"]
    assert all(r["status"] in ("pending", "failed") for k, r in rows.items() if k != "a.jpg")
    assert all(r["status"] == "pending" for k, r in rows.items() if k in GOOD - {"a.jpg"})  # not blamed on the photo
    assert not any(p.name.startswith(".a.png.") for p in out.iterdir())  # the failed write left nothing
    monkeypatch.setattr(worker, "write_outputs", real)
    rc, stdout, err = run_cli(capsys, photos_dir, "-o", out, "--workers", "0", *FAST)
    assert rc == 1 and "4 done (3 in this run, 1 already), 3 failed" in stdout
    assert {k: r["status"] for k, r in manifest_rows(out).items()} == {k: r["status"] for k, r in manifest_rows(local_run).items()}


def test_manifest_write_on_a_full_disk(photos_dir, tmp_path, capsys, monkeypatch):
    from hifialbedo.batch import manifest

    real = manifest.atomic_write_bytes

    def full(path, data):
        if Path(path).name == "manifest.csv":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data)

    monkeypatch.setattr(manifest, "atomic_write_bytes", full)
    rc, _stdout, err = run_cli(capsys, photos_dir, "-o", tmp_path / "out", "--workers", "0", "--limit", "1", *FAST)
    assert rc == 2 and "the output disk is full" in err and "nothing was started" in err and err.count("\n") == 1
    assert not any(p.name.startswith(".manifest.csv.") for p in (tmp_path / "out").iterdir())


def test_an_unexpected_error_is_recorded_and_the_run_goes_on(photos_dir, tmp_path, capsys, monkeypatch):
    from hifialbedo.batch import worker

    real = worker.reconstruct_photos

    def flaky(paths, **kw):
        if Path(paths[0]).name == "a.png":
            raise RuntimeError("something broke\nsecond line")
        return real(paths, **kw)

    monkeypatch.setattr(worker, "reconstruct_photos", flaky)
    rc, stdout, _err = run_cli(capsys, photos_dir, "-o", tmp_path / "out", "--workers", "0", "--limit", "2", *FAST)
    assert rc == 1 and "1 done" in stdout and "1 failed" in stdout
    row = manifest_rows(tmp_path / "out")["a.png"]
    assert row["status"] == "failed" and row["error"] == "a.png: RuntimeError: something broke second line"


# --------------------------------------------------------------------------- identities and training data


@pytest.fixture(scope="module")
def persons_dir(tmp_path_factory, pixels) -> Path:
    """grace/ (3 photos: as taken, mirrored, a corrupt one), astro/nested/ (1 photo), nobody/
    (no face, corrupt), empty/ (no images), loose.jpg (in no person folder)."""
    root = tmp_path_factory.mktemp("batch_persons") / "persons"
    _write(root / "grace" / "1.jpg", pixels["grace"])
    _write(root / "grace" / "2.png", pixels["grace"][:, ::-1])
    (root / "grace" / "3.jpg").write_bytes(b"\xff\xd8 broken")
    _write(root / "astro" / "nested" / "1.png", pixels["astro"])
    _write(root / "nobody" / "grey.png", np.full((200, 160, 3), 128, np.uint8))
    (root / "nobody" / "bad.jpg").write_text("not an image")
    (root / "empty").mkdir()
    _write(root / "loose.jpg", pixels["astro"])
    return root


def test_identities_layout_and_training_data(persons_dir, tmp_path, capsys):
    out, emit = tmp_path / "out", tmp_path / "train_uv"
    rc, stdout, _err = run_cli(capsys, persons_dir, "-o", out, "--layout", "identities", "--workers", "0", "--emit-training-data", emit, *FAST)
    assert rc == 1
    rows = manifest_rows(out)
    status = {k: (r["status"], r["photos"]) for k, r in rows.items()}
    assert status == {
        "astro": ("done", "1"),
        "grace": ("done", "2"),  # the corrupt photo is left out, the two good ones fused
        "nobody": ("failed", ""),
        "empty": ("skipped", ""),
        "loose.jpg": ("skipped", ""),
    }
    assert rows["nobody"]["error"].startswith("nobody: none of its 2 photos has a usable face (first: ")
    assert rows["empty"]["error"] == "empty person folder: no images"
    assert rows["loose.jpg"]["error"] == "not in a person folder (--layout identities)"
    assert_complete(out / "grace")
    report = json.loads((out / "grace" / "report.json").read_text())
    assert len(report["inputs"]) == 2 and any("3.jpg" in w for w in report["warnings"])
    assert json.loads((out / "grace" / MARKER_NAME).read_text())["photos"] == ["grace/1.jpg", "grace/2.png", "grace/3.jpg"]

    # --emit-training-data: uv: folders that hifialbedo train reads.
    from hifialbedo.training.data import UVTextureFolder

    for kind, name in (("albedos", "albedo.png"), ("textures", "texture.png")):
        folder = UVTextureFolder(emit / kind, 64)
        assert [f.relative_to(emit / kind).as_posix() for f in folder.files] == ["astro.png", "grace.png"]
        item = folder[1]["texture"]
        assert item.shape == (3, 64, 64)
        expected = cv2.cvtColor(cv2.imread(str(out / "grace" / name), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        np.testing.assert_allclose(item.numpy().transpose(1, 2, 0), expected / 255.0, atol=1e-6)
    # A person gains a photo: redone. Training data asked for later: copied for the done items.
    _write(persons_dir / "astro" / "2.jpg", cv2.imread(str(persons_dir / "astro" / "nested" / "1.png"))[..., ::-1][:, ::-1])
    try:
        emit2 = tmp_path / "train_uv2"
        before = markers(out)
        rc, stdout, _ = run_cli(capsys, persons_dir, "-o", out, "--layout", "identities", "--workers", "0", "--emit-training-data", emit2, *FAST)
        assert "2 done (1 in this run, 1 already)" in stdout
        after = markers(out)
        assert after["grace"] == before["grace"] and after["astro"] != before["astro"]
        assert manifest_rows(out)["astro"]["photos"] == "2"
        assert sorted(p.relative_to(emit2).as_posix() for p in emit2.rglob("*.png")) == [
            "albedos/astro.png",
            "albedos/grace.png",
            "textures/astro.png",
            "textures/grace.png",
        ]
    finally:
        (persons_dir / "astro" / "2.jpg").unlink()


# --------------------------------------------------------------------------- the local pool, killed


def _driver(photos: Path, out: Path, workers: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "hifialbedo.cli", "batch", str(photos), "-o", str(out), "--workers", str(workers), *FAST]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for_markers(out: Path, n: int, proc: subprocess.Popen, timeout: float = 180) -> None:
    end = time.monotonic() + timeout
    while len(list(out.rglob(MARKER_NAME))) < n:
        assert proc.poll() is None, f"driver ended early: {proc.communicate()}"
        assert time.monotonic() < end, "no progress"
        time.sleep(0.05)


def _cmdline(pid: int) -> bytes:
    """A process's command line; empty once it has exited (a helper process may end between
    listing and reading)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _descendants(pid: int) -> list[int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        found += kids
        frontier += kids
    return found


@pytest.fixture(scope="module")
def many_dir(tmp_path_factory, pixels) -> Path:
    """10 good photos: the samples as taken, mirrored and cropped in 5 ways... and one without a face."""
    root = tmp_path_factory.mktemp("batch_many") / "photos"
    for name, img in pixels.items():
        for i, (dy, dx) in enumerate([(0, 0), (10, 0), (0, 12), (18, 6), (4, 20)]):
            crop = img[dy:, dx:]
            _write(root / f"{name}_{i}.png", crop if i % 2 == 0 else crop[:, ::-1])
    _write(root / "zz_grey.png", np.full((200, 160, 3), 128, np.uint8))
    return root


@pytest.fixture(scope="module")
def many_clean(many_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("batch_many_ref") / "out"
    assert main(["batch", str(many_dir), "-o", str(out), "--workers", "0", *FAST]) == 1
    return out


def _same_results(a: Path, b: Path) -> None:
    ra, rb = manifest_rows(a), manifest_rows(b)
    assert {k: r["status"] for k, r in ra.items()} == {k: r["status"] for k, r in rb.items()}
    for key, r in ra.items():
        assert r["error"] == rb[key]["error"]
        if r["status"] != "done":
            continue
        for c in ("skin_ita", "light_r", "light_g", "light_b"):
            assert abs(float(r[c]) - float(rb[key][c])) < 1e-3, (key, c)
        ia, ib = (cv2.imread(str(x / key / "albedo.png"), cv2.IMREAD_UNCHANGED).astype(int) for x in (a, b))
        assert np.abs(ia - ib).max() <= 1, key


def test_sigkill_of_the_driver_loses_nothing_done(many_dir, many_clean, tmp_path):
    out = tmp_path / "out"
    proc = _driver(many_dir, out, workers=2)
    try:
        _wait_for_markers(out, 2, proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers, mid-item
        proc.communicate()
    done_before = markers(out)
    assert 2 <= len(done_before) < 10
    rc = main(["batch", str(many_dir), "-o", str(out), "--workers", "2", *FAST])
    assert rc == 1
    after = markers(out)
    assert {k: v for k, v in after.items() if k in done_before} == done_before  # nothing done was redone
    assert len(after) == 10
    _same_results(out, many_clean)
    assert not [p.name for p in out.iterdir() if ".tmp-" in p.name or ".old-" in p.name or p.name.endswith(".part")]


def test_sigkill_of_a_worker_loses_nothing(many_dir, many_clean, tmp_path):
    out = tmp_path / "out"
    proc = _driver(many_dir, out, workers=2)
    try:
        _wait_for_markers(out, 1, proc)
        servers = [p for p in _descendants(proc.pid) if b"forkserver" in _cmdline(p)]
        workers = [p for s in servers for p in _descendants(s)]  # the pool's workers are forked by the server
        assert workers, "no worker process found"
        os.kill(workers[0], signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 1, stderr
    assert "10 done (10 in this run, 0 already), 1 failed of 11 item(s)" in stdout, stdout + stderr
    _same_results(out, many_clean)


# --------------------------------------------------------------------------- Ray


def test_ray_engine_gives_the_local_results(many_dir, many_clean, tmp_path, capsys):
    from hifialbedo.batch.ray_engine import ray_available

    if not ray_available():
        if os.environ.get("CI") == "true":
            pytest.fail('Ray Data is not installed in CI: install.sh installs it (pip install -e ".[ray]")')
        pytest.skip("Ray is not installed (pip install -e '.[ray]')")
    out = tmp_path / "out"
    rc, stdout, err = run_cli(capsys, many_dir, "-o", out, "--engine", "ray", "--workers", "2", *FAST)
    assert rc == 1, err
    assert "10 done (10 in this run, 0 already), 1 failed of 11 item(s)" in stdout
    assert "2 Ray actor(s) on a local Ray" in err
    assert "Traceback" not in err and "WARNING" not in err and " E " not in err  # Ray's logs stay off the terminal
    _same_results(out, many_clean)
    # Resume under Ray: nothing to do, so no Ray is started.
    before = markers(out)
    rc, stdout, _ = run_cli(capsys, many_dir, "-o", out, "--engine", "ray", "--workers", "2", *FAST)
    assert rc == 1 and "10 done (0 in this run, 10 already)" in stdout
    assert markers(out) == before
