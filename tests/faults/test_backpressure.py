"""Backpressure end to end: when the write buffer is full (here the private PostgreSQL is slow: another session
holds a lock on the observations table, so writes wait and pile up to ``db_write_buffer`` rows), ingest is
refused at once and counted: HTTP answers 503 ``overloaded`` with ``Retry-After`` (problem+json), the embedded
MQTT broker withholds the PUBACK (the device's connection is closed, so it sends the message again later).
Queues stay bounded. Once the database is fast again the writes that were waiting are stored and new ones are
accepted. (With the database away altogether, reads fail too: 503 ``store_unavailable``, also checked.)"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import aiomqtt
import asyncpg
import httpx
import orjson
import pytest

from citydata.app import Platform
from citydata.errors import Unavailable
from citydata.store.schema import observations
from tests.conftest import free_port, make_settings, token_for
from tests.faults.test_dependencies import _client, _obs, _stored, _stream, _until
from tests.store.test_outage import PrivatePostgres

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


T = TypeVar("T")
STEP_S = 60.0   # no step of the test below takes more than a few seconds, even on a loaded 2-core machine


def _awaiting(task: asyncio.Task[object]) -> str:
    """A task's chain of awaits, outermost first, down to the future it waits on."""
    out: list[str] = []
    obj: object = task.get_coro()
    while obj is not None and len(out) < 40:
        frame = getattr(obj, "cr_frame", None) or getattr(obj, "gi_frame", None) or getattr(obj, "ag_frame", None)
        if frame is None:
            out.append(repr(obj)[:160])
            break
        out.append(f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno} {frame.f_code.co_name}")
        obj = getattr(obj, "cr_await", None) or getattr(obj, "gi_yieldfrom", None) or getattr(obj, "ag_await", None)
    return " -> ".join(out)


def _tasks() -> str:
    """Where every task of the loop waits (for a step that did not finish)."""
    tasks = sorted(asyncio.all_tasks(), key=lambda t: t.get_name())
    return "\n".join(f"  {task.get_name()}: {_awaiting(task)}" for task in tasks[:80])


async def _sessions(pg_url: str) -> str:
    """What the private server's sessions are doing and waiting for."""
    try:
        conn = await asyncpg.connect(pg_url, timeout=5)
        try:
            rows = await conn.fetch(
                "SELECT pid, state, wait_event_type, wait_event, now() - xact_start AS xact_age, "
                "left(query, 160) AS query, pg_blocking_pids(pid) AS blocked_by FROM pg_stat_activity "
                "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()", timeout=5)
        finally:
            await conn.close(timeout=5)
    except Exception as err:
        return f"  (sessions not readable: {type(err).__name__}: {err})"
    return "\n".join(f"  {dict(r)}" for r in rows)


class Steps:
    """Every wait of the test is bounded: a step that does not finish in time fails with what it was, where
    each task of the loop waits and what the database sessions wait for, instead of hanging until the
    test's timeout with nothing to show. (The test once hung past its 300 s timeout with the event loop idle
    and no clue where; the cause was not reproduced in 20 runs since.)"""

    def __init__(self, pg_url: str, platform: Platform | None = None) -> None:
        self.pg_url, self.platform = pg_url, platform

    async def __call__(self, what: str, awaitable: Awaitable[T], seconds: float = STEP_S) -> T:
        # in a task of its own, so the step returns in time even if the code it waits on swallows cancellation
        task = asyncio.ensure_future(awaitable)
        done, _ = await asyncio.wait({task}, timeout=seconds)
        if task in done:
            return task.result()
        writer = self.platform.store.writer if self.platform is not None else None
        state = f"writer: {writer.depth()} rows buffered, {writer.stats}" if writer is not None else "writer: none"
        message = (f"step {what!r} did not finish within {seconds:.0f} s\n{state}\ntasks:\n{_tasks()}\n"
                   f"database sessions:\n{await _sessions(self.pg_url)}")
        task.cancel()
        raise AssertionError(message)


async def test_full_write_buffer_refuses_http_and_withholds_mqtt_puback(private_pg: PrivatePostgres,
                                                                          tmp_path: Path) -> None:
    settings = make_settings(tmp_path, mqtt_url=f"embedded://127.0.0.1:{free_port()}", db_url=private_pg.url,
                             db_schema=f"b_{uuid.uuid4().hex[:10]}", db_retry_s=120.0, db_write_buffer=100,
                             db_batch_ms=5.0)
    step = Steps(private_pg.url)
    p = Platform(settings)
    await step("platform start", p.__aenter__(), 120)
    step.platform = p
    try:
        async with _client(p) as http:
            await _overload_and_recover(p, http, settings.db_schema, private_pg, step)
    finally:
        await step("platform stop", p.__aexit__(None, None, None), 120)


async def _overload_and_recover(p: Platform, http: httpx.AsyncClient, db_schema: str | None,
                                private_pg: PrivatePostgres, step: Steps) -> None:
    ds = await step("create a datastream", _stream(p))
    token = await step("create a device token", token_for(p, "device"))
    auth = {"Authorization": f"Bearer {token}"}
    # a request before the lock, so the device token and the Datastream are known
    r = await step("POST before the lock", http.post(f"/v1.1/Datastreams({ds})/Observations", headers=auth,
                                                     json=_obs(499)))
    assert r.status_code == 201, r.text
    locker = await step("connect the locking session", asyncpg.connect(private_pg.url, timeout=10))
    lock = locker.transaction()
    await step("BEGIN", lock.start())
    await step("LOCK TABLE observations",
               locker.execute(f'LOCK TABLE "{db_schema}".observations IN ACCESS EXCLUSIVE MODE'))
    try:
        # 100 rows wait for the database: the buffer is full (the answer comes when it is back)
        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        hundred = [{"datastream_id": ds, "phenomenon_time": t0 + timedelta(seconds=n), "result_number": float(n)}
                   for n in range(100)]
        for _ in range(200):   # background writes (bus offsets) may hold a few rows of the buffer: try again
            waiting = asyncio.ensure_future(p.store.insert_rows(observations, hundred))
            await asyncio.sleep(0.05)
            if not waiting.done():
                break
            assert isinstance(waiting.exception(), Unavailable)
        assert p.store.writer is not None and not waiting.done()
        writer = p.store.writer
        await _until(lambda: asyncio.sleep(0, writer.depth() >= 100), 30, "a full buffer")
        refused_before = writer.stats.refused

        r = await step("POST with a full buffer", http.post(f"/v1.1/Datastreams({ds})/Observations",
                                                            headers=auth, json=_obs(500)))
        assert r.status_code == 503 and r.json()["code"] == "overloaded", r.text
        assert r.headers["content-type"] == "application/problem+json" and int(r.headers["Retry-After"]) >= 1

        # MQTT QoS 1 on the embedded broker: no PUBACK, the connection is closed instead
        async def publish_refused() -> None:
            with pytest.raises((aiomqtt.MqttError, TimeoutError)):
                async with aiomqtt.Client("127.0.0.1", p.mqtt_port, username=token, identifier="bp-dev",
                                          timeout=5) as dev:
                    await dev.publish(f"v1.1/Datastreams({ds})/Observations", orjson.dumps(_obs(501)), qos=1,
                                      timeout=5)

        await step("MQTT publish with a full buffer", publish_refused())
        assert writer.stats.refused >= refused_before + 2      # every refusal counted
        assert writer.depth() <= 100                            # bounded
        metrics = (await step("GET /metrics", http.get("/metrics"))).text
        assert 'citydata_internal_total{name="store_refused_rows"}' in metrics
    finally:
        await step("ROLLBACK (release the lock)", lock.rollback())
        await step("close the locking session", locker.close(timeout=10))
    assert await step("the 100 waiting rows", waiting, 120) == 100
    r = await step("POST after the lock", http.post(f"/v1.1/Datastreams({ds})/Observations", headers=auth,
                                                    json=_obs(500)))
    assert r.status_code == 201, r.text

    async def publish_accepted() -> None:
        async with aiomqtt.Client("127.0.0.1", p.mqtt_port, username=token, identifier="bp-dev",
                                  timeout=30) as dev:
            await dev.publish(f"v1.1/Datastreams({ds})/Observations", orjson.dumps(_obs(501)), qos=1, timeout=30)

    await step("MQTT publish after the lock", publish_accepted())
    assert await step("read the stored rows", _stored(p, ds)) == set(range(100)) | {499, 500, 501}

    # the database away altogether: checking a token not seen before needs a read, which cannot be done:
    # 503 store_unavailable with Retry-After (it was an unhandled 500 before)
    unseen = {"Authorization": f"Bearer {await step('create a second token', token_for(p, 'device'))}"}
    await step("stop the private PostgreSQL", asyncio.to_thread(private_pg.stop, "immediate"), 90)
    r = await step("POST with the database away", http.post(f"/v1.1/Datastreams({ds})/Observations",
                                                             headers=unseen, json=_obs(502)))
    assert r.status_code == 503 and r.json()["code"] in ("store_unavailable", "overloaded"), r.text
    assert int(r.headers["Retry-After"]) >= 1
    await step("start the private PostgreSQL", asyncio.to_thread(private_pg.start), 90)


def rows(stream: int, n: int) -> list[dict[str, object]]:
    """``n`` observations of one datastream, a second apart."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    return [{"datastream_id": stream, "phenomenon_time": t0 + timedelta(seconds=i), "result_number": 1.0}
            for i in range(n)]


async def test_a_write_bigger_than_the_buffer_is_taken_alone(tmp_path: Path) -> None:
    """Found by the test above: with ``db_write_buffer`` below the size of one write (the 222 reference places
    at start), that write was refused with "overloaded, retry later" for ever, even with the buffer empty, and
    the platform could not start. Now it is admitted alone; beside it, others are refused as before."""
    from citydata.clock import DrivenClock
    from citydata.store import create_store, schema

    st = create_store(make_settings(tmp_path, db_write_buffer=100, db_batch_ms=200.0), DrivenClock())
    await st.start()
    try:
        big = asyncio.ensure_future(st.insert_rows(schema.observations, rows(1, 250)))
        await asyncio.sleep(0)
        with pytest.raises(Unavailable) as refused:
            await asyncio.wait_for(st.insert_rows(schema.observations, rows(2, 1)), STEP_S)
        assert refused.value.code == "overloaded"
        assert await asyncio.wait_for(big, STEP_S) == 250
        assert await asyncio.wait_for(st.insert_rows(schema.observations, rows(2, 1)), STEP_S) == 1
    finally:
        await st.stop()


async def test_the_platforms_own_big_write_waits_for_room_instead_of_being_refused(tmp_path: Path) -> None:
    """Found in a full run: at start, the 1,000 seeded WiFi hotspots (a write bigger than a 100-row buffer) came
    while another start-up write was buffered, were refused with "overloaded", and the platform did not start.
    The platform's own writes (``wait=True``) wait for room; a client's write is refused as before."""
    from citydata.clock import DrivenClock
    from citydata.store import create_store, schema

    st = create_store(make_settings(tmp_path, db_write_buffer=100, db_batch_ms=200.0), DrivenClock())
    await st.start()
    try:
        first = asyncio.ensure_future(st.insert_rows(schema.observations, rows(1, 50)))
        await asyncio.sleep(0)
        with pytest.raises(Unavailable) as refused:  # a client's big write beside a buffered one: refused
            await asyncio.wait_for(st.insert_rows(schema.observations, rows(2, 250)), STEP_S)
        assert refused.value.code == "overloaded"
        own = asyncio.ensure_future(st.insert_rows(schema.observations, rows(3, 250), wait=True))
        await asyncio.sleep(0)
        assert not own.done()  # waiting for the buffered write to commit, not refused
        assert await asyncio.wait_for(first, STEP_S) == 50
        assert await asyncio.wait_for(own, STEP_S) == 250
    finally:
        await st.stop()
