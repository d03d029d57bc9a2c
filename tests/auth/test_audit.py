"""The audit log on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from citydata.auth import ANONYMOUS, AuditLog, Principal, Role
from citydata.clock import DrivenClock
from citydata.errors import ValidationFailed
from citydata.store.schema import audit_log

NURSE = Principal("nurse.a", Role.HEALTH, "user", agency="pho", user_id=3)
DEVICE = Principal("token:abcdefghijkl", Role.DEVICE, "token", token_id="abcdefghijkl")


async def test_records_are_durable_when_record_returns(store: Any, clock: DrivenClock) -> None:
    audit = AuditLog(store, clock)
    await audit.record(NURSE, "pii.read", subject_type="traveller", subject_id="T-1001",
                       purpose="fever screening follow-up", detail={"fields": ["name", "phone"]},
                       client="10.1.2.3")
    # read straight from the table, not through the service
    rows = await store.fetch_all(select(audit_log))
    assert len(rows) == 1
    row = rows[0]
    assert (row["actor"], row["role"], row["action"], row["subject_type"], row["subject_id"]) == (
        "nurse.a", "health", "pii.read", "traveller", "T-1001")
    assert row["purpose"] == "fever screening follow-up" and row["client"] == "10.1.2.3"
    assert row["detail"] == {"fields": ["name", "phone"]} and row["at"] == clock.now()


async def test_query_filters_and_order(store: Any, clock: DrivenClock) -> None:
    audit = AuditLog(store, clock)
    start = clock.now()
    await audit.record(NURSE, "pii.read", subject_type="traveller", subject_id="T-1")
    clock.advance(60)
    await audit.record(DEVICE, "token.use")
    clock.advance(60)
    await audit.record(NURSE, "pii.read", subject_type="traveller", subject_id="T-2")
    clock.advance(60)
    await audit.record(ANONYMOUS, "login.failed", client="203.0.113.9")

    everything = await audit.query()
    assert [r["action"] for r in everything] == ["login.failed", "pii.read", "token.use", "pii.read"]
    assert [r["subject_id"] for r in await audit.query(actor="nurse.a")] == ["T-2", "T-1"]
    assert [r["subject_id"] for r in await audit.query(subject_type="traveller", subject_id="T-1")] == ["T-1"]
    assert [r["actor"] for r in await audit.query(action="token.use")] == ["token:abcdefghijkl"]
    assert len(await audit.query(since=start + timedelta(seconds=60))) == 3
    assert len(await audit.query(since=start + timedelta(seconds=60),
                                 until=start + timedelta(seconds=120))) == 1
    assert len(await audit.query(limit=2)) == 2
    assert await audit.query(actor="nobody") == []
    with pytest.raises(ValidationFailed):
        await audit.query(limit=0)


async def test_invalid_records_are_refused(store: Any, clock: DrivenClock) -> None:
    audit = AuditLog(store, clock)
    with pytest.raises(ValidationFailed):
        await audit.record(NURSE, "")
    with pytest.raises(ValidationFailed):
        await audit.record(NURSE, "pii.read", purpose="x" * 301)
    await audit.record(NURSE, "pii.read", client="c" * 500)   # a long client string is cut, not refused
    assert await store.scalar(select(func.count()).select_from(audit_log)) == 1
    assert len((await audit.query())[0]["client"]) == 100
