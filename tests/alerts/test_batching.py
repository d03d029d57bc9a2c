"""The alerts consumer applies what the bus hands it as a batch in one transaction (a burst of CCTV violations
raised ~50 alerts/s, one commit each, and its queue grew without end), each event once, in order; a batch whose
transaction fails is applied whole when the bus hands it again. SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from citydata.alerts.service import AlertService
from citydata.errors import Unavailable
from citydata.events import make_event
from citydata.incidents.schema import alerts
from tests.incidents.support import alert_payload, wait_for

N = 300


def burst(p: Any, keys: int) -> list[Any]:
    """N raises over ``keys`` dedup keys (so one batch opens and updates the same alerts), then a clear."""
    events = [make_event("alert.raised", f"burst:{i % keys}", p.clock.now(),
                         alert_payload(f"burst:{i % keys}", evidence_id=f"obs-{i}"), source="rules")
              for i in range(N)]
    events.append(make_event("alert.cleared", "burst:0", p.clock.now(),
                             {"dedup_key": "burst:0", "rule_id": "flood-level", "reason": "below",
                              "observed_at": "2026-11-21T03:00:00+00:00"}, source="rules"))
    return events


async def stored(p: Any) -> list[dict[str, Any]]:
    found = await p.store.fetch_all(select(alerts).where(alerts.c.dedup_key.startswith("burst:"))
                                    .order_by(alerts.c.dedup_key))
    return [dict(r) for r in found]


async def test_a_burst_is_applied_in_batches_each_event_once(backend_ioc: Any) -> None:
    p = backend_ioc
    service: AlertService = p.ioc.alerts
    changes: list[str] = []

    async def on_change(d: Any) -> None:
        if str(d.event.data["alert"]["dedup_key"]).startswith("burst:"):
            changes.append(d.event.data["change"])

    await p.bus.subscribe("alert.changed", on_change, queue_size=10_000)
    before = service.batches_applied
    await p.bus.publish_many(burst(p, keys=30))

    async def cleared() -> bool:
        rows = await stored(p)
        return len(rows) == 30 and rows[0]["state"] == "cleared"

    await wait_for(cleared, timeout=30, what="the burst applied")
    rows = await stored(p)
    assert [r["occurrences"] for r in rows] == [N // 30] * 30       # each raise counted once
    assert all(r["state"] == "open" for r in rows[1:])
    assert rows[0]["last_event_id"] is not None
    batches = service.batches_applied - before
    assert 1 <= batches < N // 3, f"{batches} transactions for {N + 1} events"
    await wait_for(lambda: len(changes) == N + 1, what="every change announced")
    assert changes.count("opened") == 30 and changes.count("updated") == N - 30 and changes.count("cleared") == 1


async def test_a_batch_whose_transaction_fails_is_applied_whole_when_handed_again(backend_ioc: Any) -> None:
    p = backend_ioc
    write = p.store.write
    failures = {"left": 2}

    async def failing_write(op: Any, *args: Any, **kwargs: Any) -> Any:
        if failures["left"] > 0 and "AlertService._apply_batch" in getattr(op, "__qualname__", ""):
            failures["left"] -= 1
            raise Unavailable("database restarting")
        return await write(op, *args, **kwargs)

    p.store.write = failing_write
    try:
        await p.bus.publish_many(burst(p, keys=30))

        async def cleared() -> bool:
            rows = await stored(p)
            return len(rows) == 30 and rows[0]["state"] == "cleared"

        await wait_for(cleared, timeout=30, what="the burst applied after the failures")
    finally:
        p.store.write = write
    assert failures["left"] == 0
    rows = await stored(p)
    assert [r["occurrences"] for r in rows] == [N // 30] * 30
    assert p.bus.stats.dead_lettered == 0
