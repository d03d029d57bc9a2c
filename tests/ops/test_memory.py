"""``release_free_memory``: freed heap memory the allocator kept goes back to the OS (glibc)."""

from __future__ import annotations

import ctypes.util
import os
import sys

import pytest

from citydata.ops.memory import release_free_memory


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
