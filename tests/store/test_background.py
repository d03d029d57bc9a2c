"""Background reads (``Store.read_background``): long analytical reads such as the WiFi rollup rebuilds. On a
SQLite file they run on a thread of their own at a lowered CPU priority over their own connection; on
PostgreSQL on a pooled read connection. Either way they see what the writer committed, in one snapshot."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from citydata.store import Store, schema
from citydata.store.background import BACKGROUND_NICE

T0 = datetime(2026, 3, 1, tzinfo=UTC)


async def test_a_background_read_sees_what_was_committed_in_one_snapshot(store: Store) -> None:
    rows = [{"datastream_id": 1, "phenomenon_time": T0 + timedelta(seconds=i), "result_number": float(i)}
            for i in range(500)]
    await store.insert_rows(schema.observations, rows)
    seen: dict[str, Any] = {}

    def read(conn: Connection) -> tuple[int, int]:
        seen["thread"] = threading.get_native_id()
        if sys.platform.startswith("linux"):
            seen["nice"] = os.getpriority(os.PRIO_PROCESS, 0)
        first = conn.execute(select(func.count()).select_from(schema.observations)).scalar_one()
        total = conn.execute(select(func.sum(schema.observations.c.result_number))).scalar_one()
        return int(first), int(total)

    assert await store.read_background(read) == (500, sum(range(500)))
    if store.dialect == "sqlite":
        assert seen["thread"] != threading.get_native_id()          # not the event loop's thread
        if sys.platform.startswith("linux"):
            assert seen["nice"] >= BACKGROUND_NICE
            assert os.getpriority(os.PRIO_PROCESS, 0) < BACKGROUND_NICE   # the loop's own priority untouched
        assert store.background is not None and store.background.runs == 1


async def test_the_event_loop_goes_on_while_a_background_read_runs(store: Store) -> None:
    """SQLite works with the GIL released: ticks of the loop keep coming during a long read."""
    if store.dialect != "sqlite":
        pytest.skip("on PostgreSQL the work runs in the database's processes")
    started = threading.Event()

    def long_read(conn: Connection) -> int:
        started.set()
        sql = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000) "
               "SELECT count(*) FROM n")
        return int(conn.exec_driver_sql(sql).scalar_one())

    ticks = 0
    task = asyncio.create_task(store.read_background(long_read))
    while not task.done():
        await asyncio.sleep(0.005)
        ticks += started.is_set()
    assert await task == 3_000_000
    assert ticks >= 3
