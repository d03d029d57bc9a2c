"""Handing freed memory back to the operating system after a heavy job.

CPython frees a large result (a rollup rebuild's rows, a purge's batches) to the C allocator, and glibc keeps
most of it in its arenas (one per thread that allocated: the SQLite connections' threads among them), so the
process's RSS stays at its highest point. ``release_free_memory()`` asks glibc to give back what is free
(``malloc_trim(0)``, which also returns free pages inside the arenas); elsewhere it does nothing.

``memory_breakdown()`` says where the resident memory is (the ``citydata_memory_bytes`` gauge, and the memory
panel of ``bench/load.py``): anonymous against file-backed RSS, what the C heap holds in use and holds free
(glibc's ``mallinfo2``, over every arena), and SQLite's own share of the heap (its page caches, statements and
sorts, ``sqlite3_memory_used``, for every connection of the process). Python's small objects live in pymalloc
arenas of their own (mmap, outside the C heap): they are the anonymous RSS the others do not explain.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library, looked up once (``find_library`` runs a subprocess)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = _libc().malloc_trim    # type: ignore[union-attr]
    except AttributeError:                # no C library, or not glibc (musl, macOS): nothing to do
        return None
    trim.argtypes = [ctypes.c_size_t]    # type: ignore[attr-defined]
    trim.restype = ctypes.c_int          # type: ignore[attr-defined]
    return trim


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


@functools.cache
def _mallinfo2() -> Callable[[], _MallInfo2] | None:
    try:
        fn: Callable[[], _MallInfo2] = _libc().mallinfo2    # type: ignore[union-attr]  # glibc 2.33 and later
    except AttributeError:                # no C library, or not glibc
        return None
    fn.restype = _MallInfo2                                 # type: ignore[attr-defined]
    return fn


@functools.cache
def _sqlite_memory_used() -> Callable[[], int] | None:
    """``sqlite3_memory_used`` of the SQLite library the ``sqlite3`` module uses, when that is a shared library
    this process has loaded (Linux: found in ``/proc/self/maps``). Where SQLite is compiled into the module
    (some Python builds), another copy of the library would count nothing: then None."""
    import sqlite3  # noqa: F401  (loads the library the sqlite3 module links)

    path = None
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                name = line.rsplit(None, 1)[-1]
                if "/libsqlite3" in name and ".so" in name:
                    path = name
                    break
    except OSError:
        return None
    if path is None:
        return None
    try:
        fn: Callable[[], int] = ctypes.CDLL(path).sqlite3_memory_used   # the same handle: already loaded
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_int64                             # type: ignore[attr-defined]
    return fn


def _proc_status() -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "RssAnon", "RssFile"):
                    out[key] = int(rest.split()[0]) * 1024
    except OSError:                   # not Linux
        pass
    return out


def memory_breakdown() -> dict[str, float]:
    """Bytes, by part, of this process's memory, with what the platform can read (Linux and glibc give all):
    ``rss``, ``rss_anon``, ``rss_file``; ``heap_in_use`` and ``heap_free`` (the C heap, every arena and its
    large mmap'd blocks; ``heap_free`` is what ``release_free_memory`` can give back); ``sqlite`` (SQLite's
    allocations, a part of ``heap_in_use``)."""
    status = _proc_status()
    out: dict[str, float] = {}
    for key, name in (("VmRSS", "rss"), ("RssAnon", "rss_anon"), ("RssFile", "rss_file")):
        if key in status:
            out[name] = float(status[key])
    info = _mallinfo2()
    if info is not None:
        m = info()
        out["heap_in_use"] = float(m.uordblks + m.hblkhd)
        out["heap_free"] = float(m.fordblks)
    used = _sqlite_memory_used()
    if used is not None:
        out["sqlite"] = float(used())
    return out


def release_free_memory() -> bool:
    """Give free heap memory back to the OS; True when the allocator released some."""
    trim = _malloc_trim()
    if trim is None:
        return False
    return bool(trim(0))
