"""Pings of concurrent requests applied together: one geofence classification, one sub-district lookup, one
store write and one publish per batch; each request still gets its own answer, after the commit.

At 10x Phuket's peak the tourist app's position reports are about 1,700 requests a second, most carrying one
fix. Applied one request at a time, the fixed costs of each (numpy and shapely calls on a single point, a
write-buffer admission with its future and queue item, a publish) were most of the tracking service's CPU per
ping. ``PingBatcher`` collects the requests that reach the service within one event-loop turn (the batch is
started with ``loop.call_soon``: no timer, so nothing waits longer when the loop is idle) and applies them in
arrival order, so each traveller's fixes are taken in the same order as before. The answers keep the
durability contract (docs/durability.md): every request of a batch is answered only once the batch's rows are
committed and its events published; a failed commit fails every request of the batch, each of which may be
sent again (the store ignores the rows it already has, the geofence the fixes it already took).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from citydata.errors import CityDataError, Conflict, Unavailable, ValidationFailed
from citydata.events import Event
from citydata.tracking.geofence import Fix, Observed, Transition
from citydata.tracking.pings import FLAG_TOO_FAST, FLAG_TOO_LATE, PingItem, PingsAccepted, Rejection
from citydata.tracking.schema import tracking_pings
from citydata.tracking.state import Runtime, to_epoch

if TYPE_CHECKING:
    from citydata.tracking.service import TrackingService

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PingRequest:
    """One request's checked items, waiting for its batch."""

    rt: Runtime
    kept: list[PingItem]
    rejected: list[Rejection]
    now: datetime
    future: asyncio.Future[PingsAccepted]
    fixes: list[Fix] = field(default_factory=list)


@dataclass(slots=True)
class _Applied:
    rows: list[dict[str, Any]]
    events: list[Event]
    transitions: list[Transition]
    answer: PingsAccepted | CityDataError


class PingBatcher:
    """Collects ``submit`` calls made in one event-loop turn and applies them as one batch."""

    def __init__(self, service: TrackingService) -> None:
        self.service = service
        self._pending: list[PingRequest] = []
        self._running: set[asyncio.Task[None]] = set()
        self.batches = 0
        self.requests = 0

    async def submit(self, rt: Runtime, kept: list[PingItem], rejected: list[Rejection],
                     now: datetime) -> PingsAccepted:
        loop = asyncio.get_running_loop()
        fixes = [Fix(to_epoch(i.t), i.lon, i.lat, i.accuracy_m or 0.0) for i in kept]
        request = PingRequest(rt, kept, rejected, now, loop.create_future(), fixes)
        self._pending.append(request)
        if len(self._pending) == 1:
            loop.call_soon(self._start)
        return await request.future

    async def drain(self) -> None:
        """Wait for the batches being applied (at shutdown, before the final flush)."""
        while self._running or self._pending:
            if self._pending:
                self._start()
            await asyncio.gather(*self._running, return_exceptions=True)

    def _start(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        task = asyncio.get_running_loop().create_task(self._run(batch), name="tracking-ping-batch")
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[PingRequest]) -> None:
        self.batches += 1
        self.requests += len(batch)
        try:
            applied = self._apply(batch)
        except Exception as err:           # a bug: every request of the batch learns it, none hangs
            log.exception("applying a batch of %d ping requests failed", len(batch))
            _fail(batch, err)
            return
        svc = self.service
        try:
            try:
                rows = [row for a in applied for row in a.rows]
                if rows:
                    await svc.store.insert_rows(tracking_pings, rows)
                for request, a in zip(batch, applied, strict=True):
                    if a.transitions:
                        await svc.persist_transitions(request.rt, a.transitions, request.now)
            finally:
                events = [e for a in applied for e in a.events]
                if events:
                    await svc.bus.publish_many(events)
        except asyncio.CancelledError:
            _fail(batch, Unavailable("the platform is shutting down", code="shutting_down", retry_after=5))
            raise
        except Exception as err:
            _fail(batch, err)
            return
        for request, a in zip(batch, applied, strict=True):
            if request.future.done():      # its client went away: the batch was applied all the same
                continue
            if isinstance(a.answer, CityDataError):
                request.future.set_exception(a.answer)
            else:
                request.future.set_result(a.answer)

    def _apply(self, batch: list[PingRequest]) -> list[_Applied]:
        """The synchronous part: classify every fix of the batch at once, then each request in order."""
        svc = self.service
        every = [f for r in batch for f in r.fixes]
        observed: dict[Fix, Observed] = {ob.fix: ob for ob in svc.engine.observe(every)}
        subs = svc.subdistricts_of([i.lon for r in batch for i in r.kept], [i.lat for r in batch for i in r.kept])
        out: list[_Applied] = []
        at = 0
        for request in batch:
            n = len(request.kept)
            out.append(self._apply_one(request, observed, subs[at:at + n]))
            at += n
        return out

    def _apply_one(self, request: PingRequest, observed: dict[Fix, Observed],
                   subs: list[str | None]) -> _Applied:
        svc, rt, now, kept = self.service, request.rt, request.now, request.kept
        if svc.travellers.get(rt.traveller_id) is not rt or not rt.active:
            # departed or erased between the request's check and its batch
            return _Applied([], [], [], Conflict("the traveller has departed", code="traveller_departed"))
        now_s = to_epoch(now)
        result = svc.engine.process(rt.fences, request.fixes, now_s, observed=observed)
        fast = {f.t for f in result.too_fast}
        late = {f.t for f in result.too_late}
        rejected = list(request.rejected)
        for item in kept:
            if to_epoch(item.t) in fast:
                rejected.append(Rejection(index=item.index, code="impossible_speed",
                                          detail=f"faster than {svc.settings.tracking_max_speed_kmh:g} km/h from "
                                                 "the previous fix; stored flagged, ignored by the geofence"))
        rejected.sort(key=lambda r: r.index)
        rows = []
        for item, sub in zip(kept, subs, strict=True):
            t = to_epoch(item.t)
            rows.append({"traveller_id": rt.traveller_id, "t": item.t, "lat": item.lat, "lon": item.lon,
                         "accuracy_m": item.accuracy_m, "battery": item.battery, "source": item.source,
                         "subdistrict": sub, "flags": (FLAG_TOO_FAST if t in fast else 0)
                         | (FLAG_TOO_LATE if t in late else 0), "received_at": now})
        events = svc.note_report(rt, result, now, now_s, reported=bool(kept))
        accepted = len(kept) - len(fast)
        answer: PingsAccepted | CityDataError
        if accepted == 0 and rejected:
            first = rejected[0]
            answer = ValidationFailed(first.detail, code=first.code,
                                      rejected=[r.model_dump() for r in rejected], accepted=0)
        else:
            answer = PingsAccepted(accepted=accepted, rejected=rejected, duplicates=len(result.duplicates))
        return _Applied(rows, events, result.transitions, answer)


def _fail(batch: list[PingRequest], err: BaseException) -> None:
    for request in batch:
        if not request.future.done():
            request.future.set_exception(err)
