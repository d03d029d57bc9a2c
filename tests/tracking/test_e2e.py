"""End to end over HTTP: arrival → enrolment → pings → exit over the Sarasin bridge → tracking.zone_left and
the alert.raised for tracking.left_zone on the bus."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from tests.conftest import bearer
from tests.tracking.conftest import SARASIN_TRACK, START, arrive_and_enrol, ping


async def wait_for(predicate: Any, timeout: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def test_arrival_pings_exit_alert(tp: Any, tclient: Any, recorder: Any, dclock: Any) -> None:
    tid, device = await arrive_and_enrol(tp, tclient)
    assert tid.startswith("tr_")
    await wait_for(lambda: "tracking.arrived" in recorder.kinds())
    t = START + timedelta(minutes=10)
    for lon, lat in SARASIN_TRACK:
        dclock.set(t + timedelta(seconds=5))
        r = await tclient.post("/api/v1/tracking/pings", json={"pings": [ping(t, lon, lat)]}, headers=bearer(device))
        assert r.status_code == 202, r.text
        assert r.json()["accepted"] == 1
        t += timedelta(minutes=6)
    await wait_for(lambda: recorder.of("alert.raised"))
    left = recorder.of("tracking.zone_left")
    assert len(left) == 1
    assert left[0].data["zone"] == "province:83" and left[0].data["now_in"] == "Phang Nga"
    alert = recorder.of("alert.raised")[0]
    assert alert.data["kind"] == "tracking.left_zone"
    # raised by the Phuket rule pack (tracking-left-zone), which copies zone and now_in into the alert's data
    assert {k: alert.data["data"][k] for k in ("zone", "now_in")} == {"zone": "province:83", "now_in": "Phang Nga"}
    assert alert.data["rule_id"] == "tracking-left-zone" and alert.data["dedup_key"].endswith(tid)
    assert alert.data["subject"] == tid
