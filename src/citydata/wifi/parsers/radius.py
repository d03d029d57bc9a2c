"""RADIUS accounting as text: a FreeRADIUS ``detail`` file record (one ``Attr = value`` per line, the first
line a date) or an ``rlm_linelog`` line with the same pairs on one line, comma- or space-separated:

    Sat Nov 21 10:15:01 2026
        Acct-Status-Type = Stop
        Calling-Station-Id = "3C-22-FB-12-34-56"
        NAS-Identifier = "wifi-patong-001"
        ...

    Acct-Status-Type = Stop, Calling-Station-Id = "3C-22-FB-12-34-56", NAS-Identifier = "wifi-patong-001", ...

Over a line transport (UDP/TCP syslog, HTTP) each record is one line: the linelog form, optionally behind a
syslog header (``radiusd: Acct-Status-Type = Stop, ...``); ``parse_detail`` reads whole detail files.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from citydata.wifi.model import ParseError, RawRecord
from citydata.wifi.parsers.base import Context, Parser, parse_time, register, split_syslog
from citydata.wifi.parsers.jsonl import from_attributes

_PAIR = re.compile(r'([A-Za-z][A-Za-z0-9\-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]+)')


def _pairs(text: str) -> dict[str, str]:
    return {m.group(1): m.group(2).strip('"') for m in _PAIR.finditer(text)}


def matches(message: str) -> bool:
    return "Acct-Status-Type" in message


def parse(line: str, ctx: Context) -> RawRecord:
    if "Acct-Status-Type" not in line:
        raise ParseError("no Acct-Status-Type")
    head = line
    attrs = _pairs(line)
    if "Event-Timestamp" not in attrs:
        # the syslog header's time, when the line came over syslog
        prefix = head[: head.find("Acct-Status-Type")]
        if prefix.strip():
            attrs["Event-Timestamp"] = split_syslog(line, ctx).at.isoformat()
    return from_attributes(attrs, ctx, "radius")


def parse_detail(text: str, ctx: Context) -> Iterator[tuple[int, RawRecord | ParseError]]:
    """Each record of a FreeRADIUS detail file, with the line number it starts on."""
    block: list[str] = []
    start = 0
    for n, raw in enumerate([*text.splitlines(), ""], start=1):
        if raw.strip() == "":
            if block:
                yield start, _detail_record(block, ctx)
                block = []
            continue
        if not block:
            start = n
        block.append(raw)


def _detail_record(block: list[str], ctx: Context) -> RawRecord | ParseError:
    try:
        attrs = _pairs(" ".join(block[1:])) if "=" not in block[0] else _pairs(" ".join(block))
        if "Event-Timestamp" not in attrs and "=" not in block[0]:
            attrs["Event-Timestamp"] = parse_time(block[0].strip(), ctx).isoformat()
        return from_attributes(attrs, ctx, "radius")
    except ParseError as err:
        return err


register(Parser("radius", "RADIUS accounting pairs (rlm_linelog line, FreeRADIUS detail record)", parse,
                syslog=True, matches=matches))
