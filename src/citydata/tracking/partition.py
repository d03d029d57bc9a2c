"""Tracking partitioned by traveller (multi-node mode, docs/scale.md).

Any node takes a traveller's pings over HTTP (``TrackingService.report`` in shared mode): it checks them,
commits them to ``tracking_pings`` (the acknowledgement contract: 202 only after that commit, docs/durability.md)
and publishes one ``tracking.pings`` event keyed by the traveller, so it lands in the traveller's partition.
The node holding the partition's lease runs a ``TrackingPartition``: one member of the durable group
``tracking.p<k>`` on ``tracking.>``, so it sees the traveller's arrival, pings and departure in the order they
were published, and runs the geofence and the silent-tracker timer for the travellers of its partition.

Exactly once, across a takeover:

* every event it derives (zone entered/left, still outside, overdue, overdue cleared) has an id computed from
  what it is about (traveller, fence, the fix or deadline that caused it), and is published *before* any state
  that reflects it is committed: a new owner that replays the same input derives the same ids, and JetStream's
  duplicate window drops the second copy;
* the state (last seen, overdue since, fence states, the flags of the pings the geofence ignored) and the
  partition's position (``meta`` key ``tracking:p<k>``, the last stream sequence applied) are committed in one
  transaction, on the last event of each fetched batch and after each timer round; the bus acknowledges a
  batch only after that commit (``batch_ack``);
* a node taking the partition over reloads the state of the partition's active travellers from the store,
  repositions the durable consumer right after the committed position (``Bus.resume_at``) and skips anything
  at or before it, so an input already reflected in the state is never applied twice.

A failure while applying an event (the store or the bus away) restarts the partition the same way (reload,
reposition), so the events behind it are never applied out of order.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.cluster.partition import partition_of
from citydata.errors import CityDataError
from citydata.events import Event, make_event
from citydata.store import schema as store_schema
from citydata.store.fencing import Fenced, check_fence, claim
from citydata.tracking.arrivals import iso
from citydata.tracking.geofence import FenceState, Fix, Transition
from citydata.tracking.overdue import OverdueMonitor
from citydata.tracking.pings import FLAG_TOO_FAST, FLAG_TOO_LATE
from citydata.tracking.schema import tracking_fence_state, tracking_pings, tracking_travellers
from citydata.tracking.state import from_epoch, last_seen_row, to_epoch

if TYPE_CHECKING:
    from citydata.bus import Consumer, Delivery
    from citydata.tracking.service import TrackingService
    from citydata.tracking.state import Runtime

log = logging.getLogger(__name__)
GROUP = "tracking"
PATTERN = "tracking.>"
PINGS = "tracking.pings"                 # pings a node stored, for the traveller's partition owner
ZONES_CHANGED = "tracking.zones_changed"  # a zone was added or deleted: every node reloads the zones
RESTART_DELAY_S = 1.0


def stable_id(*parts: object) -> str:
    """An event id derived from what the event is about, so a replay after a takeover publishes the same id
    (and JetStream's duplicate window drops the copy)."""
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


class TrackingPartition:
    """The geofence and the silent-tracker timer of the travellers of one partition."""

    def __init__(self, service: TrackingService, partition: int, *, fence: int | None = None) -> None:
        self.svc, self.k, self.fence = service, partition, fence
        self.meta_key = f"tracking:p{partition}"
        self.travellers: dict[str, Runtime] = {}
        self.monitor = OverdueMonitor(service.monitor.limit_s, self._last_report_of)
        self.applied = 0                       # the last stream sequence applied to the state in memory
        self.committed = 0
        self.stats = {"events": 0, "skipped": 0, "derived": 0, "commits": 0, "restarts": 0}
        self._attention: set[str] = set()
        self._dirty: set[str] = set()
        self._fences: dict[tuple[str, str], dict[str, Any]] = {}
        self._flags: dict[tuple[str, float], int] = {}
        self._lock = asyncio.Lock()
        self._consumer: Consumer | None = None
        self._timer: asyncio.Task[None] | None = None
        self._restart_task: asyncio.Task[None] | None = None
        self._broken = False
        self._stopped = False
        self._halting: asyncio.Task[None] | None = None   # giving the partition up (a newer owner fenced us)

    # -- lifecycle -------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Rebuild the state from the store, reposition the group after the committed position, consume."""
        svc, bus = self.svc, self.svc.bus
        self._reset()
        if self.fence is not None:   # a takeover: from now on the previous owner can commit nothing
            await claim(svc.store, self.meta_key, self.fence)
        stored = await svc.store.get_meta(self.meta_key)
        self.applied = self.committed = int(stored or 0)
        keep = self._mine
        for rt, _token in await svc.load_runtimes(keep, partition=self.k):
            self.travellers[rt.traveller_id] = rt
            if rt.overdue_since is None:
                self.monitor.reported(rt.traveller_id, rt.last_report or rt.arrived)
            if svc.engine.needs_tick(rt.fences.states):
                self._attention.add(rt.traveller_id)
        await bus.resume_at(GROUP, PATTERN, after=self.committed or None, partition=self.k)
        self._consumer = await bus.consume(GROUP, PATTERN, self._handle, partition=self.k, batch_ack=True)
        if self._timer is None:
            self._timer = asyncio.create_task(self._run_timer(), name=f"tracking-timer-p{self.k}")
        log.info("tracking partition %d: %d active travellers, resumes after %d", self.k, len(self.travellers),
                 self.committed)

    async def stop(self) -> None:
        """Hand the partition over: stop consuming (unacknowledged events go back), commit the state."""
        await self._halt()
        async with self._lock:
            with contextlib.suppress(CityDataError):
                await self._commit()

    async def abandon(self) -> None:
        """The lease is lost: stop at once, commit nothing (the next owner rebuilds from the last commit)."""
        await self._halt()

    async def _halt(self) -> None:
        self._stopped = True
        for task in (self._timer, self._restart_task):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._timer = self._restart_task = None
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.close()

    def _reset(self) -> None:
        self.travellers.clear()
        self.monitor = OverdueMonitor(self.monitor.limit_s, self._last_report_of)
        self._attention.clear()
        self._dirty.clear()
        self._fences.clear()
        self._flags.clear()
        self._broken = False

    def _mine(self, traveller_id: str) -> bool:
        return partition_of(traveller_id, self.svc.bus.partitions) == self.k

    async def _restart(self) -> None:
        """After a failure: drop the state in memory, rebuild it from the last commit and replay from there."""
        while not self._stopped:
            await asyncio.sleep(RESTART_DELAY_S)
            try:
                if self._consumer is not None:
                    consumer, self._consumer = self._consumer, None
                    await consumer.close()
                self.stats["restarts"] += 1
                await self.start()
                return
            except Fenced as err:
                self._give_up(err)
                return
            except CityDataError as err:
                log.warning("tracking partition %d could not restart (%s); retrying", self.k, err.code)

    def _give_up(self, err: Fenced) -> None:
        """A newer owner holds the partition (it refused our write): stop for good, commit nothing more."""
        log.error("tracking partition %d: %s; giving it up", self.k, err.message)
        self._stopped = True
        if self._halting is None:
            self._halting = asyncio.create_task(self._halt(), name=f"tracking-fenced-p{self.k}")

    def _fail(self, err: BaseException) -> None:
        log.warning("tracking partition %d failed applying an event (%s); rebuilding from the last commit",
                    self.k, type(err).__name__)
        self._broken = True
        if self._restart_task is None or self._restart_task.done():
            self._restart_task = asyncio.create_task(self._restart(), name=f"tracking-restart-p{self.k}")

    # -- events ----------------------------------------------------------------------------------------------
    async def _handle(self, delivery: Delivery) -> None:
        if self._broken:
            raise RuntimeError("the partition is being rebuilt")
        async with self._lock:
            if self._broken:
                raise RuntimeError("the partition is being rebuilt")
            try:
                if delivery.seq > self.applied:
                    await self._apply(delivery.event)
                    self.applied = delivery.seq
                    self.stats["events"] += 1
                else:
                    self.stats["skipped"] += 1        # reflected in the committed state already
                if delivery.last_in_batch:
                    await self._commit()
            except Fenced as err:
                self._give_up(err)
                raise
            except Exception as err:
                self._fail(err)
                raise

    async def _apply(self, event: Event) -> None:
        d = event.data
        tid = d.get("traveller_id")
        if not isinstance(tid, str) or not self._mine(tid):
            return
        if event.kind == PINGS:
            await self._pings(tid, d)
        elif event.kind == "tracking.arrived":
            await self._known(tid)
        elif event.kind == "tracking.departed":
            rt = self.travellers.pop(tid, None)
            if rt is not None and rt.overdue_since is not None:
                await self._publish([self._with_id(self.svc._overdue_cleared(rt, event.time), rt.overdue_since)])
            self.monitor.forget(tid)
            self._attention.discard(tid)
            self._dirty.discard(tid)

    async def _known(self, tid: str) -> Runtime | None:
        """The traveller's state, loaded from the store when this partition has not seen it yet."""
        rt = self.travellers.get(tid)
        if rt is None:
            for loaded, _token in await self.svc.load_runtimes(lambda t: t == tid, traveller_id=tid):
                rt = self.travellers[tid] = loaded
                if rt.overdue_since is None:
                    self.monitor.reported(tid, rt.last_report or rt.arrived)
        return rt

    async def _pings(self, tid: str, d: dict[str, Any]) -> None:
        rt = await self._known(tid)
        if rt is None or not rt.active:
            return
        svc = self.svc
        received = to_epoch(datetime.fromisoformat(d["received_at"]))
        now = from_epoch(received)
        fixes = [Fix(float(f[0]), float(f[1]), float(f[2]), float(f[3])) for f in d.get("fixes") or []]
        result = svc.engine.process(rt.fences, fixes, received)
        for fix in result.too_fast:
            self._flags[(tid, fix.t)] = self._flags.get((tid, fix.t), 0) | FLAG_TOO_FAST
        for fix in result.too_late:
            self._flags[(tid, fix.t)] = self._flags.get((tid, fix.t), 0) | FLAG_TOO_LATE
        if result.accepted:
            newest = max(result.accepted)
            if rt.last_fix is None or newest.t >= rt.last_fix.t:
                rt.last_fix = newest
        evs: list[Event] = []
        if fixes:
            if rt.last_report is None or received > rt.last_report:
                rt.last_report = received
            self._dirty.add(tid)
            if rt.overdue_since is not None:
                evs.append(self._with_id(svc._overdue_cleared(rt, now), rt.overdue_since))
                rt.overdue_since = None
            self.monitor.reported(tid, rt.last_report)
        evs.extend(self._derived(rt, result.transitions, now))
        await self._publish(evs)
        self._note_fences(rt, result.transitions, now)
        if svc.engine.needs_tick(rt.fences.states):
            self._attention.add(tid)

    def _with_id(self, event: Event, *parts: object) -> Event:
        return event.model_copy(update={"id": stable_id(event.kind, event.key, *parts)})

    def _derived(self, rt: Runtime, transitions: list[Transition], now: datetime) -> list[Event]:
        out = []
        repeat = self.svc.settings.tracking_still_outside_s
        for ev in self.svc._transition_events(rt, transitions, now):
            d = ev.data
            extra: tuple[object, ...] = ()
            if ev.kind == "tracking.still_outside":
                since = to_epoch(datetime.fromisoformat(d["since"]))
                extra = (d["since"], int((to_epoch(now) - since) // repeat))
            out.append(self._with_id(ev, d["zone"], d["at"], *extra))
        return out

    async def _publish(self, evs: list[Event]) -> None:
        if evs:
            await self.svc.bus.publish_many(evs)
            self.stats["derived"] += len(evs)

    def _note_fences(self, rt: Runtime, transitions: list[Transition], now: datetime) -> None:
        for fid in {tr.fence_id for tr in transitions if tr.kind == "change"}:
            st = rt.fences.states.get(fid, FenceState("outside"))
            self._fences[(rt.traveller_id, fid)] = {
                "traveller_id": rt.traveller_id, "fence_id": fid, "state": st.state,
                "since": from_epoch(st.since) if st.since else None, "updated_at": now}

    # -- the timer -------------------------------------------------------------------------------------------
    def _last_report_of(self, tid: str) -> tuple[float, float] | None:
        rt = self.travellers.get(tid)
        if rt is None or not rt.active or rt.overdue_since is not None:
            return None
        last_seen = rt.last_fix.t if rt.last_fix else rt.arrived
        return (rt.last_report or rt.arrived), last_seen

    async def _run_timer(self) -> None:
        while True:
            await self.svc.clock.sleep(self.svc.settings.tracking_overdue_check_s)
            if self._broken or self._consumer is None:
                continue
            try:
                async with self._lock:
                    await self.tick()
                    await self._commit()
            except Fenced as err:
                self._give_up(err)
                return
            except CityDataError as err:
                log.warning("tracking partition %d timer round failed: %s", self.k, err.code)

    async def tick(self) -> list[Event]:
        """Overdue travellers of this partition, pending geofence changes, still-outside repeats."""
        svc = self.svc
        now = svc.clock.now()
        now_s = to_epoch(now)
        hits = [h for h in self.monitor.due(now_s, 5000) if h.traveller_id in self.travellers]
        if hits:      # one that departed or was erased meanwhile (on another node) is not overdue
            active = {r["traveller_id"] for r in await svc.store.fetch_all(
                select(tracking_travellers.c.traveller_id).where(
                    tracking_travellers.c.traveller_id.in_([h.traveller_id for h in hits]),
                    tracking_travellers.c.status == "active"))}
            for h in hits:
                if h.traveller_id not in active:
                    self.travellers.pop(h.traveller_id, None)
            hits = [h for h in hits if h.traveller_id in active]
        evs = [self._with_id(make_event("tracking.overdue", h.traveller_id, now, {
            "traveller_id": h.traveller_id, "last_seen_at": iso(from_epoch(h.last_seen)),
            "overdue_by_s": round(now_s - h.due, 1)}), h.due) for h in hits]
        try:
            await self._publish(evs)
        except CityDataError:
            for h in hits:                        # not published: due again next round
                hit_rt = self.travellers[h.traveller_id]
                self.monitor.reported(h.traveller_id, hit_rt.last_report or hit_rt.arrived)
            raise
        for h in hits:
            self.travellers[h.traveller_id].overdue_since = now_s
            self._dirty.add(h.traveller_id)
        more: list[Event] = []
        for tid in list(self._attention):
            rt = self.travellers.get(tid)
            if rt is None:
                self._attention.discard(tid)
                continue
            transitions = svc.engine.tick(rt.fences.states, now_s)
            if transitions:
                derived = self._derived(rt, transitions, now)
                await self._publish(derived)
                more.extend(derived)
                self._note_fences(rt, transitions, now)
            if not svc.engine.needs_tick(rt.fences.states):
                self._attention.discard(tid)
        return evs + more

    # -- the commit ------------------------------------------------------------------------------------------
    async def _commit(self) -> None:
        """Last seen, overdue since, fence states, ping flags and the position, in one transaction."""
        if not (self._dirty or self._fences or self._flags) and self.applied == self.committed:
            return
        dirty, fences, flags, applied = self._dirty, self._fences, self._flags, self.applied
        seen = []
        for tid in dirty:
            rt = self.travellers.get(tid)
            if rt is None:
                continue
            seen.append(last_seen_row(rt))
        store = self.svc.store
        t, p = tracking_travellers, tracking_pings
        seen_stmt = update(t).where(t.c.traveller_id == bindparam("b_tid")).values(
            last_t=bindparam("b_last_t", type_=t.c.last_t.type), last_lat=bindparam("b_lat"),
            last_lon=bindparam("b_lon"), last_accuracy_m=bindparam("b_acc"),
            last_report_at=bindparam("b_report", type_=t.c.last_report_at.type),
            overdue_since=bindparam("b_overdue", type_=t.c.overdue_since.type))
        flag_rows = [{"b_tid": tid, "b_t": from_epoch(ts), "b_flags": f} for (tid, ts), f in flags.items()]
        flag_stmt = update(p).where(p.c.traveller_id == bindparam("b_tid"),
                                    p.c.t == bindparam("b_t", type_=p.c.t.type)).values(flags=bindparam("b_flags"))
        dialect_insert = pg_insert if store.dialect == "postgresql" else sqlite_insert
        fins = dialect_insert(tracking_fence_state)
        fence_stmt = fins.on_conflict_do_update(index_elements=["traveller_id", "fence_id"], set_={
            "state": fins.excluded.state, "since": fins.excluded.since, "updated_at": fins.excluded.updated_at})
        now = self.svc.clock.now()
        mins = dialect_insert(store_schema.meta)
        meta_stmt = mins.values(key=self.meta_key, value=applied, updated_at=now).on_conflict_do_update(
            index_elements=[store_schema.meta.c.key], set_={"value": mins.excluded.value, "updated_at": now})

        async def op(conn: AsyncConnection) -> None:
            if self.fence is not None:   # refused (Fenced, rolled back) once a newer owner took the partition
                await check_fence(conn, self.svc.clock, self.meta_key, self.fence)
            if seen:
                await conn.execute(seen_stmt, seen)
            if flag_rows:
                await conn.execute(flag_stmt, flag_rows)
            if fences:
                await conn.execute(fence_stmt, list(fences.values()))
            await conn.execute(meta_stmt)

        self._dirty, self._fences, self._flags = set(), {}, {}
        try:
            await store.write(op, rows=len(seen) + len(flag_rows) + len(fences) + 1)
        except BaseException:
            self._dirty |= dirty
            self._fences = {**fences, **self._fences}
            self._flags = {**flags, **self._flags}
            raise
        self.committed = applied
        self.stats["commits"] += 1

    def describe(self) -> dict[str, Any]:
        return {"travellers": len(self.travellers), "applied": self.applied, "committed": self.committed,
                **self.stats}
