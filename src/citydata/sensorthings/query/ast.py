"""The query AST: expressions of ``$filter``/``$orderby`` and the parsed request options.

Every expression node carries ``pos``, its 0-based character offset in the option's text, so errors found
while compiling (a type mismatch, an unsupported function on this engine) can point at the offending spot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from typing import Literal as TypingLiteral

from citydata.errors import ValidationFailed

LiteralType = TypingLiteral["string", "number", "bool", "null", "datetime", "date", "time", "geo"]


class QueryError(ValidationFailed):
    """A request option that does not parse or does not fit the data model (HTTP 400, ``invalid_query``)."""

    code = "invalid_query"
    title = "Invalid query"

    def __init__(self, option: str, position: int, detail: str) -> None:
        super().__init__(f"{option}: {detail} at position {position}", option=option, position=position)
        self.option = option
        self.position = position
        self.detail = detail


@dataclass(frozen=True)
class Literal:
    value: Any             # str, int, float, bool, None, aware datetime, date, time, shapely geometry
    type: LiteralType
    pos: int = 0


@dataclass(frozen=True)
class Path:
    """A property path: navigation steps, a property of the last entity, then a JSON sub-path if any."""

    navs: tuple[str, ...]
    prop: str
    json_path: tuple[str | int, ...] = ()
    pos: int = 0

    def text(self) -> str:
        return "/".join([*self.navs, self.prop, *(str(p) for p in self.json_path)])


@dataclass(frozen=True)
class Call:
    name: str              # lower case, e.g. "substringof", "geo.intersects", "st_within"
    args: tuple[Expr, ...]
    pos: int = 0


BinaryOp = TypingLiteral["or", "and", "eq", "ne", "gt", "ge", "lt", "le", "add", "sub", "mul", "div", "mod"]
COMPARISONS = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
ARITHMETIC = frozenset({"add", "sub", "mul", "div", "mod"})
LOGICAL = frozenset({"and", "or"})


@dataclass(frozen=True)
class Binary:
    op: BinaryOp
    left: Expr
    right: Expr
    pos: int = 0


@dataclass(frozen=True)
class Unary:
    op: TypingLiteral["not", "neg"]
    operand: Expr
    pos: int = 0


Expr = Literal | Path | Call | Binary | Unary


@dataclass
class OrderBy:
    expr: Expr
    descending: bool = False


@dataclass
class Query:
    filter: Expr | None = None
    orderby: list[OrderBy] = field(default_factory=list)
    select: list[str] | None = None
    expand: list[Expand] = field(default_factory=list)
    top: int | None = None
    skip: int = 0
    count: bool = False
    result_format: str | None = None


@dataclass
class Expand:
    path: list[str]
    query: Query = field(default_factory=Query)


def walk(expr: Expr) -> list[Expr]:
    """Every node of ``expr``, depth first (the node itself first)."""
    out: list[Expr] = [expr]
    if isinstance(expr, Binary):
        out += walk(expr.left) + walk(expr.right)
    elif isinstance(expr, Unary):
        out += walk(expr.operand)
    elif isinstance(expr, Call):
        for arg in expr.args:
            out += walk(arg)
    return out


__all__ = [
    "ARITHMETIC", "COMPARISONS", "LOGICAL", "Binary", "BinaryOp", "Call", "Expand", "Expr", "Literal",
    "LiteralType", "OrderBy", "Path", "Query", "QueryError", "Unary", "walk",
]
