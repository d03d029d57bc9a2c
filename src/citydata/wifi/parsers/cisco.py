"""Cisco IOS access points (``%DOT11-6-ASSOC`` / ``%DOT11-6-DISASSOC``) over syslog.

    <134>Nov 21 10:15:01 wifi-oldtown-003 12345: %DOT11-6-ASSOC: Interface Dot11Radio0, Station wifi-oldtown-003
        3c22.fb12.3456 Associated KEY_MGMT[NONE]
    <134>Nov 21 10:45:12 wifi-oldtown-003 12346: %DOT11-6-DISASSOC: Interface Dot11Radio0, Deauthenticating
        Station 3c22.fb12.3456 Reason: Sending station has left the BSS

(each one line). ``%DOT11-6-ROAMED`` counts as an association at the new AP.
"""

from __future__ import annotations

import re

from citydata.wifi.model import ParseError, RawRecord
from citydata.wifi.parsers.base import Context, Parser, register, split_syslog

_EVENT = re.compile(r"%DOT11-\d-(ASSOC|DISASSOC|ROAMED):")
_DOTTED = re.compile(r"\b([0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4})\b")
_HOST_SEQ = re.compile(r"^(?:\d+: )?")


def matches(message: str) -> bool:
    return "%DOT11-" in message


def parse(line: str, ctx: Context) -> RawRecord:
    head = split_syslog(line, ctx)
    m = _EVENT.search(head.message)
    if m is None:
        raise ParseError("not a %DOT11 ASSOC/DISASSOC/ROAMED message")
    mac = _DOTTED.search(head.message[m.end():])
    if mac is None:
        raise ParseError("no station MAC in the %DOT11 message")
    if not head.host:
        raise ParseError("no syslog host (the hotspot)")
    kind = "stop" if m.group(1) == "DISASSOC" else "start"
    return RawRecord(at=head.at, kind=kind, mac=mac.group(1), hotspot=head.host, fmt="cisco")


register(Parser("cisco", "Cisco IOS AP %DOT11-6-ASSOC / DISASSOC / ROAMED syslog lines", parse,
                syslog=True, matches=matches))
