"""The receiving side of the JetStream bus (``citydata.bus.nats``): a member of a durable pull consumer
(``NatsMember``: fetch, handle, acknowledge or back off, dead-letter after ``max_attempts``, batch
acknowledgements) and a live fan-out subscription (``LiveSub``: a bounded queue, cut off when it fills).
The behaviour is described in ``citydata.bus.nats``."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from typing import TYPE_CHECKING

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription
from nats.js import JetStreamContext

from citydata.bus.base import Consumer, Delivery, Handler, Subscription

if TYPE_CHECKING:
    from citydata.bus.nats import NatsBus

log = logging.getLogger(__name__)
_NAME_OK = re.compile(r"[^A-Za-z0-9_-]")

def consumer_name(group: str) -> str:
    """A JetStream-safe durable name for a group (letters, digits, ``_``, ``-``); a short hash keeps two
    groups that differ only in unsafe characters apart."""
    safe = _NAME_OK.sub("_", group)
    if safe != group or not safe:
        safe = f"{safe[:48]}_{hashlib.sha1(group.encode(), usedforsecurity=False).hexdigest()[:8]}"
    return safe[:64]


def header_value(text: str) -> str:
    return " ".join(text.split())[:500]


def _backoff(attempt: int) -> float:
    return min(0.05 * 2.0 ** attempt, 2.0)


class LiveSub(Subscription):
    def __init__(self, bus: NatsBus, pattern: str, handler: Handler, queue_size: int) -> None:
        self.bus, self.pattern, self.handler = bus, pattern, handler
        self.queue: asyncio.Queue[Msg | None] = asyncio.Queue(queue_size)
        self.nsub: NatsSubscription | None = None
        self.nsub_live: NatsSubscription | None = None
        self.closed = False
        self.task = asyncio.create_task(self._run(), name=f"nats-sub-{pattern}")
        self._unsub: asyncio.Task[None] | None = None

    async def on_msg(self, msg: Msg) -> None:
        if self.closed:
            return
        try:
            self.queue.put_nowait(msg)
        except asyncio.QueueFull:
            # A live subscriber that cannot keep up is cut off, loudly: it must reconnect and re-read state.
            self.bus.stats.slow_subscriber_drops += 1
            log.warning("live subscriber %s too slow; disconnected", self.pattern)
            self.closed = True
            self.bus._subs.discard(self)
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.put_nowait(None)
            self._unsub = asyncio.create_task(self._unsubscribe())

    async def _run(self) -> None:
        while True:
            msg = await self.queue.get()
            if msg is None:
                return
            event = self.bus._event_of(msg)
            if event is None:
                continue
            try:
                await self.handler(Delivery(event, 0))
            except Exception:
                log.exception("live subscriber %s failed on %s", self.pattern, event.kind)

    async def _unsubscribe(self) -> None:
        for nsub in (self.nsub, self.nsub_live):
            if nsub is not None:
                with contextlib.suppress(Exception):
                    await nsub.unsubscribe()
        self.nsub = self.nsub_live = None

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.bus._subs.discard(self)
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.put_nowait(None)
        await self._unsubscribe()
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


class NatsMember(Consumer):
    def __init__(self, bus: NatsBus, group: str, durable: str, psub: JetStreamContext.PullSubscription,
                 handler: Handler, max_attempts: int, index: int, batch_ack: bool = False) -> None:
        self.bus, self.group, self.durable, self.psub = bus, group, durable, psub
        self.batch_ack = batch_ack
        self.handler, self.max_attempts = handler, max(1, max_attempts)
        self.name = f"{group}#{index}"
        self._stream_pending = 0
        self._local = 0
        self._stopping = False
        self.task = asyncio.create_task(self._run(), name=f"nats-consumer-{self.name}")

    def pending(self) -> int:
        return self._stream_pending + self._local

    async def _run(self) -> None:
        bus = self.bus
        batch = max(1, min(bus.fetch_batch, bus.queue_size))
        delay = 0.05
        while not self._stopping:
            try:
                msgs = await self.psub.fetch(batch, timeout=bus.fetch_timeout)
            except TimeoutError:
                continue
            except asyncio.CancelledError:
                raise
            except Exception as err:  # disconnected, consumer gone, ...: wait and ask again
                if self._stopping:
                    break
                log.warning("consumer %s fetch failed (%s); retrying in %.2fs", self.name,
                            type(err).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            delay = 0.05
            self._local = len(msgs)
            done: list[Msg] = []     # handled, acknowledged when the whole batch is
            complete = False
            try:
                for i, msg in enumerate(msgs):
                    if self._stopping:
                        break
                    last = i == len(msgs) - 1
                    if await self._handle(msg, last=last):
                        if self.batch_ack:
                            done.append(msg)
                        else:
                            await self._settle(msg)
                    elif last and done:
                        # the handler did not return for the batch's last event (it failed, or that message
                        # was no event): what it did for the others may not be committed, so they come back
                        for held in done:
                            with contextlib.suppress(Exception):
                                await held.nak()
                        done = []
                    self._local -= 1
                else:
                    complete = True
                if complete:
                    for msg in done:
                        await self._settle(msg)
                    done = []
            finally:
                # stopping (or failing) mid-batch: hand back what is not acknowledged now rather than after
                # ack_wait; a handled event comes back too (its effect may not be committed), consumers are
                # idempotent
                settled = {id(m) for m in msgs} - {id(m) for m in done} if complete else set()
                for rest in msgs:
                    if id(rest) in settled:
                        continue
                    with contextlib.suppress(Exception):  # (one already settled raises; ignored)
                        await rest.nak()
                self._local = 0
            bus.stats.queue_depths[f"consumer:{self.name}"] = self.pending()

    async def _settle(self, msg: Msg) -> None:
        try:
            await msg.ack()
            self.bus.stats.delivered += 1
        except Exception as err:  # the connection went away mid-ack: the server redelivers after ack_wait
            log.warning("consumer %s could not acknowledge a message (%s)", self.name, type(err).__name__)

    async def _handle(self, msg: Msg, *, last: bool = True) -> bool:
        """Handle one message; True when it is to be acknowledged with its batch (it was handled), False
        when it is settled already (nak, term, skipped)."""
        bus = self.bus
        try:
            meta = msg.metadata
            seq, attempt = meta.sequence.stream, meta.num_delivered
            self._stream_pending = meta.num_pending
            event = bus._event_of(msg)
            if event is None:  # a dead-letter copy, or not an event at all: never retried
                if msg.subject.startswith(bus.deadletter_prefix):
                    await msg.ack()
                else:
                    await msg.term()
                return False
            try:
                await self.handler(Delivery(event, seq, attempt, self.group, last_in_batch=last))
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await msg.nak()  # stopped mid-handler: redeliver now, not after ack_wait
                raise
            except Exception as err:
                if attempt >= self.max_attempts:
                    bus.stats.dead_lettered += 1
                    log.error("consumer %s dead-lettered event %s (%s) after %d attempts: %s", self.name,
                              event.id, event.kind, attempt, err)
                    await bus._dead_letter(self.durable, msg, event, seq, repr(err))
                    await msg.term()
                else:
                    bus.stats.redelivered += 1
                    await msg.nak(delay=_backoff(attempt))
                return False
            return True
        except asyncio.CancelledError:
            raise
        except Exception as err:  # the connection went away mid-ack: the server redelivers after ack_wait
            log.warning("consumer %s could not settle a message (%s)", self.name, type(err).__name__)
            return False

    async def close(self) -> None:
        self._stopping = True
        try:
            await asyncio.wait_for(asyncio.shield(self.task), self.bus.fetch_timeout + self.bus.close_grace_s)
        except TimeoutError:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        except Exception:
            log.exception("consumer %s stopped with an error", self.name)
        # Messages the server delivered after the last fetch returned: hand them back now.
        queue: asyncio.Queue[Msg] | None = getattr(getattr(self.psub, "_sub", None), "_pending_queue", None)
        while queue is not None and not queue.empty():
            msg = queue.get_nowait()
            if msg.reply and not (msg.headers or {}).get("Status"):  # status messages carry no event
                with contextlib.suppress(Exception):
                    await msg.nak()
        with contextlib.suppress(Exception):
            await self.psub.unsubscribe()
        self.bus._members.discard(self)
        self.bus.stats.queue_depths.pop(f"consumer:{self.name}", None)
