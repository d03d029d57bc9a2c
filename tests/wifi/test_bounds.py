"""Memory stays bounded with many more devices than the cap (issue 8): the session tracker keeps at most
``wifi_max_open_sessions`` open sessions and closed keys, evicting the least recently heard from as a session
ended by eviction (counted), and the footfall already gathered for an evicted session is kept."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from citydata.clock import DrivenClock
from citydata.errors import Unavailable
from citydata.wifi import rollups as wifi_rollups
from citydata.wifi import service as wifi_service
from citydata.wifi.model import WifiEvent
from citydata.wifi.schema import wifi_footfall_hourly, wifi_presence
from citydata.wifi.sessions import SessionTracker
from tests.wifi.conftest import NOW, make_wifi

T0 = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)
CAP = 50
N = 40 * CAP


def ev(kind: str, n: int, seconds: float) -> WifiEvent:
    return WifiEvent(at=T0 + timedelta(seconds=seconds), kind=kind, hotspot_id="wifi-kata-001",
                     devices={0: f"d{n}"}, randomised=False, session_key=f"a{n}", session_time_s=None)


def test_open_sessions_and_closed_keys_stay_under_the_cap_and_the_counts_stay_right() -> None:
    tr = SessionTracker(lambda h: 0, timeout_s=7200, max_open=CAP)
    for n in range(N):                        # N devices associate, one a second, none leaves
        tr.apply(ev("start", n, n), "kata", "830106")
        assert len(tr.open) <= CAP and len(tr.closed) <= CAP
    assert tr.evicted["open"] == N - CAP
    assert tr.evicted["closed"] == N - 2 * CAP  # the closed keys of the evicted: the latest CAP remembered
    # every device was counted once, in the hour it came, whatever happened to its session since
    assert {d for (_, _, d) in tr.delta} == {f"d{n}" for n in range(N)}
    assert sum(p.sessions for p in tr.delta.values()) == N
    # the session heard from most recently is still open; the last one evicted is remembered as closed
    assert f"a{N - 1}" in tr.open and f"a{N - CAP - 1}" in tr.closed
    before = {k: (p.sessions, p.dwell_s) for k, p in tr.delta.items()}
    # an evicted session's disassociation, 10 minutes on: it goes on from where eviction closed it (at its
    # start: an association covers only its own instant), one session still, 600 s of dwell added
    n = N - CAP - 1
    tr.apply(ev("stop", n, n + 600), "kata", "830106")
    key = (int(T0.timestamp()), "wifi-kata-001", f"d{n}")
    assert tr.delta[key].sessions == before[key][0] == 1
    assert tr.delta[key].dwell_s == before[key][1] + 600
    assert len(tr.open) <= CAP and len(tr.closed) <= CAP


def test_a_session_heard_from_again_is_not_the_one_evicted() -> None:
    tr = SessionTracker(lambda h: 0, max_open=2)
    tr.apply(ev("start", 1, 0), "kata", "")
    tr.apply(ev("start", 2, 1), "kata", "")
    tr.apply(ev("interim", 1, 2), "kata", "")       # device 1 again: device 2 is now the least recently heard
    tr.apply(ev("start", 3, 3), "kata", "")
    assert list(tr.open) == ["a1", "a3"] and list(tr.closed) == ["a2"] and tr.evicted == {"open": 1, "closed": 0}


async def test_service_bounds_sessions_counts_evictions_and_flushes_presence_early(
        store: Any, backend_settings: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(wifi_service, "MAX_PRESENCE_BUFFER", 300)
    clock = DrivenClock(NOW)
    wifi = await make_wifi(store, clock, backend_settings, wifi_max_open_sessions=100)
    hotspots = list(wifi.registry.by_id)[:50]
    rng = random.Random(8)
    macs: set[str] = set()
    for _ in range(20):                                 # 2,000 new devices, 100 lines a request
        lines = []
        for _ in range(100):
            mac = "02:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(5))
            macs.add(mac)
            lines.append(orjson.dumps({"event": "associate", "mac": mac, "hotspot_id": rng.choice(hotspots),
                                       "time": clock.now().isoformat()}).decode())
        result = await wifi.ingest_lines(lines, "jsonl", "http")
        assert result.accepted == 100
        assert len(wifi.tracker.open) <= 100 and len(wifi.tracker.closed) <= 100
        await wifi.presence_flushed()                   # written by a task of its own, the request answered
        assert len(wifi.tracker.delta) < 300            # flushed early, no timer running
        clock.advance(1)
    stats = await wifi.stats()
    assert stats["open_sessions"] == 100 and stats["sessions_evicted"]["open"] == len(macs) - 100
    assert stats["early_presence_flushes"] > 0
    registry = wifi.metrics.registry
    assert registry.get_sample_value("citydata_wifi_session_evictions_total", {"state": "open"}) == len(macs) - 100
    await wifi.flush()
    row = await store.fetch_one(select(func.count(func.distinct(wifi_presence.c.device)).label("devices"),
                                       func.sum(wifi_presence.c.sessions).label("sessions")))
    assert row is not None and (row["devices"], row["sessions"]) == (len(macs), len(macs))


async def test_http_lines_are_refused_with_a_retry_while_a_full_buffer_waits_for_a_flush(
        store: Any, backend_settings: Any, monkeypatch: Any) -> None:
    """With the presence buffer at four times its bound and a presence flush still writing, an HTTP request is
    refused whole (503 + Retry-After, counted) before any of it is taken; syslog and imports wait instead."""
    monkeypatch.setattr(wifi_service, "MAX_PRESENCE_BUFFER", 25)
    clock = DrivenClock(NOW)
    wifi = await make_wifi(store, clock, backend_settings)
    hotspot = next(iter(wifi.registry.by_id))

    def lines(first: int, n: int) -> list[str]:
        return [orjson.dumps({"event": "associate", "mac": f"02:00:00:00:{i // 256:02x}:{i % 256:02x}",
                              "hotspot_id": hotspot, "time": clock.now().isoformat()}).decode()
                for i in range(first, first + n)]

    async with wifi._lock:                                      # a presence flush in progress
        # taken whole (it fills the buffer to four times its bound), and answered without waiting for the flush
        filled = await wifi.ingest_lines(lines(0, 100), "jsonl", "http", refuse_when_busy=True)
        assert filled.accepted == 100 and len(wifi.tracker.delta) == 100
        with pytest.raises(Unavailable) as refused:
            await wifi.ingest_lines(lines(100, 10), "jsonl", "http", refuse_when_busy=True)
        assert refused.value.code == "overloaded" and refused.value.extra["retry_after"] == 2
        assert len(wifi.tracker.delta) == 100                   # nothing of the refused request was taken
        waiting = asyncio.create_task(wifi.ingest_lines(lines(200, 10), "jsonl", "syslog-udp"))
        await asyncio.sleep(0.05)
        assert not waiting.done()                                # syslog waits for the flush instead
    assert (await waiting).accepted == 10
    assert wifi.metrics.registry.get_sample_value("citydata_rejected_total",
                                                  {"kind": "wifi", "code": "overloaded"}) == 10
    # once the flush let go, HTTP is taken again
    assert (await wifi.ingest_lines(lines(300, 10), "jsonl", "http", refuse_when_busy=True)).accepted == 10


async def test_a_long_rollup_rebuild_does_not_hold_the_presence_back(
        store: Any, backend_settings: Any, monkeypatch: Any) -> None:
    """While a rebuild runs (here: held), lines are taken, presence past its bound is written at once, and the
    rebuild after it covers what was written meanwhile."""
    monkeypatch.setattr(wifi_service, "MAX_PRESENCE_BUFFER", 25)
    clock = DrivenClock(NOW)
    wifi = await make_wifi(store, clock, backend_settings)
    hotspot = next(iter(wifi.registry.by_id))
    lines = [orjson.dumps({"event": "associate", "mac": f"02:00:00:00:00:{i:02x}", "hotspot_id": hotspot,
                           "time": clock.now().isoformat()}).decode() for i in range(60)]
    async with wifi._rebuild_lock:                              # a rebuild of a busy hour in progress
        took = await asyncio.wait_for(wifi.ingest_lines(lines, "jsonl", "http", refuse_when_busy=True), 5)
        await asyncio.wait_for(wifi.presence_flushed(), 5)
        assert took.accepted == 60 and wifi.early_flushes == 1   # flushed early although the rebuild runs
        assert len(wifi.tracker.delta) == 0
        stored = await store.scalar(select(func.count()).select_from(wifi_presence))
        assert stored == 60
        rebuild = asyncio.create_task(wifi.flush())
        await asyncio.sleep(0.05)
        assert not rebuild.done()                               # rollups wait for the running rebuild
    assert (await rebuild)["hours"] >= 1
    rows = await store.fetch_all(select(wifi_footfall_hourly))
    assert sum(int(r["devices"]) for r in rows if r["hotspot_id"] == hotspot) == 60


async def test_presence_a_failed_write_did_not_commit_is_written_by_the_next_flush(
        store: Any, backend_settings: Any, monkeypatch: Any) -> None:
    """Presence is written in chunks, one commit each. A chunk that fails (the store refusing, a disk error) and
    the chunks after it go back to the tracker, merged with what was gathered meanwhile; the next flush writes
    them. Nothing is lost and nothing committed is counted twice (the upsert adds sessions and dwell)."""
    monkeypatch.setattr(wifi_rollups, "PRESENCE_CHUNK", 10)
    clock = DrivenClock(NOW)
    wifi = await make_wifi(store, clock, backend_settings)
    hotspot = next(iter(wifi.registry.by_id))

    def lines(event: str, first: int, n: int, after_s: int = 0) -> list[str]:
        at = (clock.now() + timedelta(seconds=after_s)).isoformat()
        return [orjson.dumps({"event": event, "mac": f"02:00:00:00:{i // 256:02x}:{i % 256:02x}",
                              "hotspot_id": hotspot, "time": at}).decode() for i in range(first, first + n)]

    assert (await wifi.ingest_lines(lines("associate", 0, 45), "jsonl", "http")).accepted == 45
    real_write, calls = store.write, []

    async def failing_third_chunk(op: Any, rows: int = 1, **kw: Any) -> Any:
        calls.append(rows)
        if len(calls) == 3:
            # meanwhile devices 40-49 leave a minute later: 40-44 are among the rows about to be given back
            took = await wifi.ingest_lines(lines("disassociate", 40, 10, after_s=60), "jsonl", "http")
            assert took.accepted == 10
            raise OSError("disk I/O error")
        return await real_write(op, rows, **kw)

    monkeypatch.setattr(store, "write", failing_third_chunk)
    with pytest.raises(OSError):
        await wifi.flush(hours=False)
    assert calls == [10, 10, 10]                            # two chunks committed, the third failed
    assert await store.scalar(select(func.count()).select_from(wifi_presence)) == 20
    assert len(wifi.tracker.delta) == 30                    # devices 20-44 given back, and 45-49 (new)
    monkeypatch.setattr(store, "write", real_write)
    await wifi.flush()
    row = await store.fetch_one(select(func.count().label("rows"), func.sum(wifi_presence.c.sessions).label("s"),
                                       func.sum(wifi_presence.c.dwell_s).label("dwell")))
    assert row is not None and (row["rows"], row["s"], float(row["dwell"])) == (50, 50, 5 * 60.0)
    hourly = await store.fetch_all(select(wifi_footfall_hourly).where(wifi_footfall_hourly.c.hotspot_id == hotspot))
    assert sum(int(r["devices"]) for r in hourly) == 50 and sum(int(r["sessions"]) for r in hourly) == 50
