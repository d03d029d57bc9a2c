"""JSON lines: one object per line, with RADIUS accounting attribute names (as FreeRADIUS ``rlm_json`` /
``linelog`` with a JSON template, or a controller's webhook, writes them) or plain association events.

    {"Acct-Status-Type": "Interim-Update", "Calling-Station-Id": "3C-22-FB-12-34-56",
     "Called-Station-Id": "00-11-22-33-44-55:Phuket-Free-WiFi", "NAS-Identifier": "wifi-patong-001",
     "Acct-Session-Id": "5F3A0001", "Acct-Session-Time": 600, "Acct-Input-Octets": 12345,
     "Acct-Output-Octets": 67890, "Event-Timestamp": "2026-11-21T10:15:01+07:00"}
    {"event": "associate", "mac": "3c:22:fb:12:34:56", "hotspot_id": "wifi-patong-001",
     "time": "2026-11-21T03:15:01Z"}

Attribute names are matched without regard to case, ``-`` or ``_``. A record without a time is stamped with the
receive time.
"""

from __future__ import annotations

from typing import Any

import orjson

from citydata.wifi.model import ParseError, RawRecord
from citydata.wifi.parsers.base import Context, Parser, called_station, parse_time, register, status_kind, to_int

EVENTS = {"associate": "start", "associated": "start", "association": "start", "connect": "start",
          "connected": "start", "start": "start", "interim": "interim", "interim-update": "interim",
          "disassociate": "stop", "disassociated": "stop", "disassociation": "stop", "disconnect": "stop",
          "disconnected": "stop", "stop": "stop", "deauth": "stop"}


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def _octets(attrs: dict[str, Any], name: str) -> int | None:
    base = to_int(attrs.get(_key(f"acct-{name}-octets")), f"Acct-{name.title()}-Octets")
    giga = to_int(attrs.get(_key(f"acct-{name}-gigawords")), f"Acct-{name.title()}-Gigawords")
    if base is None:
        return None
    return base + ((giga or 0) << 32)


def from_attributes(raw: dict[str, Any], ctx: Context, fmt: str) -> RawRecord:
    """A record from RADIUS-style attributes (shared with the linelog parser)."""
    attrs = {_key(str(k)): v for k, v in raw.items()}
    status = attrs.get("acctstatustype")
    if status is not None:
        kind = status_kind(str(status))
    else:
        event = attrs.get("event")
        if event is None:
            raise ParseError("neither Acct-Status-Type nor event")
        kind_or_none = EVENTS.get(str(event).strip().lower())
        if kind_or_none is None:
            raise ParseError("event must be associate, interim or disassociate")
        kind = kind_or_none
    mac = attrs.get("callingstationid") or attrs.get("mac") or attrs.get("station")
    if not mac or not isinstance(mac, str):
        raise ParseError("no device MAC (Calling-Station-Id)")
    ap_mac, _ssid = called_station(str(attrs["calledstationid"])) if attrs.get("calledstationid") else (None, None)
    hotspot = attrs.get("nasidentifier") or attrs.get("hotspotid") or attrs.get("hotspot")
    if hotspot is not None and not isinstance(hotspot, str):
        raise ParseError("NAS-Identifier must be text")
    when = attrs.get("eventtimestamp") or attrs.get("time") or attrs.get("timestamp")
    at = parse_time(str(when), ctx) if when not in (None, "") else ctx.now
    session_id = attrs.get("acctsessionid")
    return RawRecord(at=at, kind=kind, mac=mac, hotspot=(hotspot or None), ap_mac=ap_mac,
                     session_id=str(session_id).strip('"') if session_id not in (None, "") else None,
                     session_time_s=to_int(attrs.get("acctsessiontime"), "Acct-Session-Time"),
                     in_octets=_octets(attrs, "input"), out_octets=_octets(attrs, "output"), fmt=fmt)


def parse(line: str, ctx: Context) -> RawRecord:
    try:
        raw = orjson.loads(line)
    except orjson.JSONDecodeError as err:
        raise ParseError(f"not JSON ({str(err).split(':')[0]})") from err
    if not isinstance(raw, dict):
        raise ParseError("a JSON line must be an object")
    return from_attributes(raw, ctx, "jsonl")


register(Parser("jsonl", "JSON lines with RADIUS accounting attributes or association events", parse))
