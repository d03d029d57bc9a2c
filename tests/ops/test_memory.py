"""``release_free_memory``: freed heap memory the allocator kept goes back to the OS (glibc)."""

from __future__ import annotations

import ctypes.util
import os
import sqlite3
import sys

import pytest

from citydata.ops.memory import memory_breakdown, release_free_memory


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not sys.platform.startswith("linux") or ctypes.util.find_library("c") is None,
                    reason="malloc_trim is glibc's")
def test_freed_memory_held_below_a_live_block_is_given_back() -> None:
    chunks = [bytearray(8192) for _ in range(40_000)]      # ~320 MiB on the heap (below the mmap threshold)
    for c in chunks:
        c[::4096] = b"x" * len(c[::4096])                   # touch every page
    keep = chunks[-1]                                       # the top of the heap stays in use ...
    del chunks                                              # ... so glibc cannot shrink it by itself
    held = rss_mib()
    assert release_free_memory() is True
    assert rss_mib() < held - 200, (held, rss_mib())
    assert len(keep) == 8192


@pytest.mark.skipif(not sys.platform.startswith("linux") or ctypes.util.find_library("c") is None,
                    reason="/proc and mallinfo2 are Linux's and glibc's")
def test_the_breakdown_follows_the_heap_and_sqlite() -> None:
    before = memory_breakdown()
    assert {"rss", "rss_anon", "rss_file", "heap_in_use", "heap_free"} <= set(before)
    block = bytearray(64 * 2**20)                           # one large block: the C heap's mmap'd part
    during = memory_breakdown()
    assert during["heap_in_use"] - before["heap_in_use"] >= 64 * 2**20
    del block
    if "sqlite" not in before:                              # SQLite compiled into the sqlite3 module
        with open("/proc/self/maps") as f:
            assert "libsqlite3" not in f.read()
        return
    db = sqlite3.connect(":memory:")
    db.execute("PRAGMA cache_size=-65536")
    db.execute("CREATE TABLE t (x BLOB)")
    db.executemany("INSERT INTO t VALUES (?)", [(os.urandom(1000),) for _ in range(20_000)])
    grown = memory_breakdown()["sqlite"]
    assert grown - before["sqlite"] >= 15 * 2**20             # 20 MB of rows in the in-memory database
    db.close()
    assert memory_breakdown()["sqlite"] < grown - 15 * 2**20
