"""``WifiService``: lines in (HTTP, syslog UDP/TCP), pseudonymised events and footfall rollups out.

The ingest path per line: parse (a plugin) → find the hotspot → check the time → pseudonymise (the MAC is
dropped here) → the session tracker (presence in memory) → ``wifi_events``. A line that fails any step is
dead-lettered (source ``wifi``) with its reason, MACs in it masked. Every ``wifi_flush_s`` the presence gathered
is added to ``wifi_presence`` and the dirty hours are rebuilt; dirty days every ``wifi_daily_every_s``.

Memory stays bounded: the tracker keeps at most ``wifi_max_open_sessions`` open sessions (and as many closed keys),
evicting the least recently heard from (counted in ``citydata_wifi_session_evictions_total``), and the presence
gathered between ticks is flushed early once it holds ``MAX_PRESENCE_BUFFER`` rows (if a presence flush is
already writing, at four times that). Writing presence and rebuilding rollups take two locks: a rebuild (which
can run for a minute over a busy hour) never holds the presence back, so ingest is neither refused nor allowed
to grow the buffer while it runs.

Session state is in memory on the node that ingests (run the WiFi listeners and the ingest API on one node).
After a restart an accounting session continues from its Acct-Session-Time; an association whose
disassociation comes after the restart counts as a one-instant session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter
from sqlalchemy import case, func, select

from citydata.errors import Unavailable
from citydata.ops.memory import release_free_memory
from citydata.ops.periodic import Periodic
from citydata.wifi.model import ParseError, RawRecord, WifiEvent, scrub
from citydata.wifi.parsers.base import Context, parse_line
from citydata.wifi.pseudonym import Pseudonymiser
from citydata.wifi.registry import HotspotRegistry
from citydata.wifi.rollups import Rollups, hour_dt
from citydata.wifi.schema import wifi_events, wifi_presence
from citydata.wifi.sessions import SessionTracker

if TYPE_CHECKING:
    from citydata.clock import Clock
    from citydata.config import Settings
    from citydata.geo import Geography
    from citydata.ingest.deadletter import DeadLetters
    from citydata.ops.metrics import Metrics
    from citydata.store import Store

log = logging.getLogger(__name__)
MAX_REASONS = 100
MAX_PRESENCE_BUFFER = 50_000     # presence rows gathered in memory before a flush is forced between ticks
TRIM_AFTER_S = 0.5               # a rollup rebuild at least this long: hand the freed memory back to the OS


@dataclass
class IngestResult:
    accepted: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "rejected": self.rejected, "errors": self.errors}


class WifiService:
    def __init__(self, *, settings: Settings, store: Store, clock: Clock, metrics: Metrics, geography: Geography,
                 dead_letters: DeadLetters, secret_key: bytes) -> None:
        s = settings
        self.settings, self.store, self.clock, self.metrics = settings, store, clock, metrics
        self.dead_letters = dead_letters
        self.pseudo = Pseudonymiser(secret_key, timezone=s.timezone, rotation_days=s.wifi_rotation_days,
                                    max_session_s=s.wifi_max_session_s)
        self.registry = HotspotRegistry(store, clock, geography)
        self.tracker = SessionTracker(lambda h: self.pseudo.period_of(hour_dt(h)),
                                      timeout_s=s.wifi_session_timeout_s, max_open=s.wifi_max_open_sessions)
        self._evictions_seen = dict(self.tracker.evicted)
        self.early_flushes = 0        # presence flushes forced between ticks by MAX_PRESENCE_BUFFER
        self.rollups = Rollups(store, self.pseudo)
        self.ctx_tz = self.pseudo.tz
        self._lock = asyncio.Lock()           # presence: take the tracker's delta and write it
        self._rebuild_lock = asyncio.Lock()   # rollups: rebuild the dirty hours and days
        self._early: asyncio.Task[dict[str, int]] | None = None   # an early presence flush under way
        self._last_days = self._last_hours = clock.monotonic()
        self._rebuild_cost = 0.0      # seconds the last rebuild of the dirty hours took
        self._flusher = Periodic("wifi-flush", clock, s.wifi_flush_s, self._tick)
        self._purger = Periodic("wifi-purge", clock, s.wifi_purge_interval_s, self.purge)
        self.listener: Any = None
        r = metrics.registry
        self.events_total = Counter("citydata_wifi_events_total", "WiFi session events accepted, by format, "
                                    "channel and whether the MAC was randomised", ["format", "channel", "randomised"],
                                    registry=r)
        self.rejected_total = Counter("citydata_wifi_rejected_total", "WiFi records dead-lettered, by reason code",
                                      ["reason"], registry=r)
        self.evictions_total = Counter(
            "citydata_wifi_session_evictions_total", "WiFi sessions evicted from memory at the "
            "wifi_max_open_sessions cap: state=open (closed, ended by eviction; its presence is kept) or "
            "state=closed (a closed session's key forgotten early: a later record of it counts as a new session)",
            ["state"], registry=r)
        for state in self.tracker.evicted:
            self.evictions_total.labels(state)
        metrics.gauge_callback(
            "citydata_wifi_tracker", "WiFi sessions held in memory: open (bounded by wifi_max_open_sessions), "
            "closed (keys kept to recognise a late record, as many at most) and presence (rows not yet written)",
            lambda: {"open": float(len(self.tracker.open)), "closed": float(len(self.tracker.closed)),
                     "presence": float(len(self.tracker.delta))})

    # -- lifecycle -------------------------------------------------------------------------------------------
    async def start(self, *, timers: bool = True, listen: bool = True) -> None:
        if await self.registry.load(seed=self.settings.wifi_seed_hotspots):
            log.info("loaded %d WiFi hotspots", len(self.registry.by_id))
        if timers:
            self._flusher.start()
            self._purger.start()
        if listen and (self.settings.wifi_syslog_udp_port or self.settings.wifi_syslog_tcp_port):
            from citydata.wifi.syslog import SyslogListener

            self.listener = SyslogListener(self, self.settings.wifi_syslog_host, self.settings.wifi_syslog_udp_port,
                                           self.settings.wifi_syslog_tcp_port, self.settings.wifi_syslog_format)
            await self.listener.start()

    async def stop(self) -> None:
        if self.listener is not None:
            await self.listener.stop()
        await self._flusher.stop()
        await self._purger.stop()
        await self.presence_flushed()
        with contextlib.suppress(Exception):
            await self.flush(days=True)

    # -- ingest ----------------------------------------------------------------------------------------------
    def context(self) -> Context:
        return Context(now=self.clock.now(), tz=self.ctx_tz)

    async def ingest_lines(self, lines: list[str], fmt: str, channel: str, *,
                           refuse_when_busy: bool = False) -> IngestResult:
        """Parse and ingest text lines (blank lines are skipped). Bad lines are dead-lettered, not raised.

        ``refuse_when_busy`` (HTTP): while the presence buffer is at four times its bound and a presence flush is
        still writing, refuse the whole request with ``Unavailable`` (503, Retry-After, counted) before anything
        of it is taken, rather than hold it until the flush ends. Without it (syslog, imports) the call waits for
        room. (A rollup rebuild does not hold the presence back: see ``flush``.)"""
        if refuse_when_busy and len(self.tracker.delta) >= 4 * MAX_PRESENCE_BUFFER and self._lock.locked():
            self.metrics.rejected.labels("wifi", "overloaded").inc(len(lines))
            raise Unavailable("WiFi presence is still being written; retry shortly",
                              code="overloaded", retry_after=2)
        ctx = self.context()
        result = IngestResult()
        records: list[tuple[int, str, RawRecord]] = []
        bad: list[tuple[int, str, str, str]] = []
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                records.append((n, line, parse_line(line, fmt, ctx)))
            except ParseError as err:
                bad.append((n, line, str(err), "unparseable"))
        events, more_bad = self._edge(records, ctx)
        bad += more_bad
        await self._accept(events, channel, refuse_when_busy=refuse_when_busy)
        result.accepted = len(events)
        if bad:
            await self._reject(bad, f"{channel}:{fmt}", result)
        return result

    async def ingest_records(self, records: list[RawRecord], channel: str = "api") -> IngestResult:
        """Ingest already parsed records (a detail-file import, the benchmark)."""
        ctx = self.context()
        result = IngestResult()
        events, bad = self._edge([(n, "", r) for n, r in enumerate(records, start=1)], ctx)
        await self._accept(events, channel)
        result.accepted = len(events)
        if bad:
            await self._reject(bad, channel, result)
        return result

    def _edge(self, records: list[tuple[int, str, RawRecord]], ctx: Context
              ) -> tuple[list[tuple[WifiEvent, dict[str, Any]]], list[tuple[int, str, str, str]]]:
        """Hotspot, time and pseudonym for each record: (events with their hotspot, rejections)."""
        s = self.settings
        latest = ctx.now + timedelta(seconds=s.wifi_max_skew_s)
        earliest = ctx.now - timedelta(days=s.wifi_max_age_days)
        events: list[tuple[WifiEvent, dict[str, Any]]] = []
        bad: list[tuple[int, str, str, str]] = []
        for n, line, rec in records:
            hotspot = self.registry.resolve(rec.hotspot, rec.ap_mac)
            if hotspot is None:
                bad.append((n, line, "unknown hotspot (NAS-Identifier, syslog host or Called-Station-Id)",
                            "unknown_hotspot"))
                continue
            if rec.at > latest:
                bad.append((n, line, "time is in the future", "future"))
                continue
            if rec.at < earliest:
                bad.append((n, line, f"older than {s.wifi_max_age_days} days", "too_old"))
                continue
            try:
                events.append((self.pseudo.pseudonymise(rec, hotspot["id"]), hotspot))
            except ParseError as err:
                bad.append((n, line, str(err), "bad_mac"))
            rec.mac = ""       # the raw MAC goes no further
        return events, bad

    async def _accept(self, events: list[tuple[WifiEvent, dict[str, Any]]], channel: str, *,
                      refuse_when_busy: bool = False) -> None:
        if not events:
            return
        now = self.clock.now()
        rows = []
        counts: dict[tuple[str, bool], int] = {}
        for ev, hs in events:
            sub = hs["subdistrict_code"] or ""
            self.tracker.apply(ev, hs["zone"], sub)
            rows.append({"at": ev.at, "hotspot_id": ev.hotspot_id, "zone": hs["zone"],
                         "subdistrict_code": hs["subdistrict_code"], "kind": ev.kind,
                         "device": ev.devices[self.pseudo.period_of(ev.at)], "randomised": ev.randomised,
                         "session_time_s": ev.session_time_s, "in_octets": _int32(ev.in_octets),
                         "out_octets": _int32(ev.out_octets), "fmt": ev.fmt, "received_at": now})
            key = (ev.fmt, ev.randomised)
            counts[key] = counts.get(key, 0) + 1
        self._count_evictions()
        await self.store.insert_rows(wifi_events, rows, conflict="error")
        # counted once committed, one labelled child per format/randomised pair (a labels() lookup per line was
        # 12% of the server's busy time under the load test)
        for (fmt, randomised), n in counts.items():
            self.events_total.labels(fmt, channel, "yes" if randomised else "no").inc(n)
        self.metrics.ingested.labels("wifi", channel).inc(len(rows))
        # Presence past MAX_PRESENCE_BUFFER rows is written now by a task of its own (a request does not wait for
        # some 25 writer jobs), unless a presence flush is already writing (the next one takes the rest); past four
        # times that a waiting caller (syslog, import) waits for room, and an HTTP caller does not: the next HTTP
        # requests are refused until there is room (``refuse_when_busy``), so memory stays bounded either way.
        pending = len(self.tracker.delta)
        if pending >= MAX_PRESENCE_BUFFER and not self._lock.locked():
            self._flush_presence_soon()        # by a task of its own: this request is answered now
        elif pending >= 4 * MAX_PRESENCE_BUFFER and not refuse_when_busy:
            self.early_flushes += 1
            await self.flush(days=False, hours=False)

    def _flush_presence_soon(self) -> None:
        if self._early is not None and not self._early.done():
            return
        self.early_flushes += 1
        self._early = asyncio.create_task(self.flush(days=False, hours=False), name="wifi-presence-flush")
        self._early.add_done_callback(_log_failure)

    async def presence_flushed(self) -> None:
        """Wait for an early presence flush under way (tests, shutdown)."""
        if self._early is not None:
            await asyncio.gather(self._early, return_exceptions=True)

    def _count_evictions(self) -> None:
        for state, n in self.tracker.evicted.items():
            if n > self._evictions_seen[state]:
                self.evictions_total.labels(state).inc(n - self._evictions_seen[state])
                self._evictions_seen[state] = n

    async def _reject(self, bad: list[tuple[int, str, str, str]], channel: str, result: IngestResult) -> None:
        result.rejected = len(bad)
        for n, _line, reason, _code in bad[:MAX_REASONS]:
            result.errors.append({"line": n, "reason": reason})
        for _n, _line, _reason, code in bad:
            self.rejected_total.labels(code).inc()
        await asyncio.gather(*(self.dead_letters.record("wifi", channel, scrub(line), reason, {"line": n, "code": code})
                               for n, line, reason, code in bad))

    # -- rollups ---------------------------------------------------------------------------------------------
    async def _tick(self) -> None:
        """Presence every tick; the dirty hours when the last rebuild's cost allows (at most a fifth of the
        time goes to rebuilding a busy hour; the rebuild reads on a read connection and holds the writer only
        to replace the result rows), the dirty days every ``wifi_daily_every_s``."""
        now = self.clock.monotonic()
        hours = now - self._last_hours >= max(self.settings.wifi_flush_s, 4 * self._rebuild_cost)
        days = hours and now - self._last_days >= self.settings.wifi_daily_every_s
        await self.flush(days=days, hours=hours)
        self.tracker.expire(self.clock.now().timestamp())

    async def flush(self, *, days: bool = True, hours: bool = True) -> dict[str, int]:
        """Write the presence gathered so far and rebuild the dirty hours (and days). The rebuild reads what
        is committed and takes the dirty marks at its start; presence written meanwhile (marked dirty after its
        commit) waits for the next rebuild."""
        async with self._lock:     # rows a failed write did not commit go back to the tracker for the next flush
            written = await self.rollups.flush(self.tracker.take(), self.tracker.give_back)
        if not hours:
            return {"presence_rows": written, "hours": 0, "days": 0}
        async with self._rebuild_lock:
            began = self.clock.monotonic()
            nhours, ndays = await self.rollups.recompute_dirty(days=days)
            self._last_hours = self.clock.monotonic()
            self._rebuild_cost = self._last_hours - began
            if days:
                self._last_days = self._last_hours
            if self._rebuild_cost >= TRIM_AFTER_S:     # a big rebuild's rows are freed: give the memory back
                await asyncio.to_thread(release_free_memory)
        return {"presence_rows": written, "hours": nhours, "days": ndays}

    async def purge(self) -> dict[str, int]:
        """Delete raw events and presence older than ``wifi_raw_retention_days`` (the rollups stay)."""
        days = self.settings.wifi_raw_retention_days
        if days <= 0:
            return {"events": 0, "presence": 0}
        cutoff = self.clock.now() - timedelta(days=days)
        events = await self.store.delete_in_chunks(wifi_events, wifi_events.c.at < cutoff)
        presence = await self.store.delete_in_chunks(wifi_presence, wifi_presence.c.hour < cutoff)
        return {"events": events, "presence": presence}

    # -- figures ---------------------------------------------------------------------------------------------
    async def stats(self) -> dict[str, Any]:
        since = self.clock.now() - timedelta(hours=24)
        row = await self.store.fetch_one(
            select(func.count().label("events"),
                   func.sum(case((wifi_events.c.randomised, 1), else_=0)).label("rnd"),
                   func.max(wifi_events.c.at).label("last")).where(wifi_events.c.at >= since))
        dead = await self.dead_letters.count("wifi")
        assert row is not None
        last: datetime | None = row["last"]
        return {"hotspots": len(self.registry.by_id), "zones": self.registry.zones(),
                "events_24h": int(row["events"] or 0), "randomised_events_24h": int(row["rnd"] or 0),
                "last_event_at": last.isoformat() if last else None, "open_sessions": len(self.tracker.open),
                "dead_letters": dead, "repeats_ignored": self.tracker.repeats,
                "max_open_sessions": self.tracker.max_open, "sessions_evicted": dict(self.tracker.evicted),
                "early_presence_flushes": self.early_flushes,
                "rotation_days": self.pseudo.rotation_days,
                "listener": self.listener.describe() if self.listener is not None else None}


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("an early WiFi presence flush failed: %s", task.exception())


def _int32(value: int | None) -> int | None:
    """Octet counters beyond a 32-bit column are clamped (they are informative only)."""
    return None if value is None else min(value, 2**31 - 1)
