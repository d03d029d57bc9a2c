"""A scanner for personal data in what the platform writes for others to read: its logs, the open data (CKAN
action API, DCAT catalogue, every dataset as CSV and GeoJSON) and ``/metrics``.

What it looks for:

* the simulated people's own identities (``Sim Tourist N``, passport numbers ``SIMnnnnnnn``), which the
  simulator sends with every arrival: they must be stored encrypted and never be written out;
* MAC addresses in any common spelling (``3c:22:fb:12:34:56``, ``3C-22-FB-12-34-56``, ``3c22.fb12.3456``,
  ``3c22fb123456`` next to a MAC-like key); the WiFi feed pseudonymises them at the edge;
* Thai licence plates (``กข 1234``), which CCTV keeps only as keyed hashes;
* exact coordinates of people: a ``lat``/``lon`` pair with 5 or more decimals (about a metre) next to a
  traveller, tourist, report or position key.

Fixed infrastructure (hotspot and camera locations, the access point's MAC in a hotspot registry) is not personal
data; the scanner is told about such allowed values by the caller.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

PATTERNS: dict[str, re.Pattern[str]] = {
    "name": re.compile(r"Sim Tourist \d+"),
    "passport": re.compile(r"\bSIM\d{7}\b"),
    "mac": re.compile(r"(?<![0-9A-Fa-f:.-])(?:[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}"
                      r"|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4})(?![0-9A-Fa-f:.-])"),
    # a plate starts a word (not the end of a Thai word followed by a number, as in "ย้อนหลัง 30 วัน")
    "plate": re.compile(r"(?<![\u0E00-\u0E7F\d])\d?[ก-ฮ]{1,2}\s?\d{1,4}(?![\d\u0E00-\u0E7F])"),
    "person_position": re.compile(r"(?i)(traveller|tourist|report|position|fix)[^\n]{0,120}?"
                                  r"\b(lat|latitude)\W{1,4}-?\d{1,3}\.\d{5,}"),
}


@dataclass(frozen=True)
class Finding:
    source: str
    kind: str
    match: str
    context: str


def scan(text: str, source: str, allowed: Iterable[str] = ()) -> list[Finding]:
    """Every personal-data match in ``text`` (except values in ``allowed``, compared case-insensitively)."""
    ok = {a.lower() for a in allowed}
    found: list[Finding] = []
    for kind, pattern in PATTERNS.items():
        for m in pattern.finditer(text):
            value = m.group(0)
            if value.lower() in ok:
                continue
            found.append(Finding(source, kind, value, text[max(0, m.start() - 60): m.end() + 60]))
    return found
