"""Handing freed memory back to the operating system after a heavy job.

CPython frees a large result (a rollup rebuild's rows, a purge's batches) to the C allocator, and glibc keeps
most of it in its arenas (one per thread that allocated: the SQLite connections' threads among them), so the
process's RSS stays at its highest point. ``release_free_memory()`` asks glibc to give back what is free
(``malloc_trim(0)``, which also returns free pages inside the arenas); elsewhere it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):     # not glibc (musl, macOS): nothing to do
        return None
    trim.argtypes = [ctypes.c_size_t]    # type: ignore[attr-defined]
    trim.restype = ctypes.c_int          # type: ignore[attr-defined]
    return trim


def release_free_memory() -> bool:
    """Give free heap memory back to the OS; True when the allocator released some."""
    trim = _malloc_trim()
    if trim is None:
        return False
    return bool(trim(0))
