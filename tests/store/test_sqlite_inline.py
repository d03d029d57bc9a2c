"""The SQLite writer's inline connection: statements on the event loop, BEGIN/COMMIT and heavy jobs on the
driver's thread, and an acknowledged write is still a committed one."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.clock import DrivenClock
from citydata.store import Store, create_store, schema
from citydata.store.sqlite import InlineConnection
from tests.conftest import make_settings

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
async def sqlite_store(tmp_path: Path, clock: DrivenClock) -> AsyncIterator[Store]:
    st = create_store(make_settings(tmp_path), clock)
    await st.start()
    try:
        yield st
    finally:
        await st.stop()


async def _driver(store: Store) -> InlineConnection:
    async def op(conn: AsyncConnection) -> Any:
        return (await conn.get_raw_connection()).driver_connection

    driver = await store.write(op)
    assert isinstance(driver, InlineConnection)
    return driver


def _db_path(store: Store) -> str:
    return store.url.split("///", 1)[1]


async def test_statements_run_inline_and_commit_on_the_thread(sqlite_store: Store) -> None:
    driver = await _driver(sqlite_store)
    threads: list[str] = []

    async def op(conn: AsyncConnection) -> int:
        threads.append(threading.current_thread().name)
        raw = (await conn.get_raw_connection()).driver_connection
        assert isinstance(raw, InlineConnection)
        await conn.execute(text("SELECT 1"))
        return raw.inline_calls

    inline_before, thread_before = driver.inline_calls, driver.thread_calls
    await sqlite_store.write(op)
    assert driver.inline_calls > inline_before           # the statement's calls ran inline
    assert driver.thread_calls - thread_before <= 3      # BEGIN IMMEDIATE and COMMIT (and nothing per statement)
    assert threads == [threading.main_thread().name]


async def test_an_acknowledged_write_is_committed(sqlite_store: Store) -> None:
    """Read with a separate sqlite3 connection the moment each write returns: the row is there."""
    path = _db_path(sqlite_store)

    async def one(i: int) -> None:
        await sqlite_store.set_meta(f"inline:{i}", {"n": i})
        with sqlite3.connect(path) as other:
            row = other.execute("SELECT value FROM meta WHERE key = ?", (f"inline:{i}",)).fetchone()
        assert row is not None, f"write {i} acknowledged but not visible to another connection"

    await asyncio.gather(*(one(i) for i in range(50)))


async def test_heavy_jobs_and_big_bulk_inserts_leave_the_event_loop(sqlite_store: Store) -> None:
    driver = await _driver(sqlite_store)
    seen: list[bool] = []

    async def heavy(conn: AsyncConnection) -> None:
        raw = (await conn.get_raw_connection()).driver_connection
        seen.append(raw.offload)
        before = raw.thread_calls
        await conn.execute(text("SELECT 1"))
        assert raw.thread_calls > before

    await sqlite_store.write(heavy, heavy=True)
    assert seen == [True]
    assert driver.offload is False                       # reset after the job

    before = driver.thread_calls
    rows = [{"datastream_id": 1, "phenomenon_time": T0 + timedelta(seconds=i), "result_number": float(i)}
            for i in range(2000)]
    assert await sqlite_store.insert_rows(schema.observations, rows) == 2000
    assert driver.thread_calls > before
    assert int(await sqlite_store.scalar(select(func.count()).select_from(schema.observations))) == 2000


async def test_the_loop_keeps_serving_while_a_heavy_job_runs(sqlite_store: Store) -> None:
    """A slow statement in a heavy job does not stall the event loop (it runs on the driver's thread)."""
    await sqlite_store.insert_rows(schema.observations, [
        {"datastream_id": 1, "phenomenon_time": T0 + timedelta(seconds=i), "result_number": float(i)}
        for i in range(300)])
    slow = text("SELECT count(*) FROM observations a, observations b, observations c")  # 27 M row visits

    async def heavy(conn: AsyncConnection) -> None:
        await conn.execute(slow)

    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    started = time.monotonic()
    await sqlite_store.write(heavy, heavy=True)
    took = time.monotonic() - started
    done.set()
    await task
    assert took > 0.05, "the statement was too quick to tell"
    assert ticks >= took / 0.005 * 0.3, f"the loop ticked {ticks} times in {took:.2f}s"


async def test_page_caches_are_the_configured_sizes(tmp_path: Path, clock: DrivenClock) -> None:
    """Each pooled connection keeps its page cache for life, so the sizes bound the process's memory."""
    st = create_store(make_settings(tmp_path, sqlite_cache_mib=32, sqlite_reader_cache_mib=4), clock)
    await st.start()
    try:
        async def writer_cache(conn: AsyncConnection) -> Any:
            return (await conn.execute(text("PRAGMA cache_size"))).scalar()

        assert await st.write(writer_cache) == -32 * 1024
        row = await st.fetch_one(text("PRAGMA cache_size"))
        assert row is not None and list(row.values()) == [-4 * 1024]
    finally:
        await st.stop()
