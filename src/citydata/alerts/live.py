"""The live hub behind ``/api/v1/stream`` (Server-Sent Events).

One bus subscription per node (``alert.changed``, ``incident.changed``, ``sta.changed``) fans out to every
connected client through a bounded queue per client. Each client sees only what its role allows: alerts of
kinds it may read, incidents of its agency (agency roles) or all (operators), observations with
``sensors.read``. A client whose queue fills (it reads too slowly) is cut off, never waited for.

Alert and incident events carry an id (``<boot>-<seq>``) and are kept in a bounded buffer, so a client that
reconnects with ``Last-Event-ID`` gets what it missed, as far as the buffer reaches. Observations are not
buffered (the next value supersedes them).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from citydata.auth import Principal
from citydata.bus import Bus
from citydata.bus.base import Delivery, Subscription
from citydata.incidents.model import agency_scope, may_see_alert_kind

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LiveEvent:
    name: str                 # alert, incident, observation
    data: dict[str, Any]
    id: str | None = None

    def frame(self) -> bytes:
        head = f"id: {self.id}\n" if self.id else ""
        return (head + f"event: {self.name}\ndata: ").encode() + orjson.dumps(self.data) + b"\n\n"


def visible(principal: Principal, event: LiveEvent) -> bool:
    if event.name == "alert":
        return may_see_alert_kind(principal, str(event.data.get("alert", {}).get("kind", "")))
    if event.name == "incident":
        if not principal.can("incidents.read"):
            return False
        scope = agency_scope(principal)
        return scope is None or scope in event.data.get("incident", {}).get("agencies", [])
    if event.name == "observation":
        return principal.can("sensors.read")
    return False


@dataclass(eq=False)
class _Client:
    principal: Principal
    queue: asyncio.Queue[LiveEvent | None]
    events: frozenset[str]
    cut: bool = False
    sent: int = field(default=0)


class LiveHub:
    def __init__(self, bus: Bus, *, buffer: int = 1000, client_queue: int = 256) -> None:
        self.bus, self.client_queue = bus, client_queue
        self.boot = uuid.uuid4().hex[:8]
        self._seq = itertools.count(1)
        self._buffer: deque[tuple[int, LiveEvent]] = deque(maxlen=buffer)
        self._clients: set[_Client] = set()
        self._subs: list[Subscription] = []
        self.cut_off = 0

    async def start(self) -> None:
        for pattern in ("alert.changed", "incident.changed", "sta.changed"):
            self._subs.append(await self.bus.subscribe(pattern, self._on_bus, queue_size=10_000))

    async def stop(self) -> None:
        for sub in self._subs:
            await sub.close()
        self._subs.clear()
        for client in list(self._clients):
            self._cut(client)

    @property
    def clients(self) -> int:
        return len(self._clients)

    # -- from the bus -----------------------------------------------------------------------------------------
    async def _on_bus(self, delivery: Delivery) -> None:
        event = delivery.event
        if event.kind == "alert.changed":
            self.publish("alert", dict(event.data))
        elif event.kind == "incident.changed":
            self.publish("incident", dict(event.data))
        elif event.kind == "sta.changed" and event.data.get("entity") == "Observation":
            body = event.data.get("json") or {}
            links = event.data.get("links") or {}
            self.publish("observation", {
                "id": event.data.get("id"), "datastream_id": links.get("Datastream"),
                "multidatastream_id": links.get("MultiDatastream"),
                "phenomenonTime": body.get("phenomenonTime"), "result": body.get("result"),
                "resultTime": body.get("resultTime")})

    def publish(self, name: str, data: dict[str, Any]) -> LiveEvent:
        """Fan ``data`` out as SSE event ``name`` (buffered for resume unless it is an observation)."""
        if name == "observation":
            event = LiveEvent(name, data)
        else:
            seq = next(self._seq)
            event = LiveEvent(name, data, f"{self.boot}-{seq}")
            self._buffer.append((seq, event))
        for client in list(self._clients):
            if name in client.events and visible(client.principal, event):
                self._offer(client, event)
        return event

    def _offer(self, client: _Client, event: LiveEvent) -> None:
        try:
            client.queue.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("SSE client too slow; disconnected (queue of %d full)", self.client_queue)
            self.cut_off += 1
            self._cut(client)

    def _cut(self, client: _Client) -> None:
        client.cut = True
        self._clients.discard(client)
        # make room for the end marker so the reader wakes up and ends the response
        with contextlib.suppress(asyncio.QueueEmpty):
            while client.queue.full():
                client.queue.get_nowait()
        client.queue.put_nowait(None)

    def missed(self, last_event_id: str | None) -> list[LiveEvent]:
        """Buffered events after ``last_event_id`` (none when the id is from another boot or unknown)."""
        if not last_event_id:
            return []
        boot, _, seq = last_event_id.partition("-")
        if boot != self.boot or not seq.isdigit():
            return []
        after = int(seq)
        return [e for s, e in self._buffer if s > after]

    # -- to a client -------------------------------------------------------------------------------------------
    async def stream(self, principal: Principal, *, events: frozenset[str], last_event_id: str | None,
                     heartbeat_s: float, max_s: float | None = None) -> AsyncIterator[bytes]:
        """The SSE byte stream for one client: replay, then live events and heartbeats until cut or closed."""
        client = _Client(principal, asyncio.Queue(self.client_queue), events)
        self._clients.add(client)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_s if max_s is not None else None
        try:
            yield b"retry: 3000\n: connected\n\n"
            for event in self.missed(last_event_id):
                if event.name in events and visible(principal, event):
                    yield event.frame()
            while True:
                wait = heartbeat_s if deadline is None else min(heartbeat_s, deadline - loop.time())
                if wait <= 0:
                    return
                try:
                    item = await asyncio.wait_for(client.queue.get(), wait)
                except TimeoutError:
                    if deadline is not None and loop.time() >= deadline:
                        return
                    yield b": heartbeat\n\n"
                    continue
                if item is None:
                    return
                client.sent += 1
                yield item.frame()
        finally:
            self._clients.discard(client)
