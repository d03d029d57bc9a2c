"""hostapd (OpenWrt and most Linux APs) over syslog: ``AP-STA-CONNECTED`` / ``AP-STA-DISCONNECTED``.

    <30>Nov 21 10:15:01 wifi-patong-001 hostapd: wlan0: AP-STA-CONNECTED 3c:22:fb:12:34:56
    <30>1 2026-11-21T10:15:01+07:00 wifi-patong-001 hostapd - - - wlan0: AP-STA-DISCONNECTED 3c:22:fb:12:34:56

The syslog host is the hotspot (set each AP's hostname, or its NAS-Identifier, to its hotspot id).
"""

from __future__ import annotations

import re

from citydata.wifi.model import ParseError, RawRecord
from citydata.wifi.parsers.base import Context, Parser, register, split_syslog

_EVENT = re.compile(r"AP-STA-(CONNECTED|DISCONNECTED) ([0-9A-Fa-f:]{17})")


def matches(message: str) -> bool:
    return "AP-STA-CONNECTED" in message or "AP-STA-DISCONNECTED" in message


def parse(line: str, ctx: Context) -> RawRecord:
    head = split_syslog(line, ctx)
    m = _EVENT.search(head.message)
    if m is None:
        raise ParseError("no AP-STA-CONNECTED/DISCONNECTED event with a station MAC")
    if not head.host:
        raise ParseError("no syslog host (the hotspot)")
    kind = "start" if m.group(1) == "CONNECTED" else "stop"
    return RawRecord(at=head.at, kind=kind, mac=m.group(2), hotspot=head.host, fmt="hostapd")


register(Parser("hostapd", "hostapd AP-STA-CONNECTED / AP-STA-DISCONNECTED syslog lines", parse,
                syslog=True, matches=matches))
