"""Parser plugins: each format is one module that registers a ``Parser`` here.

A parser turns one line (a JSON line, a syslog line) into a ``RawRecord`` or raises ``ParseError`` with a reason.
``parse_line(line, fmt, now)`` picks the parser by name; ``fmt="syslog"`` tries every syslog parser whose
``matches`` accepts the line (after the syslog header is read by ``split_syslog``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo

from citydata.wifi.model import ParseError, RawRecord


@dataclass(frozen=True)
class Context:
    """What a parser may need besides the line: the current time and the zone of zone-less timestamps."""

    now: datetime
    tz: tzinfo


@dataclass(frozen=True)
class Parser:
    name: str
    description: str
    parse: Callable[[str, Context], RawRecord]
    syslog: bool = False                              # a syslog message format (tried by fmt="syslog")
    matches: Callable[[str], bool] | None = None      # cheap test on the syslog message part


PARSERS: dict[str, Parser] = {}


def register(parser: Parser) -> Parser:
    if parser.name in PARSERS:
        raise ValueError(f"duplicate WiFi parser {parser.name}")
    PARSERS[parser.name] = parser
    return parser


def formats() -> list[str]:
    _load_plugins()
    return [*sorted(PARSERS), "syslog"]


_plugins_loaded = False


def _load_plugins() -> None:
    # importing a plugin module registers it; checked by a flag, as this runs for every line (an import
    # statement, even of modules already loaded, costs some microseconds)
    global _plugins_loaded
    if not _plugins_loaded:
        from citydata.wifi.parsers import aruba, cisco, hostapd, jsonl, radius  # noqa: F401
        _plugins_loaded = True


def parse_line(line: str, fmt: str, ctx: Context) -> RawRecord:
    """One record from one line in format ``fmt`` (a parser name, or ``syslog`` to detect it)."""
    _load_plugins()
    if fmt == "syslog":
        msg = split_syslog(line, ctx).message
        for candidate in PARSERS.values():
            if candidate.syslog and candidate.matches is not None and candidate.matches(msg):
                return candidate.parse(line, ctx)
        raise ParseError("no syslog parser recognises this line")
    chosen = PARSERS.get(fmt)
    if chosen is None:
        raise ParseError(f"unknown format {fmt!r} (known: {', '.join(formats())})")
    return chosen.parse(line, ctx)


# -- syslog headers ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SyslogLine:
    at: datetime
    host: str | None
    app: str | None
    message: str


_PRI = re.compile(r"^<(\d{1,3})>")
# RFC 5424: <PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG
_R5424 = re.compile(r"^1 (\S+) (\S+) (\S+) (\S+) (\S+) (-|\[.*?\])\s?(.*)$", re.S)
# RFC 3164: Mmm dd hh:mm:ss HOST TAG: MSG  (TAG may carry [pid])
_R3164 = re.compile(r"^([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2})(?:\.\d+)? (\S+) "
                    r"([^:\s\[]+)(?:\[\d+\])?: ?(.*)$", re.S)
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                                       "Dec"), start=1)}


def split_syslog(line: str, ctx: Context) -> SyslogLine:
    """Header and message of an RFC 5424 or RFC 3164 line (a bare message gets the receive time). RFC 3164
    timestamps have no year and no zone: the zone is ``ctx.tz``, the year the one that puts the time closest
    before ``ctx.now`` (a line from 31 December read on 1 January is last year's)."""
    text = line.strip()
    m = _PRI.match(text)
    if m:
        text = text[m.end():]
    m5 = _R5424.match(text)
    if m5:
        at = parse_time(m5.group(1), ctx)
        host, app = (None if v == "-" else v for v in (m5.group(2), m5.group(3)))
        return SyslogLine(at, host, app, m5.group(7).lstrip("\ufeff"))
    m3 = _R3164.match(text)
    if m3:
        mon = _MONTHS.get(m3.group(1))
        if mon is None:
            raise ParseError("bad syslog timestamp")
        local_now = ctx.now.astimezone(ctx.tz)
        try:
            at = datetime(local_now.year, mon, int(m3.group(2)), int(m3.group(3)), int(m3.group(4)),
                          int(m3.group(5)), tzinfo=ctx.tz)
        except ValueError as err:
            raise ParseError("bad syslog timestamp") from err
        if at - local_now > timedelta(days=1):
            at = at.replace(year=at.year - 1)
        return SyslogLine(at.astimezone(UTC), m3.group(6), m3.group(7), m3.group(8))
    return SyslogLine(ctx.now, None, None, text)


def parse_time(value: str, ctx: Context) -> datetime:
    """An ISO 8601 time, a Unix epoch (seconds) or a FreeRADIUS ``Nov 21 2026 10:15:01 +07`` style time."""
    v = value.strip().strip('"')
    if re.fullmatch(r"\d{9,10}(\.\d+)?", v):
        return datetime.fromtimestamp(float(v), UTC)
    try:
        at = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        at = _radius_time(v, ctx)
    if at.tzinfo is None:
        at = at.replace(tzinfo=ctx.tz)
    return at.astimezone(UTC)


def _radius_time(v: str, ctx: Context) -> datetime:
    """``Nov 21 2026 10:15:01 +07`` / ``Nov 21 2026 10:15:01 ICT`` (Event-Timestamp as FreeRADIUS prints it) or
    ``Sat Nov 21 10:15:01 2026`` (a detail record's first line); zone-less times are in ``ctx.tz``."""
    m = re.fullmatch(r"([A-Z][a-z]{2} +\d{1,2} \d{4} \d{2}:\d{2}:\d{2})(?: ([+-])(\d{2})(\d{2})?| [A-Z]{2,5})?", v)
    if m:
        try:
            base = datetime.strptime(m.group(1) + " +0000", "%b %d %Y %H:%M:%S %z")
        except ValueError as err:
            raise ParseError("unreadable timestamp") from err
        if m.group(2):
            sign = 1 if m.group(2) == "+" else -1
            offset = timedelta(hours=int(m.group(3)), minutes=int(m.group(4) or 0)) * sign
            return base.replace(tzinfo=timezone(offset))
        return base.replace(tzinfo=ctx.tz)
    try:
        return datetime.strptime(v + " +0000", "%a %b %d %H:%M:%S %Y %z").replace(tzinfo=ctx.tz)
    except ValueError as err:
        raise ParseError("unreadable timestamp") from err


def to_int(value: object, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        n = int(str(value).strip().strip('"'))
    except ValueError as err:
        raise ParseError(f"{name} is not a number") from err
    if n < 0:
        raise ParseError(f"{name} is negative")
    return n


def status_kind(value: str) -> str:
    """The record kind of an ``Acct-Status-Type`` (name or RFC 2866 number)."""
    v = value.strip().strip('"').lower().replace("_", "-")
    kind = {"start": "start", "1": "start", "stop": "stop", "2": "stop", "interim-update": "interim",
            "alive": "interim", "3": "interim"}.get(v)
    if kind is None:
        raise ParseError("Acct-Status-Type must be Start, Interim-Update or Stop")
    return kind


def called_station(value: str | None) -> tuple[str | None, str | None]:
    """(AP MAC, SSID) from a ``Called-Station-Id`` like ``00-11-22-33-44-55:CityWiFi``."""
    if not value:
        return None, None
    from citydata.wifi.model import normalise_mac

    v = value.strip().strip('"')
    mac_part, ssid = (v[:17], v[18:]) if len(v) > 17 and v[17:18] == ":" else (v, "")
    try:
        return normalise_mac(mac_part), ssid or None
    except ParseError:
        return None, ssid or None
