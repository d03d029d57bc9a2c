"""Long analytical reads at low CPU priority (SQLite): the WiFi rollup rebuilds.

A rebuild of a busy hour reads hundreds of thousands of presence rows. On a read connection of the pool it runs
on that connection's aiosqlite thread at the priority of everything else, so on a small machine it takes a core
from the event loop that answers ingest: under the 10x load test, each rebuild burst (one to three minutes at
170-180% CPU) cut the pings served by half and more. Here the read runs on a thread of its own whose nice value
is raised (``BACKGROUND_NICE``; Linux keeps a nice value per thread), over its own synchronous connection, so
the kernel gives the CPU to the event loop first and the rebuild takes what is left. It still runs as fast as
ever on an idle machine. SQLite releases the GIL while it works, so the event loop runs in parallel.

On PostgreSQL the work happens in the database's own processes: ``Store.read_background`` runs the same function
on a pooled read connection there (``run_sync``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine

from citydata.store.sqlite import configure_sqlite

T = TypeVar("T")
BACKGROUND_NICE = 10


def lower_thread_priority(nice: int = BACKGROUND_NICE) -> bool:
    """Raise the calling thread's nice value (Linux: per thread). False where the platform does not allow it."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, max(os.getpriority(os.PRIO_PROCESS, 0), nice))
    except (AttributeError, OSError):
        return False
    return True


class BackgroundReads:
    """One low-priority thread with its own read-only connection to a SQLite file."""

    def __init__(self, sync_url: str, synchronous: str, cache_mib: int) -> None:
        self.engine: Engine = create_engine(sync_url, pool_size=1, max_overflow=0)
        configure_sqlite(self.engine, synchronous, writer=False, cache_mib=cache_mib)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="citydata-background-read",
                                           initializer=lower_thread_priority)
        self.runs = 0

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """``fn(conn)`` on the background thread, in one read transaction (a consistent WAL snapshot)."""
        def call() -> T:
            with self.engine.connect() as conn:
                return fn(conn)

        self.runs += 1
        return await asyncio.get_running_loop().run_in_executor(self.executor, call)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.executor.submit(self.engine.dispose).result(timeout=10)
        self.executor.shutdown(wait=True)
