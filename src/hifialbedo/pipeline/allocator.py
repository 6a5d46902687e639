"""Process-wide tuning of glibc's allocator for reconstruct's large temporaries.

A reconstruct at ``--uv-size 1024`` makes and drops a few hundred NumPy arrays of 3-30 MB
(per-texel maps over 670,000 texels, sparse factors). glibc serves blocks that large with
``mmap`` and returns them on ``free``, so every new array costs page faults and zero-filling of
fresh pages; about a tenth of the run (two interleaved pairs of in-process runs, one photo:
1.26 -> 1.10 s and 1.44 -> 1.25 s with the thresholds below; peak RSS 690 -> 706 MB). Raising the mmap threshold to its
maximum (32 MiB on 64-bit) and the trim threshold to 1 GiB keeps freed memory in the heap for
the next array.

Called by the processes hifialbedo owns (the ``hifialbedo`` command, which also runs
``serve``, and the ``batch`` workers: local processes and Ray actors), never on import: a program that uses the package as a
library keeps its own allocator settings. A no-op where the C library has no ``mallopt``.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1  # malloc.h
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024
"""Blocks below this come from the heap (glibc's upper limit for the setting on 64-bit)."""
TRIM_THRESHOLD = 1024 * 1024 * 1024
"""Free memory at the top of the heap is returned to the system only beyond this."""


def keep_freed_memory() -> bool:
    """Set the thresholds above (see the module docstring); True when glibc took them."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "keep_freed_memory"]
