"""Tokens of the OData expression language as SensorThings uses it (OGC 18-088 section 9.3.3.5).

Words (names, operators, keywords) are one token kind; the parser decides from context whether ``and`` is an
operator or a JSON key. Literals: strings in single quotes (``''`` escapes a quote), integers, decimals and
exponents (``-`` directly before a digit is part of the number), ISO 8601 date-times with a ``Z`` or
``±hh:mm`` offset (an offset-less one is taken as UTC), dates ``2026-11-21``, times of day ``09:30[:00[.5]]``,
and geometries ``geography'POINT(98.3 7.9)'`` / ``geometry'...'`` in WKT (an ``SRID=4326;`` prefix is allowed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Literal

import shapely
import shapely.wkt
from shapely.errors import ShapelyError

from citydata.sensorthings.query.ast import QueryError

TokenKind = Literal["word", "string", "number", "datetime", "date", "time", "geo", "lparen", "rparen", "comma",
                    "slash", "minus", "eof"]


@dataclass(frozen=True)
class Token:
    kind: str                 # one of TokenKind
    value: Any
    pos: int
    text: str


_DATETIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?![\dT:])")
_TIME = re.compile(r"(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(?![\d:])")
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_WORD = re.compile(r"[A-Za-z_@$][A-Za-z0-9_.@]*")
_PUNCT: dict[str, TokenKind] = {"(": "lparen", ")": "rparen", ",": "comma", "/": "slash", "-": "minus"}
_GEO_KINDS = frozenset({"Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon",
                        "GeometryCollection"})


def _micro(frac: str | None) -> int:
    return int((frac or "0")[:6].ljust(6, "0"))


def parse_wkt(text: str, option: str, pos: int) -> Any:
    """A shapely geometry from WKT (with an optional ``SRID=n;`` prefix), or a QueryError at ``pos``."""
    body = text.strip()
    if body.upper().startswith("SRID="):
        body = body.partition(";")[2]
    try:
        geom = shapely.wkt.loads(body)
    except (ShapelyError, ValueError, TypeError) as err:
        raise QueryError(option, pos, f"invalid WKT geometry {text[:40]!r}") from err
    if geom.geom_type not in _GEO_KINDS or geom.is_empty:
        raise QueryError(option, pos, f"unsupported geometry {text[:40]!r}")
    return geom


def tokenize(text: str, option: str = "$filter", base: int = 0) -> list[Token]:
    """The tokens of ``text`` (positions are offset by ``base``), ending with an ``eof`` token."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r\n":
            i += 1
            continue
        pos = base + i
        if ch == "'":
            value, i = _string(text, i, option, base)
            tokens.append(Token("string", value, pos, text[pos - base:i]))
            continue
        if ch.isdigit() or (ch in "-." and i + 1 < n and text[i + 1].isdigit()):
            tok, i = _numeric(text, i, option, base)
            tokens.append(tok)
            continue
        if ch in _PUNCT:
            tokens.append(Token(_PUNCT[ch], ch, pos, ch))
            i += 1
            continue
        m = _WORD.match(text, i)
        if m is None:
            raise QueryError(option, pos, f"unexpected character {ch!r}")
        word = m.group(0)
        i = m.end()
        if i < n and text[i] == "'" and word.lower() in ("geography", "geometry"):
            wkt, i = _string(text, i, option, base)
            tokens.append(Token("geo", parse_wkt(wkt, option, pos), pos, text[pos - base:i]))
            continue
        if i < n and text[i] == "'":
            raise QueryError(option, pos, f"unsupported literal prefix {word!r}")
        tokens.append(Token("word", word, pos, word))
    tokens.append(Token("eof", None, base + n, ""))
    return tokens


def _string(text: str, i: int, option: str, base: int) -> tuple[str, int]:
    start = i
    i += 1
    parts: list[str] = []
    while True:
        j = text.find("'", i)
        if j < 0:
            raise QueryError(option, base + start, "unterminated string")
        parts.append(text[i:j])
        nul = text.find("\x00", i, j)
        if nul >= 0:
            raise QueryError(option, base + nul, "unexpected character '\\x00' in a string")
        if j + 1 < len(text) and text[j + 1] == "'":
            parts.append("'")
            i = j + 2
            continue
        return "".join(parts), j + 1


def _numeric(text: str, i: int, option: str, base: int) -> tuple[Token, int]:
    pos = base + i
    for kind, rx in (("datetime", _DATETIME), ("date", _DATE), ("time", _TIME)):
        m = rx.match(text, i)
        if m is None:
            continue
        g = m.groups()
        try:
            value: Any
            if kind == "datetime":
                tz = UTC if g[7] in (None, "Z") else datetime.strptime(g[7], "%z").tzinfo
                value = datetime(int(g[0]), int(g[1]), int(g[2]), int(g[3]), int(g[4]), int(g[5] or 0),
                                 _micro(g[6]), tzinfo=tz).astimezone(UTC)
            elif kind == "date":
                value = date(int(g[0]), int(g[1]), int(g[2]))
            else:
                value = time(int(g[0]), int(g[1]), int(g[2] or 0), _micro(g[3]))
        except (ValueError, OverflowError) as err:
            raise QueryError(option, pos, f"invalid {kind} {m.group(0)!r}") from err
        return Token(kind, value, pos, m.group(0)), m.end()
    m = _NUMBER.match(text, i)
    if m is None:  # a lone "-" before something that is not a number
        return Token("minus", "-", pos, "-"), i + 1
    raw = m.group(0)
    end = m.end()
    if end < len(text) and (text[end].isalpha() or text[end] == "_"):
        raise QueryError(option, pos, f"invalid number {text[i:end + 1]!r}")
    number: int | float
    if any(c in raw for c in ".eE"):
        number = float(raw)
        if number != number or number in (float("inf"), float("-inf")):
            raise QueryError(option, pos, f"number out of range {raw!r}")
    else:
        number = int(raw)
        if abs(number) >= 2 ** 63:  # beyond a 64-bit integer: keep it as a (finite) float
            if len(raw) > 300:
                raise QueryError(option, pos, f"number out of range {raw[:20]!r}")
            number = float(number)
    return Token("number", number, pos, raw), end


def geo_to_geojson(geom: Any) -> dict[str, Any]:
    """A shapely geometry as a GeoJSON geometry mapping."""
    return dict(shapely.geometry.mapping(geom))
