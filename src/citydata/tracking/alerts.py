"""``TrackingAlerts``: raise the tracking alerts straight from the tracking events, per the IOC contract.

Until the rule pack covers them (then set ``tracking_direct_alerts = false``), this durable consumer (group
``tracking-alerts``) publishes ``alert.raised`` for

* ``tracking.zone_left`` of the home province → kind ``tracking.left_zone`` (data ``zone``, ``now_in``), updated
  by each ``tracking.still_outside`` and cleared by ``tracking.zone_entered`` of that zone;
* ``tracking.overdue`` → kind ``tracking.overdue``, cleared by ``tracking.overdue_cleared``;
* ``tracking.screening_failed`` → kind ``tracking.screening_failed``.

The dedup keys are ``<kind>:<traveller>[:<zone>]``, so a repeated event updates one alert. No personal data.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from citydata.events import Event, make_event

if TYPE_CHECKING:
    from citydata.bus import Bus, Consumer, Delivery
    from citydata.clock import Clock

log = logging.getLogger(__name__)
RULE_ID = "tracking.direct"
GROUP = "tracking-alerts"


def _evidence(event: Event) -> list[dict[str, Any]]:
    summary = {k: v for k, v in event.data.items() if k in ("zone", "now_in", "reasons", "checkpoint",
                                                            "overdue_by_s", "last_seen_at", "at")}
    return [{"kind": event.kind, "id": event.id, "time": event.time.isoformat(), "summary": summary}]


def _raised(event: Event, *, dedup_key: str, kind: str, severity: str, category: str, urgency: str,
            certainty: str, message: str, message_th: str | None, data: dict[str, Any],
            location: dict[str, Any] | None = None, zone_id: str | None = None) -> Event:
    observed = str(event.data.get("at") or event.time.isoformat())
    payload = {"dedup_key": dedup_key, "kind": kind, "severity": severity, "category": category,
               "urgency": urgency, "certainty": certainty, "subject": event.data["traveller_id"],
               "message": message, "message_th": message_th, "location": location, "zone_id": zone_id,
               "evidence": _evidence(event), "rule_id": RULE_ID, "rule_version": 1, "data": data,
               "observed_at": observed}
    return make_event("alert.raised", dedup_key, event.time, payload)


def _cleared(event: Event, dedup_key: str, reason: str) -> Event:
    return make_event("alert.cleared", dedup_key, event.time, {
        "dedup_key": dedup_key, "rule_id": RULE_ID, "reason": reason, "observed_at": event.time.isoformat()})


def alerts_for(event: Event, home_zone: str) -> list[Event]:
    """The alert events one tracking event gives (pure, for tests and for the consumer)."""
    d = event.data
    tid = d.get("traveller_id")
    if not tid:
        return []
    if event.kind in ("tracking.zone_left", "tracking.still_outside") and d.get("zone") == home_zone:
        key = f"tracking.left_zone:{tid}:{d['zone']}"
        point = {"type": "Point", "coordinates": [d["lon"], d["lat"]]}
        return [_raised(event, dedup_key=key, kind="tracking.left_zone", severity="moderate", category="Safety",
                        urgency="expected", certainty="likely",
                        message=f"Traveller {tid} left {d['zone_name']}, now in {d['now_in']}",
                        message_th=f"นักท่องเที่ยว {tid} ออกนอกพื้นที่ {d['zone_name']} ขณะนี้อยู่ที่ {d['now_in']}",
                        data={"zone": d["zone"], "now_in": d["now_in"]}, location=point, zone_id=d["zone"])]
    if event.kind == "tracking.zone_entered" and d.get("zone") == home_zone:
        return [_cleared(event, f"tracking.left_zone:{tid}:{d['zone']}", "back inside")]
    if event.kind == "tracking.overdue":
        return [_raised(event, dedup_key=f"tracking.overdue:{tid}", kind="tracking.overdue", severity="moderate",
                        category="Safety", urgency="expected", certainty="possible",
                        message=f"Traveller {tid} has not reported since {d['last_seen_at']}",
                        message_th=f"นักท่องเที่ยว {tid} ไม่ได้รายงานตำแหน่งตั้งแต่ {d['last_seen_at']}",
                        data={"last_seen_at": d["last_seen_at"], "overdue_by_s": d["overdue_by_s"]})]
    if event.kind == "tracking.overdue_cleared":
        return [_cleared(event, f"tracking.overdue:{tid}", "reported again")]
    if event.kind == "tracking.screening_failed":
        reasons = list(d.get("reasons") or [])
        return [_raised(event, dedup_key=f"tracking.screening_failed:{tid}", kind="tracking.screening_failed",
                        severity="moderate", category="Health", urgency="immediate", certainty="observed",
                        message=f"Screening failed at {d['checkpoint']} for traveller {tid}: {', '.join(reasons)}",
                        message_th=f"การคัดกรองไม่ผ่านที่ {d['checkpoint']} นักท่องเที่ยว {tid}",
                        data={"checkpoint": d["checkpoint"], "reasons": reasons},
                        zone_id=f"checkpoint:{d['checkpoint']}")]
    return []


class TrackingAlerts:
    """The bridge: a durable consumer of ``tracking.>`` that publishes ``alert.raised`` / ``alert.cleared``."""

    def __init__(self, bus: Bus, clock: Clock, home_zone: str = "province:83") -> None:
        self.bus, self.clock, self.home_zone = bus, clock, home_zone
        self._consumer: Consumer | None = None
        self.raised = 0

    async def start(self) -> None:
        self._consumer = await self.bus.consume(GROUP, "tracking.>", self._handle)

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.close()
            self._consumer = None

    async def _handle(self, delivery: Delivery) -> None:
        out = alerts_for(delivery.event, self.home_zone)
        if out:
            await self.bus.publish_many(out)
            self.raised += sum(1 for e in out if e.kind == "alert.raised")
