"""One adapter for analytics computed on the camera by its vendor (edge analytics), into CityData's events.

Accepted shapes (``POST /api/v1/vision/vendor/{vendor}``):

* ``onvif`` — an ONVIF-style notification converted to JSON by the camera or its VMS::

    {"Topic": "tns1:RuleEngine/LineDetector/Crossed", "UtcTime": "2026-11-21T10:00:00Z",
     "Source": {"VideoSource": "cam:junction-01", "Rule": "stop-north"},
     "Data": {"ObjectId": "42", "Direction": "wrong", "Signal": "red", "LicensePlate": "กข1234",
              "Province": "ภูเก็ต", "Likelihood": 0.9}}

  ``LineDetector/Crossed`` with ``Signal: red`` is a red-light crossing; ``Direction: wrong`` (or a topic
  ending in ``WrongDirection``) is wrong-way travel; a ``LicensePlate`` (``tns1:LicensePlateRecognition``)
  goes through the hotlist check like a plate read by CityData.
* ``generic`` (and any other vendor name) — a flat vendor JSON::

    {"camera_id": "cam:junction-01", "type": "red_light" | "wrong_way" | "plate", "time": "...",
     "line": "stop-north", "track_id": "42", "plate": "กข1234", "province": "ภูเก็ต", "confidence": 0.9}
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from citydata.errors import ValidationFailed


@dataclass(slots=True)
class VendorEvent:
    camera_id: str
    time: datetime | None
    violation: str | None          # red_light, wrong_way
    line: str
    track_id: str
    plate: str | None
    province: str | None
    confidence: float | None


def _time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as err:
        raise ValidationFailed(f"invalid event time {value!r}", code="invalid_time") from err
    if t.tzinfo is None:
        raise ValidationFailed("the event time needs a time zone", code="invalid_time")
    return t


def _conf(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, min(1.0, float(value)))
    except (TypeError, ValueError) as err:
        raise ValidationFailed("confidence must be a number", code="invalid_confidence") from err


def parse_vendor_event(vendor: str, body: dict[str, Any]) -> VendorEvent:
    if not isinstance(body, dict):
        raise ValidationFailed("the vendor event must be a JSON object", code="invalid_vendor_event")
    if vendor == "onvif":
        topic = str(body.get("Topic") or "")
        source = body.get("Source") or {}
        data = body.get("Data") or {}
        if not isinstance(source, dict) or not isinstance(data, dict):
            raise ValidationFailed("Source and Data must be objects", code="invalid_vendor_event")
        camera = str(source.get("VideoSource") or source.get("VideoSourceConfigurationToken") or "")
        violation = None
        if topic.endswith("WrongDirection") or str(data.get("Direction", "")).lower() == "wrong":
            violation = "wrong_way"
        elif "LineDetector" in topic and str(data.get("Signal", "")).lower() == "red":
            violation = "red_light"
        plate = data.get("LicensePlate")
        if violation is None and not plate:
            raise ValidationFailed(f"unsupported ONVIF event {topic!r} (need a line crossing on red, a wrong "
                                   "direction or a licence plate)", code="unsupported_vendor_event")
        ev = VendorEvent(camera, _time(body.get("UtcTime")), violation, str(source.get("Rule") or "vendor"),
                         str(data.get("ObjectId") or ""), str(plate) if plate else None,
                         str(data["Province"]) if data.get("Province") else None, _conf(data.get("Likelihood")))
    else:
        kind = str(body.get("type") or "")
        if kind not in ("red_light", "wrong_way", "plate"):
            raise ValidationFailed("type must be red_light, wrong_way or plate", code="unsupported_vendor_event")
        plate = body.get("plate")
        if kind == "plate" and not plate:
            raise ValidationFailed("a plate event needs `plate`", code="invalid_vendor_event")
        ev = VendorEvent(str(body.get("camera_id") or ""), _time(body.get("time")),
                         None if kind == "plate" else kind, str(body.get("line") or "vendor"),
                         str(body.get("track_id") or ""), str(plate) if plate else None,
                         str(body["province"]) if body.get("province") else None, _conf(body.get("confidence")))
    if not ev.camera_id:
        raise ValidationFailed("the event names no camera", code="invalid_vendor_event")
    return ev
