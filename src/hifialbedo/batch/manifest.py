"""What a batch folder records, and how it survives a kill: the manifest, the done markers,
the options file and the run lock.

A batch folder (OUT_DIR)::

    manifest.csv          one row per item (:data:`COLUMNS`), sorted by output; rewritten by
                          atomic replace (temporary file, fsync, rename) every few seconds
                          and at the end, so it is always a whole file, at worst a little behind
    batch.json            the layout and reconstruct options of the run (a rerun must match)
    .batch.lock           held (``flock``) while a driver runs on the folder
    <key>/                an item's output contract (``hifialbedo reconstruct``'s), written
                          atomically, then
    <key>/batch_done.json the item's done marker, written last (atomically): an item is done
                          exactly when its marker is there and names the same photos

The markers, not the manifest, say what is done: after a SIGKILL the manifest may lag, a
folder may be complete without its marker (it is redone) and a temporary ``.<name>.tmp-*``
folder may be left beside it (removed when the item is redone).
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import io
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from hifialbedo.io.errors import InputError

MANIFEST_NAME = "manifest.csv"
OPTIONS_NAME = "batch.json"
LOCK_NAME = ".batch.lock"
MARKER_NAME = "batch_done.json"
RESERVED_NAMES: tuple[str, ...] = (MANIFEST_NAME, OPTIONS_NAME)
"""Top-level names of a batch folder that no item's output folder may take."""
FORMAT = "hifialbedo-batch"
VERSION = 1

COLUMNS: tuple[str, ...] = (
    "input",
    "output",
    "status",
    "error",
    "seconds",
    "photos",
    "skin_ita",
    "light_r",
    "light_g",
    "light_b",
)
"""The manifest's columns:

- ``input``: the photo (layout photos) or person folder (identities), relative to INPUT_DIR
- ``output``: the item's folder relative to OUT_DIR (unique)
- ``status``: ``done``, ``failed`` (see ``error``), ``skipped`` (nothing to reconstruct) or
  ``pending`` (not yet processed, or stopped half-way: redone by the next run)
- ``error``: the one-line reason of a failed or skipped item
- ``seconds``: the item's wall time in its worker (reading to done marker)
- ``photos``: how many photos went into the result (identities: after the identity check)
- ``skin_ita``: mean individual typology angle (degrees) of the albedo over the forehead and
  cheeks (the FAIR protocol's ITA mask on the UV layout)
- ``light_r``, ``light_g``, ``light_b``: colour of the estimated light, linear RGB with
  luminance 1 (the constant SH band, averaged over the result's photos)
"""
STATUSES: tuple[str, ...] = ("done", "failed", "skipped", "pending")


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from or while handling) is a full disk
    or an exceeded quota (``ENOSPC``, ``EDQUOT``)."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        e = e.__cause__ or e.__context__
    return False


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` by a temporary file beside it, fsync and rename: readers see
    the old file or the new one, never a part. The temporary file is removed on error."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode())


# --------------------------------------------------------------------------- manifest


def format_row(row: Mapping[str, Any]) -> dict[str, str]:
    """A manifest row as strings: floats with fixed precision, None as empty."""
    out = {}
    for c in COLUMNS:
        v = row.get(c)
        if v is None or v == "":
            out[c] = ""
        elif c == "seconds":
            out[c] = f"{float(v):.3f}"
        elif c in ("skin_ita", "light_r", "light_g", "light_b"):
            out[c] = f"{float(v):.4f}"
        else:
            out[c] = str(v)
    return out


def write_manifest(path: Path, rows: Mapping[str, Mapping[str, Any]]) -> None:
    """``rows`` (keyed by output) to ``path`` as CSV, sorted by output, atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for key in sorted(rows):
        writer.writerow(format_row(rows[key]))
    atomic_write_bytes(path, buf.getvalue().encode())


def read_manifest(path: Path) -> dict[str, dict[str, str]]:
    """The rows of a manifest keyed by output (``{}`` when there is none). InputError naming
    the file when it is not a manifest."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or not {"input", "output", "status"} <= set(reader.fieldnames):
                raise InputError(path, "not a batch manifest (missing columns input, output, status)")
            return {r["output"]: {c: r.get(c) or "" for c in COLUMNS} for r in reader}
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise InputError(path, f"unreadable manifest ({exc})") from None


# --------------------------------------------------------------------------- markers


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The done marker of an item folder, or None when it has none (or a broken one)."""
    try:
        data = json.loads((Path(folder) / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


def write_marker(folder: Path, data: Mapping[str, Any]) -> None:
    atomic_write_json(Path(folder) / MARKER_NAME, {"format": FORMAT, "version": VERSION, **data})


# --------------------------------------------------------------------------- options and lock


def check_options(out_dir: Path, options: Mapping[str, Any]) -> None:
    """Record the run's options in ``out_dir/batch.json``, or check that they equal the ones
    recorded. InputError naming the folder when they differ, or when ``out_dir`` exists, is not
    empty and is not a batch folder."""
    out_dir = Path(out_dir)
    path = out_dir / OPTIONS_NAME
    wanted = json.loads(json.dumps({"format": FORMAT, "version": VERSION, **options}))
    if path.is_file():
        try:
            have = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(path, f"unreadable ({exc})") from None
        if have.get("format") != FORMAT:
            raise InputError(path, f"not a {FORMAT} options file")
        diffs = [k for k in sorted(set(have) | set(wanted)) if have.get(k) != wanted.get(k)]
        if diffs:
            detail = "; ".join(_difference(k, have.get(k), wanted.get(k)) for k in diffs)
            raise InputError(
                out_dir, f"holds a batch run with other options ({detail}): rerun with the same options or use another OUT_DIR"
            )
        return
    if out_dir.exists():
        if not out_dir.is_dir():
            raise InputError(out_dir, "exists and is not a directory")
        if any(not p.name.startswith(".") for p in out_dir.iterdir()):
            raise InputError(out_dir, f"exists, is not empty and is not a batch folder (no {OPTIONS_NAME})")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, wanted)
    except OSError as exc:
        raise InputError(out_dir, f"cannot write the batch folder ({exc.strerror or exc})") from None


def _difference(key: str, have: Any, want: Any) -> str:
    if isinstance(have, dict) and isinstance(want, dict):
        sub = [k for k in sorted(set(have) | set(want)) if have.get(k) != want.get(k)]
        return "; ".join(_difference(f"{key}.{k}", have.get(k), want.get(k)) for k in sub)
    return f"{key} was {json.dumps(have)}, now {json.dumps(want)}"


@contextlib.contextmanager
def run_lock(out_dir: Path) -> Iterator[None]:
    """Hold ``out_dir/.batch.lock`` for the run; InputError when another run holds it. The
    lock goes with the process (a killed driver leaves no stale lock)."""
    path = Path(out_dir) / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise InputError(out_dir, "another hifialbedo batch is running on this folder") from None
        yield
    finally:
        os.close(fd)
