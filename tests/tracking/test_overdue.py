"""The silent-tracker timer on the driven clock: overdue after 2 × 30 min + grace, cleared by the next report,
with the matching alerts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from citydata.tracking.overdue import OverdueMonitor
from tests.conftest import bearer
from tests.tracking.conftest import PATONG, START, arrive_and_enrol, ping, settle, wait_until


def test_monitor_reschedules_and_fires_once() -> None:
    last = {"a": (0.0, 0.0)}
    mon = OverdueMonitor(100.0, lambda tid: last.get(tid))
    mon.reported("a", 0.0)
    assert mon.due(99.0) == []
    last["a"] = (50.0, 50.0)           # a report at 50: the deadline moves to 150
    assert mon.due(120.0) == []
    hits = mon.due(150.0)
    assert [h.traveller_id for h in hits] == ["a"] and hits[0].due == 150.0
    assert mon.due(1000.0) == []       # once


async def test_overdue_raised_by_the_timer_and_cleared_by_a_report(tp: Any, tclient: Any, dclock: Any,
                                                                  recorder: Any) -> None:
    tid, device = await arrive_and_enrol(tp, tclient)
    t = dclock.now()
    r = await tclient.post("/api/v1/tracking/pings", json={"pings": [ping(t, *PATONG)]}, headers=bearer(device))
    assert r.status_code == 202
    limit = 2 * tp.settings.tracking_report_interval_s + tp.settings.tracking_overdue_grace_s
    # drive the clock in timer-sized steps, like time passing; the timer task does the work
    step = tp.settings.tracking_overdue_check_s
    elapsed = 0.0
    while elapsed < limit - step:
        dclock.advance(step)
        elapsed += step
        await settle(5, pause=0)
    assert recorder.of("tracking.overdue") == []
    for _ in range(3):
        dclock.advance(step)
        await settle()
    await wait_until(lambda: recorder.of("tracking.overdue"))
    overdue = recorder.of("tracking.overdue")
    assert len(overdue) == 1 and overdue[0].data["traveller_id"] == tid
    assert overdue[0].data["last_seen_at"].startswith(t.isoformat()[:16])
    await wait_until(lambda: recorder.of("alert.raised"))
    raised = [e for e in recorder.of("alert.raised") if e.data["kind"] == "tracking.overdue"]
    assert len(raised) == 1 and raised[0].data["rule_id"] == "tracking-overdue"   # the Phuket rule pack
    assert raised[0].data["dedup_key"].endswith(tid) and raised[0].data["subject"] == tid
    attention = tp.tracking.views.attention()["items"]
    assert [(i["traveller_id"], i["reasons"]) for i in attention] == [(tid, ["overdue"])]
    r = await tclient.post("/api/v1/tracking/pings", json={"pings": [ping(dclock.now(), *PATONG)]},
                           headers=bearer(device))
    assert r.status_code == 202
    await wait_until(lambda: recorder.of("alert.cleared"))
    assert len(recorder.of("tracking.overdue_cleared")) == 1
    assert [e.data["dedup_key"] for e in recorder.of("alert.cleared")] == [raised[0].data["dedup_key"]]
    assert tp.tracking.views.attention()["items"] == []
    # silent again: a second overdue
    dclock.advance(limit + 2 * step)
    await wait_until(lambda: len(recorder.of("tracking.overdue")) == 2)
    assert len(recorder.of("tracking.overdue")) == 2


async def test_arrived_but_never_reporting_becomes_overdue(tp: Any, tclient: Any, dclock: Any,
                                                          recorder: Any) -> None:
    tid, _ = await arrive_and_enrol(tp, tclient)
    dclock.set(START + timedelta(hours=2))
    await wait_until(lambda: recorder.of("tracking.overdue"))
    assert [e.data["traveller_id"] for e in recorder.of("tracking.overdue")] == [tid]
