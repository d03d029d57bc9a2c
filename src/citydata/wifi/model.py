"""What a WiFi record is once parsed (``RawRecord``, still holding the MAC, never stored) and once pseudonymised
at the edge (``WifiEvent``, what the rest of the platform sees)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

#: record kinds: an accounting Start / association opens a session, Interim-Update extends it, Stop /
#: disassociation closes it
START, INTERIM, STOP = "start", "interim", "stop"
KINDS = (START, INTERIM, STOP)

#: MAC-looking substrings in any of the usual spellings (aa:bb:.., aa-bb-.., aabb.ccdd.eeff, aabbccddeeff)
MAC_PATTERN = re.compile(
    r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}[:\-]){5}[0-9A-Fa-f]{2}(?![0-9A-Fa-f])"
    r"|(?<![0-9A-Fa-f.])(?:[0-9A-Fa-f]{4}\.){2}[0-9A-Fa-f]{4}(?![0-9A-Fa-f])"
    r"|(?<![0-9A-Za-z])[0-9A-Fa-f]{12}(?![0-9A-Za-z])")


class ParseError(ValueError):
    """A record that cannot be read; the message is the dead-letter reason (it never contains the MAC)."""


_PLAIN = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_SEPARATORS = str.maketrans("", "", ":-. \t")
_TWELVE = re.compile(r"^[0-9a-f]{12}$")


def normalise_mac(value: str) -> str:
    """``aa:bb:cc:dd:ee:ff`` from any common spelling; ``ParseError`` when it is not a MAC."""
    if _PLAIN.match(value):
        return value
    stripped = value.translate(_SEPARATORS).lower()
    if not _TWELVE.match(stripped):
        raise ParseError("not a MAC address")
    return ":".join(stripped[i:i + 2] for i in range(0, 12, 2))


def is_randomised(mac: str) -> bool:
    """Locally administered (the second-least-significant bit of the first octet): what phones use for
    randomised, per-network MACs."""
    return bool(int(normalise_mac(mac)[:2], 16) & 0x02)


def scrub(text: str) -> str:
    """``text`` with every MAC-looking substring replaced by ``<mac>`` (for dead letters and logs)."""
    return MAC_PATTERN.sub("<mac>", text)


@dataclass(slots=True)
class RawRecord:
    """One parsed input record. Holds the raw MAC: it lives only between the parser and ``pseudonymise``."""

    at: datetime
    kind: str
    mac: str
    hotspot: str | None = None          # NAS-Identifier / syslog host / hotspot_id
    ap_mac: str | None = None           # Called-Station-Id's MAC part (the AP's BSSID)
    session_id: str | None = None       # Acct-Session-Id
    session_time_s: int | None = None   # Acct-Session-Time
    in_octets: int | None = None
    out_octets: int | None = None
    fmt: str = ""


@dataclass(slots=True)
class WifiEvent:
    """One pseudonymised session event. ``devices`` maps each rotation period the event may touch (its own and,
    for a record reporting a session time, the ones the session began in) to the device's keyed hash there."""

    at: datetime
    kind: str
    hotspot_id: str
    devices: dict[int, str]
    randomised: bool
    session_key: str                    # hash of (hotspot, Acct-Session-Id) or of (hotspot, device)
    session_time_s: int | None = None
    in_octets: int | None = None
    out_octets: int | None = None
    fmt: str = ""
    extra: dict[str, str] = field(default_factory=dict)
