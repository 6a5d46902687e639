"""Atomic output folders and the textured-mesh (OBJ + MTL) writer."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from hifialbedo.io.errors import InputError

TEMPORARY_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>[0-9]+)-[a-z0-9_]{8}$")
"""``.<name>.tmp-<pid>-<random>`` (being written) and ``.<name>.old-<pid>-<random>`` (the folder
it replaces, moved aside): the folders :func:`atomic_output_dir` makes beside ``<name>``, named
with the process that owns them so a later run can tell its own from a dead run's."""


def resolve_output(out_dir: str | Path) -> Path:
    """The absolute, symlink-free path an output folder is written at (a symlinked ``-o`` is
    followed to its target, which is then checked and replaced like any folder; the link stays)."""
    return Path(os.path.realpath(Path(out_dir).expanduser()))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def remove_stale_temporaries(out_dir: str | Path) -> list[Path]:
    """Remove the temporary folders a killed run (its process no longer alive) left beside
    ``out_dir`` (:data:`TEMPORARY_NAME`); return them. When such a run was killed between moving
    the old folder aside and renaming the new one into place, the old one is put back first,
    so a user's folder is never lost. Folders of live processes are left alone."""
    real = resolve_output(out_dir)
    parent = real.parent
    try:
        entries = sorted(os.scandir(parent), key=lambda e: e.name)
    except OSError:
        return []
    removed = []
    stale = []
    for entry in entries:
        m = TEMPORARY_NAME.match(entry.name)
        if m and m["name"] == real.name and entry.is_dir(follow_symlinks=False) and not _pid_alive(int(m["pid"])):
            stale.append((m["kind"], Path(entry.path)))
    for kind, path in sorted(stale, key=lambda x: x[0] != "old"):  # the old folders first: they may go back
        previous = path / "previous"
        if kind == "old" and previous.is_dir() and not os.path.lexists(real):
            with contextlib.suppress(OSError):
                os.replace(previous, real)
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def check_not_an_input(out_dir: str | Path, inputs: Sequence[str | Path | None]) -> None:
    """``InputError`` naming ``out_dir`` when it is, contains or lies inside one of ``inputs``
    (files or folders; None entries skipped), compared after resolving symlinks: replacing it
    would delete an input, or what is written would be read back as input.

    >>> check_not_an_input("/data/photos", ["/data/photos/a.jpg"])
    Traceback (most recent call last):
    ...
    hifialbedo.io.errors.InputError: /data/photos: contains the input /data/photos/a.jpg; choose another output folder
    """
    real = resolve_output(out_dir)
    for given in inputs:
        if given is None or str(given) == "":
            continue
        source = Path(os.path.realpath(Path(given).expanduser()))
        if source == real:
            raise InputError(out_dir, f"is the input {given}; choose another output folder")
        if _inside(source, real):
            raise InputError(out_dir, f"contains the input {given}; choose another output folder")
        if _inside(real, source):
            raise InputError(out_dir, f"lies inside the input {given}; choose another output folder")


def check_output_dir(out_dir: Path, *, overwrite: bool, inputs: Sequence[str | Path | None] = ()) -> None:
    """Fail early (before any work) when ``out_dir`` cannot be written as asked.

    Refused (``InputError`` naming ``out_dir`` as given): an output that is, contains or lies
    inside one of ``inputs`` (files or folders the command reads; None entries are skipped),
    compared after resolving symlinks; the root folder; with ``overwrite``, a folder holding
    the current working directory. Stale temporary folders of killed runs beside it are
    removed first (:func:`remove_stale_temporaries`).
    """
    real = resolve_output(out_dir)
    check_not_an_input(out_dir, inputs)
    if real == real.parent:
        raise InputError(out_dir, "is the root folder; choose another output folder")
    remove_stale_temporaries(real)
    if real.exists() and not real.is_dir():
        raise InputError(out_dir, "exists and is not a directory")
    if real.exists() and not overwrite:
        raise InputError(out_dir, "already exists (pass --overwrite to replace it)")
    if real.exists() and _inside(Path(os.path.realpath(os.getcwd())), real):
        raise InputError(out_dir, "holds the current folder and cannot be replaced; run from elsewhere or choose another output folder")
    # Missing parents are created (like mkdir -p): check the nearest existing ancestor.
    ancestor = real.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(out_dir, f"{ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(out_dir, f"cannot write in {ancestor} (permission denied)")


@contextlib.contextmanager
def atomic_output_dir(out_dir: Path, *, overwrite: bool, inputs: Sequence[str | Path | None] = ()) -> Iterator[Path]:
    """Yield a temporary folder beside ``out_dir``; on success it becomes ``out_dir``.

    On error the temporary folder is removed and ``out_dir`` is untouched. With
    ``overwrite`` an existing ``out_dir`` is moved aside, replaced, then deleted, so a
    crash at any point leaves either the old or the new folder complete; the temporary
    folders carry this process's id (:data:`TEMPORARY_NAME`), so those of a killed run are
    removed (and an old folder moved aside put back) by the next run on the same folder.
    A symlinked ``out_dir`` is followed: its target is written, the link stays. ``inputs``:
    as :func:`check_output_dir`. An ``OSError`` while writing (a full disk) is raised again
    naming ``out_dir`` as given, not the temporary path.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with atomic_output_dir(Path(d) / "out", overwrite=False) as tmp:
    ...         _ = (tmp / "a.txt").write_text("complete")
    ...     try:
    ...         with atomic_output_dir(Path(d) / "out", overwrite=True) as tmp:
    ...             raise RuntimeError("crash while writing")
    ...     except RuntimeError:
    ...         pass
    ...     sorted(p.name for p in Path(d).iterdir()), (Path(d) / "out" / "a.txt").read_text()
    (['out'], 'complete')
    """
    check_output_dir(out_dir, overwrite=overwrite, inputs=inputs)
    real = resolve_output(out_dir)
    parent = real.parent
    pid = os.getpid()
    tmp_prefix = f".{real.name}.tmp-{pid}-"
    tmp = parent / f"{tmp_prefix}{_random_suffix()}"
    try:
        # `tmp` is named before it exists, so an interrupt that lands while it is being made
        # (the folder already on disk) still removes it below.
        try:
            parent.mkdir(parents=True, exist_ok=True)
            tmp = _make_fresh_folder(parent, tmp_prefix, tmp)
        except OSError as exc:
            raise InputError(out_dir, f"cannot create a folder in {parent} ({exc.strerror})") from None
        try:
            yield tmp
            os.chmod(tmp, 0o755)
            committed = False
            try:
                with interrupts_deferred():  # the renames are never left half done
                    _commit(tmp, real, f".{real.name}.old-{pid}-")
                    committed = True
            except KeyboardInterrupt as exc:  # arrived while committing: raised once it was done
                if committed:
                    exc.output_written = out_dir
                raise
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror or str(exc), str(out_dir)) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


_SUFFIX_LETTERS = "abcdefghijklmnopqrstuvwxyz0123456789_"


def _random_suffix() -> str:
    """Eight letters, as :data:`TEMPORARY_NAME` expects (the alphabet ``tempfile`` uses)."""
    return "".join(secrets.choice(_SUFFIX_LETTERS) for _ in range(8))


def _make_fresh_folder(parent: Path, prefix: str, first: Path) -> Path:
    """Create ``first`` (mode 0700), or ``parent/<prefix><random>`` while the name is taken."""
    path = first
    for _ in range(100):
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            path = parent / f"{prefix}{_random_suffix()}"
    raise FileExistsError(f"no free temporary name {prefix}* in {parent}")


def _commit(tmp: Path, real: Path, old_prefix: str) -> None:
    """Rename ``tmp`` to ``real``; an existing ``real`` is moved aside first and deleted after
    (put back if the rename fails)."""
    if not real.exists():
        os.replace(tmp, real)
        return
    old = real.parent / f"{old_prefix}{_random_suffix()}"
    try:
        old = _make_fresh_folder(real.parent, old_prefix, old)
        os.replace(real, old / "previous")
    except BaseException:
        shutil.rmtree(old, ignore_errors=True)
        raise
    try:
        os.replace(tmp, real)
    except BaseException:
        os.replace(old / "previous", real)  # put the old folder back
        shutil.rmtree(old, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Ctrl-C and SIGTERM that arrive in the block take effect when it ends (main thread only;
    elsewhere, or where a handler was not installed from Python, the block runs as it is).

    Python runs signal handlers in the main thread only, so holding them here also covers a
    signal the kernel hands to one of NumPy's or torch's threads.
    """
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.getsignal(s) for s in signals}
    if threading.current_thread() is not threading.main_thread() or None in previous.values():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, frame: object) -> None:
        caught.append(signum)

    for s in signals:
        signal.signal(s, hold)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if caught:
            handler = previous[caught[0]]
            if callable(handler):
                handler(caught[0], None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(caught[0])


def write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(obj: object) -> object:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj)}")


def write_obj(obj_path: Path, vertices: np.ndarray, normals: np.ndarray, uv: np.ndarray, faces: np.ndarray, texture_name: str) -> None:
    """Write a UV-textured triangle mesh as OBJ + MTL (same stem), textured by ``texture_name``.

    ``uv`` has v pointing down (our convention); OBJ's v points up, so it is flipped.
    Faces are 0-based ``(F, 3)``, counter-clockwise seen from outside (OBJ's convention).
    """
    mtl_path = obj_path.with_suffix(".mtl")
    lines = [
        "# hifialbedo face mesh: 468 vertices, head frame (x: subject's left, y: up, z: out of the face)",
        f"mtllib {mtl_path.name}",
        "o face",
    ]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in vertices]
    lines += [f"vt {u:.6f} {1.0 - v:.6f}" for u, v in uv]
    lines += [f"vn {x:.6f} {y:.6f} {z:.6f}" for x, y, z in normals]
    lines += ["usemtl albedo", "s 1"]
    lines += [f"f {a}/{a}/{a} {b}/{b}/{b} {c}/{c}/{c}" for a, b, c in faces + 1]
    obj_path.write_text("\n".join(lines) + "\n")
    mtl_path.write_text(
        "# hifialbedo: diffuse albedo texture (sRGB)\n"
        "newmtl albedo\nKa 0 0 0\nKd 1 1 1\nKs 0 0 0\nNs 1\nillum 1\nd 1\n"
        f"map_Kd {texture_name}\n"
    )
