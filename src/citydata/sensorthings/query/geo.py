"""Geometry functions of ``$filter`` (``geo.*`` and ``st_*``) evaluated with shapely 2.

* On SQLite, :func:`register_sqlite_functions` adds them to each connection as SQL functions over GeoJSON text
  (a geometry or a Feature), so the whole filter runs in SQL.
* On PostgreSQL without PostGIS, the compiler hands the geo parts of a filter to :func:`residual_predicate`, an
  exact Python predicate over a row, and keeps a superset prefilter in SQL (see ``compiler.py``).

Distances and lengths are in the units of the coordinates (degrees for WGS 84), as OGC simple features (and
PostGIS on ``geometry``) compute them.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

import orjson
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from citydata.sensorthings.model import Entity
from citydata.sensorthings.query.ast import Binary, Expr, Literal, Path, QueryError, Unary

log = logging.getLogger(__name__)

PREDICATES = ("geo.intersects", "st_equals", "st_disjoint", "st_touches", "st_within", "st_overlaps",
              "st_crosses", "st_intersects", "st_contains")
GEO_FUNCTIONS = frozenset({*PREDICATES, "st_relate", "geo.distance", "geo.length"})
# predicates that imply the two bounding boxes overlap (usable as a bbox prefilter)
BBOX_IMPLIED = frozenset(PREDICATES) - {"st_disjoint"}
SQL_PRED = "citydata_geo_pred"
SQL_RELATE = "citydata_geo_relate"
SQL_DISTANCE = "citydata_geo_distance"
SQL_LENGTH = "citydata_geo_length"
SQL_LOWER = "citydata_lower"      # Unicode-aware case mapping (SQLite's own lower/upper are ASCII only)
SQL_UPPER = "citydata_upper"


@functools.lru_cache(maxsize=4096)
def _from_text(text: str) -> BaseGeometry | None:
    return to_geometry(orjson.loads(text))


def to_geometry(value: Any) -> BaseGeometry | None:
    """A shapely geometry from GeoJSON (text, a geometry mapping or a Feature), or None if it is not one."""
    if value is None:
        return None
    if isinstance(value, BaseGeometry):
        return value
    if isinstance(value, str | bytes):
        try:
            return _from_text(value if isinstance(value, str) else value.decode())
        except (orjson.JSONDecodeError, UnicodeDecodeError):
            return None
    if isinstance(value, Mapping):
        if value.get("type") == "Feature":
            value = value.get("geometry")
            if not isinstance(value, Mapping):
                return None
        try:
            return shape(value)
        except (ValueError, TypeError, KeyError, AttributeError, shapely.errors.ShapelyError):
            return None
    return None


def predicate(name: str, a: Any, b: Any) -> bool | None:
    """``name`` (one of PREDICATES) on two geometries; None when either is missing or not a geometry."""
    ga, gb = to_geometry(a), to_geometry(b)
    if ga is None or gb is None:
        return None
    op = name.removeprefix("geo.").removeprefix("st_")
    try:
        return bool(getattr(ga, op)(gb))
    except shapely.errors.ShapelyError:
        return None


def relate(a: Any, b: Any, pattern: Any) -> bool | None:
    ga, gb = to_geometry(a), to_geometry(b)
    if ga is None or gb is None or not isinstance(pattern, str):
        return None
    try:
        return bool(ga.relate_pattern(gb, pattern))
    except (shapely.errors.ShapelyError, ValueError):
        return None


def distance(a: Any, b: Any) -> float | None:
    ga, gb = to_geometry(a), to_geometry(b)
    return None if ga is None or gb is None else float(ga.distance(gb))


def length(a: Any) -> float | None:
    ga = to_geometry(a)
    return None if ga is None else float(ga.length)


# -- SQLite ---------------------------------------------------------------------------------------------------

def _sql_pred(name: Any, a: Any, b: Any) -> int | None:
    if not isinstance(name, str) or name not in PREDICATES:
        return None
    result = predicate(name, a, b)
    return None if result is None else int(result)


def _sql_relate(a: Any, b: Any, pattern: Any) -> int | None:
    result = relate(a, b, pattern)
    return None if result is None else int(result)


def _case(method: str) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        return getattr(value, method)() if isinstance(value, str) else value

    return convert


def register_sqlite_functions(dbapi_connection: Any) -> None:
    """Add the query language's functions (geo, Unicode case mapping) to one SQLite connection (a ``sqlite3``
    connection or SQLAlchemy's aiosqlite adapter, as a ``connect`` event hands it over). Call it from the
    engine's connect hook."""
    functions: list[tuple[str, int, Callable[..., Any]]] = [
        (SQL_PRED, 3, _sql_pred), (SQL_RELATE, 3, _sql_relate), (SQL_DISTANCE, 2, distance),
        (SQL_LENGTH, 1, length), (SQL_LOWER, 1, _case("lower")), (SQL_UPPER, 1, _case("upper")),
    ]
    for name, nargs, fn in functions:
        dbapi_connection.create_function(name, nargs, fn, deterministic=True)


# -- the Python residual (PostgreSQL without PostGIS) ---------------------------------------------------------

def check_residual(expr: Expr, entity: Entity) -> None:
    """Raise QueryError unless :func:`residual_predicate` can evaluate ``expr`` on a row of ``entity``."""
    if isinstance(expr, Literal):
        return
    if isinstance(expr, Path):
        prop = entity.prop(expr.prop)
        if expr.navs or prop is None or prop.kind not in ("id", "string", "geo", "json"):
            raise QueryError("$filter", expr.pos, f"{expr.text()!r} next to a geo function needs PostGIS on "
                             "PostgreSQL (or SQLite)")
        return
    if isinstance(expr, Binary):
        check_residual(expr.left, entity)
        check_residual(expr.right, entity)
    elif isinstance(expr, Unary):
        check_residual(expr.operand, entity)
    else:
        if expr.name not in GEO_FUNCTIONS:
            raise QueryError("$filter", expr.pos, f"{expr.name} next to a geo function needs PostGIS on "
                             "PostgreSQL (or SQLite)")
        for arg in expr.args:
            check_residual(arg, entity)


def residual_predicate(exprs: list[Expr], entity: Entity) -> Callable[[Mapping[str, Any]], bool]:
    """An exact predicate over a row of ``entity``'s table (column name -> value) for the AND of ``exprs``."""
    for expr in exprs:
        check_residual(expr, entity)

    def test(row: Mapping[str, Any]) -> bool:
        return all(_eval(expr, entity, row) is True for expr in exprs)

    return test


_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: bool(a == b), "ne": lambda a, b: bool(a != b), "gt": lambda a, b: bool(a > b),
    "ge": lambda a, b: bool(a >= b), "lt": lambda a, b: bool(a < b), "le": lambda a, b: bool(a <= b),
}


def _arith(op: str, a: Any, b: Any) -> Any:
    if op == "add":
        return a + b
    if op == "sub":
        return a - b
    if op == "mul":
        return a * b
    if b == 0:
        return None
    if op == "div":
        return float(a) / b
    return a - b * int(float(a) / b)


def _eval(expr: Expr, entity: Entity, row: Mapping[str, Any]) -> Any:
    """SQL-like evaluation: a missing value (None) makes comparisons false and ``not`` of it None."""
    if isinstance(expr, Literal):
        return expr.value
    if isinstance(expr, Path):
        prop = entity.prop(expr.prop)
        assert prop is not None
        value = row.get(prop.column)
        if isinstance(value, str) and prop.kind in ("json", "geo"):
            value = orjson.loads(value)
        for key in expr.json_path:
            if isinstance(value, Mapping):
                value = value.get(str(key))
            elif isinstance(value, list) and isinstance(key, int) and key < len(value):
                value = value[key]
            else:
                return None
        return value
    if isinstance(expr, Unary):
        inner = _eval(expr.operand, entity, row)
        if expr.op == "not":
            return None if inner is None else not inner
        return None if not isinstance(inner, int | float) or isinstance(inner, bool) else -inner
    if isinstance(expr, Binary):
        return _eval_binary(expr, entity, row)
    args = [_eval(a, entity, row) for a in expr.args]
    if expr.name == "geo.distance":
        return distance(args[0], args[1])
    if expr.name == "geo.length":
        return length(args[0])
    if expr.name == "st_relate":
        return relate(*args)
    return predicate(expr.name, args[0], args[1])


def _eval_binary(expr: Binary, entity: Entity, row: Mapping[str, Any]) -> Any:
    left = _eval(expr.left, entity, row)
    if expr.op in ("and", "or"):
        right = _eval(expr.right, entity, row)
        if expr.op == "and":
            if left is False or right is False:
                return False
            return None if left is None or right is None else True
        if left is True or right is True:
            return True
        return None if left is None or right is None else False
    right = _eval(expr.right, entity, row)
    if left is None or right is None:
        return None
    number = (int, float)
    if expr.op in _CMP:
        if (isinstance(left, number) and isinstance(right, number)) or type(left) is type(right):
            try:
                return _CMP[expr.op](left, right)
            except TypeError:
                return None
        return None
    if not (isinstance(left, number) and isinstance(right, number)):
        return None
    return _arith(expr.op, left, right)


def bbox_of(geom: BaseGeometry) -> tuple[float, float, float, float]:
    minx, miny, maxx, maxy = geom.bounds
    return float(minx), float(miny), float(maxx), float(maxy)


def geojson_text(geom: BaseGeometry) -> str:
    return orjson.dumps(shapely.geometry.mapping(geom)).decode()
