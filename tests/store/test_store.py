"""The store on SQLite and PostgreSQL: migrations, bulk inserts, ids, the batching writer, meta, shutdown."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.clock import DrivenClock
from citydata.config import Settings
from citydata.errors import Conflict, Unavailable
from citydata.store import Store, create_store, schema
from citydata.store.migrate import current_revision, head_revision

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def obs(stream: int, n: int, start: int = 0, **extra: Any) -> list[dict[str, Any]]:
    return [{"datastream_id": stream, "phenomenon_time": T0 + timedelta(seconds=start + i),
             "result_number": float(start + i), **extra} for i in range(n)]


async def count(store: Store, stream: int | None = None) -> int:
    stmt = select(func.count()).select_from(schema.observations)
    if stream is not None:
        stmt = stmt.where(schema.observations.c.datastream_id == stream)
    return int(await store.scalar(stmt))


async def test_migrations_create_every_table_and_are_idempotent(store: Store, backend_settings: Settings,
                                                                clock: DrivenClock) -> None:
    assert store.write_engine is not None

    async with store.read() as conn:
        tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    assert set(schema.metadata.tables) <= tables
    assert await current_revision(store.write_engine) == head_revision()
    await store.insert_rows(schema.observations, obs(1, 3))
    # Upgrading again, and a second store starting on the same database, change nothing and lose nothing.
    assert await store.upgrade() == head_revision()
    again = create_store(backend_settings, clock)
    await again.start()
    try:
        assert await count(again) == 3
        assert again.write_engine is not None
        assert await current_revision(again.write_engine) == head_revision()
    finally:
        await again.stop()


async def test_insert_rows_counts_new_rows_and_ignores_duplicates(store: Store) -> None:
    assert await store.insert_rows(schema.observations, obs(1, 50)) == 50
    # Half old, half new: only the new ones count and are stored.
    assert await store.insert_rows(schema.observations, obs(1, 50, start=25)) == 25
    assert await count(store, 1) == 75
    # Duplicates inside one call are stored once.
    assert await store.insert_rows(schema.observations, obs(2, 5) + obs(2, 5)) == 5
    # Several callers in one batch, overlapping each other and the table: each gets its own exact count.
    results = await asyncio.gather(
        store.insert_rows(schema.observations, obs(3, 10)),
        store.insert_rows(schema.observations, obs(3, 10, start=5)),
        store.insert_rows(schema.observations, obs(1, 10, start=70)),
    )
    assert results == [10, 5, 5]
    assert await count(store, 3) == 15
    assert await count(store) == 75 + 5 + 15 + 5
    assert await store.insert_rows(schema.observations, []) == 0


async def test_conflict_error_raises_conflict_and_stores_nothing_of_that_call(store: Store) -> None:
    await store.insert_rows(schema.observations, obs(1, 3))
    with pytest.raises(Conflict):
        await store.insert_rows(schema.observations, obs(1, 4, start=2), conflict="error")
    assert await count(store, 1) == 3
    assert await store.insert_rows(schema.observations, obs(1, 2, start=10), conflict="error") == 2


async def test_allocate_ids_unique_across_callers_and_stores(store: Store, backend_settings: Settings,
                                                             clock: DrivenClock) -> None:
    other = create_store(backend_settings, clock)
    await other.start()
    try:
        sizes = [1, 7, 500, 999, 1001, 3, 2500] * 3
        got = await asyncio.gather(*(s.allocate_ids(schema.observations, n)
                                     for s in (store, other) for n in sizes))
        flat = [i for ids in got for i in ids]
        assert [len(ids) for ids in got] == sizes + sizes
        assert len(set(flat)) == len(flat)
        assert min(flat) >= 1
        # The ids are usable as primary keys, and a block never starts below rows already stored.
        rows = [{**r, "id": i} for r, i in zip(obs(9, 100), got[0] + got[1] + got[2][:92], strict=True)]
        assert await store.insert_rows(schema.observations, rows) == 100
    finally:
        await other.stop()
    fresh = create_store(backend_settings, clock)
    await fresh.start()
    try:
        later = await fresh.allocate_ids(schema.observations, 10)
        assert min(later) > max(flat)
        # Rows inserted without an id do not collide with reserved ones (sequence moved past them on PG).
        if fresh.dialect == "postgresql":
            assert await fresh.insert_rows(schema.observations, obs(10, 3)) == 3
            ids = await fresh.fetch_all(select(schema.observations.c.id)
                                        .where(schema.observations.c.datastream_id == 10))
            assert min(r["id"] for r in ids) > max(later)
    finally:
        await fresh.stop()


async def test_concurrent_writes_share_commits(store: Store) -> None:
    assert store.writer is not None
    before = store.writer.stats.commits
    jobs = [store.insert_rows(schema.observations, obs(100 + i, 20)) for i in range(200)]
    jobs += [store.set_meta(f"k{i}", i) for i in range(50)]
    results = await asyncio.gather(*jobs)
    assert results[:200] == [20] * 200
    commits = store.writer.stats.commits - before
    assert 0 < commits < 250 / 5
    assert store.writer.stats.rows_per_commit > 1
    assert await count(store) == 4000
    assert await store.get_meta("k49") == 49


async def test_a_failing_op_does_not_fail_its_batch(store: Store) -> None:
    assert store.writer is not None

    async def bad(conn: AsyncConnection) -> None:
        await conn.execute(schema.meta.insert().values(key="dup", value=1, updated_at=T0))
        await conn.execute(schema.meta.insert().values(key="dup", value=2, updated_at=T0))  # PK violation

    async def broken(conn: AsyncConnection) -> None:
        await conn.execute(select(func.count()).select_from(schema.observations))
        raise ValueError("bug in the caller")

    async def good(conn: AsyncConnection) -> str:
        await conn.execute(schema.meta.insert().values(key="good", value=[1, 2], updated_at=T0))
        return "ok"

    commits = store.writer.stats.commits
    out = await asyncio.gather(store.write(bad), store.write(good), store.write(broken),
                               store.insert_rows(schema.observations, obs(1, 10)),
                               store.insert_rows(schema.observations, obs(1, 1), conflict="error"),
                               store.insert_rows(schema.observations, obs(2, 5)),
                               return_exceptions=True)
    assert isinstance(out[0], Conflict) and out[0].status == 409
    assert out[1] == "ok"
    assert isinstance(out[2], ValueError)
    assert out[3] == 10
    assert isinstance(out[4], Conflict)
    assert out[5] == 5
    assert store.writer.stats.commits - commits <= 2  # they really shared a transaction
    assert await store.get_meta("good") == [1, 2]
    assert await store.get_meta("dup") is None  # the failed op left nothing behind
    assert await count(store) == 15


async def test_utc_datetimes_and_json_round_trip(store: Store) -> None:
    bangkok = timezone(timedelta(hours=7))
    when = datetime(2026, 3, 1, 19, 30, 15, 123456, tzinfo=bangkok)
    payload = {"th": "ภูเก็ต", "n": [1, 2.5, None, True], "nested": {"a": {"b": "c"}}}
    await store.insert_rows(schema.observations, [{
        "datastream_id": 5, "phenomenon_time": when, "result_time": when + timedelta(seconds=1),
        "result_json": payload, "parameters": None}])
    await store.execute(schema.events.insert().values(id="e1", kind="k", key="x", time=when, data=payload,
                                                      source="test"))
    row = await store.fetch_one(select(schema.observations).where(schema.observations.c.datastream_id == 5))
    assert row is not None
    assert row["phenomenon_time"] == when and row["phenomenon_time"].utcoffset() == timedelta(0)
    assert row["phenomenon_time"].tzinfo is not None
    assert row["result_time"] == when + timedelta(seconds=1)
    assert row["result_json"] == payload and row["parameters"] is None
    ev = await store.fetch_one(select(schema.events).where(schema.events.c.id == "e1"))
    assert ev is not None and ev["time"] == when and ev["data"] == payload
    # Range queries compare instants, whatever the offset the caller used.
    noon = datetime(2026, 3, 1, 12, 30, 15, tzinfo=UTC)
    later = await store.scalar(select(func.count()).select_from(schema.observations)
                               .where(schema.observations.c.phenomenon_time >= noon))
    assert later == 1
    with pytest.raises(ValueError, match="naive"):
        await store.insert_rows(schema.observations, [{"datastream_id": 6,
                                                        "phenomenon_time": datetime(2026, 1, 1)}])


async def test_meta_get_set(store: Store) -> None:
    assert await store.get_meta("missing") is None
    await store.set_meta("cursor", {"seq": 1, "at": "x"})
    assert await store.get_meta("cursor") == {"seq": 1, "at": "x"}
    await asyncio.gather(*(store.set_meta("cursor", {"seq": i}) for i in range(20)))
    assert await store.get_meta("cursor") == {"seq": 19}  # the writer keeps submission order
    await store.set_meta("list", [1, "two"])
    assert await store.get_meta("list") == [1, "two"]


async def test_delete_in_chunks(store: Store) -> None:
    await store.insert_rows(schema.observations, obs(1, 120) + obs(2, 30))
    assert store.writer is not None
    commits = store.writer.stats.commits
    stream1 = schema.observations.c.datastream_id == 1
    gone = await store.delete_in_chunks(schema.observations, stream1, chunk=25)
    assert gone == 120
    assert store.writer.stats.commits - commits >= 5  # one job per chunk
    assert await count(store, 1) == 0 and await count(store, 2) == 30
    # Composite-free tables without a single primary key work too (by rowid / ctid).
    await store.set_meta("a", 1)
    assert await store.delete_in_chunks(schema.meta, schema.meta.c.key == "a", chunk=1) == 1


async def test_stop_flushes_queued_writes(backend_settings: Settings, clock: DrivenClock) -> None:
    first = create_store(backend_settings, clock)
    await first.start()
    tasks = [asyncio.ensure_future(first.insert_rows(schema.observations, obs(i, 50))) for i in range(100)]
    await asyncio.sleep(0)  # every call is admitted and queued, none committed yet
    assert first.writer is not None and first.writer.depth() == 5000
    await first.stop()
    assert [t.result() for t in tasks] == [50] * 100
    with pytest.raises(Unavailable) as stopped:
        await first.insert_rows(schema.observations, obs(1, 1, start=999))
    assert stopped.value.status == 503
    again = create_store(backend_settings, clock)
    await again.start()
    try:
        assert await count(again) == 5000
    finally:
        await again.stop()


async def test_full_buffer_refuses_with_overloaded(backend_settings: Settings, clock: DrivenClock) -> None:
    small = backend_settings.model_copy(update={"db_write_buffer": 100, "db_batch_ms": 200.0})
    st = create_store(small, clock)
    await st.start()
    try:
        first = asyncio.ensure_future(st.insert_rows(schema.observations, obs(1, 80)))
        await asyncio.sleep(0)
        with pytest.raises(Unavailable) as refused:
            await st.insert_rows(schema.observations, obs(2, 30))
        err = refused.value
        assert (err.status, err.code) == (503, "overloaded")
        assert err.problem()["retry_after"] >= 1
        assert await first == 80
        assert st.writer is not None and st.writer.stats.refused == 30
        # Room again once the first batch is committed.
        assert await st.insert_rows(schema.observations, obs(2, 30)) == 30
    finally:
        await st.stop()


async def test_ready_reports_ok(store: Store) -> None:
    assert await store.ready() == (True, "ok")
