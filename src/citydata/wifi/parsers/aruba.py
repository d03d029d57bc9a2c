"""Aruba controllers / Instant APs (``stm`` station management messages) over syslog.

    <133>Nov 21 10:15:01 wifi-kata-007 stm[2519]: <501095> <NOTI> |AP wifi-kata-007@10.1.1.7 stm|  Assoc request
        @ 10:15:01.180185: 3c:22:fb:12:34:56 (SN 2): AP 10.1.1.7-24:de:c6:aa:bb:cc-wifi-kata-007
    <133>Nov 21 10:40:22 wifi-kata-007 stm[2519]: <501080> <NOTI> |AP wifi-kata-007@10.1.1.7 stm|  Deauth to sta:
        3c:22:fb:12:34:56: Ageout AP 10.1.1.7-24:de:c6:aa:bb:cc-wifi-kata-007 Sta has aged out

(each one line). Message ids: 501095 / 501100 / 501093 (assoc request / response / auth success) start a
session, 501080 / 501105 / 501106 / 501102 (deauth / disassoc to or from the station) end it. The AP name is
the ``|AP name@ip`` tag when present, else the syslog host.
"""

from __future__ import annotations

import re

from citydata.wifi.model import ParseError, RawRecord
from citydata.wifi.parsers.base import Context, Parser, register, split_syslog

STARTS = {"501093", "501095", "501100"}
STOPS = {"501080", "501102", "501105", "501106"}
_ID = re.compile(r"<(\d{6})>")
_AP = re.compile(r"\|AP ([^@|\s]+)@")
_MAC = re.compile(r"(?<![0-9A-Fa-f:])((?:[0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2})(?![0-9A-Fa-f:]?[0-9A-Fa-f])")


def matches(message: str) -> bool:
    m = _ID.search(message)
    return m is not None and m.group(1) in STARTS | STOPS


def parse(line: str, ctx: Context) -> RawRecord:
    head = split_syslog(line, ctx)
    m = _ID.search(head.message)
    if m is None or m.group(1) not in STARTS | STOPS:
        raise ParseError("not an Aruba station association / deauth message")
    body = head.message[m.end():]
    ap = _AP.search(body)
    hotspot = ap.group(1) if ap else head.host
    # the station is the first MAC after the tag; the AP's BSSID comes later inside "AP ip-bssid-name"
    tail = body[ap.end():] if ap else body
    tail = tail.split(" AP ", 1)[0]
    mac = _MAC.search(tail)
    if mac is None:
        raise ParseError("no station MAC in the Aruba message")
    if not hotspot:
        raise ParseError("no AP name or syslog host (the hotspot)")
    kind = "start" if m.group(1) in STARTS else "stop"
    return RawRecord(at=head.at, kind=kind, mac=mac.group(1), hotspot=hotspot, fmt="aruba")


register(Parser("aruba", "Aruba stm association / deauth syslog messages (501093/501095/501100, "
                         "501080/501102/501105/501106)", parse, syslog=True, matches=matches))
