"""The SensorThings query language (OGC 18-088 section 9.3): request options parsed to an AST, and the AST
compiled to SQLAlchemy Core for SQLite and PostgreSQL (values are always bound, never pasted into SQL).

    query = parse_query(request.query_params, model.OBSERVATION)
    compiled = compile_filter(query.filter, model.OBSERVATION, dialect=store.dialect, postgis=store.postgis)
    order = compile_orderby(query.orderby, model.OBSERVATION, dialect=store.dialect)
"""

from citydata.sensorthings.query.ast import (
    Binary,
    Call,
    Expand,
    Expr,
    Literal,
    OrderBy,
    Path,
    Query,
    QueryError,
    Unary,
)
from citydata.sensorthings.query.compiler import CompiledFilter, compile_filter, compile_orderby
from citydata.sensorthings.query.geo import register_sqlite_functions
from citydata.sensorthings.query.options import parse_query
from citydata.sensorthings.query.parser import parse_filter

__all__ = [
    "Binary", "Call", "CompiledFilter", "Expand", "Expr", "Literal", "OrderBy", "Path", "Query", "QueryError",
    "Unary", "compile_filter", "compile_orderby", "parse_filter", "parse_query", "register_sqlite_functions",
]
