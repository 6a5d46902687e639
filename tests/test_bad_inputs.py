"""The bad-input contract of ``hifialbedo reconstruct``.

Bad input -> exactly one line ``hifialbedo: error: <path>: <problem>`` on stderr, exit code
2, and no OUT_DIR (nor a ``.OUT.tmp-*`` / ``.OUT.old-*`` leftover beside it). Inputs that
Pillow/OpenCV can convert (grayscale, 16-bit, CMYK, palette, alpha, EXIF rotation, very
large) succeed and say what was converted in report.json.

Every bad file is generated in ``tmp_path`` at test time; the CLI runs in-process.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from hifialbedo.cli import main

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
GRACE = SAMPLES / "grace_hopper.jpg"  # 512x600 JPEG, one face
ASTRONAUT = SAMPLES / "astronaut.png"  # 512x512 RGB PNG, one face
GRACE_SIZE = (512, 600)  # (width, height), upright
FAST = ["--uv-size", "128", "--quiet"]
OUTPUTS = ("albedo.png", "texture.png", "normal.png", "confidence.png", "mesh.obj", "mesh.mtl", "face.glb", "lighting.json", "report.json")


# ----------------------------------------------------------------------------- helpers


@pytest.fixture(scope="session")
def grace_img() -> Image.Image:
    with Image.open(GRACE) as img:
        return img.convert("RGB")


@pytest.fixture
def run_cli(capsys):
    """``run_cli(*args) -> (exit code, stdout, stderr)``: the CLI in-process, fast settings."""

    def run(*args: str | Path) -> tuple[int, str, str]:
        capsys.readouterr()  # drop anything printed before
        rc = main(["reconstruct", *map(str, args), *FAST])
        out, err = capsys.readouterr()
        return rc, out, err

    return run


@pytest.fixture
def reconstruct_ok(run_cli, tmp_path):
    """``reconstruct_ok(*photos, out=None, extra=()) -> (report, stderr, out_dir)``.

    Runs the CLI, asserts success (exit 0, every output written, nothing left beside the
    folder) and returns the parsed report.json.
    """

    def run(*photos: str | Path, out: Path | None = None, extra: tuple[str, ...] = ()) -> tuple[dict, str, Path]:
        out = out or tmp_path / "out"
        rc, stdout, err = run_cli(*photos, "-o", out, *extra)
        assert rc == 0, f"exit {rc}, stderr:\n{err}"
        assert "hifialbedo: error" not in err
        assert stdout.startswith(f"wrote {out}/")
        for name in OUTPUTS:
            assert (out / name).is_file(), f"{name} missing"
        assert_no_leftovers(out)
        report = json.loads((out / "report.json").read_text())
        assert report["uv_size"] == 128
        with Image.open(out / "albedo.png") as albedo:
            assert albedo.size == (128, 128)
        return report, err, out

    return run


def assert_no_leftovers(out_dir: Path) -> None:
    parent = out_dir.parent
    if parent.is_dir():
        leftovers = sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{out_dir.name}."))
        assert leftovers == [], f"temporary folders left beside {out_dir}: {leftovers}"


def assert_clean_failure(rc: int, stdout: str, stderr: str, path: Path, problem: str, out_dir: Path) -> None:
    """Exit 2, one line ``hifialbedo: error: <path>: <problem>``, no OUT_DIR, no leftovers."""
    assert rc == 2, f"exit {rc}, stderr:\n{stderr}"
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    prefix = f"hifialbedo: error: {path}: "
    assert lines[0].startswith(prefix), f"{lines[0]!r} does not start with {prefix!r}"
    assert re.search(problem, lines[0][len(prefix) :], re.IGNORECASE), f"{lines[0]!r} does not match {problem!r}"
    assert "Traceback" not in stderr
    assert stdout == ""
    assert not out_dir.exists(), f"{out_dir} was created by a failed run"
    assert_no_leftovers(out_dir)


def conversions(report: dict) -> str:
    assert len(report["inputs"]) == 1
    return " | ".join(report["inputs"][0]["conversions"])


# ----------------------------------------------------------------------------- unreadable photos


def _missing(tmp_path: Path, grace_img: Image.Image) -> Path:
    return tmp_path / "missing.jpg"


def _text(tmp_path: Path, grace_img: Image.Image) -> Path:
    p = tmp_path / "x.jpg"
    p.write_text("this is not a JPEG, just some text\n")
    return p


def _empty(tmp_path: Path, grace_img: Image.Image) -> Path:
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    return p


def _truncated(tmp_path: Path, grace_img: Image.Image) -> Path:
    data = GRACE.read_bytes()
    p = tmp_path / "truncated.jpg"
    p.write_bytes(data[: len(data) // 2])
    return p


def _directory(tmp_path: Path, grace_img: Image.Image) -> Path:
    p = tmp_path / "folder.jpg"
    p.mkdir()
    return p


def _no_face_gradient(tmp_path: Path, grace_img: Image.Image) -> Path:
    ramp = np.linspace(0, 255, 256, dtype=np.float64)
    rgb = np.stack([np.add.outer(ramp, ramp) / 2, np.tile(ramp, (256, 1)), np.tile(ramp[:, None], (1, 256))], axis=2)
    p = tmp_path / "gradient.png"
    Image.fromarray(rgb.astype(np.uint8)).save(p)
    return p


def _no_face_noise(tmp_path: Path, grace_img: Image.Image) -> Path:
    noise = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    p = tmp_path / "noise.png"
    Image.fromarray(noise).save(p)
    return p


def _face_too_small(tmp_path: Path, grace_img: Image.Image) -> Path:
    # Grace Hopper 100 px wide -> a face ~40 px across (< 64 px). MediaPipe's detector does
    # find it on a 256x256 canvas (on a 600x600 one it finds nothing at all).
    small = grace_img.resize((100, round(100 * grace_img.height / grace_img.width)), Image.LANCZOS)
    canvas = Image.new("RGB", (256, 256), (128, 128, 128))
    canvas.paste(small, ((256 - small.width) // 2, (256 - small.height) // 2))
    p = tmp_path / "tiny_face.png"
    canvas.save(p)
    return p


def _face_too_small_600(tmp_path: Path, grace_img: Image.Image) -> Path:
    small = grace_img.resize((100, round(100 * grace_img.height / grace_img.width)), Image.LANCZOS)
    canvas = Image.new("RGB", (600, 600), (128, 128, 128))
    canvas.paste(small, ((600 - small.width) // 2, (600 - small.height) // 2))
    p = tmp_path / "tiny_face_600.png"
    canvas.save(p)
    return p


def _tiny_image(tmp_path: Path, grace_img: Image.Image) -> Path:
    p = tmp_path / "tiny.png"
    grace_img.resize((8, 10)).save(p)
    return p


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        pytest.param(_missing, r"^no such file$", id="missing"),
        pytest.param(_text, r"^not an image", id="text-named-jpg"),
        pytest.param(_empty, r"^empty file", id="zero-bytes"),
        pytest.param(_truncated, r"^truncated", id="truncated-jpeg"),
        pytest.param(_directory, r"is a directory", id="directory"),
        pytest.param(_tiny_image, r"^image too small \(8x10 px\)$", id="8x10-image"),
        pytest.param(_no_face_gradient, r"^no face found$", id="no-face-gradient"),
        pytest.param(_no_face_noise, r"^no face found$", id="no-face-noise"),
        pytest.param(_face_too_small, r"^face too small \(\d+ px across; at least 64 px needed\)$", id="face-too-small"),
        pytest.param(_face_too_small_600, r"^(face too small|no face found)", id="face-too-small-600-canvas"),
    ],
)
def test_bad_photo_fails_cleanly(make, problem, tmp_path, grace_img, run_cli):
    photo = make(tmp_path, grace_img)
    out = tmp_path / "out"
    rc, stdout, err = run_cli(photo, "-o", out)
    assert_clean_failure(rc, stdout, err, photo, problem, out)


def test_face_too_small_reports_size_under_64(tmp_path, grace_img, run_cli):
    photo = _face_too_small(tmp_path, grace_img)
    rc, _, err = run_cli(photo, "-o", tmp_path / "out")
    assert rc == 2
    size = int(re.search(r"face too small \((\d+) px across", err).group(1))
    assert 20 <= size < 64


# ----------------------------------------------------------------------------- convertible photos


def _gray_jpeg(tmp_path: Path, grace_img: Image.Image) -> Path:
    p = tmp_path / "gray.jpg"
    grace_img.convert("L").save(p, quality=95)
    return p


def _gray_png(tmp_path: Path, grace_img: Image.Image) -> Path:
    p = tmp_path / "gray.png"
    grace_img.convert("L").save(p)
    return p


def _gray16_png(tmp_path: Path, grace_img: Image.Image) -> Path:
    g16 = np.asarray(grace_img.convert("L"), dtype=np.uint16) * 257
    img = Image.fromarray(g16)
    assert img.mode == "I;16"
    p = tmp_path / "gray16.png"
    img.save(p)
    return p


def _rgb16_png(tmp_path: Path, grace_img: Image.Image) -> Path:
    bgr16 = np.asarray(grace_img, dtype=np.uint16)[..., ::-1] * 257
    p = tmp_path / "rgb16.png"
    assert cv2.imwrite(str(p), np.ascontiguousarray(bgr16))
    assert cv2.imread(str(p), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    return p


def _cmyk_jpeg(tmp_path: Path, grace_img: Image.Image) -> Path:
    p = tmp_path / "cmyk.jpg"
    grace_img.convert("CMYK").save(p, quality=95)
    with Image.open(p) as img:
        assert img.mode == "CMYK"
    return p


def _palette_png(tmp_path: Path, grace_img: Image.Image) -> Path:
    p = tmp_path / "palette.png"
    grace_img.convert("P", palette=Image.Palette.ADAPTIVE, colors=256).save(p)
    with Image.open(p) as img:
        assert img.mode == "P" and "transparency" not in img.info
    return p


def _rgba_png(tmp_path: Path, grace_img: Image.Image) -> Path:
    # Opaque face, transparent 40 px border (composited over white).
    alpha = np.zeros((grace_img.height, grace_img.width), np.uint8)
    alpha[40:-40, 40:-40] = 255
    rgba = np.dstack([np.asarray(grace_img), alpha])
    p = tmp_path / "rgba.png"
    Image.fromarray(rgba, "RGBA").save(p)
    return p


@pytest.mark.parametrize(
    ("make", "note"),
    [
        pytest.param(_gray_jpeg, r"\bL image converted to RGB", id="grayscale-jpeg"),
        pytest.param(_gray_png, r"\bL image converted to RGB", id="grayscale-png"),
        pytest.param(_gray16_png, r"16-bit grayscale converted to 8-bit RGB", id="gray16-png"),
        pytest.param(_rgb16_png, r"16-bit PNG converted to 8-bit", id="rgb16-png"),
        pytest.param(_cmyk_jpeg, r"CMYK image converted to RGB", id="cmyk-jpeg"),
        pytest.param(_palette_png, r"\bP image converted to RGB", id="palette-png"),
        pytest.param(_rgba_png, r"RGBA image: alpha composited over white", id="rgba-png"),
    ],
)
def test_convertible_photo_succeeds(make, note, tmp_path, grace_img, reconstruct_ok):
    photo = make(tmp_path, grace_img)
    report, _err, out = reconstruct_ok(photo)
    assert re.search(note, conversions(report)), report["inputs"][0]["conversions"]
    assert report["inputs"][0]["size"] == list(GRACE_SIZE)
    assert report["inputs"][0]["landmarks"] == "mediapipe"
    with Image.open(out / "views" / photo.stem / "albedo_view.png") as view:
        assert view.size == GRACE_SIZE
        assert view.mode == "RGBA"


def test_plain_rgb_png_has_no_conversions(reconstruct_ok):
    report, err, out = reconstruct_ok(ASTRONAUT)
    assert report["inputs"][0]["conversions"] == []
    assert err == ""
    with Image.open(out / "views" / "astronaut" / "albedo_view.png") as view:
        assert view.size == (512, 512)


def test_exif_rotated_jpeg_is_turned_upright(tmp_path, grace_img, reconstruct_ok):
    # Stored pixels are the upright photo turned 90 degrees counter-clockwise (600x512);
    # Orientation 6 says "rotate 90 degrees clockwise to display", which restores 512x600.
    stored = grace_img.transpose(Image.Transpose.ROTATE_90)
    assert stored.size == (600, 512)
    exif = Image.Exif()
    exif[0x0112] = 6
    photo = tmp_path / "rotated.jpg"
    stored.save(photo, quality=95, exif=exif.tobytes())
    with Image.open(photo) as img:
        assert img.size == (600, 512) and img.getexif()[0x0112] == 6

    report, _, out = reconstruct_ok(photo)
    assert re.search(r"EXIF orientation 6 applied", conversions(report))
    assert report["inputs"][0]["size"] == list(GRACE_SIZE)
    with Image.open(out / "views" / "rotated" / "albedo_view.png") as view:
        assert view.size == GRACE_SIZE  # upright, not 600x512
        alpha = np.asarray(view)[..., 3]
    # The face mask lies where the face is in the upright photo: its upper-middle part.
    ys, xs = np.nonzero(alpha)
    assert len(ys) > 5000
    assert 0.25 * GRACE_SIZE[0] < xs.mean() < 0.75 * GRACE_SIZE[0]
    assert ys.mean() < 0.6 * GRACE_SIZE[1]


def test_very_large_photo_is_downscaled_with_warning(tmp_path, grace_img, reconstruct_ok):
    big_size = (round(5000 * grace_img.width / grace_img.height), 5000)  # (4267, 5000)
    photo = tmp_path / "big.jpg"
    grace_img.resize(big_size, Image.BILINEAR).save(photo, quality=85)
    report, err, out = reconstruct_ok(photo)
    warning_lines = [line for line in err.splitlines() if line.startswith("hifialbedo: warning: ")]
    assert len(warning_lines) == 1, err
    assert f"{photo}: {big_size[0]}x{big_size[1]} px is large" in warning_lines[0]
    assert "working on a 3496x4096 copy" in warning_lines[0]
    entry = report["inputs"][0]
    assert entry["size"] == list(big_size)
    assert entry["working_size"] == [3496, 4096]
    assert "is large" in conversions(report)
    with Image.open(out / "views" / "big" / "albedo_view.png") as view:
        assert view.size == big_size


# ----------------------------------------------------------------------------- OUT_DIR


def test_unwritable_parent_fails_cleanly(tmp_path, run_cli, monkeypatch):
    parent = tmp_path / "locked"
    parent.mkdir()
    out = parent / "out"
    os.chmod(parent, 0o500)
    # chmod does not stop root (CI runs as root): the permission check sees the folder as
    # this mode makes it for anyone else.
    real_access = os.access

    def access(path, mode, *args, **kwargs):
        if Path(path).resolve() == parent.resolve() and mode & os.W_OK:
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)
    try:
        rc, stdout, err = run_cli(GRACE, "-o", out)
        assert_clean_failure(rc, stdout, err, out, r"cannot write in .*permission denied", out)
        assert list(parent.iterdir()) == []
    finally:
        os.chmod(parent, 0o700)


def test_out_dir_under_a_file_fails_cleanly(tmp_path, run_cli):
    afile = tmp_path / "afile"
    afile.write_text("a regular file, not a folder\n")
    out = afile / "out"
    rc, stdout, err = run_cli(GRACE, "-o", out)
    assert_clean_failure(rc, stdout, err, out, rf"{re.escape(str(afile))} is not a directory", out)
    assert afile.read_text() == "a regular file, not a folder\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_out_dir_is_a_file_fails_cleanly(tmp_path, run_cli):
    out = tmp_path / "out"
    out.write_text("keep me\n")
    rc, _stdout, err = run_cli(GRACE, "-o", out)
    assert rc == 2
    assert err.splitlines() == [f"hifialbedo: error: {out}: exists and is not a directory"]
    assert out.read_text() == "keep me\n"
    assert_no_leftovers(out)


def test_existing_out_dir_refused_without_overwrite(tmp_path, run_cli):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old results\n")
    rc, stdout, err = run_cli(GRACE, "-o", out)
    assert rc == 2
    assert stdout == ""
    assert err.splitlines() == [f"hifialbedo: error: {out}: already exists (pass --overwrite to replace it)"]
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert (out / "keep.txt").read_text() == "old results\n"
    assert_no_leftovers(out)


def test_existing_out_dir_replaced_with_overwrite(tmp_path, reconstruct_ok):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old results\n")
    report, _, _ = reconstruct_ok(GRACE, out=out, extra=("--overwrite",))
    assert not (out / "keep.txt").exists()
    assert (out / "albedo.png").is_file()
    assert len(report["inputs"]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_bad_photo_with_overwrite_keeps_existing_out_dir(tmp_path, run_cli):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old results\n")
    missing = tmp_path / "missing.jpg"
    rc, _, err = run_cli(missing, "-o", out, "--overwrite")
    assert rc == 2
    assert err.splitlines() == [f"hifialbedo: error: {missing}: no such file"]
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert_no_leftovers(out)


@pytest.mark.parametrize("overwrite", [False, True], ids=["new", "overwrite"])
@pytest.mark.parametrize("exc", [OSError(28, "No space left on device"), KeyboardInterrupt()], ids=["disk-full", "ctrl-c"])
def test_failure_while_writing_leaves_no_half_written_out_dir(exc, overwrite, tmp_path, capsys, monkeypatch):
    from hifialbedo.io import contract

    real_write_png = contract.write_png
    written: list[Path] = []

    def failing_write_png(path, image):
        if len(written) == 2:  # albedo.png and texture.png are in the temporary folder by now
            raise exc
        real_write_png(path, image)
        written.append(Path(path))

    monkeypatch.setattr(contract, "write_png", failing_write_png)
    out = tmp_path / "out"
    if overwrite:
        out.mkdir()
        (out / "keep.txt").write_text("old results\n")
    try:
        rc = main(["reconstruct", str(GRACE), "-o", str(out), *FAST, *(["--overwrite"] if overwrite else [])])
    except OSError:  # an I/O failure may surface as an exception; the folder must still be clean
        rc = None
    assert [p.name for p in written] == ["albedo.png", "texture.png"]
    assert written[0].parent.name.startswith(".out.tmp-")
    assert rc != 0
    if isinstance(exc, KeyboardInterrupt):
        assert rc == 130
    if overwrite:
        assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    else:
        assert not out.exists()
    assert_no_leftovers(out)
    assert not written[0].parent.exists()


# ----------------------------------------------------------------------------- several photos, landmarks


def test_one_bad_photo_among_several_is_skipped(tmp_path, reconstruct_ok):
    missing = tmp_path / "missing.jpg"
    report, err, out = reconstruct_ok(missing, GRACE)
    assert f"hifialbedo: warning: skipped {missing}: no such file" in err.splitlines()
    assert len(report["inputs"]) == 1
    assert report["inputs"][0]["photo"] == str(GRACE)
    assert sorted(p.name for p in (out / "views").iterdir()) == ["grace_hopper"]
    assert any(str(missing) in w for w in report["warnings"])


def test_all_photos_bad_fails_with_first_error(tmp_path, run_cli):
    missing = tmp_path / "missing.jpg"
    empty = _empty(tmp_path, None)
    out = tmp_path / "out"
    rc, stdout, err = run_cli(missing, empty, "-o", out)
    assert_clean_failure(rc, stdout, err, missing, r"^no such file$", out)


@pytest.mark.parametrize("shape", [(10, 2), (478, 4), (478,)], ids=lambda s: "x".join(map(str, s)))
def test_wrong_shape_landmarks_fail_cleanly(shape, tmp_path, run_cli):
    npy = tmp_path / "landmarks.npy"
    np.save(npy, np.zeros(shape))
    out = tmp_path / "out"
    rc, stdout, err = run_cli(GRACE, "-o", out, "--landmarks", npy)
    shape_text = re.escape(str(tuple(shape)))
    assert_clean_failure(rc, stdout, err, npy, rf"^bad landmarks file \(.*478x2 or 478x3.*got shape {shape_text}\)$", out)


def test_landmarks_not_a_npy_file_fails_cleanly(tmp_path, run_cli):
    npy = tmp_path / "landmarks.npy"
    npy.write_text("not numpy\n")
    out = tmp_path / "out"
    rc, stdout, err = run_cli(GRACE, "-o", out, "--landmarks", npy)
    assert_clean_failure(rc, stdout, err, npy, r"^bad landmarks file", out)
