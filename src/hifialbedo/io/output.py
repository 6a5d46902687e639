"""Atomic output folders and the textured-mesh (OBJ + MTL) writer."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from hifialbedo.io.errors import InputError


def check_output_dir(out_dir: Path, *, overwrite: bool) -> None:
    """Fail early (before any work) when ``out_dir`` cannot be written as asked."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(out_dir, "exists and is not a directory")
    if out_dir.exists() and not overwrite:
        raise InputError(out_dir, "already exists (pass --overwrite to replace it)")
    # Missing parents are created (like mkdir -p): check the nearest existing ancestor.
    ancestor = out_dir.resolve().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(out_dir, f"{ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(out_dir, f"cannot write in {ancestor} (permission denied)")


@contextlib.contextmanager
def atomic_output_dir(out_dir: Path, *, overwrite: bool) -> Iterator[Path]:
    """Yield a temporary folder beside ``out_dir``; on success it becomes ``out_dir``.

    On error the temporary folder is removed and ``out_dir`` is untouched. With
    ``overwrite`` an existing ``out_dir`` is moved aside, replaced, then deleted, so a
    crash at any point leaves either the old or the new folder complete.

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
    out_dir = Path(out_dir)
    check_output_dir(out_dir, overwrite=overwrite)
    parent = out_dir.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=parent))
    except OSError as exc:
        raise InputError(out_dir, f"cannot create a folder in {parent} ({exc.strerror})") from None
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=parent))
            os.replace(out_dir, old / "previous")
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


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
