"""Dialect-specific SQL pieces (SQLite and PostgreSQL) the compiler assembles. Values are always bound
parameters; nothing from a request is pasted into SQL text.

* JSON: ``json_type``/``json_extract`` with a bound ``$."key"[0]`` path on SQLite; ``CAST(col AS jsonb) #> path``
  / ``#>>`` with a bound ``text[]`` path on PostgreSQL. A JSON value is used only where its JSON type fits
  (a number where a number is wanted, ...); otherwise it is NULL, so the comparison is false.
* Times: SQLite keeps naive UTC text ``YYYY-MM-DD HH:MM:SS.ffffff`` (``strftime``/``substr``); PostgreSQL keeps
  ``timestamptz`` (``timezone('UTC', col)`` then ``extract``).
* Math: ``round`` is half away from zero on both; ``floor``/``ceiling`` on SQLite avoid the optional math
  extension; ``div`` is floating-point division and ``mod`` truncates toward zero (as SQL's ``%``); a zero
  divisor gives NULL on both engines instead of an error.
"""

from __future__ import annotations

from datetime import date, time
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Date,
    Float,
    Integer,
    Numeric,
    Text,
    Time,
    case,
    cast,
    extract,
    func,
    literal,
    null,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

SQLITE_JSON_NUMBER = ("integer", "real")
INT_LIMIT = 2**31 - 1

E = ColumnElement[Any]


class Dialect:
    def __init__(self, name: str) -> None:
        if name not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported dialect {name!r}")
        self.name = name
        self.pg = name == "postgresql"

    # -- JSON ------------------------------------------------------------------------------------------------
    def _sqlite_path(self, path: tuple[str | int, ...]) -> E:
        text = "$" + "".join(f"[{k}]" if isinstance(k, int) else f'."{k}"' for k in path)
        return literal(text, Text)

    def _pg_doc(self, column: E, path: tuple[str | int, ...]) -> tuple[E, E]:
        doc = cast(type_coerce(column, Text), JSONB)
        return doc, literal([str(k) for k in path], ARRAY(Text))

    def json_type(self, column: E, path: tuple[str | int, ...]) -> E:
        """The JSON type name at ``path`` (SQLite names: null true false integer real text array object;
        PostgreSQL: null boolean number string array object), NULL when missing."""
        if self.pg:
            doc, p = self._pg_doc(column, path)
            return func.jsonb_typeof(doc.op("#>")(p))
        return func.json_type(type_coerce(column, Text), self._sqlite_path(path))

    def json_raw(self, column: E, path: tuple[str | int, ...]) -> E:
        """The value at ``path``: SQLite's native value; PostgreSQL's text form (``#>>``)."""
        if self.pg:
            doc, p = self._pg_doc(column, path)
            return type_coerce(doc.op("#>>")(p), Text)
        return func.json_extract(type_coerce(column, Text), self._sqlite_path(path))

    def json_sortable(self, column: E, path: tuple[str | int, ...]) -> E:
        if self.pg:
            doc, p = self._pg_doc(column, path)
            return doc.op("#>")(p)
        return func.json_extract(type_coerce(column, Text), self._sqlite_path(path))

    def json_number(self, column: E, path: tuple[str | int, ...]) -> E:
        kind = self.json_type(column, path)
        if self.pg:
            return case((kind == "number", cast(self.json_raw(column, path), Float)), else_=null())
        return case((kind.in_(SQLITE_JSON_NUMBER), self.json_raw(column, path)), else_=null())

    def json_string(self, column: E, path: tuple[str | int, ...]) -> E:
        kind = self.json_type(column, path)
        return case((kind == ("string" if self.pg else "text"), self.json_raw(column, path)), else_=null())

    def json_bool(self, column: E, path: tuple[str | int, ...]) -> E:
        kind = self.json_type(column, path)
        if self.pg:
            return case((kind == "boolean", cast(self.json_raw(column, path), Boolean)), else_=null())
        return case((kind.in_(("true", "false")), self.json_raw(column, path) == 1), else_=null())

    def json_is_null(self, column: E, path: tuple[str | int, ...]) -> E:
        return func.coalesce(self.json_type(column, path), "null") == "null"

    # -- strings ---------------------------------------------------------------------------------------------
    def contains(self, haystack: E, needle: E) -> E:
        if self.pg:
            return func.strpos(haystack, needle) > 0
        return func.instr(haystack, needle) > 0

    def index_of(self, haystack: E, needle: E) -> E:
        return (func.strpos(haystack, needle) if self.pg else func.instr(haystack, needle)) - 1

    def starts_with(self, s: E, prefix: E) -> E:
        return func.substr(s, 1, func.length(prefix)) == prefix

    def ends_with(self, s: E, suffix: E) -> E:
        start = func.length(s) - func.length(suffix) + 1
        return (func.length(s) >= func.length(suffix)) & (func.substr(s, start) == suffix)

    def substring(self, s: E, start: E, count: E | None) -> E:
        """OData ``substring(s, i[, n])`` with a 0-based ``i``; a negative ``i`` or ``n`` counts as 0."""
        first = self._greatest(self._int(start) + 1, 1)
        if count is None:
            return func.substr(s, first)
        return func.substr(s, first, self._greatest(self._int(count), 0))

    def _int(self, x: E) -> E:
        """``x`` truncated toward zero (PostgreSQL's CAST rounds, SQLite's truncates)."""
        if not self.pg:
            return cast(x, Integer)
        clamped = func.least(func.greatest(func.trunc(x), -INT_LIMIT), INT_LIMIT)   # substr takes an int4
        return case((x.is_(None), null()), else_=cast(clamped, Integer))

    def arith(self, x: E) -> E:
        """An operand of add/sub/mul: floating point on PostgreSQL, so no integer overflow errors (SQLite
        turns an overflowing integer result into a float by itself)."""
        return cast(x, Float) if self.pg else x

    def _greatest(self, x: E, floor: int) -> E:
        """``max(x, floor)``, NULL when ``x`` is NULL on both engines (PostgreSQL's greatest skips NULLs)."""
        if self.pg:
            return case((x.is_(None), null()), else_=func.greatest(x, floor))
        return func.max(x, floor)

    def concat(self, a: E, b: E) -> E:
        return type_coerce(a.op("||")(b), Text)

    def ordered(self, s: E) -> E:
        """A string for ordering comparisons: byte order on both engines."""
        return type_coerce(s, Text).collate("C") if self.pg else s

    # -- math ------------------------------------------------------------------------------------------------
    def div(self, a: E, b: E) -> E:
        return cast(a, Float).op("/")(func.nullif(cast(b, Float), 0.0))

    def mod(self, a: E, b: E) -> E:
        quotient = self.div(a, b)
        whole = func.trunc(quotient) if self.pg else cast(quotient, Integer)
        return a - b * whole

    def round(self, x: E) -> E:
        if self.pg:
            return cast(func.round(cast(x, Numeric)), Float)
        return func.round(x)

    def floor(self, x: E) -> E:
        if self.pg:
            return func.floor(x)
        whole = cast(x, Integer)
        return whole - case((x < whole, 1), else_=0)

    def ceiling(self, x: E) -> E:
        if self.pg:
            return func.ceil(x)
        whole = cast(x, Integer)
        return whole + case((x > whole, 1), else_=0)

    # -- times -----------------------------------------------------------------------------------------------
    _SQLITE_PARTS = {"year": "%Y", "month": "%m", "day": "%d", "hour": "%H", "minute": "%M", "second": "%S"}

    def time_part(self, part: str, t: E) -> E:
        if self.pg:
            return cast(func.floor(extract(part, func.timezone("UTC", t))), Integer)
        return cast(func.strftime(self._SQLITE_PARTS[part], t), Integer)

    def fractional_seconds(self, t: E) -> E:
        if self.pg:
            seconds = extract("second", func.timezone("UTC", t))
            return cast(seconds - func.floor(seconds), Float)
        return cast(literal("0", Text).op("||")(func.substr(t, 20)), Float)

    def date_of(self, t: E) -> E:
        if self.pg:
            return cast(func.timezone("UTC", t), Date)
        return func.substr(t, 1, 10)

    def time_of(self, t: E) -> E:
        if self.pg:
            return cast(func.timezone("UTC", t), Time)
        return func.substr(t, 12)

    def date_literal(self, value: date) -> E:
        return literal(value, Date) if self.pg else literal(value.isoformat(), Text)

    def time_literal(self, value: time) -> E:
        return literal(value, Time) if self.pg else literal(value.isoformat("microseconds"), Text)

