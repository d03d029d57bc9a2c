"""Compile ``$filter`` and ``$orderby`` ASTs to SQLAlchemy Core, the same on SQLite and PostgreSQL.

Semantics chosen (following FROST-Server where the standard leaves room):

* **Navigation** (``Datastream/Thing/name``, ``Datastreams/name``) becomes a correlated ``EXISTS`` subquery per
  comparison or boolean function, so a to-many step means "ANY related entity" and never duplicates rows.
  In ``$orderby`` only to-one steps are allowed (a scalar subquery).
* **Times**: an instant is the interval ``[t, t]``; intervals (``validTime``, a Datastream's
  ``phenomenonTime``, an Observation's ``phenomenonTime`` when it has an end) are half-open ``[start, end)``.
  ``a eq b``: both ends equal; ``a lt b``: a ends before (or when) b starts and starts before it
  (``a.end <= b.start and a.start < b.start``); ``a gt b``: the mirror; ``a le b``: ``a.start <= b.start and
  a.end <= b.end``; ``a ge b``: the mirror; ``ne`` is ``not eq``. Between instants these are the usual
  comparisons; ``phenomenonTime gt X`` on an interval means it starts after X, ``lt X`` that it has ended by X.
  Date functions (``year`` ...) use the start. All times are UTC, so ``totaloffsetminutes`` is 0.
* **result**: with a number, ``result_number``; with a string, ``eq``/``ne`` compare ``result_json`` with the
  JSON encoding of the string, and ``gt``/``lt``... compare the decoded string value (byte order); with a
  boolean, ``result_json`` is ``true``/``false``. ``result eq null`` means no result at all.
* **JSON sub-properties** (``properties/owner``, ``parameters/depth``, ``properties/tags/0``) take the type of
  what they are compared with; a stored value of another JSON type does not match.
* Numbers: ``div`` is floating-point, ``mod`` truncates toward zero, a zero divisor gives NULL (no match);
  ``substring`` indexes truncate toward zero. ``mindatetime()``/``maxdatetime()`` are 0001-01-02 and
  9999-12-30 UTC; with an argument they are its start/end.
* ``tolower``/``toupper`` map Unicode case on both engines (SQLite through a registered function).
* Strings compare in byte order (``COLLATE "C"`` on PostgreSQL) so both engines order alike. In ``$orderby``
  NULLs sort first ascending and last descending on both engines; ``id`` is always the last key.
* **Geo functions**: SQLite runs them in SQL through the functions of :mod:`.geo` (the store registers them on
  every connection); PostgreSQL with PostGIS uses ``ST_*`` over ``ST_GeomFromGeoJSON``; PostgreSQL without
  PostGIS evaluates every top-level ``and`` term that uses a geo function in Python (``residual``) and keeps a
  bounding-box prefilter in SQL where the term implies intersection with a literal geometry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Float,
    FromClause,
    Text,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB

from citydata.sensorthings.model import ENTITIES, Entity
from citydata.sensorthings.query import geo
from citydata.sensorthings.query.ast import (
    COMPARISONS,
    Binary,
    Call,
    Expr,
    Literal,
    OrderBy,
    Path,
    QueryError,
    Unary,
    walk,
)
from citydata.sensorthings.query.sqlfuncs import Dialect
from citydata.store.types import UTCDateTime

E = ColumnElement[Any]
# mindatetime()/maxdatetime(): a day inside the range, as asyncpg sends the exact extremes as -infinity/infinity
MIN_TIME = datetime(1, 1, 2, tzinfo=UTC)
MAX_TIME = datetime(9999, 12, 30, tzinfo=UTC)
_CONCRETE = frozenset({"number", "string", "bool", "datetime", "date", "time", "geo"})
_TIME_PARTS = ("year", "month", "day", "hour", "minute", "second")


@dataclass
class CompiledFilter:
    """``where``: SQL for the filter (None: no filter); ``residual``: an exact Python test over a row of the
    entity's table (column name -> value) that rows passing ``where`` must also pass, or None."""

    where: ColumnElement[bool] | None
    residual: Callable[[Mapping[str, Any]], bool] | None = None


@dataclass
class V:
    """A compiled value and its type."""

    kind: str                      # number string bool datetime date time geo null json
    sql: Any = None                # scalar kinds; for geo: GeoJSON text (or a PostGIS geometry)
    start: Any = None              # datetime: start and end (the same for an instant)
    end: Any = None
    column: Any = None             # json: the JSON text column and the path inside it
    path: tuple[str | int, ...] = ()
    result: Any = None             # Observation.result: the result_number column (column is result_json)
    lit: Any = None                # the Python value of a literal
    is_lit: bool = False


def _split_and(expr: Expr) -> list[Expr]:
    if isinstance(expr, Binary) and expr.op == "and":
        return _split_and(expr.left) + _split_and(expr.right)
    return [expr]


def _has_geo(expr: Expr) -> bool:
    return any(isinstance(n, Call) and n.name in geo.GEO_FUNCTIONS for n in walk(expr))


class Compiler:
    def __init__(self, entity: Entity, table: FromClause, dialect: str, *, postgis: bool, now: datetime | None,
                 option: str) -> None:
        self.d = Dialect(dialect)
        self.postgis = postgis and self.d.pg
        self.option = option
        self.now = now or datetime.now(UTC)
        self.aliases: dict[tuple[str, ...], tuple[Entity, FromClause]] = {(): (entity, table)}
        self.geo_stub = False      # PostgreSQL without PostGIS: type-check geo calls only

    def error(self, pos: int, detail: str) -> QueryError:
        return QueryError(self.option, pos, detail)

    # -- navigation ------------------------------------------------------------------------------------------
    def _join(self, navs: tuple[str, ...], froms: list[FromClause], conds: list[E], *, to_one: bool,
              pos: int) -> None:
        for n in range(1, len(navs) + 1):
            prefix = navs[:n]
            if prefix in self.aliases:
                continue
            parent_entity, parent = self.aliases[prefix[:-1]]
            nav = parent_entity.nav(prefix[-1])
            assert nav is not None
            if to_one and nav.many:
                raise self.error(pos, f"cannot order by a property across the to-many {nav.name!r}")
            target = ENTITIES[nav.target]
            alias = target.table.alias()
            froms.append(alias)
            if nav.kind == "fk_here":
                conds.append(alias.c.id == parent.c[nav.column])
            elif nav.kind == "fk_there":
                conds.append(alias.c[nav.column] == parent.c.id)
            else:
                assert nav.link is not None
                link = nav.link.alias()
                froms.append(link)
                conds += [link.c[nav.this_column] == parent.c.id, alias.c.id == link.c[nav.target_column]]
            self.aliases[prefix] = (target, alias)

    def _missing_navs(self, expr: Expr) -> list[tuple[str, ...]]:
        return [n.navs for n in walk(expr) if isinstance(n, Path) and n.navs and n.navs not in self.aliases]

    # -- booleans --------------------------------------------------------------------------------------------
    def boolean(self, expr: Expr) -> E:
        if isinstance(expr, Binary) and expr.op in ("and", "or"):
            left, right = self.boolean(expr.left), self.boolean(expr.right)
            return and_(left, right) if expr.op == "and" else or_(left, right)
        if isinstance(expr, Unary) and expr.op == "not":
            return not_(self.boolean(expr.operand))
        missing = self._missing_navs(expr)
        if not missing:
            return self.as_bool(self.value(expr), _pos(expr))
        saved = dict(self.aliases)
        froms: list[FromClause] = []
        conds: list[E] = []
        try:
            for navs in missing:
                self._join(navs, froms, conds, to_one=False, pos=_pos(expr))
            inner = self.as_bool(self.value(expr), _pos(expr))
        finally:
            self.aliases = saved
        return exists(select(literal(1)).select_from(*froms).where(*conds, inner))

    def as_bool(self, v: V, pos: int) -> E:
        if v.kind == "bool":
            return v.sql  # type: ignore[no-any-return]
        if v.kind == "json":
            return self.d.json_bool(v.column, v.path)
        raise self.error(pos, f"expected a boolean expression, found a {v.kind}")

    # -- values ----------------------------------------------------------------------------------------------
    def value(self, expr: Expr) -> V:
        if isinstance(expr, Literal):
            return self.literal(expr)
        if isinstance(expr, Path):
            return self.path(expr)
        if isinstance(expr, Unary):
            if expr.op == "not":
                return V("bool", not_(self.boolean(expr.operand)))
            return V("number", -self.number(self.value(expr.operand), expr.pos))
        if isinstance(expr, Binary):
            if expr.op in ("and", "or"):
                return V("bool", self.boolean(expr))
            left, right = self.value(expr.left), self.value(expr.right)
            if expr.op in COMPARISONS:
                return V("bool", self.compare(expr.op, left, right, expr.pos))
            a, b = self.number(left, _pos(expr.left)), self.number(right, _pos(expr.right))
            if expr.op in ("add", "sub", "mul"):
                a, b = self.d.arith(a), self.d.arith(b)
            if expr.op == "add":
                return V("number", a + b)
            if expr.op == "sub":
                return V("number", a - b)
            if expr.op == "mul":
                return V("number", a * b)
            return V("number", self.d.div(a, b) if expr.op == "div" else self.d.mod(a, b))
        return self.call(expr)

    def literal(self, lit: Literal) -> V:
        value = lit.value
        if lit.type == "string":
            return V("string", literal(value, Text), lit=value, is_lit=True)
        if lit.type == "number":
            return V("number", literal(value, Float) if isinstance(value, float) else literal(value, BigInteger),
                     lit=value, is_lit=True)
        if lit.type == "bool":
            return V("bool", literal(value, Boolean), lit=value, is_lit=True)
        if lit.type == "null":
            return V("null", null(), is_lit=True)
        if lit.type == "datetime":
            bound = literal(value, UTCDateTime())
            return V("datetime", start=bound, end=bound, lit=value, is_lit=True)
        if lit.type == "date":
            return V("date", self.d.date_literal(value), lit=value, is_lit=True)
        if lit.type == "time":
            return V("time", self.d.time_literal(value), lit=value, is_lit=True)
        text = geo.geojson_text(value)
        sql: Any = literal(text, Text)
        if self.postgis:
            sql = func.ST_GeomFromGeoJSON(sql)
        return V("geo", sql, lit=value, is_lit=True)

    def path(self, p: Path) -> V:
        entity, table = self.aliases[p.navs]
        prop = entity.prop(p.prop)
        assert prop is not None
        if prop.kind == "interval":
            return V("datetime", start=table.c[prop.column + "_start"], end=table.c[prop.column + "_end"])
        if prop.kind == "phenomenon":
            start = table.c.phenomenon_time
            return V("datetime", start=start, end=func.coalesce(table.c.phenomenon_time_end, start))
        if prop.kind == "result":
            if p.json_path:
                return V("json", column=table.c.result_json, path=p.json_path)
            return V("json", column=table.c.result_json, result=table.c.result_number)
        col = table.c[prop.column]
        if prop.kind == "time":
            return V("datetime", start=col, end=col)
        if prop.kind == "id":
            return V("number", col)
        if prop.kind == "json":
            return V("json", column=col, path=p.json_path)
        if prop.kind == "geo":
            if self.postgis:
                doc = type_coerce(col, Text).cast(JSONB)
                geometry = case((doc.op("->>")(literal("type", Text)) == "Feature",
                                 doc.op("->")(literal("geometry", Text)).cast(Text)), else_=type_coerce(col, Text))
                return V("geo", func.ST_GeomFromGeoJSON(geometry))
            return V("geo", type_coerce(col, Text))
        return V("string", col)

    # -- coercions -------------------------------------------------------------------------------------------
    def number(self, v: V, pos: int) -> E:
        if v.kind == "number":
            return v.sql  # type: ignore[no-any-return]
        if v.kind == "json":
            return v.result if v.result is not None else self.d.json_number(v.column, v.path)
        raise self.error(pos, f"expected a number, found a {v.kind}")

    def string(self, v: V, pos: int) -> E:
        if v.kind == "string":
            return v.sql  # type: ignore[no-any-return]
        if v.kind == "json":
            return self.d.json_string(v.column, v.path)
        raise self.error(pos, f"expected a string, found a {v.kind}")

    def times(self, v: V, pos: int) -> V:
        if v.kind != "datetime":
            raise self.error(pos, f"expected a date-time, found a {v.kind}")
        return v

    def geometry(self, v: V, pos: int) -> Any:
        if v.kind != "geo":
            raise self.error(pos, f"expected a geometry, found a {v.kind}")
        return v.sql

    # -- comparisons -----------------------------------------------------------------------------------------
    def is_null(self, v: V) -> E:
        if v.kind == "datetime":
            return v.start.is_(None)  # type: ignore[no-any-return]
        if v.kind == "json":
            if v.result is not None:
                return and_(v.result.is_(None), self.d.json_is_null(v.column, ()))
            return self.d.json_is_null(v.column, v.path)
        if v.kind == "null":
            return true()
        return v.sql.is_(None)  # type: ignore[no-any-return]

    def compare(self, op: str, a: V, b: V, pos: int) -> E:
        if a.kind == "null" or b.kind == "null":
            if op not in ("eq", "ne"):
                raise self.error(pos, f"null can only be compared with eq or ne, not {op}")
            test = self.is_null(b if a.kind == "null" else a)
            return test if op == "eq" else not_(test)
        kind = self._unify(a, b, pos)
        if kind == "number":
            return _op(op, self.number(a, pos), self.number(b, pos))
        if kind == "string":
            for x, y in ((a, b), (b, a)):
                if op in ("eq", "ne") and x.result is not None and y.is_lit:
                    return _op(op, type_coerce(x.column, Text), literal(orjson.dumps(y.lit).decode(), Text))
            sa, sb = self.string(a, pos), self.string(b, pos)
            if op not in ("eq", "ne"):
                sa, sb = self.d.ordered(sa), self.d.ordered(sb)
            return _op(op, sa, sb)
        if kind == "bool":
            if op not in ("eq", "ne"):
                raise self.error(pos, f"booleans can only be compared with eq or ne, not {op}")
            for x, y in ((a, b), (b, a)):
                if x.result is not None and y.is_lit:
                    return _op(op, type_coerce(x.column, Text), literal("true" if y.lit else "false", Text))
            return _op(op, self.as_bool(a, pos), self.as_bool(b, pos))
        if kind == "datetime":
            return _time_compare(op, a, b)
        if kind in ("date", "time"):
            return _op(op, a.sql, b.sql)
        if kind == "geo":
            raise self.error(pos, "geometries are compared with st_equals, not with " + op)
        # two JSON values: compare them as JSON (same type and value for eq)
        return _op(op, self._json_sortable(a), self._json_sortable(b))

    def _json_sortable(self, v: V) -> E:
        return self.d.json_sortable(v.column, v.path)

    def _unify(self, a: V, b: V, pos: int) -> str:
        if a.kind in _CONCRETE and b.kind in _CONCRETE:
            if a.kind != b.kind:
                raise self.error(pos, f"cannot compare a {a.kind} with a {b.kind}")
            return a.kind
        concrete = a.kind if a.kind in _CONCRETE else b.kind
        if concrete == "json":
            return "json"
        if concrete not in ("number", "string", "bool"):
            raise self.error(pos, f"cannot compare a JSON value with a {concrete}")
        return concrete

    # -- functions -------------------------------------------------------------------------------------------
    def call(self, c: Call) -> V:
        name = c.name
        if name in geo.GEO_FUNCTIONS:
            return self.geo_call(c)
        if name == "now":
            bound = literal(self.now, UTCDateTime())
            return V("datetime", start=bound, end=bound)
        if name in ("mindatetime", "maxdatetime"):
            if not c.args:
                bound = literal(MIN_TIME if name == "mindatetime" else MAX_TIME, UTCDateTime())
                return V("datetime", start=bound, end=bound)
            t = self.times(self.value(c.args[0]), _pos(c.args[0]))
            edge = t.start if name == "mindatetime" else t.end
            return V("datetime", start=edge, end=edge)
        args = [self.value(a) for a in c.args]
        pos = [_pos(a) for a in c.args]
        if name in _TIME_PARTS:
            return V("number", self.d.time_part(name, self.times(args[0], pos[0]).start))
        if name == "fractionalseconds":
            return V("number", self.d.fractional_seconds(self.times(args[0], pos[0]).start))
        if name == "date":
            return V("date", self.d.date_of(self.times(args[0], pos[0]).start))
        if name == "time":
            return V("time", self.d.time_of(self.times(args[0], pos[0]).start))
        if name == "totaloffsetminutes":
            start = self.times(args[0], pos[0]).start
            return V("number", case((start.is_(None), null()), else_=literal(0)))
        if name in ("round", "floor", "ceiling"):
            fn = {"round": self.d.round, "floor": self.d.floor, "ceiling": self.d.ceiling}[name]
            return V("number", fn(self.number(args[0], pos[0])))
        if name == "substring":
            count = self.number(args[2], pos[2]) if len(args) == 3 else None
            return V("string", self.d.substring(self.string(args[0], pos[0]), self.number(args[1], pos[1]), count))
        s = [self.string(v, p) for v, p in zip(args, pos, strict=True)]
        if name == "substringof":
            return V("bool", self.d.contains(s[1], s[0]))
        if name == "contains":
            return V("bool", self.d.contains(s[0], s[1]))
        if name == "startswith":
            return V("bool", self.d.starts_with(s[0], s[1]))
        if name == "endswith":
            return V("bool", self.d.ends_with(s[0], s[1]))
        if name == "length":
            return V("number", func.length(s[0]))
        if name == "indexof":
            return V("number", self.d.index_of(s[0], s[1]))
        if name == "concat":
            return V("string", self.d.concat(s[0], s[1]))
        if name == "trim":
            return V("string", func.trim(s[0]))
        if self.d.pg:
            return V("string", func.lower(s[0]) if name == "tolower" else func.upper(s[0]))
        return V("string", getattr(func, geo.SQL_LOWER if name == "tolower" else geo.SQL_UPPER)(s[0]))

    def geo_call(self, c: Call) -> V:
        name = c.name
        kind = "number" if name in ("geo.distance", "geo.length") else "bool"
        geoms = [self.geometry(self.value(a), _pos(a)) for a in c.args[:2]]
        pattern = None
        if name == "st_relate":
            pattern = self.string(self.value(c.args[2]), _pos(c.args[2]))
        if self.geo_stub:
            return V(kind, cast(null(), Float if kind == "number" else Boolean))
        if self.postgis:
            if name == "geo.length":
                return V("number", func.ST_Length(geoms[0]))
            if name == "geo.distance":
                return V("number", func.ST_Distance(geoms[0], geoms[1]))
            if name == "st_relate":
                return V("bool", func.ST_Relate(geoms[0], geoms[1], pattern))
            st = {"geo.intersects": "ST_Intersects"}.get(name, "ST_" + name[3:].capitalize())
            return V("bool", getattr(func, st)(geoms[0], geoms[1]))
        if self.d.pg:
            raise self.error(c.pos, f"{name} needs PostGIS here")
        if name == "geo.length":
            return V("number", func.citydata_geo_length(geoms[0]))
        if name == "geo.distance":
            return V("number", func.citydata_geo_distance(geoms[0], geoms[1]))
        if name == "st_relate":
            return V("bool", func.citydata_geo_relate(geoms[0], geoms[1], pattern) == 1)
        return V("bool", func.citydata_geo_pred(literal(name, Text), geoms[0], geoms[1]) == 1)

    # -- geo prefilter (PostgreSQL without PostGIS) ----------------------------------------------------------
    def bbox_prefilter(self, expr: Expr) -> E | None:
        if not (isinstance(expr, Call) and expr.name in geo.BBOX_IMPLIED):
            return None
        entity, table = self.aliases[()]
        paths = [a for a in expr.args if isinstance(a, Path) and not a.navs]
        lits = [a for a in expr.args if isinstance(a, Literal) and a.type == "geo"]
        if len(paths) != 1 or len(lits) != 1 or "min_lon" not in table.c:
            return None
        prop = entity.prop(paths[0].prop)
        if prop is None or prop.kind != "geo":
            return None
        minx, miny, maxx, maxy = geo.bbox_of(lits[0].value)
        c = table.c
        return or_(c.min_lon.is_(None), and_(c.min_lon <= maxx, c.max_lon >= minx, c.min_lat <= maxy,
                                             c.max_lat >= miny))


def _pos(expr: Expr) -> int:
    return expr.pos


def _op(op: str, a: Any, b: Any) -> E:
    if op == "eq":
        return a == b  # type: ignore[no-any-return]
    if op == "ne":
        return a != b  # type: ignore[no-any-return]
    if op == "gt":
        return a > b  # type: ignore[no-any-return]
    if op == "ge":
        return a >= b  # type: ignore[no-any-return]
    if op == "lt":
        return a < b  # type: ignore[no-any-return]
    return a <= b  # type: ignore[no-any-return]


def _time_compare(op: str, a: V, b: V) -> E:
    instants = a.start is a.end and b.start is b.end
    if instants:
        return _op(op, a.start, b.start)
    if op in ("eq", "ne"):
        test = and_(a.start == b.start, a.end == b.end)
        return test if op == "eq" else not_(test)
    if op == "gt":
        a, b, op = b, a, "lt"
    elif op == "ge":
        a, b, op = b, a, "le"
    if op == "lt":
        return and_(a.end <= b.start, a.start < b.start)
    return and_(a.start <= b.start, a.end <= b.end)


def compile_filter(expr: Expr, entity: Entity, *, dialect: str, postgis: bool = False,
                   table: FromClause | None = None, now: datetime | None = None) -> CompiledFilter:
    """SQL (and, on PostgreSQL without PostGIS, a Python residual) for a ``$filter`` AST on ``entity``.

    ``table`` is the FROM item the outer query selects ``entity`` from (default: its table); ``now`` is what
    ``now()`` means (default: the current time)."""
    comp = Compiler(entity, table if table is not None else entity.table, dialect, postgis=postgis, now=now,
                    option="$filter")
    if not (comp.d.pg and not comp.postgis and _has_geo(expr)):
        return CompiledFilter(comp.boolean(expr), None)
    parts: list[E] = []
    residual: list[Expr] = []
    for term in _split_and(expr):
        if not _has_geo(term):
            parts.append(comp.boolean(term))
            continue
        comp.geo_stub = True
        comp.boolean(term)          # type-check it as SQL would
        comp.geo_stub = False
        residual.append(term)
        prefilter = comp.bbox_prefilter(term)
        if prefilter is not None:
            parts.append(prefilter)
    where = and_(*parts) if parts else true()
    return CompiledFilter(where, geo.residual_predicate(residual, entity))


def compile_orderby(orderby: list[OrderBy], entity: Entity, *, dialect: str, postgis: bool = False,
                    table: FromClause | None = None, now: datetime | None = None) -> list[ColumnElement[Any]]:
    """ORDER BY terms for ``orderby`` on ``entity``, ending with ``id`` (stable paging) in the direction of the
    last term (ascending when there is none)."""
    from_ = table if table is not None else entity.table
    comp = Compiler(entity, from_, dialect, postgis=postgis, now=now, option="$orderby")
    terms: list[E] = []
    for item in orderby:
        froms: list[FromClause] = []
        conds: list[E] = []
        saved = dict(comp.aliases)
        try:
            for navs in comp._missing_navs(item.expr):
                comp._join(navs, froms, conds, to_one=True, pos=_pos(item.expr))
            keys = _sort_keys(comp, comp.value(item.expr), _pos(item.expr))
        finally:
            comp.aliases = saved
        for key in keys:
            nullable = bool(getattr(key, "nullable", True))
            if froms:
                key = select(key).select_from(*froms).where(*conds).limit(1).scalar_subquery()
                nullable = True
            if not nullable:   # a NOT NULL column: a plain ASC/DESC lets the engine walk its index
                terms.append(key.desc() if item.descending else key.asc())
            else:
                terms.append(key.desc().nulls_last() if item.descending else key.asc().nulls_first())
    # the tie-breaker follows the last term's direction, so (key, id) can come straight from an index scan
    last_desc = bool(orderby) and orderby[-1].descending
    terms.append(from_.c.id.desc() if last_desc else from_.c.id.asc())
    return terms


def _sort_keys(comp: Compiler, v: V, pos: int) -> list[E]:
    if v.kind == "datetime":
        return [v.start] if v.start is v.end else [v.start, v.end]
    if v.kind == "json":
        if v.result is not None:
            return [v.result, comp.d.ordered(type_coerce(v.column, Text))]   # then by the JSON text
        return [comp.d.json_sortable(v.column, v.path)]
    if v.kind == "string":
        return [comp.d.ordered(v.sql)]
    if v.kind == "geo":
        raise comp.error(pos, "cannot order by a geometry")
    if v.kind == "null" or v.is_lit:
        return []
    return [v.sql]


__all__ = ["CompiledFilter", "compile_filter", "compile_orderby"]
