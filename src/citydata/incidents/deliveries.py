"""Durable outgoing notifications: a ``deliveries`` row per (agency, channel, message), sent by a worker.

Rows are queued inside the same transaction as the change they announce (``queue_rows``), so a dispatch is
never committed without its notifications. The worker claims due rows, sends each concurrently with a time
limit (a slow or failing receiver never blocks the others nor the caller), and on failure retries with
exponential backoff (``ioc_delivery_backoff_s`` doubled per attempt, capped); after ``ioc_delivery_attempts``
attempts the row is ``dead`` and recorded in the dead letters (source ``notify``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from citydata.clock import Clock
from citydata.config import Settings
from citydata.errors import Conflict, NotFound, ValidationFailed
from citydata.incidents.notify.base import Message, Notifier, NotifyError
from citydata.incidents.schema import agencies, deliveries
from citydata.ingest.deadletter import DeadLetters
from citydata.store import Store

log = logging.getLogger(__name__)
DELIVERY_STATES = ("pending", "sending", "delivered", "dead")
CLAIM_BATCH = 50
LEASE_S = 300.0


def delivery_view(row: Any) -> dict[str, Any]:
    r = dict(row)
    return {"id": r["id"], "agency_id": r["agency_id"], "channel": r["channel"], "event": r["event"],
            "subject_id": r["subject_id"], "state": r["state"], "attempts": r["attempts"],
            "next_at": r["next_at"].isoformat(), "last_error": r["last_error"],
            "created_at": r["created_at"].isoformat(),
            "delivered_at": r["delivered_at"].isoformat() if r["delivered_at"] else None,
            "payload": r["payload"]}


class Deliveries:
    """The queue and its worker."""

    def __init__(self, store: Store, clock: Clock, settings: Settings, notifiers: dict[str, Notifier],
                 dead_letters: DeadLetters) -> None:
        self.store, self.clock, self.settings = store, clock, settings
        self.notifiers, self.dead_letters = notifiers, dead_letters
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._inflight: set[int] = set()     # ids this process is sending (never re-claimed, whatever the clock)
        self.sent = self.failed = self.dead = 0

    # -- queueing (inside the caller's transaction) ------------------------------------------------------------
    async def queue_rows(self, conn: AsyncConnection, agency_ids: list[str], event: str, subject_id: str | None,
                         payload: dict[str, Any], now: datetime) -> int:
        """Queue ``payload`` for every configured channel of each enabled agency; returns rows queued."""
        if not agency_ids:
            return 0
        found = (await conn.execute(select(agencies).where(agencies.c.id.in_(agency_ids),
                                                           agencies.c.enabled.is_(True)))).mappings().all()
        rows = []
        for agency in found:
            for name, notifier in self.notifiers.items():
                if notifier.address(dict(agency)) is not None:
                    rows.append({"agency_id": agency["id"], "channel": name, "event": event,
                                 "subject_id": subject_id, "payload": payload, "state": "pending", "attempts": 0,
                                 "next_at": now, "created_at": now})
        if rows:
            await conn.execute(deliveries.insert(), rows)
        return len(rows)

    def wake(self) -> None:
        self._wake.set()

    # -- the worker ----------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ioc-deliveries")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for task in list(self._sending):
            task.cancel()
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery worker pass failed; retrying")
            sleeper = asyncio.ensure_future(self.clock.sleep(1.0))
            waker = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                waker.cancel()
            self._wake.clear()

    async def run_once(self) -> int:
        """Claim the due rows and start sending them (not waiting for the sends); returns how many."""
        now = self.clock.now()
        lease_until = now + timedelta(seconds=LEASE_S)

        async def claim(conn: AsyncConnection) -> list[dict[str, Any]]:
            due = (await conn.execute(select(deliveries).where(
                deliveries.c.state.in_(("pending", "sending")), deliveries.c.next_at <= now)
                .order_by(deliveries.c.next_at, deliveries.c.id).limit(CLAIM_BATCH))).mappings().all()
            claimed = []
            for row in due:
                if row["id"] in self._inflight:
                    continue
                # "sending" rows past their lease were claimed by a worker that died: take them over.
                done = await conn.execute(update(deliveries).where(
                    deliveries.c.id == row["id"], deliveries.c.state == row["state"],
                    deliveries.c.next_at == row["next_at"]).values(state="sending", next_at=lease_until))
                if done.rowcount:
                    claimed.append(dict(row))
            return claimed

        rows = await self.store.write(claim)
        for row in rows:
            self._inflight.add(int(row["id"]))
            task = asyncio.create_task(self._attempt(row), name=f"delivery-{row['id']}")
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        return len(rows)

    async def drain(self) -> None:
        """Wait until the sends in flight are done (tests, shutdown); each is bounded by the delivery timeout."""
        if self._sending:
            await asyncio.wait(set(self._sending))

    async def _attempt(self, row: dict[str, Any]) -> None:
        try:
            await self._attempt_once(row)
        finally:
            self._inflight.discard(int(row["id"]))

    async def _attempt_once(self, row: dict[str, Any]) -> None:
        attempt = int(row["attempts"]) + 1
        error: str | None = None
        try:
            notifier = self.notifiers.get(row["channel"])
            if notifier is None:
                raise NotifyError(f"channel {row['channel']} is not available")
            agency = await self.store.fetch_one(select(agencies).where(agencies.c.id == row["agency_id"]))
            if agency is None:
                raise NotifyError(f"agency {row['agency_id']} no longer exists")
            payload = row["payload"] or {}
            message = Message(delivery_id=int(row["id"]), event=row["event"],
                              subject=str(payload.get("subject") or row["event"]),
                              text=str(payload.get("text") or row["event"]), payload=payload)
            await asyncio.wait_for(notifier.send(dict(agency), message), self.settings.ioc_delivery_timeout_s + 2)
        except asyncio.CancelledError:
            raise
        except NotifyError as err:
            error = err.message
        except TimeoutError:
            error = "timed out"
        except Exception as err:
            log.exception("notifier %s failed unexpectedly", row["channel"])
            error = f"unexpected {type(err).__name__}"
        await self._settle(row, attempt, error)

    async def _settle(self, row: dict[str, Any], attempt: int, error: str | None) -> None:
        now = self.clock.now()
        s = self.settings
        values: dict[str, Any] = {"attempts": attempt}
        if error is None:
            values.update(state="delivered", delivered_at=now, last_error=None)
            self.sent += 1
        elif attempt >= s.ioc_delivery_attempts:
            values.update(state="dead", last_error=error[:500])
            self.dead += 1
        else:
            delay = min(s.ioc_delivery_backoff_max_s, s.ioc_delivery_backoff_s * 2 ** (attempt - 1))
            values.update(state="pending", last_error=error[:500], next_at=now + timedelta(seconds=delay))
            self.failed += 1

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(update(deliveries).where(deliveries.c.id == row["id"]).values(**values))

        await self.store.write(op)
        if values["state"] == "dead":
            log.warning("delivery %s to %s (%s) dead after %d attempts", row["id"], row["agency_id"],
                        row["channel"], attempt)
            await self.dead_letters.record("notify", f"{row['channel']}:{row['agency_id']}",
                                           orjson.dumps(row["payload"]), error or "failed",
                                           {"delivery_id": row["id"], "event": row["event"], "attempts": attempt})

    # -- reads and admin ---------------------------------------------------------------------------------------
    async def list(self, *, state: str | None = None, agency_id: str | None = None, limit: int = 100,
                   offset: int = 0) -> list[dict[str, Any]]:
        stmt = select(deliveries)
        if state is not None:
            if state not in DELIVERY_STATES:
                raise ValidationFailed(f"state must be one of {', '.join(DELIVERY_STATES)}", code="invalid_state")
            stmt = stmt.where(deliveries.c.state == state)
        if agency_id is not None:
            stmt = stmt.where(deliveries.c.agency_id == agency_id)
        stmt = stmt.order_by(deliveries.c.id.desc()).limit(limit).offset(offset)
        return [delivery_view(r) for r in await self.store.fetch_all(stmt)]

    async def retry(self, delivery_id: int) -> dict[str, Any]:
        """Give a dead delivery a fresh set of attempts."""
        now = self.clock.now()

        async def op(conn: AsyncConnection) -> str | None:
            state = (await conn.execute(select(deliveries.c.state).where(deliveries.c.id == delivery_id))).scalar()
            if state == "dead":
                await conn.execute(update(deliveries).where(deliveries.c.id == delivery_id).values(
                    state="pending", attempts=0, next_at=now))
            return state  # type: ignore[no-any-return]

        state = await self.store.write(op)
        if state is None:
            raise NotFound(f"no delivery {delivery_id}", code="delivery_not_found")
        if state != "dead":
            raise Conflict(f"delivery {delivery_id} is {state}, not dead", code="delivery_not_dead")
        self.wake()
        row = await self.store.fetch_one(select(deliveries).where(deliveries.c.id == delivery_id))
        return delivery_view(row)
