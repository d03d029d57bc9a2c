"""The store as the in-process bus's durable journal (``BusJournal`` in ``citydata.bus.memory``).

* ``append`` writes the events into ``events`` through the store's single writer (so it commits in the
  writer's next batch) and returns their ``seq`` values in order, once committed. On SQLite the writer holds
  the only write connection, so the seqs are computed in the transaction (``max(seq) + 1 ...``) and inserted
  with one ``executemany``; on PostgreSQL the ``seq`` sequence assigns them and an ordered ``RETURNING``
  gives them back.
* Group offsets live in ``bus_offsets``. ``set_offset`` is *write-behind*: it records the new position and
  returns at once, and a background flush upserts the latest position of every changed group in one writer
  transaction. The in-process bus acknowledges one event at a time, so waiting for a commit on every
  acknowledgement would cap each group at one event per writer batch window. After a crash the last few
  acknowledged events may be delivered again (the bus is at-least-once anyway); on a clean shutdown call
  ``await journal.flush()`` after ``bus.stop()`` and before ``store.stop()`` and nothing is redelivered.
  Pass ``sync_offsets=True`` to make every ``set_offset`` wait for its commit instead.
* ``trim`` deletes events every group has acknowledged, in bounded chunks; the newest event is always kept so
  a SQLite rowid is never reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.events import Event
from citydata.store import schema

if TYPE_CHECKING:
    from citydata.bus.base import Delivery
    from citydata.store.engine import Store

log = logging.getLogger(__name__)

PAYLOAD_LIMIT = 2_000
TRIM_CHUNK = 5_000


class StoreJournal:
    """``BusJournal`` on the store's ``events``, ``bus_offsets`` and ``dead_letters`` tables."""

    def __init__(self, store: Store, *, sync_offsets: bool = False, trim_chunk: int = TRIM_CHUNK) -> None:
        self.store = store
        self.sync_offsets = sync_offsets
        self.trim_chunk = max(1, trim_chunk)
        self._pending: dict[str, int] = {}       # offsets set but not yet handed to the writer
        self._saving: dict[str, int] = {}        # offsets in the writer transaction now in flight
        self._flusher: asyncio.Task[None] | None = None
        self._flush_error: BaseException | None = None

    # -- the event log ---------------------------------------------------------------------------------------
    async def append(self, events: Sequence[Event]) -> list[int]:
        if not events:
            return []
        rows = [{"id": e.id, "kind": e.kind, "key": e.key, "time": e.time, "data": e.data, "source": e.source}
                for e in events]
        if self.store.dialect == "sqlite":
            async def op(conn: AsyncConnection) -> list[int]:
                last = (await conn.execute(select(func.max(schema.events.c.seq)))).scalar() or 0
                seqs = list(range(int(last) + 1, int(last) + 1 + len(rows)))
                for row, seq in zip(rows, seqs, strict=True):
                    row["seq"] = seq
                await conn.execute(insert(schema.events), rows)
                return seqs
        else:
            async def op(conn: AsyncConnection) -> list[int]:
                stmt = insert(schema.events).returning(schema.events.c.seq, sort_by_parameter_order=True)
                return [int(r[0]) for r in (await conn.execute(stmt, rows)).all()]

        seqs: list[int] = await self.store.write(op, rows=len(rows))
        return seqs

    async def read_after(self, seq: int, limit: int) -> list[tuple[int, Event]]:
        t = schema.events
        rows = await self.store.fetch_all(select(t).where(t.c.seq > seq).order_by(t.c.seq).limit(limit))
        return [(int(r["seq"]), _event(r)) for r in rows]

    async def last_seq(self) -> int:
        return int(await self.store.scalar(select(func.max(schema.events.c.seq))) or 0)

    # -- consumer group offsets ------------------------------------------------------------------------------
    async def get_offset(self, group: str) -> int | None:
        if group in self._pending:
            return self._pending[group]
        if group in self._saving:
            return self._saving[group]
        t = schema.bus_offsets
        value = await self.store.scalar(select(t.c.seq).where(t.c.group_name == group))
        return None if value is None else int(value)

    async def set_offset(self, group: str, seq: int) -> None:
        self._pending[group] = seq
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop(), name="bus-journal-offsets")
        if self.sync_offsets:
            await self.flush()

    async def flush(self) -> None:
        """Wait until every offset set so far is committed (raises the store's error if it could not be)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)
        if self._flush_error is not None:
            err, self._flush_error = self._flush_error, None
            raise err
        if self._pending:  # set while the last flush was finishing
            self._flusher = asyncio.create_task(self._flush_loop(), name="bus-journal-offsets")
            await self.flush()

    async def _flush_loop(self) -> None:
        while self._pending:
            self._saving, self._pending = self._pending, {}
            batch = dict(self._saving)

            async def op(conn: AsyncConnection, batch: dict[str, int] = batch) -> None:
                await self._upsert(conn, batch)

            try:
                await self.store.write(op, rows=len(batch))
            except Exception as err:
                # Keep what was not saved (newer values win) so a later set_offset or flush retries it.
                self._pending = {**self._saving, **self._pending}
                self._saving = {}
                self._flush_error = err
                log.warning("bus offsets not saved (%s); %d groups pending", type(err).__name__,
                            len(self._pending))
                return
            self._saving = {}

    async def _upsert(self, conn: AsyncConnection, offsets: dict[str, int]) -> None:
        t = schema.bus_offsets
        now = self.store.clock.now()
        for group, seq in offsets.items():
            stmt = update(t).where(t.c.group_name == group).values(seq=seq, updated_at=now)
            done = await conn.execute(stmt)
            if not done.rowcount:
                await conn.execute(insert(t).values(group_name=group, seq=seq, updated_at=now))

    # -- dead letters ----------------------------------------------------------------------------------------
    async def dead_letter(self, group: str, delivery: Delivery, reason: str) -> None:
        event = delivery.event
        row: dict[str, Any] = {
            "at": self.store.clock.now(), "source": "bus", "channel": group[:300],
            "payload": event_payload(event), "reason": reason,
            "detail": {"event_id": event.id, "kind": event.kind, "seq": delivery.seq,
                       "attempts": delivery.attempt},
        }
        await self.store.execute(insert(schema.dead_letters).values(**row))

    # -- housekeeping ----------------------------------------------------------------------------------------
    async def trim(self, keep_after: int | None = None) -> int:
        """Delete events every consumer group has acknowledged (and, when given, only those with
        ``seq <= keep_after``), in chunks of ``trim_chunk`` rows, each its own writer transaction. With no
        consumer group at all only ``keep_after`` bounds the trim (nothing is deleted without it). The newest
        event is always kept. Returns the number of events deleted."""
        with contextlib.suppress(Exception):
            await self.flush()  # the freshest offsets count; an unsaved one only makes the trim smaller
        offsets = schema.bus_offsets
        t = schema.events
        lowest = await self.store.scalar(select(func.min(offsets.c.seq)))
        bounds = [int(v) for v in (lowest, keep_after) if v is not None]
        if not bounds:
            return 0
        bound = min(min(bounds), await self.last_seq() - 1)
        first = await self.store.scalar(select(func.min(t.c.seq)))
        if first is None or bound < int(first):
            return 0
        deleted, low = 0, int(first) - 1
        while low < bound:
            high = min(low + self.trim_chunk, bound)
            stmt = delete(t).where(t.c.seq > low, t.c.seq <= high)
            deleted += int(await self.store.execute(stmt) or 0)
            low = high
        if deleted:
            log.info("bus journal trimmed %d events up to seq %d", deleted, bound)
        return deleted


def _event(row: Any) -> Event:
    return Event(kind=row["kind"], key=row["key"], time=row["time"], data=row["data"], id=row["id"],
                 source=row["source"])


def event_payload(event: Event) -> str:
    """The JSON of an event as stored in ``dead_letters.payload`` (truncated)."""
    return orjson.dumps(event.model_dump(mode="json")).decode()[:PAYLOAD_LIMIT]
